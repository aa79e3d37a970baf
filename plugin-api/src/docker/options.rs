//! The `Options` bag Docker attaches to CreateNetwork, CreateEndpoint, Join and
//! ProgramExternalConnectivity, and typed decoders for the keys netd acts on
//! (generic `-o` options, port maps, exposed ports, flags). The bag stays a JSON map only
//! at the wire; backends call these decoders and work with typed values.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::de;

/// `docker network create -o k=v` map (values are strings).
pub const GENERIC: &str = "com.docker.network.generic";
/// `--ipv6` (bool).
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// `--ipv4` (bool, 28.0+).
pub const ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
/// `--internal` (bool, only sent when true).
pub const INTERNAL: &str = "com.docker.network.internal";
/// Published ports (CreateEndpoint, Join, ProgramExternalConnectivity).
pub const PORTMAP: &str = "com.docker.network.portmap";
/// Exposed ports (same places as [`PORTMAP`]).
pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
/// User `--mac-address`, base64 of the bytes; prefer `Interface.MacAddress`.
pub const ENDPOINT_MAC: &str = "com.docker.network.endpoint.macaddress";
/// `--dns` servers given to the endpoint (list of strings).
pub const DNS_SERVERS: &str = "com.docker.network.endpoint.dnsservers";
/// Requested interface name (`--driver-opt`).
pub const ENDPOINT_IFNAME: &str = "com.docker.network.endpoint.ifname";
/// 28.x+: set on ProgramExternalConnectivity when another endpoint is the IPv6 gateway.
pub const NO_PROXY_6TO4: &str = "com.docker.network.driver.private.no_proxy_6to4";

/// Bridge driver keys found inside the [`GENERIC`] map.
pub mod bridge {
    pub const NAME: &str = "com.docker.network.bridge.name";
    pub const ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";
    pub const ENABLE_IP_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
    pub const HOST_BINDING_IPV4: &str = "com.docker.network.bridge.host_binding_ipv4";
    pub const DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
    pub const MTU: &str = "com.docker.network.driver.mtu";
    pub const INHIBIT_IPV4: &str = "com.docker.network.bridge.inhibit_ipv4";
    pub const GATEWAY_MODE_IPV4: &str = "com.docker.network.bridge.gateway_mode_ipv4";
    pub const GATEWAY_MODE_IPV6: &str = "com.docker.network.bridge.gateway_mode_ipv6";
    pub const CONTAINER_IFACE_PREFIX: &str = "com.docker.network.container_iface_prefix";
}

/// IPAM `RequestAddress` option keys.
pub mod ipam {
    /// Key whose value [`GATEWAY_TYPE`] marks a gateway reservation.
    pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
    pub const GATEWAY_TYPE: &str = "com.docker.network.gateway";
    /// Container name (29.x).
    pub const ENDPOINT_NAME: &str = "com.docker.network.endpoint.name";
    /// MAC (`aa:bb:..`) when the driver advertises `RequiresMACAddress`.
    pub const MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";
    /// RequestPool answer `Data` key: use this CIDR as gateway without a RequestAddress.
    pub const POOL_GATEWAY: &str = "com.docker.network.gateway";
}

/// A driver option value that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option {key}: {reason}")]
pub struct OptionError {
    pub key: String,
    pub reason: String,
}

impl OptionError {
    fn new(key: &str, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Docker's `Options` map: string keys, arbitrary JSON values; `null` reads as empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct DriverOptions(pub BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for DriverOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::null_default(d).map(Self)
    }
}

impl DriverOptions {
    /// Raw value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A string-valued key (`None` if absent or not a string).
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The `-o k=v` driver options ([`GENERIC`]); absent or `null` is empty. Scalar
    /// non-string values are stringified as Go would have them; nested values are refused.
    pub fn generic(&self) -> Result<BTreeMap<String, String>, OptionError> {
        match self.0.get(GENERIC) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    de::scalar_to_string(v)
                        .map(|s| (k.clone(), s))
                        .ok_or_else(|| {
                            OptionError::new(GENERIC, format!("{k}: expected a string, got {v}"))
                        })
                })
                .collect(),
            Some(v) => Err(OptionError::new(
                GENERIC,
                format!("expected a map, got {v}"),
            )),
        }
    }

    /// A boolean flag: JSON bool or the strings `true`/`false`/`1`/`0`; absent or `null` is
    /// `None`.
    pub fn flag(&self, key: &str) -> Result<Option<bool>, OptionError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => parse_bool(s)
                .map(Some)
                .ok_or_else(|| OptionError::new(key, format!("expected a boolean, got {s:?}"))),
            Some(v) => Err(OptionError::new(
                key,
                format!("expected a boolean, got {v}"),
            )),
        }
    }

    /// [`ENABLE_IPV6`], default false.
    pub fn enable_ipv6(&self) -> Result<bool, OptionError> {
        Ok(self.flag(ENABLE_IPV6)?.unwrap_or(false))
    }

    /// [`INTERNAL`], default false.
    pub fn internal(&self) -> Result<bool, OptionError> {
        Ok(self.flag(INTERNAL)?.unwrap_or(false))
    }

    /// [`ENABLE_IPV4`], default true (pre-28 engines do not send it).
    pub fn enable_ipv4(&self) -> Result<bool, OptionError> {
        Ok(self.flag(ENABLE_IPV4)?.unwrap_or(true))
    }

    /// Decodes [`PORTMAP`]; absent or `null` is empty.
    pub fn port_map(&self) -> Result<Vec<PortBinding>, OptionError> {
        let wires: Vec<PortBindingWire> = self.list(PORTMAP)?;
        wires
            .into_iter()
            .map(|w| PortBinding::from_wire(w).map_err(|r| OptionError::new(PORTMAP, r)))
            .collect()
    }

    /// Decodes [`EXPOSED_PORTS`]; absent or `null` is empty.
    pub fn exposed_ports(&self) -> Result<Vec<ExposedPort>, OptionError> {
        let wires: Vec<ExposedPortWire> = self.list(EXPOSED_PORTS)?;
        wires
            .into_iter()
            .map(|w| {
                Ok(ExposedPort {
                    proto: Protocol::from_number(w.proto)
                        .map_err(|r| OptionError::new(EXPOSED_PORTS, r))?,
                    port: w.port,
                })
            })
            .collect()
    }

    /// Decodes [`DNS_SERVERS`] (list of address strings); absent is empty.
    pub fn dns_servers(&self) -> Result<Vec<IpAddr>, OptionError> {
        let raw: Vec<String> = self.list(DNS_SERVERS)?;
        raw.iter()
            .map(|s| de::parse_ip_or_cidr(s).map_err(|r| OptionError::new(DNS_SERVERS, r)))
            .collect()
    }

    fn list<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Vec<T>, OptionError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| OptionError::new(key, e.to_string()))
            }
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "t" | "yes" => Some(true),
        "false" | "0" | "f" | "no" | "" => Some(false),
        _ => None,
    }
}

/// Transport protocol of a port mapping (libnetwork uses IP protocol numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// From the IP protocol number Docker sends (6, 17, 132).
    pub fn from_number(n: i64) -> Result<Self, String> {
        match n {
            6 => Ok(Self::Tcp),
            17 => Ok(Self::Udp),
            132 => Ok(Self::Sctp),
            other => Err(format!("unsupported protocol number {other}")),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize)]
struct PortBindingWire {
    #[serde(rename = "Proto", default)]
    proto: i64,
    #[serde(rename = "IP", default, deserialize_with = "de::opt_ip")]
    ip: Option<IpAddr>,
    #[serde(rename = "Port", default)]
    port: u16,
    #[serde(rename = "HostIP", default, deserialize_with = "de::opt_ip")]
    host_ip: Option<IpAddr>,
    #[serde(rename = "HostPort", default)]
    host_port: u16,
    #[serde(rename = "HostPortEnd", default)]
    host_port_end: u16,
}

#[derive(Deserialize)]
struct ExposedPortWire {
    #[serde(rename = "Proto", default)]
    proto: i64,
    #[serde(rename = "Port", default)]
    port: u16,
}

/// One published port (`-p [HostIP:]HostPort[-HostPortEnd]:Port/proto`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortBinding {
    pub proto: Protocol,
    /// Container address (usually unset: the endpoint's address is meant).
    pub container_ip: Option<IpAddr>,
    pub container_port: u16,
    /// `None` = all addresses of both families.
    pub host_ip: Option<IpAddr>,
    /// 0 = pick an ephemeral port.
    pub host_port: u16,
    /// Upper end of the host port range; equal to `host_port` when not a range.
    pub host_port_end: u16,
}

impl PortBinding {
    fn from_wire(w: PortBindingWire) -> Result<Self, String> {
        let proto = Protocol::from_number(w.proto)?;
        if w.port == 0 {
            return Err("container port 0".into());
        }
        // Docker sends HostPortEnd == HostPort (or 0) for a single port.
        let end = if w.host_port_end == 0 {
            w.host_port
        } else {
            w.host_port_end
        };
        if end < w.host_port {
            return Err(format!(
                "host port range {}-{} is reversed",
                w.host_port, w.host_port_end
            ));
        }
        if w.host_port == 0 && end != 0 {
            return Err(format!("host port range 0-{end} has no start"));
        }
        Ok(Self {
            proto,
            container_ip: w.ip,
            container_port: w.port,
            host_ip: w.host_ip,
            host_port: w.host_port,
            host_port_end: end,
        })
    }

    /// True when the host port is a range of more than one port.
    pub fn is_range(&self) -> bool {
        self.host_port_end > self.host_port
    }
}

/// One exposed (not necessarily published) container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExposedPort {
    pub proto: Protocol,
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> DriverOptions {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn portmap_decodes_all_protocols_and_ranges() {
        let o = opts(json!({PORTMAP: [
            {"Proto": 6, "IP": "", "Port": 80, "HostIP": "0.0.0.0", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 17, "IP": "", "Port": 53, "HostIP": "", "HostPort": 0, "HostPortEnd": 0},
            {"Proto": 132, "Port": 9, "HostIP": "::1", "HostPort": 9000, "HostPortEnd": 9010}
        ]}));
        let p = o.port_map().unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].proto, Protocol::Tcp);
        assert_eq!(p[0].host_ip, Some("0.0.0.0".parse().unwrap()));
        assert_eq!((p[0].host_port, p[0].host_port_end), (8080, 8080));
        assert!(!p[0].is_range());
        assert_eq!(p[1].proto, Protocol::Udp);
        assert_eq!(p[1].host_ip, None);
        assert_eq!((p[1].host_port, p[1].host_port_end), (0, 0));
        assert_eq!(p[2].proto, Protocol::Sctp);
        assert!(p[2].is_range());
        assert_eq!(p[2].host_ip, Some("::1".parse().unwrap()));
    }

    #[test]
    fn portmap_rejects_bad_entries() {
        for bad in [
            json!([{"Proto": 1, "Port": 80}]),
            json!([{"Proto": 6, "Port": 0}]),
            json!([{"Proto": 6, "Port": 80, "HostPort": 90, "HostPortEnd": 85}]),
            json!([{"Proto": 6, "Port": 80, "HostIP": "nope"}]),
            json!({"Proto": 6}),
        ] {
            let err = opts(json!({ PORTMAP: bad })).port_map().unwrap_err();
            assert_eq!(err.key, PORTMAP);
        }
        assert!(opts(json!({ PORTMAP: null }))
            .port_map()
            .unwrap()
            .is_empty());
        assert!(DriverOptions::default().port_map().unwrap().is_empty());
    }

    #[test]
    fn exposed_ports_and_dns() {
        let o = opts(
            json!({EXPOSED_PORTS: [{"Proto": 6, "Port": 80}, {"Proto": 17, "Port": 53}],
                            DNS_SERVERS: ["8.8.8.8", "2001:db8::1"]}),
        );
        assert_eq!(
            o.exposed_ports().unwrap(),
            vec![
                ExposedPort {
                    proto: Protocol::Tcp,
                    port: 80
                },
                ExposedPort {
                    proto: Protocol::Udp,
                    port: 53
                }
            ]
        );
        assert_eq!(o.dns_servers().unwrap().len(), 2);
    }

    #[test]
    fn generic_and_flags() {
        let o = opts(json!({
            GENERIC: {bridge::NAME: "br-x", bridge::MTU: 1400, "k": true},
            ENABLE_IPV6: true, INTERNAL: "false"
        }));
        let g = o.generic().unwrap();
        assert_eq!(g[bridge::NAME], "br-x");
        assert_eq!(g[bridge::MTU], "1400");
        assert_eq!(g["k"], "true");
        assert!(o.enable_ipv6().unwrap());
        assert!(!o.internal().unwrap());
        assert!(o.enable_ipv4().unwrap());
        assert!(opts(json!({GENERIC: {"k": {"x": 1}}})).generic().is_err());
        assert!(opts(json!({GENERIC: "x"})).generic().is_err());
        assert!(opts(json!({INTERNAL: "maybe"})).internal().is_err());
        assert!(opts(json!(null)).generic().unwrap().is_empty());
    }
}
