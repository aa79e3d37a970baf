//! netd beside a real dockerd. Issue requirement: "With a private dockerd running with its
//! iptables on (Debian docker.io), two netd sandboxes on one network still talk, and
//! stopping that dockerd leaves netd's networks working."
//!
//! With br_netfilter and `bridge-nf-call-iptables=1` (as Docker sets it), bridged
//! traffic between two sandboxes passes `ip filter` FORWARD, whose policy Docker makes
//! DROP; netd's accept rules in `DOCKER-USER` (comment `<nft table>:<bridge>`) are what
//! let it through. A negative control removes them and checks the traffic is dropped.
//! Both tests are serialized (they share the host's br_netfilter sysctl and the one
//! private dockerd the harness allows at a time).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use netd_tests::dockerd::{
    docker_user_exists, docker_user_rules, forward_policy, DockerdOpts, PrivateDockerd,
};
use netd_tests::{bridge_of, first_address, host_links, require_root, sh, tcp_talks, Daemon};

static SERIAL: Mutex<()> = Mutex::new(());

struct Sb {
    ns: String,
    ip: String,
}

fn sandbox(d: &Daemon, name: &str, network: &str) -> Sb {
    let v = d
        .json(&["sandbox", "create", "--name", name, "--network", network])
        .unwrap();
    Sb {
        ns: v["netns_path"].as_str().unwrap().to_string(),
        ip: first_address(&v["endpoints"][0]),
    }
}

fn wait_for(t: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + t;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn talk_both_ways(a: &Sb, b: &Sb, when: &str) {
    assert!(tcp_talks(&a.ns, &a.ip, &b.ns), "{when}: b -> a must talk");
    assert!(tcp_talks(&b.ns, &b.ip, &a.ns), "{when}: a -> b must talk");
}

/// br_netfilter loaded and `net.bridge.bridge-nf-call-iptables=1` for the test; the
/// previous value (and module state, if we loaded it) come back on drop. Loading
/// br_netfilter affects the whole host; on this machine it is built into the kernel.
struct BrNetfilter {
    restore: Option<String>,
    loaded_by_us: bool,
}

const NF_CALL: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

impl BrNetfilter {
    fn enable() -> Option<BrNetfilter> {
        let mut loaded_by_us = false;
        if !std::path::Path::new(NF_CALL).exists() {
            match sh("modprobe br_netfilter") {
                Ok(_) => loaded_by_us = true,
                Err(e) => {
                    eprintln!("SKIP docker coexistence: br_netfilter unavailable: {e}");
                    return None;
                }
            }
        }
        let old = std::fs::read_to_string(NF_CALL).unwrap().trim().to_string();
        let restore = if old != "1" {
            std::fs::write(NF_CALL, "1").unwrap();
            Some(old)
        } else {
            None
        };
        Some(BrNetfilter {
            restore,
            loaded_by_us,
        })
    }
}

impl Drop for BrNetfilter {
    fn drop(&mut self) {
        if let Some(v) = &self.restore {
            let _ = std::fs::write(NF_CALL, v);
        }
        if self.loaded_by_us {
            let _ = sh("modprobe -r br_netfilter");
        }
    }
}

fn assert_docker_firewall() {
    assert_eq!(
        forward_policy().as_deref(),
        Some("drop"),
        "private dockerd (iptables on): ip filter FORWARD policy must be drop"
    );
    assert!(
        docker_user_exists(),
        "private dockerd must have created DOCKER-USER"
    );
}

/// Sandbox removal, network removal: netd's DOCKER-USER rules and its bridge go.
fn teardown_checks(d: &Daemon, net: &str, br: &str, prefix: &str) {
    d.ok(&["sandbox", "rm", &format!("{net}-a")]).unwrap();
    d.ok(&["sandbox", "rm", &format!("{net}-b")]).unwrap();
    d.ok(&["network", "rm", net]).unwrap();
    let left = docker_user_rules(prefix);
    assert!(
        left.is_empty(),
        "after `network rm {net}` netd's DOCKER-USER rules must be gone: {left:?}"
    );
    assert!(
        !host_links().contains(&br.to_string()),
        "bridge {br} removed"
    );
}

#[test]
fn dockerd_first_then_netd() {
    if !require_root("dockerd_first_then_netd") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_brnf) = BrNetfilter::enable() else {
        return;
    };
    let t0 = Instant::now();
    let Some(mut dockerd) = PrivateDockerd::start(DockerdOpts::default()).unwrap() else {
        return;
    };
    eprintln!(
        "private dockerd ready in {:?} (FORWARD drop set by harness: {})",
        t0.elapsed(),
        dockerd.forced_forward_drop()
    );
    assert_docker_firewall();

    // Declared after dockerd: dropped first, so its DOCKER-USER rules are gone before
    // the harness decides whether Docker's tables can be removed.
    let mut d = Daemon::start().unwrap();
    d.ok(&["network", "create", "co"]).unwrap();
    let br = bridge_of(&d, "co");
    let prefix = format!("{}:", d.nft_table);
    let ours = docker_user_rules(&prefix);
    assert_eq!(
        ours.len(),
        2,
        "network create beside dockerd adds two DOCKER-USER rules: {ours:?}"
    );
    assert!(
        ours.iter().all(|(_, c)| *c == format!("{prefix}{br}")),
        "{ours:?}"
    );
    let a = sandbox(&d, "co-a", "co");
    let b = sandbox(&d, "co-b", "co");
    talk_both_ways(&a, &b, "dockerd running");

    // Negative control: without netd's rules Docker's DROP policy drops the bridged
    // traffic. netd is stopped first so its periodic re-sync cannot put them back.
    d.stop().unwrap();
    for (h, _) in &ours {
        sh(&format!("nft delete rule ip filter DOCKER-USER handle {h}")).unwrap();
    }
    assert!(
        !tcp_talks(&a.ns, &a.ip, &b.ns),
        "removing netd's DOCKER-USER rules must break sandbox traffic (else the test proves nothing)"
    );
    // Same state with Docker's policy set to ACCEPT talks: the drop was Docker's policy,
    // not netd being stopped.
    sh("iptables -P FORWARD ACCEPT").unwrap();
    let with_accept = tcp_talks(&a.ns, &a.ip, &b.ns);
    sh("iptables -P FORWARD DROP").unwrap();
    assert!(
        with_accept,
        "with FORWARD policy accept the same sandboxes talk (control)"
    );
    d.restart_after_kill9().unwrap(); // no child left to kill: just starts netd again
    assert!(
        wait_for(Duration::from_secs(10), || docker_user_rules(&prefix).len()
            == 2),
        "restarted netd puts its DOCKER-USER rules back: {:?}",
        docker_user_rules(&prefix)
    );
    talk_both_ways(&a, &b, "netd restarted");

    let t1 = Instant::now();
    dockerd.stop().unwrap();
    eprintln!("private dockerd stopped in {:?}", t1.elapsed());
    assert!(dockerd.pid().is_none());
    // Docker leaves its chains and DROP policy behind; netd's rules must stay useful.
    talk_both_ways(&a, &b, "dockerd stopped");
    teardown_checks(&d, "co", &br, &prefix);
    eprintln!("dockerd_first_then_netd took {:?}", t0.elapsed());
}

#[test]
fn dockerd_started_after_netd_network() {
    if !require_root("dockerd_started_after_netd_network") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(_brnf) = BrNetfilter::enable() else {
        return;
    };
    let t0 = Instant::now();
    // Declared before netd so that netd (and its DOCKER-USER rules) goes first on drop.
    let mut dockerd: Option<PrivateDockerd> = None;
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "late"]).unwrap();
    let br = bridge_of(&d, "late");
    let prefix = format!("{}:", d.nft_table);
    let a = sandbox(&d, "late-a", "late");
    let b = sandbox(&d, "late-b", "late");
    talk_both_ways(&a, &b, "before dockerd");

    let Some(dk) = PrivateDockerd::start(DockerdOpts::default()).unwrap() else {
        return;
    };
    let dk = dockerd.insert(dk);
    let ready = Instant::now();
    assert_docker_firewall();
    assert!(
        wait_for(Duration::from_secs(15), || docker_user_rules(&prefix).len()
            == 2),
        "netd must add its DOCKER-USER rules for {br} when a dockerd starts after netd's \
         network exists (needs the daemon's periodic DOCKER-USER re-sync); rules now: {:?}",
        docker_user_rules(&prefix)
    );
    eprintln!(
        "netd re-synced DOCKER-USER {:?} after dockerd was ready",
        ready.elapsed()
    );
    // Deterministic form of the same duty (also covers a dockerd that reloads its
    // chains): rules removed under a running netd come back by themselves.
    for (h, _) in docker_user_rules(&prefix) {
        sh(&format!("nft delete rule ip filter DOCKER-USER handle {h}")).unwrap();
    }
    assert!(
        wait_for(Duration::from_secs(15), || docker_user_rules(&prefix).len()
            == 2),
        "a running netd must re-add its DOCKER-USER rules (periodic re-sync); rules now: {:?}",
        docker_user_rules(&prefix)
    );
    talk_both_ways(&a, &b, "dockerd started after netd");

    dk.stop().unwrap();
    talk_both_ways(&a, &b, "dockerd stopped");
    teardown_checks(&d, "late", &br, &prefix);
    eprintln!("dockerd_started_after_netd_network took {:?}", t0.elapsed());
}

/// The harness itself: a busybox image made from the host's static busybox runs as a
/// container, and dropping the harness with that container still running leaves no
/// process, mount, docker0 or Docker table behind.
#[test]
fn private_dockerd_harness_cleans_up() {
    if !require_root("private_dockerd_harness_cleans_up") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let docker0_before = host_links().contains(&"docker0".to_string());
    let tables_before = docker_tables();
    let t0 = Instant::now();
    let Some(dk) = PrivateDockerd::start(DockerdOpts::default()).unwrap() else {
        return;
    };
    dk.import_busybox("busybox:netd").unwrap();
    let out = dk
        .docker_ok(&[
            "run",
            "--rm",
            "busybox:netd",
            "sh",
            "-c",
            "ip -4 -o addr show eth0",
        ])
        .unwrap();
    assert!(out.contains("172.17."), "container on docker0: {out}");
    dk.docker_ok(&[
        "network",
        "create",
        "--subnet",
        "172.31.250.0/24",
        "harness",
    ])
    .unwrap();
    dk.docker_ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "harness",
        "busybox:netd",
        "sleep",
        "300",
    ])
    .unwrap();
    let state = dk
        .docker_ok(&["inspect", "-f", "{{.State.Running}}", "c1"])
        .unwrap();
    assert_eq!(state.trim(), "true");
    let dir = dk.dir.clone();
    let pid = dk.pid().unwrap();
    drop(dk);
    eprintln!(
        "harness start+import+2 containers+drop took {:?}",
        t0.elapsed()
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "dockerd {pid} gone"
    );
    let needle = dir.to_string_lossy().into_owned();
    let ps = sh("ps -eo args").unwrap();
    assert!(!ps.contains(&needle), "processes on {needle} left: {ps}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&needle), "mounts left under {needle}");
    assert!(!dir.exists(), "{needle} removed");
    assert_eq!(
        host_links().contains(&"docker0".to_string()),
        docker0_before,
        "docker0 as before"
    );
    assert_eq!(
        docker_tables(),
        tables_before,
        "Docker's nft tables as before"
    );
}

/// A rule someone else put in Docker's table (here one with a comment, like netd's)
/// keeps the harness from deleting that table; a FORWARD DROP it set goes back to ACCEPT.
#[test]
fn private_dockerd_harness_keeps_foreign_rules() {
    if !require_root("private_dockerd_harness_keeps_foreign_rules") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let filter_before = sh("nft list table ip filter >/dev/null 2>&1 && echo yes")
        .map(|s| s.trim() == "yes")
        .unwrap_or(false);
    let Some(dk) = PrivateDockerd::start(DockerdOpts::default()).unwrap() else {
        return;
    };
    let forced = dk.forced_forward_drop();
    let comment = format!("harness-test-{}", netd_tests::uniq());
    sh(&format!(
        "nft insert rule ip filter DOCKER-USER counter comment \\\"{comment}\\\""
    ))
    .unwrap();
    drop(dk);
    let ours = docker_user_rules(&comment);
    assert_eq!(ours.len(), 1, "foreign rule kept, and its table: {ours:?}");
    if forced {
        assert_eq!(
            forward_policy().as_deref(),
            Some("accept"),
            "DROP set by the harness undone"
        );
    }
    for (h, _) in ours {
        sh(&format!("nft delete rule ip filter DOCKER-USER handle {h}")).unwrap();
    }
    if !filter_before {
        // What is left is our dockerd's own chains (see the harness docs).
        sh("nft delete table ip filter").unwrap();
    }
}

/// Which of Docker's iptables-nft tables exist (other tests' netd tables come and go).
fn docker_tables() -> Vec<String> {
    let all = sh("nft list tables").unwrap();
    ["ip filter", "ip nat", "ip6 filter", "ip6 nat"]
        .iter()
        .filter(|t| all.lines().any(|l| l.trim() == format!("table {t}")))
        .map(|t| t.to_string())
        .collect()
}
