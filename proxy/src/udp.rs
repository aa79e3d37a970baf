//! UDP listener task and its flow table. Each client address gets its own connected
//! socket to the target (so the target's replies can be told apart), and a small task
//! that sends those replies back to the client through the listening socket, from the
//! address the client wrote to. The table is owned by the listener task alone (no lock):
//! it is swept for idle flows on a timer and bounded in size. Dropping the table (the
//! listener task ending or being aborted) aborts every reply task.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config::{ProxyConfig, UdpOverflow};
use crate::pktinfo;
use crate::stats::{ActiveGuard, Dir, Meter};

/// Largest UDP payload over IPv4 (docker-proxy uses the same buffer size).
const MAX_DATAGRAM: usize = 65507;

thread_local! {
    /// Reply tasks read into this instead of owning 64 KiB each: a reply is received
    /// and sent without an await in between, so one buffer per worker thread suffices.
    static REPLY_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

struct Flow {
    upstream: Arc<UdpSocket>,
    /// Microseconds since the listener's epoch of the last datagram either way.
    last: Arc<AtomicU64>,
    reply_task: AbortHandle,
    _active: ActiveGuard,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.reply_task.abort();
    }
}

/// Shared context of one UDP listener.
struct Ctx {
    listener: Arc<UdpSocket>,
    target: SocketAddr,
    cfg: Arc<ProxyConfig>,
    meter: Meter,
    epoch: Instant,
}

impl Ctx {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

pub(crate) async fn run(
    listener: UdpSocket,
    target: SocketAddr,
    cfg: Arc<ProxyConfig>,
    meter: Meter,
) {
    if let Ok(local) = listener.local_addr() {
        if local.ip().is_unspecified() {
            if let Err(e) = pktinfo::enable(listener.as_raw_fd(), local.is_ipv6()) {
                tracing::warn!(cause = %e, "cannot enable PKTINFO; replies use the kernel's source address");
            }
        }
    }
    let ctx = Arc::new(Ctx {
        listener: Arc::new(listener),
        target,
        cfg,
        meter,
        epoch: Instant::now(),
    });
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let period =
        (ctx.cfg.udp_idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut sweep = tokio::time::interval(period);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refusing = false;
    loop {
        tokio::select! {
            res = recv(&ctx.listener, &mut buf) => match res {
                Ok((n, from, dst)) => on_datagram(&ctx, &mut flows, &buf[..n], from, dst, &mut refusing),
                Err(e) => tracing::debug!(cause = %e, "udp recv failed"),
            },
            _ = sweep.tick() => {
                expire(&ctx, &mut flows);
                refusing = false;
            }
        }
    }
}

async fn recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    let fd = sock.as_raw_fd();
    sock.async_io(Interest::READABLE, || pktinfo::recv(fd, buf))
        .await
}

fn on_datagram(
    ctx: &Arc<Ctx>,
    flows: &mut HashMap<SocketAddr, Flow>,
    data: &[u8],
    from: SocketAddr,
    dst: Option<IpAddr>,
    refusing: &mut bool,
) {
    let now = ctx.now_us();
    if let Some(flow) = flows.get(&from) {
        flow.last.store(now, Relaxed);
        forward(ctx, &flow.upstream, data);
        return;
    }
    if flows.len() >= ctx.cfg.udp_max_flows.max(1) {
        match ctx.cfg.udp_overflow {
            UdpOverflow::EvictOldest => evict_oldest(ctx, flows),
            UdpOverflow::RefuseNew => {
                ctx.meter.udp_refused();
                ctx.meter.dropped();
                if !*refusing {
                    tracing::warn!(client = %from, max = ctx.cfg.udp_max_flows, "udp flow table full, refusing new clients");
                    *refusing = true;
                }
                return;
            }
        }
    }
    let flow = match open_flow(ctx, from, dst, now) {
        Ok(f) => f,
        Err(e) => {
            ctx.meter.dropped();
            tracing::warn!(client = %from, target = %ctx.target, cause = %e, "cannot open udp flow");
            return;
        }
    };
    forward(ctx, &flow.upstream, data);
    flows.insert(from, flow);
}

fn evict_oldest(ctx: &Ctx, flows: &mut HashMap<SocketAddr, Flow>) {
    let oldest = flows
        .iter()
        .min_by_key(|(_, f)| f.last.load(Relaxed))
        .map(|(k, _)| *k);
    if let Some(k) = oldest {
        flows.remove(&k);
        ctx.meter.udp_evicted();
        tracing::warn!(client = %k, max = ctx.cfg.udp_max_flows, "udp flow table full, closed least recently used flow");
    }
}

fn expire(ctx: &Ctx, flows: &mut HashMap<SocketAddr, Flow>) {
    let now = ctx.now_us();
    let idle = ctx.cfg.udp_idle_timeout.as_micros() as u64;
    flows.retain(|client, f| {
        let keep = now.saturating_sub(f.last.load(Relaxed)) < idle;
        if !keep {
            tracing::debug!(%client, "udp flow idle, closed");
        }
        keep
    });
}

fn open_flow(
    ctx: &Arc<Ctx>,
    client: SocketAddr,
    dst: Option<IpAddr>,
    now: u64,
) -> io::Result<Flow> {
    let any: IpAddr = if ctx.target.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let std = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    std.connect(ctx.target)?;
    std.set_nonblocking(true)?;
    let upstream = Arc::new(UdpSocket::from_std(std)?);
    let last = Arc::new(AtomicU64::new(now));
    let task = tokio::spawn(reply_loop(
        ctx.clone(),
        upstream.clone(),
        client,
        dst,
        last.clone(),
    ));
    Ok(Flow {
        upstream,
        last,
        reply_task: task.abort_handle(),
        _active: ctx.meter.udp_open(),
    })
}

/// Client → target. UDP may drop: a full socket buffer drops the datagram rather than
/// stalling every other client of this listener.
///
/// The send is a direct non-blocking syscall, not `try_send`: tokio reports WouldBlock
/// for a socket whose write readiness the reactor has not seen yet, which would drop the
/// first datagram of every new flow.
fn forward(ctx: &Ctx, upstream: &UdpSocket, data: &[u8]) {
    let fd = upstream.as_raw_fd();
    let mut res = send_connected(fd, data);
    if matches!(&res, Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED)) {
        // A pending ICMP error from an earlier datagram was reported instead; retry.
        res = send_connected(fd, data);
    }
    match res {
        Ok(_) => ctx.meter.datagram(Dir::ToTarget, data.len()),
        Err(e) => {
            ctx.meter.dropped();
            tracing::debug!(target = %ctx.target, cause = %e, "udp datagram to target dropped");
        }
    }
}

fn send_connected(fd: std::os::fd::RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: valid fd and buffer for the duration of the call.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr() as *const libc::c_void,
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

enum Step {
    Sent,
    Again,
    Later(Vec<u8>),
    Stop(io::Error),
}

/// Target → client, until the flow is dropped (which aborts this task).
async fn reply_loop(
    ctx: Arc<Ctx>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    src: Option<IpAddr>,
    last: Arc<AtomicU64>,
) {
    let fd = ctx.listener.as_raw_fd();
    loop {
        if let Err(e) = upstream.readable().await {
            tracing::debug!(cause = %e, "udp upstream failed");
            return;
        }
        let step = REPLY_BUF.with_borrow_mut(|buf| match upstream.try_recv(buf) {
            Ok(n) => {
                last.store(ctx.now_us(), Relaxed);
                let data = &buf[..n];
                match ctx
                    .listener
                    .try_io(Interest::WRITABLE, || pktinfo::send(fd, data, client, src))
                {
                    Ok(_) => {
                        ctx.meter.datagram(Dir::FromTarget, n);
                        Step::Sent
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Later(data.to_vec()),
                    Err(e) => {
                        ctx.meter.dropped();
                        tracing::debug!(%client, cause = %e, "udp reply dropped");
                        Step::Sent
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Again,
            // The target port is closed (ICMP port unreachable): keep the flow until
            // it expires, as docker-proxy does.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Step::Again,
            Err(e) => Step::Stop(e),
        });
        match step {
            Step::Sent | Step::Again => {}
            Step::Later(data) => {
                let res = ctx
                    .listener
                    .async_io(Interest::WRITABLE, || pktinfo::send(fd, &data, client, src))
                    .await;
                match res {
                    Ok(_) => ctx.meter.datagram(Dir::FromTarget, data.len()),
                    Err(_) => ctx.meter.dropped(),
                }
            }
            Step::Stop(e) => {
                tracing::debug!(%client, cause = %e, "udp upstream recv failed");
                return;
            }
        }
    }
}
