//! Wire protocols of netd's faces, with no knowledge of the daemon:
//! - [`rest`]: the JSON types of netd's own REST API (used by `netctl` and `netd-cni`).
//! - [`docker`]: Docker's remote network-driver and IPAM plugin protocol, and an axum
//!   router that calls a backend trait the daemon implements.
//! - [`cni`]: CNI configuration parsing and validation, result types and version
//!   conversion, error codes; the `netd-cni` binary is a thin client of netd's socket.
//! - [`explain`]: the JSON types of netd's `GET /explain` answer (used by `netctl explain`).

pub mod cni;
pub mod docker;
pub mod explain;
pub mod rest;
