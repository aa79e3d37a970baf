//! Unit tests for [`Table::lookup`].

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addrs(a: Answer) -> Vec<IpAddr> {
    match a {
        Answer::Addrs(v) => v,
        other => panic!("expected addresses, got {other:?}"),
    }
}

/// Two networks: frontend (web, api) and backend (db, api's second leg, two "cache" replicas).
/// Sandbox "sb-web" is on frontend only, "sb-api" on both, "sb-dns" has its own upstreams.
fn table() -> Table {
    let mut b = Table::builder();
    b.add_endpoint(
        "n-front",
        "Frontend",
        "web",
        &["www".into()],
        "aaaaaaaaaaaa",
        &[ip("172.20.0.2"), ip("fd00:20::2")],
    );
    b.add_endpoint(
        "n-front",
        "Frontend",
        "api",
        &[],
        "bbbbbbbbbbbb",
        &[ip("172.20.0.3")],
    );
    b.add_endpoint(
        "n-back",
        "backend",
        "api",
        &[],
        "bbbbbbbbbbbb",
        &[ip("172.21.0.3")],
    );
    b.add_endpoint(
        "n-back",
        "backend",
        "DB",
        &["Postgres".into()],
        "cccccccccccc",
        &[ip("172.21.0.4")],
    );
    b.add_endpoint(
        "n-back",
        "backend",
        "cache-1",
        &["cache".into()],
        "dddddddddddd",
        &[ip("172.21.0.5")],
    );
    b.add_endpoint(
        "n-back",
        "backend",
        "cache-2",
        &["cache".into()],
        "eeeeeeeeeeee",
        &[ip("172.21.0.6")],
    );
    b.set_network("n-back", "backend", &["172.21.0.0/16".parse().unwrap()]);
    b.set_network(
        "n-front",
        "Frontend",
        &[
            "172.20.0.0/16".parse().unwrap(),
            "fd00:20::/64".parse().unwrap(),
        ],
    );
    b.set_sandbox_scope("sb-web", &["n-front".into()], &[]);
    b.set_sandbox_scope(
        "sb-api",
        &["n-front".into(), "n-back".into(), "n-missing".into()],
        &[],
    );
    b.set_sandbox_scope(
        "sb-dns",
        &["n-back".into()],
        &["10.9.9.9:53".parse().unwrap()],
    );
    b.set_default_upstreams(&["10.0.0.1:53".parse().unwrap()]);
    b.build()
}

#[test]
fn container_name_alias_short_id() {
    let t = table();
    assert_eq!(
        addrs(t.lookup("sb-web", "web", RecordType::A)),
        vec![ip("172.20.0.2")]
    );
    assert_eq!(
        addrs(t.lookup("sb-web", "www.", RecordType::A)),
        vec![ip("172.20.0.2")]
    );
    assert_eq!(
        addrs(t.lookup("sb-web", "aaaaaaaaaaaa", RecordType::A)),
        vec![ip("172.20.0.2")]
    );
}

#[test]
fn case_insensitive_and_trailing_dot() {
    let t = table();
    for q in ["db", "DB", "Db.", "postgres", "POSTGRES."] {
        assert_eq!(
            addrs(t.lookup("sb-api", q, RecordType::A)),
            vec![ip("172.21.0.4")],
            "{q}"
        );
    }
}

#[test]
fn scope_isolation() {
    let t = table();
    // db lives on backend; sb-web is only on frontend: not answered, forwarded.
    assert_eq!(t.lookup("sb-web", "db", RecordType::A), Answer::Forward);
    assert_eq!(
        t.lookup("sb-web", "db.backend", RecordType::A),
        Answer::Forward
    );
    assert_eq!(
        t.lookup("sb-web", "cccccccccccc", RecordType::A),
        Answer::Forward
    );
    assert_eq!(
        t.lookup("sb-web", "cache", RecordType::AAAA),
        Answer::Forward
    );
    // Unknown sandbox: everything forwarded.
    assert_eq!(t.lookup("nobody", "web", RecordType::A), Answer::Forward);
    // A sandbox on both networks sees api on both (merged).
    let mut got = addrs(t.lookup("sb-api", "api", RecordType::A));
    got.sort();
    assert_eq!(got, vec![ip("172.20.0.3"), ip("172.21.0.3")]);
    // ...and sb-web sees only the frontend leg.
    assert_eq!(
        addrs(t.lookup("sb-web", "api", RecordType::A)),
        vec![ip("172.20.0.3")]
    );
    assert_eq!(t.sandbox_networks("sb-api"), vec!["n-front", "n-back"]);
}

#[test]
fn network_qualified_names() {
    let t = table();
    assert_eq!(
        addrs(t.lookup("sb-api", "api.backend", RecordType::A)),
        vec![ip("172.21.0.3")]
    );
    assert_eq!(
        addrs(t.lookup("sb-api", "API.Frontend.", RecordType::A)),
        vec![ip("172.20.0.3")]
    );
    assert_eq!(
        t.lookup("sb-api", "db.frontend", RecordType::A),
        Answer::Forward
    );
    assert_eq!(
        t.lookup("sb-api", "db.other", RecordType::A),
        Answer::Forward
    );
}

#[test]
fn alias_shared_by_two_containers_round_robin() {
    let t = table();
    let mut firsts = std::collections::HashSet::new();
    for _ in 0..4 {
        let got = addrs(t.lookup("sb-api", "cache", RecordType::A));
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, vec![ip("172.21.0.5"), ip("172.21.0.6")]);
        firsts.insert(got[0]);
    }
    assert_eq!(firsts.len(), 2, "rotation must vary the first address");
}

#[test]
fn aaaa_and_nodata() {
    let t = table();
    assert_eq!(
        addrs(t.lookup("sb-web", "web", RecordType::AAAA)),
        vec![ip("fd00:20::2")]
    );
    let mut any = addrs(t.lookup("sb-web", "web", RecordType::ANY));
    any.sort();
    assert_eq!(any, vec![ip("172.20.0.2"), ip("fd00:20::2")]);
    // api has no IPv6: NODATA, not NXDOMAIN, not forwarded.
    assert_eq!(t.lookup("sb-web", "api", RecordType::AAAA), Answer::NoData);
    assert_eq!(t.lookup("sb-web", "web", RecordType::MX), Answer::NoData);
    assert_eq!(t.lookup("sb-web", "web", RecordType::TXT), Answer::NoData);
}

#[test]
fn ptr() {
    let t = table();
    let rev = |s: &str| crate::names::reverse_name(ip(s));
    assert_eq!(
        t.lookup("sb-api", &rev("172.21.0.4"), RecordType::PTR),
        Answer::Ptr(vec!["db.backend.".into()])
    );
    assert_eq!(
        t.lookup("sb-web", &rev("fd00:20::2").to_uppercase(), RecordType::PTR),
        Answer::Ptr(vec!["web.frontend.".into()])
    );
    // Known address, other type: NODATA.
    assert_eq!(
        t.lookup("sb-api", &rev("172.21.0.4"), RecordType::A),
        Answer::NoData
    );
    // Inside the backend subnet but unknown: NXDOMAIN locally.
    assert_eq!(
        t.lookup("sb-api", &rev("172.21.9.9"), RecordType::PTR),
        Answer::NxDomain
    );
    // Backend address asked from a frontend-only sandbox: not ours, forwarded.
    assert_eq!(
        t.lookup("sb-web", &rev("172.21.0.4"), RecordType::PTR),
        Answer::Forward
    );
    // Outside every subnet: forwarded.
    assert_eq!(
        t.lookup("sb-api", &rev("8.8.8.8"), RecordType::PTR),
        Answer::Forward
    );
}

#[test]
fn unknown_names_forward() {
    let t = table();
    assert_eq!(
        t.lookup("sb-api", "example.com", RecordType::A),
        Answer::Forward
    );
    assert_eq!(
        t.lookup("sb-api", "nosuchhost", RecordType::A),
        Answer::Forward
    );
    assert_eq!(t.lookup("sb-api", ".", RecordType::NS), Answer::Forward);
    assert_eq!(t.lookup("sb-api", "", RecordType::A), Answer::Forward);
}

#[test]
fn upstream_selection() {
    let t = table();
    assert_eq!(t.upstreams("sb-dns"), &["10.9.9.9:53".parse().unwrap()]);
    assert_eq!(t.upstreams("sb-web"), &["10.0.0.1:53".parse().unwrap()]);
    assert_eq!(t.upstreams("nobody"), &["10.0.0.1:53".parse().unwrap()]);
    assert!(Table::default().upstreams("x").is_empty());
}

#[test]
fn duplicate_registrations_are_merged() {
    let mut b = Table::builder();
    b.add_endpoint(
        "n",
        "net",
        "a",
        &["a".into(), "A".into()],
        "",
        &[ip("10.0.0.2")],
    );
    b.add_endpoint("n", "net", "a", &[], "", &[ip("10.0.0.2")]);
    b.set_sandbox_scope("s", &["n".into()], &[]);
    let t = b.build();
    assert_eq!(
        addrs(t.lookup("s", "a", RecordType::A)),
        vec![ip("10.0.0.2")]
    );
    // An empty short id registers nothing.
    assert_eq!(t.lookup("s", "", RecordType::A), Answer::Forward);
}

mod incremental {
    //! A table changed endpoint by endpoint answers exactly like one built from scratch
    //! out of the endpoints that remain, and a copy handed out before a change does not
    //! see it.
    use super::*;
    use proptest::prelude::*;

    /// (network index, container index, alias index or none, address host byte)
    type Ep = (usize, usize, Option<usize>, u8);

    const NETS: [&str; 2] = ["n0", "n1"];
    const NAMES: [&str; 4] = ["web", "db", "c.with.dots", "api"];
    const ALIASES: [&str; 2] = ["svc", "shared"];

    fn args(e: &Ep) -> (&'static str, String, Vec<String>, String, Vec<IpAddr>) {
        let (n, c, a, h) = *e;
        (
            NETS[n],
            NAMES[c].to_string(),
            a.map(|a| vec![ALIASES[a].to_string()]).unwrap_or_default(),
            format!("{c:012x}"),
            vec![ip(&format!("10.{n}.0.{h}"))],
        )
    }

    fn add(t: &mut Table, e: &Ep) {
        let (n, c, a, s, ad) = args(e);
        t.add_endpoint(n, n, &c, &a, &s, &ad);
    }

    fn remove(t: &mut Table, e: &Ep) {
        let (n, c, a, s, ad) = args(e);
        t.remove_endpoint(n, &c, &a, &s, &ad);
    }

    fn scoped(t: &mut Table) {
        for n in NETS {
            t.set_network(
                n,
                n,
                &[Subnet::new(ip(&format!("10.{}.0.0", &n[1..])), 24).unwrap()],
            );
        }
        t.set_sandbox_scope("sb", &["n0".into(), "n1".into()], &[]);
    }

    fn answers(t: &Table) -> Vec<(String, RecordType, Answer)> {
        let mut qs: Vec<String> = NAMES
            .iter()
            .chain(ALIASES.iter())
            .map(|s| s.to_string())
            .collect();
        for n in NETS {
            qs.extend(NAMES.iter().map(|c| format!("{c}.{n}")));
            for h in 0..8 {
                qs.push(format!("{h}.0.{}.10.in-addr.arpa", &n[1..]));
            }
        }
        for c in 0..NAMES.len() {
            qs.push(format!("{c:012x}"));
        }
        let mut out = vec![];
        for q in qs {
            for ty in [RecordType::A, RecordType::PTR] {
                let mut a = t.lookup("sb", &q, ty);
                if let Answer::Addrs(v) = &mut a {
                    v.sort(); // round-robin rotation is not part of the comparison
                }
                out.push((q.clone(), ty, a));
            }
        }
        out
    }

    proptest! {
        #[test]
        fn incremental_equals_rebuilt(
            ops in proptest::collection::vec(
                (any::<bool>(), 0..2usize, 0..4usize, proptest::option::of(0..2usize), 1..8u8),
                1..40,
            )
        ) {
            let mut t = Table::default();
            scoped(&mut t);
            // Endpoints present; one address per network holds one endpoint (as IPAM does).
            let mut live: Vec<Ep> = vec![];
            for (is_add, n, c, a, h) in ops {
                let e: Ep = (n, c, a, h);
                if is_add {
                    if live.iter().any(|x| x.0 == n && (x.3 == h || x.1 == c)) {
                        continue;
                    }
                    let before = t.clone();
                    let snapshot = answers(&before);
                    add(&mut t, &e);
                    live.push(e);
                    prop_assert_eq!(answers(&before), snapshot, "a copy saw a later change");
                } else if let Some(i) = live.iter().position(|x| x.0 == n && x.1 == c) {
                    let e = live.remove(i);
                    remove(&mut t, &e);
                }
                let mut fresh = Table::default();
                scoped(&mut fresh);
                for e in &live {
                    add(&mut fresh, e);
                }
                prop_assert_eq!(answers(&t), answers(&fresh));
            }
        }
    }

    #[test]
    fn removing_a_sandbox_or_network_forgets_it() {
        let mut t = Table::default();
        scoped(&mut t);
        add(&mut t, &(0, 0, Some(0), 2));
        assert_eq!(
            addrs(t.lookup("sb", "web", RecordType::A)),
            vec![ip("10.0.0.2")]
        );
        t.remove_network("n0");
        assert_eq!(t.lookup("sb", "web", RecordType::A), Answer::Forward);
        assert_eq!(t.sandbox_networks("sb"), vec!["n1"]);
        t.remove_sandbox("sb");
        assert!(!t.has_sandbox("sb"));
    }
}
