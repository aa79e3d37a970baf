//! Sandbox operations: create (own or adopted netns), connect and disconnect networks,
//! delete. A connect is: addresses from IPAM, driver endpoint, driver join, interface
//! into the namespace, default route; each step is undone if a later one fails.

use std::net::IpAddr;

use drivers::{Driver, SandboxSpec};
use ipnetwork::IpNetwork;
use plugin_api::rest;

use super::network::ipam_err;
use super::{check_name, new_id, Controller, State, Txn};
use crate::error::{Error, Result};
use crate::model::{EndpointRec, NetworkRec, SandboxRec};

/// The host's own network namespace, for sandboxes on the `host` network.
pub const HOST_NETNS: &str = "/proc/1/ns/net";

/// Options of one connect, already parsed.
#[derive(Debug, Clone, Default)]
pub struct ConnectOpts {
    pub aliases: Vec<String>,
    pub ip: Option<IpAddr>,
    pub ip6: Option<IpAddr>,
    pub mac: Option<String>,
    pub ifname: Option<String>,
    pub ports: Vec<rest::PortMapping>,
}

impl ConnectOpts {
    pub fn from_rest(c: &rest::NetworkConnect) -> Result<Self> {
        let ip = |s: &Option<String>| -> Result<Option<IpAddr>> {
            s.as_deref()
                .map(|s| {
                    s.parse()
                        .map_err(|e| Error::bad(format!("invalid IP address {s:?}: {e}")))
                })
                .transpose()
        };
        if let Some(m) = &c.mac {
            check_mac(m)?;
        }
        if let Some(i) = &c.ifname {
            if i.is_empty() || i.len() > 15 || i.contains(['/', ':', ' ']) {
                return Err(Error::bad(format!("invalid interface name {i:?}")));
            }
        }
        Ok(ConnectOpts {
            aliases: c.aliases.clone(),
            ip: ip(&c.ip)?,
            ip6: ip(&c.ip6)?,
            mac: c.mac.clone(),
            ifname: c.ifname.clone(),
            ports: c.ports.clone(),
        })
    }
}

pub fn check_mac(m: &str) -> Result<()> {
    let parts: Vec<&str> = m.split(':').collect();
    if parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(())
    } else {
        Err(Error::bad(format!("invalid MAC address {m:?}")))
    }
}

impl Controller {
    fn netns_dir(&self) -> std::path::PathBuf {
        self.cfg.exec_root.join("netns")
    }

    pub async fn create_sandbox(&self, req: rest::SandboxCreate) -> Result<rest::Sandbox> {
        self.create_sandbox_owned(req, "netd", None).await
    }

    /// Create a sandbox on behalf of a face (`owner` "netd", "cni", "docker"); CNI
    /// sandboxes remember their container id so DEL/CHECK/GC can find them.
    pub async fn create_sandbox_owned(
        &self,
        req: rest::SandboxCreate,
        owner: &str,
        cni_container_id: Option<String>,
    ) -> Result<rest::Sandbox> {
        let owner = owner.to_string();
        let id = new_id();
        let name = req.name.clone().unwrap_or_else(|| id[..12].to_string());
        check_name("sandbox", &name)?;
        for d in &req.dns {
            d.parse::<IpAddr>()
                .map_err(|e| Error::bad(format!("invalid DNS server {d:?}: {e}")))?;
        }
        let mut conns = Vec::new();
        for c in &req.networks {
            conns.push((c.target.clone(), ConnectOpts::from_rest(c)?));
        }
        let sid = self
            .with_state(|st, ctl| {
                Box::pin(async move {
                    if st.sandboxes.values().any(|s| s.name == name) {
                        return Err(Error::conflict(format!(
                            "sandbox with name {name} already exists"
                        )));
                    }
                    // Host-network sandboxes live in the host namespace and nothing else.
                    let mut on_host = false;
                    for (n, _) in &conns {
                        if st.network(n)?.driver == "host" {
                            on_host = true;
                        }
                    }
                    if on_host && conns.len() > 1 {
                        return Err(Error::bad(
                            "a sandbox on the host network cannot join other networks",
                        ));
                    }
                    if on_host && req.netns_path.is_some() {
                        return Err(Error::bad("the host network cannot use another netns"));
                    }
                    let (netns_path, owns) = match (&req.netns_path, on_host) {
                        (Some(p), _) => {
                            if let Some(o) = st.sandboxes.values().find(|s| &s.netns_path == p) {
                                return Err(Error::conflict(format!(
                                    "network namespace {p} already belongs to sandbox {}",
                                    o.name
                                )));
                            }
                            if !std::path::Path::new(p).exists() {
                                return Err(Error::bad(format!(
                                    "network namespace {p} does not exist"
                                )));
                            }
                            (p.clone(), false)
                        }
                        (None, true) => (HOST_NETNS.to_string(), false),
                        (None, false) => {
                            let p = ctl.netns_dir().join(&id);
                            (p.to_string_lossy().into_owned(), true)
                        }
                    };
                    let sb = SandboxRec {
                        id: id.clone(),
                        name: name.clone(),
                        netns_path: netns_path.clone(),
                        owns_netns: owns,
                        hostname: req.hostname.clone(),
                        dns: req.dns.clone(),
                        endpoints: vec![],
                        owner: owner.clone(),
                        cni_container_id: cni_container_id.clone(),
                    };
                    // Persist first, so a crash right after creating the namespace
                    // leaves a record that start-up reconciliation can finish or undo.
                    let mut t = Txn::new();
                    t.sandbox(&sb);
                    t.commit(&*ctl.store)?;
                    if owns {
                        if let Err(e) = ctl.kernel.create_netns(&netns_path).await {
                            let mut t = Txn::new();
                            t.del_sandbox(&id);
                            t.commit(&*ctl.store)?;
                            return Err(e);
                        }
                    }
                    // Arm the embedded DNS while the endpoints are being built.
                    if let Some(d) = &ctl.dns {
                        let wants = conns
                            .iter()
                            .any(|(n, _)| st.network(n).is_ok_and(|n| n.has_embedded_dns()));
                        if wants && owner != "docker" {
                            d.prearm(&sb);
                        }
                    }
                    st.sandboxes.insert(id.clone(), sb);
                    // Each connect writes the files once it has routed; a sandbox
                    // without networks gets them now.
                    if conns.is_empty() {
                        ctl.sandbox_changed(st, &id);
                    }
                    for (net, opts) in conns {
                        if let Err(e) = ctl.connect_locked(st, &net, &id, opts).await {
                            let _ = ctl.delete_sandbox_locked(st, &id).await;
                            return Err(e);
                        }
                    }
                    Ok(id)
                })
            })
            .await?;
        tracing::info!(sandbox = %sid, "sandbox created");
        self.inspect_sandbox(&sid, false).await
    }

    pub async fn list_sandboxes(&self) -> Vec<rest::Sandbox> {
        let st = self.view();
        st.sandboxes
            .values()
            .map(|s| sandbox_rest(&st, s))
            .collect()
    }

    pub async fn inspect_sandbox(&self, key: &str, kernel_view: bool) -> Result<rest::Sandbox> {
        let (mut out, path) = {
            let st = self.view();
            let s = st.sandbox(key)?;
            (sandbox_rest(&st, s), s.netns_path.clone())
        };
        if kernel_view {
            out.kernel = Some(match self.kernel.inspect(&path).await {
                Ok(v) => v,
                Err(e) => serde_json::json!({ "error": e.message }),
            });
        }
        Ok(out)
    }

    pub async fn delete_sandbox(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        let id = self
            .with_state(|st, ctl| {
                Box::pin(async move {
                    let id = st.sandbox(&key)?.id.clone();
                    ctl.delete_sandbox_locked(st, &id).await?;
                    Ok(id)
                })
            })
            .await?;
        tracing::info!(sandbox = %id, "sandbox removed");
        Ok(())
    }

    /// Remove every endpoint, then the namespace (if netd made it), then the record.
    /// Teardown keeps going past errors and reports the first.
    pub(crate) async fn delete_sandbox_locked(&self, st: &mut State, id: &str) -> Result<()> {
        let sb = st
            .sandboxes
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no such sandbox: {id}")))?;
        // Teardown keeps going past kernel errors: once the records are gone from the
        // store the sandbox is gone for good, and whatever the kernel kept is a leftover
        // for reconciliation (logged here), never a reason to fail half-way.
        for ep in sb.endpoints.iter().rev() {
            if let Err(e) = self.disconnect_endpoint_locked(st, ep).await {
                if e.kind == crate::error::Kind::Internal && e.message.starts_with("state store") {
                    return Err(e);
                }
                tracing::warn!(sandbox = %id, endpoint = %ep, error = %e, "teardown");
            }
        }
        if sb.owns_netns {
            if let Err(e) = self.kernel.delete_netns(&sb.netns_path).await {
                tracing::warn!(sandbox = %id, error = %e, "removing the namespace; reconciliation will retry");
            }
        }
        st.sandboxes.remove(id);
        let _ = std::fs::remove_dir_all(crate::dns::sandbox_dir(&self.cfg.exec_root, id));
        let mut t = Txn::new();
        t.del_sandbox(id);
        t.commit(&*self.store)?;
        Ok(())
    }

    pub async fn connect(
        &self,
        network: &str,
        sandbox: &str,
        opts: ConnectOpts,
    ) -> Result<rest::Endpoint> {
        let (network, sandbox) = (network.to_string(), sandbox.to_string());
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let sid = st.sandbox(&sandbox)?.id.clone();
                let ep = ctl.connect_locked(st, &network, &sid, opts).await?;
                let net = &st.networks[&ep.network_id];
                Ok(ep.to_rest(&net.name))
            })
        })
        .await
    }

    pub async fn disconnect(&self, network: &str, sandbox: &str) -> Result<()> {
        let (network, sandbox) = (network.to_string(), sandbox.to_string());
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let nid = st.network(&network)?.id.clone();
                let sb = st.sandbox(&sandbox)?.clone();
                let ep = sb
                    .endpoints
                    .iter()
                    .find(|e| st.endpoints.get(*e).is_some_and(|e| e.network_id == nid))
                    .cloned()
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "sandbox {} is not connected to network {}",
                            sb.name, network
                        ))
                    })?;
                ctl.disconnect_endpoint_locked(st, &ep).await
            })
        })
        .await
    }

    /// Connect sandbox `sid` to `network`; on failure everything done here is undone.
    pub(crate) async fn connect_locked(
        &self,
        st: &mut State,
        network: &str,
        sid: &str,
        opts: ConnectOpts,
    ) -> Result<EndpointRec> {
        let net = st.network(network)?.clone();
        let sb = st.sandboxes[sid].clone();
        if sb
            .endpoints
            .iter()
            .any(|e| st.endpoints.get(e).is_some_and(|e| e.network_id == net.id))
        {
            return Err(Error::conflict(format!(
                "sandbox {} is already connected to network {}",
                sb.name, net.name
            )));
        }
        if net.driver == "host" && sb.netns_path != HOST_NETNS {
            return Err(Error::bad(
                "only a sandbox created on the host network can use it",
            ));
        }
        if sb.netns_path == HOST_NETNS && net.driver != "host" {
            return Err(Error::bad(
                "a host-network sandbox cannot join other networks",
            ));
        }
        if net.driver == "null" && !sb.endpoints.is_empty() {
            return Err(Error::bad(
                "the none network cannot be combined with others",
            ));
        }
        if !opts.ports.is_empty() && net.driver != "bridge" {
            return Err(Error::bad(format!(
                "ports can only be published on bridge networks, not {}",
                net.driver
            )));
        }
        let driver = self.driver(&net.driver)?;
        let ifname = match &opts.ifname {
            Some(n) => n.clone(),
            None => next_ifname(st, &sb),
        };
        let mut ep = EndpointRec {
            id: new_id(),
            name: sb.name.clone(),
            network_id: net.id.clone(),
            sandbox_id: Some(sid.to_string()),
            addresses: vec![],
            mac: opts.mac.clone(),
            host_ifname: None,
            container_ifname: None,
            ifname: None,
            aliases: opts.aliases.clone(),
            ports: vec![],
            gateway4: None,
            gateway6: None,
            owner: sb.owner.clone(),
            external_join: false,
        };
        if driver.needs_ipam() {
            allocate_addresses(st, &net, &mut ep, opts.ip, opts.ip6)?;
        } else if opts.ip.is_some() || opts.ip6.is_some() {
            return Err(Error::bad(format!(
                "network {} ({}) has no addresses to assign",
                net.name, net.driver
            )));
        }
        // Intent: the endpoint exists in the store before the kernel has it, so a crash
        // in the middle is finished or undone by start-up reconciliation.
        let mut sb2 = sb.clone();
        sb2.endpoints.push(ep.id.clone());
        let mut t = Txn::new();
        t.endpoint(&ep).sandbox(&sb2).ipam(&st.ipam);
        t.commit(&*self.store)?;
        let res = match self.allocate_ports(st, &ep, &opts.ports) {
            Ok(reserved) => {
                self.build_endpoint(&*driver, &net, &mut ep, &sb, &ifname, reserved)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            let _ = self
                .teardown_endpoint_kernel(&*driver, &net, &ep, &sb)
                .await;
            release_addresses(st, &net, &ep);
            let mut t = Txn::new();
            t.del_endpoint(&ep.id).sandbox(&sb).ipam(&st.ipam);
            t.commit(&*self.store)?;
            return Err(e);
        }
        st.endpoints.insert(ep.id.clone(), ep.clone());
        st.sandboxes.insert(sid.to_string(), sb2);
        self.update_gateway(st, sid).await?;
        let mut t = Txn::new();
        t.endpoint(&ep);
        t.commit(&*self.store)?;
        tracing::info!(endpoint = %ep.id, network = %net.id, sandbox = %sid, "connected");
        Ok(ep)
    }

    pub(crate) async fn build_endpoint(
        &self,
        driver: &dyn Driver,
        net: &NetworkRec,
        ep: &mut EndpointRec,
        sb: &SandboxRec,
        ifname: &str,
        reserved: Vec<super::ports::Reserved>,
    ) -> Result<()> {
        let nspec = net.spec();
        let espec = ep.spec();
        let create = driver.create_endpoint(&nspec, &espec);
        let info = self
            .kernel
            .with_peer_in_sandbox(&sb.netns_path, ifname, ep.mac.as_deref(), create)
            .await?;
        ep.host_ifname = info.host_ifname.clone();
        ep.container_ifname = info.container_ifname.clone();
        if ep.mac.is_none() {
            ep.mac = info.mac.clone();
        }
        let sspec = SandboxSpec {
            id: sb.id.clone(),
            netns_path: sb.netns_path.clone(),
        };
        let join = driver.join(&nspec, &ep.spec(), &sspec).await?;
        ep.gateway4 = join.gateway4;
        ep.gateway6 = join.gateway6;
        if let Some(src) = &info.container_ifname {
            self.kernel
                .add_interface(
                    &sb.netns_path,
                    src,
                    ifname,
                    ep.mac.as_deref(),
                    &ep.addresses,
                )
                .await?;
            ep.ifname = Some(ifname.to_string());
            for (dst, via) in &join.static_routes {
                self.kernel
                    .add_route(&sb.netns_path, *dst, *via, ifname)
                    .await?;
            }
        }
        if !reserved.is_empty() {
            ep.ports = reserved.iter().map(|r| r.binding.clone()).collect();
            driver
                .program_external_connectivity(&nspec, &ep.spec(), &ep.ports)
                .await?;
            self.start_port_proxies(ep, reserved)?;
        }
        Ok(())
    }

    /// Undo the kernel side of an endpoint (idempotent, keeps going on errors).
    async fn teardown_endpoint_kernel(
        &self,
        driver: &dyn Driver,
        net: &NetworkRec,
        ep: &EndpointRec,
        sb: &SandboxRec,
    ) -> Result<()> {
        let nspec = net.spec();
        let mut first = None;
        self.stop_port_proxies(ep);
        if let Err(e) = driver
            .revoke_external_connectivity(&nspec, &ep.spec(), &ep.ports)
            .await
        {
            first.get_or_insert(Error::from(e));
        }
        let sspec = SandboxSpec {
            id: sb.id.clone(),
            netns_path: sb.netns_path.clone(),
        };
        if let Err(e) = driver.leave(&nspec, &ep.spec(), &sspec).await {
            first.get_or_insert(Error::from(e));
        }
        if let Some(ifn) = &ep.ifname {
            if !ep.external_join {
                if let Err(e) = self.kernel.remove_interface(&sb.netns_path, ifn).await {
                    first.get_or_insert(e);
                }
            }
        }
        if let Err(e) = driver.delete_endpoint(&nspec, &ep.spec()).await {
            first.get_or_insert(Error::from(e));
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Disconnect one endpoint from its sandbox and delete it.
    pub(crate) async fn disconnect_endpoint_locked(
        &self,
        st: &mut State,
        ep_id: &str,
    ) -> Result<()> {
        let ep = st
            .endpoints
            .get(ep_id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no such endpoint: {ep_id}")))?;
        let net = st.networks[&ep.network_id].clone();
        let driver = self.driver(&net.driver)?;
        let sb = ep
            .sandbox_id
            .as_ref()
            .and_then(|s| st.sandboxes.get(s))
            .cloned();
        let res = match &sb {
            Some(sb) => self.teardown_endpoint_kernel(&*driver, &net, &ep, sb).await,
            None => driver
                .delete_endpoint(&net.spec(), &ep.spec())
                .await
                .map_err(Error::from),
        };
        if let Err(e) = &res {
            tracing::warn!(endpoint = %ep.id, error = %e, "endpoint teardown incomplete");
        }
        release_addresses(st, &net, &ep);
        st.endpoints.remove(ep_id);
        let mut t = Txn::new();
        t.del_endpoint(ep_id).ipam(&st.ipam);
        if let Some(sb) = sb {
            let mut sb = sb.clone();
            sb.endpoints.retain(|e| e != ep_id);
            t.sandbox(&sb);
            st.sandboxes.insert(sb.id.clone(), sb.clone());
            t.commit(&*self.store)?;
            // The endpoint is gone for good; a namespace that vanished (the runtime
            // deleted it) or a route that cannot be moved is not a reason to fail.
            if let Err(e) = self.update_gateway(st, &sb.id).await {
                tracing::warn!(sandbox = %sb.id, error = %e, "default route after disconnect");
            }
        } else {
            t.commit(&*self.store)?;
        }
        tracing::info!(endpoint = %ep_id, network = %net.id, "disconnected");
        Ok(())
    }

    /// The first endpoint (in join order) that offers a gateway provides the default
    /// route, per address family, like libnetwork's gateway endpoint.
    pub(crate) async fn update_gateway(&self, st: &State, sid: &str) -> Result<()> {
        self.sandbox_changed(st, sid);
        let sb = &st.sandboxes[sid];
        // Docker moves and routes its own interfaces; the host's routes are not ours.
        if sb.owner == "docker" || sb.netns_path == HOST_NETNS {
            return Ok(());
        }
        let eps: Vec<&EndpointRec> = sb
            .endpoints
            .iter()
            .filter_map(|e| st.endpoints.get(e))
            .filter(|e| !e.external_join && e.ifname.is_some())
            .collect();
        let gw4 = eps
            .iter()
            .find_map(|e| e.gateway4.map(|g| (g, e.ifname.clone().unwrap())));
        let gw6 = eps
            .iter()
            .find_map(|e| e.gateway6.map(|g| (g, e.ifname.clone().unwrap())));
        if eps.is_empty() {
            return Ok(());
        }
        self.kernel
            .set_gateway(&sb.netns_path, gw4.map(|g| g.0), gw6.map(|g| g.0))
            .await
    }
}

/// eth<N> with the lowest N not used in the sandbox.
pub(crate) fn next_ifname(st: &State, sb: &SandboxRec) -> String {
    let used: Vec<String> = sb
        .endpoints
        .iter()
        .filter_map(|e| st.endpoints.get(e).and_then(|e| e.ifname.clone()))
        .collect();
    (0..)
        .map(|i| format!("eth{i}"))
        .find(|n| !used.contains(n))
        .expect("unbounded")
}

/// One address per subnet family (the first v4 and first v6 subnet), specific when asked.
pub(crate) fn allocate_addresses(
    st: &mut State,
    net: &NetworkRec,
    ep: &mut EndpointRec,
    ip: Option<IpAddr>,
    ip6: Option<IpAddr>,
) -> Result<()> {
    for v6 in [false, true] {
        let want = if v6 { ip6 } else { ip };
        let subnet = match want {
            Some(a) => net
                .subnets
                .iter()
                .find(|s| s.subnet.contains(a))
                .ok_or_else(|| {
                    Error::bad(format!(
                        "address {a} is not in any subnet of network {}",
                        net.name
                    ))
                })?,
            None => match net.subnets.iter().find(|s| s.subnet.is_ipv6() == v6) {
                Some(s) => s,
                None => continue,
            },
        };
        let addr = st
            .ipam
            .request_address(&subnet.pool, want)
            .map_err(ipam_err)?;
        let cidr = IpNetwork::new(addr, subnet.subnet.prefix())
            .map_err(|e| Error::internal(e.to_string()))?;
        ep.addresses.push(cidr);
    }
    Ok(())
}

pub(crate) fn release_addresses(st: &mut State, net: &NetworkRec, ep: &EndpointRec) {
    if net.external_ipam {
        return;
    }
    for a in &ep.addresses {
        if let Some(s) = net.subnets.iter().find(|s| s.subnet.contains(a.ip())) {
            if let Err(e) = st.ipam.release_address(&s.pool, a.ip()) {
                tracing::warn!(endpoint = %ep.id, address = %a, error = %e, "release address");
            }
        }
    }
}

pub(crate) fn sandbox_rest(st: &State, s: &SandboxRec) -> rest::Sandbox {
    rest::Sandbox {
        id: s.id.clone(),
        name: s.name.clone(),
        netns_path: s.netns_path.clone(),
        owns_netns: s.owns_netns,
        hostname: s.hostname.clone(),
        dns: s.dns.clone(),
        endpoints: s
            .endpoints
            .iter()
            .filter_map(|e| st.endpoints.get(e))
            .map(|e| endpoint_rest(st, e))
            .collect(),
        owner: s.owner.clone(),
        kernel: None,
    }
}

/// An endpoint as the REST API shows it (with its network's name).
pub fn endpoint_rest(st: &State, e: &EndpointRec) -> rest::Endpoint {
    let nn = st
        .networks
        .get(&e.network_id)
        .map(|n| n.name.as_str())
        .unwrap_or("");
    e.to_rest(nn)
}

impl Controller {
    /// Rename a sandbox; the embedded DNS answers the new name at once.
    pub async fn rename_sandbox(&self, key: &str, new_name: &str) -> Result<()> {
        check_name("sandbox", new_name)?;
        let (key, new_name) = (key.to_string(), new_name.to_string());
        self.with_state(|st, ctl| {
            Box::pin(async move {
                let mut sb = st.sandbox(&key)?.clone();
                if st
                    .sandboxes
                    .values()
                    .any(|s| s.name == new_name && s.id != sb.id)
                {
                    return Err(Error::conflict(format!(
                        "sandbox name {new_name} is already in use"
                    )));
                }
                sb.name = new_name.clone();
                let mut t = Txn::new();
                t.sandbox(&sb);
                let eps: Vec<EndpointRec> = sb
                    .endpoints
                    .iter()
                    .filter_map(|e| st.endpoints.get(e).cloned())
                    .map(|mut e| {
                        e.name = new_name.clone();
                        e
                    })
                    .collect();
                for e in &eps {
                    t.endpoint(e);
                }
                t.commit(&*ctl.store)?;
                for e in eps {
                    st.endpoints.insert(e.id.clone(), e);
                }
                let id = sb.id.clone();
                st.sandboxes.insert(id.clone(), sb);
                ctl.sandbox_changed(st, &id);
                Ok(())
            })
        })
        .await
    }
}
