//! The CNM objects as the daemon stores them (serde records, one per store key).

use std::collections::BTreeMap;
use std::net::IpAddr;

use drivers::{EndpointSpec, NetworkSpec, PortBinding, SubnetSpec};
use ipnetwork::IpNetwork;
use plugin_api::rest;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetRec {
    pub pool: ipam::PoolId,
    pub subnet: IpNetwork,
    pub ip_range: Option<IpNetwork>,
    pub gateway: Option<IpAddr>,
    pub aux: BTreeMap<String, IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRec {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnets: Vec<SubnetRec>,
    pub ipv6: bool,
    pub internal: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// "netd", "docker" or "cni".
    pub owner: String,
    pub created: String,
    /// Addresses are allocated by the caller's IPAM (Docker), not by netd for this network.
    #[serde(default)]
    pub external_ipam: bool,
}

impl NetworkRec {
    /// One of the networks netd pre-defines (`bridge`, `host`, `none`): never removed.
    pub fn is_predefined(&self) -> bool {
        self.owner == "netd"
            && self
                .labels
                .contains_key(crate::controller::PREDEFINED_LABEL)
    }

    /// A user-defined bridge network: its containers get the embedded DNS (Docker gives
    /// none on the default bridge).
    pub fn has_embedded_dns(&self) -> bool {
        self.driver == "bridge" && !(self.is_predefined() && self.name == "bridge")
    }

    pub fn spec(&self) -> NetworkSpec {
        let sub = |v6: bool| {
            self.subnets
                .iter()
                .filter(|s| s.subnet.is_ipv6() == v6)
                .map(|s| SubnetSpec {
                    subnet: s.subnet,
                    gateway: s.gateway,
                })
                .collect()
        };
        NetworkSpec {
            id: self.id.clone(),
            name: self.name.clone(),
            options: self.options.clone(),
            ipv4: sub(false),
            ipv6: sub(true),
            internal: self.internal,
            enable_ipv6: self.ipv6,
        }
    }

    pub fn to_rest(&self, endpoints: Vec<String>) -> rest::Network {
        rest::Network {
            id: self.id.clone(),
            name: self.name.clone(),
            driver: self.driver.clone(),
            subnets: self
                .subnets
                .iter()
                .map(|s| rest::SubnetInfo {
                    subnet: s.subnet,
                    ip_range: s.ip_range,
                    gateway: s.gateway,
                    aux_addresses: s.aux.clone(),
                    pool: s.pool.to_string(),
                })
                .collect(),
            ipv6: self.ipv6,
            internal: self.internal,
            options: self.options.clone(),
            labels: self.labels.clone(),
            owner: self.owner.clone(),
            created: self.created.clone(),
            endpoints,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointRec {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub sandbox_id: Option<String>,
    pub addresses: Vec<IpNetwork>,
    pub mac: Option<String>,
    pub host_ifname: Option<String>,
    /// Name of the container-side link while it is still in the host namespace.
    pub container_ifname: Option<String>,
    /// Name inside the sandbox.
    pub ifname: Option<String>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortBinding>,
    pub gateway4: Option<IpAddr>,
    pub gateway6: Option<IpAddr>,
    pub owner: String,
    /// For Docker endpoints: Docker moves the interface itself.
    #[serde(default)]
    pub external_join: bool,
}

impl EndpointRec {
    pub fn spec(&self) -> EndpointSpec {
        EndpointSpec {
            id: self.id.clone(),
            network_id: self.network_id.clone(),
            addresses: self.addresses.clone(),
            mac: self.mac.clone(),
        }
    }

    pub fn to_rest(&self, network_name: &str) -> rest::Endpoint {
        rest::Endpoint {
            id: self.id.clone(),
            name: self.name.clone(),
            network_id: self.network_id.clone(),
            network_name: network_name.to_string(),
            sandbox_id: self.sandbox_id.clone(),
            addresses: self.addresses.clone(),
            mac: self.mac.clone(),
            host_ifname: self.host_ifname.clone(),
            ifname: self.ifname.clone(),
            aliases: self.aliases.clone(),
            ports: self
                .ports
                .iter()
                .map(|p| rest::PortMapping {
                    proto: p.proto.to_string(),
                    host_ip: p.host_ip.to_string(),
                    host_port: p.host_port,
                    host_port_end: 0,
                    container_port: p.container_port,
                })
                .collect(),
            owner: self.owner.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRec {
    pub id: String,
    pub name: String,
    pub netns_path: String,
    pub owns_netns: bool,
    pub hostname: Option<String>,
    pub dns: Vec<String>,
    /// Endpoint ids in join order.
    pub endpoints: Vec<String>,
    pub owner: String,
    /// CNI container id, when created through CNI.
    #[serde(default)]
    pub cni_container_id: Option<String>,
}
