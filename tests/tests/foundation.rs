//! Foundation: networks persist across SIGKILL, IPAM through the API, bad input changes
//! nothing. Runs the real `netd` and `netctl` binaries on private paths.

use std::collections::BTreeSet;

use netd_tests::{require_root, Daemon};

fn names_and_ids(d: &Daemon) -> Vec<(String, String, serde_json::Value)> {
    let v = d.json(&["network", "ls"]).unwrap();
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["id"].as_str().unwrap().to_string(),
                n["subnets"].clone(),
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[test]
fn null_network_survives_sigkill() {
    if !require_root("null_network_survives_sigkill") {
        return;
    }
    let mut d = Daemon::start().unwrap();
    let id = d.ok(&["network", "create", "-d", "null", "n1"]).unwrap();
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "ids are 64 hex characters: {id}");
    let ls = d.ok(&["network", "ls"]).unwrap();
    assert!(ls.contains("n1") && ls.contains(&id[..12]), "{ls}");
    let before = names_and_ids(&d);
    d.restart_after_kill9().unwrap();
    let after = names_and_ids(&d);
    assert_eq!(
        before, after,
        "same networks, ids and IPAM state after SIGKILL"
    );
    // Prefix and name both resolve.
    let by_prefix = d.json(&["network", "inspect", &id[..10]]).unwrap();
    assert_eq!(by_prefix[0]["name"], "n1");
    d.ok(&["network", "rm", "n1"]).unwrap();
}

#[test]
fn ipam_through_the_api() {
    if !require_root("ipam_through_the_api") {
        return;
    }
    let d = Daemon::start().unwrap();
    let x = d
        .json(&[
            "network",
            "create",
            "--subnet",
            "10.20.0.0/16",
            "--gateway",
            "10.20.0.1",
            "--ip-range",
            "10.20.5.0/24",
            "--aux-address",
            "r=10.20.5.9",
            "x",
        ])
        .unwrap();
    let s = &x["subnets"][0];
    assert_eq!(s["subnet"], "10.20.0.0/16");
    assert_eq!(s["gateway"], "10.20.0.1");
    assert_eq!(s["ip_range"], "10.20.5.0/24");
    assert_eq!(s["aux_addresses"]["r"], "10.20.5.9");
    let e = d
        .fails(&["network", "create", "--subnet", "10.20.128.0/20", "y"])
        .unwrap();
    assert!(e.contains("overlaps") && e.contains("10.20.0.0/16"), "{e}");

    // Sandboxes on x get addresses from the range, never the aux address.
    let sb = d
        .json(&["sandbox", "create", "--name", "s1", "--network", "x"])
        .unwrap();
    let addr = sb["endpoints"][0]["addresses"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(addr.starts_with("10.20.5."), "{addr}");
    assert_ne!(addr, "10.20.5.9/16");
    d.ok(&["sandbox", "rm", "s1"]).unwrap();
    d.ok(&["network", "rm", "x"]).unwrap();
}

#[test]
fn fifty_default_networks_are_distinct() {
    if !require_root("fifty_default_networks_are_distinct") {
        return;
    }
    // A private /16 of default /24s for this test only.
    let d = Daemon::start_with(&["--default-address-pool", "base=10.21.0.0/16,size=24"]).unwrap();
    let mut subnets = BTreeSet::new();
    let mut names = vec![];
    for i in 0..50 {
        let name = format!("def{i}");
        let n = d
            .json(&["network", "create", "-d", "bridge", &name])
            .unwrap();
        let s = n["subnets"][0]["subnet"].as_str().unwrap().to_string();
        assert!(subnets.insert(s.clone()), "subnet {s} handed out twice");
        names.push(name);
    }
    assert_eq!(subnets.len(), 50);
    // Non-overlapping: all are /24s or /20s of distinct bases; check pairwise.
    let nets: Vec<(u32, u32)> = subnets
        .iter()
        .map(|s| {
            let (a, l) = s.split_once('/').unwrap();
            let a: std::net::Ipv4Addr = a.parse().unwrap();
            let l: u32 = l.parse().unwrap();
            let start = u32::from(a);
            (start, start + (1u32 << (32 - l)) - 1)
        })
        .collect();
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            assert!(a.1 < b.0 || b.1 < a.0, "{a:?} overlaps {b:?}");
        }
    }
    for n in names {
        d.ok(&["network", "rm", &n]).unwrap();
    }
}

#[test]
fn bad_input_changes_nothing() {
    if !require_root("bad_input_changes_nothing") {
        return;
    }
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "-d", "null", "keep"]).unwrap();
    let before = names_and_ids(&d);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["network", "create", "-d", "nosuch", "a"],
            "unknown network driver",
        ),
        (
            vec!["network", "create", "--subnet", "10.300.0.0/16", "a"],
            "invalid subnet",
        ),
        (
            vec!["network", "create", "--subnet", "10.22.0.0/33", "a"],
            "invalid subnet",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.22.0.0/16",
                "--gateway",
                "10.23.0.1",
                "a",
            ],
            "not in any --subnet",
        ),
        (
            vec!["network", "create", "-d", "null", "keep"],
            "already exists",
        ),
        (
            vec!["network", "create", "bad/name"],
            "invalid network name",
        ),
        (
            vec!["network", "create", "-o", "com.example.nope=1", "a"],
            "does not support option",
        ),
        (vec!["network", "rm", "nosuchnet"], "no such network"),
        (vec!["sandbox", "rm", "nosuchsb"], "no such sandbox"),
    ];
    for (args, want) in cases {
        let e = d.fails(&args).unwrap();
        assert!(e.contains(want), "{args:?}: expected {want:?} in {e:?}");
        assert_eq!(e.trim().lines().count(), 1, "one-line error: {e:?}");
    }
    // Gateway outside the subnet, sent straight to the API (bypassing netctl's check).
    let (st, body) = d
        .raw(
            "POST",
            "/networks",
            br#"{"name":"g","ipam":[{"subnet":"10.22.0.0/16","gateway":"10.23.0.1"}]}"#,
        )
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("10.23.0.1"), "{body}");
    // JSON garbage and wrong shapes.
    for junk in [
        &b"{not json"[..],
        b"",
        b"[]",
        b"{\"name\":5}",
        b"{\"name\":\"a\",\"bogus\":1}",
        b"\xff\xfe",
    ] {
        let (st, body) = d.raw("POST", "/networks", junk).unwrap();
        assert_eq!(st, 400, "{junk:?} -> {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["message"]
            .as_str()
            .unwrap()
            .contains("invalid network create request body"));
    }
    let (st, _) = d.raw("GET", "/nosuchroute", b"").unwrap();
    assert_eq!(st, 404);
    assert_eq!(before, names_and_ids(&d), "bad input changed the state");
    // The daemon is still alive and serving.
    d.ok(&["version"]).unwrap();
    d.ok(&["network", "rm", "keep"]).unwrap();
}

#[test]
fn refuses_second_daemon_on_live_socket() {
    if !require_root("refuses_second_daemon_on_live_socket") {
        return;
    }
    let d = Daemon::start().unwrap();
    let o = std::process::Command::new(netd_tests::bin("netd"))
        .arg("--socket")
        .arg(&d.socket)
        .arg("--data-root")
        .arg(d.dir.path().join("other"))
        .arg("--no-default-bridge")
        .arg("--nft-table")
        .arg(format!("{}x", d.nft_table))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("already listening"), "{e}");
    d.ok(&["version"]).unwrap();
}

#[test]
fn default_subnets_avoid_host_routes() {
    if !require_root("default_subnets_avoid_host_routes") {
        return;
    }
    let d = Daemon::start().unwrap();
    // The daemon's first default subnet is the first /24 of its pool: give the host a
    // route there (as docker0 or a VPN would have) and expect netd to skip it.
    let base = d
        .pool
        .trim_start_matches("base=")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let first = format!("{base}/24");
    let link = format!("dm{}", netd_tests::uniq());
    netd_tests::sh(&format!(
        "ip link add {link} type veth peer name {link}p && ip link set {link} up && ip route add {first} dev {link}"
    ))
    .unwrap();
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = netd_tests::sh(&format!("ip link del {}", self.0));
        }
    }
    let _g = Del(link);
    let n = d.json(&["network", "create", "avoid"]).unwrap();
    let got = n["subnets"][0]["subnet"].as_str().unwrap().to_string();
    assert_ne!(
        got, first,
        "default subnet must not overlap the host route {first}"
    );
    // An explicit subnet is the user's call, as with dockerd.
    d.ok(&["network", "rm", "avoid"]).unwrap();
}
