//! netd's userland port proxy: what `docker-proxy` does, but one process and one tokio
//! runtime for every published port, with a zero-copy TCP relay.
//!
//! The library knows nothing of networks or endpoints: the daemon says "listen here,
//! forward there".
//!
//! # API summary
//!
//! ```no_run
//! use proxy::{Proto, Proxy, ProxyConfig, ProxySpec};
//! # async fn demo() -> Result<(), proxy::ProxyError> {
//! let proxy = Proxy::new(ProxyConfig::default())?;           // on the current runtime
//! let handle = proxy.add(ProxySpec {
//!     proto: Proto::Tcp,
//!     listen: "0.0.0.0:8080".parse().unwrap(),
//!     target: "172.17.0.2:80".parse().unwrap(),
//! })?;                                                         // bound when this returns
//! println!("{:?}", handle.stats());                            // per-listener counters
//! handle.remove().await;                                       // port free again
//! # Ok(()) }
//! ```
//!
//! - [`Proxy::new`] / [`Proxy::with_runtime`]: one per process; holds [`ProxyConfig`]
//!   (UDP idle timeout and flow bound, IP_TRANSPARENT, pipe size, connect timeout).
//! - [`Proxy::add`] binds and starts a listener; bind failures are typed
//!   ([`ProxyError::AddrInUse`], [`ProxyError::PermissionDenied`], ...).
//! - [`Proxy::add_with_listener`] adopts a socket the daemon already bound
//!   ([`StdListener`], also from an inherited fd with [`StdListener::from_fd`]).
//! - [`ProxyHandle`]: dropping it stops the listener and aborts its connections and
//!   flows; [`ProxyHandle::remove`] does the same and waits until the socket is closed.
//! - [`Proxy::stats`] / [`ProxyHandle::stats`]: [`StatsSnapshot`] of atomic counters.
//! - [`cli`]: docker-proxy's command line and fd-3 status protocol, for `netd-proxy`.
//!
//! # Layout
//!
//! - `manager`: `Proxy` and `ProxyHandle`, the task per listener.
//! - `tcp`: accept loop and target dial; `relay`: splice(2) relay with copy fallback
//!   and half-close.
//! - `udp`: flow table (client → connected upstream socket), idle sweep, bound;
//!   `mmsg`: recvmmsg/sendmmsg batches;
//!   `pktinfo`: replies from the address the client wrote to.
//! - `sock`: binding, adopting, IP_TRANSPARENT dial; `stats`, `config`, `error`.
//!
//! # Limits
//!
//! SCTP is not relayed (the `netd-proxy` binary reports it as unsupported). With
//! `transparent`, the target sees the real client address only if the host routes the
//! replies back (TPROXY-style policy routing, which this crate does not install).

#![warn(missing_docs)]

pub mod cli;
mod config;
mod error;
mod manager;
mod mmsg;
mod pktinfo;
mod relay;
mod sock;
mod stats;
mod tcp;
mod udp;

pub use config::{Proto, ProxyConfig, ProxySpec, UdpOverflow};
pub use error::ProxyError;
pub use manager::{Proxy, ProxyHandle};
pub use sock::StdListener;
pub use stats::{Stats, StatsSnapshot};
