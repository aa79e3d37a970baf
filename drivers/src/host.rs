//! The `host` driver; see [`crate::trivial`].
pub use crate::trivial::HostDriver;
