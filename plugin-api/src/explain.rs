//! The JSON types of netd's `GET /explain` answer, shared by the daemon (which
//! serializes them) and `netctl explain` (which deserializes them), so the two sides
//! cannot drift. Every struct field defaults, so an older or newer peer still parses.

use serde::{Deserialize, Serialize};

/// A process, as explain reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcRef {
    pub pid: u32,
    pub command: String,
    pub cmdline: String,
}

/// A container a sandbox belongs to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerRef {
    /// `netd` (netd's runtime), `docker` or `cni`.
    pub runtime: String,
    pub id: String,
    pub name: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxRef {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub netns_path: String,
    pub container: Option<ContainerRef>,
    /// Processes living in the sandbox's namespace (a few).
    pub processes: Vec<ProcRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointHolder {
    pub id: String,
    pub name: String,
    pub addresses: Vec<String>,
    pub sandbox: Option<SandboxRef>,
}

/// Answer to `?network=N`: can `network rm N` succeed, and what holds it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkExplain {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub owner: String,
    pub removable: bool,
    /// Why not (empty when removable).
    pub reasons: Vec<String>,
    pub endpoints: Vec<EndpointHolder>,
    /// Commands that would make the removal succeed.
    pub fixes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PortPublisher {
    pub proto: String,
    pub host_ip: String,
    pub host_port: u16,
    pub container_ip: String,
    pub container_port: u16,
    pub network_id: String,
    pub network_name: String,
    pub endpoint_id: String,
    pub endpoint_name: String,
    pub sandbox: Option<SandboxRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HostSocket {
    pub proto: String,
    pub local_ip: String,
    pub local_port: u16,
    pub state: String,
    pub uid: u32,
    pub inode: u64,
    pub processes: Vec<ProcRef>,
    /// The socket is netd's own (its userland proxy or port reservation).
    pub netd: bool,
}

/// Answer to `?port=[IP:]PORT[/PROTO]`: who holds a host port.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PortExplain {
    pub port: u16,
    pub proto: String,
    pub host_ip: Option<String>,
    pub published: Vec<PortPublisher>,
    pub sockets: Vec<HostSocket>,
    pub free: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkOverlap {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub owner: String,
    pub subnet: String,
    pub endpoints: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PoolOverlap {
    pub id: String,
    pub subnet: String,
    pub allocated: String,
    pub capacity: String,
    /// The netd network using the pool, if any.
    pub network: Option<String>,
}

/// A host route overlapping the subnet asked about.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteOverlap {
    /// Destination CIDR.
    pub dst: String,
    pub dev: Option<String>,
    /// `unicast`, `local`, `unreachable`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub table: String,
    pub protocol: Option<String>,
    pub gateway: Option<String>,
    /// The netd network whose bridge carries the route.
    pub netd_network: Option<String>,
}

/// Answer to `?subnet=CIDR`: what overlaps it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SubnetExplain {
    pub subnet: String,
    pub networks: Vec<NetworkOverlap>,
    pub pools: Vec<PoolOverlap>,
    /// `--default-address-pool`s netd carves networks from that overlap (informational).
    pub default_pools: Vec<String>,
    pub host_routes: Vec<RouteOverlap>,
    /// No netd network, pool or host route overlaps.
    pub free: bool,
}

/// The whole answer, tagged by `kind`: `network`, `port` or `subnet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Explanation {
    Network(NetworkExplain),
    Port(PortExplain),
    Subnet(SubnetExplain),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_overlap_wire_names() {
        let r = RouteOverlap {
            dst: "10.0.0.0/8".into(),
            kind: "unicast".into(),
            table: "main".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(Explanation::Subnet(SubnetExplain {
            host_routes: vec![r],
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(v["kind"], "subnet");
        assert_eq!(v["host_routes"][0]["type"], "unicast");
        assert!(v["host_routes"][0].get("kind").is_none());
        let back: Explanation = serde_json::from_value(v).unwrap();
        assert!(matches!(back, Explanation::Subnet(s) if s.host_routes[0].kind == "unicast"));
    }
}
