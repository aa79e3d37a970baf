//! Bridge driver through the daemon: real bridges, veths, namespaces and nftables.
//! Each test runs its own netd (own nft table, own subnets) and removes what it made.

use netd_tests::{
    bridge_of, first_address, host_links, nft_counts, require_root, sh, tcp_talks, Daemon, TestNs,
};

struct Sb {
    id: String,
    ns: String,
    ip: String,
}

fn sandbox(d: &Daemon, name: &str, nets: &[&str]) -> Sb {
    let mut args = vec!["sandbox", "create", "--name", name];
    for n in nets {
        args.push("--network");
        args.push(n);
    }
    let v = d.json(&args).unwrap();
    Sb {
        id: v["id"].as_str().unwrap().to_string(),
        ns: v["netns_path"].as_str().unwrap().to_string(),
        ip: first_address(&v["endpoints"][0]),
    }
}

fn net(d: &Daemon, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["network", "create"];
    args.extend_from_slice(extra);
    args.push(name);
    let v = d.json(&args).unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn isolation_and_connect() {
    if !require_root("isolation_and_connect") {
        return;
    }
    let d = Daemon::start().unwrap();
    net(&d, "a", &[]);
    net(&d, "b", &[]);
    let s1 = sandbox(&d, "s1", &["a"]);
    let s2 = sandbox(&d, "s2", &["a"]);
    let s3 = sandbox(&d, "s3", &["b"]);
    assert!(tcp_talks(&s1.ns, &s1.ip, &s2.ns), "s2 -> s1 on one network");
    assert!(tcp_talks(&s2.ns, &s2.ip, &s1.ns), "s1 -> s2 on one network");
    assert!(
        !tcp_talks(&s1.ns, &s1.ip, &s3.ns),
        "s3 on b must not reach s1 on a"
    );
    assert!(
        !tcp_talks(&s2.ns, &s2.ip, &s3.ns),
        "s3 on b must not reach s2 on a"
    );
    assert!(
        !tcp_talks(&s3.ns, &s3.ip, &s1.ns),
        "s1 on a must not reach s3 on b"
    );
    d.ok(&["network", "connect", "a", "s3"]).unwrap();
    assert!(
        tcp_talks(&s1.ns, &s1.ip, &s3.ns),
        "after connect s3 reaches s1"
    );
    // s3 now has eth0 (b) and eth1 (a); inspect shows both with addresses and MACs.
    let ins = d.json(&["sandbox", "inspect", "s3"]).unwrap();
    let ifs = ins[0]["kernel"]["interfaces"].as_array().unwrap();
    let names: Vec<&str> = ifs.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"eth0") && names.contains(&"eth1"),
        "{names:?}"
    );
    d.ok(&["network", "disconnect", "a", "s3"]).unwrap();
    assert!(
        !tcp_talks(&s1.ns, &s1.ip, &s3.ns),
        "after disconnect s3 is cut off again"
    );
    let _ = (s1.id, s2.id, s3.id);
}

#[test]
fn icc_off_and_internal() {
    if !require_root("icc_off_and_internal") {
        return;
    }
    let d = Daemon::start().unwrap();
    net(
        &d,
        "noicc",
        &["-o", "com.docker.network.bridge.enable_icc=false"],
    );
    let a = sandbox(&d, "a", &["noicc"]);
    let b = sandbox(&d, "b", &["noicc"]);
    assert!(
        !tcp_talks(&a.ns, &a.ip, &b.ns),
        "ICC off: no traffic between a and b"
    );
    let gw = d.json(&["network", "inspect", "noicc"]).unwrap()[0]["subnets"][0]["gateway"]
        .as_str()
        .unwrap()
        .to_string();
    netd_tests::in_netns(&a.ns, &format!("busybox ping -c1 -W2 {gw}"))
        .expect("gateway reachable with ICC off");

    // An outside host: a test namespace routed through the host.
    let outside = TestNs::new("ext").unwrap();
    let u = netd_tests::uniq();
    let (h, o) = (format!("xh{u}"), format!("xo{u}"));
    let third = 100 + (netd_tests::rand_u16() % 100);
    sh(&format!(
        "ip link add {h} type veth peer name {o} && ip link set {o} netns {} && \
         ip addr add 10.250.{third}.1/30 dev {h} && ip link set {h} up && \
         ip -n {} addr add 10.250.{third}.2/30 dev {o} && ip -n {} link set {o} up && \
         ip -n {} route add default via 10.250.{third}.1",
        outside.name, outside.name, outside.name, outside.name
    ))
    .unwrap();
    let _cleanup = Guard(format!("ip link del {h}"));
    let outside_ip = format!("10.250.{third}.2");
    let host_ip = format!("10.250.{third}.1");

    net(&d, "open", &[]);
    net(&d, "closed", &["--internal"]);
    let open = sandbox(&d, "open1", &["open"]);
    let closed = sandbox(&d, "closed1", &["closed"]);
    let closed2 = sandbox(&d, "closed2", &["closed"]);
    assert!(
        tcp_talks(&outside.path(), &outside_ip, &open.ns),
        "a normal network reaches out (NAT)"
    );
    assert!(
        !tcp_talks(&outside.path(), &outside_ip, &closed.ns),
        "internal: nothing leaves"
    );
    assert!(
        tcp_talks(&closed2.ns, &closed2.ip, &closed.ns),
        "internal: inside traffic works"
    );
    // The host's own addresses other than the gateway are off limits.
    assert!(
        !netd_tests::in_netns_ok(&closed.ns, &format!("busybox ping -c1 -W1 {host_ip}")),
        "internal network must not reach host address {host_ip}"
    );
}

struct Guard(String);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = sh(&self.0);
    }
}

#[test]
fn teardown_leaves_nothing_and_rules_stay_constant() {
    if !require_root("teardown_leaves_nothing_and_rules_stay_constant") {
        return;
    }
    let d = Daemon::start().unwrap();
    let links_before = host_links();
    net(&d, "t1", &[]);
    let br = bridge_of(&d, "t1");
    assert!(host_links().contains(&br), "bridge {br} exists");
    let (rules0, _) = nft_counts("inet", &d.nft_table);
    let mut sbs = vec![];
    for i in 0..6 {
        sbs.push(sandbox(&d, &format!("t{i}"), &["t1"]));
    }
    net(&d, "t2", &[]);
    let (rules6, elems6) = nft_counts("inet", &d.nft_table);
    assert_eq!(
        rules0, rules6,
        "rule count must not grow with endpoints or networks"
    );
    assert!(elems6 > 0);
    let e = d.fails(&["network", "rm", "t1"]).unwrap();
    assert!(e.contains("active endpoints") && e.contains("t0"), "{e}");
    let nsfiles: Vec<String> = sbs.iter().map(|s| s.ns.clone()).collect();
    let sbs_ifnames: Vec<String> = d
        .json(&["endpoint", "ls"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["host_ifname"].as_str().map(String::from))
        .collect();
    assert_eq!(sbs_ifnames.len(), 6);
    assert_eq!(netd_tests::bridge_ports(&br).len(), 6);
    for i in 0..6 {
        d.ok(&["sandbox", "rm", &format!("t{i}")]).unwrap();
    }
    for p in &nsfiles {
        assert!(!std::path::Path::new(p).exists(), "namespace {p} removed");
    }
    d.ok(&["network", "rm", "t1"]).unwrap();
    d.ok(&["network", "rm", "t2"]).unwrap();
    let links_after = host_links();
    assert!(!links_after.contains(&br), "bridge {br} removed");
    let ours: Vec<_> = links_after
        .iter()
        .filter(|l| !links_before.contains(l) && sbs_ifnames.contains(l))
        .collect();
    assert!(ours.is_empty(), "veths left behind: {ours:?}");
    let (_, elems) = nft_counts("inet", &d.nft_table);
    assert_eq!(elems, 0, "set elements left behind");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(d.exec_root.to_str().unwrap()) || !mounts.contains("nsfs"),
        "netns mounts left: {mounts}"
    );
}

#[test]
fn sigkill_keeps_sandboxes_connected() {
    if !require_root("sigkill_keeps_sandboxes_connected") {
        return;
    }
    let mut d = Daemon::start().unwrap();
    net(&d, "k", &[]);
    let a = sandbox(&d, "ka", &["k"]);
    let b = sandbox(&d, "kb", &["k"]);
    assert!(tcp_talks(&a.ns, &a.ip, &b.ns));
    let before = d.json(&["sandbox", "inspect", "ka"]).unwrap();
    d.restart_after_kill9().unwrap();
    assert!(
        tcp_talks(&a.ns, &a.ip, &b.ns),
        "still connected after SIGKILL + restart"
    );
    let after = d.json(&["sandbox", "inspect", "ka"]).unwrap();
    assert_eq!(before[0]["endpoints"], after[0]["endpoints"]);
    assert_eq!(
        before[0]["kernel"]["interfaces"],
        after[0]["kernel"]["interfaces"]
    );
    // A new sandbox after the restart gets a fresh address (no double hand-out).
    let c = sandbox(&d, "kc", &["k"]);
    assert_ne!(c.ip, a.ip);
    assert_ne!(c.ip, b.ip);
    assert!(tcp_talks(&c.ns, &c.ip, &a.ns));
}

#[test]
fn ipv6_dual_stack() {
    if !require_root("ipv6_dual_stack") {
        return;
    }
    let d = Daemon::start().unwrap();
    let p = netd_tests::rand_u16();
    let v6 = format!("fd00:{p:x}:1::/64");
    net(&d, "v6", &["--ipv6", "--subnet", &v6]);
    let a = d
        .json(&["sandbox", "create", "--name", "v6a", "--network", "v6"])
        .unwrap();
    let b = sandbox(&d, "v6b", &["v6"]);
    let addrs: Vec<String> = a["endpoints"][0]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().split('/').next().unwrap().to_string())
        .collect();
    let a6 = addrs
        .iter()
        .find(|x| x.contains(':'))
        .expect("an IPv6 address")
        .clone();
    let a4 = addrs
        .iter()
        .find(|x| x.contains('.'))
        .expect("an IPv4 address")
        .clone();
    let ans = a["netns_path"].as_str().unwrap().to_string();
    assert!(tcp_talks(&ans, &a6, &b.ns), "TCP over IPv6");
    assert!(tcp_talks(&ans, &a4, &b.ns), "TCP over IPv4");
}
