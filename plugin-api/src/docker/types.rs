//! Request and response bodies of Docker's remote NetworkDriver and IpamDriver protocol
//! (libnetwork `drivers/remote/api/api.go`, `ipams/remote/api/api.go`). Field names are Go's
//! (PascalCase, with `ID`/`IP` spelled as Go spells them). Requests tolerate unknown fields,
//! `null` maps and lists, and `""` for unset addresses; addresses are parsed into typed values
//! here so a malformed request never reaches the backend. Each request also has a
//! [`Validate`] check the router runs before calling the backend.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::de;
use super::options::DriverOptions;

/// Semantic checks beyond JSON shape (required ids, address families).
pub trait Validate {
    fn validate(&self) -> Result<(), String>;
}

fn require(field: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("{field} is required"))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Plugin handshake and capabilities

/// `Plugin.Activate` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

/// `NetworkDriver.GetCapabilities` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "ConnectivityScope")]
    pub connectivity_scope: String,
}

/// Empty success body `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

// ---------------------------------------------------------------------------------------
// NetworkDriver

/// One pool as allocated by IPAM. Gateway and aux addresses carry the pool's mask
/// (`"172.18.0.1/16"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    #[serde(rename = "Pool")]
    pub pool: IpNetwork,
    #[serde(
        rename = "Gateway",
        default,
        deserialize_with = "de::opt_cidr",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<IpNetwork>,
    #[serde(
        rename = "AuxAddresses",
        default,
        deserialize_with = "de::cidr_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, IpNetwork>,
}

impl IpamData {
    /// The gateway address without its mask.
    pub fn gateway_ip(&self) -> Option<IpAddr> {
        self.gateway.map(|g| g.ip())
    }

    /// Aux addresses without their masks.
    pub fn aux_ips(&self) -> BTreeMap<String, IpAddr> {
        self.aux_addresses
            .iter()
            .map(|(k, v)| (k.clone(), v.ip()))
            .collect()
    }

    fn check(&self, v6: bool) -> Result<(), String> {
        let fam = if v6 { "IPv6Data" } else { "IPv4Data" };
        if self.pool.is_ipv6() != v6 {
            return Err(format!("{fam}: pool {} has the wrong family", self.pool));
        }
        let mut addrs: Vec<(&str, IpAddr)> = self.aux_ips_ref().collect();
        if let Some(g) = self.gateway_ip() {
            addrs.push(("Gateway", g));
        }
        for (what, ip) in addrs {
            if !self.pool.contains(ip) {
                return Err(format!("{fam}: {what} {ip} is outside pool {}", self.pool));
            }
        }
        Ok(())
    }

    fn aux_ips_ref(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.aux_addresses.iter().map(|(k, v)| (k.as_str(), v.ip()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "Options", default)]
    pub options: DriverOptions,
    #[serde(rename = "IPv4Data", default, deserialize_with = "de::null_default")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "de::null_default")]
    pub ipv6_data: Vec<IpamData>,
}

impl Validate for CreateNetworkRequest {
    fn validate(&self) -> Result<(), String> {
        require("NetworkID", &self.network_id)?;
        self.ipv4_data.iter().try_for_each(|d| d.check(false))?;
        self.ipv6_data.iter().try_for_each(|d| d.check(true))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteNetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
}

impl Validate for DeleteNetworkRequest {
    fn validate(&self) -> Result<(), String> {
        require("NetworkID", &self.network_id)
    }
}

/// The endpoint's interface. In a request IPAM has already filled the addresses; in the
/// CreateEndpoint answer the driver may fill only fields that were empty (normally the MAC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    #[serde(
        rename = "Address",
        default,
        deserialize_with = "de::opt_cidr",
        skip_serializing_if = "Option::is_none"
    )]
    pub address: Option<IpNetwork>,
    #[serde(
        rename = "AddressIPv6",
        default,
        deserialize_with = "de::opt_cidr",
        skip_serializing_if = "Option::is_none"
    )]
    pub address_ipv6: Option<IpNetwork>,
    #[serde(
        rename = "MacAddress",
        default,
        deserialize_with = "de::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub mac_address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "Interface", default)]
    pub interface: Option<EndpointInterface>,
    #[serde(rename = "Options", default)]
    pub options: DriverOptions,
}

impl Validate for CreateEndpointRequest {
    fn validate(&self) -> Result<(), String> {
        require("NetworkID", &self.network_id)?;
        require("EndpointID", &self.endpoint_id)?;
        if let Some(i) = &self.interface {
            if i.address.is_some_and(|a| !a.is_ipv4()) {
                return Err("Interface.Address must be IPv4".into());
            }
            if i.address_ipv6.is_some_and(|a| !a.is_ipv6()) {
                return Err("Interface.AddressIPv6 must be IPv6".into());
            }
        }
        Ok(())
    }
}

/// CreateEndpoint answer. `interface: None` serialises as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    #[serde(rename = "Interface", default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

/// `{"NetworkID","EndpointID"}`: DeleteEndpoint, EndpointOperInfo, Leave,
/// RevokeExternalConnectivity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
}

impl Validate for EndpointRequest {
    fn validate(&self) -> Result<(), String> {
        require("NetworkID", &self.network_id)?;
        require("EndpointID", &self.endpoint_id)
    }
}

pub type DeleteEndpointRequest = EndpointRequest;
pub type EndpointOperInfoRequest = EndpointRequest;
pub type LeaveRequest = EndpointRequest;
pub type RevokeExternalConnectivityRequest = EndpointRequest;

/// EndpointOperInfo answer: free-form data (Docker ignores remote drivers' port info).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    #[serde(rename = "Value", default)]
    pub value: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    /// Netns path, e.g. `/var/run/docker/netns/<12hex>`.
    #[serde(rename = "SandboxKey", default)]
    pub sandbox_key: String,
    /// Sandbox labels (port map, exposed ports).
    #[serde(rename = "Options", default)]
    pub options: DriverOptions,
}

impl Validate for JoinRequest {
    fn validate(&self) -> Result<(), String> {
        require("NetworkID", &self.network_id)?;
        require("EndpointID", &self.endpoint_id)?;
        require("SandboxKey", &self.sandbox_key)
    }
}

/// Host-side link that libnetwork moves into the sandbox and renames `DstPrefix`+N.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    #[serde(rename = "SrcName")]
    pub src_name: String,
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// Route kind in a Join answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum RouteType {
    /// Via `NextHop`.
    NextHop,
    /// Directly connected (no next hop).
    Connected,
}

impl From<RouteType> for u8 {
    fn from(r: RouteType) -> u8 {
        match r {
            RouteType::NextHop => 0,
            RouteType::Connected => 1,
        }
    }
}

impl TryFrom<u8> for RouteType {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(Self::NextHop),
            1 => Ok(Self::Connected),
            o => Err(format!("unknown RouteType {o}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    #[serde(rename = "Destination")]
    pub destination: IpNetwork,
    #[serde(rename = "RouteType")]
    pub route_type: RouteType,
    #[serde(
        rename = "NextHop",
        default,
        deserialize_with = "de::opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_hop: Option<IpAddr>,
}

/// Join answer. Gateways are bare addresses. Without a gateway, set
/// `disable_gateway_service` or Docker adds `docker_gwbridge`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    #[serde(
        rename = "InterfaceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_name: Option<InterfaceName>,
    #[serde(
        rename = "Gateway",
        default,
        deserialize_with = "de::opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<IpAddr>,
    #[serde(
        rename = "GatewayIPv6",
        default,
        deserialize_with = "de::opt_ip",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_ipv6: Option<IpAddr>,
    #[serde(
        rename = "StaticRoutes",
        default,
        deserialize_with = "de::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_routes: Vec<StaticRoute>,
    #[serde(rename = "DisableGatewayService", default)]
    pub disable_gateway_service: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    /// Sandbox labels: [`super::options::PORTMAP`], [`super::options::EXPOSED_PORTS`].
    #[serde(rename = "Options", default)]
    pub options: DriverOptions,
}

impl Validate for ProgramExternalConnectivityRequest {
    fn validate(&self) -> Result<(), String> {
        require("NetworkID", &self.network_id)?;
        require("EndpointID", &self.endpoint_id)
    }
}

/// DiscoverNew / DiscoverDelete body (swarm node discovery; accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    #[serde(rename = "DiscoveryType", default)]
    pub discovery_type: i64,
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

impl Validate for DiscoveryNotification {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// IpamDriver

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamCapabilities {
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpacesResponse {
    #[serde(rename = "LocalDefaultAddressSpace")]
    pub local_default_address_space: String,
    #[serde(rename = "GlobalDefaultAddressSpace")]
    pub global_default_address_space: String,
}

impl Default for AddressSpacesResponse {
    fn default() -> Self {
        Self {
            local_default_address_space: "LocalDefault".into(),
            global_default_address_space: "GlobalDefault".into(),
        }
    }
}

/// `Pool` empty = driver chooses (family per `v6`); `SubPool` = `--ip-range`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    #[serde(rename = "Pool", default, deserialize_with = "de::opt_cidr")]
    pub pool: Option<IpNetwork>,
    #[serde(rename = "SubPool", default, deserialize_with = "de::opt_cidr")]
    pub sub_pool: Option<IpNetwork>,
    /// `--ipam-opt` map.
    #[serde(rename = "Options", default, deserialize_with = "de::string_map")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

impl Validate for RequestPoolRequest {
    fn validate(&self) -> Result<(), String> {
        match (self.pool, self.sub_pool) {
            (None, Some(_)) => Err("SubPool given without Pool".into()),
            (Some(p), _) if p.is_ipv6() != self.v6 => {
                Err(format!("Pool {p} does not match V6={}", self.v6))
            }
            (Some(p), Some(s)) if s.is_ipv6() != p.is_ipv6() => {
                Err(format!("SubPool {s} and Pool {p} differ in family"))
            }
            (Some(p), Some(s)) if s.prefix() < p.prefix() || !p.contains(s.network()) => {
                Err(format!("SubPool {s} is not inside Pool {p}"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Pool")]
    pub pool: IpNetwork,
    #[serde(rename = "Data", default)]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
}

impl Validate for ReleasePoolRequest {
    fn validate(&self) -> Result<(), String> {
        require("PoolID", &self.pool_id)
    }
}

/// `Address` empty = any free address. See [`RequestAddressRequest::is_gateway`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    #[serde(rename = "Address", default, deserialize_with = "de::opt_ip")]
    pub address: Option<IpAddr>,
    #[serde(rename = "Options", default, deserialize_with = "de::string_map")]
    pub options: BTreeMap<String, String>,
}

impl RequestAddressRequest {
    /// Whether this reserves the network's gateway (`RequestAddressType`).
    pub fn is_gateway(&self) -> bool {
        self.options
            .get(super::options::ipam::REQUEST_ADDRESS_TYPE)
            .map(String::as_str)
            == Some(super::options::ipam::GATEWAY_TYPE)
    }

    /// Container name, when the engine sends it (29.x).
    pub fn endpoint_name(&self) -> Option<&str> {
        self.options
            .get(super::options::ipam::ENDPOINT_NAME)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// MAC, sent when the driver asks for `RequiresMACAddress`.
    pub fn mac_address(&self) -> Option<&str> {
        self.options
            .get(super::options::ipam::MAC_ADDRESS)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

impl Validate for RequestAddressRequest {
    fn validate(&self) -> Result<(), String> {
        require("PoolID", &self.pool_id)
    }
}

/// `Address` must be CIDR (`"172.18.0.2/16"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    #[serde(rename = "Address")]
    pub address: IpNetwork,
    #[serde(rename = "Data", default)]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    #[serde(rename = "Address", deserialize_with = "de::ip")]
    pub address: IpAddr,
}

impl Validate for ReleaseAddressRequest {
    fn validate(&self) -> Result<(), String> {
        require("PoolID", &self.pool_id)
    }
}
