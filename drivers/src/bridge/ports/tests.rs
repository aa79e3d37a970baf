//! Unit tests of the port-map builders (pure: no kernel).

use super::*;
use serde_json::json;

fn pb(proto: Proto, host: &str, hp: u16, cip: &str, cp: u16) -> PortBinding {
    PortBinding {
        proto,
        host_ip: host.parse().unwrap(),
        host_port: hp,
        container_ip: cip.parse().unwrap(),
        container_port: cp,
        loopback_nat: false,
    }
}

fn nat_only(mut b: PortBinding) -> PortBinding {
    b.loopback_nat = true;
    b
}

use crate::bridge::rules::cmds;

/// (map name, element) of each `add element` command.
fn elements(c: &[serde_json::Value]) -> Vec<(String, serde_json::Value)> {
    c.iter()
        .map(|x| {
            (
                x["add"]["element"]["name"].as_str().unwrap().to_string(),
                x["add"]["element"]["elem"].clone(),
            )
        })
        .collect()
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
    let got = elements(&c);
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
    // Output: rule 0 DNATs loopback through ports4_lo in both modes; then
    // loopback excluded with the proxy on, v4 loopback NAT'ed with it off.
    let on = v(output_rules("t", true));
    let off = v(output_rules("t", false));
    assert_eq!(on.len(), 5);
    assert_eq!(off.len(), 5);
    let lo = json!([
        {"match": {"left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}, "op": "=="}},
        {"dnat": {"addr": {"map": {"key": {"concat": [{"meta": {"key": "l4proto"}},
            {"payload": {"protocol": "th", "field": "dport"}}]}, "data": "@ports4_lo"}},
          "family": "ip"}}
    ]);
    assert_eq!(on[0], lo);
    assert_eq!(off[0], lo);
    assert_eq!(on[1][0]["match"]["op"], "!=");
    assert!(off[1][0].get("dnat").is_some());
    assert_eq!(off[3][0]["match"]["right"], "::1", "never ::1");
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
fn nat_only_bindings_get_a_loopback_element() {
    let wild = nat_only(pb(Proto::Tcp, "0.0.0.0", 8080, "10.1.0.2", 80));
    let lo = nat_only(pb(Proto::Udp, "127.0.0.1", 5353, "10.1.0.2", 53));
    let other = nat_only(pb(Proto::Tcp, "192.0.2.1", 81, "10.1.0.2", 80));
    let v6 = nat_only(pb(Proto::Tcp, "::", 82, "fd00::2", 80));
    assert!(in_lo_map(&wild) && in_lo_map(&lo));
    assert!(!in_lo_map(&other) && !in_lo_map(&v6));
    // Without the flag: the old single element.
    assert!(!in_lo_map(&pb(Proto::Tcp, "0.0.0.0", 80, "10.1.0.2", 80)));
    let c = cmds(&add_batch("t", &[wild.clone(), lo.clone(), other]));
    let got = elements(&c);
    assert_eq!(
        got,
        vec![
            (
                "ports4_any".into(),
                json!([[{"concat": ["tcp", 8080]}, {"concat": ["10.1.0.2", 80]}]])
            ),
            (
                "ports4_lo".into(),
                json!([[{"concat": ["tcp", 8080]}, {"concat": ["10.1.0.2", 80]}]])
            ),
            (
                "ports4".into(),
                json!([[{"concat": ["udp", "127.0.0.1", 5353]}, {"concat": ["10.1.0.2", 53]}]])
            ),
            (
                "ports4_lo".into(),
                json!([[{"concat": ["udp", 5353]}, {"concat": ["10.1.0.2", 53]}]])
            ),
            (
                "ports4".into(),
                json!([[{"concat": ["tcp", "192.0.2.1", 81]}, {"concat": ["10.1.0.2", 80]}]])
            ),
        ]
    );
    assert_eq!(
        maps_of(&[wild.clone(), v6]),
        vec!["ports4_any", "ports4_lo", "ports6_any"]
    );
    // Removal: add + delete for both elements.
    let c = cmds(&remove_batch("t", &[wild.clone()]));
    assert_eq!(c.len(), 4);
    assert_eq!(c[3]["delete"]["element"]["name"], "ports4_lo");
    assert_eq!(
        c[3]["delete"]["element"]["elem"],
        json!([{"concat": ["tcp", 8080]}])
    );
    // Owned removal and replacement look at the loopback element too.
    let listed_any = json!({"nftables": [{"map": {"name": "ports4_any",
        "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["10.1.0.2", 80]}]]}}]});
    let listed_lo = json!({"nftables": [{"map": {"name": "ports4_lo",
        "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["10.9.9.9", 80]}]]}}]});
    let now = listing_from(&[("ports4_any", listed_any), ("ports4_lo", listed_lo)]);
    let c = cmds(&remove_owned_batch("t", &[wild.clone()], &now));
    assert_eq!(c.len(), 1, "the loopback element is someone else's");
    assert_eq!(c[0]["delete"]["element"]["name"], "ports4_any");
    let c = cmds(&replace_batch("t", &[wild], &now));
    assert_eq!(c.len(), 2, "stale loopback element replaced: {c:?}");
    assert_eq!(c[0]["delete"]["element"]["name"], "ports4_lo");
    assert_eq!(c[1]["add"]["element"]["name"], "ports4_lo");
}

#[test]
fn stored_bindings_without_the_flag_still_load() {
    let b: PortBinding = serde_json::from_value(json!({"proto": "tcp",
        "host_ip": "0.0.0.0", "host_port": 80, "container_ip": "10.0.0.2",
        "container_port": 80}))
    .unwrap();
    assert!(!b.loopback_nat);
}

#[test]
fn maps_script_declares_five_maps() {
    let sc = maps_script("netd_x");
    assert!(sc.starts_with("add table inet netd_x\n"));
    for m in MAPS {
        assert!(sc.contains(&format!("add map inet netd_x {m} {{")), "{m}");
    }
}
