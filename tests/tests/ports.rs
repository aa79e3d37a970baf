//! Published ports through the real daemon (issue 6): `netctl sandbox create -p`, served
//! by the userland proxy on 127.0.0.1, by nftables DNAT on the host's other addresses
//! and between containers (hairpin), the real client address on the NAT path, conflicts
//! and release, the 127.0.0.1 guard (moby#45610), `--userland-proxy=false`, a constant
//! rule count, and dockerd using `netd-proxy` as its userland proxy.
//!
//! Each test runs its own netd (own nft table, own pools) in the host namespace; the
//! "other hosts" are test namespaces joined to the host by a veth. Host ports are random
//! in 20000-44999 and retried when taken.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netd_tests::dockerd::{DockerdOpts, PrivateDockerd};
use netd_tests::{
    bin, bridge_of, first_address, in_ns_thread, nft_counts, rand_u16, require_root, sh, uniq,
    Daemon, TestNs,
};

struct Guard(String);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = sh(&self.0);
    }
}

/// Stops a server thread on drop.
struct Stop(Arc<AtomicBool>);
impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

struct Sb {
    ns: String,
    ip: String,
    ports: Vec<serde_json::Value>,
}

fn port() -> u16 {
    // Below the ephemeral range, so TIME_WAIT sockets of load elsewhere never collide.
    10000 + rand_u16() % 22000
}

/// Create a sandbox on `net` publishing `specs` (each a `-p` value with `{}` for a fresh
/// random host port, the same one for all `{}` of one attempt). Retries on a port clash.
fn sandbox_p(d: &Daemon, name: &str, net: &str, specs: &[&str]) -> (Sb, u16) {
    for _ in 0..6 {
        let p = port();
        let mut args = vec![
            "sandbox".to_string(),
            "create".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            net.into(),
        ];
        for s in specs {
            args.push("-p".into());
            args.push(s.replace("{}", &p.to_string()));
        }
        let mut a: Vec<&str> = vec!["--json"];
        a.extend(args.iter().map(String::as_str));
        let o = d.netctl(&a).unwrap();
        if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            return (sb_of(&v), p);
        }
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(
            err.contains("not available") || err.contains("already published"),
            "sandbox create failed: {err}"
        );
    }
    panic!("no free host port after 6 tries");
}

fn sb_of(v: &serde_json::Value) -> Sb {
    let ep = &v["endpoints"][0];
    Sb {
        ns: v["netns_path"].as_str().unwrap().to_string(),
        ip: first_address(&ep),
        ports: ep["ports"].as_array().cloned().unwrap_or_default(),
    }
}

fn sandbox(d: &Daemon, name: &str, net: &str) -> Sb {
    sb_of(
        &d.json(&["sandbox", "create", "--name", name, "--network", net])
            .unwrap(),
    )
}

fn gateway(d: &Daemon, net: &str) -> String {
    d.json(&["network", "inspect", net]).unwrap()[0]["subnets"][0]["gateway"]
        .as_str()
        .unwrap()
        .to_string()
}

/// TCP server in the namespace at `ns` on `port`: writes the peer's address, closes.
fn whoami_tcp(ns: &str, port: u16) -> Stop {
    let l: TcpListener = in_ns_thread(ns, move || TcpListener::bind(("0.0.0.0", port)))
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    std::thread::spawn(move || {
        while !st.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((mut c, peer)) => {
                    let _ = c.write_all(peer.ip().to_string().as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Stop(stop)
}

/// UDP server in `ns` on `port`: answers `peer-ip` and counts datagrams.
fn whoami_udp(ns: &str, port: u16) -> (Stop, Arc<AtomicUsize>) {
    let s: UdpSocket = in_ns_thread(ns, move || UdpSocket::bind(("0.0.0.0", port)))
        .join()
        .unwrap()
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(AtomicUsize::new(0));
    let (st, n2) = (stop.clone(), n.clone());
    std::thread::spawn(move || {
        let mut b = [0u8; 1500];
        while !st.load(Ordering::SeqCst) {
            if let Ok((_, peer)) = s.recv_from(&mut b) {
                n2.fetch_add(1, Ordering::SeqCst);
                let _ = s.send_to(peer.ip().to_string().as_bytes(), peer);
            }
        }
    });
    (Stop(stop), n)
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
}

/// From `ns` (None = the host itself), connect to `to`: the peer address the server saw.
fn tcp_who(ns: Option<&str>, to: SocketAddr) -> Option<String> {
    let f = move || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(1500))?;
        s.set_read_timeout(Some(Duration::from_millis(1500)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    let r = match ns {
        Some(ns) => in_ns_thread(ns, f).join().unwrap().unwrap(),
        None => f(),
    };
    r.ok().filter(|s| !s.is_empty())
}

/// From `ns` (None = host), one UDP exchange with `to`: the answer.
fn udp_who(ns: Option<&str>, to: SocketAddr) -> Option<String> {
    let f = move || -> Option<String> {
        let s = UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(400))).ok()?;
        for _ in 0..3 {
            let _ = s.send_to(b"hi", to);
            let mut b = [0u8; 200];
            if let Ok((n, _)) = s.recv_from(&mut b) {
                return Some(String::from_utf8_lossy(&b[..n]).into_owned());
            }
        }
        None
    };
    match ns {
        Some(ns) => in_ns_thread(ns, f).join().unwrap().unwrap(),
        None => f(),
    }
}

/// A namespace joined to the host by a veth (`10.250.X.2` there, `.1` on the host),
/// default route via the host. Returns (ns, its address, host side address, host ifname).
fn outside(tag: &str) -> (TestNs, String, String, String, Guard) {
    let o = TestNs::new(tag).unwrap();
    let u = uniq();
    let (h, x) = (format!("ph{u}"), format!("po{u}"));
    let third = 100 + rand_u16() % 100;
    sh(&format!(
        "ip link add {h} type veth peer name {x} && ip link set {x} netns {n} && \
         ip addr add 10.249.{third}.1/30 dev {h} && ip link set {h} up && \
         ip -n {n} addr add 10.249.{third}.2/30 dev {x} && ip -n {n} link set {x} up && \
         ip -n {n} route add default via 10.249.{third}.1",
        n = o.name
    ))
    .unwrap();
    let g = Guard(format!("ip link del {h}"));
    (
        o,
        format!("10.249.{third}.2"),
        format!("10.249.{third}.1"),
        x,
        g,
    )
}

fn listening_tcp(port: u16) -> bool {
    sh(&format!("ss -Hltn 'sport = :{port}'"))
        .map(|o| !o.trim().is_empty())
        .unwrap_or(false)
}

#[test]
fn tcp_and_udp_reach_the_container_on_every_path() {
    if !require_root("tcp_and_udp_reach_the_container_on_every_path") {
        return;
    }
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "pn"]).unwrap();
    let (web, p) = sandbox_p(&d, "web", "pn", &["{}:80", "{}:53/udp"]);
    let cli = sandbox(&d, "cli", "pn");
    let gw = gateway(&d, "pn");
    let _t = whoami_tcp(&web.ns, 80);
    let (_u, _) = whoami_udp(&web.ns, 53);
    assert!(
        tcp_who(Some(&cli.ns), addr(&web.ip, 80)).is_some(),
        "control: direct path"
    );

    // inspect shows both bindings, fully resolved.
    assert_eq!(web.ports.len(), 2, "{:?}", web.ports);
    for b in &web.ports {
        assert_eq!(b["host_port"], p);
        let (proto, cport) = (b["proto"].as_str().unwrap(), b["container_port"].as_u64());
        assert!(
            (proto == "tcp" && cport == Some(80)) || (proto == "udp" && cport == Some(53)),
            "{b}"
        );
    }
    let ins = d.json(&["sandbox", "inspect", "web"]).unwrap();
    assert!(
        ins.to_string().contains(&format!("\"host_port\":{p}")),
        "{ins}"
    );

    // 127.0.0.1 on the host: the userland proxy (listening on P).
    assert!(listening_tcp(p), "proxy listens on {p}");
    assert!(
        tcp_who(None, addr("127.0.0.1", p)).is_some(),
        "host -> 127.0.0.1:{p}"
    );
    assert!(
        udp_who(None, addr("127.0.0.1", p)).is_some(),
        "udp host -> 127.0.0.1:{p}"
    );
    // The host's bridge-side address: DNAT in the output chain.
    assert!(tcp_who(None, addr(&gw, p)).is_some(), "host -> {gw}:{p}");
    assert!(
        udp_who(None, addr(&gw, p)).is_some(),
        "udp host -> {gw}:{p}"
    );
    // Another container through the host address: hairpin NAT (masqueraded to the gw).
    assert_eq!(
        tcp_who(Some(&cli.ns), addr(&gw, p)),
        Some(gw.clone()),
        "cli -> {gw}:{p}"
    );
    assert_eq!(
        udp_who(Some(&cli.ns), addr(&gw, p)),
        Some(gw.clone()),
        "udp cli -> {gw}:{p}"
    );
    // The container itself through the host address.
    assert!(
        tcp_who(Some(&web.ns), addr(&gw, p)).is_some(),
        "web -> own port"
    );
    // Another host: DNAT, and the container sees the real client address.
    let (o, o_ip, h_ip, _, _g) = outside("pout");
    assert_eq!(tcp_who(Some(&o.path()), addr(&h_ip, p)), Some(o_ip.clone()));
    assert_eq!(udp_who(Some(&o.path()), addr(&h_ip, p)), Some(o_ip.clone()));
}

#[test]
fn same_host_port_twice_is_refused_and_freed_on_removal() {
    if !require_root("same_host_port_twice_is_refused_and_freed_on_removal") {
        return;
    }
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "pn"]).unwrap();
    let (_a, p) = sandbox_p(&d, "a", "pn", &["{}:80"]);
    let err = d
        .fails(&[
            "sandbox",
            "create",
            "--name",
            "b",
            "--network",
            "pn",
            "-p",
            &format!("{p}:80"),
        ])
        .unwrap();
    assert!(
        err.contains(&format!("{p}")) && err.contains("already published"),
        "clear error expected: {err}"
    );
    // A different protocol on the same port is a different binding.
    let udp = d.json(&[
        "sandbox",
        "create",
        "--name",
        "c",
        "--network",
        "pn",
        "-p",
        &format!("{p}:53/udp"),
    ]);
    assert!(udp.is_ok(), "udp on {p} is free: {udp:?}");
    d.ok(&["sandbox", "rm", "a"]).unwrap();
    assert!(!listening_tcp(p), "proxy socket closed with the sandbox");
    let b = d
        .json(&[
            "sandbox",
            "create",
            "--name",
            "b",
            "--network",
            "pn",
            "-p",
            &format!("{p}:80"),
        ])
        .unwrap();
    assert_eq!(b["endpoints"][0]["ports"][0]["host_port"], p);
    let b = sb_of(&b);
    let _t = whoami_tcp(&b.ns, 80);
    assert!(
        tcp_who(None, addr("127.0.0.1", p)).is_some(),
        "re-published port serves b"
    );
}

#[test]
fn port_on_127_0_0_1_is_not_reachable_from_another_namespace() {
    if !require_root("port_on_127_0_0_1_is_not_reachable_from_another_namespace") {
        return;
    }
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "pn"]).unwrap();
    let (web, p) = sandbox_p(&d, "web", "pn", &["127.0.0.1:{}:80", "127.0.0.1:{}:53/udp"]);
    let _t = whoami_tcp(&web.ns, 80);
    let (_u, got) = whoami_udp(&web.ns, 53);
    // Control: the host itself reaches it.
    assert!(tcp_who(None, addr("127.0.0.1", p)).is_some());
    assert!(udp_who(None, addr("127.0.0.1", p)).is_some());
    let served = got.load(Ordering::SeqCst);
    assert!(served > 0);

    // The attacker: routes 127.0.0.0/8 to us over its veth. Our side even has
    // route_localnet=1 (as kube-proxy sets it), so the kernel alone would deliver the
    // packets to the proxy listening on 127.0.0.1: only netd's guard stops them.
    let (o, o_ip, h_ip, x, _g) = outside("p45610");
    let h_if = _g.0.split_whitespace().last().unwrap().to_string();
    sh(&format!("sysctl -qw net.ipv4.conf.{h_if}.route_localnet=1")).unwrap();
    o.exec(&format!(
        "ip route del table local 127.0.0.0/8 dev lo; ip route del table local 127.0.0.1 dev lo; \
         sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.{x}.route_localnet=1; \
         ip route add 127.0.0.0/8 via {h_ip} dev {x} src {o_ip}"
    ))
    .unwrap();
    // Count what arrives on the host from that veth for 127.0.0.1 (own probe table).
    let probe = format!("netd_probe{}", uniq());
    sh(&format!(
        "nft add table inet {probe} && nft add chain inet {probe} pre '{{ type filter hook prerouting priority -300 ; }}' && \
         nft add rule inet {probe} pre iifname {h_if} ip daddr 127.0.0.1 counter"
    ))
    .unwrap();
    let _pg = Guard(format!("nft delete table inet {probe}"));

    assert_eq!(
        tcp_who(Some(&o.path()), addr("127.0.0.1", p)),
        None,
        "tcp 127.0.0.1:{p} from outside"
    );
    assert_eq!(
        udp_who(Some(&o.path()), addr("127.0.0.1", p)),
        None,
        "udp 127.0.0.1:{p} from outside"
    );
    assert_eq!(
        tcp_who(Some(&o.path()), addr(&h_ip, p)),
        None,
        "not published on {h_ip}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        got.load(Ordering::SeqCst),
        served,
        "nothing from outside reached the container"
    );
    let arrived: u64 = sh(&format!("nft -j list chain inet {probe} pre"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .map(|v| {
            v["nftables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["rule"]["expr"].as_array())
                .flatten()
                .filter_map(|e| e["counter"]["packets"].as_u64())
                .sum()
        })
        .unwrap_or(0);
    assert!(
        arrived > 0,
        "the attempts reached the host (and were dropped there)"
    );
}

#[test]
fn without_userland_proxy_loopback_is_served_by_nat() {
    if !require_root("without_userland_proxy_loopback_is_served_by_nat") {
        return;
    }
    let d = Daemon::start_with(&["--userland-proxy=false"]).unwrap();
    d.ok(&["network", "create", "pn"]).unwrap();
    let (web, p) = sandbox_p(&d, "web", "pn", &["{}:80", "{}:53/udp"]);
    let cli = sandbox(&d, "cli", "pn");
    let gw = gateway(&d, "pn");
    let _t = whoami_tcp(&web.ns, 80);
    let (_u, _) = whoami_udp(&web.ns, 53);
    assert!(!listening_tcp(p), "no proxy socket on {p}");
    let br = bridge_of(&d, "pn");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"))
            .unwrap()
            .trim(),
        "1",
        "route_localnet is off on {br}: the daemon must pass --userland-proxy to the bridge \
         driver (drivers::bridge::BridgeConfig.userland_proxy, daemon/src/wiring.rs)"
    );
    // Loopback through NAT: the container sees the gateway (masqueraded 127.0.0.1).
    assert_eq!(
        tcp_who(None, addr("127.0.0.1", p)),
        Some(gw.clone()),
        "127.0.0.1:{p}"
    );
    assert_eq!(
        udp_who(None, addr("127.0.0.1", p)),
        Some(gw.clone()),
        "udp 127.0.0.1:{p}"
    );
    assert!(tcp_who(None, addr(&gw, p)).is_some());
    assert_eq!(
        tcp_who(Some(&cli.ns), addr(&gw, p)),
        Some(gw.clone()),
        "hairpin"
    );
}

#[test]
fn rule_count_stays_constant_as_ports_are_added() {
    if !require_root("rule_count_stays_constant_as_ports_are_added") {
        return;
    }
    let d = Daemon::start().unwrap();
    d.ok(&["network", "create", "pn"]).unwrap();
    let (rules0, elems0) = nft_counts("inet", &d.nft_table);
    assert!(rules0 > 0);
    // 40 ports on one sandbox, then 10 sandboxes with two each.
    let base = 10000 + rand_u16() % 22000; // below the ephemeral range
    let specs: Vec<String> = (0..40)
        .map(|i| format!("{}:{}", base + i, 1000 + i))
        .collect();
    let mut args = vec!["sandbox", "create", "--name", "many", "--network", "pn"];
    for s in &specs {
        args.push("-p");
        args.push(s);
    }
    d.ok(&args).unwrap();
    for i in 0..10 {
        sandbox_p(&d, &format!("s{i}"), "pn", &["{}:80", "{}:53/udp"]);
    }
    let (rules1, elems1) = nft_counts("inet", &d.nft_table);
    assert_eq!(rules1, rules0, "rules must not grow with ports");
    assert!(
        elems1 >= elems0 + 60,
        "one map element per binding: {elems0} -> {elems1}"
    );
    d.ok(&["sandbox", "rm", "many"]).unwrap();
    let (rules2, elems2) = nft_counts("inet", &d.nft_table);
    assert_eq!(rules2, rules0);
    assert_eq!(elems2, elems1 - 40);
}

#[test]
fn dockerd_serves_docker_run_p_through_netd_proxy() {
    if !require_root("dockerd_serves_docker_run_p_through_netd_proxy") {
        return;
    }
    let proxy = bin("netd-proxy");
    let Some(dk) = PrivateDockerd::start(DockerdOpts {
        userland_proxy_path: Some(proxy.clone()),
        ..Default::default()
    })
    .unwrap() else {
        eprintln!(
            "SKIP dockerd_serves_docker_run_p_through_netd_proxy: Docker cannot be installed here"
        );
        return;
    };
    dk.import_busybox("busybox:netd").unwrap();
    let mut p = port();
    let mut started = false;
    for _ in 0..5 {
        let o = dk
            .docker(&[
                "run",
                "-d",
                "--name",
                "web",
                "-p",
                &format!("127.0.0.1:{p}:8080"),
                "busybox:netd",
                "httpd",
                "-f",
                "-p",
                "8080",
                "-h",
                "/etc",
            ])
            .unwrap();
        if o.status.success() {
            started = true;
            break;
        }
        let _ = dk.docker(&["rm", "-f", "web"]);
        p = port();
    }
    assert!(started, "docker run -p failed: {}", dk.log_tail(30));
    // The proxy dockerd started for the port is netd-proxy.
    let ours = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| {
            c.split(|b| *b == 0)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
        })
        .any(|a| {
            a.first().is_some_and(|x| x.ends_with("netd-proxy"))
                && a.windows(2)
                    .any(|w| w[0] == "-host-port" && w[1] == p.to_string())
        });
    assert!(ours, "a netd-proxy process serves host port {p}");
    // And it serves: an HTTP GET through 127.0.0.1:p returns the container's file.
    let mut body = String::new();
    for _ in 0..30 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", p)) {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let _ = s.write_all(b"GET /passwd HTTP/1.0\r\nHost: x\r\n\r\n");
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.contains("root:x:0:0") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        body.contains("200 OK") && body.contains("root:x:0:0"),
        "got: {body}"
    );
    let _ = dk.docker(&["rm", "-f", "web"]);
}
