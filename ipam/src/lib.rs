//! IP address management for netd: address spaces, pools, and address allocation.
//!
//! This crate is pure logic. It does no I/O, spawns nothing and persists nothing: the daemon
//! serializes [`Ipam`] (serde) into its store after each change and deserializes it at start.
//!
//! # Model (Docker's libnetwork default IPAM)
//!
//! - Two [`AddressSpace`]s, `local` and `global`, each with its own pools. Pools may not overlap
//!   within a space ([`IpamError::PoolOverlap`] names the pool in the way).
//! - A pool is an explicit subnet, or the first free subnet of the space's [`DefaultPool`]s
//!   (Docker's: 172.17–31.0.0/16 as /16s, then 192.168.0.0/16 as /20s for `local`; 10.0.0.0/8
//!   as /24s for `global`; replaceable, parsed from dockerd's `base=…,size=…` syntax). Candidate
//!   subnets are computed, never listed, and whole existing pools are skipped at once.
//! - A pool may have an `ip_range` (where next-free addresses come from), a gateway and named
//!   auxiliary addresses; the gateway and auxiliary addresses are reserved at creation.
//! - Addresses are handed out round robin from a cursor (see `pool.rs`), or exactly as asked.
//!   The network address, the IPv4 broadcast and the IPv6 subnet-router anycast address are
//!   never handed out.
//! - Pools are identified by [`PoolId`], written `SPACE/SUBNET` (`local/172.18.0.0/16`).
//!
//! # Layout
//!
//! - `ipam.rs`: [`Ipam`], the facade the daemon calls.
//! - `request.rs`: [`PoolRequest`], what a pool creation asks for.
//! - `pool.rs`: one pool: validation, reservations, allocation, serialized form; [`PoolId`],
//!   [`PoolInfo`].
//! - `space.rs`: [`AddressSpace`] and the per-space, overlap-free pool map.
//! - `defaults.rs`: [`DefaultPool`] and the lazy search for a free default subnet.
//! - `intervals.rs`: the run-length set of allocated addresses (a `BTreeMap<start, end>`).
//! - `addr.rs`: `IpAddr` ⇄ `u128` arithmetic shared by both families.
//! - `error.rs`: [`IpamError`].
//!
//! # Performance
//!
//! Allocation state is a set of coalesced runs, so memory and the serialized form grow with
//! the number of *runs* of allocated addresses, not with the pool size: a /8 or a /64 costs the
//! same as a /24. Requesting (next free or specific) and releasing an address are O(log n) in
//! the number of runs. `cargo bench -p ipam` measures it.
//!
//! # Example
//!
//! ```
//! use ipam::{AddressSpace, Ipam, PoolRequest};
//!
//! let mut ipam = Ipam::new();
//! let pool = ipam
//!     .request_pool(&PoolRequest::any(AddressSpace::Local).with_auto_gateway())
//!     .unwrap();
//! assert_eq!(pool.to_string(), "local/172.17.0.0/16");
//! assert_eq!(ipam.gateway(&pool).unwrap(), Some("172.17.0.1".parse().unwrap()));
//! let addr = ipam.request_address(&pool, None).unwrap();
//! assert_eq!(addr, "172.17.0.2".parse::<std::net::IpAddr>().unwrap());
//!
//! let saved = serde_json::to_string(&ipam).unwrap();
//! let restored: Ipam = serde_json::from_str(&saved).unwrap();
//! assert_eq!(restored, ipam);
//! ```

#![warn(missing_docs, clippy::dbg_macro, clippy::print_stdout)]

mod addr;
mod defaults;
mod error;
mod intervals;
mod ipam;
mod pool;
mod request;
mod space;

pub use defaults::DefaultPool;
pub use error::{IpamError, Reserved};
pub use ipam::Ipam;
pub use pool::{PoolId, PoolInfo};
pub use request::PoolRequest;
pub use space::AddressSpace;
