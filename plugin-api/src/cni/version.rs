//! The CNI spec versions netd speaks (0.3.0 to 1.1.0), what each allows, and the VERSION
//! command's answer. 0.1.0/0.2.0 (flat `ip4`/`ip6` results) are not supported.

use serde_json::{json, Value};

use super::error::CniError;

/// A supported spec version; ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

/// All supported versions, oldest first, as printed by VERSION.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

impl CniVersion {
    pub const LATEST: Self = Self::V1_1_0;
    pub const ALL: [Self; 5] = [
        Self::V0_3_0,
        Self::V0_3_1,
        Self::V0_4_0,
        Self::V1_0_0,
        Self::V1_1_0,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// Parses a `cniVersion`. Not of the form `N.N.N` ⇒ code 6; well-formed but not
    /// supported ⇒ code 1.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        if let Some(v) = Self::ALL.into_iter().find(|v| v.as_str() == s) {
            return Ok(v);
        }
        let parts: Vec<&str> = s.split('.').collect();
        let well_formed = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()));
        if !well_formed {
            return Err(CniError::decode(format!(
                "invalid cniVersion {s:?}: not a version string"
            )));
        }
        Err(CniError::incompatible_version(format!(
            "incompatible CNI versions: config is {s:?}, netd-cni supports {}",
            SUPPORTED_VERSIONS.join(", ")
        )))
    }

    /// 0.3.x/0.4.0 results carry `"version": "4"|"6"` in each `ips` entry.
    pub fn ips_have_version(self) -> bool {
        self < Self::V1_0_0
    }

    /// CHECK exists from 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// GC and STATUS exist from 1.1.0.
    pub fn has_gc_and_status(self) -> bool {
        self >= Self::V1_1_0
    }
}

impl std::fmt::Display for CniVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The VERSION command's output.
pub fn version_output() -> Value {
    json!({"cniVersion": CniVersion::LATEST.as_str(), "supportedVersions": SUPPORTED_VERSIONS})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_codes() {
        for s in SUPPORTED_VERSIONS {
            assert_eq!(CniVersion::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(CniVersion::parse("0.2.0").unwrap_err().code, 1);
        assert_eq!(CniVersion::parse("2.0.0").unwrap_err().code, 1);
        assert_eq!(CniVersion::parse("1.0").unwrap_err().code, 6);
        assert_eq!(CniVersion::parse("").unwrap_err().code, 6);
        assert_eq!(CniVersion::parse("v1.0.0").unwrap_err().code, 6);
        assert!(CniVersion::V0_4_0.has_check() && !CniVersion::V0_3_1.has_check());
        assert!(CniVersion::V1_1_0.has_gc_and_status() && !CniVersion::V1_0_0.has_gc_and_status());
    }
}
