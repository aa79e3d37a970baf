//! CNI error codes and the error JSON a plugin prints on stdout (`{"cniVersion", "code",
//! "msg", "details"}`). Codes 0-99 are the spec's; netd uses 999 for failures that have no
//! spec code, as libcni does.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A CNI error: what `netd-cni` prints and what the daemon maps its failures to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    /// Incompatible CNI version (unsupported `cniVersion`, or a verb the version lacks).
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A config field has a value netd does not support (message names key and value).
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid or missing environment variable (message names it).
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure (reading stdin).
    pub const IO_FAILURE: u32 = 5;
    /// Decode failure: stdin is not JSON, or `cniVersion` is not a version string.
    pub const DECODE_FAILURE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_CONFIG: u32 = 7;
    /// Invalid network namespace.
    pub const INVALID_NETNS: u32 = 8;
    /// Transient failure (netd not reachable, busy): try again later.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may be degraded.
    pub const NOT_AVAILABLE_DEGRADED: u32 = 51;
    /// Failure with no spec code (as libcni's ErrInternal).
    pub const INTERNAL: u32 = 999;

    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    pub fn invalid_env(msg: impl Into<String>) -> Self {
        Self::new(Self::INVALID_ENV, msg)
    }

    pub fn invalid_config(msg: impl Into<String>) -> Self {
        Self::new(Self::INVALID_CONFIG, msg)
    }

    pub fn decode(msg: impl Into<String>) -> Self {
        Self::new(Self::DECODE_FAILURE, msg)
    }

    pub fn unsupported_field(msg: impl Into<String>) -> Self {
        Self::new(Self::UNSUPPORTED_FIELD, msg)
    }

    pub fn incompatible_version(msg: impl Into<String>) -> Self {
        Self::new(Self::INCOMPATIBLE_VERSION, msg)
    }

    /// The JSON printed on stdout, tagged with the request's `cniVersion`.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut v = json!({"cniVersion": cni_version, "code": self.code, "msg": self.msg});
        if !self.details.is_empty() {
            v["details"] = Value::String(self.details.clone());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = CniError::invalid_config("bad").with_details("x");
        assert_eq!(
            e.to_json("1.0.0"),
            json!({"cniVersion": "1.0.0", "code": 7, "msg": "bad", "details": "x"})
        );
        assert_eq!(
            CniError::new(11, "later").to_json("0.4.0"),
            json!({"cniVersion": "0.4.0", "code": 11, "msg": "later"})
        );
        assert_eq!(e.to_string(), "CNI error 7: bad (x)");
    }
}
