//! CNM network drivers for netd.
//!
//! Layout:
//! - [`Driver`]: the driver contract, shaped like libnetwork's `driverapi.Driver`
//!   (create/delete network, create/delete endpoint, join/leave, program/revoke
//!   external connectivity) but with typed arguments.
//! - [`null`] and [`host`]: the trivial drivers (loopback only; the host's namespace).
//! - [`bridge`]: Linux bridge + veth pairs, NAT and isolation in nftables.
//! - [`sandbox`]: operations inside a sandbox's netns (libnetwork's "osl").
//! - [`sys`]: the only module that talks to the kernel (netlink, nft, sysctl, netns).
//!   Driver logic reaches the kernel only through it.
//!
//! The daemon owns the state and the store; drivers are told what to build and
//! are expected to be idempotent where it is cheap (creating what exists, deleting
//! what is gone), because reconciliation replays them.
//!
//! # API summary (what the daemon calls)
//!
//! ```text
//! // kernel facade, created once and shared
//! let sys: Arc<dyn Sys> = Arc::new(sys::real::RealSys::new());
//!
//! // namespaces (all on dedicated std threads, never a tokio worker)
//! sys::ensure_netns_dir(Path::new("/run/netd/netns"))?;        // once, makes it a shared mount
//! sys::create_netns(&path).await?;                             // unshare + bind mount, lo up
//! sys::delete_netns(&path)?;                                   // umount(MNT_DETACH) + unlink, idempotent
//! // adopting a namespace = just pass its path (SandboxKey, CNI_NETNS, /proc/PID/ns/net)
//!
//! // bridge driver
//! let br = BridgeDriver::new(sys.clone(), BridgeConfig::default()); // table "inet netd"
//! br.init().await?;                                  // base table/sets/chains/rules, idempotent
//! br.validate_network(&net)?; br.create_network(&net).await?;
//! let info = br.create_endpoint(&net, &ep).await?;   // veth vnd<8>/vnc<8>, MAC
//! let join = br.join(&net, &ep, &sandbox).await?;    // gateways (None for internal)
//! br.docker_coexistence_sync(&bridges).await?;       // DOCKER-USER accept rules, periodic
//! br.leave(..); br.delete_endpoint(..); br.delete_network(..);
//!
//! // inside the sandbox
//! sandbox::add_interface(&*sys, &netns, "vnc…", "eth0", info.mac.as_deref(), &ep.addresses).await?;
//! sandbox::set_default_gateway(&*sys, &netns, join.gateway4, join.gateway6).await?;
//! sandbox::add_route(&*sys, &netns, dst, via, dev).await?;
//! sandbox::remove_interface(&*sys, &netns, "eth0").await?;   // idempotent; veth peer goes too
//! let state = sandbox::inspect(&*sys, &netns).await?;        // Serialize
//!
//! // nft elsewhere (e.g. inside a sandbox for the resolver's DNAT)
//! sys.nft_apply(&Ns::path(&netns), &batch).await?;           // nsenter --net=PATH nft -j -f -
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

pub mod bridge;
pub mod host;
pub mod null;
pub mod sandbox;
pub mod sys;
pub mod trivial;

/// Errors a driver reports. The daemon maps them to HTTP statuses
/// (InvalidArgument → 400, Conflict → 409, NotFound → 404, Kernel → 500).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("kernel: {0}")]
    Kernel(String),
}

pub type Result<T> = std::result::Result<T, DriverError>;

/// One subnet of a network with its gateway, as IPAM allocated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    pub subnet: IpNetwork,
    /// Gateway address (bare IP, in `subnet`).
    pub gateway: Option<IpAddr>,
}

/// Everything a driver needs to build a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// 64 hex characters.
    pub id: String,
    pub name: String,
    /// Driver options with libnetwork's names (`com.docker.network.bridge.name`, ...).
    pub options: BTreeMap<String, String>,
    pub ipv4: Vec<SubnetSpec>,
    pub ipv6: Vec<SubnetSpec>,
    pub internal: bool,
    pub enable_ipv6: bool,
}

/// An endpoint: one interface of one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSpec {
    /// 64 hex characters.
    pub id: String,
    pub network_id: String,
    /// Addresses with the subnet's prefix length.
    pub addresses: Vec<IpNetwork>,
    /// Requested MAC; the driver picks one when `None`.
    pub mac: Option<String>,
}

/// What the driver built for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EndpointInfo {
    /// Host-side interface name (e.g. the veth end on the bridge), if any.
    pub host_ifname: Option<String>,
    /// Name, in the host namespace, of the interface that must be moved into the
    /// sandbox (the container end of the veth), if any.
    pub container_ifname: Option<String>,
    /// MAC of the container-side interface.
    pub mac: Option<String>,
}

/// Where a join happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub id: String,
    /// Path of the network namespace file (bind mount or /proc/PID/ns/net).
    pub netns_path: String,
}

/// What the sandbox layer must do inside the namespace after a driver join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JoinInfo {
    /// IPv4 gateway for the default route, when this endpoint provides one.
    pub gateway4: Option<IpAddr>,
    /// IPv6 gateway for the default route, when this endpoint provides one.
    pub gateway6: Option<IpAddr>,
    /// Extra routes (destination, optional next hop).
    pub static_routes: Vec<(IpNetwork, Option<IpAddr>)>,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        })
    }
}

/// A resolved port mapping: host address and port are fixed by the daemon's
/// port allocator before the driver sees them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortBinding {
    pub proto: Proto,
    /// Host address (`0.0.0.0` / `::` for all).
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// Served by NAT only, the host's loopback included, whatever the
    /// userland proxy mode: the daemon neither binds the host port nor runs a
    /// proxy for it, because the runtime holds the port itself (CNI's
    /// `portMappings` contract, as with the reference `portmap` plugin). For
    /// IPv4 bindings on `0.0.0.0` or a `127.x` address, the driver also DNATs
    /// the host's own connections to `127.0.0.0/8` on that port and sets
    /// `route_localnet=1` on the network's bridge. (IPv6 has no
    /// `route_localnet`: `::1` cannot be NAT'ed to a container.)
    #[serde(default)]
    pub loopback_nat: bool,
}

/// The driver contract.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Driver name as users type it (`bridge`, `host`, `null`).
    fn name(&self) -> &'static str;

    /// Validate options and IPAM data before anything is allocated or built.
    /// Unknown options are an error, never ignored.
    fn validate_network(&self, spec: &NetworkSpec) -> Result<()>;

    /// Whether endpoints of this driver need addresses from IPAM.
    fn needs_ipam(&self) -> bool {
        true
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()>;
    async fn delete_network(&self, spec: &NetworkSpec) -> Result<()>;
    async fn create_endpoint(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<EndpointInfo>;
    async fn delete_endpoint(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<()>;
    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        sandbox: &SandboxSpec,
    ) -> Result<JoinInfo>;
    async fn leave(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        sandbox: &SandboxSpec,
    ) -> Result<()>;
    async fn program_external_connectivity(
        &self,
        _net: &NetworkSpec,
        _ep: &EndpointSpec,
        ports: &[PortBinding],
    ) -> Result<()> {
        if ports.is_empty() {
            Ok(())
        } else {
            Err(DriverError::NotSupported(format!(
                "driver {} cannot publish ports",
                self.name()
            )))
        }
    }
    async fn revoke_external_connectivity(
        &self,
        _net: &NetworkSpec,
        _ep: &EndpointSpec,
        _ports: &[PortBinding],
    ) -> Result<()> {
        Ok(())
    }
}

/// Refuse any option key not in `known`.
pub fn check_known_options(
    driver: &str,
    options: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<()> {
    for k in options.keys() {
        if !known.contains(&k.as_str()) {
            return Err(DriverError::InvalidArgument(format!(
                "driver {driver} does not support option {k:?}"
            )));
        }
    }
    Ok(())
}
