//! Pure builders for netd's nftables ruleset. Nothing here runs anything:
//! each function returns an `nftables` batch that `sys` applies atomically.
//!
//! Design: ONE table `inet <table>` holding a FIXED list of rules written
//! once by [`base_ruleset`]. Everything per network lives in named sets, so
//! creating or deleting a network (or an endpoint) only adds or removes set
//! elements and the rule count never grows:
//!
//! | set            | type                 | element per network          |
//! |----------------|----------------------|------------------------------|
//! | `bridges`      | ifname               | every netd bridge            |
//! | `same_bridge`  | ifname . ifname      | `br . br`                    |
//! | `icc_off`      | ifname               | bridges with ICC disabled    |
//! | `internal`     | ifname               | bridges of internal networks |
//! | `internal_gw4/6` | ifname . ip(6)_addr| `br . gateway` (internal)    |
//! | `masq4/6`      | ip(6)_addr interval  | subnets to masquerade        |
//! | `bridge_nets4/6` | ifname . ip(6)_addr interval | `br . subnet` (hairpin) |
//!
//! Published ports add five maps and the `prerouting` / `output` nat chains
//! (see [`super::ports`]); they too only ever change by elements.
//!
//! Chains and rules (evaluated in order):
//!
//! `forward` (filter, hook forward):
//! 1. `iifname . oifname @same_bridge iifname @icc_off drop` and
//! 2. `iifname . oifname @same_bridge accept`: traffic *within* one bridge
//!    only shows up here when br_netfilter is loaded (then bridged frames run
//!    the inet hooks with iif = oif = the bridge). Rule 2 keeps it from being
//!    caught by the isolation rules below; rule 1 applies ICC off to it.
//!    Without br_netfilter, bridged traffic never reaches an inet hook, so ICC
//!    off is enforced at L2 with the kernel's bridge port `isolated` flag on
//!    every port of an ICC-off bridge (set by the driver): isolated ports
//!    cannot talk to each other but can reach the bridge itself, i.e. the
//!    gateway, which is exactly Docker's `icc=false`. We do not use a `bridge`
//!    family table with `meta ibrname`: it needs nft_meta_bridge, missing on
//!    some kernels (ours answers EOPNOTSUPP), and the port flag costs nothing
//!    per packet.
//! 3. `iifname @internal drop`, 4. `oifname @internal drop`: nothing routed
//!    leaves or enters an internal network.
//! 5. `oifname @bridges ct status dnat accept`: published ports (DNAT'ed by
//!    the port-publishing rules), in both directions, also from a container
//!    of another netd network reaching it through a host address, hence
//!    before the isolation rule.
//! 6. `iifname @bridges oifname @bridges drop`: isolation between networks.
//! 7. `oifname @bridges ct state established,related accept`: replies.
//! 8. `oifname @bridges drop`: nothing else from outside reaches containers.
//!
//! `input` (filter, hook input): internal networks may reach the host only
//! at their gateway address (plus IPv6 neighbour discovery):
//! `iifname . ip daddr @internal_gw4 accept`, same for v6, ND accept,
//! `iifname @internal drop`.
//!
//! `postrouting` (nat, hook postrouting): `ip saddr @masq4 oifname !=
//! @bridges masquerade`, same for v6, then the hairpin rules of ports.rs.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, CT,
};
use nftables::schema::{
    self, Chain, Element, NfCmd, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue,
    Table,
};
use nftables::stmt::{Match, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

pub const CHAIN_FORWARD: &str = "forward";
pub const CHAIN_INPUT: &str = "input";
pub const CHAIN_POSTROUTING: &str = "postrouting";

pub const SET_BRIDGES: &str = "bridges";
pub const SET_SAME_BRIDGE: &str = "same_bridge";
pub const SET_ICC_OFF: &str = "icc_off";
pub const SET_INTERNAL: &str = "internal";
pub const SET_INTERNAL_GW4: &str = "internal_gw4";
pub const SET_INTERNAL_GW6: &str = "internal_gw6";
pub const SET_MASQ4: &str = "masq4";
pub const SET_MASQ6: &str = "masq6";
pub const SET_BRIDGE_NETS4: &str = "bridge_nets4";
pub const SET_BRIDGE_NETS6: &str = "bridge_nets6";

/// All sets of the table, with their types.
pub fn set_defs() -> Vec<(&'static str, SetTypeValue<'static>, bool)> {
    use SetType::*;
    let single = SetTypeValue::Single;
    let concat = |a: &[SetType]| SetTypeValue::Concatenated(Cow::Owned(a.to_vec()));
    vec![
        (SET_BRIDGES, single(Ifname), false),
        (SET_SAME_BRIDGE, concat(&[Ifname, Ifname]), false),
        (SET_ICC_OFF, single(Ifname), false),
        (SET_INTERNAL, single(Ifname), false),
        (SET_INTERNAL_GW4, concat(&[Ifname, Ipv4Addr]), false),
        (SET_INTERNAL_GW6, concat(&[Ifname, Ipv6Addr]), false),
        (SET_MASQ4, single(Ipv4Addr), true),
        (SET_MASQ6, single(Ipv6Addr), true),
        (SET_BRIDGE_NETS4, concat(&[Ifname, Ipv4Addr]), true),
        (SET_BRIDGE_NETS6, concat(&[Ifname, Ipv6Addr]), true),
    ]
}

/// What the firewall needs to know about one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFw {
    pub bridge: String,
    pub subnets: Vec<IpNetwork>,
    pub gateways: Vec<IpAddr>,
    pub internal: bool,
    pub masquerade: bool,
    pub icc: bool,
}

// ---- small expression helpers ----

pub(crate) fn s(v: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(v.into()))
}
pub(crate) fn set_ref(name: &str) -> Expression<'static> {
    s(format!("@{name}"))
}
pub(crate) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}
pub(crate) fn payload(proto: &str, field: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Owned(proto.into()),
            field: Cow::Owned(field.into()),
        },
    )))
}
pub(crate) fn concat(items: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(items))
}
pub(crate) fn ct(key: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Owned(key.into()),
        family: None,
        dir: None,
    }))
}
pub(crate) fn m(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}
pub(crate) fn in_set(left: Expression<'static>, set: &str) -> Statement<'static> {
    m(left, Operator::EQ, set_ref(set))
}
fn list(items: &[&str]) -> Expression<'static> {
    Expression::List(items.iter().map(|i| s(*i)).collect())
}
fn iif_oif() -> Expression<'static> {
    concat(vec![meta(MetaKey::Iifname), meta(MetaKey::Oifname)])
}

pub(crate) fn rule(
    table: &str,
    chain: &str,
    expr: Vec<Statement<'static>>,
) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: Cow::Owned(table.into()),
        chain: Cow::Owned(chain.into()),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: None,
    })
}

fn chain(table: &str, name: &str, ty: NfChainType, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: Cow::Owned(table.into()),
        name: Cow::Owned(name.into()),
        newname: None,
        handle: None,
        _type: Some(ty),
        hook: Some(hook),
        prio: Some(prio),
        dev: None,
        policy: Some(NfChainPolicy::Accept),
    }
}

fn table_obj(family: NfFamily, name: &str) -> Table<'static> {
    Table {
        family,
        name: Cow::Owned(name.into()),
        handle: None,
    }
}

/// The fixed rules, per chain, in order. `userland_proxy` only changes the
/// content of the `output` DNAT rules (loopback left to the proxy), never
/// their number.
pub fn fixed_rules(table: &str, userland_proxy: bool) -> Vec<NfListObject<'static>> {
    use MetaKey::{Iifname, Oifname};
    let drop = || Statement::Drop(None);
    let accept = || Statement::Accept(None);
    let masq = || Statement::Masquerade(None::<NAT>);
    let f = CHAIN_FORWARD;
    let i = CHAIN_INPUT;
    let p = CHAIN_POSTROUTING;
    let mut out = vec![
        rule(
            table,
            f,
            vec![
                in_set(iif_oif(), SET_SAME_BRIDGE),
                in_set(meta(Iifname), SET_ICC_OFF),
                drop(),
            ],
        ),
        rule(table, f, vec![in_set(iif_oif(), SET_SAME_BRIDGE), accept()]),
        rule(table, f, vec![in_set(meta(Iifname), SET_INTERNAL), drop()]),
        rule(table, f, vec![in_set(meta(Oifname), SET_INTERNAL), drop()]),
        rule(
            table,
            f,
            vec![
                in_set(meta(Oifname), SET_BRIDGES),
                m(ct("status"), Operator::IN, s("dnat")),
                accept(),
            ],
        ),
        rule(
            table,
            f,
            vec![
                in_set(meta(Iifname), SET_BRIDGES),
                in_set(meta(Oifname), SET_BRIDGES),
                drop(),
            ],
        ),
        rule(
            table,
            f,
            vec![
                in_set(meta(Oifname), SET_BRIDGES),
                m(ct("state"), Operator::IN, list(&["established", "related"])),
                accept(),
            ],
        ),
        rule(table, f, vec![in_set(meta(Oifname), SET_BRIDGES), drop()]),
        rule(
            table,
            i,
            vec![
                in_set(
                    concat(vec![meta(Iifname), payload("ip", "daddr")]),
                    SET_INTERNAL_GW4,
                ),
                accept(),
            ],
        ),
        rule(
            table,
            i,
            vec![
                in_set(
                    concat(vec![meta(Iifname), payload("ip6", "daddr")]),
                    SET_INTERNAL_GW6,
                ),
                accept(),
            ],
        ),
        rule(
            table,
            i,
            vec![
                in_set(meta(Iifname), SET_INTERNAL),
                m(
                    payload("icmpv6", "type"),
                    Operator::EQ,
                    Expression::Named(NamedExpression::Set(
                        [
                            "nd-neighbor-solicit",
                            "nd-neighbor-advert",
                            "nd-router-solicit",
                        ]
                        .iter()
                        .map(|t| schema_set_item(s(*t)))
                        .collect(),
                    )),
                ),
                accept(),
            ],
        ),
        rule(table, i, vec![in_set(meta(Iifname), SET_INTERNAL), drop()]),
        rule(
            table,
            p,
            vec![
                in_set(payload("ip", "saddr"), SET_MASQ4),
                m(meta(Oifname), Operator::NEQ, set_ref(SET_BRIDGES)),
                masq(),
            ],
        ),
        rule(
            table,
            p,
            vec![
                in_set(payload("ip6", "saddr"), SET_MASQ6),
                m(meta(Oifname), Operator::NEQ, set_ref(SET_BRIDGES)),
                masq(),
            ],
        ),
    ];
    out.extend(super::ports::postrouting_rules(table));
    out.extend(super::ports::prerouting_rules(table));
    out.extend(super::ports::output_rules(table, userland_proxy));
    out
}

fn schema_set_item(e: Expression<'static>) -> nftables::expr::SetItem<'static> {
    nftables::expr::SetItem::Element(e)
}

/// Number of rules [`base_ruleset`] installs (what `nft list` must show).
pub fn fixed_rule_count() -> usize {
    fixed_rules("x", true).len()
}

/// Create (if missing) the table, its sets and chains, and (re)write the fixed
/// rules: our own chains are flushed and refilled in the same transaction, so
/// running this again never duplicates rules and never touches set elements
/// or anybody else's tables.
///
/// The port maps must exist first (text script, see
/// [`super::ports::maps_script`]): the DNAT rules refer to them.
pub fn base_ruleset(table: &str, userland_proxy: bool) -> Nftables<'static> {
    let mut b = Batch::new();
    b.add(NfListObject::Table(table_obj(NfFamily::INet, table)));
    for (name, ty, interval) in set_defs() {
        b.add(NfListObject::Set(Box::new(Set {
            family: NfFamily::INet,
            table: Cow::Owned(table.into()),
            name: Cow::Owned(name.into()),
            handle: None,
            set_type: ty,
            policy: None,
            flags: interval.then(|| HashSet::from([SetFlag::Interval])),
            elem: None,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
        })));
    }
    let chains = [
        chain(
            table,
            CHAIN_FORWARD,
            NfChainType::Filter,
            NfHook::Forward,
            0,
        ),
        chain(table, CHAIN_INPUT, NfChainType::Filter, NfHook::Input, 0),
        // srcnat = 100
        chain(
            table,
            CHAIN_POSTROUTING,
            NfChainType::NAT,
            NfHook::Postrouting,
            100,
        ),
        // dstnat = -100
        chain(
            table,
            super::ports::CHAIN_PREROUTING,
            NfChainType::NAT,
            NfHook::Prerouting,
            -100,
        ),
        chain(
            table,
            super::ports::CHAIN_OUTPUT,
            NfChainType::NAT,
            NfHook::Output,
            -100,
        ),
    ];
    for c in &chains {
        b.add(NfListObject::Chain(c.clone()));
    }
    for c in chains {
        b.add_cmd(NfCmd::Flush(schema::FlushObject::Chain(c)));
    }
    for r in fixed_rules(table, userland_proxy) {
        b.add(r);
    }
    b.to_nftables()
}

/// Delete the whole table (tests, uninstall). `add` first makes it
/// idempotent (nft 1.0.6 has no `destroy`).
pub fn delete_table(table: &str) -> Nftables<'static> {
    let mut b = Batch::new();
    b.add(NfListObject::Table(table_obj(NfFamily::INet, table)));
    b.delete(NfListObject::Table(table_obj(NfFamily::INet, table)));
    b.to_nftables()
}

fn prefix(n: &IpNetwork) -> Expression<'static> {
    prefix_of(&n.network().to_string(), n.prefix() as u32)
}

pub(crate) fn prefix_of(addr: &str, len: u32) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(addr.to_string())),
        len,
    }))
}

/// The (set, element) pairs describing one network.
pub fn network_elements(net: &NetworkFw) -> Vec<(&'static str, Expression<'static>)> {
    let br = || s(net.bridge.clone());
    let mut out = vec![
        (SET_BRIDGES, br()),
        (SET_SAME_BRIDGE, concat(vec![br(), br()])),
    ];
    if !net.icc {
        out.push((SET_ICC_OFF, br()));
    }
    if net.internal {
        out.push((SET_INTERNAL, br()));
        for gw in &net.gateways {
            let set = if gw.is_ipv4() {
                SET_INTERNAL_GW4
            } else {
                SET_INTERNAL_GW6
            };
            out.push((set, concat(vec![br(), s(gw.to_string())])));
        }
    } else {
        if net.masquerade {
            for sn in &net.subnets {
                out.push((if sn.is_ipv4() { SET_MASQ4 } else { SET_MASQ6 }, prefix(sn)));
            }
        }
        // Hairpin masquerade of published ports (ports.rs).
        out.extend(super::ports::bridge_net_elements(&net.bridge, &net.subnets));
    }
    out
}

fn element(table: &str, set: &str, e: Expression<'static>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: NfFamily::INet,
        table: Cow::Owned(table.into()),
        name: Cow::Owned(set.into()),
        elem: Cow::Owned(vec![e]),
    })
}

/// Add a network's elements (adding an existing element is a no-op).
pub fn add_network(table: &str, net: &NetworkFw) -> Nftables<'static> {
    let mut b = Batch::new();
    for (set, e) in network_elements(net) {
        b.add(element(table, set, e));
    }
    b.to_nftables()
}

/// Remove a network's elements; idempotent: each element is added then
/// deleted in the same transaction, so a missing one is not an error.
pub fn remove_network(table: &str, net: &NetworkFw) -> Nftables<'static> {
    let mut b = Batch::new();
    for (set, e) in network_elements(net) {
        b.add(element(table, set, e.clone()));
        b.delete(element(table, set, e));
    }
    b.to_nftables()
}

/// The commands of a batch as JSON values (for tests of the builders here and in ports).
#[cfg(test)]
pub(super) fn cmds(n: &Nftables) -> Vec<serde_json::Value> {
    serde_json::to_value(n).unwrap()["nftables"]
        .as_array()
        .unwrap()
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net() -> NetworkFw {
        NetworkFw {
            bridge: "br-0123".into(),
            subnets: vec!["10.5.0.0/24".parse().unwrap(), "fd05::/64".parse().unwrap()],
            gateways: vec!["10.5.0.1".parse().unwrap(), "fd05::1".parse().unwrap()],
            internal: false,
            masquerade: true,
            icc: true,
        }
    }

    #[test]
    fn base_ruleset_shape() {
        let c = cmds(&base_ruleset("netd_t", true));
        assert_eq!(
            c[0],
            json!({"add": {"table": {"family": "inet", "name": "netd_t"}}})
        );
        let sets: Vec<_> = c
            .iter()
            .filter_map(|x| x["add"]["set"]["name"].as_str())
            .collect();
        assert_eq!(
            sets,
            [
                "bridges",
                "same_bridge",
                "icc_off",
                "internal",
                "internal_gw4",
                "internal_gw6",
                "masq4",
                "masq6",
                "bridge_nets4",
                "bridge_nets6"
            ]
        );
        assert_eq!(c[1 + 1]["add"]["set"]["type"], json!(["ifname", "ifname"]));
        assert_eq!(c[7]["add"]["set"]["flags"], json!(["interval"]));
        let flushes = c.iter().filter(|x| x.get("flush").is_some()).count();
        assert_eq!(flushes, 5);
        let rules: Vec<_> = c
            .iter()
            .filter(|x| x["add"].get("rule").is_some())
            .collect();
        assert_eq!(rules.len(), fixed_rule_count());
        // 14 bridge rules + 3 postrouting, 9 prerouting, 5 output for ports.
        assert_eq!(fixed_rule_count(), 31);
        let chain_of = |i: usize| rules[i]["add"]["rule"]["chain"].as_str().unwrap();
        assert_eq!(chain_of(17), "prerouting");
        assert_eq!(chain_of(26), "output");
        assert_eq!(chain_of(30), "output");
        // ct status dnat is accepted before the isolation rule.
        assert_eq!(
            rules[4]["add"]["rule"]["expr"][1],
            json!({"match": {"left": {"ct": {"key": "status"}}, "right": "dnat", "op": "in"}})
        );
        // Flushes come after the chain adds and before the rules.
        let first_rule = c
            .iter()
            .position(|x| x["add"].get("rule").is_some())
            .unwrap();
        let last_flush = c.iter().rposition(|x| x.get("flush").is_some()).unwrap();
        assert!(last_flush < first_rule);
        // The postrouting chain is a nat chain at srcnat priority.
        let post = c
            .iter()
            .find(|x| x["add"]["chain"]["name"] == "postrouting")
            .unwrap();
        assert_eq!(post["add"]["chain"]["type"], "nat");
        assert_eq!(post["add"]["chain"]["prio"], 100);
        // Isolation rule and masquerade rule, snapshot style.
        assert_eq!(
            rules[5]["add"]["rule"]["expr"],
            json!([
                {"match": {"left": {"meta": {"key": "iifname"}}, "right": "@bridges", "op": "=="}},
                {"match": {"left": {"meta": {"key": "oifname"}}, "right": "@bridges", "op": "=="}},
                {"drop": null}
            ])
        );
        assert_eq!(
            rules[12]["add"]["rule"]["expr"],
            json!([
                {"match": {"left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@masq4", "op": "=="}},
                {"match": {"left": {"meta": {"key": "oifname"}}, "right": "@bridges", "op": "!="}},
                {"masquerade": null}
            ])
        );
        assert_eq!(rules[0]["add"]["rule"]["chain"], "forward");
        assert_eq!(rules[8]["add"]["rule"]["chain"], "input");
    }

    #[test]
    fn elements_plain_network() {
        let c = cmds(&add_network("t", &net()));
        let got: Vec<_> = c
            .iter()
            .map(|x| {
                (
                    x["add"]["element"]["name"].as_str().unwrap(),
                    x["add"]["element"]["elem"][0].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("bridges", json!("br-0123")),
                ("same_bridge", json!({"concat": ["br-0123", "br-0123"]})),
                ("masq4", json!({"prefix": {"addr": "10.5.0.0", "len": 24}})),
                ("masq6", json!({"prefix": {"addr": "fd05::", "len": 64}})),
                (
                    "bridge_nets4",
                    json!({"concat": ["br-0123", {"prefix": {"addr": "10.5.0.0", "len": 24}}]})
                ),
                (
                    "bridge_nets6",
                    json!({"concat": ["br-0123", {"prefix": {"addr": "fd05::", "len": 64}}]})
                ),
            ]
        );
    }

    #[test]
    fn elements_internal_icc_off() {
        let mut n = net();
        n.internal = true;
        n.icc = false;
        let e: Vec<_> = network_elements(&n)
            .into_iter()
            .map(|(s, e)| (s, serde_json::to_value(e).unwrap()))
            .collect();
        assert_eq!(
            e,
            vec![
                ("bridges", json!("br-0123")),
                ("same_bridge", json!({"concat": ["br-0123", "br-0123"]})),
                ("icc_off", json!("br-0123")),
                ("internal", json!("br-0123")),
                ("internal_gw4", json!({"concat": ["br-0123", "10.5.0.1"]})),
                ("internal_gw6", json!({"concat": ["br-0123", "fd05::1"]})),
            ]
        );
        // No masquerade: internal networks never leave.
        assert!(!e.iter().any(|(s, _)| s.starts_with("masq")));
    }

    #[test]
    fn no_masquerade_option() {
        let mut n = net();
        n.masquerade = false;
        let e = network_elements(&n);
        assert_eq!(e.len(), 4);
        assert!(!e.iter().any(|(s, _)| s.starts_with("masq")));
    }

    #[test]
    fn remove_is_add_then_delete() {
        let c = cmds(&remove_network("t", &net()));
        assert_eq!(c.len(), 12);
        for pair in c.chunks(2) {
            assert_eq!(pair[0]["add"], pair[1]["delete"]);
        }
    }

    #[test]
    fn delete_table_idempotent_shape() {
        let c = cmds(&delete_table("t"));
        assert_eq!(
            c,
            vec![
                json!({"add": {"table": {"family": "inet", "name": "t"}}}),
                json!({"delete": {"table": {"family": "inet", "name": "t"}}})
            ]
        );
    }
}
