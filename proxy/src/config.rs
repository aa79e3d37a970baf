//! What the daemon asks of the proxy: process-wide tuning ([`ProxyConfig`]) and one
//! "listen here, forward there" rule ([`ProxySpec`]). Plain data, no I/O.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// Stream relay: one upstream connection per accepted client.
    Tcp,
    /// Datagram relay: one connected upstream socket per client address.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: accept on `listen`, relay to `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxySpec {
    /// Protocol of both sides.
    pub proto: Proto,
    /// Host address to listen on (`0.0.0.0:80`, `[::]:80`; port 0 picks an ephemeral port).
    pub listen: SocketAddr,
    /// Where to forward (normally the container's address and port).
    pub target: SocketAddr,
}

/// What to do with a datagram from a new client when the UDP flow table is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UdpOverflow {
    /// Close the least recently used flow and admit the new client (logged at warn).
    #[default]
    EvictOldest,
    /// Drop the new client's datagrams until a flow expires (logged at warn).
    RefuseNew,
}

/// Process-wide settings shared by every listener of one [`crate::Proxy`].
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// A UDP flow with no datagram in either direction for this long is closed.
    pub udp_idle_timeout: Duration,
    /// Upper bound on concurrent UDP flows per listener.
    pub udp_max_flows: usize,
    /// Policy when `udp_max_flows` is reached.
    pub udp_overflow: UdpOverflow,
    /// Dial the target with `IP_TRANSPARENT`, bound to the real client address, so the
    /// container sees who connected (TCP only). Needs `CAP_NET_ADMIN` and policy routing
    /// that sends the container's replies back to this host's local stack (the usual
    /// TPROXY recipe: `ip rule add fwmark M lookup T` + `ip route add local 0/0 dev lo
    /// table T` + marking of the reply traffic). Without that routing, replies go
    /// astray, so this is off by default. Loopback clients are always dialled normally,
    /// since a loopback source cannot leave the host.
    pub transparent: bool,
    /// Requested pipe capacity for splice(2), per direction per connection (F_SETPIPE_SZ;
    /// the kernel rounds up to a power-of-two number of pages; failure is ignored and the
    /// default 64 KiB pipe is used). `None` keeps the default; `Some(0)` turns splice
    /// off (copy through user space). Splice starts only once a connection moves bulk
    /// data: short exchanges are copied and never create a pipe.
    pub pipe_size: Option<usize>,
    /// Give up dialling the target after this long and close the client.
    pub connect_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            udp_idle_timeout: Duration::from_secs(30),
            udp_max_flows: 4096,
            udp_overflow: UdpOverflow::EvictOldest,
            transparent: false,
            pipe_size: Some(256 * 1024),
            connect_timeout: Duration::from_secs(10),
        }
    }
}
