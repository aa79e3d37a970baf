//! Reliability: SIGKILL at random points during create/join/publish/delete, leftovers
//! removed by reconciliation, and the firewall table restored after `nft flush ruleset`
//! (in a namespace of the test's own, never the host's ruleset).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use netd_tests::{bridge_of, bridge_ports, in_netns, require_root, sh, Daemon, TestNs};

/// A tiny deterministic PRNG (xorshift) so failures can be replayed from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sandboxes(d: &Daemon) -> Vec<serde_json::Value> {
    d.json(&["sandbox", "ls"])
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn ip_of(ep: &serde_json::Value) -> Option<String> {
    ep["addresses"][0]
        .as_str()
        .map(|a| a.split('/').next().unwrap().to_string())
}

/// Check every invariant the issue lists; returns a description of each violation.
fn check_invariants(d: &Daemon, bridge: &str, network: &str) -> Vec<String> {
    let mut bad = vec![];
    let sbs = sandboxes(d);
    let mut addrs = BTreeSet::new();
    let mut host_ifs = BTreeSet::new();
    let mut ns_files = BTreeSet::new();
    let mut ips = vec![];
    for s in &sbs {
        let ns = s["netns_path"].as_str().unwrap().to_string();
        if !std::path::Path::new(&ns).exists() {
            bad.push(format!("sandbox {} has no namespace", s["name"]));
        }
        ns_files.insert(ns.clone());
        for e in s["endpoints"].as_array().unwrap() {
            for a in e["addresses"].as_array().unwrap() {
                if !addrs.insert(a.as_str().unwrap().to_string()) {
                    bad.push(format!("address {a} handed out twice"));
                }
            }
            if let Some(h) = e["host_ifname"].as_str() {
                host_ifs.insert(h.to_string());
            }
            if let Some(ip) = ip_of(e) {
                ips.push((ns.clone(), ip));
            }
        }
    }
    // Every surviving container is reachable from another one.
    if ips.len() >= 2 {
        for i in 0..ips.len() {
            let (from, _) = &ips[(i + 1) % ips.len()];
            let (_, to) = &ips[i];
            if in_netns(from, &format!("busybox ping -c1 -W2 {to}")).is_err() {
                bad.push(format!("{to} not reachable"));
            }
        }
    }
    let ports: BTreeSet<String> = bridge_ports(bridge).into_iter().collect();
    if ports != host_ifs {
        bad.push(format!(
            "veths on {bridge} {ports:?} != endpoints' {host_ifs:?}"
        ));
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| {
            r.flatten()
                .map(|e| e.path().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if on_disk != ns_files {
        bad.push(format!(
            "namespace files {on_disk:?} != sandboxes' {ns_files:?}"
        ));
    }
    // IPAM holds exactly the endpoints' addresses (the gateway is reserved, not allocated).
    let net = d.json(&["network", "inspect", network]).unwrap();
    let subnet = net[0]["subnets"][0]["subnet"].as_str().unwrap().to_string();
    let gw = net[0]["subnets"][0]["gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = d.raw("GET", "/ipam", b"").unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pool = v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["subnet"] == subnet.as_str())
        .cloned()
        .unwrap();
    let allocated: usize = pool["allocated"].as_str().unwrap().parse().unwrap();
    let want = addrs.len();
    if allocated != want {
        bad.push(format!(
            "IPAM has {allocated} addresses allocated, objects need {want} (gateway {gw}): {:?} vs {addrs:?}",
            pool["allocated_ranges"]
        ));
    }
    // Published ports: each is in exactly one endpoint.
    let mut seen = BTreeMap::new();
    for s in &sbs {
        for e in s["endpoints"].as_array().unwrap() {
            for p in e["ports"].as_array().unwrap() {
                let k = format!("{}/{}", p["host_port"], p["proto"]);
                if seen.insert(k.clone(), ()).is_some() {
                    bad.push(format!("host port {k} published twice"));
                }
            }
        }
    }
    bad
}

#[test]
fn sigkill_at_random_points_keeps_everything_consistent() {
    if !require_root("sigkill_at_random_points_keeps_everything_consistent") {
        return;
    }
    let seed = std::env::var("NETD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (NETD_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let mut d = Daemon::start().unwrap();
    d.ok(&["network", "create", "crash"]).unwrap();
    let br = bridge_of(&d, "crash");
    let mut kills = 0;
    let base_port = 10000 + (netd_tests::rand_u16() % 22000);
    for i in 0..100u32 {
        let names: Vec<String> = sandboxes(&d)
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        let socket = d.socket.to_string_lossy().into_owned();
        let mut args: Vec<String> = match rng.below(4) {
            0 | 1 if names.len() < 8 => {
                let mut a = vec!["sandbox", "create", "--name"]
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>();
                a.push(format!("c{i}"));
                a.push("--network".into());
                a.push("crash".into());
                if rng.below(2) == 0 {
                    a.push("-p".into());
                    a.push(format!("127.0.0.1:{}:80", base_port + i as u16));
                }
                a
            }
            2 if !names.is_empty() => {
                let n = &names[rng.below(names.len() as u64) as usize];
                vec!["sandbox".into(), "rm".into(), n.clone()]
            }
            _ if !names.is_empty() => {
                let n = &names[rng.below(names.len() as u64) as usize];
                vec![
                    "network".into(),
                    "disconnect".into(),
                    "crash".into(),
                    n.clone(),
                ]
            }
            _ => vec![
                "sandbox".into(),
                "create".into(),
                "--name".into(),
                format!("c{i}"),
                "--network".into(),
                "crash".into(),
            ],
        };
        args.insert(0, socket);
        args.insert(0, "--host".into());
        let mut child = std::process::Command::new(netd_tests::bin("netctl"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill the daemon in the middle of roughly every third operation.
        if rng.below(3) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(40_000)));
            d.kill9().unwrap();
            kills += 1;
            let _ = child.wait();
            d.restart_after_kill9()
                .unwrap_or_else(|e| panic!("restart after kill {kills}: {e}"));
        } else {
            let _ = child.wait();
        }
        // A sandbox may have been disconnected: reconnect some for reachability checks.
    }
    // A final restart reconciles; then every invariant must hold.
    d.restart_after_kill9().unwrap();
    // Sandboxes left without endpoints (disconnected) do not need reachability.
    let bad = check_invariants(&d, &br, "crash");
    assert!(
        bad.is_empty(),
        "after {kills} SIGKILLs (seed {seed}): {bad:#?}\n{}",
        d.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "crash test: 100 operations, {kills} SIGKILLs, {} sandboxes survived, all invariants hold",
        sandboxes(&d).len()
    );
}

#[test]
fn reconcile_repairs_both_ways() {
    if !require_root("reconcile_repairs_both_ways") {
        return;
    }
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "rec"]).unwrap();
    let br = bridge_of(&d, "rec");
    let a = d
        .json(&["sandbox", "create", "--name", "ra", "--network", "rec"])
        .unwrap();
    let b = d
        .json(&["sandbox", "create", "--name", "rb", "--network", "rec"])
        .unwrap();
    let a_ns = a["netns_path"].as_str().unwrap().to_string();
    let b_ns = b["netns_path"].as_str().unwrap().to_string();
    let b_ip = ip_of(&b["endpoints"][0]).unwrap();
    // Damage: remove a's interface by hand; add a stray veth on netd's bridge and a
    // stray namespace file under netd's exec root.
    in_netns(&a_ns, "ip link del eth0").unwrap();
    assert!(in_netns(&a_ns, &format!("busybox ping -c1 -W1 {b_ip}")).is_err());
    let u = netd_tests::uniq();
    sh(&format!("ip link add vndstray{u} type veth peer name vncstray{u} && ip link set vndstray{u} master {br}")).unwrap();
    let stray_ns = d.exec_root.join("netns").join("stray");
    std::fs::write(&stray_ns, b"").unwrap();
    let rep = d.json(&["system", "reconcile"]).unwrap();
    assert_eq!(
        rep["endpoints_rebuilt"].as_array().unwrap().len(),
        1,
        "{rep}"
    );
    assert!(
        rep["removed_veths"]
            .to_string()
            .contains(&format!("vndstray{u}")),
        "{rep}"
    );
    assert!(!stray_ns.exists(), "stray namespace file removed: {rep}");
    in_netns(&a_ns, &format!("busybox ping -c1 -W2 {b_ip}")).expect("a reaches b again");
    assert!(!netd_tests::host_links().contains(&format!("vndstray{u}")));
    // A second reconcile finds nothing to do.
    let rep = d.json(&["system", "reconcile"]).unwrap();
    assert!(
        rep["endpoints_rebuilt"].as_array().unwrap().is_empty()
            && rep["removed_veths"].as_array().unwrap().is_empty(),
        "{rep}"
    );
    let _ = b_ns;
}

#[test]
fn firewall_table_comes_back_after_ruleset_flush() {
    if !require_root("firewall_table_comes_back_after_ruleset_flush") {
        return;
    }
    // netd runs in a namespace of this test, so flushing that namespace's ruleset
    // touches nobody else's rules.
    let host = TestNs::new("fw").unwrap();
    let d = Daemon::start_in_netns(&host.path(), &["--userland-proxy=false"]).unwrap();
    d.ok(&["network", "create", "fa"]).unwrap();
    d.ok(&["network", "create", "fb"]).unwrap();
    let a = d
        .json(&["sandbox", "create", "--name", "fa1", "--network", "fa"])
        .unwrap();
    let b = d
        .json(&["sandbox", "create", "--name", "fb1", "--network", "fb"])
        .unwrap();
    let a_ns = a["netns_path"].as_str().unwrap().to_string();
    let b_ip = ip_of(&b["endpoints"][0]).unwrap();
    let b_ns = b["netns_path"].as_str().unwrap().to_string();
    // Isolation holds before.
    assert!(
        !netd_tests::tcp_talks(&b_ns, &b_ip, &a_ns),
        "isolated before the flush"
    );
    let nft = |cmd: &str| sh(&format!("nsenter --net={} nft {cmd}", host.path()));
    let before = nft(&format!("-j list table inet {}", d.nft_table)).unwrap();
    nft("flush ruleset").unwrap();
    let t0 = Instant::now();
    let mut restored = None;
    while t0.elapsed() < Duration::from_secs(5) {
        if nft(&format!("list table inet {}", d.nft_table)).is_ok() {
            restored = Some(t0.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = restored.expect("table restored");
    eprintln!("netd restored its table {took:?} after `nft flush ruleset`");
    assert!(
        took < Duration::from_secs(2),
        "restored within two seconds ({took:?})"
    );
    std::thread::sleep(Duration::from_millis(200));
    let after = nft(&format!("-j list table inet {}", d.nft_table)).unwrap();
    let count = |s: &str, k: &str| s.matches(k).count();
    assert_eq!(
        count(&before, "\"rule\""),
        count(&after, "\"rule\""),
        "same rules"
    );
    assert_eq!(
        count(&before, "\"elem\""),
        count(&after, "\"elem\""),
        "same sets with elements"
    );
    assert!(
        !netd_tests::tcp_talks(&b_ns, &b_ip, &a_ns),
        "isolation is back"
    );
}

/// An echo server accepting connections in a namespace until `stop` is set.
fn echo_server(
    ns: &str,
    addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    netd_tests::in_ns_thread(ns, move || {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match l.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                    let mut b = [0u8; 4];
                    if s.read_exact(&mut b).is_ok() {
                        let _ = s.write_all(&b);
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

#[test]
fn published_port_traffic_resumes_after_ruleset_flush() {
    if !require_root("published_port_traffic_resumes_after_ruleset_flush") {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let host = TestNs::new("fwp").unwrap();
    // NAT only: with the userland proxy off, the DNAT map is the only way in.
    let d = Daemon::start_in_netns(&host.path(), &["--userland-proxy=false"]).unwrap();
    d.ok(&["network", "create", "pa"]).unwrap();
    let port = 10000 + (netd_tests::rand_u16() % 22000);
    let a = d
        .json(&[
            "sandbox",
            "create",
            "--name",
            "srv",
            "--network",
            "pa",
            "-p",
            &format!("{port}:80"),
        ])
        .unwrap();
    let b = d
        .json(&["sandbox", "create", "--name", "cli", "--network", "pa"])
        .unwrap();
    let a_ip = ip_of(&a["endpoints"][0]).unwrap();
    let gw = d.json(&["network", "inspect", "pa"]).unwrap()[0]["subnets"][0]["gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let server = echo_server(
        a["netns_path"].as_str().unwrap(),
        format!("{a_ip}:80").parse().unwrap(),
        stop.clone(),
    );
    // The client talks to the published port through the host's address (hairpin).
    let target: std::net::SocketAddr = format!("{gw}:{port}").parse().unwrap();
    let stop_c = stop.clone();
    let client = netd_tests::in_ns_thread(b["netns_path"].as_str().unwrap(), move || {
        use std::io::{Read, Write};
        let t0 = Instant::now();
        let mut log = vec![];
        while !stop_c.load(Ordering::SeqCst) {
            let ok = (|| -> std::io::Result<()> {
                let mut s =
                    std::net::TcpStream::connect_timeout(&target, Duration::from_millis(300))?;
                s.set_read_timeout(Some(Duration::from_millis(300)))?;
                s.write_all(b"ping")?;
                let mut r = [0u8; 4];
                s.read_exact(&mut r)?;
                Ok(())
            })()
            .is_ok();
            log.push((t0.elapsed(), ok));
            std::thread::sleep(Duration::from_millis(50));
        }
        log
    });
    std::thread::sleep(Duration::from_millis(1500));
    let flushed_at = Instant::now();
    sh(&format!("nsenter --net={} nft flush ruleset", host.path())).unwrap();
    std::thread::sleep(Duration::from_millis(4000));
    stop.store(true, Ordering::SeqCst);
    let log = client.join().unwrap().unwrap();
    let _ = server.join();
    let _ = flushed_at;
    let before: Vec<_> = log
        .iter()
        .filter(|(t, _)| *t < Duration::from_millis(1400))
        .collect();
    assert!(
        before.iter().filter(|(_, ok)| *ok).count() >= 5,
        "traffic flowed before the flush: {log:?}"
    );
    // After the flush: the last failure must be within two seconds of the flush, and
    // traffic must flow at the end.
    let flush_t = Duration::from_millis(1500);
    let last_fail = log
        .iter()
        .filter(|(t, ok)| *t > flush_t && !ok)
        .map(|(t, _)| *t)
        .max();
    let tail_ok = log.iter().rev().take(5).all(|(_, ok)| *ok);
    assert!(tail_ok, "traffic flows again: {log:?}");
    if let Some(f) = last_fail {
        let gap = f.saturating_sub(flush_t);
        eprintln!(
            "published-port traffic interrupted for at most {gap:?} after `nft flush ruleset`"
        );
        assert!(
            gap < Duration::from_secs(2),
            "resumed within two seconds (last failure {gap:?} after the flush): {log:?}"
        );
    } else {
        eprintln!("published-port traffic never failed across `nft flush ruleset`");
    }
}

#[test]
fn sigterm_keeps_kernel_state_and_cleanup_on_exit_removes_it() {
    if !require_root("sigterm_keeps_kernel_state_and_cleanup_on_exit_removes_it") {
        return;
    }
    // Default: SIGTERM leaves the sandboxes connected while the daemon is away.
    let mut d = Daemon::start().unwrap();
    d.ok(&["network", "create", "keep"]).unwrap();
    let a = d
        .json(&["sandbox", "create", "--name", "ka", "--network", "keep"])
        .unwrap();
    let b = d
        .json(&["sandbox", "create", "--name", "kb", "--network", "keep"])
        .unwrap();
    let (a_ns, b_ip) = (
        a["netns_path"].as_str().unwrap().to_string(),
        ip_of(&b["endpoints"][0]).unwrap(),
    );
    d.stop().unwrap();
    assert!(!d.socket.exists(), "socket removed on exit");
    in_netns(&a_ns, &format!("busybox ping -c1 -W2 {b_ip}"))
        .expect("still connected while netd is down");
    d.restart_after_kill9().unwrap();
    d.remove_all();

    // --cleanup-on-exit: SIGTERM removes sandboxes, networks and the firewall table.
    let mut c = Daemon::start_with(&["--cleanup-on-exit"]).unwrap();
    c.ok(&["network", "create", "gone"]).unwrap();
    let br = bridge_of(&c, "gone");
    let s = c
        .json(&["sandbox", "create", "--name", "g1", "--network", "gone"])
        .unwrap();
    let ns = s["netns_path"].as_str().unwrap().to_string();
    c.stop().unwrap();
    assert!(!std::path::Path::new(&ns).exists(), "namespace removed");
    assert!(
        !netd_tests::host_links().contains(&br),
        "bridge {br} removed"
    );
    assert!(
        sh(&format!("nft list table inet {}", c.nft_table)).is_err(),
        "firewall table removed"
    );
}
