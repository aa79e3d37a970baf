//! The name table: pure data, no I/O.
//!
//! A [`Table`] holds, per network, the names (container name, aliases, short id) that map to
//! addresses, the reverse map (address → PTR target) and the network's subnets; per sandbox,
//! the networks it is attached to (its *scope*) and its own upstream servers. The daemon keeps
//! a table, changes it record by record and swaps a (cheap, structure-sharing) copy into the
//! resolver, so a table the resolver reads is never mutated (apart from the round-robin
//! counter).
//!
//! The lookup rules are documented on [`Table::lookup`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::rr::RecordType;

use crate::names::{normalize, parse_reverse_name};
use crate::subnet::Subnet;

/// What the table says about one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Addresses for an A, AAAA or ANY question, already rotated for round-robin. Never empty.
    Addrs(Vec<IpAddr>),
    /// PTR targets (fully qualified, with the trailing dot). Never empty.
    Ptr(Vec<String>),
    /// The name exists in the sandbox's scope but has no record of the asked type:
    /// answer NOERROR with no records.
    NoData,
    /// The name is ours and does not exist: answer NXDOMAIN locally (only for reverse names
    /// inside the subnets of the sandbox's networks).
    NxDomain,
    /// Not ours: forward upstream.
    Forward,
}

#[derive(Debug, Default, Clone)]
struct NetworkRecords {
    /// Lower-case network name, used for `name.network` questions and PTR targets.
    name: String,
    /// Lower-case name → addresses, in registration order, without duplicates.
    names: imbl::HashMap<String, Vec<IpAddr>>,
    /// Address → PTR target (`container.network.`).
    reverse: imbl::HashMap<IpAddr, String>,
    subnets: Vec<Subnet>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct SandboxScope {
    /// Network ids, without duplicates; ids the table does not know match nothing.
    networks: Vec<String>,
    upstreams: Vec<SocketAddr>,
}

/// Every name the resolver answers locally.
///
/// A table is a persistent value: the per-name maps share structure between copies, so
/// cloning one is cheap (O(networks)) and changing a copy costs O(log n) per record.
/// The daemon keeps one table, applies each change to it ([`Table::add_endpoint`],
/// [`Table::remove_endpoint`], [`Table::set_sandbox_scope`], ...) and hands the resolver a
/// clone, so the cost of a change does not grow with the number of containers.
/// [`TableBuilder`] builds one from scratch.
#[derive(Debug, Default)]
pub struct Table {
    networks: HashMap<String, NetworkRecords>,
    sandboxes: imbl::HashMap<String, SandboxScope>,
    default_upstreams: Vec<SocketAddr>,
    rotation: AtomicUsize,
}

impl Clone for Table {
    fn clone(&self) -> Self {
        Table {
            networks: self.networks.clone(),
            sandboxes: self.sandboxes.clone(),
            default_upstreams: self.default_upstreams.clone(),
            rotation: AtomicUsize::new(self.rotation.load(Ordering::Relaxed)),
        }
    }
}

/// A table being built from scratch is just a table: start from [`Table::builder`] (an
/// empty one), call the same methods, finish with [`Table::build`]. Sandbox scopes may
/// name networks that are added later (or never: unknown network ids match nothing).
pub type TableBuilder = Table;

/// The names one endpoint registers: container name, aliases and short id, normalized,
/// without empties.
fn endpoint_keys<'a>(
    container_name: &'a str,
    aliases: &'a [String],
    short_id: &'a str,
) -> impl Iterator<Item = String> + 'a {
    std::iter::once(container_name)
        .chain(aliases.iter().map(String::as_str))
        .chain(std::iter::once(short_id))
        .map(|k| normalize(k).into_owned())
        .filter(|k| !k.is_empty())
}

/// `container.network.` (or `container.` on a nameless network).
fn ptr_target(cname: &str, network: &str) -> String {
    if network.is_empty() {
        format!("{cname}.")
    } else {
        format!("{cname}.{network}.")
    }
}

impl Table {
    /// An empty table, to build on.
    pub fn builder() -> Table {
        Table::default()
    }

    /// The table itself (ends a chain of builder calls).
    pub fn build(self) -> Table {
        self
    }

    fn network(&mut self, network_id: &str, network_name: &str) -> &mut NetworkRecords {
        let net = self.networks.entry(network_id.to_string()).or_default();
        if net.name.is_empty() && !network_name.is_empty() {
            net.name = normalize(network_name).into_owned();
        }
        net
    }

    /// Declares a network: its name (kept when `network_name` is empty) and subnets.
    /// Renaming does not rewrite PTR targets already registered: remove the network's
    /// endpoints first and add them again after.
    /// Reverse questions for addresses inside the subnets that match no container get
    /// NXDOMAIN locally instead of being forwarded.
    pub fn set_network(
        &mut self,
        network_id: &str,
        network_name: &str,
        subnets: &[Subnet],
    ) -> &mut Self {
        let net = self.network(network_id, network_name);
        if !network_name.is_empty() {
            net.name = normalize(network_name).into_owned();
        }
        net.subnets = subnets.to_vec();
        self
    }

    /// Forgets a network and every name on it.
    pub fn remove_network(&mut self, network_id: &str) -> &mut Self {
        self.networks.remove(network_id);
        self
    }

    /// Registers a container endpoint on a network. The container name, every alias and the
    /// short id (when not empty) all resolve to `addrs`; several endpoints under one name
    /// accumulate. The reverse map gets `addr → container_name.network_name.` for each address
    /// (aliases get no PTR, like Docker). Names are case-insensitive; a trailing dot is ignored.
    pub fn add_endpoint(
        &mut self,
        network_id: &str,
        network_name: &str,
        container_name: &str,
        aliases: &[String],
        short_id: &str,
        addrs: &[IpAddr],
    ) -> &mut Self {
        let net = self.network(network_id, network_name);
        for key in endpoint_keys(container_name, aliases, short_id) {
            let entry = net.names.entry(key).or_default();
            for a in addrs {
                if !entry.contains(a) {
                    entry.push(*a);
                }
            }
        }
        let cname = normalize(container_name);
        if !cname.is_empty() {
            let target = ptr_target(&cname, &net.name);
            for a in addrs {
                net.reverse.entry(*a).or_insert_with(|| target.clone());
            }
        }
        self
    }

    /// Undoes [`Table::add_endpoint`] called with the same arguments: the endpoint's
    /// addresses leave its names (a name shared with another endpoint keeps that one's
    /// addresses) and its reverse entries go.
    pub fn remove_endpoint(
        &mut self,
        network_id: &str,
        container_name: &str,
        aliases: &[String],
        short_id: &str,
        addrs: &[IpAddr],
    ) -> &mut Self {
        let Some(net) = self.networks.get_mut(network_id) else {
            return self;
        };
        for key in endpoint_keys(container_name, aliases, short_id) {
            if let Some(list) = net.names.get_mut(&key) {
                list.retain(|a| !addrs.contains(a));
                if list.is_empty() {
                    net.names.remove(&key);
                }
            }
        }
        let cname = normalize(container_name);
        let target = ptr_target(&cname, &net.name);
        for a in addrs {
            if net.reverse.get(a) == Some(&target) {
                net.reverse.remove(a);
            }
        }
        self
    }

    /// Declares which networks (by id) a sandbox is attached to and its own upstream servers
    /// (a container's `--dns`; empty means "use the defaults"). Replaces any earlier scope.
    pub fn set_sandbox_scope(
        &mut self,
        sandbox_id: &str,
        networks: &[String],
        upstreams: &[SocketAddr],
    ) -> &mut Self {
        let mut nets: Vec<String> = Vec::with_capacity(networks.len());
        for n in networks {
            if !nets.contains(n) {
                nets.push(n.clone());
            }
        }
        self.sandboxes.insert(
            sandbox_id.to_string(),
            SandboxScope {
                networks: nets,
                upstreams: upstreams.to_vec(),
            },
        );
        self
    }

    /// Forgets a sandbox's scope (its questions are all forwarded afterwards).
    pub fn remove_sandbox(&mut self, sandbox_id: &str) -> &mut Self {
        self.sandboxes.remove(sandbox_id);
        self
    }

    /// Daemon-level upstreams, used by sandboxes without their own. When these are empty too,
    /// the resolver falls back to [`crate::ResolverConfig::upstreams`].
    pub fn set_default_upstreams(&mut self, upstreams: &[SocketAddr]) -> &mut Self {
        self.default_upstreams = upstreams.to_vec();
        self
    }

    /// Whether the table knows this sandbox.
    pub fn has_sandbox(&self, sandbox_id: &str) -> bool {
        self.sandboxes.contains_key(sandbox_id)
    }

    /// Ids of the known networks a sandbox is attached to (empty for an unknown sandbox).
    pub fn sandbox_networks(&self, sandbox_id: &str) -> Vec<&str> {
        self.scope(sandbox_id)
            .map(|s| {
                s.networks
                    .iter()
                    .filter(|n| self.networks.contains_key(*n))
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The upstreams for a sandbox: its own if it has any, else the table's defaults (possibly
    /// empty, in which case the resolver uses its configured upstreams).
    pub fn upstreams(&self, sandbox_id: &str) -> &[SocketAddr] {
        match self.scope(sandbox_id) {
            Some(s) if !s.upstreams.is_empty() => &s.upstreams,
            _ => &self.default_upstreams,
        }
    }

    fn scope(&self, sandbox_id: &str) -> Option<&SandboxScope> {
        self.sandboxes.get(sandbox_id)
    }

    /// The records of the networks in a scope that the table knows.
    fn scope_networks<'a>(
        &'a self,
        scope: &'a SandboxScope,
    ) -> impl Iterator<Item = &'a NetworkRecords> + 'a {
        scope.networks.iter().filter_map(|n| self.networks.get(n))
    }

    /// Answers one question for one sandbox. The rules, in order:
    ///
    /// 1. The name is compared case-insensitively, with any trailing dot removed.
    /// 2. Only the networks the sandbox is attached to are searched; an unknown sandbox has an
    ///    empty scope (everything is forwarded).
    /// 3. Reverse names (`d.c.b.a.in-addr.arpa`, 32-nibble `ip6.arpa`): if a network in scope
    ///    knows the address, PTR questions get `container.network.` ([`Answer::Ptr`]) and
    ///    other types get [`Answer::NoData`]. If the address is inside a subnet of a network
    ///    in scope but unknown, [`Answer::NxDomain`]. Otherwise [`Answer::Forward`].
    /// 4. A name `x.net` where `net` is the name of a network in scope is looked up as `x` in
    ///    that network only (Docker's network-qualified names), unless `x.net` itself is a
    ///    registered name.
    /// 5. Otherwise the name is looked up in every network in scope; the addresses of all
    ///    matches are merged (without duplicates). A, AAAA and ANY return the matching family
    ///    ([`Answer::Addrs`], rotated by one position per query for round-robin); when the name
    ///    matched but no address of the asked family exists, or the type is anything else
    ///    (MX, TXT, PTR on a forward name…), [`Answer::NoData`].
    /// 6. Names not found, single-label names included, are [`Answer::Forward`]ed, like
    ///    Docker's embedded DNS.
    pub fn lookup(&self, sandbox_id: &str, qname: &str, qtype: RecordType) -> Answer {
        let Some(scope) = self.scope(sandbox_id) else {
            return Answer::Forward;
        };
        if self.scope_networks(scope).next().is_none() {
            return Answer::Forward;
        }
        let name = normalize(qname);
        if name.is_empty() {
            return Answer::Forward;
        }
        if let Some(ip) = parse_reverse_name(&name) {
            return self.lookup_reverse(scope, ip, qtype);
        }

        let mut found = false;
        let mut addrs: Vec<IpAddr> = Vec::new();
        for net in self.scope_networks(scope) {
            found |= collect(net, &name, qtype, &mut addrs);
        }
        if !found {
            // `x.network`: look `x` up in that network only.
            for net in self.scope_networks(scope) {
                if let Some(x) = strip_network_suffix(&name, &net.name) {
                    found |= collect(net, x, qtype, &mut addrs);
                }
            }
        }
        if !found {
            return Answer::Forward;
        }
        if addrs.is_empty() {
            return Answer::NoData;
        }
        if addrs.len() > 1 {
            let n = self.rotation.fetch_add(1, Ordering::Relaxed) % addrs.len();
            addrs.rotate_left(n);
        }
        Answer::Addrs(addrs)
    }

    fn lookup_reverse(&self, scope: &SandboxScope, ip: IpAddr, qtype: RecordType) -> Answer {
        let mut targets: Vec<String> = Vec::new();
        let mut in_subnet = false;
        for net in self.scope_networks(scope) {
            if let Some(t) = net.reverse.get(&ip) {
                if !targets.contains(t) {
                    targets.push(t.clone());
                }
            }
            in_subnet |= net.subnets.iter().any(|s| s.contains(ip));
        }
        if !targets.is_empty() {
            return if matches!(qtype, RecordType::PTR | RecordType::ANY) {
                Answer::Ptr(targets)
            } else {
                Answer::NoData
            };
        }
        if in_subnet {
            Answer::NxDomain
        } else {
            Answer::Forward
        }
    }
}

fn family_matches(a: &IpAddr, qtype: RecordType) -> bool {
    match qtype {
        RecordType::A => a.is_ipv4(),
        RecordType::AAAA => a.is_ipv6(),
        RecordType::ANY => true,
        _ => false,
    }
}

/// `x.net` → `Some("x")` when `suffix` is `net` (and both parts are non-empty).
fn strip_network_suffix<'a>(name: &'a str, suffix: &str) -> Option<&'a str> {
    if suffix.is_empty() {
        return None;
    }
    let head = name.strip_suffix(suffix)?.strip_suffix('.')?;
    (!head.is_empty()).then_some(head)
}

/// Adds `key`'s addresses of the asked family to `out`; whether the name exists at all.
fn collect(net: &NetworkRecords, key: &str, qtype: RecordType, out: &mut Vec<IpAddr>) -> bool {
    let Some(list) = net.names.get(key) else {
        return false;
    };
    for a in list {
        if family_matches(a, qtype) && !out.contains(a) {
            out.push(*a);
        }
    }
    true
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
