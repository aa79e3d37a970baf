//! TCP listener task: accept clients, dial the target for each, and hand both sockets to
//! the splice relay. Connection tasks live in a `JoinSet` owned by the listener task, so
//! aborting the listener (handle dropped or removed) also aborts every connection.

use std::net::SocketAddr;
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

async fn accept_error(e: std::io::Error) {
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
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    if let Err(e) = relay(client, upstream, cfg.pipe_size, &meter).await {
        tracing::debug!(client = %peer, %target, cause = %e, "relay ended with error");
    }
}

async fn dial(
    target: SocketAddr,
    peer: SocketAddr,
    cfg: &ProxyConfig,
) -> std::io::Result<TcpStream> {
    let sock = upstream_tcp(target, peer, cfg.transparent)?;
    match tokio::time::timeout(cfg.connect_timeout, sock.connect(target)).await {
        Ok(res) => res,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}
