//! Published ports of bridge endpoints: DNAT in netd's own table, through
//! five MAPS so that publishing a port is one or two map elements and the
//! rule count never grows.
//!
//! | map          | key                                  | value                     |
//! |--------------|--------------------------------------|---------------------------|
//! | `ports4`     | `inet_proto . ipv4_addr . inet_service` | `ipv4_addr . inet_service` |
//! | `ports4_any` | `inet_proto . inet_service` (0.0.0.0) | `ipv4_addr . inet_service` |
//! | `ports6`     | `inet_proto . ipv6_addr . inet_service` | `ipv6_addr . inet_service` |
//! | `ports6_any` | `inet_proto . inet_service` (::)      | `ipv6_addr . inet_service` |
//! | `ports4_lo`  | `inet_proto . inet_service` (127.0.0.0/8) | `ipv4_addr . inet_service` |
//!
//! `ports4_lo` holds only the IPv4 bindings marked
//! [`PortBinding::loopback_nat`] whose host address is `0.0.0.0` or a `127.x`
//! address (ports published for CNI runtimes, which hold the host port
//! themselves so the userland proxy cannot): each such binding is one element
//! there besides its element in `ports4` / `ports4_any`. The key has no
//! address, so such a binding claims its port on all of `127.0.0.0/8` for the
//! host's own connections (the daemon refuses overlapping loopback bindings).
//!
//! The protocol is part of the key, so TCP, UDP and SCTP share the maps.
//! nft 1.0.6's JSON parser cannot declare a map whose data is a
//! concatenation, so the maps alone are declared with a text script
//! ([`maps_script`]); rules and elements are JSON like the rest of the table.
//!
//! Chains and fixed rules (see [`prerouting_rules`], [`output_rules`],
//! [`postrouting_rules`]):
//!
//! `prerouting` (nat, dstnat) — traffic from other hosts and from containers:
//! 1-4. `iifname != "lo"` + daddr `127.0.0.0/8` (`::1`) + the key is a published
//!    port → drop. A port published on 127.0.0.1 is for the host only; without
//!    this, a neighbour routing 127.0.0.1 to us would be DNAT'ed *before* the
//!    kernel's martian check (moby#45610). Same for wildcard ports, whose
//!    `fib daddr type local` also matches 127.0.0.1.
//! 5. `iifname @bridges ip daddr 127.0.0.0/8 drop`: containers never reach the
//!    host's loopback, even with `route_localnet=1` on the bridges.
//! 6-9. `dnat ip to meta l4proto . ip daddr . th dport map @ports4`, then the
//!    wildcard map for `fib daddr type local`, and the same for IPv6.
//!
//! `output` (nat, -100) — the host's own connections to a local address:
//! 1. `ip daddr 127.0.0.0/8 dnat ip to meta l4proto . th dport map
//!    @ports4_lo`, whatever the proxy mode (NAT-only bindings);
//! 2-5. the same four DNATs as prerouting, except to `127.0.0.0/8` when the
//!    userland proxy is on (the proxy serves loopback, like dockerd) and never
//!    to `::1` (IPv6 has no `route_localnet`; the proxy serves it). With the
//!    proxy off, loopback is DNAT'ed too and `route_localnet=1` is set on the
//!    bridges. A bridge whose network has `ports4_lo` bindings gets
//!    `route_localnet=1` when they are published, in both modes. Rule 1 never
//!    sees packets routed in (output hook only) and prerouting never consults
//!    `ports4_lo`, so the moby#45610 guard is unchanged; rule 5 of prerouting
//!    keeps containers off the host's loopback despite `route_localnet`.
//!
//! `postrouting` (nat, srcnat) additions: masquerade DNAT'ed traffic whose
//! source is a subnet of the bridge it leaves by (`oifname . ip saddr
//! @bridge_nets4`: hairpin, a container reaching its own or a neighbour's
//! published port through a host address), v6 likewise, and DNAT'ed traffic
//! from `127.0.0.0/8` into a bridge (loopback NAT). Nothing
//! else is SNAT'ed: the container sees the real client address.
//!
//! `forward` accepts `ct status dnat` into bridges before the isolation rules,
//! so a container on another netd network can reach a published port through
//! the host address, as with Docker.

use std::borrow::Cow;
use std::net::IpAddr;

use nftables::batch::Batch;
use nftables::expr::{Expression, Fib, FibFlag, FibResult, Map, MetaKey, NamedExpression};
use nftables::schema::{Element, NfListObject, Nftables};
use nftables::stmt::{NATFamily, Operator, Statement, NAT};
use nftables::types::NfFamily;

use super::rules::{concat, ct, in_set, m, meta, payload, prefix_of, rule, s, set_ref};
use super::rules::{SET_BRIDGES, SET_BRIDGE_NETS4, SET_BRIDGE_NETS6};
use crate::sys::conntrack::CtFilter;
use crate::{DriverError, PortBinding, Proto, Result};

pub const CHAIN_PREROUTING: &str = "prerouting";
pub const CHAIN_OUTPUT: &str = "output";

pub const MAP_PORTS4: &str = "ports4";
pub const MAP_PORTS4_ANY: &str = "ports4_any";
pub const MAP_PORTS6: &str = "ports6";
pub const MAP_PORTS6_ANY: &str = "ports6_any";
pub const MAP_PORTS4_LO: &str = "ports4_lo";
pub const MAPS: [&str; 5] = [
    MAP_PORTS4,
    MAP_PORTS4_ANY,
    MAP_PORTS6,
    MAP_PORTS6_ANY,
    MAP_PORTS4_LO,
];

/// Text script creating the table (if missing) and the five maps (adding an
/// identical map is a no-op). Applied before the JSON base ruleset.
pub fn maps_script(table: &str) -> String {
    let t = table;
    format!(
        "add table inet {t}\n\
         add map inet {t} {MAP_PORTS4} {{ type inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS4_ANY} {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS6} {{ type inet_proto . ipv6_addr . inet_service : ipv6_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS6_ANY} {{ type inet_proto . inet_service : ipv6_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS4_LO} {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}\n"
    )
}

// ---- rules ----

fn l4proto() -> Expression<'static> {
    meta(MetaKey::L4proto)
}
fn dport() -> Expression<'static> {
    payload("th", "dport")
}
fn daddr(v6: bool) -> Expression<'static> {
    payload(if v6 { "ip6" } else { "ip" }, "daddr")
}
/// Key expression of a map: `meta l4proto [. ip daddr] . th dport`.
fn key_expr(v6: bool, any: bool) -> Expression<'static> {
    if any {
        concat(vec![l4proto(), dport()])
    } else {
        concat(vec![l4proto(), daddr(v6), dport()])
    }
}
fn map_name(v6: bool, any: bool) -> &'static str {
    match (v6, any) {
        (false, false) => MAP_PORTS4,
        (false, true) => MAP_PORTS4_ANY,
        (true, false) => MAP_PORTS6,
        (true, true) => MAP_PORTS6_ANY,
    }
}
fn loopback(v6: bool) -> Expression<'static> {
    if v6 {
        s("::1")
    } else {
        prefix_of("127.0.0.0", 8)
    }
}
fn not_lo() -> Statement<'static> {
    m(meta(MetaKey::Iifname), Operator::NEQ, s("lo"))
}
fn nfproto(v6: bool) -> Statement<'static> {
    m(
        meta(MetaKey::Nfproto),
        Operator::EQ,
        s(if v6 { "ipv6" } else { "ipv4" }),
    )
}
fn fib_local() -> Statement<'static> {
    m(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: [FibFlag::Daddr].into_iter().collect(),
        })),
        Operator::EQ,
        s("local"),
    )
}
/// `dnat ip(6) to <key> map @map` (the map's data is address . port).
fn dnat(v6: bool, any: bool) -> Statement<'static> {
    Statement::DNAT(Some(NAT {
        addr: Some(Expression::Named(NamedExpression::Map(Box::new(Map {
            key: key_expr(v6, any),
            data: set_ref(map_name(v6, any)),
        })))),
        family: Some(if v6 { NATFamily::IP6 } else { NATFamily::IP }),
        port: None,
        flags: None,
    }))
}
/// The DNAT rule body for one map: the wildcard maps need `fib daddr type
/// local` (and an explicit family, since their key has no address).
fn dnat_body(v6: bool, any: bool) -> Vec<Statement<'static>> {
    let mut v = Vec::new();
    if any {
        v.push(nfproto(v6));
        v.push(fib_local());
    }
    v.push(dnat(v6, any));
    v
}

const FAMILIES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];

/// Fixed rules of the `prerouting` nat chain (9).
pub fn prerouting_rules(table: &str) -> Vec<NfListObject<'static>> {
    let c = CHAIN_PREROUTING;
    let mut out = Vec::new();
    for (v6, any) in FAMILIES {
        out.push(rule(
            table,
            c,
            vec![
                not_lo(),
                m(daddr(v6), Operator::EQ, loopback(v6)),
                in_set(key_expr(v6, any), map_name(v6, any)),
                Statement::Drop(None),
            ],
        ));
    }
    out.push(rule(
        table,
        c,
        vec![
            in_set(meta(MetaKey::Iifname), SET_BRIDGES),
            m(daddr(false), Operator::EQ, loopback(false)),
            Statement::Drop(None),
        ],
    ));
    for (v6, any) in FAMILIES {
        out.push(rule(table, c, dnat_body(v6, any)));
    }
    out
}

/// Fixed rules of the `output` nat chain (5): DNAT of loopback for the
/// NAT-only bindings (`ports4_lo`), then DNAT for the host's own connections
/// to its local addresses; loopback there only when the userland proxy is
/// off (IPv4 only, see the module docs).
pub fn output_rules(table: &str, userland_proxy: bool) -> Vec<NfListObject<'static>> {
    let lo = rule(
        table,
        CHAIN_OUTPUT,
        vec![
            m(daddr(false), Operator::EQ, loopback(false)),
            Statement::DNAT(Some(NAT {
                addr: Some(Expression::Named(NamedExpression::Map(Box::new(Map {
                    key: key_expr(false, true),
                    data: set_ref(MAP_PORTS4_LO),
                })))),
                family: Some(NATFamily::IP),
                port: None,
                flags: None,
            })),
        ],
    );
    std::iter::once(lo)
        .chain(FAMILIES.iter().map(|&(v6, any)| {
            let mut body = Vec::new();
            if v6 || userland_proxy {
                body.push(m(daddr(v6), Operator::NEQ, loopback(v6)));
            }
            body.extend(dnat_body(v6, any));
            rule(table, CHAIN_OUTPUT, body)
        }))
        .collect()
}

/// Rules appended to the `postrouting` nat chain (3): hairpin masquerade
/// (v4, v6) and masquerade of loopback sources entering a bridge.
pub fn postrouting_rules(table: &str) -> Vec<NfListObject<'static>> {
    let p = super::rules::CHAIN_POSTROUTING;
    let dnat_ct = || m(ct("status"), Operator::IN, s("dnat"));
    let masq = || Statement::Masquerade(None::<NAT>);
    vec![
        rule(
            table,
            p,
            vec![
                dnat_ct(),
                in_set(
                    concat(vec![meta(MetaKey::Oifname), payload("ip", "saddr")]),
                    SET_BRIDGE_NETS4,
                ),
                masq(),
            ],
        ),
        rule(
            table,
            p,
            vec![
                dnat_ct(),
                in_set(
                    concat(vec![meta(MetaKey::Oifname), payload("ip6", "saddr")]),
                    SET_BRIDGE_NETS6,
                ),
                masq(),
            ],
        ),
        rule(
            table,
            p,
            vec![
                dnat_ct(),
                in_set(meta(MetaKey::Oifname), SET_BRIDGES),
                m(payload("ip", "saddr"), Operator::EQ, loopback(false)),
                masq(),
            ],
        ),
    ]
}

// ---- elements ----

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
    }
}

/// Check a binding before it reaches the kernel.
pub fn validate(b: &PortBinding) -> Result<()> {
    if b.host_ip.is_ipv4() != b.container_ip.is_ipv4() {
        return Err(DriverError::InvalidArgument(format!(
            "port {}:{}/{}: host address and container address {} are of different families",
            b.host_ip, b.host_port, b.proto, b.container_ip
        )));
    }
    if b.host_port == 0 || b.container_port == 0 {
        return Err(DriverError::InvalidArgument(format!(
            "port {}:{}->{}/{}: ports must be 1-65535 (the daemon resolves ephemeral ports)",
            b.host_ip, b.host_port, b.container_port, b.proto
        )));
    }
    if b.container_ip.is_unspecified() || b.container_ip.is_loopback() {
        return Err(DriverError::InvalidArgument(format!(
            "port {}/{}: bad container address {}",
            b.host_port, b.proto, b.container_ip
        )));
    }
    Ok(())
}

/// Which map holds `b` (its main element; see [`entries_of`]).
pub fn map_of(b: &PortBinding) -> &'static str {
    map_name(b.host_ip.is_ipv6(), b.host_ip.is_unspecified())
}

/// Whether `b` also has an element in `ports4_lo`: a NAT-only IPv4 binding
/// that covers loopback (host address `0.0.0.0` or `127.x`).
pub fn in_lo_map(b: &PortBinding) -> bool {
    b.loopback_nat
        && match b.host_ip {
            IpAddr::V4(a) => a.is_unspecified() || a.is_loopback(),
            IpAddr::V6(_) => false,
        }
}

/// Every map element of `b`: (map, key). The value is always [`value_of`].
pub fn entries_of(b: &PortBinding) -> Vec<(&'static str, Expression<'static>)> {
    let mut v = vec![(map_of(b), key_of(b))];
    if in_lo_map(b) {
        v.push((
            MAP_PORTS4_LO,
            concat(vec![
                s(proto_name(b.proto)),
                Expression::Number(b.host_port as u32),
            ]),
        ));
    }
    v
}

/// The map key of `b` (no address for wildcard bindings).
pub fn key_of(b: &PortBinding) -> Expression<'static> {
    let mut k = vec![s(proto_name(b.proto))];
    if !b.host_ip.is_unspecified() {
        k.push(s(b.host_ip.to_string()));
    }
    k.push(Expression::Number(b.host_port as u32));
    concat(k)
}

/// The map value of `b`: container address . port.
pub fn value_of(b: &PortBinding) -> Expression<'static> {
    concat(vec![
        s(b.container_ip.to_string()),
        Expression::Number(b.container_port as u32),
    ])
}

fn elem(table: &str, map: &str, e: Expression<'static>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: NfFamily::INet,
        table: Cow::Owned(table.into()),
        name: Cow::Owned(map.into()),
        elem: Cow::Owned(vec![e]),
    })
}

fn kv(key: Expression<'static>, b: &PortBinding) -> Expression<'static> {
    Expression::List(vec![key, value_of(b)])
}

/// Names of the maps `ports` have elements in (sorted, once each).
pub fn maps_of(ports: &[PortBinding]) -> Vec<&'static str> {
    let mut names: Vec<&str> = ports
        .iter()
        .flat_map(|p| entries_of(p).into_iter().map(|(m, _)| m))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Add the elements of `ports` (one transaction). Fails with "File exists"
/// if a key is held with another value (see [`replace_batch`]).
pub fn add_batch(table: &str, ports: &[PortBinding]) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        for (map, key) in entries_of(p) {
            b.add(elem(table, map, kv(key, p)));
        }
    }
    b.to_nftables()
}

/// Remove the elements of `ports`, idempotently (add then delete in one
/// transaction). Fails if a key is held with another value: that mapping is
/// not ours to remove (see [`remove_owned_batch`]).
pub fn remove_batch(table: &str, ports: &[PortBinding]) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        for (map, key) in entries_of(p) {
            b.add(elem(table, map, kv(key.clone(), p)));
            b.delete(elem(table, map, key));
        }
    }
    b.to_nftables()
}

/// Elements of one map as listed by `nft -j list map inet T NAME`:
/// (key, value) as JSON.
pub fn parse_listing(v: &serde_json::Value) -> Vec<(serde_json::Value, serde_json::Value)> {
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .flatten()
        .filter_map(|e| {
            let pair = e.as_array()?;
            Some((pair.first()?.clone(), pair.get(1)?.clone()))
        })
        .collect()
}

/// What is in the maps now, keyed by (map, key JSON).
pub type Listing = std::collections::BTreeMap<(String, String), serde_json::Value>;

fn key_json(key: &Expression<'static>) -> String {
    serde_json::to_value(key).unwrap_or_default().to_string()
}

/// Program `ports` over whatever is there: a key held with another value
/// (stale state, e.g. after a crash) is deleted and re-added in the same
/// transaction; identical elements are left alone.
pub fn replace_batch(table: &str, ports: &[PortBinding], now: &Listing) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        let want = serde_json::to_value(value_of(p)).unwrap_or_default();
        for (map, key) in entries_of(p) {
            match now.get(&(map.to_string(), key_json(&key))) {
                Some(v) if *v == want => {}
                Some(_) => {
                    b.delete(elem(table, map, key.clone()));
                    b.add(elem(table, map, kv(key, p)));
                }
                None => b.add(elem(table, map, kv(key, p))),
            }
        }
    }
    b.to_nftables()
}

/// Delete only the elements that still map to the given container address
/// and port (another endpoint may own the key by now).
pub fn remove_owned_batch(table: &str, ports: &[PortBinding], now: &Listing) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        let want = serde_json::to_value(value_of(p)).unwrap_or_default();
        for (map, key) in entries_of(p) {
            if now.get(&(map.to_string(), key_json(&key))) == Some(&want) {
                b.delete(elem(table, map, key));
            }
        }
    }
    b.to_nftables()
}

/// Build a [`Listing`] from per-map `nft -j list map` outputs.
pub fn listing_from(maps: &[(&str, serde_json::Value)]) -> Listing {
    let mut out = Listing::new();
    for (name, v) in maps {
        for (k, val) in parse_listing(v) {
            out.insert((name.to_string(), k.to_string()), val);
        }
    }
    out
}

/// The conntrack entries to flush for a binding: UDP only (TCP and SCTP
/// open new entries per connection; a UDP "flow" lives as long as packets
/// keep coming and would keep the old NAT decision forever).
pub fn conntrack_filter(b: &PortBinding) -> Option<CtFilter> {
    (b.proto == Proto::Udp).then(|| CtFilter {
        proto: libc::IPPROTO_UDP as u8,
        dst_port: b.host_port,
        dst_addr: (!b.host_ip.is_unspecified()).then_some(b.host_ip),
        ipv6: b.host_ip.is_ipv6(),
    })
}

/// `ifname . subnet` elements of the `bridge_nets4/6` sets for one network.
pub fn bridge_net_elements(
    bridge: &str,
    subnets: &[ipnetwork::IpNetwork],
) -> Vec<(&'static str, Expression<'static>)> {
    subnets
        .iter()
        .map(|n| {
            (
                if n.is_ipv4() {
                    SET_BRIDGE_NETS4
                } else {
                    SET_BRIDGE_NETS6
                },
                concat(vec![
                    s(bridge.to_string()),
                    prefix_of(&n.network().to_string(), n.prefix() as u32),
                ]),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
