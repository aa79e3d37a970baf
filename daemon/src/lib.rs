//! netd's daemon: the CNM controller, its store, the REST API and the wiring.
//!
//! - [`store`]: the `Store` contract and the embedded redb store.
//! - [`model`]: the stored records (networks, endpoints, sandboxes).
//! - [`controller`]: every operation, validate → persist → act → commit, with rollback.
//! - [`kernel`]: the few calls into `drivers`' sandbox layer (namespaces, interfaces, routes).
//! - [`api`]: the REST API on the unix socket.
//! - [`wiring`]: picks the real driver implementations.

pub mod api;
pub mod attach;
pub mod background;
pub mod cni;
pub mod containers;
pub mod controller;
pub mod dns;
pub mod docker;
pub mod error;
pub mod explain;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod store;
pub mod wiring;
