//! netd's embedded DNS resolver: the server behind `127.0.0.11` in every container sandbox,
//! with Docker's embedded-DNS semantics.
//!
//! # Layout
//!
//! * [`Table`] / [`TableBuilder`] (`table.rs`): pure data, no I/O. Per network: names
//!   (container name, aliases, 12-hex short id) → addresses, a reverse map for PTR, subnets.
//!   Per sandbox: the networks it is attached to and its own upstreams. A persistent value:
//!   the daemon changes its table record by record and hands the resolver a copy, which
//!   shares structure, so a change costs the same with 10 or 1,000 containers. The lookup
//!   rules are on [`Table::lookup`].
//! * [`Resolver`] (`server.rs`): one per daemon, shared by all sandboxes. Holds the table in an
//!   `ArcSwap` ([`Resolver::set_table`] swaps in a new copy, effective for the next query), the
//!   answer cache (`cache.rs`), the forwarder (`forward.rs`) and the [`Stats`] counters.
//! * [`SandboxServer`]: the UDP and TCP listeners of one sandbox, started with
//!   [`Resolver::serve_sandbox`] on sockets the daemon bound inside the sandbox's netns. All
//!   queries arrive from 127.0.0.1, so the *socket* identifies the sandbox: each server
//!   carries its sandbox id. Dropping the handle stops the listeners.
//! * `handler.rs`: one packet in, one packet out (parse with hickory-proto, table, cache, or a
//!   forwarding job). [`parse_resolv_conf`] reads the host's resolv.conf for default upstreams.
//!
//! # Why not `hickory_server::Server`
//!
//! hickory-server's `RequestHandler` re-emits every answer through its response machinery and
//! spawns per request; for this job (a hash lookup per query) a hand-written loop that parses
//! with hickory-proto and answers inline is leaner, and it lets us relay the upstream answer
//! with our own truncation and caching rules. TCP is served by the same handler.
//!
//! # Semantics in short
//!
//! * Local names: case-insensitive, trailing dot optional, only in the querying sandbox's
//!   networks; `name.network` is accepted. A/AAAA/ANY → addresses (all containers sharing an
//!   alias, rotated per query); a known name without the asked type → NOERROR/NODATA.
//! * PTR for container addresses on the sandbox's networks → `container.network.`; unknown
//!   addresses inside those networks' subnets → NXDOMAIN locally.
//! * Everything else (single-label names too) is forwarded: to the sandbox's upstreams, else
//!   the table's defaults, else [`ResolverConfig::upstreams`]; upstreams in order within a
//!   total budget ([`ResolverConfig::timeout`], 2 s); TC from upstream → retry over TCP;
//!   SERVFAIL/REFUSED/timeouts fall through to the next upstream; nothing usable → SERVFAIL.
//! * Answers too big for the client's UDP limit (512 or its EDNS size, at most 4096) are sent
//!   with TC and no records so the client retries over TCP.
//! * Cache: keyed by lower-case name, type, class; positive TTL = min TTL of the answers;
//!   negative (NXDOMAIN/NODATA) = min(SOA TTL, SOA minimum), RFC 2308; capped; bounded size.
//! * Robustness: packets shorter than a header and responses are dropped; unparsable queries
//!   get FORMERR, other opcodes NOTIMP; forwards in flight are bounded (SERVFAIL beyond).
//!
//! # Example
//!
//! ```no_run
//! use resolver::{Resolver, ResolverConfig, Table};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let resolver = Resolver::new(ResolverConfig {
//!     upstreams: vec!["192.0.2.53:53".parse()?],
//!     ..Default::default()
//! });
//! let mut b = Table::builder();
//! b.add_endpoint("net1", "backend", "db", &["postgres".into()], "0123456789ab",
//!                &["172.18.0.2".parse()?]);
//! b.set_sandbox_scope("sandbox-a", &["net1".into()], &[]);
//! resolver.set_table(b.build());
//! // Sockets bound by the daemon inside the sandbox's netns:
//! let udp = std::net::UdpSocket::bind("127.0.0.11:53")?;
//! let tcp = std::net::TcpListener::bind("127.0.0.11:53")?;
//! let server = resolver.serve_sandbox("sandbox-a", udp, tcp)?;
//! // ... later, when the sandbox goes away:
//! server.stop();
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::dbg_macro, clippy::print_stdout)]

mod cache;
mod forward;
mod handler;
mod names;
mod resolv_conf;
mod server;
mod stats;
mod subnet;
mod table;

pub use forward::ForwardError;
pub use handler::Transport;
pub use names::reverse_name;
pub use resolv_conf::{parse_resolv_conf, ResolvConf};
pub use server::{Resolver, ResolverConfig, SandboxServer};
pub use stats::Stats;
pub use subnet::{Subnet, SubnetError};
pub use table::{Answer, Table, TableBuilder};

/// Re-exported so callers can name record types in [`Table::lookup`].
pub use hickory_proto::rr::RecordType;

/// Errors from starting a sandbox server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolverError {
    /// `serve_sandbox` was called outside a tokio runtime.
    #[error("serve_sandbox must be called from within a tokio runtime")]
    NoRuntime,
    /// Making the sockets non-blocking or registering them failed.
    #[error("socket setup failed: {0}")]
    Io(#[from] std::io::Error),
}
