//! The CNI environment: the command verb, container id / interface name / network name
//! checks (libcni's rules), and `CNI_ARGS` (`K=V;K=V`, unknown keys refused unless
//! `IgnoreUnknown` is true, as the Go `types.LoadArgs` used by the reference plugins does).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::error::CniError;

/// A CNI verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    /// From `CNI_COMMAND`; unknown ⇒ code 4.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        match s {
            "ADD" => Ok(Self::Add),
            "DEL" => Ok(Self::Del),
            "CHECK" => Ok(Self::Check),
            "GC" => Ok(Self::Gc),
            "STATUS" => Ok(Self::Status),
            "VERSION" => Ok(Self::Version),
            other => Err(CniError::invalid_env(format!(
                "unknown CNI_COMMAND {other:?} (expected ADD, DEL, CHECK, GC, STATUS or VERSION)"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Gc => "GC",
            Self::Status => "STATUS",
            Self::Version => "VERSION",
        }
    }
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, the shared rule for container ids and network names.
fn id_like(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `CNI_CONTAINERID` check (code 4).
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    if id.is_empty() {
        return Err(CniError::invalid_env("CNI_CONTAINERID is empty"));
    }
    if !id_like(id) {
        return Err(CniError::invalid_env(format!(
            "CNI_CONTAINERID {id:?} is invalid: must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"
        )));
    }
    Ok(())
}

/// Interface name rule (≤15 bytes, not `.`/`..`, no `/`, `:` or whitespace). Returns the
/// reason on failure; the caller picks the code (4 for `CNI_IFNAME`, 7 for config keys).
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 15 {
        return Err(format!("is longer than 15 bytes ({})", name.len()));
    }
    if name == "." || name == ".." {
        return Err("may not be '.' or '..'".into());
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        return Err("may not contain '/', ':', NUL or whitespace".into());
    }
    Ok(())
}

/// `CNI_IFNAME` check (code 4).
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    check_ifname(name)
        .map_err(|r| CniError::invalid_env(format!("CNI_IFNAME {name:?} is invalid: it {r}")))
}

/// Network `name` check (code 7).
pub fn validate_network_name(name: &str) -> Result<(), CniError> {
    if name.is_empty() {
        return Err(CniError::invalid_config("network name is missing"));
    }
    if !id_like(name) {
        return Err(CniError::invalid_config(format!(
            "network name {name:?} is invalid: must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"
        )));
    }
    Ok(())
}

/// Parses and normalises a MAC (`aa:bb:cc:dd:ee:ff`, `-` separators accepted) to lowercase
/// colon form.
pub fn parse_mac(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6
        || parts
            .iter()
            .any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!("invalid MAC address {s:?}"));
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

/// Parses `"ip"` or `"ip/len"` to the address.
pub(crate) fn parse_ip_loose(s: &str) -> Result<IpAddr, String> {
    let a = s.split_once('/').map_or(s, |(a, _)| a);
    a.trim()
        .parse()
        .map_err(|_| format!("invalid IP address {s:?}"))
}

/// Parsed `CNI_ARGS`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub ignore_unknown: bool,
    /// `IP=` (comma-separated list accepted).
    pub ips: Vec<IpAddr>,
    /// `MAC=`, normalised.
    pub mac: Option<String>,
    pub k8s_pod_name: Option<String>,
    pub k8s_pod_namespace: Option<String>,
    pub k8s_pod_infra_container_id: Option<String>,
    pub k8s_pod_uid: Option<String>,
    /// Unknown keys kept when `IgnoreUnknown` allowed them.
    pub other: BTreeMap<String, String>,
}

fn parse_bool_arg(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

impl CniArgs {
    /// Parses `K=V;K=V` (empty pairs skipped). Errors are code 4 and name the key.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        let err = |m: String| CniError::invalid_env(format!("CNI_ARGS: {m}"));
        let mut pairs = Vec::new();
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(err(format!("invalid pair {pair:?} (expected KEY=VALUE)")));
            };
            if k.is_empty() {
                return Err(err(format!("invalid pair {pair:?} (empty key)")));
            }
            pairs.push((k, v));
        }
        let mut out = Self::default();
        // IgnoreUnknown applies wherever it appears in the list.
        for (k, v) in &pairs {
            if *k == "IgnoreUnknown" {
                out.ignore_unknown = parse_bool_arg(v)
                    .ok_or_else(|| err(format!("IgnoreUnknown={v:?} is not a boolean")))?;
            }
        }
        for (k, v) in pairs {
            let v = v.to_string();
            match k {
                "IgnoreUnknown" => {}
                "IP" => {
                    out.ips = v
                        .split(',')
                        .map(|s| parse_ip_loose(s).map_err(|e| err(format!("IP: {e}"))))
                        .collect::<Result<_, _>>()?;
                }
                "MAC" => out.mac = Some(parse_mac(&v).map_err(|e| err(format!("MAC: {e}")))?),
                "K8S_POD_NAME" => out.k8s_pod_name = Some(v),
                "K8S_POD_NAMESPACE" => out.k8s_pod_namespace = Some(v),
                "K8S_POD_INFRA_CONTAINER_ID" => out.k8s_pod_infra_container_id = Some(v),
                "K8S_POD_UID" => out.k8s_pod_uid = Some(v),
                other if out.ignore_unknown => {
                    out.other.insert(other.to_string(), v);
                }
                other => {
                    return Err(err(format!(
                        "unknown key {other:?} (set IgnoreUnknown=1 to allow unknown keys)"
                    )))
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_and_ifnames() {
        for ok in ["a", "abc-123_x.y", "0123456789abcdef"] {
            validate_container_id(ok).unwrap();
        }
        for bad in ["", "-a", "_a", "a b", "a/b", "ä"] {
            assert_eq!(validate_container_id(bad).unwrap_err().code, 4, "{bad}");
        }
        for ok in ["eth0", "net1", "a.b-c_d", "123456789012345"] {
            validate_ifname(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "1234567890123456",
            "eth\t",
        ] {
            assert_eq!(validate_ifname(bad).unwrap_err().code, 4, "{bad}");
        }
        assert_eq!(validate_network_name("").unwrap_err().code, 7);
        assert_eq!(validate_network_name("my net").unwrap_err().code, 7);
    }

    #[test]
    fn cni_args() {
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default;IP=10.0.0.5;MAC=AA-bb-cc-dd-ee-ff;FOO=bar",
        )
        .unwrap();
        assert!(a.ignore_unknown);
        assert_eq!(a.k8s_pod_name.as_deref(), Some("web"));
        assert_eq!(a.ips, vec!["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.mac.as_deref(), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(a.other["FOO"], "bar");
        // IgnoreUnknown after the unknown key still counts.
        assert!(CniArgs::parse("FOO=bar;IgnoreUnknown=true").is_ok());
        let e = CniArgs::parse("FOO=bar").unwrap_err();
        assert_eq!(e.code, 4);
        assert!(e.msg.contains("FOO"), "{}", e.msg);
        assert_eq!(CniArgs::parse("IgnoreUnknown=0;FOO=1").unwrap_err().code, 4);
        assert_eq!(CniArgs::parse("IgnoreUnknown=maybe").unwrap_err().code, 4);
        assert_eq!(CniArgs::parse("IP").unwrap_err().code, 4);
        assert_eq!(CniArgs::parse("=x").unwrap_err().code, 4);
        assert_eq!(CniArgs::parse("IP=300.0.0.1").unwrap_err().code, 4);
        assert_eq!(CniArgs::parse("MAC=zz").unwrap_err().code, 4);
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
        assert_eq!(
            CniArgs::parse("IP=10.0.0.1,fd00::1/64;").unwrap().ips.len(),
            2
        );
        assert_eq!(
            CniArgs::parse("K8S_POD_UID=a=b")
                .unwrap()
                .k8s_pod_uid
                .as_deref(),
            Some("a=b")
        );
    }
}
