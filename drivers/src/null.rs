//! The `null` driver (`none` network); see [`crate::trivial`].
pub use crate::trivial::NullDriver;
