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
//! Names are scoped to the networks a sandbox is on: the resolver's table is rebuilt
//! from the controller's state after every change and swapped whole.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use drivers::sys::nfnl::{self, Expr};
use drivers::sys::{Ns, Sys};
use resolver::{Resolver, SandboxServer, Table};

use crate::controller::{State, HOST_NETNS};
use crate::error::{Error, Result};
use crate::model::SandboxRec;

/// Name of the per-sandbox nftables table that DNATs 127.0.0.11:53.
pub const DNS_TABLE: &str = "netd_dns";
pub const DNS_ADDR: &str = "127.0.0.11";

pub struct Dns {
    pub resolver: Resolver,
    sys: Arc<dyn Sys>,
    servers: Mutex<HashMap<String, SandboxServer>>,
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
    pub fn new(resolver: Resolver, sys: Arc<dyn Sys>) -> Self {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let rc = resolver::parse_resolv_conf(&host);
        Dns {
            resolver,
            sys,
            servers: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            host_search: rc.search,
        }
    }

    /// Rebuild the name table from the state and make the listeners match it.
    pub async fn sync(&self, st: &State) {
        self.resolver.set_table(build_table(st));
        let want: Vec<&SandboxRec> = st.sandboxes.values().filter(|s| wants_dns(st, s)).collect();
        let armed: Vec<String> = self.servers.lock().unwrap().keys().cloned().collect();
        for id in armed {
            if !want.iter().any(|s| s.id == id) {
                self.servers.lock().unwrap().remove(&id);
            }
        }
        let pending: Vec<String> = self.pending.lock().unwrap().keys().cloned().collect();
        for id in pending {
            if !want.iter().any(|s| s.id == id) {
                if let Some(h) = self.pending.lock().unwrap().remove(&id) {
                    h.abort();
                }
            }
        }
        for sb in want {
            if self.servers.lock().unwrap().contains_key(&sb.id) {
                continue;
            }
            let early = self.pending.lock().unwrap().remove(&sb.id);
            let res = match early {
                Some(h) => match h.await {
                    Ok(r) => r,
                    Err(e) => Err(Error::internal(format!("arming DNS: {e}"))),
                },
                None => arm(self.resolver.clone(), self.sys.clone(), sb.clone()).await,
            };
            match res {
                Ok(s) => {
                    self.servers.lock().unwrap().insert(sb.id.clone(), s);
                }
                Err(e) => {
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
        let h = tokio::spawn(arm(self.resolver.clone(), self.sys.clone(), sb.clone()));
        if let Some(old) = self.pending.lock().unwrap().insert(sb.id.clone(), h) {
            old.abort();
        }
    }

    pub fn is_armed(&self, sandbox_id: &str) -> bool {
        self.servers.lock().unwrap().contains_key(sandbox_id)
    }

    /// The search domains for sandbox resolv.conf files.
    pub fn search(&self) -> &[String] {
        &self.host_search
    }
}

/// Bind the sockets inside the sandbox, DNAT port 53 to them, serve.
async fn arm(resolver: Resolver, sys: Arc<dyn Sys>, sb: SandboxRec) -> Result<SandboxServer> {
    let ns = Ns::path(&sb.netns_path);
    // Adopted namespaces (CNI) may have loopback down.
    let _ = sys.set_up(&ns, "lo", true).await;
    let (udp, tcp) = drivers::sys::netns::run_in_netns(Path::new(&sb.netns_path), move || {
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

/// The resolver's table: every endpoint with addresses on a user-defined bridge
/// network, and each sandbox's scope (its networks) and own upstreams (`--dns`).
pub fn build_table(st: &State) -> Table {
    let mut b = Table::builder();
    for ep in st.endpoints.values() {
        let Some(net) = st.networks.get(&ep.network_id) else {
            continue;
        };
        if !net.has_embedded_dns() {
            continue;
        }
        let Some(sb) = ep.sandbox_id.as_ref().and_then(|s| st.sandboxes.get(s)) else {
            continue;
        };
        let addrs: Vec<IpAddr> = ep.addresses.iter().map(|a| a.ip()).collect();
        let short = if sb.owner == "netd" { &sb.id[..12] } else { "" };
        b.add_endpoint(&net.id, &net.name, &sb.name, &ep.aliases, short, &addrs);
        let subnets: Vec<resolver::Subnet> = net
            .subnets
            .iter()
            .filter_map(|s| resolver::Subnet::new(s.subnet.network(), s.subnet.prefix()).ok())
            .collect();
        b.set_network_subnets(&net.id, &net.name, &subnets);
    }
    for sb in st.sandboxes.values() {
        let nets: Vec<String> = sb
            .endpoints
            .iter()
            .filter_map(|e| st.endpoints.get(e).map(|e| e.network_id.clone()))
            .collect();
        let ups: Vec<SocketAddr> = sb
            .dns
            .iter()
            .filter_map(|d| d.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
            .collect();
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
