//! netd-cni end to end: the binary is driven exactly as a CNI runtime drives it (env vars,
//! config on stdin, namespaces made with `ip netns add`) against a private netd, alone and
//! chained with / wrapped by Debian's reference plugins (containernetworking-plugins).
//!
//! Run: `cargo build --workspace --bins && cargo test -p tests --test cni -- --nocapture`

#[path = "cni/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use netd_tests::{bin, in_ns_thread, require_root, sh, tcp_talks, uniq, Daemon, TestNs};
use serde_json::{json, Value};
use support::{add_list, check_list, del_list, exec, gc_list, Caps, Env, PluginDir};

const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The `k`-th /24 of the daemon's pool, from the top (netd's automatic picks start at the
/// bottom).
fn subnet24(pool: &str, k: u8) -> String {
    let (x, y) = netd_tests::pool_prefix(pool);
    format!("10.{x}.{}.0/24", y + 15 - k)
}

/// A one-plugin conflist for netd-cni with its own bridge (removed at the end).
fn netd_list(d: &mut Daemon, version: &str, name: &str, extra: Value) -> Value {
    let br = format!("cb{}", uniq());
    d.cleanup_bridges.push(br.clone());
    let mut p = json!({"type": "netd-cni", "bridge": br});
    for (k, v) in extra.as_object().into_iter().flatten() {
        p[k] = v.clone();
    }
    json!({"cniVersion": version, "name": name, "plugins": [p]})
}

fn env(d: &Daemon, pd: &PluginDir, cid: &str, ns: &TestNs, ifname: &str) -> Env {
    Env::new(cid, &ns.path(), ifname, &pd.cni_path()).with_netd(&d.socket)
}

fn ns_link(ns: &TestNs, dev: &str) -> Option<String> {
    sh(&format!(
        "ip -n {} -o link show dev {dev} 2>/dev/null",
        ns.name
    ))
    .ok()
}

fn mac_of(line: &str) -> String {
    line.split("link/ether ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("")
        .to_string()
}

fn cni_sandboxes(d: &Daemon) -> Vec<Value> {
    d.json(&["sandbox", "ls"])
        .unwrap_or_default()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["owner"] == "cni")
        .collect()
}

/// Checks a netd-cni ADD result against the kernel; returns the container address (no prefix).
fn verify_add_result(r: &Value, version: &str, ns: &TestNs, ifname: &str) -> Result<String> {
    ensure!(r["cniVersion"] == version, "result version: {r}");
    let ip = &r["ips"][0];
    let idx = ip["interface"].as_u64().context("ips[0].interface")? as usize;
    let cif = &r["interfaces"][idx];
    ensure!(
        cif["name"] == ifname && cif["sandbox"] == ns.path().as_str(),
        "container interface: {r}"
    );
    if version.starts_with("0.") {
        ensure!(ip["version"] == "4", "0.x results carry ips[].version: {r}");
    } else {
        ensure!(
            ip.get("version").is_none(),
            "1.x results have no ips[].version: {r}"
        );
    }
    let addr = ip["address"].as_str().context("address")?;
    let link = ns_link(ns, ifname).context("container interface missing in netns")?;
    ensure!(
        mac_of(&link) == cif["mac"].as_str().unwrap_or("?"),
        "mac {link} vs {cif}"
    );
    let addrs = sh(&format!("ip -n {} -o -4 addr show dev {ifname}", ns.name))?;
    ensure!(addrs.contains(addr), "{addr} not on {ifname}: {addrs}");
    // The host side: a veth with the reported MAC, on the network's bridge.
    let host = r["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.get("sandbox").is_none())
        .context("no host-side interface")?;
    let hl = sh(&format!(
        "ip -o link show dev {}",
        host["name"].as_str().unwrap()
    ))?;
    ensure!(
        mac_of(&hl) == host["mac"].as_str().unwrap_or("?") && hl.contains(" master "),
        "host veth {hl}"
    );
    let gw = ip["gateway"].as_str().context("gateway")?;
    ensure!(
        r["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|rt| rt["dst"] == "0.0.0.0/0" && rt["gw"] == gw),
        "default route in result: {r}"
    );
    let routes = sh(&format!("ip -n {} route show default", ns.name))?;
    ensure!(
        routes.contains(&format!("via {gw} dev {ifname}")),
        "kernel default route: {routes}"
    );
    ensure!(r["dns"]["nameservers"] == json!(["127.0.0.11"]), "dns: {r}");
    // Really usable: the gateway answers.
    sh(&format!(
        "ip netns exec {} busybox ping -c1 -W3 {gw}",
        ns.name
    ))?;
    Ok(addr.split('/').next().unwrap().to_string())
}

#[test]
fn add_check_del_every_version() -> Result<()> {
    if !require_root("add_check_del_every_version") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    for (k, v) in VERSIONS.iter().enumerate() {
        let ns = TestNs::new("cniv")?;
        let name = format!("v{}-{}", v.replace('.', ""), uniq());
        let list = netd_list(
            &mut d,
            v,
            &name,
            json!({"subnet": subnet24(&pool, k as u8)}),
        );
        let cid = format!("ctr{k}{}", uniq());
        let e = env(&d, &pd, &cid, &ns, "eth0");
        let caps = Caps::new();
        let r = add_list(&list, &e, &caps).with_context(|| format!("ADD {v}"))?;
        verify_add_result(&r, v, &ns, "eth0").with_context(|| format!("ADD {v}"))?;
        let netd_cni = bin("netd-cni");
        if v.starts_with("0.3") {
            // CHECK arrived in 0.4.0: a 0.3.x CHECK is an incompatible-version error.
            let conf = support::plugin_conf(&list, 0, &caps, Some(&r))?;
            let o = exec(&netd_cni, "CHECK", &e, &conf)?;
            assert_eq!(o.code(), Some(1), "{v} CHECK: {o:?}");
        } else {
            check_list(&list, &e, &caps, &r).with_context(|| format!("CHECK {v}"))?;
        }
        del_list(&list, &e, &caps, Some(&r)).with_context(|| format!("DEL {v}"))?;
        assert!(
            ns_link(&ns, "eth0").is_none(),
            "{v}: eth0 still there after DEL"
        );
        let host = r["interfaces"][0]["name"].as_str().unwrap().to_string();
        assert!(
            !netd_tests::host_links().contains(&host),
            "{v}: host veth {host} left"
        );
        assert!(
            cni_sandboxes(&d).is_empty(),
            "{v}: sandbox left: {:?}",
            cni_sandboxes(&d)
        );
        // The embedded DNS's DNAT table leaves the runtime's namespace too (removed in
        // the background right after DEL answers).
        let gone = (0..60).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            ns.exec("nft list table ip netd_dns").is_err()
        });
        assert!(gone, "{v}: netd_dns table left in the namespace after DEL");
        if k == 0 {
            // ADD again in the same namespace: armed again with a fresh table.
            let r2 = add_list(&list, &e, &caps).context("ADD again")?;
            let t = ns.exec("nft list table ip netd_dns")?;
            assert_eq!(t.matches("dnat to 127.0.0.11:").count(), 2, "{t}");
            del_list(&list, &e, &caps, Some(&r2)).context("DEL again")?;
        }
        // Idempotent DEL: again, for an unknown container, and without a netns.
        del_list(&list, &e, &caps, Some(&r)).with_context(|| format!("second DEL {v}"))?;
        let mut unknown = e.clone();
        unknown.container_id = format!("never-added-{}", uniq());
        del_list(&list, &unknown, &caps, None).with_context(|| format!("unknown DEL {v}"))?;
        let mut no_ns = e.clone();
        no_ns.netns = String::new();
        del_list(&list, &no_ns, &caps, None).with_context(|| format!("DEL without netns {v}"))?;
        println!(
            "cni {v}: ADD {} -> CHECK -> DEL -> DEL -> DEL(unknown) ok",
            r["ips"][0]["address"]
        );
    }
    Ok(())
}

#[test]
fn check_fails_after_manual_changes_and_del_recovers() -> Result<()> {
    if !require_root("check_fails_after_manual_changes_and_del_recovers") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let ns = TestNs::new("cnichk")?;
    let list = netd_list(
        &mut d,
        "1.0.0",
        &format!("chk-{}", uniq()),
        json!({"subnet": subnet24(&pool, 0)}),
    );
    let e = env(&d, &pd, &format!("chk{}", uniq()), &ns, "eth0");
    let caps = Caps::new();
    let netd_cni = bin("netd-cni");
    let check = |r: &Value| -> Result<support::Out> {
        exec(
            &netd_cni,
            "CHECK",
            &e,
            &support::plugin_conf(&list, 0, &caps, Some(r))?,
        )
    };

    // 1. The host-side veth is deleted by hand (this takes the container end with it).
    let r = add_list(&list, &e, &caps)?;
    let veth = r["interfaces"][0]["name"].as_str().unwrap().to_string();
    sh(&format!("ip link del {veth}"))?;
    let o = check(&r)?;
    assert!(!o.ok(), "CHECK passed with {veth} deleted");
    assert!(
        o.msg().contains(&veth) && o.msg().contains("missing"),
        "unclear CHECK error: {o:?}"
    );
    println!(
        "CHECK after `ip link del {veth}`: code {:?}: {}",
        o.code(),
        o.msg()
    );
    del_list(&list, &e, &caps, Some(&r))?;
    assert!(cni_sandboxes(&d).is_empty());

    // 2. Address removed inside the container.
    let r = add_list(&list, &e, &caps)?;
    check_list(&list, &e, &caps, &r)?;
    let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
    sh(&format!("ip -n {} addr del {addr} dev eth0", ns.name))?;
    let o = check(&r)?;
    assert!(
        !o.ok() && o.msg().contains(&addr),
        "CHECK after address removal: {o:?}"
    );
    println!("CHECK after `ip addr del {addr}`: {}", o.msg());
    del_list(&list, &e, &caps, Some(&r))?;

    // 3. Default route removed.
    let r = add_list(&list, &e, &caps)?;
    sh(&format!("ip -n {} route del default", ns.name))?;
    let o = check(&r)?;
    assert!(
        !o.ok() && o.msg().contains("default route"),
        "CHECK after route removal: {o:?}"
    );
    println!("CHECK after `ip route del default`: {}", o.msg());
    del_list(&list, &e, &caps, Some(&r))?;

    // 4. Container interface deleted from inside; then the netns itself vanishes: DEL
    //    still succeeds and frees everything.
    let r = add_list(&list, &e, &caps)?;
    sh(&format!("ip -n {} link del eth0", ns.name))?;
    let o = check(&r)?;
    assert!(
        !o.ok() && o.msg().contains("missing"),
        "CHECK after eth0 removal: {o:?}"
    );
    println!("CHECK after `ip -n NS link del eth0`: {}", o.msg());
    let r2 = {
        del_list(&list, &e, &caps, Some(&r))?;
        add_list(&list, &e, &caps)?
    };
    sh(&format!("ip netns del {}", ns.name))?;
    del_list(&list, &e, &caps, Some(&r2)).context("DEL with the netns gone")?;
    assert!(cni_sandboxes(&d).is_empty(), "{:?}", cni_sandboxes(&d));
    let net = d.json(&["network", "inspect", list["name"].as_str().unwrap()])?;
    let net = if net.is_array() { net[0].clone() } else { net };
    assert_eq!(net["endpoints"].as_array().map(Vec::len), Some(0), "{net}");
    Ok(())
}

const PORTMAP_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
];

/// Is chain `c` in the nat table of `tool` (iptables or ip6tables)?
fn nat_chain(tool: &str, c: &str) -> bool {
    sh(&format!("{tool} -t nat -S {c} >/dev/null 2>&1")).is_ok()
}

/// Remove portmap's top-level chains (and the jumps to them) that were not there before.
fn remove_portmap_chains(pre: &[(String, bool)]) {
    for (key, existed) in pre {
        let (tool, c) = key.split_once(' ').unwrap();
        if *existed || !nat_chain(tool, c) {
            continue;
        }
        for hook in ["PREROUTING", "OUTPUT", "POSTROUTING"] {
            let rules = sh(&format!("{tool} -t nat -S {hook}")).unwrap_or_default();
            for rule in rules.lines().filter(|l| l.contains(&format!("-j {c}"))) {
                let _ = sh(&format!("{tool} -t nat {}", rule.replacen("-A", "-D", 1)));
            }
        }
        let _ = sh(&format!("{tool} -t nat -F {c} && {tool} -t nat -X {c}"));
    }
}

/// Serve one TCP exchange in `ns_path` on `listen` and connect to `connect` from here.
fn tcp_via(ns_path: &str, listen: SocketAddr, connect: SocketAddr) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = in_ns_thread(ns_path, move || -> std::io::Result<()> {
        let l = std::net::TcpListener::bind(listen)?;
        let _ = tx.send(());
        let (mut s, _) = l.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
        s.write_all(b"pong")?;
        Ok(())
    });
    if rx.recv_timeout(Duration::from_secs(3)).is_err() {
        return false;
    }
    let ok = (|| -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect_timeout(&connect, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"ping")?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
        Ok(&b == b"pong")
    })()
    .unwrap_or(false);
    if !ok {
        // Unblock the accept.
        let _ = std::net::TcpStream::connect_timeout(&connect, Duration::from_millis(200));
    }
    let _ = server.join();
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn chain_with_portmap_and_tuning() -> Result<()> {
    if !require_root("chain_with_portmap_and_tuning") || !support::reference_plugins() {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let ns = TestNs::new("cnichain")?;
    let br = format!("cb{}", uniq());
    d.cleanup_bridges.push(br.clone());
    let list = json!({
        "cniVersion": "1.0.0",
        "name": format!("chain-{}", uniq()),
        "plugins": [
            {"type": "netd-cni", "bridge": br, "subnet": subnet24(&pool, 0)},
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "tuning", "sysctl": {"net.core.somaxconn": "321"}},
        ]
    });
    let port = free_port();
    let mut caps = Caps::new();
    caps.insert(
        "portMappings".into(),
        json!([{"hostPort": port, "containerPort": 8080, "protocol": "tcp"}]),
    );
    let mut e = env(&d, &pd, &format!("chain{}", uniq()), &ns, "eth0");
    // Debian's portmap (plugins 1.1.1) fails CHECK whenever ip6tables is installed: it
    // checks its IPv4 rules in the ip6tables chain of the same name, or the missing v6
    // chain (containernetworking/plugins#819, fixed in 1.2.0). The runtime therefore
    // gives the plugins a PATH with iptables but no ip6tables, as on a host without IPv6
    // NAT; portmap then works IPv4-only (which is all this network has).
    let v4only = tempfile::Builder::new().prefix("cni-v4path-").tempdir()?;
    for t in ["iptables", "iptables-save", "iptables-restore"] {
        std::os::unix::fs::symlink(format!("/usr/sbin/{t}"), v4only.path().join(t))?;
    }
    e.path = Some(format!("{}:/usr/bin:/bin", v4only.path().display()));
    let pre: Vec<(String, bool)> = ["iptables", "ip6tables"]
        .iter()
        .flat_map(|t| {
            PORTMAP_CHAINS
                .iter()
                .map(move |c| (format!("{t} {c}"), nat_chain(t, c)))
        })
        .collect();
    let mut added: Option<Value> = None;
    let res = (|| -> Result<()> {
        let r = add_list(&list, &e, &caps)?;
        added = Some(r.clone());
        let addr = verify_add_result(&r, "1.0.0", &ns, "eth0")?;
        assert_eq!(
            ns.exec("cat /proc/sys/net/core/somaxconn")?.trim(),
            "321",
            "tuning applied"
        );
        let dnat = sh("iptables -t nat -S")?;
        assert!(
            dnat.contains(&format!("{addr}:8080")),
            "portmap DNAT rule: {dnat}"
        );
        // portmap's DNAT (not netd: netd-cni has no portMappings capability here).
        let ok = tcp_via(
            &ns.path(),
            format!("0.0.0.0:8080").parse()?,
            format!("127.0.0.1:{port}").parse()?,
        );
        assert!(
            ok,
            "host 127.0.0.1:{port} -> container {addr}:8080 through portmap"
        );
        check_list(&list, &e, &caps, &r)?;
        added = None;
        del_list(&list, &e, &caps, Some(&r))?;
        assert!(
            !sh("iptables -t nat -S")?.contains(&addr),
            "portmap rules left after DEL"
        );
        assert!(cni_sandboxes(&d).is_empty());
        println!("chain netd-cni + portmap + tuning: ADD ({addr}, port {port}) CHECK DEL ok");
        Ok(())
    })();
    if let Some(r) = &added {
        // Failed half-way: DEL anyway so portmap's per-container chain goes.
        let _ = del_list(&list, &e, &caps, Some(r));
    }
    // portmap leaves its top-level chains behind: remove the ones this test made.
    remove_portmap_chains(&pre);
    res
}

#[test]
fn reference_bridge_with_netd_ipam() -> Result<()> {
    if !require_root("reference_bridge_with_netd_ipam") || !support::reference_plugins() {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let br = format!("cb{}", uniq());
    d.cleanup_bridges.push(br.clone());
    // No subnet: netd picks one from its own default pool (host-local could not).
    let list = json!({
        "cniVersion": "1.0.0",
        "name": format!("refbr-{}", uniq()),
        "plugins": [{"type": "bridge", "bridge": br, "isGateway": true, "ipMasq": false,
                     "ipam": {"type": "netd-cni"}}]
    });
    let (x, y) = netd_tests::pool_prefix(&pool);
    let caps = Caps::new();
    let a = TestNs::new("cniipa")?;
    let b = TestNs::new("cniipb")?;
    let ea = env(&d, &pd, &format!("ipa{}", uniq()), &a, "eth0");
    let eb = env(&d, &pd, &format!("ipb{}", uniq()), &b, "eth0");
    let ra = add_list(&list, &ea, &caps)?;
    let rb = add_list(&list, &eb, &caps)?;
    let ip = |r: &Value| r["ips"][0]["address"].as_str().unwrap().to_string();
    println!(
        "bridge + netd IPAM: {} and {} (netd pool base=10.{x}.{y}.0/20)",
        ip(&ra),
        ip(&rb)
    );
    for (r, ns) in [(&ra, &a), (&rb, &b)] {
        assert!(
            ip(r).starts_with(&format!("10.{x}.")),
            "address not from netd's pool: {r}"
        );
        assert_eq!(
            r["interfaces"][0]["name"],
            br.as_str(),
            "made by the bridge plugin: {r}"
        );
        let on = sh(&format!("ip -n {} -o -4 addr show dev eth0", ns.name))?;
        assert!(on.contains(&ip(r)), "{on}");
    }
    assert_ne!(ip(&ra), ip(&rb));
    let (ia, ib) = (ip(&ra), ip(&rb));
    assert!(
        tcp_talks(&a.path(), ia.split('/').next().unwrap(), &b.path()),
        "a <-> b over the reference bridge"
    );
    check_list(&list, &ea, &caps, &ra).context("bridge CHECK delegates to netd IPAM")?;
    // A third container asking for B's address is refused by netd's IPAM.
    let c = TestNs::new("cniipc")?;
    let mut ec = env(&d, &pd, &format!("ipc{}", uniq()), &c, "eth0");
    ec.args = Some(format!(
        "IgnoreUnknown=1;IP={}",
        ib.split('/').next().unwrap()
    ));
    assert!(
        add_list(&list, &ec, &caps).is_err(),
        "IP conflict must be refused"
    );
    del_list(&list, &ec, &caps, None)?;
    // Release B's address; now C gets exactly it.
    del_list(&list, &eb, &caps, Some(&rb))?;
    let rc = add_list(&list, &ec, &caps)?;
    assert_eq!(ip(&rc), ib, "released address is reusable");
    // DEL is idempotent in IPAM mode too.
    del_list(&list, &eb, &caps, Some(&rb))?;
    // The allocations survive a daemon restart (stored with netd's state).
    d.restart()?;
    let e2 = TestNs::new("cniipd")?;
    let ed = env(&d, &pd, &format!("ipd{}", uniq()), &e2, "eth0");
    let rd = add_list(&list, &ed, &caps)?;
    assert!(
        ip(&rd) != ia && ip(&rd) != ib,
        "restart forgot leases: {}",
        ip(&rd)
    );
    // GC (1.1.0, as a 1.1-aware bridge would delegate it): only A stays.
    let netd_cni = bin("netd-cni");
    let mut gc = support::plugin_conf(&list, 0, &caps, None)?;
    gc["cniVersion"] = json!("1.1.0");
    gc["cni.dev/valid-attachments"] = json!([{"containerID": ea.container_id, "ifname": "eth0"}]);
    let o = exec(&netd_cni, "GC", &ed, &gc)?;
    assert!(o.ok(), "IPAM GC: {o:?}");
    // C's and D's addresses are free again (new containers asking for them get them),
    // A's is still held.
    for (i, (ns, want)) in [(&c, ip(&rc)), (&e2, ip(&rd))].into_iter().enumerate() {
        let mut ex = env(&d, &pd, &format!("ipx{i}{}", uniq()), ns, "eth1");
        ex.args = Some(format!(
            "IgnoreUnknown=1;IP={}",
            want.split('/').next().unwrap()
        ));
        let r = add_list(&list, &ex, &caps).with_context(|| format!("GC did not free {want}"))?;
        assert_eq!(ip(&r), want);
        del_list(&list, &ex, &caps, Some(&r))?;
    }
    let mut ex = env(&d, &pd, &format!("ipy{}", uniq()), &c, "eth2");
    ex.args = Some(format!(
        "IgnoreUnknown=1;IP={}",
        ia.split('/').next().unwrap()
    ));
    assert!(
        add_list(&list, &ex, &caps).is_err(),
        "GC freed the valid attachment's {ia}"
    );
    del_list(&list, &ex, &caps, None)?;
    for (e, r) in [(&ea, &ra), (&ec, &rc), (&ed, &rd)] {
        del_list(&list, e, &caps, Some(r))?;
    }
    Ok(())
}

#[test]
fn fifty_concurrent_adds_and_dels() -> Result<()> {
    if !require_root("fifty_concurrent_adds_and_dels") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    // A /26 holds 61 containers: the second round only fits if the first freed everything.
    let (x, y) = netd_tests::pool_prefix(&pool);
    let subnet = format!("10.{x}.{}.0/26", y + 15);
    let list = netd_list(
        &mut d,
        "1.0.0",
        &format!("fifty-{}", uniq()),
        json!({"subnet": subnet}),
    );
    let nss: Vec<TestNs> = (0..50)
        .map(|_| TestNs::new("cni50"))
        .collect::<Result<_>>()?;
    for round in 0..2 {
        let envs: Vec<Env> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| env(&d, &pd, &format!("c50-{round}-{i}-{}", uniq()), ns, "eth0"))
            .collect();
        let t = std::time::Instant::now();
        let results: Vec<Result<Value>> = std::thread::scope(|s| {
            let hs: Vec<_> = envs
                .iter()
                .map(|e| s.spawn(|| add_list(&list, e, &Caps::new())))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let add_time = t.elapsed();
        let mut addrs = BTreeSet::new();
        for (r, ns) in results.iter().zip(&nss) {
            let r = r.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let a = r["ips"][0]["address"].as_str().unwrap().to_string();
            let on = sh(&format!("ip -n {} -o -4 addr show dev eth0", ns.name))?;
            assert!(on.contains(&a), "{a} not in {}", ns.name);
            addrs.insert(a);
        }
        assert_eq!(addrs.len(), 50, "addresses not distinct: {addrs:?}");
        assert_eq!(cni_sandboxes(&d).len(), 50);
        let t = std::time::Instant::now();
        let dels: Vec<Result<()>> = std::thread::scope(|s| {
            let hs: Vec<_> = envs
                .iter()
                .zip(&results)
                .map(|(e, r)| {
                    let list = &list;
                    s.spawn(move || del_list(list, e, &Caps::new(), r.as_ref().ok()))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let del_time = t.elapsed();
        for r in dels {
            r?;
        }
        assert!(
            cni_sandboxes(&d).is_empty(),
            "sandboxes left: {}",
            cni_sandboxes(&d).len()
        );
        for ns in &nss {
            assert!(ns_link(ns, "eth0").is_none(), "eth0 left in {}", ns.name);
        }
        let net = d.json(&["network", "inspect", list["name"].as_str().unwrap()])?;
        let net = if net.is_array() { net[0].clone() } else { net };
        assert_eq!(net["endpoints"].as_array().map(Vec::len), Some(0), "{net}");
        println!(
            "round {round}: 50 concurrent ADDs in {add_time:?} (distinct addresses in {subnet}), 50 concurrent DELs in {del_time:?}"
        );
    }
    Ok(())
}

#[test]
fn gc_releases_attachments_not_valid() -> Result<()> {
    if !require_root("gc_releases_attachments_not_valid") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let list = netd_list(
        &mut d,
        "1.1.0",
        &format!("gc-{}", uniq()),
        json!({"subnet": subnet24(&pool, 0)}),
    );
    let nss: Vec<TestNs> = (0..3)
        .map(|_| TestNs::new("cnigc"))
        .collect::<Result<_>>()?;
    let envs: Vec<Env> = nss
        .iter()
        .enumerate()
        .map(|(i, ns)| env(&d, &pd, &format!("gc{i}{}", uniq()), ns, "eth0"))
        .collect();
    let results: Vec<Value> = envs
        .iter()
        .map(|e| add_list(&list, e, &Caps::new()))
        .collect::<Result<_>>()?;
    gc_list(&list, &envs[0], &[(envs[0].container_id.as_str(), "eth0")])?;
    check_list(&list, &envs[0], &Caps::new(), &results[0])
        .context("the valid attachment survives GC")?;
    assert_eq!(cni_sandboxes(&d).len(), 1);
    for ns in &nss[1..] {
        assert!(ns_link(ns, "eth0").is_none(), "GC left eth0 in {}", ns.name);
    }
    // STATUS: ready while netd is up.
    let o = exec(
        &bin("netd-cni"),
        "STATUS",
        &envs[0],
        &support::plugin_conf(&list, 0, &Caps::new(), None)?,
    )?;
    assert!(o.ok(), "STATUS: {o:?}");
    for (e, r) in envs.iter().zip(&results) {
        del_list(&list, e, &Caps::new(), Some(r))?;
    }
    Ok(())
}

/// netd-cni handling `portMappings` itself, as a runtime drives it: the runtime holds
/// the host ports (listening sockets, like Podman's conmon), so netd binds nothing and
/// serves them by NAT, 127.0.0.1 included (the daemon's userland proxy is on); another
/// container asking for the same host port is refused from netd's own table.
#[test]
fn ports_published_through_netd() -> Result<()> {
    if !require_root("ports_published_through_netd") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let ns = TestNs::new("cniport")?;
    let (port, port_any) = (free_port(), free_port());
    // The runtime's reservations.
    let held = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let _held_any = std::net::TcpListener::bind(("0.0.0.0", port_any))?;
    let list = netd_list(
        &mut d,
        "1.0.0",
        &format!("ports-{}", uniq()),
        json!({"subnet": subnet24(&pool, 0), "capabilities": {"portMappings": true}}),
    );
    let mut caps = Caps::new();
    // containerd's PascalCase spelling.
    caps.insert(
        "portMappings".into(),
        json!([{"HostPort": port, "ContainerPort": 8081, "Protocol": "tcp", "HostIP": "127.0.0.1"},
               {"HostPort": port_any, "ContainerPort": 8081, "Protocol": "tcp"}]),
    );
    let cid = format!("port{}", uniq());
    let mut e = env(&d, &pd, &cid, &ns, "eth0");
    e.args = Some("IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default".into());
    let r = add_list(&list, &e, &caps)?;
    let addr = verify_add_result(&r, "1.0.0", &ns, "eth0")?;
    for p in [port, port_any] {
        assert!(
            tcp_via(
                &ns.path(),
                "0.0.0.0:8081".parse()?,
                format!("127.0.0.1:{p}").parse()?
            ),
            "netd-published 127.0.0.1:{p} -> {addr}:8081 (NAT, the runtime holds the port)"
        );
    }
    // Same host port for another container: refused, though netd binds nothing.
    let ns2 = TestNs::new("cniport2")?;
    let e2 = env(&d, &pd, &format!("port2{}", uniq()), &ns2, "eth0");
    let dup = add_list(&list, &e2, &caps);
    let _ = del_list(&list, &e2, &caps, None);
    let msg = format!(
        "{:#}",
        dup.err().context("second ADD with the same host port")?
    );
    assert!(msg.contains("already published"), "{msg}");
    del_list(&list, &e, &caps, Some(&r))?;
    // The NAT is gone: 127.0.0.1:port reaches the runtime's own socket again.
    held.set_nonblocking(true)?;
    let _c = std::net::TcpStream::connect(("127.0.0.1", port))?;
    std::thread::sleep(Duration::from_millis(100));
    held.accept().context("the runtime's socket after DEL")?;
    Ok(())
}

#[test]
fn second_interface_and_error_codes() -> Result<()> {
    if !require_root("second_interface_and_error_codes") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let pool = d.pool.clone();
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let ns = TestNs::new("cni2if")?;
    let list = netd_list(
        &mut d,
        "1.0.0",
        &format!("first-{}", uniq()),
        json!({"subnet": subnet24(&pool, 0)}),
    );
    let caps = Caps::new();
    let cid = format!("twoif{}", uniq());
    let mut e = env(&d, &pd, &cid, &ns, "eth0");
    e.args = Some("IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default".into());
    let r = add_list(&list, &e, &caps)?;
    verify_add_result(&r, "1.0.0", &ns, "eth0")?;
    // ADD of an existing (container, ifname) is an error.
    let o = exec(
        &bin("netd-cni"),
        "ADD",
        &e,
        &support::plugin_conf(&list, 0, &caps, None)?,
    )?;
    assert!(
        !o.ok() && o.msg().contains("already has interface"),
        "{o:?}"
    );
    // A second interface of the same container on another network joins the same netns.
    let list2 = netd_list(
        &mut d,
        "1.0.0",
        &format!("second-{}", uniq()),
        json!({"subnet": subnet24(&pool, 1)}),
    );
    let e2 = env(&d, &pd, &cid, &ns, "eth1");
    let r2 = add_list(&list2, &e2, &Caps::new())?;
    let a2 = r2["ips"][0]["address"].as_str().unwrap();
    assert!(sh(&format!("ip -n {} -o addr show dev eth1", ns.name))?.contains(a2));
    assert_eq!(cni_sandboxes(&d).len(), 1, "one sandbox per container");
    check_list(&list2, &e2, &Caps::new(), &r2)?;
    check_list(&list, &e, &caps, &r)?;
    del_list(&list2, &e2, &Caps::new(), Some(&r2))?;
    assert!(ns_link(&ns, "eth1").is_none() && ns_link(&ns, "eth0").is_some());
    check_list(&list, &e, &caps, &r).context("eth0 intact after eth1's DEL")?;
    del_list(&list, &e, &caps, Some(&r))?;
    // Error codes: missing netns (4), daemon unreachable (11), STATUS unreachable (50).
    let mut bad = e.clone();
    bad.netns = "/run/netns/does-not-exist-netd".into();
    let o = exec(
        &bin("netd-cni"),
        "ADD",
        &bad,
        &support::plugin_conf(&list, 0, &caps, None)?,
    )?;
    assert_eq!(o.code(), Some(4), "{o:?}");
    let mut down = e.clone();
    down.netd_host = Some(
        d.dir
            .path()
            .join("nobody.sock")
            .to_string_lossy()
            .into_owned(),
    );
    let o = exec(
        &bin("netd-cni"),
        "ADD",
        &down,
        &support::plugin_conf(&list, 0, &caps, None)?,
    )?;
    assert_eq!(o.code(), Some(11), "{o:?}");
    let mut l11 = list.clone();
    l11["cniVersion"] = json!("1.1.0");
    let o = exec(
        &bin("netd-cni"),
        "STATUS",
        &down,
        &support::plugin_conf(&l11, 0, &caps, None)?,
    )?;
    assert_eq!(o.code(), Some(50), "{o:?}");
    Ok(())
}
