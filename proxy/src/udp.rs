//! UDP listener task and its flow table. Each client address gets its own connected
//! socket to the target (so the target's replies can be told apart), and a small task
//! that sends those replies back to the client through the listening socket, from the
//! address the client wrote to. The table is owned by the listener task alone (no lock):
//! it is swept for idle flows on a timer and bounded in size. Dropping the table (the
//! listener task ending or being aborted) aborts every reply task.
//!
//! Both directions move datagrams in batches (recvmmsg/sendmmsg through the worker
//! thread's [`Batch`]): consecutive datagrams of one client go to its upstream socket in
//! one syscall, with one flow-table lookup. Socket buffers are raised as far as the
//! kernel allows without privileges (`net.core.rmem_max`/`wmem_max`), so bursts that
//! arrive while the worker is busy elsewhere queue instead of being dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::config::{ProxyConfig, UdpOverflow};
use crate::mmsg::{Batch, BATCH, BATCH_BUF};
use crate::pktinfo;
use crate::stats::{ActiveGuard, Dir, Meter};

/// Socket buffer size asked for (the kernel caps it at rmem_max/wmem_max).
const SOCK_BUF: usize = 4 << 20;

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
    grow_buffers(ctx.listener.as_raw_fd());
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let period =
        (ctx.cfg.udp_idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut sweep = tokio::time::interval(period);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refusing = false;
    let fd = ctx.listener.as_raw_fd();
    loop {
        tokio::select! {
            res = ctx.listener.async_io(Interest::READABLE, || {
                BATCH_BUF.with_borrow_mut(|b| b.recv(fd, true))
            }) => match res {
                // No await since the receive: the batch still holds these datagrams.
                Ok(n) => BATCH_BUF.with_borrow_mut(|b| on_batch(&ctx, &mut flows, b, n, &mut refusing)),
                Err(e) => tracing::debug!(cause = %e, "udp recv failed"),
            },
            _ = sweep.tick() => {
                expire(&ctx, &mut flows);
                refusing = false;
            }
        }
    }
}

/// Ask for large socket buffers; failure only means the default size stays.
fn grow_buffers(fd: RawFd) {
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        let v = SOCK_BUF as libc::c_int;
        // SAFETY: valid fd, pointer/len describe a live c_int.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Relay one received batch: runs of datagrams from the same client are forwarded
/// with one sendmmsg after one flow lookup.
fn on_batch(
    ctx: &Arc<Ctx>,
    flows: &mut HashMap<SocketAddr, Flow>,
    b: &mut Batch,
    n: usize,
    refusing: &mut bool,
) {
    // Senders and destinations first: sending reuses the receive headers.
    let mut meta: [(Option<SocketAddr>, Option<IpAddr>); BATCH] = [(None, None); BATCH];
    for (i, m) in meta.iter_mut().enumerate().take(n) {
        *m = (b.from(i), b.dst(i));
    }
    let now = ctx.now_us();
    let mut i = 0;
    while i < n {
        let (from, dst) = meta[i];
        let mut j = i + 1;
        while j < n && meta[j].0 == from {
            j += 1;
        }
        let Some(from) = from else {
            ctx.meter.dropped_n((j - i) as u64);
            i = j;
            continue;
        };
        match flow_for(ctx, flows, from, dst, now, refusing) {
            Some(fd) => forward(ctx, b, fd, i..j),
            None => ctx.meter.dropped_n((j - i) as u64),
        }
        i = j;
    }
}

/// The upstream socket of `from`'s flow, opening one if needed (`None`: refused).
fn flow_for(
    ctx: &Arc<Ctx>,
    flows: &mut HashMap<SocketAddr, Flow>,
    from: SocketAddr,
    dst: Option<IpAddr>,
    now: u64,
    refusing: &mut bool,
) -> Option<RawFd> {
    if let Some(flow) = flows.get(&from) {
        flow.last.store(now, Relaxed);
        return Some(flow.upstream.as_raw_fd());
    }
    if flows.len() >= ctx.cfg.udp_max_flows.max(1) {
        match ctx.cfg.udp_overflow {
            UdpOverflow::EvictOldest => evict_oldest(ctx, flows),
            UdpOverflow::RefuseNew => {
                ctx.meter.udp_refused();
                if !*refusing {
                    tracing::warn!(client = %from, max = ctx.cfg.udp_max_flows, "udp flow table full, refusing new clients");
                    *refusing = true;
                }
                return None;
            }
        }
    }
    match open_flow(ctx, from, dst, now) {
        Ok(f) => {
            let fd = f.upstream.as_raw_fd();
            flows.insert(from, f);
            Some(fd)
        }
        Err(e) => {
            tracing::warn!(client = %from, target = %ctx.target, cause = %e, "cannot open udp flow");
            None
        }
    }
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
    grow_buffers(std.as_raw_fd());
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

/// Client → target: datagrams `range` of the batch to a connected upstream socket.
/// UDP may drop: a full socket buffer drops the datagram rather than stalling every
/// other client of this listener.
///
/// The sends are direct non-blocking syscalls, not tokio's `try_send`: tokio reports
/// WouldBlock for a socket whose write readiness the reactor has not seen yet, which
/// would drop the first datagrams of every new flow.
fn forward(ctx: &Ctx, b: &mut Batch, fd: RawFd, range: std::ops::Range<usize>) {
    let mut k = range.start;
    let mut retried = false;
    while k < range.end {
        match b.send(fd, k..range.end, None, None) {
            Ok(m) => {
                let bytes: usize = (k..k + m).map(|i| b.data(i).len()).sum();
                ctx.meter.datagrams(Dir::ToTarget, m as u64, bytes as u64);
                k += m;
            }
            // A pending ICMP error from an earlier datagram was reported instead; retry.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) && !retried => {
                retried = true;
            }
            Err(e) => {
                ctx.meter.dropped();
                tracing::debug!(target = %ctx.target, cause = %e, "udp datagram to target dropped");
                k += 1;
            }
        }
    }
}

/// Target → client, until the flow is dropped (which aborts this task).
async fn reply_loop(
    ctx: Arc<Ctx>,
    upstream: Arc<UdpSocket>,
    client: SocketAddr,
    src: Option<IpAddr>,
    last: Arc<AtomicU64>,
) {
    let ufd = upstream.as_raw_fd();
    loop {
        let res = upstream
            .async_io(Interest::READABLE, || {
                BATCH_BUF.with_borrow_mut(|b| b.recv(ufd, false))
            })
            .await;
        let n = match res {
            Ok(n) => n,
            // The target port is closed (ICMP port unreachable): keep the flow until
            // it expires, as docker-proxy does.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
            Err(e) => {
                tracing::debug!(%client, cause = %e, "udp upstream recv failed");
                return;
            }
        };
        last.store(ctx.now_us(), Relaxed);
        // No await since the receive: the batch still holds these datagrams.
        let later = BATCH_BUF.with_borrow_mut(|b| send_replies(&ctx, b, n, client, src));
        for data in later {
            // The listener's send buffer was full: wait for room (rare on a host).
            let fd = ctx.listener.as_raw_fd();
            let res = ctx
                .listener
                .async_io(Interest::WRITABLE, || pktinfo::send(fd, &data, client, src))
                .await;
            match res {
                Ok(_) => ctx.meter.datagram(Dir::FromTarget, data.len()),
                Err(_) => ctx.meter.dropped(),
            }
        }
    }
}

/// Send `n` received replies to the client with sendmmsg; returns copies of those the
/// listener had no room for (to be sent once it is writable).
fn send_replies(
    ctx: &Ctx,
    b: &mut Batch,
    n: usize,
    client: SocketAddr,
    src: Option<IpAddr>,
) -> Vec<Vec<u8>> {
    let fd = ctx.listener.as_raw_fd();
    let mut k = 0;
    while k < n {
        match b.send(fd, k..n, Some(client), src) {
            Ok(m) => {
                let bytes: usize = (k..k + m).map(|i| b.data(i).len()).sum();
                ctx.meter.datagrams(Dir::FromTarget, m as u64, bytes as u64);
                k += m;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return (k..n).map(|i| b.data(i).to_vec()).collect();
            }
            Err(e) => {
                ctx.meter.dropped();
                tracing::debug!(%client, cause = %e, "udp reply dropped");
                k += 1;
            }
        }
    }
    Vec::new()
}
