//! [`Proxy`] owns the runtime handle, the shared config and the proxy-wide counters;
//! each [`ProxyHandle`] owns one listener task. Removing or dropping a handle aborts
//! that task, which closes the listening socket and, through the task's own tables,
//! every connection and UDP flow it was relaying.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::Socket;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::config::{Proto, ProxyConfig, ProxySpec};
use crate::error::ProxyError;
use crate::sock::{self, StdListener};
use crate::stats::{Meter, Stats, StatsSnapshot};
use crate::{tcp, udp};

/// The userland proxy: any number of listeners on one tokio runtime.
#[derive(Debug, Clone)]
pub struct Proxy {
    rt: Handle,
    cfg: Arc<ProxyConfig>,
    stats: Arc<Stats>,
}

/// One running listener. Dropping it stops the listener (asynchronously: use
/// [`ProxyHandle::remove`] to wait until the port is free again).
#[derive(Debug)]
pub struct ProxyHandle {
    spec: ProxySpec,
    stats: Arc<Stats>,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Create a proxy on the current tokio runtime (fails outside one).
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyError> {
        let rt = Handle::try_current().map_err(|_| ProxyError::NoRuntime)?;
        Ok(Self::with_runtime(config, rt))
    }

    /// Create a proxy whose tasks run on `rt`.
    pub fn with_runtime(config: ProxyConfig, rt: Handle) -> Self {
        Proxy {
            rt,
            cfg: Arc::new(config),
            stats: Arc::new(Stats::default()),
        }
    }

    /// The configuration every listener of this proxy uses.
    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// Bind `spec.listen` and start relaying to `spec.target`. Binding happens before
    /// this returns, so `EADDRINUSE` comes back as [`ProxyError::AddrInUse`].
    pub fn add(&self, spec: ProxySpec) -> Result<ProxyHandle, ProxyError> {
        check_target(spec.target)?;
        let sock = sock::bind(spec.proto, spec.listen)?;
        self.start(spec.proto, sock, spec.target)
    }

    /// Relay from a socket someone else bound (the daemon reserving the port, or fd 4 of
    /// the `-use-listen-fd` protocol). A TCP socket that is bound but not listening is
    /// put into listening state.
    pub fn add_with_listener(
        &self,
        listener: StdListener,
        target: SocketAddr,
    ) -> Result<ProxyHandle, ProxyError> {
        check_target(target)?;
        let (proto, sock) = sock::adopt(listener)?;
        self.start(proto, sock, target)
    }

    /// Stop a listener and wait until its socket is closed (same as
    /// [`ProxyHandle::remove`]).
    pub async fn remove(&self, handle: ProxyHandle) {
        handle.remove().await
    }

    /// Counters summed over every listener this proxy has run.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    fn start(
        &self,
        proto: Proto,
        sock: Socket,
        target: SocketAddr,
    ) -> Result<ProxyHandle, ProxyError> {
        let local = sock::local_addr(&sock).map_err(|e| ProxyError::BadListener {
            reason: format!("getsockname: {e}"),
        })?;
        let meter = Meter::new(self.stats.clone());
        let stats = meter.local.clone();
        let cfg = self.cfg.clone();
        // Registering with the reactor needs the runtime context.
        let _enter = self.rt.enter();
        let reg_err = |e| ProxyError::from_bind(proto, local, e);
        let task = match proto {
            Proto::Tcp => {
                let l = tokio::net::TcpListener::from_std(sock.into()).map_err(reg_err)?;
                self.rt.spawn(tcp::run(l, target, cfg, meter))
            }
            Proto::Udp => {
                let u = tokio::net::UdpSocket::from_std(sock.into()).map_err(reg_err)?;
                self.rt.spawn(udp::run(u, target, cfg, meter))
            }
        };
        tracing::info!(%proto, listen = %local, %target, "proxy listener started");
        Ok(ProxyHandle {
            spec: ProxySpec {
                proto,
                listen: local,
                target,
            },
            stats,
            task: Some(task),
        })
    }
}

/// Listen and target families may differ (docker relays `[::]:p` to an IPv4
/// container): the upstream socket is made in the target's family.
fn check_target(target: SocketAddr) -> Result<(), ProxyError> {
    if target.ip().is_unspecified() || target.port() == 0 {
        return Err(ProxyError::InvalidTarget { target });
    }
    Ok(())
}

impl ProxyHandle {
    /// The spec with the actual bound address (port 0 resolved).
    pub fn spec(&self) -> &ProxySpec {
        &self.spec
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.spec.listen
    }

    /// This listener's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Stop the listener, abort its connections and flows, and wait until the listening
    /// socket is closed (the port can be bound again when this returns).
    pub async fn remove(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        tracing::info!(proto = %self.spec.proto, listen = %self.spec.listen, "proxy listener removed");
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
