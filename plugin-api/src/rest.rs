//! JSON types of netd's REST API on its unix socket (default `/run/netd/netd.sock`).
//!
//! Routes (all JSON; errors are [`ErrorBody`] with a 4xx/5xx status):
//! - `GET /version` → [`VersionInfo`]
//! - `POST /networks` [`NetworkCreate`] → [`Network`]; `GET /networks`; `GET|DELETE /networks/{id}`
//! - `POST /networks/{id}/connect` [`NetworkConnect`] → [`Endpoint`];
//!   `POST /networks/{id}/disconnect` [`NetworkDisconnect`]
//! - `POST /sandboxes` [`SandboxCreate`] → [`Sandbox`]; `GET /sandboxes`; `GET|DELETE /sandboxes/{id}`
//! - `GET /endpoints` → `[Endpoint]`
//! - `POST /cni` [`CniCall`] → CNI result JSON (or [`ErrorBody`] with `cni_code`)
//!
//! Every `{id}` accepts a full id, a unique id prefix or a name.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

/// Error body of every failed call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub message: String,
    /// CNI error code, when the failure maps to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_code: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionInfo {
    pub version: String,
    pub api_version: String,
}

/// One IPAM subnet request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct IpamConfig {
    pub subnet: Option<String>,
    #[serde(default)]
    pub ip_range: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: String,
    #[serde(default)]
    pub driver: Option<String>,
    /// Subnets (v4 and/or v6). Empty = one default IPv4 pool (and IPv6 if `ipv6` and configured).
    #[serde(default)]
    pub ipam: Vec<IpamConfig>,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Who created it: "netd" (default), "docker", "cni".
    #[serde(default)]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubnetInfo {
    pub subnet: IpNetwork,
    pub ip_range: Option<IpNetwork>,
    pub gateway: Option<IpAddr>,
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// IPAM pool id.
    pub pool: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnets: Vec<SubnetInfo>,
    pub ipv6: bool,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub owner: String,
    pub created: String,
    /// Endpoint ids on this network.
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub network_name: String,
    pub sandbox_id: Option<String>,
    pub addresses: Vec<IpNetwork>,
    pub mac: Option<String>,
    pub host_ifname: Option<String>,
    /// Interface name inside the sandbox (eth0, eth1, ...).
    pub ifname: Option<String>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortMapping>,
    pub owner: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortMapping {
    /// tcp, udp or sctp.
    pub proto: String,
    /// Host address; `0.0.0.0` or `::` for all.
    pub host_ip: String,
    pub host_port: u16,
    /// For requests: upper end of a host port range (`8000-8010:80`), else 0.
    #[serde(default)]
    pub host_port_end: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SandboxCreate {
    #[serde(default)]
    pub name: Option<String>,
    /// Adopt an existing netns (Docker's SandboxKey, CNI_NETNS) instead of creating one.
    #[serde(default)]
    pub netns_path: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// Networks to connect right away, in order (the first one is the gateway).
    #[serde(default)]
    pub networks: Vec<NetworkConnect>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkConnect {
    /// Sandbox id/name (for `/networks/{id}/connect`), or network id/name (inside `SandboxCreate`).
    pub target: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub ip6: Option<String>,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// Interface name in the sandbox; default eth<N> in join order.
    #[serde(default)]
    pub ifname: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct NetworkDisconnect {
    pub sandbox: String,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sandbox {
    pub id: String,
    pub name: String,
    pub netns_path: String,
    /// Whether netd created (and will remove) the namespace.
    pub owns_netns: bool,
    pub hostname: Option<String>,
    pub dns: Vec<String>,
    pub endpoints: Vec<Endpoint>,
    pub owner: String,
    /// Live kernel view (interfaces, routes), filled by inspect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<serde_json::Value>,
}

/// A CNI invocation forwarded by `netd-cni`: its environment and stdin, untouched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CniCall {
    pub command: String,
    #[serde(default)]
    pub container_id: Option<String>,
    #[serde(default)]
    pub netns: Option<String>,
    #[serde(default)]
    pub ifname: Option<String>,
    #[serde(default)]
    pub args: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    /// The network configuration from stdin (parsed JSON).
    pub config: serde_json::Value,
}

/// Parse a Docker-style `-p` value: `[HOSTIP:]HOSTPORT[-END]:PORT[/tcp|udp|sctp]`, or
/// `PORT[/proto]` alone (an ephemeral host port). IPv6 host addresses go in brackets
/// (`[::1]:8080:80`).
pub fn parse_publish(s: &str) -> Result<PortMapping, String> {
    let bad = |m: &str| format!("invalid port mapping {s:?}: {m}");
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad("protocol must be tcp, udp or sctp"));
    }
    // Split off a bracketed IPv6 host address first.
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':' after ']'"))?;
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| bad("invalid IPv6 address"))?;
        (ip.to_string(), after.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), spec.to_string()),
            3 => {
                let ip = parts[0];
                if !ip.is_empty() {
                    ip.parse::<std::net::Ipv4Addr>()
                        .map_err(|_| bad("invalid host IP"))?;
                }
                (ip.to_string(), format!("{}:{}", parts[1], parts[2]))
            }
            _ => return Err(bad("too many ':'")),
        }
    };
    let port = |p: &str, what: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(&format!("{what} must be 1-65535"))),
            Ok(v) => Ok(v),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest.clone()),
    };
    let container_port = port(&container, "container port")?;
    let (host_port, host_port_end) = if host.is_empty() {
        (0, 0)
    } else if let Some((a, b)) = host.split_once('-') {
        let (a, b) = (port(a, "host port")?, port(b, "host port")?);
        if b < a {
            return Err(bad("host port range is reversed"));
        }
        (a, b)
    } else {
        (port(&host, "host port")?, 0)
    };
    Ok(PortMapping {
        proto,
        host_ip,
        host_port,
        host_port_end,
        container_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(
            (p.host_port, p.container_port, p.proto.as_str()),
            (8080, 80, "tcp")
        );
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!((p.host_ip.as_str(), p.proto.as_str()), ("127.0.0.1", "udp"));
        let p = parse_publish("8000-8010:80").unwrap();
        assert_eq!((p.host_port, p.host_port_end), (8000, 8010));
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = parse_publish("[::1]:8080:80").unwrap();
        assert_eq!(p.host_ip, "::1");
        for bad in [
            "",
            "0:80",
            "80:0",
            "a:80",
            "1.2.3:80:80",
            "8080:80/icmp",
            "9-8:80",
            "[::1:80:80",
            "1:2:3:4",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }
}

/// `POST /containers`: create (and with `detach`, start) a container of netd's runtime.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ContainerCreate {
    #[serde(default)]
    pub name: Option<String>,
    pub rootfs: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Networks in order (first = default route); empty = the default `bridge` network.
    #[serde(default)]
    pub networks: Vec<NetworkConnect>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// Remove the container record when it exits.
    #[serde(default)]
    pub rm: bool,
    /// Start now with output to the container's log file.
    #[serde(default)]
    pub detach: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub rootfs: String,
    pub argv: Vec<String>,
    /// created, running or exited.
    pub state: String,
    pub pid: Option<i32>,
    pub exit_code: Option<i32>,
    pub created: String,
    pub finished: Option<String>,
    pub rm: bool,
    pub log_path: String,
    /// The sandbox while the container runs.
    pub sandbox: Option<Sandbox>,
}

/// A message on the attach socket (`<api socket>.attach`), sent with the caller's
/// stdin, stdout and stderr as SCM_RIGHTS file descriptors.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum AttachRequest {
    /// Start a created container with these fds as its stdio.
    Start { id: String },
    /// Run a command in all namespaces of a running container.
    Exec {
        id: String,
        argv: Vec<String>,
        #[serde(default)]
        env: Vec<String>,
        #[serde(default)]
        cwd: Option<String>,
    },
}

/// Replies on the attach socket, one JSON object per line: `started`, then `exited`
/// (or `error` at any point).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum AttachEvent {
    Started {
        pid: i32,
    },
    /// Exit code; for a signal, 128 + signal number (like a shell).
    Exited {
        code: i32,
    },
    Error {
        message: String,
    },
}
