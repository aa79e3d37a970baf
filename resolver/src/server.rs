//! The service: [`Resolver`] (shared by every sandbox) and [`SandboxServer`] (the listeners of
//! one sandbox). Sockets come from the daemon already bound inside the sandbox's namespace;
//! we only make them non-blocking and register them with the current tokio runtime.
//!
//! UDP: `udp_workers` tasks receive on the same socket; local names and cache hits are
//! answered inline, forwards run in tasks bounded by a resolver-wide semaphore (when full the
//! query gets SERVFAIL at once). TCP: one task per connection (bounded per sandbox), queries
//! answered in order, idle connections closed after `tcp_idle_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::handler::{Shared, Step, Transport};
use crate::stats::Stats;
use crate::table::Table;
use crate::ResolverError;

/// Resolver-wide settings.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Upstreams used when neither the sandbox nor the table's defaults name any.
    pub upstreams: Vec<SocketAddr>,
    /// Total time budget for one forwarded question, split across the upstreams tried. Keep it
    /// well under the client's 5 s resolver timeout. Default 2 s.
    pub timeout: Duration,
    /// Maximum number of cached answers (0 disables the cache). Default 10 000.
    pub cache_size: usize,
    /// Cap on cached TTLs, positive and negative, in seconds. Default 3600.
    pub max_cache_ttl: u32,
    /// TTL of local answers, in seconds. Default 600 (Docker's value).
    pub local_ttl: u32,
    /// Forwards in flight across all sandboxes; beyond it queries get SERVFAIL. Default 1024.
    pub max_inflight_forwards: usize,
    /// Concurrent TCP connections per sandbox; beyond it new ones are closed. Default 64.
    pub max_tcp_connections: usize,
    /// Idle TCP connections are closed after this. Default 10 s.
    pub tcp_idle_timeout: Duration,
    /// Tasks receiving on each sandbox's UDP socket. Default 2.
    pub udp_workers: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            timeout: Duration::from_secs(2),
            cache_size: 10_000,
            max_cache_ttl: 3600,
            local_ttl: 600,
            max_inflight_forwards: 1024,
            max_tcp_connections: 64,
            tcp_idle_timeout: Duration::from_secs(10),
            udp_workers: 2,
        }
    }
}

/// The embedded DNS service. Cheap to clone (an `Arc` inside); one per daemon.
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Resolver {
    /// A resolver with an empty table (everything is forwarded).
    pub fn new(config: ResolverConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// Replaces the whole table; queries that start afterwards see the new one.
    pub fn set_table(&self, table: Table) {
        self.shared.table.store(Arc::new(table));
    }

    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        self.shared.table.load_full()
    }

    /// Counter snapshot.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Number of entries in the answer cache (expired ones not yet collected included).
    pub fn cache_len(&self) -> usize {
        self.shared.cache.len()
    }

    /// Empties the answer cache (e.g. after the host's resolv.conf changed).
    pub fn clear_cache(&self) {
        self.shared.cache.clear();
    }

    /// Answers one raw query packet as if it had arrived on `sandbox_id`'s socket over
    /// `transport`; `None` when the packet is dropped. Forwarding happens inside (bounded by
    /// the in-flight limit like the serving loops). Useful for tests and custom transports.
    pub async fn handle_packet(
        &self,
        sandbox_id: &str,
        packet: &[u8],
        transport: Transport,
    ) -> Option<Vec<u8>> {
        match self.shared.process(sandbox_id, packet, transport) {
            Step::Reply(b) => Some(b),
            Step::Drop => None,
            Step::Forward(job) => match self.shared.inflight.clone().try_acquire_owned() {
                Ok(_permit) => Some(self.shared.run_forward(job).await),
                Err(_) => Some(self.shared.overloaded(&job)),
            },
        }
    }

    /// Starts serving one sandbox on sockets the daemon bound inside its namespace (normally
    /// 127.0.0.11:53 or a DNAT target port). Must be called from within a tokio runtime. The
    /// listeners stop when the returned handle is dropped or stopped.
    pub fn serve_sandbox(
        &self,
        sandbox_id: impl Into<String>,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> Result<SandboxServer, ResolverError> {
        let rt = Handle::try_current().map_err(|_| ResolverError::NoRuntime)?;
        let sandbox_id: Arc<str> = Arc::from(sandbox_id.into());
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let _guard = rt.enter();
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let udp_addr = udp.local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let mut tasks = Vec::new();
        for _ in 0..self.shared.config.udp_workers.max(1) {
            let shared = self.shared.clone();
            tasks.push(rt.spawn(udp_loop(shared, sandbox_id.clone(), udp.clone())));
        }
        drop(udp);
        tasks.push(rt.spawn(tcp_loop(self.shared.clone(), sandbox_id.clone(), tcp)));
        debug!(sandbox = %sandbox_id, %udp_addr, %tcp_addr, "serving sandbox");
        Ok(SandboxServer {
            sandbox_id,
            udp_addr,
            tcp_addr,
            tasks,
        })
    }
}

/// The listeners of one sandbox. Dropping it (or [`SandboxServer::stop`]) aborts its tasks,
/// which closes the sockets and any TCP connections and in-flight forwards of this sandbox.
#[derive(Debug)]
pub struct SandboxServer {
    sandbox_id: Arc<str>,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl SandboxServer {
    /// The sandbox this server answers for.
    pub fn sandbox_id(&self) -> &str {
        &self.sandbox_id
    }

    /// Local address of the UDP socket.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// Local address of the TCP listener.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// Stops the listeners (same as dropping; sockets close as soon as the runtime runs the
    /// aborted tasks' destructors).
    pub fn stop(self) {
        drop(self)
    }

    /// Stops the listeners and waits until the sockets are closed.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Reaps finished forward tasks so the set does not grow.
fn reap(set: &mut JoinSet<()>) {
    while set.try_join_next().is_some() {}
}

async fn udp_loop(shared: Arc<Shared>, sandbox_id: Arc<str>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65535];
    let mut forwards = JoinSet::new();
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                // e.g. ECONNREFUSED echoed from an earlier send; never spin on a dead socket.
                debug!(sandbox = %sandbox_id, error = %e, "udp recv error");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        match shared.process(&sandbox_id, &buf[..n], Transport::Udp) {
            Step::Reply(bytes) => send(&sock, &bytes, src).await,
            Step::Drop => {}
            Step::Forward(job) => match shared.inflight.clone().try_acquire_owned() {
                Ok(permit) => {
                    let (shared, sock) = (shared.clone(), sock.clone());
                    forwards.spawn(async move {
                        let bytes = shared.run_forward(job).await;
                        drop(permit);
                        send(&sock, &bytes, src).await;
                    });
                    reap(&mut forwards);
                }
                Err(_) => send(&sock, &shared.overloaded(&job), src).await,
            },
        }
    }
}

async fn send(sock: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = sock.send_to(bytes, to).await {
        debug!(%to, error = %e, "udp send failed");
    }
}

async fn tcp_loop(shared: Arc<Shared>, sandbox_id: Arc<str>, listener: TcpListener) {
    let limit = Arc::new(Semaphore::new(shared.config.max_tcp_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(sandbox = %sandbox_id, error = %e, "tcp accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        reap(&mut conns);
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            debug!(sandbox = %sandbox_id, %peer, "too many tcp connections, closing");
            continue;
        };
        let (shared, sandbox_id) = (shared.clone(), sandbox_id.clone());
        conns.spawn(async move {
            if let Err(e) = tcp_conn(&shared, &sandbox_id, stream).await {
                debug!(%peer, error = %e, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

async fn tcp_conn(shared: &Shared, sandbox_id: &str, mut stream: TcpStream) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let idle = shared.config.tcp_idle_timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r? as usize,
        };
        let packet = &mut buf[..len];
        tokio::time::timeout(idle, stream.read_exact(packet))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let answer = match shared.process(sandbox_id, packet, Transport::Tcp) {
            Step::Reply(b) => b,
            Step::Drop => return Ok(()),
            Step::Forward(job) => match shared.inflight.clone().try_acquire_owned() {
                Ok(_permit) => shared.run_forward(job).await,
                Err(_) => shared.overloaded(&job),
            },
        };
        let mut out = Vec::with_capacity(answer.len() + 2);
        out.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        out.extend_from_slice(&answer);
        stream.write_all(&out).await?;
    }
}
