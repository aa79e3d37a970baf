//! Published ports of bridge endpoints: DNAT in netd's own table, through
//! four MAPS so that publishing a port is one map element and the rule count
//! never grows.
//!
//! | map          | key                                  | value                     |
//! |--------------|--------------------------------------|---------------------------|
//! | `ports4`     | `inet_proto . ipv4_addr . inet_service` | `ipv4_addr . inet_service` |
//! | `ports4_any` | `inet_proto . inet_service` (0.0.0.0) | `ipv4_addr . inet_service` |
//! | `ports6`     | `inet_proto . ipv6_addr . inet_service` | `ipv6_addr . inet_service` |
//! | `ports6_any` | `inet_proto . inet_service` (::)      | `ipv6_addr . inet_service` |
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
//! the same four DNATs, except to `127.0.0.0/8` when the userland proxy is on
//! (the proxy serves loopback, like dockerd) and never to `::1` (IPv6 has no
//! `route_localnet`; the proxy serves it). With the proxy off, loopback is
//! DNAT'ed too and `route_localnet=1` is set on the bridges.
//!
//! `postrouting` (nat, srcnat) additions: masquerade DNAT'ed traffic whose
//! source is a subnet of the bridge it leaves by (`oifname . ip saddr
//! @bridge_nets4`: hairpin, a container reaching its own or a neighbour's
//! published port through a host address), v6 likewise, and DNAT'ed traffic
//! from `127.0.0.0/8` into a bridge (loopback with the proxy off). Nothing
//! else is SNAT'ed: the container sees the real client address.
//!
//! `forward` accepts `ct status dnat` into bridges before the isolation rules,
//! so a container on another netd network can reach a published port through
//! the host address, as with Docker.

use std::borrow::Cow;

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
pub const MAPS: [&str; 4] = [MAP_PORTS4, MAP_PORTS4_ANY, MAP_PORTS6, MAP_PORTS6_ANY];

/// Text script creating the table (if missing) and the four maps (adding an
/// identical map is a no-op). Applied before the JSON base ruleset.
pub fn maps_script(table: &str) -> String {
    let t = table;
    format!(
        "add table inet {t}\n\
         add map inet {t} {MAP_PORTS4} {{ type inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS4_ANY} {{ type inet_proto . inet_service : ipv4_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS6} {{ type inet_proto . ipv6_addr . inet_service : ipv6_addr . inet_service ; }}\n\
         add map inet {t} {MAP_PORTS6_ANY} {{ type inet_proto . inet_service : ipv6_addr . inet_service ; }}\n"
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

/// Fixed rules of the `output` nat chain (4): DNAT for the host's own
/// connections to its local addresses; loopback only when the userland
/// proxy is off (IPv4 only, see the module docs).
pub fn output_rules(table: &str, userland_proxy: bool) -> Vec<NfListObject<'static>> {
    FAMILIES
        .iter()
        .map(|&(v6, any)| {
            let mut body = Vec::new();
            if v6 || userland_proxy {
                body.push(m(daddr(v6), Operator::NEQ, loopback(v6)));
            }
            body.extend(dnat_body(v6, any));
            rule(table, CHAIN_OUTPUT, body)
        })
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

/// Which map holds `b`.
pub fn map_of(b: &PortBinding) -> &'static str {
    map_name(b.host_ip.is_ipv6(), b.host_ip.is_unspecified())
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

fn kv(b: &PortBinding) -> Expression<'static> {
    Expression::List(vec![key_of(b), value_of(b)])
}

/// Add the elements of `ports` (one transaction). Fails with "File exists"
/// if a key is held with another value (see [`replace_batch`]).
pub fn add_batch(table: &str, ports: &[PortBinding]) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        b.add(elem(table, map_of(p), kv(p)));
    }
    b.to_nftables()
}

/// Remove the elements of `ports`, idempotently (add then delete in one
/// transaction). Fails if a key is held with another value: that mapping is
/// not ours to remove (see [`remove_owned_batch`]).
pub fn remove_batch(table: &str, ports: &[PortBinding]) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        b.add(elem(table, map_of(p), kv(p)));
        b.delete(elem(table, map_of(p), key_of(p)));
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

fn key_json(b: &PortBinding) -> String {
    serde_json::to_value(key_of(b))
        .unwrap_or_default()
        .to_string()
}

/// Program `ports` over whatever is there: a key held with another value
/// (stale state, e.g. after a crash) is deleted and re-added in the same
/// transaction; identical elements are left alone.
pub fn replace_batch(table: &str, ports: &[PortBinding], now: &Listing) -> Nftables<'static> {
    let mut b = Batch::new();
    for p in ports {
        let want = serde_json::to_value(value_of(p)).unwrap_or_default();
        match now.get(&(map_of(p).to_string(), key_json(p))) {
            Some(v) if *v == want => {}
            Some(_) => {
                b.delete(elem(table, map_of(p), key_of(p)));
                b.add(elem(table, map_of(p), kv(p)));
            }
            None => b.add(elem(table, map_of(p), kv(p))),
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
        if now.get(&(map_of(p).to_string(), key_json(p))) == Some(&want) {
            b.delete(elem(table, map_of(p), key_of(p)));
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
mod tests {
    use super::*;
    use serde_json::json;

    fn pb(proto: Proto, host: &str, hp: u16, cip: &str, cp: u16) -> PortBinding {
        PortBinding {
            proto,
            host_ip: host.parse().unwrap(),
            host_port: hp,
            container_ip: cip.parse().unwrap(),
            container_port: cp,
        }
    }

    fn cmds(n: &Nftables) -> Vec<serde_json::Value> {
        serde_json::to_value(n).unwrap()["nftables"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn elements_per_map() {
        let c = cmds(&add_batch(
            "t",
            &[
                pb(Proto::Tcp, "0.0.0.0", 8080, "10.1.0.2", 80),
                pb(Proto::Udp, "127.0.0.1", 5353, "10.1.0.2", 53),
                pb(Proto::Sctp, "::", 9, "fd00::2", 99),
                pb(Proto::Tcp, "fd00::1", 443, "fd00::2", 8443),
            ],
        ));
        let got: Vec<_> = c
            .iter()
            .map(|x| {
                (
                    x["add"]["element"]["name"].as_str().unwrap().to_string(),
                    x["add"]["element"]["elem"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "ports4_any".into(),
                    json!([[{"concat": ["tcp", 8080]}, {"concat": ["10.1.0.2", 80]}]])
                ),
                (
                    "ports4".into(),
                    json!([[{"concat": ["udp", "127.0.0.1", 5353]}, {"concat": ["10.1.0.2", 53]}]])
                ),
                (
                    "ports6_any".into(),
                    json!([[{"concat": ["sctp", 9]}, {"concat": ["fd00::2", 99]}]])
                ),
                (
                    "ports6".into(),
                    json!([[{"concat": ["tcp", "fd00::1", 443]}, {"concat": ["fd00::2", 8443]}]])
                ),
            ]
        );
    }

    #[test]
    fn remove_is_add_then_delete_by_key() {
        let c = cmds(&remove_batch(
            "t",
            &[pb(Proto::Udp, "0.0.0.0", 53, "10.1.0.2", 53)],
        ));
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1]["delete"]["element"]["elem"],
            json!([{"concat": ["udp", 53]}])
        );
    }

    #[test]
    fn replace_and_owned_removal_use_listing() {
        let listed = json!({"nftables": [{"metainfo": {}}, {"map": {"name": "ports4_any",
            "elem": [[{"concat": ["tcp", 80]}, {"concat": ["10.9.0.9", 80]}],
                     [{"concat": ["tcp", 81]}, {"concat": ["10.1.0.2", 81]}]]}}]});
        let now = listing_from(&[("ports4_any", listed)]);
        assert_eq!(now.len(), 2);
        let stale = pb(Proto::Tcp, "0.0.0.0", 80, "10.1.0.2", 80);
        let same = pb(Proto::Tcp, "0.0.0.0", 81, "10.1.0.2", 81);
        let fresh = pb(Proto::Tcp, "0.0.0.0", 82, "10.1.0.2", 82);
        let c = cmds(&replace_batch(
            "t",
            &[stale.clone(), same.clone(), fresh],
            &now,
        ));
        // stale: delete + add; same: nothing; fresh: add.
        assert_eq!(c.len(), 3);
        assert!(c[0].get("delete").is_some());
        assert_eq!(
            c[1]["add"]["element"]["elem"][0][0],
            json!({"concat": ["tcp", 80]})
        );
        assert_eq!(
            c[2]["add"]["element"]["elem"][0][0],
            json!({"concat": ["tcp", 82]})
        );
        // Removal deletes only what still points at us.
        let c = cmds(&remove_owned_batch("t", &[stale, same], &now));
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0]["delete"]["element"]["elem"],
            json!([{"concat": ["tcp", 81]}])
        );
    }

    #[test]
    fn validation() {
        assert!(validate(&pb(Proto::Tcp, "0.0.0.0", 80, "10.0.0.2", 80)).is_ok());
        assert!(validate(&pb(Proto::Tcp, "::", 80, "10.0.0.2", 80)).is_err());
        assert!(validate(&pb(Proto::Tcp, "0.0.0.0", 0, "10.0.0.2", 80)).is_err());
        assert!(validate(&pb(Proto::Tcp, "0.0.0.0", 80, "127.0.0.1", 80)).is_err());
    }

    #[test]
    fn rule_shapes() {
        let v = |r: Vec<NfListObject<'static>>| -> Vec<serde_json::Value> {
            r.into_iter()
                .map(|o| serde_json::to_value(o).unwrap()["rule"]["expr"].clone())
                .collect()
        };
        let pre = v(prerouting_rules("t"));
        assert_eq!(pre.len(), 9);
        assert_eq!(
            pre[0],
            json!([
                {"match": {"left": {"meta": {"key": "iifname"}}, "right": "lo", "op": "!="}},
                {"match": {"left": {"payload": {"protocol": "ip", "field": "daddr"}},
                           "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}, "op": "=="}},
                {"match": {"left": {"concat": [{"meta": {"key": "l4proto"}},
                    {"payload": {"protocol": "ip", "field": "daddr"}},
                    {"payload": {"protocol": "th", "field": "dport"}}]}, "right": "@ports4", "op": "=="}},
                {"drop": null}
            ])
        );
        assert_eq!(
            pre[6],
            json!([
                {"match": {"left": {"meta": {"key": "nfproto"}}, "right": "ipv4", "op": "=="}},
                {"match": {"left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local", "op": "=="}},
                {"dnat": {"addr": {"map": {"key": {"concat": [{"meta": {"key": "l4proto"}},
                    {"payload": {"protocol": "th", "field": "dport"}}]}, "data": "@ports4_any"}},
                  "family": "ip"}}
            ])
        );
        // Output: loopback excluded with the proxy on, v4 loopback NAT'ed with it off.
        let on = v(output_rules("t", true));
        let off = v(output_rules("t", false));
        assert_eq!(on.len(), 4);
        assert_eq!(off.len(), 4);
        assert_eq!(on[0][0]["match"]["op"], "!=");
        assert!(off[0][0].get("dnat").is_some());
        assert_eq!(off[2][0]["match"]["right"], "::1", "never ::1");
        assert_eq!(v(postrouting_rules("t")).len(), 3);
    }

    #[test]
    fn conntrack_only_udp() {
        assert!(conntrack_filter(&pb(Proto::Tcp, "0.0.0.0", 80, "10.0.0.2", 80)).is_none());
        let f = conntrack_filter(&pb(Proto::Udp, "0.0.0.0", 53, "10.0.0.2", 53)).unwrap();
        assert_eq!(
            (f.proto, f.dst_port, f.dst_addr, f.ipv6),
            (17, 53, None, false)
        );
        let f = conntrack_filter(&pb(Proto::Udp, "::1", 53, "fd00::2", 53)).unwrap();
        assert_eq!(f.dst_addr, Some("::1".parse().unwrap()));
    }

    #[test]
    fn maps_script_declares_four_maps() {
        let sc = maps_script("netd_x");
        assert!(sc.starts_with("add table inet netd_x\n"));
        for m in MAPS {
            assert!(sc.contains(&format!("add map inet netd_x {m} {{")), "{m}");
        }
    }
}
