//! Docker's remote network driver and IPAM plugin, backed by the controller.
//!
//! `docker network create -d netd --ipam-driver netd` makes Docker drive netd step by step:
//! IPAM pools and addresses first (netd's `ipam`, same store as everything else), then
//! CreateNetwork with the addresses Docker got, CreateEndpoint / Join (Docker moves the
//! container end of the veth itself), ProgramExternalConnectivity for `-p`, and the reverse
//! on teardown. Each call is one controller operation, which rolls itself back on failure,
//! so a failed call leaves nothing behind and Docker's own rollback calls find a consistent
//! state.
//!
//! Docker's objects are ordinary netd objects owned by `"docker"` (networks are named
//! `docker-<12 hex of Docker's id>`, sandboxes by their netns file name). This face only
//! touches what Docker owns: a request naming a netd or CNI network, endpoint or pool is
//! refused, so a malformed or hostile request on the plugin socket cannot tear down netd's
//! own networks.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use plugin_api::docker::options::bridge as bridge_opt;
use plugin_api::docker::*;
use plugin_api::rest;
use serde_json::Value;

use crate::controller::{Controller, ExternalNetwork, State};
use crate::error::{Error, Kind};

/// Owner tag of everything created through this face.
pub const OWNER: &str = "docker";
/// netd driver that backs Docker's networks.
const DRIVER: &str = "bridge";
/// `DstPrefix` of every Join answer: Docker names the interface eth0, eth1, ...
const DST_PREFIX: &str = "eth";

pub struct DockerPlugin {
    pub ctl: Arc<Controller>,
}

impl DockerPlugin {
    pub fn new(ctl: Arc<Controller>) -> Self {
        DockerPlugin { ctl }
    }
}

/// The netd name of a Docker network.
pub fn network_name(docker_id: &str) -> String {
    format!("docker-{}", docker_id.chars().take(12).collect::<String>())
}

/// Controller errors keep their category on the way to Docker.
fn perr(e: Error) -> PluginError {
    match e.kind {
        Kind::BadRequest => PluginError::InvalidArgument(e.message),
        Kind::NotFound => PluginError::NotFound(e.message),
        Kind::Conflict => PluginError::Conflict(e.message),
        Kind::Unavailable | Kind::Internal => PluginError::Internal(e.message),
    }
}

fn bad(m: impl Into<String>) -> PluginError {
    PluginError::InvalidArgument(m.into())
}

/// The network must exist and be Docker's.
fn docker_network<'a>(
    st: &'a State,
    id: &str,
) -> Result<&'a crate::model::NetworkRec, PluginError> {
    let n = st
        .networks
        .get(id)
        .ok_or_else(|| PluginError::NotFound(format!("netd has no network {id}")))?;
    if n.owner != OWNER {
        return Err(PluginError::Conflict(format!(
            "network {id} ({}) belongs to {}, not to Docker",
            n.name, n.owner
        )));
    }
    Ok(n)
}

/// The endpoint must exist, be on `network_id`, and be Docker's.
fn docker_endpoint<'a>(
    st: &'a State,
    network_id: &str,
    endpoint_id: &str,
) -> Result<&'a crate::model::EndpointRec, PluginError> {
    let ep = st
        .endpoints
        .get(endpoint_id)
        .ok_or_else(|| PluginError::NotFound(format!("netd has no endpoint {endpoint_id}")))?;
    check_endpoint(ep, network_id)?;
    Ok(ep)
}

fn check_endpoint(ep: &crate::model::EndpointRec, network_id: &str) -> Result<(), PluginError> {
    if ep.network_id != network_id {
        return Err(bad(format!(
            "endpoint {} is on network {}, not on {network_id}",
            ep.id, ep.network_id
        )));
    }
    if ep.owner != OWNER || !ep.external_join {
        return Err(PluginError::Conflict(format!(
            "endpoint {} belongs to {}, not to Docker",
            ep.id, ep.owner
        )));
    }
    Ok(())
}

/// Docker's address space names (and netd's own) to netd's spaces.
fn address_space(s: &str) -> Result<ipam::AddressSpace, PluginError> {
    match s {
        "" | "LocalDefault" | "local" => Ok(ipam::AddressSpace::Local),
        "GlobalDefault" | "global" => Ok(ipam::AddressSpace::Global),
        o => Err(bad(format!(
            "unknown address space {o:?} (netd has LocalDefault and GlobalDefault)"
        ))),
    }
}

/// A pool id Docker may use: well-formed and not the pool of a network netd allocated
/// itself (netd's own and CNI's networks).
fn docker_pool(st: &State, pool: &str) -> Result<ipam::PoolId, PluginError> {
    let id: ipam::PoolId = pool
        .parse()
        .map_err(|e: ipam::IpamError| bad(e.to_string()))?;
    if let Some(n) = st
        .networks
        .values()
        .find(|n| !n.external_ipam && n.subnets.iter().any(|s| s.pool == id))
    {
        return Err(PluginError::Conflict(format!(
            "pool {id} belongs to {} network {}; Docker may only use pools it requested",
            n.owner, n.name
        )));
    }
    Ok(id)
}

/// Docker's port map to netd's REST port mappings. An unset host IP means all addresses,
/// or the network's `host_binding_ipv4` option when set, like Docker's bridge driver.
fn port_mappings(binds: &[PortBinding], default_host_ip: Option<&str>) -> Vec<rest::PortMapping> {
    binds
        .iter()
        .map(|b| rest::PortMapping {
            proto: b.proto.as_str().to_string(),
            host_ip: match b.host_ip {
                Some(ip) => ip.to_string(),
                None => default_host_ip.unwrap_or("").to_string(),
            },
            host_port: b.host_port,
            host_port_end: if b.is_range() { b.host_port_end } else { 0 },
            container_port: b.container_port,
        })
        .collect()
}

/// The subnets of a CreateNetwork request, with the pool's canonical network.
type SubnetSpec = (IpNetwork, Option<IpAddr>, BTreeMap<String, IpAddr>);

fn subnets(req: &CreateNetworkRequest) -> Result<Vec<SubnetSpec>, PluginError> {
    req.ipv4_data
        .iter()
        .chain(&req.ipv6_data)
        .map(|d| {
            let pool = IpNetwork::new(d.pool.network(), d.pool.prefix())
                .map_err(|e| bad(format!("pool {}: {e}", d.pool)))?;
            Ok((pool, d.gateway_ip(), d.aux_ips()))
        })
        .collect()
}

/// Refuse subnets that overlap another network, or a netd IPAM pool Docker did not get
/// for exactly this subnet (Docker's default IPAM knows nothing of netd's pools).
fn check_overlaps(st: &State, id: &str, subs: &[SubnetSpec]) -> Result<(), PluginError> {
    for (s, _, _) in subs {
        if let Some(n) = st.networks.values().find(|n| {
            n.id != id
                && n.subnets
                    .iter()
                    .any(|o| o.subnet.contains(s.network()) || s.contains(o.subnet.network()))
        }) {
            return Err(PluginError::Conflict(format!(
                "subnet {s} overlaps network {} ({}) in netd",
                n.name, n.owner
            )));
        }
        if let Some(p) = st.ipam.overlapping(ipam::AddressSpace::Local, s) {
            if p.subnet() != *s {
                return Err(PluginError::Conflict(format!(
                    "subnet {s} overlaps netd address pool {p}; use --ipam-driver netd"
                )));
            }
        }
    }
    Ok(())
}

#[async_trait]
impl DockerBackend for DockerPlugin {
    async fn create_network(&self, r: CreateNetworkRequest) -> Result<(), PluginError> {
        let options = r.options.generic().map_err(|e| bad(e.to_string()))?;
        let ipv6 = r.options.enable_ipv6().map_err(|e| bad(e.to_string()))?;
        let internal = r.options.internal().map_err(|e| bad(e.to_string()))?;
        if !r.options.enable_ipv4().map_err(|e| bad(e.to_string()))? {
            return Err(PluginError::NotSupported(
                "IPv6-only networks (--ipv4=false) are not supported by netd".into(),
            ));
        }
        if r.ipv4_data.is_empty() {
            return Err(bad(
                "CreateNetwork without IPv4Data: netd networks need an IPv4 subnet",
            ));
        }
        if !r.ipv6_data.is_empty() && !ipv6 {
            return Err(bad("IPv6Data given without com.docker.network.enable_ipv6"));
        }
        let subs = subnets(&r)?;
        {
            let st = self.ctl.snapshot().await;
            check_overlaps(&st, &r.network_id, &subs)?;
        }
        let x = ExternalNetwork {
            id: r.network_id.clone(),
            name: network_name(&r.network_id),
            driver: DRIVER.into(),
            subnets: subs,
            ipv6,
            internal,
            options,
            labels: BTreeMap::new(),
            owner: OWNER.into(),
        };
        self.ctl.create_network_external(x).await.map_err(perr)?;
        Ok(())
    }

    async fn delete_network(&self, r: DeleteNetworkRequest) -> Result<(), PluginError> {
        {
            let st = self.ctl.snapshot().await;
            match docker_network(&st, &r.network_id) {
                // Already gone (an earlier DeleteNetwork that Docker did not see finish):
                // let Docker forget it too.
                Err(PluginError::NotFound(_)) => {
                    tracing::warn!(network = %r.network_id, "DeleteNetwork of an unknown network");
                    return Ok(());
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        self.ctl
            .delete_network_external(&r.network_id)
            .await
            .map_err(perr)
    }

    async fn create_endpoint(
        &self,
        r: CreateEndpointRequest,
    ) -> Result<CreateEndpointResponse, PluginError> {
        {
            let st = self.ctl.snapshot().await;
            docker_network(&st, &r.network_id)?;
        }
        let iface = r.interface.unwrap_or_default();
        let mut addresses = Vec::new();
        addresses.extend(iface.address);
        addresses.extend(iface.address_ipv6);
        if addresses.is_empty() {
            return Err(bad(
                "CreateEndpoint without an address: use --ipam-driver netd or a subnet",
            ));
        }
        let given_mac = iface.mac_address.filter(|m| !m.is_empty());
        let ep = self
            .ctl
            .create_endpoint_external(
                &r.network_id,
                &r.endpoint_id,
                addresses,
                given_mac.clone(),
                OWNER,
            )
            .await
            .map_err(perr)?;
        // Only fields Docker left empty may be filled in.
        let interface = match (given_mac, ep.mac) {
            (None, Some(mac)) => Some(EndpointInterface {
                mac_address: Some(mac),
                ..Default::default()
            }),
            _ => None,
        };
        Ok(CreateEndpointResponse { interface })
    }

    async fn endpoint_oper_info(
        &self,
        r: EndpointOperInfoRequest,
    ) -> Result<EndpointOperInfoResponse, PluginError> {
        let st = self.ctl.snapshot().await;
        let ep = docker_endpoint(&st, &r.network_id, &r.endpoint_id)?;
        let mut value = BTreeMap::new();
        value.insert(
            "netd.network".to_string(),
            Value::from(network_name(&ep.network_id)),
        );
        if let Some(h) = &ep.host_ifname {
            value.insert("netd.host_ifname".to_string(), Value::from(h.clone()));
        }
        if let Some(m) = &ep.mac {
            value.insert("netd.mac".to_string(), Value::from(m.clone()));
        }
        if let Some(s) = ep.sandbox_id.as_ref().and_then(|s| st.sandboxes.get(s)) {
            value.insert("netd.sandbox".to_string(), Value::from(s.name.clone()));
        }
        Ok(EndpointOperInfoResponse { value })
    }

    async fn delete_endpoint(&self, r: DeleteEndpointRequest) -> Result<(), PluginError> {
        {
            let st = self.ctl.snapshot().await;
            match st.endpoints.get(&r.endpoint_id) {
                // Docker calls this during its own rollback: nothing to do.
                None => return Ok(()),
                Some(ep) => check_endpoint(ep, &r.network_id)?,
            }
        }
        self.ctl
            .delete_endpoint_external(&r.endpoint_id)
            .await
            .map_err(perr)
    }

    async fn join(&self, r: JoinRequest) -> Result<JoinResponse, PluginError> {
        let internal = {
            let st = self.ctl.snapshot().await;
            docker_network(&st, &r.network_id)?;
            docker_endpoint(&st, &r.network_id, &r.endpoint_id)?;
            st.networks[&r.network_id].internal
        };
        // The SandboxKey need not exist yet: Docker 20.10 joins before runc has made the
        // namespace (its prestart hook bind-mounts it later), and moves the link itself.
        let j = self
            .ctl
            .join_external(&r.endpoint_id, &r.sandbox_key, OWNER)
            .await
            .map_err(perr)?;
        let static_routes = j
            .info
            .static_routes
            .iter()
            .map(|(dst, via)| StaticRoute {
                destination: *dst,
                route_type: if via.is_some() {
                    RouteType::NextHop
                } else {
                    RouteType::Connected
                },
                next_hop: *via,
            })
            .collect();
        let no_gateway = j.info.gateway4.is_none() && j.info.gateway6.is_none();
        Ok(JoinResponse {
            interface_name: Some(InterfaceName {
                src_name: j.src_ifname,
                dst_prefix: DST_PREFIX.into(),
            }),
            gateway: j.info.gateway4,
            gateway_ipv6: j.info.gateway6,
            static_routes,
            // Without a gateway (internal networks) Docker must not add docker_gwbridge.
            disable_gateway_service: internal || no_gateway,
        })
    }

    async fn leave(&self, r: LeaveRequest) -> Result<(), PluginError> {
        {
            let st = self.ctl.snapshot().await;
            docker_endpoint(&st, &r.network_id, &r.endpoint_id)?;
        }
        self.ctl.leave_external(&r.endpoint_id).await.map_err(perr)
    }

    async fn program_external_connectivity(
        &self,
        r: ProgramExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        let binds = r.options.port_map().map_err(|e| bad(e.to_string()))?;
        let default_ip = {
            let st = self.ctl.snapshot().await;
            let net = docker_network(&st, &r.network_id)?;
            let ep = docker_endpoint(&st, &r.network_id, &r.endpoint_id)?;
            if binds.is_empty() && ep.ports.is_empty() {
                return Ok(());
            }
            if !binds.is_empty() && net.internal {
                return Err(bad(format!(
                    "network {} is internal: ports cannot be published",
                    net.name
                )));
            }
            net.options.get(bridge_opt::HOST_BINDING_IPV4).cloned()
        };
        let ports = port_mappings(&binds, default_ip.as_deref());
        self.ctl
            .publish_ports(&r.endpoint_id, ports)
            .await
            .map_err(perr)
    }

    async fn revoke_external_connectivity(
        &self,
        r: RevokeExternalConnectivityRequest,
    ) -> Result<(), PluginError> {
        {
            let st = self.ctl.snapshot().await;
            match st.endpoints.get(&r.endpoint_id) {
                None => return Ok(()),
                Some(ep) => {
                    check_endpoint(ep, &r.network_id)?;
                    if ep.ports.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
        self.ctl.unpublish_ports(&r.endpoint_id).await.map_err(perr)
    }

    async fn request_pool(
        &self,
        r: RequestPoolRequest,
    ) -> Result<RequestPoolResponse, PluginError> {
        let space = address_space(&r.address_space)?;
        if let Some(k) = r.options.keys().next() {
            return Err(bad(format!(
                "unknown IPAM option {k:?}: netd's IPAM driver takes no --ipam-opt"
            )));
        }
        if let Some(p) = r.pool {
            if p.network() != p.ip() {
                return Err(bad(format!(
                    "invalid pool {p}: host bits set (did you mean {}/{}?)",
                    p.network(),
                    p.prefix()
                )));
            }
        }
        let req = ipam::PoolRequest {
            space,
            subnet: r.pool,
            v6: r.v6,
            ip_range: r.sub_pool,
            gateway: None,
            aux_addresses: BTreeMap::new(),
            // Docker asks for the gateway itself (RequestAddress with the gateway type).
            auto_gateway: false,
        };
        let info = self.ctl.ipam_request_pool(req).await.map_err(perr)?;
        Ok(RequestPoolResponse {
            pool_id: info.id.to_string(),
            pool: info.subnet,
            data: BTreeMap::new(),
        })
    }

    async fn release_pool(&self, r: ReleasePoolRequest) -> Result<(), PluginError> {
        {
            let st = self.ctl.snapshot().await;
            docker_pool(&st, &r.pool_id)?;
        }
        self.ctl.ipam_release_pool(&r.pool_id).await.map_err(perr)
    }

    async fn request_address(
        &self,
        r: RequestAddressRequest,
    ) -> Result<RequestAddressResponse, PluginError> {
        {
            let st = self.ctl.snapshot().await;
            docker_pool(&st, &r.pool_id)?;
        }
        // The gateway is an ordinary address of the pool (Docker reserves it, and
        // releases it with the network).
        let a = self
            .ctl
            .ipam_request_address(&r.pool_id, r.address)
            .await
            .map_err(perr)?;
        if r.is_gateway() {
            tracing::debug!(pool = %r.pool_id, gateway = %a, "gateway reserved for Docker");
        }
        Ok(RequestAddressResponse {
            address: a,
            data: BTreeMap::new(),
        })
    }

    async fn release_address(&self, r: ReleaseAddressRequest) -> Result<(), PluginError> {
        {
            let st = self.ctl.snapshot().await;
            docker_pool(&st, &r.pool_id)?;
        }
        self.ctl
            .ipam_release_address(&r.pool_id, r.address)
            .await
            .map_err(perr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binds(v: serde_json::Value) -> Vec<PortBinding> {
        let o: DriverOptions =
            serde_json::from_value(serde_json::json!({ options::PORTMAP: v })).unwrap();
        o.port_map().unwrap()
    }

    #[test]
    fn port_maps_follow_docker() {
        let b = binds(serde_json::json!([
            {"Proto": 6, "Port": 80, "HostIP": "127.0.0.1", "HostPort": 8080, "HostPortEnd": 8080},
            {"Proto": 17, "Port": 53, "HostIP": "", "HostPort": 0, "HostPortEnd": 0},
            {"Proto": 6, "Port": 22, "HostPort": 2200, "HostPortEnd": 2210}
        ]));
        let m = port_mappings(&b, None);
        assert_eq!(
            m[0],
            rest::PortMapping {
                proto: "tcp".into(),
                host_ip: "127.0.0.1".into(),
                host_port: 8080,
                host_port_end: 0,
                container_port: 80,
            }
        );
        // Empty HostIP = all addresses; HostPort 0 = ephemeral.
        assert_eq!(
            (m[1].proto.as_str(), m[1].host_ip.as_str(), m[1].host_port),
            ("udp", "", 0)
        );
        assert_eq!((m[2].host_port, m[2].host_port_end), (2200, 2210));
        // The network's host_binding_ipv4 fills only unset host IPs.
        let m = port_mappings(&b, Some("10.1.2.3"));
        assert_eq!(m[0].host_ip, "127.0.0.1");
        assert_eq!(m[1].host_ip, "10.1.2.3");
    }

    #[test]
    fn names_and_spaces() {
        assert_eq!(network_name(&"ab".repeat(32)), "docker-abababababab");
        assert_eq!(
            address_space("LocalDefault").unwrap(),
            ipam::AddressSpace::Local
        );
        assert_eq!(address_space("").unwrap(), ipam::AddressSpace::Local);
        assert_eq!(
            address_space("GlobalDefault").unwrap(),
            ipam::AddressSpace::Global
        );
        assert!(matches!(
            address_space("x"),
            Err(PluginError::InvalidArgument(_))
        ));
    }

    #[test]
    fn error_kinds_survive() {
        assert!(matches!(perr(Error::not_found("x")), PluginError::NotFound(m) if m == "x"));
        assert!(matches!(
            perr(Error::conflict("x")),
            PluginError::Conflict(_)
        ));
        assert!(matches!(
            perr(Error::bad("x")),
            PluginError::InvalidArgument(_)
        ));
        assert!(matches!(
            perr(Error::internal("x")),
            PluginError::Internal(_)
        ));
    }
}
