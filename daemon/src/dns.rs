//! Embedded DNS wiring and per-sandbox files (`resolv.conf`, `hosts`).
//!
//! Design (like Docker's, explained): inside each sandbox's namespace netd binds a UDP
//! and a TCP socket on 127.0.0.11 at *random* ports and installs a tiny nftables table
//! (`ip netd_dns`, nat output hook) that DNATs 127.0.0.11:53 to them. Containers thus
//! keep port 53 free for their own servers (binding 0.0.0.0:53 in the container works),
//! while queries to 127.0.0.11:53 reach netd. Conntrack undoes the DNAT on replies, so
//! the client sees 127.0.0.11:53 answer. The sockets belong to the sandbox's namespace
//! but are served by the daemon's one tokio runtime ([`resolver::Resolver`]); every
//! socket carries its sandbox id, since all queries arrive from 127.0.0.1.
//!
//! Names are scoped to the networks a sandbox is on. After every operation the changes
//! to the controller's state are applied to the table, and a copy of it (cheap: it
//! shares structure) is swapped into the resolver.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use drivers::sys::nfnl::{self, Expr};
use drivers::sys::nlsync::SyncNetlink;
use drivers::sys::NsOp;
use resolver::{Resolver, SandboxServer, Table};

use crate::controller::{Map, State, HOST_NETNS};
use crate::error::{Error, Result};
use crate::model::{EndpointRec, NetworkRec, SandboxRec};

/// Name of the per-sandbox nftables table that DNATs 127.0.0.11:53.
pub const DNS_TABLE: &str = "netd_dns";
pub const DNS_ADDR: &str = "127.0.0.11";

pub struct Dns {
    pub resolver: Resolver,
    /// The state the resolver's table was last brought in line with.
    synced: Mutex<Synced>,
    servers: Mutex<HashMap<String, Armed>>,
    /// Removals of the DNAT table from namespaces that outlive their listeners
    /// (adopted ones, or a sandbox that left its last DNS network), by netns path.
    /// Arming in the same namespace waits for them, so they never remove a newer table.
    teardowns: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Listeners being armed ahead of time (while the sandbox's endpoints are built).
    pending: Mutex<HashMap<String, tokio::task::JoinHandle<Result<SandboxServer>>>>,
    /// Search domains and options copied from the host's resolv.conf.
    host_search: Vec<String>,
}

/// Does this sandbox get the embedded DNS? Sandboxes of netd's own runtime and of CNI
/// on a user-defined bridge network do; Docker keeps its own DNS for its containers,
/// host-network sandboxes use the host's resolv.conf and `none` has none.
pub fn wants_dns(st: &State, sb: &SandboxRec) -> bool {
    sb.owner != "docker"
        && sb.netns_path != HOST_NETNS
        && sb.endpoints.iter().any(|e| {
            st.endpoints
                .get(e)
                .and_then(|e| st.networks.get(&e.network_id))
                .is_some_and(|n| n.has_embedded_dns())
        })
}

/// The per-sandbox table DNATing 127.0.0.11:53 (UDP and TCP) to netd's listeners,
/// loaded over netlink in one batch (no `nft` process: arming runs for every new
/// sandbox). `replace`: delete whatever an earlier arming left (slow: the kernel waits
/// for RCU grace periods); otherwise the batch creates the table and fails with EEXIST
/// when it is there already.
pub fn dnat_batch(udp_port: u16, tcp_port: u16, replace: bool) -> nfnl::Batch {
    let a: Ipv4Addr = DNS_ADDR.parse().expect("static");
    let mut b = nfnl::Batch::new(nfnl::NFPROTO_IPV4);
    if replace {
        b.add_table(DNS_TABLE)
            .delete_table(DNS_TABLE)
            .add_table(DNS_TABLE);
    } else {
        b.create_table(DNS_TABLE);
    }
    b.add_base_chain(DNS_TABLE, "output", "nat", nfnl::HOOK_OUTPUT, -100);
    for (proto, port) in [
        (libc::IPPROTO_UDP as u8, udp_port),
        (libc::IPPROTO_TCP as u8, tcp_port),
    ] {
        let mut rule = Expr::ip_daddr_eq(a).to_vec();
        rule.extend(Expr::l4_dport_eq(proto, 53));
        rule.extend(Expr::dnat4(a, port));
        b.add_rule(DNS_TABLE, "output", &rule);
    }
    b
}

impl Dns {
    pub fn new(resolver: Resolver) -> Self {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let rc = resolver::parse_resolv_conf(&host);
        Dns {
            resolver,
            synced: Mutex::new(Synced::default()),
            servers: Mutex::new(HashMap::new()),
            teardowns: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            host_search: rc.search,
        }
    }

    /// Bring the name table and the listeners in line with `st`. Only what changed since
    /// the last call is touched (found by diffing the state's persistent maps, which
    /// skips the parts they share), so the cost of an operation does not grow with the
    /// number of sandboxes.
    pub async fn sync(&self, st: &State) {
        let check = {
            let mut g = self.synced.lock().unwrap();
            let check = g.apply(st);
            self.resolver.set_table(g.table.clone());
            check
        };
        // Pre-armed listeners of sandboxes that did not come to be (a failed create).
        let orphans: Vec<String> = self
            .pending
            .lock()
            .unwrap()
            .keys()
            .filter(|id| !st.sandboxes.get(*id).is_some_and(|s| wants_dns(st, s)))
            .cloned()
            .collect();
        for id in orphans {
            if let Some(h) = self.pending.lock().unwrap().remove(&id) {
                h.abort();
            }
        }
        for id in check {
            let want = st.sandboxes.get(&id).filter(|s| wants_dns(st, s));
            let Some(sb) = want else {
                if let Some(a) = self.servers.lock().unwrap().remove(&id) {
                    // A namespace netd deletes with its sandbox takes the table along.
                    if !a.owns_netns || st.sandboxes.contains_key(&id) {
                        self.teardown(a.netns_path);
                    }
                }
                if let Some(h) = self.pending.lock().unwrap().remove(&id) {
                    h.abort();
                }
                continue;
            };
            if self.servers.lock().unwrap().contains_key(&sb.id) {
                continue;
            }
            let early = self.pending.lock().unwrap().remove(&sb.id);
            let res = match early {
                Some(h) => match h.await {
                    Ok(r) => r,
                    Err(e) => Err(Error::internal(format!("arming DNS: {e}"))),
                },
                None => self.arm(sb).await,
            };
            match res {
                Ok(s) => {
                    self.servers.lock().unwrap().insert(
                        sb.id.clone(),
                        Armed {
                            _server: s,
                            netns_path: sb.netns_path.clone(),
                            owns_netns: sb.owns_netns,
                        },
                    );
                }
                Err(e) => {
                    self.synced.lock().unwrap().retry.insert(sb.id.clone());
                    tracing::error!(sandbox = %sb.id, error = %e, "embedded DNS not available")
                }
            }
        }
    }

    /// Start arming a new sandbox's listeners now, in parallel with building its
    /// endpoints (it needs a thread inside the namespace);
    /// the next [`Dns::sync`] collects the result, or drops it if the sandbox turned
    /// out not to want DNS.
    pub fn prearm(&self, sb: &SandboxRec) {
        let h = tokio::spawn(self.arm(sb));
        if let Some(old) = self.pending.lock().unwrap().insert(sb.id.clone(), h) {
            old.abort();
        }
    }

    /// Arming as a future that owns what it needs, after any teardown still running
    /// in the same namespace.
    fn arm(&self, sb: &SandboxRec) -> impl std::future::Future<Output = Result<SandboxServer>> {
        let before = self.teardowns.lock().unwrap().remove(&sb.netns_path);
        let (resolver, sb) = (self.resolver.clone(), sb.clone());
        async move {
            if let Some(h) = before {
                let _ = h.await;
            }
            arm(resolver, sb).await
        }
    }

    /// Remove the DNAT table from a namespace that stays (in the background: deleting a
    /// table waits for an RCU grace period, 5–15 ms). Gone namespace or table: done.
    fn teardown(&self, netns_path: String) {
        let mut g = self.teardowns.lock().unwrap();
        // Finished ones have nothing left to wait for (this keeps the map as small as
        // the number of teardowns in flight).
        g.retain(|_, h| !h.is_finished());
        let before = g.remove(&netns_path);
        let path = netns_path.clone();
        let h = tokio::spawn(async move {
            if let Some(h) = before {
                let _ = h.await;
            }
            let r = drivers::sys::netns::run_in_netns(Path::new(&path), || {
                let mut b = nfnl::Batch::new(nfnl::NFPROTO_IPV4);
                b.delete_table(DNS_TABLE);
                b.commit()
            })
            .await;
            match r {
                Ok(Err(e)) if !e.is_gone() => {
                    tracing::warn!(netns = %path, error = %e, "removing the DNS DNAT table")
                }
                _ => {}
            }
        });
        g.insert(netns_path, h);
    }

    pub fn is_armed(&self, sandbox_id: &str) -> bool {
        self.servers.lock().unwrap().contains_key(sandbox_id)
    }

    /// The search domains for sandbox resolv.conf files.
    pub fn search(&self) -> &[String] {
        &self.host_search
    }
}

/// A sandbox's running listeners, and where their DNAT table lives.
struct Armed {
    _server: SandboxServer,
    netns_path: String,
    owns_netns: bool,
}

/// Bind the sockets inside the sandbox, DNAT port 53 to them, serve.
async fn arm(resolver: Resolver, sb: SandboxRec) -> Result<SandboxServer> {
    let (udp, tcp) = drivers::sys::netns::run_in_netns(Path::new(&sb.netns_path), move || {
        // Adopted namespaces (CNI) may have loopback down. In this thread, so arming
        // enters the namespace once.
        let lo_up = [NsOp::SetUp {
            name: "lo".into(),
            up: true,
        }];
        if let Err(e) = SyncNetlink::open().and_then(|mut n| n.run(&lo_up)) {
            tracing::debug!(error = %e, "bringing lo up for the embedded DNS");
        }
        // A deep receive queue rides out short daemon stalls instead of dropping
        // queries (the kernel caps it at net.core.rmem_max).
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        let _ = s.set_recv_buffer_size(4 << 20);
        let addr: std::net::SocketAddr =
            (DNS_ADDR.parse::<std::net::Ipv4Addr>().expect("static"), 0).into();
        s.bind(&addr.into())?;
        let udp: std::net::UdpSocket = s.into();
        let tcp = std::net::TcpListener::bind((DNS_ADDR, 0))?;
        let (up, tp) = (udp.local_addr()?.port(), tcp.local_addr()?.port());
        // A new namespace has no table yet: the fast batch. Re-arming (daemon restart,
        // an adopted namespace that had one) replaces it.
        dnat_batch(up, tp, false)
            .commit()
            .or_else(|e| match e.is_exists() {
                true => dnat_batch(up, tp, true).commit(),
                false => Err(e),
            })
            .map_err(|e| std::io::Error::other(format!("DNS DNAT rules: {e}")))?;
        Ok::<_, std::io::Error>((udp, tcp))
    })
    .await
    .map_err(|e| Error::internal(format!("entering {}: {e}", sb.netns_path)))?
    .map_err(|e| Error::internal(format!("arming DNS in {}: {e}", sb.netns_path)))?;
    let (up, tp) = (
        udp.local_addr().map_err(io)?.port(),
        tcp.local_addr().map_err(io)?.port(),
    );
    let server = resolver
        .serve_sandbox(sb.id.clone(), udp, tcp)
        .map_err(|e| Error::internal(format!("DNS listeners: {e}")))?;
    tracing::debug!(sandbox = %sb.id, udp = up, tcp = tp, "embedded DNS armed");
    Ok(server)
}

fn io(e: std::io::Error) -> Error {
    Error::internal(e.to_string())
}

/// What [`Dns::sync`] last saw, and what it put into the table.
#[derive(Default)]
struct Synced {
    networks: Map<NetworkRec>,
    endpoints: Map<EndpointRec>,
    sandboxes: Map<SandboxRec>,
    table: Table,
    /// The names each endpoint registered, to take them out again.
    entries: HashMap<String, Entry>,
    /// Sandboxes whose listeners could not be armed: tried again on the next sync.
    retry: BTreeSet<String>,
}

/// One endpoint's names in the table (the arguments of `Table::add_endpoint`).
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    network_id: String,
    network_name: String,
    name: String,
    aliases: Vec<String>,
    short_id: String,
    addrs: Vec<IpAddr>,
}

impl Entry {
    fn add_to(&self, t: &mut Table) {
        t.add_endpoint(
            &self.network_id,
            &self.network_name,
            &self.name,
            &self.aliases,
            &self.short_id,
            &self.addrs,
        );
    }

    fn remove_from(&self, t: &mut Table) {
        t.remove_endpoint(
            &self.network_id,
            &self.name,
            &self.aliases,
            &self.short_id,
            &self.addrs,
        );
    }
}

/// The names an endpoint has in `st`: those on a network with the embedded DNS, of an
/// endpoint that is in a sandbox.
fn entry_of(st: &State, ep: &EndpointRec) -> Option<Entry> {
    let net = st.networks.get(&ep.network_id)?;
    if !net.has_embedded_dns() {
        return None;
    }
    let sb = ep.sandbox_id.as_ref().and_then(|s| st.sandboxes.get(s))?;
    Some(Entry {
        network_id: net.id.clone(),
        network_name: net.name.clone(),
        name: sb.name.clone(),
        aliases: ep.aliases.clone(),
        short_id: if sb.owner == "netd" {
            sb.id[..12].to_string()
        } else {
            String::new()
        },
        addrs: ep.addresses.iter().map(|a| a.ip()).collect(),
    })
}

fn subnets_of(net: &NetworkRec) -> Vec<resolver::Subnet> {
    net.subnets
        .iter()
        .filter_map(|s| resolver::Subnet::new(s.subnet.network(), s.subnet.prefix()).ok())
        .collect()
}

/// A sandbox's scope: the networks of its endpoints, and its own upstreams (`--dns`).
fn scope_of(st: &State, sb: &SandboxRec) -> (Vec<String>, Vec<SocketAddr>) {
    let nets = sb
        .endpoints
        .iter()
        .filter_map(|e| st.endpoints.get(e).map(|e| e.network_id.clone()))
        .collect();
    let ups = sb
        .dns
        .iter()
        .filter_map(|d| d.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
        .collect();
    (nets, ups)
}

impl Synced {
    /// Apply the differences between the last state seen and `st` to the table. Returns
    /// the sandboxes whose listeners may need arming or dropping.
    fn apply(&mut self, st: &State) -> BTreeSet<String> {
        use imbl::ordmap::DiffItem;
        fn key<'a, V>(d: &DiffItem<'a, 'a, String, V>) -> &'a String {
            match d {
                DiffItem::Add(k, _) | DiffItem::Remove(k, _) => k,
                DiffItem::Update { new: (k, _), .. } => k,
            }
        }
        fn values<'a, V>(d: &DiffItem<'a, 'a, String, V>) -> Vec<&'a V> {
            match d {
                DiffItem::Add(_, v) | DiffItem::Remove(_, v) => vec![*v],
                DiffItem::Update { old, new } => vec![old.1, new.1],
            }
        }
        let mut eps: BTreeSet<String> = BTreeSet::new();
        let mut sbs: BTreeSet<String> = std::mem::take(&mut self.retry);
        let mut nets: Vec<String> = Vec::new();
        for d in self.networks.diff(&st.networks) {
            // Rare (create/remove network): every endpoint on it is looked at again.
            let id = key(&d).clone();
            for e in self.endpoints.values().chain(st.endpoints.values()) {
                if e.network_id == id {
                    eps.insert(e.id.clone());
                    sbs.extend(e.sandbox_id.iter().cloned());
                }
            }
            nets.push(id);
        }
        for d in self.endpoints.diff(&st.endpoints) {
            eps.insert(key(&d).clone());
            for e in values(&d) {
                sbs.extend(e.sandbox_id.iter().cloned());
            }
        }
        for d in self.sandboxes.diff(&st.sandboxes) {
            sbs.insert(key(&d).clone());
            for s in values(&d) {
                eps.extend(s.endpoints.iter().cloned());
            }
        }
        // Out with the old names (before a network's name changes), in with the new.
        let mut fresh = Vec::new();
        for id in &eps {
            let new = st.endpoints.get(id).and_then(|e| entry_of(st, e));
            let old = self.entries.get(id);
            if old == new.as_ref() {
                continue;
            }
            if let Some(o) = self.entries.remove(id) {
                o.remove_from(&mut self.table);
            }
            if let Some(n) = new {
                fresh.push((id.clone(), n));
            }
        }
        for id in nets {
            match st.networks.get(&id).filter(|n| n.has_embedded_dns()) {
                Some(n) => {
                    self.table.set_network(&n.id, &n.name, &subnets_of(n));
                }
                None => {
                    self.table.remove_network(&id);
                }
            }
        }
        for (id, n) in fresh {
            n.add_to(&mut self.table);
            self.entries.insert(id, n);
        }
        for id in &sbs {
            match st.sandboxes.get(id) {
                Some(sb) => {
                    let (nets, ups) = scope_of(st, sb);
                    self.table.set_sandbox_scope(id, &nets, &ups);
                }
                None => {
                    self.table.remove_sandbox(id);
                }
            }
        }
        self.networks = st.networks.clone();
        self.endpoints = st.endpoints.clone();
        self.sandboxes = st.sandboxes.clone();
        sbs
    }
}

/// The resolver's table built from scratch: every endpoint with addresses on a
/// user-defined bridge network, and each sandbox's scope (its networks) and own upstreams
/// (`--dns`). [`Dns::sync`] keeps the same table incrementally; this is its reference.
pub fn build_table(st: &State) -> Table {
    let mut b = Table::builder();
    for net in st.networks.values().filter(|n| n.has_embedded_dns()) {
        b.set_network(&net.id, &net.name, &subnets_of(net));
    }
    for ep in st.endpoints.values() {
        if let Some(n) = entry_of(st, ep) {
            n.add_to(&mut b);
        }
    }
    for sb in st.sandboxes.values() {
        let (nets, ups) = scope_of(st, sb);
        b.set_sandbox_scope(&sb.id, &nets, &ups);
    }
    b.build()
}

/// Per-sandbox files under `<exec_root>/sandboxes/<id>/`.
pub fn sandbox_dir(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("sandboxes").join(id)
}

/// Write `hosts`, `resolv.conf` and `hostname` for a sandbox (atomically, by rename).
pub fn write_sandbox_files(
    exec_root: &Path,
    st: &State,
    sb: &SandboxRec,
    dns: Option<&Dns>,
) -> std::io::Result<PathBuf> {
    let dir = sandbox_dir(exec_root, &sb.id);
    std::fs::create_dir_all(&dir)?;
    let hostname = sb.hostname.clone().unwrap_or_else(|| sb.name.clone());
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for e in sb.endpoints.iter().filter_map(|e| st.endpoints.get(e)) {
        for a in &e.addresses {
            let mut names = vec![hostname.clone()];
            if sb.name != hostname {
                names.push(sb.name.clone());
            }
            hosts.push_str(&format!("{}\t{}\n", a.ip(), names.join(" ")));
        }
    }
    let host_rc = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if sb.netns_path == HOST_NETNS {
        host_rc
    } else if sb.endpoints.is_empty()
        || sb.endpoints.iter().all(|e| {
            st.endpoints
                .get(e)
                .and_then(|e| st.networks.get(&e.network_id))
                .is_some_and(|n| n.driver == "null")
        })
    {
        // `none`: no nameserver at all.
        String::from("# netd: this sandbox has no network\n")
    } else if wants_dns(st, sb) && dns.is_some() {
        let mut s =
            String::from("# Generated by netd: the embedded DNS server answers container names\n");
        s.push_str(&format!("nameserver {DNS_ADDR}\n"));
        let search = dns.map(|d| d.search().to_vec()).unwrap_or_default();
        if !search.is_empty() {
            s.push_str(&format!("search {}\n", search.join(" ")));
        }
        s.push_str("options ndots:0\n");
        s
    } else {
        // Default bridge (no embedded DNS, like Docker): the sandbox's --dns or the host's
        // non-loopback nameservers.
        let rc = resolver::parse_resolv_conf(&host_rc);
        let mut s = String::from("# Generated by netd\n");
        let servers: Vec<String> = if sb.dns.is_empty() {
            rc.nameservers
                .iter()
                .filter(|n| !n.ip().is_loopback())
                .map(|n| n.ip().to_string())
                .collect()
        } else {
            sb.dns.clone()
        };
        for n in servers {
            s.push_str(&format!("nameserver {n}\n"));
        }
        if !rc.search.is_empty() {
            s.push_str(&format!("search {}\n", rc.search.join(" ")));
        }
        s
    };
    for (name, content) in [
        ("hosts", hosts),
        ("resolv.conf", resolv),
        ("hostname", format!("{hostname}\n")),
    ] {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    //! The table kept incrementally by `Synced::apply` answers every question exactly as
    //! one built from scratch out of the same state, through any sequence of changes.
    use super::*;
    use proptest::prelude::*;
    use resolver::Answer;
    use std::collections::BTreeMap;

    const NETS: [&str; 3] = ["aaaa", "bbbb", "dddd"]; // dddd: the default bridge (no DNS)

    fn state() -> State {
        let mut st = State {
            networks: Map::new(),
            endpoints: Map::new(),
            sandboxes: Map::new(),
            ipam: ipam::Ipam::with_default_pools(vec![], vec![]),
        };
        for (i, id) in NETS.iter().enumerate() {
            let name = ["front", "back", "bridge"][i];
            let mut labels = BTreeMap::new();
            if name == "bridge" {
                labels.insert(
                    crate::controller::PREDEFINED_LABEL.to_string(),
                    "true".into(),
                );
            }
            st.networks.insert(
                id.to_string(),
                NetworkRec {
                    id: id.to_string(),
                    name: name.into(),
                    driver: "bridge".into(),
                    subnets: vec![],
                    ipv6: false,
                    internal: false,
                    options: BTreeMap::new(),
                    labels,
                    owner: "netd".into(),
                    created: String::new(),
                    external_ipam: false,
                },
            );
        }
        st
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Sandbox slot, networks (bit mask), alias or not, owner netd or cni.
        Create(u8, u8, bool, bool),
        Rename(u8),
        Disconnect(u8),
        Remove(u8),
        /// Remove a network with no endpoints, or add it back.
        ToggleNetwork(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..6u8, 1..8u8, any::<bool>(), any::<bool>())
                .prop_map(|(s, m, a, o)| Op::Create(s, m, a, o)),
            (0..6u8).prop_map(Op::Rename),
            (0..6u8).prop_map(Op::Disconnect),
            (0..6u8).prop_map(Op::Remove),
            (0..2u8).prop_map(Op::ToggleNetwork),
        ]
    }

    fn sid(slot: u8) -> String {
        format!("{slot:02x}").repeat(32)
    }

    fn run(st: &mut State, op: &Op, counter: &mut u32) {
        *counter += 1;
        let n = *counter;
        match *op {
            Op::Create(slot, mask, alias, netd) => {
                let id = sid(slot);
                if st.sandboxes.contains_key(&id) {
                    return;
                }
                let mut sb = SandboxRec {
                    id: id.clone(),
                    name: format!("c{slot}"),
                    netns_path: format!("/run/netns/{slot}"),
                    owns_netns: true,
                    hostname: None,
                    dns: if alias {
                        vec!["192.0.2.53".into()]
                    } else {
                        vec![]
                    },
                    endpoints: vec![],
                    owner: if netd { "netd" } else { "cni" }.into(),
                    cni_container_id: None,
                };
                for (i, net) in NETS.iter().enumerate() {
                    if mask & (1 << i) == 0 || !st.networks.contains_key(*net) {
                        continue;
                    }
                    let eid = format!("e{n}-{i}");
                    st.endpoints.insert(
                        eid.clone(),
                        EndpointRec {
                            id: eid.clone(),
                            name: sb.name.clone(),
                            network_id: net.to_string(),
                            sandbox_id: Some(id.clone()),
                            addresses: vec![format!("10.{i}.{}.{}/16", n / 200, n % 200 + 2)
                                .parse()
                                .unwrap()],
                            mac: None,
                            host_ifname: None,
                            container_ifname: None,
                            ifname: None,
                            aliases: if alias { vec!["svc".into()] } else { vec![] },
                            ports: vec![],
                            gateway4: None,
                            gateway6: None,
                            owner: sb.owner.clone(),
                            external_join: false,
                        },
                    );
                    sb.endpoints.push(eid);
                }
                st.sandboxes.insert(id, sb);
            }
            Op::Rename(slot) => {
                if let Some(sb) = st.sandboxes.get_mut(&sid(slot)) {
                    sb.name = format!("r{n}");
                }
            }
            Op::Disconnect(slot) => {
                if let Some(sb) = st.sandboxes.get_mut(&sid(slot)) {
                    if let Some(e) = sb.endpoints.pop() {
                        st.endpoints.remove(&e);
                    }
                }
            }
            Op::Remove(slot) => {
                if let Some(sb) = st.sandboxes.remove(&sid(slot)) {
                    for e in sb.endpoints {
                        st.endpoints.remove(&e);
                    }
                }
            }
            Op::ToggleNetwork(i) => {
                let id = NETS[i as usize];
                if st.networks.contains_key(id) {
                    if !st.endpoints.values().any(|e| e.network_id == id) {
                        st.networks.remove(id);
                    }
                } else {
                    let fresh = state();
                    st.networks.insert(id.into(), fresh.networks[id].clone());
                }
            }
        }
    }

    /// Every question that could matter, asked by every sandbox (and an unknown one).
    fn answers(st: &State, t: &Table) -> Vec<(String, String, Answer)> {
        let mut names: Vec<String> = vec!["svc".into(), "nosuch".into()];
        for sb in st.sandboxes.values() {
            names.push(sb.name.clone());
            names.push(sb.id[..12].to_string());
            for n in ["front", "back", "bridge"] {
                names.push(format!("{}.{n}", sb.name));
            }
        }
        for e in st.endpoints.values() {
            if let IpAddr::V4(a) = e.addresses[0].ip() {
                let o = a.octets();
                names.push(format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]));
            }
        }
        let mut who: Vec<String> = st.sandboxes.keys().cloned().collect();
        who.push("unknown".into());
        let mut out = vec![];
        for w in &who {
            for q in &names {
                for ty in [resolver::RecordType::A, resolver::RecordType::PTR] {
                    let mut a = t.lookup(w, q, ty);
                    if let Answer::Addrs(v) = &mut a {
                        v.sort();
                    }
                    out.push((w.clone(), q.clone(), a));
                }
            }
            out.push((
                w.clone(),
                "upstreams".into(),
                Answer::Ptr(t.upstreams(w).iter().map(|u| u.to_string()).collect()),
            ));
        }
        out
    }

    proptest! {
        #[test]
        fn incremental_table_equals_rebuilt(ops in proptest::collection::vec(op(), 1..30)) {
            let mut st = state();
            let mut synced = Synced::default();
            let mut n = 0;
            synced.apply(&st);
            for op in &ops {
                let before = synced.table.clone();
                let before_answers = answers(&st, &before);
                let prev = st.clone();
                run(&mut st, op, &mut n);
                synced.apply(&st);
                prop_assert_eq!(answers(&st, &synced.table), answers(&st, &build_table(&st)), "after {:?}", op);
                // The copy the resolver had keeps answering as before.
                prop_assert_eq!(answers(&prev, &before), before_answers);
            }
        }
    }
}
