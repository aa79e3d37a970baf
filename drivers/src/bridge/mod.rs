//! The `bridge` driver: a Linux bridge per network, a veth pair per
//! endpoint, NAT / isolation / ICC / internal networks in netd's own
//! nftables table (see [`rules`] for the ruleset design and [`docker`] for
//! living beside a dockerd).
//!
//! Steps are ordered and every create step that fails rolls back what the
//! call built; teardown keeps going and reports all errors.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use nftables::types::NfFamily;
use tokio::sync::Mutex;

use crate::sys::{BridgePortFlags, Ns, Sys};
use crate::{
    Driver, DriverError, EndpointInfo, EndpointSpec, JoinInfo, NetworkSpec, PortBinding, Result,
    SandboxSpec,
};

pub mod docker;
pub mod options;
pub mod ports;
pub mod rules;

pub use options::{parse_bridge_options, BridgeOptions};

/// Driver configuration.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Name of netd's `inet` table (default `netd`). Tests use their own.
    pub table: String,
    /// Manage `DOCKER-USER` accept rules when that chain exists.
    pub docker_coexistence: bool,
    /// The daemon serves published ports on the host's loopback with its
    /// userland proxy (dockerd's `--userland-proxy`, default true). When
    /// false, the `output` chain DNATs 127.0.0.0/8 too and bridges get
    /// `route_localnet=1` (hairpin NAT, as dockerd does). Bindings marked
    /// [`PortBinding::loopback_nat`] are NAT'ed from loopback in both modes.
    pub userland_proxy: bool,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            table: "netd".into(),
            docker_coexistence: true,
            userland_proxy: true,
        }
    }
}

/// What one `docker_coexistence_sync` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerSyncReport {
    /// Families (`ip`, `ip6`) where DOCKER-USER exists.
    pub families: Vec<String>,
    pub inserted: Vec<String>,
    pub deleted_rules: usize,
}

pub struct BridgeDriver {
    sys: Arc<dyn Sys>,
    cfg: BridgeConfig,
    /// Serialises firewall changes (set elements and DOCKER-USER edits).
    fw: Mutex<bool>,
}

/// Host-side veth name: `vnd` + 8 characters of the endpoint id.
pub fn host_ifname(endpoint_id: &str) -> String {
    format!("vnd{}", endpoint_id.chars().take(8).collect::<String>())
}

/// Temporary name of the container end while it is still in the host.
pub fn peer_ifname(endpoint_id: &str) -> String {
    format!("vnc{}", endpoint_id.chars().take(8).collect::<String>())
}

/// Docker-style MAC: `02:42:` + the IPv4 address; without IPv4 a locally
/// administered unicast MAC derived from the endpoint id (stable on replay).
pub fn endpoint_mac(ep: &EndpointSpec) -> String {
    if let Some(m) = &ep.mac {
        return m.to_lowercase();
    }
    if let Some(IpAddr::V4(v4)) = ep.addresses.iter().map(|a| a.ip()).find(|a| a.is_ipv4()) {
        let o = v4.octets();
        return format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3]);
    }
    // FNV-1a over the id.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in ep.id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let b = h.to_be_bytes();
    let first = (b[0] & 0xfe) | 0x02;
    crate::sys::format_mac(&[first, b[1], b[2], b[3], b[4], b[5]])
}

/// The gateway addresses with their subnet's prefix, as put on the bridge.
fn gateway_addrs(spec: &NetworkSpec) -> Vec<IpNetwork> {
    let v6 = if spec.enable_ipv6 {
        &spec.ipv6[..]
    } else {
        &[]
    };
    spec.ipv4
        .iter()
        .chain(v6)
        .filter_map(|s| {
            s.gateway
                .and_then(|g| IpNetwork::new(g, s.subnet.prefix()).ok())
        })
        .collect()
}

fn network_fw(spec: &NetworkSpec, o: &BridgeOptions) -> rules::NetworkFw {
    let v6 = if spec.enable_ipv6 {
        &spec.ipv6[..]
    } else {
        &[]
    };
    let subnets: Vec<_> = spec.ipv4.iter().chain(v6).collect();
    rules::NetworkFw {
        bridge: o.bridge_name.clone(),
        subnets: subnets.iter().map(|s| s.subnet).collect(),
        gateways: subnets.iter().filter_map(|s| s.gateway).collect(),
        internal: spec.internal,
        masquerade: o.masquerade,
        icc: o.icc,
    }
}

fn kernel(msg: impl std::fmt::Display) -> DriverError {
    DriverError::Kernel(msg.to_string())
}

impl BridgeDriver {
    /// Build the driver; call [`BridgeDriver::init`] before use (it is also
    /// run lazily by the first network operation).
    pub fn new(sys: Arc<dyn Sys>, cfg: BridgeConfig) -> BridgeDriver {
        BridgeDriver {
            sys,
            cfg,
            fw: Mutex::new(false),
        }
    }

    pub fn table(&self) -> &str {
        &self.cfg.table
    }

    pub fn sys(&self) -> &Arc<dyn Sys> {
        &self.sys
    }

    /// Ensure the base table, sets, maps, chains and fixed rules (idempotent).
    pub async fn init(&self) -> Result<()> {
        let mut ready = self.fw.lock().await;
        self.apply_base().await?;
        *ready = true;
        Ok(())
    }

    async fn apply_base(&self) -> Result<()> {
        let t = &self.cfg.table;
        self.sys
            .nft_apply_text(&Ns::Host, &ports::maps_script(t))
            .await?;
        self.sys
            .nft_apply(&Ns::Host, &rules::base_ruleset(t, self.cfg.userland_proxy))
            .await?;
        Ok(())
    }

    async fn ensure_init(&self) -> Result<tokio::sync::MutexGuard<'_, bool>> {
        let mut g = self.fw.lock().await;
        if !*g {
            self.apply_base().await?;
            *g = true;
        }
        Ok(g)
    }

    /// Delete netd's table and our DOCKER-USER rules (uninstall, tests).
    pub async fn teardown_firewall(&self) -> Result<()> {
        let mut g = self.fw.lock().await;
        let r1 = self.sync_docker_locked(&[]).await;
        let r2 = self
            .sys
            .nft_apply(&Ns::Host, &rules::delete_table(&self.cfg.table))
            .await;
        *g = false;
        r1?;
        r2.map_err(Into::into)
    }

    /// Bridges currently in netd's `bridges` set (the firewall's truth).
    pub async fn firewall_bridges(&self) -> Result<Vec<String>> {
        let t = self.cfg.table.as_str();
        let v = self
            .sys
            .nft_list(&Ns::Host, &["list", "set", "inet", t, rules::SET_BRIDGES])
            .await?;
        Ok(v.and_then(|v| {
            v["nftables"].as_array().and_then(|a| {
                a.iter().find_map(|o| {
                    o["set"]["elem"].as_array().map(|e| {
                        e.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                })
            })
        })
        .unwrap_or_default())
    }

    /// Make Docker's DOCKER-USER chains (ip and ip6 `filter`) accept exactly
    /// the traffic of `bridges`: insert missing rules, delete our rules for
    /// bridges not listed. Nothing happens where DOCKER-USER does not exist.
    /// The daemon may call this periodically (dockerd may start after us or
    /// flush its chains); the driver calls it on network create/delete.
    pub async fn docker_coexistence_sync(&self, bridges: &[String]) -> Result<DockerSyncReport> {
        let _g = self.fw.lock().await;
        self.sync_docker_locked(bridges).await
    }

    async fn sync_docker_locked(&self, bridges: &[String]) -> Result<DockerSyncReport> {
        let mut rep = DockerSyncReport::default();
        for (family, fname) in [(NfFamily::IP, "ip"), (NfFamily::IP6, "ip6")] {
            let listing = self
                .sys
                .nft_list(
                    &Ns::Host,
                    &["list", "chain", fname, "filter", docker::DOCKER_USER],
                )
                .await?;
            let Some(listing) = listing else { continue };
            if !docker::has_docker_user(&listing) {
                continue;
            }
            rep.families.push(fname.into());
            let plan = docker::plan(&listing, &self.cfg.table, bridges);
            if plan.is_empty() {
                continue;
            }
            self.sys
                .nft_apply(&Ns::Host, &docker::batch(family, &self.cfg.table, &plan))
                .await?;
            tracing::info!(
                family = fname,
                inserted = ?plan.insert,
                deleted = plan.delete.len(),
                "DOCKER-USER: synced netd accept rules"
            );
            rep.inserted
                .extend(plan.insert.iter().map(|b| format!("{fname}:{b}")));
            rep.deleted_rules += plan.delete.len();
        }
        Ok(rep)
    }

    /// Sync DOCKER-USER from the firewall's bridges set; failures are logged,
    /// never fatal (Docker may be racing us).
    async fn sync_docker_best_effort(&self) {
        if !self.cfg.docker_coexistence {
            return;
        }
        let r = async {
            let b = self.firewall_bridges().await?;
            self.docker_coexistence_sync(&b).await
        };
        if let Err(e) = r.await {
            tracing::warn!(error = %e, "DOCKER-USER sync failed");
        }
    }

    async fn enable_forwarding(&self, v6: bool) -> Result<()> {
        let mut keys = vec!["net.ipv4.ip_forward"];
        if v6 {
            keys.push("net.ipv6.conf.all.forwarding");
        }
        for k in keys {
            if self.sys.sysctl_get(&Ns::Host, k).await? != "1" {
                tracing::info!(sysctl = k, "enabling forwarding");
                self.sys.sysctl_set(&Ns::Host, k, "1").await?;
            }
        }
        Ok(())
    }

    /// What the port maps hold now (for the slow paths of publish/unpublish).
    async fn port_listing(&self, ports: &[PortBinding]) -> Result<ports::Listing> {
        let t = self.cfg.table.as_str();
        let names = ports::maps_of(ports);
        let mut maps = Vec::new();
        for n in names {
            if let Some(v) = self
                .sys
                .nft_list(&Ns::Host, &["list", "map", "inet", t, n])
                .await?
            {
                maps.push((n, v));
            }
        }
        Ok(ports::listing_from(&maps))
    }

    /// Add the map elements of `ports` (replacing stale ones), then flush the
    /// UDP conntrack entries of their host ports.
    async fn publish(&self, ports: &[PortBinding]) -> Result<()> {
        {
            let _g = self.ensure_init().await?;
            let t = self.cfg.table.as_str();
            if let Err(e) = self
                .sys
                .nft_apply(&Ns::Host, &ports::add_batch(t, ports))
                .await
            {
                // A key is held with another value (stale after a crash, the
                // daemon has checked for live conflicts): replace it.
                tracing::info!(error = %e, "port map: replacing stale elements");
                let now = self.port_listing(ports).await?;
                self.sys
                    .nft_apply(&Ns::Host, &ports::replace_batch(t, ports, &now))
                    .await?;
            }
        }
        self.flush_conntrack(ports).await;
        tracing::info!(ports = ?ports, "published ports");
        Ok(())
    }

    async fn unpublish(&self, ports: &[PortBinding]) -> Result<()> {
        {
            let _g = self.ensure_init().await?;
            let t = self.cfg.table.as_str();
            if let Err(e) = self
                .sys
                .nft_apply(&Ns::Host, &ports::remove_batch(t, ports))
                .await
            {
                // Some key maps elsewhere now: remove only what is still ours.
                tracing::info!(error = %e, "port map: removing only our own elements");
                let now = self.port_listing(ports).await?;
                self.sys
                    .nft_apply(&Ns::Host, &ports::remove_owned_batch(t, ports, &now))
                    .await?;
            }
        }
        self.flush_conntrack(ports).await;
        tracing::info!(ports = ?ports, "revoked ports");
        Ok(())
    }

    /// Best effort: a failure is logged (the mapping itself is in place; only
    /// a UDP flow that predates it may stay on its old path until it idles).
    async fn flush_conntrack(&self, ports: &[PortBinding]) {
        let mut filters: Vec<_> = ports.iter().filter_map(ports::conntrack_filter).collect();
        filters.sort_unstable_by_key(|f| (f.dst_port, f.ipv6, f.dst_addr));
        filters.dedup();
        for f in filters {
            match self.sys.conntrack_delete(&Ns::Host, &f).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    port = f.dst_port,
                    deleted = n,
                    "flushed UDP conntrack entries"
                ),
                Err(e) => tracing::warn!(port = f.dst_port, error = %e, "conntrack flush failed"),
            }
        }
    }

    /// Build the bridge. Returns whether we created it (for rollback).
    async fn build_bridge(&self, spec: &NetworkSpec, o: &BridgeOptions) -> Result<bool> {
        let h = Ns::Host;
        let br = o.bridge_name.as_str();
        let created = match self.sys.get_link(&h, br).await? {
            Some(l) if l.kind.as_deref() == Some("bridge") => {
                if let Some(m) = o.mtu {
                    if l.mtu != Some(m) {
                        self.sys.set_mtu(&h, br, m).await?;
                    }
                }
                false
            }
            Some(l) => {
                return Err(DriverError::Conflict(format!(
                    "interface {br} exists and is not a bridge ({:?})",
                    l.kind
                )))
            }
            None => {
                self.sys.create_bridge(&h, br, o.mtu).await?;
                true
            }
        };
        if !self.cfg.userland_proxy {
            // Loopback-sourced, DNAT'ed packets may leave through the bridge
            // (then masqueraded) and their replies come back (ports.rs).
            let key = format!("net/ipv4/conf/{br}/route_localnet");
            self.sys.sysctl_set(&h, &key, "1").await?;
        }
        if spec.enable_ipv6 {
            let key = format!("net/ipv6/conf/{br}/disable_ipv6");
            if let Err(e) = self.sys.sysctl_set(&h, &key, "0").await {
                tracing::debug!(error = %e, "enable ipv6 on bridge");
            }
        }
        for a in gateway_addrs(spec) {
            self.sys.add_addr(&h, br, a).await?;
        }
        self.sys.set_up(&h, br, true).await?;
        self.enable_forwarding(spec.enable_ipv6).await?;
        Ok(created)
    }
}

#[async_trait]
impl Driver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn validate_network(&self, spec: &NetworkSpec) -> Result<()> {
        parse_bridge_options(spec)?;
        for s in spec.ipv4.iter().chain(&spec.ipv6) {
            if let Some(g) = s.gateway {
                if !s.subnet.contains(g) {
                    return Err(DriverError::InvalidArgument(format!(
                        "gateway {g} is not in subnet {}",
                        s.subnet
                    )));
                }
            }
        }
        if spec.ipv4.iter().any(|s| !s.subnet.is_ipv4())
            || spec.ipv6.iter().any(|s| !s.subnet.is_ipv6())
        {
            return Err(DriverError::InvalidArgument(
                "subnet of the wrong family".into(),
            ));
        }
        Ok(())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<()> {
        self.validate_network(spec)?;
        let o = parse_bridge_options(spec)?;
        let fw = network_fw(spec, &o);
        let table = self.cfg.table.clone();
        if o.bridge_name == "docker0" {
            return Err(DriverError::Conflict(
                "docker0 belongs to Docker; choose another bridge name".into(),
            ));
        }
        let created = {
            let _g = self.ensure_init().await?;
            let pre_existing = self
                .sys
                .get_link(&Ns::Host, &o.bridge_name)
                .await?
                .is_some();
            let built = async {
                let created = self.build_bridge(spec, &o).await?;
                self.sys
                    .nft_apply(&Ns::Host, &rules::add_network(&table, &fw))
                    .await?;
                Ok::<bool, DriverError>(created)
            };
            match built.await {
                Ok(c) => c,
                Err(e) => {
                    // Roll back: elements (idempotent) and a bridge we made.
                    let _ = self
                        .sys
                        .nft_apply(&Ns::Host, &rules::remove_network(&table, &fw))
                        .await;
                    if !pre_existing {
                        let _ = self.sys.delete_link(&Ns::Host, &o.bridge_name).await;
                    }
                    return Err(e);
                }
            }
        };
        tracing::info!(network = %spec.name, bridge = %o.bridge_name, created, "bridge network ready");
        self.sync_docker_best_effort().await;
        Ok(())
    }

    async fn delete_network(&self, spec: &NetworkSpec) -> Result<()> {
        let o = parse_bridge_options(spec)?;
        let fw = network_fw(spec, &o);
        let mut errors = Vec::new();
        {
            let _g = self.ensure_init().await?;
            if let Err(e) = self
                .sys
                .nft_apply(&Ns::Host, &rules::remove_network(&self.cfg.table, &fw))
                .await
            {
                errors.push(e.to_string());
            }
        }
        if let Err(e) = self.sys.delete_link(&Ns::Host, &o.bridge_name).await {
            errors.push(e.to_string());
        }
        self.sync_docker_best_effort().await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(kernel(errors.join("; ")))
        }
    }

    async fn create_endpoint(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<EndpointInfo> {
        let o = parse_bridge_options(net)?;
        let h = Ns::Host;
        let host = host_ifname(&ep.id);
        let peer = peer_ifname(&ep.id);
        let mac = endpoint_mac(ep);
        if crate::sys::parse_mac(&mac).is_none() {
            return Err(DriverError::InvalidArgument(format!(
                "bad MAC address {mac:?}"
            )));
        }
        let info = EndpointInfo {
            host_ifname: Some(host.clone()),
            container_ifname: Some(peer.clone()),
            mac: Some(mac.clone()),
        };
        if self.sys.get_link(&h, &o.bridge_name).await?.is_none() {
            return Err(DriverError::NotFound(format!(
                "bridge {} of network {}",
                o.bridge_name, net.name
            )));
        }
        let existed = self.sys.get_link(&h, &host).await?.is_some();
        if !existed {
            self.sys.create_veth(&h, &host, &peer, o.mtu).await?;
        }
        let steps = async {
            self.sys.set_master(&h, &host, Some(&o.bridge_name)).await?;
            // Hairpin: with br_netfilter (bridge-nf-call-iptables=1, the
            // usual default), a container reaching its OWN published port
            // through the gateway is DNAT'ed in the bridge's prerouting and
            // bridged straight back out of the port it came in by, which the
            // bridge only allows in hairpin mode (dockerd sets it too when it
            // NATs hairpin traffic). Reflected IPv6 DAD probes are ignored by
            // the kernel's enhanced DAD (nonce).
            // ICC off at L2: isolated ports cannot reach each other, only the
            // bridge (gateway). See rules.rs.
            self.sys
                .set_bridge_port(
                    &h,
                    &host,
                    BridgePortFlags {
                        isolated: (!o.icc).then_some(true),
                        hairpin: Some(true),
                    },
                )
                .await?;
            if self.sys.get_link(&h, &peer).await?.is_some() {
                self.sys.set_mac(&h, &peer, &mac).await?;
            }
            // The host end is a bridge port: it forwards IPv6 at L2 but needs no IPv6
            // of its own. Off before it is up, so the kernel does no link-local address,
            // DAD, MLD reports or router solicitations per endpoint (seconds of timer
            // work after each attachment, and routes every later link change walks).
            // Best effort: IPv6 may be off in the kernel.
            let key = format!("net/ipv6/conf/{host}/disable_ipv6");
            if let Err(e) = self.sys.sysctl_set(&h, &key, "1").await {
                tracing::debug!(error = %e, "disabling IPv6 on a bridge port (ignored)");
            }
            self.sys.set_up(&h, &host, true).await
        };
        if let Err(e) = steps.await {
            if !existed {
                let _ = self.sys.delete_link(&h, &host).await;
            }
            return Err(e.into());
        }
        Ok(info)
    }

    async fn delete_endpoint(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> Result<()> {
        let h = Ns::Host;
        // Deleting either end removes the pair; the peer is only still here
        // if the endpoint was never joined.
        self.sys.delete_link(&h, &host_ifname(&ep.id)).await?;
        self.sys.delete_link(&h, &peer_ifname(&ep.id)).await?;
        Ok(())
    }

    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        _sb: &SandboxSpec,
    ) -> Result<JoinInfo> {
        if net.internal {
            // Docker sets no default route through an internal network.
            return Ok(JoinInfo::default());
        }
        let gw_for = |subnets: &[crate::SubnetSpec]| {
            ep.addresses.iter().find_map(|a| {
                subnets
                    .iter()
                    .find(|s| s.subnet.contains(a.ip()))
                    .and_then(|s| s.gateway)
            })
        };
        Ok(JoinInfo {
            gateway4: gw_for(&net.ipv4),
            gateway6: if net.enable_ipv6 {
                gw_for(&net.ipv6)
            } else {
                None
            },
            static_routes: vec![],
        })
    }

    async fn leave(&self, _net: &NetworkSpec, _ep: &EndpointSpec, _sb: &SandboxSpec) -> Result<()> {
        Ok(())
    }

    async fn program_external_connectivity(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        ports: &[PortBinding],
    ) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        if net.internal {
            return Err(DriverError::InvalidArgument(format!(
                "network {} is internal: ports cannot be published on it",
                net.name
            )));
        }
        for p in ports {
            ports::validate(p)?;
            if !ep.addresses.iter().any(|a| a.ip() == p.container_ip) {
                return Err(DriverError::InvalidArgument(format!(
                    "port {}/{}: {} is not an address of endpoint {}",
                    p.host_port, p.proto, p.container_ip, ep.id
                )));
            }
        }
        if ports.iter().any(ports::in_lo_map) {
            // NAT-only bindings are DNAT'ed from 127.0.0.0/8 in both proxy
            // modes: the loopback-sourced packets leave through this bridge
            // (masqueraded, see ports.rs) and their replies must come back.
            let br = parse_bridge_options(net)?.bridge_name;
            let key = format!("net/ipv4/conf/{br}/route_localnet");
            self.sys.sysctl_set(&Ns::Host, &key, "1").await?;
        }
        self.publish(ports).await
    }

    async fn revoke_external_connectivity(
        &self,
        _net: &NetworkSpec,
        _ep: &EndpointSpec,
        ports: &[PortBinding],
    ) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        self.unpublish(ports).await
    }
}

#[cfg(test)]
mod tests;
