//! Living beside Docker. A dockerd with iptables enabled sets the `ip filter`
//! FORWARD policy to DROP (iptables-nft on Debian 12: nft table `ip filter`),
//! and with br_netfilter loaded that also drops traffic on netd's bridges.
//! Docker leaves one chain to users, `DOCKER-USER`; we add two rules per
//! netd bridge there, each tagged with the comment `<table>:<bridge>`:
//!
//! ```text
//! iifname "BR" counter accept comment "netd:BR"
//! oifname "BR" counter accept comment "netd:BR"
//! ```
//!
//! Why no `ct state established,related` on the second rule: the chain is
//! owned by iptables-nft, and a native `ct` expression there makes
//! `iptables -L DOCKER-USER` fail with "chain is incompatible, use 'nft'
//! tool" (verified with iptables 1.8.9), which would break dockerd itself.
//! Plain interface matches, counters and comments round-trip through
//! iptables-nft. Netd's own `inet` table still drops unsolicited inbound
//! traffic to its bridges (see `rules`), and a packet must pass every base
//! chain, so nothing is opened that netd's own policy does not allow.
//!
//! We only ever delete rules whose comment starts with our own prefix.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use nftables::batch::Batch;
use nftables::expr::{Expression, Meta, MetaKey, NamedExpression};
use nftables::schema::{NfCmd, NfListObject, Nftables, Rule};
use nftables::stmt::{Counter, Match, Operator, Statement};
use nftables::types::NfFamily;

pub const DOCKER_USER: &str = "DOCKER-USER";

/// What a sync changes in one family's DOCKER-USER chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerUserPlan {
    /// Handles of our rules to delete (stale or incomplete).
    pub delete: Vec<u64>,
    /// Bridges to (re)insert both rules for.
    pub insert: Vec<String>,
}

impl DockerUserPlan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.insert.is_empty()
    }
}

/// Our rules currently in the chain: comment bridge -> handles. Reads raw
/// JSON (`nft -j list chain ip filter DOCKER-USER`), because Docker's own
/// rules contain `xt` matches we do not model.
pub fn our_rules(listing: &serde_json::Value, prefix: &str) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let objs = listing["nftables"].as_array().cloned().unwrap_or_default();
    for o in objs {
        let r = &o["rule"];
        if r["chain"] != DOCKER_USER {
            continue;
        }
        let (Some(c), Some(h)) = (r["comment"].as_str(), r["handle"].as_u64()) else {
            continue;
        };
        if let Some(br) = c.strip_prefix(prefix).and_then(|x| x.strip_prefix(':')) {
            out.entry(br.to_string()).or_default().push(h);
        }
    }
    out
}

/// Whether the listing contains a DOCKER-USER chain at all.
pub fn has_docker_user(listing: &serde_json::Value) -> bool {
    listing["nftables"]
        .as_array()
        .is_some_and(|a| a.iter().any(|o| o["chain"]["name"] == DOCKER_USER))
}

/// Compare what is there with the bridges we want.
pub fn plan(listing: &serde_json::Value, prefix: &str, bridges: &[String]) -> DockerUserPlan {
    let have = our_rules(listing, prefix);
    let want: BTreeSet<&String> = bridges.iter().collect();
    let mut p = DockerUserPlan::default();
    for (br, handles) in &have {
        if !want.contains(br) || handles.len() != 2 {
            p.delete.extend(handles);
        }
    }
    for br in want {
        if have.get(br).map(|h| h.len()) != Some(2) {
            p.insert.push(br.clone());
        }
    }
    p
}

fn rule(
    family: NfFamily,
    key: MetaKey,
    bridge: &str,
    comment: &str,
    handle: Option<u32>,
) -> Rule<'static> {
    Rule {
        family,
        table: Cow::Borrowed("filter"),
        chain: Cow::Borrowed(DOCKER_USER),
        expr: Cow::Owned(vec![
            Statement::Match(Match {
                left: Expression::Named(NamedExpression::Meta(Meta { key })),
                right: Expression::String(Cow::Owned(bridge.into())),
                op: Operator::EQ,
            }),
            Statement::Counter(Counter::Anonymous(None)),
            Statement::Accept(None),
        ]),
        handle,
        index: None,
        comment: Some(Cow::Owned(comment.into())),
    }
}

/// The batch carrying out a plan for `family` (`ip` or `ip6`).
pub fn batch(family: NfFamily, prefix: &str, p: &DockerUserPlan) -> Nftables<'static> {
    let mut b = Batch::new();
    for h in &p.delete {
        let mut r = rule(family, MetaKey::Iifname, "", "", Some(*h as u32));
        r.expr = Cow::Owned(vec![]);
        r.comment = None;
        b.delete(NfListObject::Rule(r));
    }
    for br in &p.insert {
        let c = format!("{prefix}:{br}");
        // Insert puts a rule first in the chain, ahead of Docker's RETURN.
        b.add_cmd(NfCmd::Insert(NfListObject::Rule(rule(
            family,
            MetaKey::Oifname,
            br,
            &c,
            None,
        ))));
        b.add_cmd(NfCmd::Insert(NfListObject::Rule(rule(
            family,
            MetaKey::Iifname,
            br,
            &c,
            None,
        ))));
    }
    b.to_nftables()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing() -> serde_json::Value {
        json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER", "handle": 1}},
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 7, "comment": "netd:br-a", "expr": []}},
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 8, "comment": "netd:br-a", "expr": []}},
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 9, "comment": "netd:br-gone", "expr": []}},
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 10, "comment": "netd_t1:br-a", "expr": []}},
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 11, "comment": "user rule", "expr": [{"xt": {"type": "match", "name": "conntrack"}}]}},
            {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 3, "expr": [{"return": null}]}}
        ]})
    }

    #[test]
    fn finds_only_our_rules() {
        let r = our_rules(&listing(), "netd");
        assert_eq!(r.len(), 2);
        assert_eq!(r["br-a"], vec![7, 8]);
        assert_eq!(r["br-gone"], vec![9]);
        assert!(has_docker_user(&listing()));
        assert!(!has_docker_user(&json!({"nftables": []})));
    }

    #[test]
    fn plan_adds_missing_and_removes_stale() {
        let p = plan(&listing(), "netd", &["br-a".into(), "br-b".into()]);
        assert_eq!(
            p,
            DockerUserPlan {
                delete: vec![9],
                insert: vec!["br-b".into()]
            }
        );
        // Another instance's rules (other prefix) are never touched.
        let p = plan(&listing(), "netd_t1", &[]);
        assert_eq!(p.delete, vec![10]);
        assert!(
            plan(&listing(), "netd", &["br-a".into(), "br-gone".into()]).insert
                == vec!["br-gone".to_string()]
        );
    }

    #[test]
    fn batch_json() {
        let p = DockerUserPlan {
            delete: vec![9],
            insert: vec!["br-b".into()],
        };
        let v = serde_json::to_value(batch(NfFamily::IP, "netd", &p)).unwrap();
        let c = v["nftables"].as_array().unwrap();
        assert_eq!(c[0]["delete"]["rule"]["handle"], 9);
        assert_eq!(c[1]["insert"]["rule"]["comment"], "netd:br-b");
        assert_eq!(
            c[2]["insert"]["rule"]["expr"],
            json!([
                {"match": {"left": {"meta": {"key": "iifname"}}, "right": "br-b", "op": "=="}},
                {"counter": null},
                {"accept": null}
            ])
        );
    }
}
