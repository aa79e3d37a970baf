//! Socket set-up: binding listeners the way docker-proxy does (SO_REUSEADDR, v6-only
//! for `[::]`), adopting sockets the daemon bound, and dialling the target (optionally
//! with IP_TRANSPARENT from the client's own address).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::config::Proto;
use crate::error::ProxyError;

/// Listen backlog for TCP listeners (the kernel caps it at net.core.somaxconn).
const BACKLOG: i32 = 1024;

/// A listening socket bound by someone else (the daemon reserving the port, or the
/// `-use-listen-fd` protocol), handed to [`crate::Proxy::add_with_listener`].
#[derive(Debug)]
pub enum StdListener {
    /// A bound (and possibly already listening) TCP socket.
    Tcp(std::net::TcpListener),
    /// A bound UDP socket.
    Udp(std::net::UdpSocket),
}

impl StdListener {
    /// Wrap an inherited file descriptor, telling TCP from UDP by `SO_TYPE`.
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ProxyError> {
        let sock = Socket::from(fd);
        let ty = sock.r#type().map_err(|e| bad(format!("SO_TYPE: {e}")))?;
        if ty == Type::STREAM {
            Ok(StdListener::Tcp(sock.into()))
        } else if ty == Type::DGRAM {
            Ok(StdListener::Udp(sock.into()))
        } else {
            Err(bad(format!(
                "socket type {ty:?} is neither stream nor datagram"
            )))
        }
    }

    /// Protocol implied by the variant.
    pub fn proto(&self) -> Proto {
        match self {
            StdListener::Tcp(_) => Proto::Tcp,
            StdListener::Udp(_) => Proto::Udp,
        }
    }
}

fn bad(reason: String) -> ProxyError {
    ProxyError::BadListener { reason }
}

fn new_socket(proto: Proto, addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let (ty, p) = match proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    // Non-blocking and close-on-exec from the start (one syscall, no fcntl).
    Socket::new(domain, ty.nonblocking().cloexec(), Some(p))
}

/// Bind a listener on `addr` (TCP: also listen).
pub(crate) fn bind(proto: Proto, addr: SocketAddr) -> Result<Socket, ProxyError> {
    let err = |e| ProxyError::from_bind(proto, addr, e);
    let sock = new_socket(proto, addr).map_err(err)?;
    if proto == Proto::Tcp {
        // As Go's net.Listen: lets the port be re-bound while old connections sit in
        // TIME_WAIT; does not allow two live listeners.
        sock.set_reuse_address(true).map_err(err)?;
    }
    if addr.is_ipv6() {
        // Docker runs one proxy per family: `[::]` must not also grab IPv4.
        sock.set_only_v6(true).map_err(err)?;
    }
    sock.bind(&addr.into()).map_err(err)?;
    if proto == Proto::Tcp {
        sock.listen(BACKLOG).map_err(err)?;
        nodelay_for_accepted(&sock);
    }
    Ok(sock)
}

/// Accepted sockets inherit TCP_NODELAY from their listener (Linux copies the socket),
/// so setting it once here saves a syscall per connection.
fn nodelay_for_accepted(sock: &Socket) {
    if let Err(e) = sock.set_tcp_nodelay(true) {
        tracing::debug!(cause = %e, "TCP_NODELAY on listener failed");
    }
}

/// Check an adopted socket and make it ready for tokio: non-blocking, and listening if
/// it is a TCP socket that was only bound.
pub(crate) fn adopt(listener: StdListener) -> Result<(Proto, Socket), ProxyError> {
    let proto = listener.proto();
    let sock = match listener {
        StdListener::Tcp(l) => Socket::from(OwnedFd::from(l)),
        StdListener::Udp(u) => Socket::from(OwnedFd::from(u)),
    };
    let ty = sock.r#type().map_err(|e| bad(format!("SO_TYPE: {e}")))?;
    let want = match proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
    };
    if ty != want {
        return Err(bad(format!("expected a {proto} socket, got type {ty:?}")));
    }
    match sock.domain() {
        Ok(d) if d == Domain::IPV4 || d == Domain::IPV6 => {}
        Ok(d) => return Err(bad(format!("not an IP socket ({d:?})"))),
        Err(e) => return Err(bad(format!("SO_DOMAIN: {e}"))),
    }
    let local = local_addr(&sock).map_err(|e| bad(format!("getsockname: {e}")))?;
    if local.port() == 0 {
        return Err(bad("socket is not bound".into()));
    }
    sock.set_nonblocking(true)
        .map_err(|e| bad(format!("O_NONBLOCK: {e}")))?;
    if proto == Proto::Tcp && !sock.is_listener().unwrap_or(false) {
        sock.listen(BACKLOG)
            .map_err(|e| ProxyError::from_bind(proto, local, e))?;
    }
    if proto == Proto::Tcp {
        nodelay_for_accepted(&sock);
    }
    Ok((proto, sock))
}

pub(crate) fn local_addr(sock: &Socket) -> io::Result<SocketAddr> {
    sock.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))
}

/// Create the upstream TCP socket (non-blocking, TCP_NODELAY). With `transparent`, bind
/// it to the client's IP (any port) with IP_TRANSPARENT so the target sees the real
/// client; fall back to a plain socket when that is impossible (loopback client, other
/// family, no CAP_NET_ADMIN).
pub(crate) fn upstream_tcp(
    target: SocketAddr,
    client: SocketAddr,
    transparent: bool,
) -> io::Result<Socket> {
    let sock = new_socket(Proto::Tcp, target)?;
    sock.set_tcp_nodelay(true)?;
    if transparent && usable_transparent(client.ip(), target.ip()) {
        let res = match target {
            SocketAddr::V4(_) => sock.set_ip_transparent_v4(true),
            SocketAddr::V6(_) => sock.set_ip_transparent_v6(true),
        }
        .and_then(|()| sock.bind(&SockAddr::from(SocketAddr::new(client.ip(), 0))));
        if let Err(e) = res {
            tracing::debug!(%client, cause = %e, "IP_TRANSPARENT bind failed, dialling from host address");
            return upstream_tcp(target, client, false);
        }
    }
    Ok(sock)
}

fn usable_transparent(client: IpAddr, target: IpAddr) -> bool {
    client.is_ipv4() == target.is_ipv4() && !client.is_loopback() && !client.is_unspecified()
}

/// Close with RST instead of FIN (used when a relay fails, so the peer learns of it).
pub(crate) fn set_linger_zero<S: AsRawFd>(s: &S) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd owned by `s`, pointer/len describe a live linger struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
