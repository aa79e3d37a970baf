//! TCP listener task: accept clients, dial the target for each, and hand both sockets to
//! the splice relay. Connection tasks live in a `JoinSet` owned by the listener task, so
//! aborting the listener (handle dropped or removed) also aborts every connection.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::ProxyConfig;
use crate::relay::relay;
use crate::sock::upstream_tcp;
use crate::stats::Meter;

pub(crate) async fn run(
    listener: TcpListener,
    target: SocketAddr,
    cfg: Arc<ProxyConfig>,
    meter: Meter,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((client, peer)) => {
                    conns.spawn(handle(client, peer, target, cfg.clone(), meter.clone()));
                }
                Err(e) => accept_error(e).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn accept_error(e: io::Error) {
    match e.raw_os_error() {
        // Out of descriptors or memory: back off instead of spinning on the error.
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM) => {
            tracing::warn!(cause = %e, "accept failed, pausing 100ms");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Client gone before we accepted it, and similar per-connection errors.
        _ => tracing::debug!(cause = %e, "accept failed"),
    }
}

async fn handle(
    client: TcpStream,
    peer: SocketAddr,
    target: SocketAddr,
    cfg: Arc<ProxyConfig>,
    meter: Meter,
) {
    let _active = meter.tcp_open();
    let upstream = match dial(target, peer, &cfg).await {
        Ok(s) => s,
        Err(e) => {
            meter.tcp_connect_failed();
            tracing::info!(client = %peer, %target, cause = %e, "cannot reach target, closing client");
            // Dropping `client` closes it (FIN), as docker-proxy does.
            return;
        }
    };
    // TCP_NODELAY: the client socket inherited it from the listener, the upstream
    // socket got it before connecting.
    if let Err(e) = relay(client, upstream, cfg.pipe_size, &meter).await {
        tracing::debug!(client = %peer, %target, cause = %e, "relay ended with error");
    }
}

/// Non-blocking connect. A local target has usually completed the handshake by the
/// time `connect` returns, so one `poll` with a zero timeout spares the task a trip
/// through the reactor; otherwise wait for writability as usual.
async fn dial(target: SocketAddr, peer: SocketAddr, cfg: &ProxyConfig) -> io::Result<TcpStream> {
    let sock = upstream_tcp(target, peer, cfg.transparent)?;
    match sock.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let now = poll_out_now(sock.as_raw_fd());
    let stream = TcpStream::from_std(std::net::TcpStream::from(sock))?;
    if now == Some(true) {
        // Writable and no error or hang-up: connected.
        return Ok(stream);
    }
    if now.is_none() {
        match tokio::time::timeout(cfg.connect_timeout, stream.writable()).await {
            Ok(res) => res?,
            Err(_) => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    Ok(stream)
}

/// The connect's state right now: `Some(true)` connected, `Some(false)` finished with
/// an error or hang-up (read it with SO_ERROR), `None` still in progress.
fn poll_out_now(fd: std::os::fd::RawFd) -> Option<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n != 1 {
        return None;
    }
    if p.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
        Some(false)
    } else if p.revents & libc::POLLOUT != 0 {
        Some(true)
    } else {
        None
    }
}
