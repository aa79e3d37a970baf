//! Embedded DNS at 127.0.0.11 in netd sandboxes, queried with real clients (dig and
//! busybox nslookup) from inside the namespaces. Upstream is a stub server of the
//! test's own on a loopback address; nothing leaves this machine.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netd_tests::stubdns::StubDns;
use netd_tests::{first_address, in_netns, require_root, Daemon};

fn have_dig(test: &str) -> bool {
    if std::path::Path::new("/usr/bin/dig").exists() {
        true
    } else {
        eprintln!("SKIP {test}: dig not installed (Debian package dnsutils; scripts/deps.sh test installs it)");
        false
    }
}

fn sb(d: &Daemon, name: &str, net: &str, aliases: &[&str]) -> (String, String) {
    let v = d.json(&["sandbox", "create", "--name", name]).unwrap();
    let mut args = vec!["network", "connect"];
    for a in aliases {
        args.push("--alias");
        args.push(a);
    }
    args.push(net);
    args.push(name);
    let e = d.json(&args).unwrap();
    (
        v["netns_path"].as_str().unwrap().to_string(),
        first_address(&e),
    )
}

fn dig(ns: &str, q: &str) -> String {
    in_netns(ns, &format!("dig @127.0.0.11 +time=4 +tries=1 {q}")).unwrap_or_else(|e| e.to_string())
}

fn short(ns: &str, q: &str) -> Vec<String> {
    let mut v: Vec<String> = in_netns(ns, &format!("dig @127.0.0.11 +short +time=4 +tries=1 {q}"))
        .unwrap_or_default()
        .lines()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn names_aliases_ptr_scope_cache() {
    if !require_root("names_aliases_ptr_scope_cache") || !have_dig("names_aliases_ptr_scope_cache")
    {
        return;
    }
    let mut zone = HashMap::new();
    zone.insert("external.test".to_string(), "192.0.2.7".parse().unwrap());
    let stub = StubDns::start(&netd_tests::stubdns::loopback_addr(), zone, false).unwrap();
    let mut d = Daemon::start_with(&["--dns", &stub.addr.to_string()]).unwrap();
    d.ok(&["network", "create", "n"]).unwrap();
    d.ok(&["network", "create", "m"]).unwrap();
    let (_, web_ip) = sb(&d, "web", "n", &["svc"]);
    let (_, web2_ip) = sb(&d, "web2", "n", &["svc"]);
    let (client, _) = sb(&d, "client", "n", &[]);
    let (_, _hidden_ip) = sb(&d, "hidden", "m", &[]);

    let rc = in_netns(&client, "true").map(|_| ()).and_then(|_| {
        let v = d.json(&["sandbox", "inspect", "client"])?;
        Ok(v)
    });
    assert!(rc.is_ok());
    assert_eq!(
        short(&client, "web"),
        vec![web_ip.clone()],
        "container name"
    );
    let mut both = vec![web_ip.clone(), web2_ip.clone()];
    both.sort();
    assert_eq!(
        short(&client, "svc"),
        both,
        "alias shared by two containers"
    );
    assert_eq!(
        short(&client, "WEB."),
        vec![web_ip.clone()],
        "case and trailing dot"
    );
    let ptr = short(&client, &format!("-x {web_ip}"));
    assert_eq!(ptr.len(), 1);
    assert!(ptr[0].starts_with("web."), "PTR of web: {ptr:?}");
    // busybox nslookup, as in a container.
    let ns = in_netns(&client, "busybox nslookup web 127.0.0.11").unwrap();
    assert!(ns.contains(&web_ip), "{ns}");
    // Another network's container: not resolvable (forwarded, the stub says NXDOMAIN).
    let out = dig(&client, "hidden");
    assert!(out.contains("NXDOMAIN"), "{out}");

    // External names go to the upstream once, then come from the cache.
    let before = stub.count();
    assert_eq!(
        short(&client, "external.test"),
        vec!["192.0.2.7".to_string()]
    );
    assert_eq!(stub.count(), before + 1, "first lookup forwarded");
    assert_eq!(
        short(&client, "external.test"),
        vec!["192.0.2.7".to_string()]
    );
    assert_eq!(
        stub.count(),
        before + 1,
        "second lookup served from the cache"
    );
    // Negative answers are cached too (RFC 2308).
    let _ = dig(&client, "nosuch.test");
    let n1 = stub.count();
    let out = dig(&client, "nosuch.test");
    assert!(out.contains("NXDOMAIN"), "{out}");
    assert_eq!(stub.count(), n1, "negative answer cached");

    // TCP works.
    let tcp = in_netns(&client, "dig @127.0.0.11 +tcp +short web").unwrap();
    assert_eq!(tcp.trim(), web_ip);

    // The container keeps port 53 for itself.
    let bound = in_netns(
        &client,
        "python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind((\"0.0.0.0\",53));print(\"bound\")'",
    )
    .unwrap();
    assert!(bound.contains("bound"), "{bound}");

    // resolv.conf for the sandbox says 127.0.0.11 with ndots:0.
    let sbid = d.json(&["sandbox", "inspect", "client"]).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rc = std::fs::read_to_string(
        d.exec_root
            .join("sandboxes")
            .join(&sbid)
            .join("resolv.conf"),
    )
    .unwrap();
    assert!(
        rc.contains("nameserver 127.0.0.11") && rc.contains("ndots:0"),
        "{rc}"
    );

    // Updates are immediate: a container that leaves is gone from DNS.
    d.ok(&["network", "disconnect", "n", "web2"]).unwrap();
    assert_eq!(short(&client, "svc"), vec![web_ip.clone()]);
    // ... and a renamed one answers to its new name only.
    d.ok(&["sandbox", "rename", "web", "web-renamed"]).unwrap();
    assert_eq!(short(&client, "web-renamed"), vec![web_ip.clone()]);
    let out = dig(&client, "web");
    assert!(out.contains("NXDOMAIN"), "old name gone: {out}");
    let ptr = short(&client, &format!("-x {web_ip}"));
    assert!(
        ptr[0].starts_with("web-renamed."),
        "PTR follows the rename: {ptr:?}"
    );

    // After a crash the restarted daemon re-arms the sandbox on new ports: its DNAT
    // table is replaced (two rules, not four) and names resolve again.
    d.restart_after_kill9().unwrap();
    assert_eq!(short(&client, "web-renamed"), vec![web_ip.clone()]);
    let rules = in_netns(&client, "nft list table ip netd_dns").unwrap();
    assert_eq!(rules.matches("dnat to 127.0.0.11:").count(), 2, "{rules}");
}

#[test]
fn dead_upstream_gives_servfail_quickly() {
    if !require_root("dead_upstream_gives_servfail_quickly")
        || !have_dig("dead_upstream_gives_servfail_quickly")
    {
        return;
    }
    let stub = StubDns::start(&netd_tests::stubdns::loopback_addr(), HashMap::new(), true).unwrap();
    let d = Daemon::start_with(&["--dns", &stub.addr.to_string()]).unwrap();
    d.ok(&["network", "create", "dd"]).unwrap();
    let (ns, _) = sb(&d, "c", "dd", &[]);
    let t = Instant::now();
    let out = dig(&ns, "example.invalid");
    let took = t.elapsed();
    assert!(
        out.contains("SERVFAIL"),
        "dead upstream must give SERVFAIL, got: {out}"
    );
    assert!(
        took < Duration::from_secs(5),
        "answered within the client's budget ({took:?})"
    );
    assert!(stub.count() >= 1, "the upstream was asked");
    eprintln!("dead upstream: SERVFAIL after {took:?}");
}
