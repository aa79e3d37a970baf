//! Typed errors of the proxy library. Bind failures are split out so the daemon can map
//! "port already in use" to a conflict without parsing strings.

use std::io;
use std::net::SocketAddr;

use crate::config::Proto;

/// Errors returned by [`crate::Proxy`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Another socket already holds this address (EADDRINUSE).
    #[error("cannot listen on {proto} {addr}: address already in use")]
    AddrInUse {
        /// Protocol of the listener.
        proto: Proto,
        /// Address that was requested.
        addr: SocketAddr,
    },
    /// The host address is not local to this machine (EADDRNOTAVAIL).
    #[error("cannot listen on {proto} {addr}: address not available on this host")]
    AddrNotAvailable {
        /// Protocol of the listener.
        proto: Proto,
        /// Address that was requested.
        addr: SocketAddr,
    },
    /// Privileged port or missing capability (EACCES / EPERM).
    #[error("cannot listen on {proto} {addr}: permission denied")]
    PermissionDenied {
        /// Protocol of the listener.
        proto: Proto,
        /// Address that was requested.
        addr: SocketAddr,
    },
    /// Any other failure while creating or binding the listening socket.
    #[error("cannot listen on {proto} {addr}: {source}")]
    Bind {
        /// Protocol of the listener.
        proto: Proto,
        /// Address that was requested.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A socket handed to [`crate::Proxy::add_with_listener`] is unusable.
    #[error("unusable listener socket: {reason}")]
    BadListener {
        /// What is wrong with it.
        reason: String,
    },
    /// The target cannot be dialled (unspecified address or port 0).
    #[error("invalid target {target}: needs a specific address and a non-zero port")]
    InvalidTarget {
        /// Target address.
        target: SocketAddr,
    },
    /// [`crate::Proxy::new`] was called outside a tokio runtime.
    #[error("no tokio runtime: create the Proxy from within a runtime or use Proxy::with_runtime")]
    NoRuntime,
}

impl ProxyError {
    /// Classify an OS error from socket()/bind()/listen().
    pub(crate) fn from_bind(proto: Proto, addr: SocketAddr, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EADDRINUSE) => ProxyError::AddrInUse { proto, addr },
            Some(libc::EADDRNOTAVAIL) => ProxyError::AddrNotAvailable { proto, addr },
            Some(libc::EACCES) | Some(libc::EPERM) => ProxyError::PermissionDenied { proto, addr },
            _ => ProxyError::Bind {
                proto,
                addr,
                source,
            },
        }
    }
}
