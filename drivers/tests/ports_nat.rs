//! Root: published ports through the bridge driver alone (no daemon, no
//! userland proxy), in a whole "host" namespace per test: DNAT from another
//! host, from the host itself and between containers (hairpin), the real
//! client address, the 127.0.0.1 guard against routed-in packets
//! (moby#45610), UDP conntrack flushing when a mapping appears or moves,
//! loopback NAT with the proxy off, IPv6, and a constant rule count.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use drivers::sys::conntrack;
use drivers::sys::netns::run_in_netns_blocking;
use drivers::sys::{Ns, Sys};
use drivers::{Driver, PortBinding, Proto};

/// Stops a server thread on drop.
struct Stop(Arc<AtomicBool>);
impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// TCP server in `ns` on `port` that writes the peer's address and closes.
fn whoami_tcp(ns: &Path, bind: IpAddr, port: u16) -> Stop {
    let l: TcpListener = run_in_netns_blocking(ns, move || TcpListener::bind((bind, port)))
        .unwrap()
        .expect("bind tcp");
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

/// UDP server in `ns` on `port` answering `TAG|peer-ip` to every datagram.
fn whoami_udp(ns: &Path, bind: IpAddr, port: u16, tag: &'static str) -> Stop {
    let s: UdpSocket = run_in_netns_blocking(ns, move || UdpSocket::bind((bind, port)))
        .unwrap()
        .expect("bind udp");
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 1500];
        while !st.load(Ordering::SeqCst) {
            if let Ok((_, peer)) = s.recv_from(&mut b) {
                let _ = s.send_to(format!("{tag}|{}", peer.ip()).as_bytes(), peer);
            }
        }
    });
    Stop(stop)
}

/// UDP sink in `ns` on `port` counting the datagrams it receives.
fn udp_sink(ns: &Path, port: u16) -> (Stop, Arc<std::sync::atomic::AtomicUsize>) {
    let s: UdpSocket = run_in_netns_blocking(ns, move || UdpSocket::bind(("0.0.0.0", port)))
        .unwrap()
        .expect("bind udp sink");
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (st, n2) = (stop.clone(), n.clone());
    std::thread::spawn(move || {
        let mut b = [0u8; 1500];
        while !st.load(Ordering::SeqCst) {
            if s.recv_from(&mut b).is_ok() {
                n2.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (Stop(stop), n)
}

/// Send a few datagrams from `ns` to `to`.
fn udp_send(ns: &Path, to: SocketAddr) {
    run_in_netns_blocking(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..3 {
            let _ = s.send_to(b"x", to);
            std::thread::sleep(Duration::from_millis(30));
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
}

/// Connect from `ns` to `to:port`; the peer address the server saw.
fn tcp_who(ns: &Path, to: IpAddr, port: u16) -> Option<String> {
    run_in_netns_blocking(ns, move || -> std::io::Result<String> {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::new(to, port), Duration::from_millis(1500))?;
        s.set_read_timeout(Some(Duration::from_millis(1500)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })
    .unwrap()
    .ok()
    .filter(|s| !s.is_empty())
}

/// One UDP exchange on an existing socket: the answer, if any.
fn udp_ask(s: &UdpSocket, to: SocketAddr) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    for _ in 0..3 {
        let _ = s.send_to(b"hi", to);
        let mut b = [0u8; 200];
        if let Ok((n, _)) = s.recv_from(&mut b) {
            return Some(String::from_utf8_lossy(&b[..n]).into_owned());
        }
    }
    None
}

/// An "outside host": a namespace joined to the host by a veth, with a
/// default route through the host. Returns (namespace, host-side address).
async fn outside(t: &TestHost, tag: &str, v4: &str, v6: Option<&str>) -> (PathBuf, String) {
    let o = t.netns(tag).await;
    let (h_if, o_if) = (format!("xh{tag}"), format!("xo{tag}"));
    let sys = t.sys.clone();
    sys.create_veth(&Ns::Host, &h_if, &o_if, None)
        .await
        .unwrap();
    sys.move_to_netns(&Ns::Host, &o_if, &o).await.unwrap();
    let host_ip = format!("{v4}.1");
    sys.add_addr(&Ns::Host, &h_if, format!("{v4}.1/30").parse().unwrap())
        .await
        .unwrap();
    sys.set_up(&Ns::Host, &h_if, true).await.unwrap();
    let on = Ns::path(&o);
    sys.add_addr(&on, &o_if, format!("{v4}.2/30").parse().unwrap())
        .await
        .unwrap();
    sys.set_up(&on, &o_if, true).await.unwrap();
    sys.replace_route(&on, "0.0.0.0/0".parse().unwrap(), Some(ip(&host_ip)), None)
        .await
        .unwrap();
    if let Some(p) = v6 {
        let _ = sys
            .sysctl_set(
                &Ns::Host,
                &format!("net/ipv6/conf/{h_if}/disable_ipv6"),
                "0",
            )
            .await;
        let _ = sys
            .sysctl_set(&on, &format!("net/ipv6/conf/{o_if}/disable_ipv6"), "0")
            .await;
        sys.add_addr(&Ns::Host, &h_if, format!("{p}::1/64").parse().unwrap())
            .await
            .unwrap();
        sys.add_addr(&on, &o_if, format!("{p}::2/64").parse().unwrap())
            .await
            .unwrap();
        sys.replace_route(
            &on,
            "::/0".parse().unwrap(),
            Some(ip(&format!("{p}::1"))),
            None,
        )
        .await
        .unwrap();
    }
    (o, host_ip)
}

fn pb(proto: Proto, host: &str, hp: u16, cip: &str, cp: u16) -> PortBinding {
    PortBinding {
        proto,
        host_ip: ip(host),
        host_port: hp,
        container_ip: ip(cip),
        container_port: cp,
        loopback_nat: false,
    }
}

/// A binding served by NAT only (as published for a CNI runtime).
fn nat_only(proto: Proto, host: &str, hp: u16, cip: &str, cp: u16) -> PortBinding {
    PortBinding {
        loopback_nat: true,
        ..pb(proto, host, hp, cip, cp)
    }
}

/// Elements in one of our maps.
async fn map_len(t: &TestHost, map: &str) -> usize {
    let v = t
        .sys
        .nft_list(&Ns::Host, &["list", "map", "inet", &t.table, map])
        .await
        .unwrap()
        .expect("map exists");
    drivers::bridge::ports::parse_listing(&v).len()
}

/// Make the "outside" namespace `o` route 127.0.0.0/8 to the host through
/// `o_if` (as a hostile neighbour would, moby#45610).
fn route_loopback_to_host(o: &Path, o_if: &str, host_ip: &str, src: &str) {
    let script = format!(
        "sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.conf.{o_if}.route_localnet=1; \
         ip route del table local 127.0.0.0/8 dev lo; ip route del table local 127.0.0.1 dev lo; \
         ip route add 127.0.0.0/8 via {host_ip} dev {o_if} src {src}"
    );
    let ok = std::process::Command::new("nsenter")
        .arg(format!("--net={}", o.display()))
        .args(["sh", "-c", &script])
        .status()
        .unwrap();
    assert!(ok.success(), "route 127.0.0.0/8 via the host");
}

/// Count of packets to 127.0.0.1 that arrived on `dev` (a probe table in the
/// test's host namespace, read after the attempt).
fn probe_table(t: &TestHost, dev: &str) {
    let script = format!(
        "add table inet probe\nadd chain inet probe pre {{ type filter hook prerouting priority -300 ; }}\n\
         add rule inet probe pre iifname \"{dev}\" ip daddr 127.0.0.1 counter\n"
    );
    let mut c = std::process::Command::new("nsenter")
        .arg(format!("--net={}", t.host.display()))
        .args(["nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success());
}

/// Delete the loopback guard rules (prerouting rules that drop and match
/// `iifname != "lo"`) from the test host's table: the negative control.
fn without_guard(t: &TestHost) {
    let o = t.host_cmd(&["nft", "-j", "list", "chain", "inet", &t.table, "prerouting"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut n = 0;
    for r in v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.get("rule"))
    {
        let e = r["expr"].to_string();
        if e.contains("\"drop\"") && e.contains("\"lo\"") {
            let h = r["handle"].as_u64().unwrap().to_string();
            let out = t.host_cmd(&[
                "nft",
                "delete",
                "rule",
                "inet",
                &t.table,
                "prerouting",
                "handle",
                &h,
            ]);
            assert!(out.status.success());
            n += 1;
        }
    }
    assert_eq!(n, 4, "four guard rules");
}

fn probe_packets(t: &TestHost) -> u64 {
    let o = t.host_cmd(&["nft", "-j", "list", "chain", "inet", "probe", "pre"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["rule"]["expr"].as_array())
        .flatten()
        .filter_map(|e| e["counter"]["packets"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnat_hairpin_guard_and_conntrack() {
    require_root!();
    let t = TestHost::new("pnat").await;
    let na = network("pna", &brname("npa"), "10.41.0.0/24", None);
    let nb = network("pnb", &brname("npb"), "10.42.0.0/24", None);
    t.driver.create_network(&na).await.unwrap();
    t.driver.create_network(&nb).await.unwrap();
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    let s3 = t.netns("s3").await;
    let ep1 = attach(&t, &na, "pe1", &["10.41.0.2/24"], &s1, "eth0", true).await;
    let ep2 = attach(&t, &na, "pe2", &["10.41.0.3/24"], &s2, "eth0", true).await;
    attach(&t, &nb, "pe3", &["10.42.0.2/24"], &s3, "eth0", true).await;
    let (o, host_ip) = outside(&t, "o1", "10.250.7", None).await;
    let hip = ip(&host_ip);

    let rules0 = t.rule_count().await;
    let _w1 = whoami_tcp(&s1, ip("0.0.0.0"), 80);
    let _u1 = whoami_udp(&s1, ip("0.0.0.0"), 53, "s1");
    let _u2 = whoami_udp(&s2, ip("0.0.0.0"), 53, "s2");

    // Before publishing: the outside cannot reach the container port.
    assert_eq!(tcp_who(&o, hip, 8080), None);
    // A UDP "client" that starts sending before the mapping exists.
    let client: UdpSocket = run_in_netns_blocking(&o, || UdpSocket::bind("10.250.7.2:40053"))
        .unwrap()
        .unwrap();
    let to_udp = SocketAddr::new(hip, 5353);
    assert_eq!(udp_ask(&client, to_udp), None, "nothing published yet");
    let host = t.host.clone();
    let before = run_in_netns_blocking(&host, || {
        conntrack::dump(netlink_packet_netfilter::NetfilterProtoFamily::IPv4)
    })
    .unwrap()
    .unwrap();
    assert!(
        before
            .iter()
            .any(|e| e.dport == Some(5353) && e.proto == Some(17)),
        "the pre-mapping UDP flow has a conntrack entry: {before:?}"
    );

    let (_sink, sunk) = udp_sink(&s1, 54);
    let ports = vec![
        pb(Proto::Tcp, "0.0.0.0", 8080, "10.41.0.2", 80),
        pb(Proto::Tcp, "127.0.0.1", 8081, "10.41.0.2", 80),
        pb(Proto::Udp, "0.0.0.0", 5353, "10.41.0.2", 53),
        pb(Proto::Udp, "127.0.0.1", 5354, "10.41.0.2", 54),
        pb(Proto::Udp, "0.0.0.0", 5355, "10.41.0.2", 54),
    ];
    t.driver
        .program_external_connectivity(&na, &ep1, &ports)
        .await
        .unwrap();

    // From another host: DNAT, and the container sees the real client.
    assert_eq!(tcp_who(&o, hip, 8080).as_deref(), Some("10.250.7.2"));
    // From the host itself to its non-loopback addresses (output chain).
    assert!(tcp_who(&t.host, hip, 8080).is_some(), "host -> own address");
    assert!(
        tcp_who(&t.host, ip("10.41.0.1"), 8080).is_some(),
        "host -> gateway"
    );
    // Loopback is the userland proxy's job when it is on: no NAT here.
    assert_eq!(tcp_who(&t.host, ip("127.0.0.1"), 8080), None);
    // Hairpin: a neighbour and the container itself through the gateway; the
    // source is masqueraded to the gateway so replies come back the same way.
    assert_eq!(
        tcp_who(&s2, ip("10.41.0.1"), 8080).as_deref(),
        Some("10.41.0.1")
    );
    assert_eq!(
        tcp_who(&s1, ip("10.41.0.1"), 8080).as_deref(),
        Some("10.41.0.1")
    );
    // Through another host address too.
    assert!(
        tcp_who(&s2, hip, 8080).is_some(),
        "hairpin via another host address"
    );
    // A container on another netd network reaches it through its own gateway
    // (a host address), with its real address (no masquerade across bridges).
    assert_eq!(
        tcp_who(&s3, ip("10.42.0.1"), 8080).as_deref(),
        Some("10.42.0.2")
    );
    // The 127.0.0.1 binding is not published on other addresses.
    assert_eq!(tcp_who(&o, hip, 8081), None);
    assert_eq!(tcp_who(&s2, ip("10.41.0.1"), 8081), None);

    // UDP: the flow that started before the mapping now gets answers (its
    // stale conntrack entry was flushed), from the container.
    assert_eq!(udp_ask(&client, to_udp).as_deref(), Some("s1|10.250.7.2"));

    // moby#45610: the outside routes 127.0.0.0/8 to us and sends to
    // 127.0.0.1:8081 (published on 127.0.0.1) and :8080 (wildcard).
    probe_table(&t, "xho1");
    let on = Ns::path(&o);
    let _ = t
        .sys
        .sysctl_set(&on, "net/ipv4/conf/xoo1/route_localnet", "1")
        .await;
    let _ = t
        .sys
        .sysctl_set(&on, "net/ipv4/conf/all/route_localnet", "1")
        .await;
    for r in ["127.0.0.0/8", "127.0.0.1/32"] {
        let _ = std::process::Command::new("nsenter")
            .arg(format!("--net={}", o.display()))
            .args(["ip", "route", "del", "table", "local", r, "dev", "lo"])
            .status();
    }
    let ok = std::process::Command::new("nsenter")
        .arg(format!("--net={}", o.display()))
        .args([
            "ip",
            "route",
            "add",
            "127.0.0.0/8",
            "via",
            &host_ip,
            "dev",
            "xoo1",
            "src",
            "10.250.7.2",
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(
        tcp_who(&o, ip("127.0.0.1"), 8081),
        None,
        "127.0.0.1:8081 from outside"
    );
    assert_eq!(
        tcp_who(&o, ip("127.0.0.1"), 8080),
        None,
        "127.0.0.1:8080 from outside"
    );
    // UDP shows it without depending on replies: nothing reaches the container.
    udp_send(&o, "127.0.0.1:5354".parse().unwrap());
    udp_send(&o, "127.0.0.1:5355".parse().unwrap());
    assert!(probe_packets(&t) > 0, "the attempts did reach the host");
    assert_eq!(
        sunk.load(Ordering::SeqCst),
        0,
        "nothing routed in reached the container"
    );
    // Control: the sink works through the host address (wildcard port)...
    udp_send(&o, SocketAddr::new(hip, 5355));
    let via_host = sunk.load(Ordering::SeqCst);
    assert!(
        via_host > 0,
        "control: sink reachable through {host_ip}:5355"
    );
    // ...and without the four guard rules, 127.0.0.1:5354 leaks in (moby#45610).
    without_guard(&t);
    udp_send(&o, "127.0.0.1:5354".parse().unwrap());
    assert!(
        sunk.load(Ordering::SeqCst) > via_host,
        "control: with the guard removed the datagrams reach the container"
    );
    t.driver.init().await.unwrap(); // puts the fixed rules back
    let before_guard = sunk.load(Ordering::SeqCst);
    udp_send(&o, "127.0.0.1:5354".parse().unwrap());
    assert_eq!(
        sunk.load(Ordering::SeqCst),
        before_guard,
        "guard back in place"
    );

    // The mapping moves to s2 (revoke on ep1, program on ep2): the same UDP
    // flow follows it at once instead of sticking to s1.
    t.driver
        .revoke_external_connectivity(&na, &ep1, &ports)
        .await
        .unwrap();
    assert_eq!(tcp_who(&s3, ip("10.42.0.1"), 8080), None, "revoked");
    let moved = vec![pb(Proto::Udp, "0.0.0.0", 5353, "10.41.0.3", 53)];
    t.driver
        .program_external_connectivity(&na, &ep2, &moved)
        .await
        .unwrap();
    assert_eq!(udp_ask(&client, to_udp).as_deref(), Some("s2|10.250.7.2"));

    // Stale element (as after a crash): programming the key again with
    // another target replaces it instead of failing.
    let stale = vec![pb(Proto::Udp, "0.0.0.0", 5353, "10.41.0.2", 53)];
    t.driver
        .program_external_connectivity(&na, &ep1, &stale)
        .await
        .unwrap();
    assert_eq!(udp_ask(&client, to_udp).as_deref(), Some("s1|10.250.7.2"));
    // Revoking ep2's binding now must not remove ep1's element.
    t.driver
        .revoke_external_connectivity(&na, &ep2, &moved)
        .await
        .unwrap();
    assert_eq!(udp_ask(&client, to_udp).as_deref(), Some("s1|10.250.7.2"));

    // Errors: wrong address, internal network.
    let bad = vec![pb(Proto::Tcp, "0.0.0.0", 9000, "10.41.0.77", 80)];
    assert!(t
        .driver
        .program_external_connectivity(&na, &ep1, &bad)
        .await
        .is_err());
    let mut internal = na.clone();
    internal.internal = true;
    assert!(t
        .driver
        .program_external_connectivity(&internal, &ep1, &ports)
        .await
        .is_err());

    // Rule count constant; 200 more ports are 200 more map elements.
    let many: Vec<_> = (0..200u16)
        .map(|i| pb(Proto::Tcp, "0.0.0.0", 20000 + i, "10.41.0.2", 80))
        .collect();
    t.driver
        .program_external_connectivity(&na, &ep1, &many)
        .await
        .unwrap();
    assert_eq!(t.rule_count().await, rules0);
    assert_eq!(rules0, drivers::bridge::rules::fixed_rule_count());
    assert_eq!(tcp_who(&o, hip, 20199).as_deref(), Some("10.250.7.2"));
    t.driver
        .revoke_external_connectivity(&na, &ep1, &many)
        .await
        .unwrap();
    assert_eq!(t.rule_count().await, rules0);
    assert_eq!(tcp_who(&o, hip, 20199), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_nat_without_userland_proxy() {
    require_root!();
    let t = TestHost::new_with("pnolp", false).await;
    let br = brname("npl");
    let n = network("pnl", &br, "10.43.0.0/24", None);
    t.driver.create_network(&n).await.unwrap();
    assert_eq!(
        t.sys
            .sysctl_get(&Ns::Host, &format!("net/ipv4/conf/{br}/route_localnet"))
            .await
            .unwrap(),
        "1"
    );
    let s1 = t.netns("s1").await;
    let ep = attach(&t, &n, "pl1", &["10.43.0.2/24"], &s1, "eth0", true).await;
    let _w = whoami_tcp(&s1, ip("0.0.0.0"), 80);
    let _u = whoami_udp(&s1, ip("0.0.0.0"), 53, "s1");
    let ports = vec![
        pb(Proto::Tcp, "0.0.0.0", 8080, "10.43.0.2", 80),
        pb(Proto::Tcp, "127.0.0.1", 8081, "10.43.0.2", 80),
        pb(Proto::Udp, "127.0.0.1", 5353, "10.43.0.2", 53),
    ];
    t.driver
        .program_external_connectivity(&n, &ep, &ports)
        .await
        .unwrap();
    // 127.0.0.1 from the host itself: DNAT + route_localnet + masquerade
    // (the container sees the gateway, not 127.0.0.1).
    assert_eq!(
        tcp_who(&t.host, ip("127.0.0.1"), 8080).as_deref(),
        Some("10.43.0.1")
    );
    assert_eq!(
        tcp_who(&t.host, ip("127.0.0.1"), 8081).as_deref(),
        Some("10.43.0.1")
    );
    let c: UdpSocket = run_in_netns_blocking(&t.host, || UdpSocket::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    assert_eq!(
        udp_ask(&c, "127.0.0.1:5353".parse().unwrap()).as_deref(),
        Some("s1|10.43.0.1")
    );
    // Containers still cannot reach the host's loopback (route_localnet is
    // on for the bridge): a route to 127.0.0.0/8 via the gateway gets nowhere.
    let _hl = whoami_tcp(&t.host, ip("127.0.0.1"), 9999);
    assert!(
        tcp_who(&t.host, ip("127.0.0.1"), 9999).is_some(),
        "control: host service up"
    );
    let _ = std::process::Command::new("nsenter")
        .arg(format!("--net={}", s1.display()))
        .args(["sh", "-c", "ip route del table local 127.0.0.0/8 dev lo; ip route del table local 127.0.0.1 dev lo; sysctl -qw net.ipv4.conf.eth0.route_localnet=1; ip route add 127.0.0.0/8 via 10.43.0.1 dev eth0 src 10.43.0.2"])
        .status();
    assert_eq!(
        tcp_who(&s1, ip("127.0.0.1"), 9999),
        None,
        "container -> host loopback"
    );
    assert_eq!(
        tcp_who(&s1, ip("127.0.0.1"), 8081),
        None,
        "container -> 127.0.0.1 port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_published_ports() {
    require_root!();
    let t = TestHost::new("pv6").await;
    let n = network("pn6", &brname("np6"), "10.44.0.0/24", Some("fd44::/64"));
    t.driver.create_network(&n).await.unwrap();
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    let ep = attach(
        &t,
        &n,
        "p61",
        &["10.44.0.2/24", "fd44::2/64"],
        &s1,
        "eth0",
        true,
    )
    .await;
    attach(
        &t,
        &n,
        "p62",
        &["10.44.0.3/24", "fd44::3/64"],
        &s2,
        "eth0",
        true,
    )
    .await;
    let (o, _) = outside(&t, "o6", "10.250.8", Some("fd99")).await;
    // Let DAD settle on the fresh v6 addresses (added nodad by netd, not by us).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _w = whoami_tcp(&s1, ip("::"), 80);
    t.driver
        .program_external_connectivity(
            &n,
            &ep,
            &[
                pb(Proto::Tcp, "::", 8080, "fd44::2", 80),
                pb(Proto::Tcp, "fd99::1", 8081, "fd44::2", 80),
            ],
        )
        .await
        .unwrap();
    assert_eq!(tcp_who(&o, ip("fd99::1"), 8080).as_deref(), Some("fd99::2"));
    assert_eq!(tcp_who(&o, ip("fd99::1"), 8081).as_deref(), Some("fd99::2"));
    assert!(
        tcp_who(&t.host, ip("fd44::1"), 8080).is_some(),
        "host -> v6 gateway"
    );
    assert_eq!(
        tcp_who(&s2, ip("fd44::1"), 8080).as_deref(),
        Some("fd44::1"),
        "v6 hairpin"
    );
    assert_eq!(
        tcp_who(&s2, ip("fd44::1"), 8081),
        None,
        "8081 is only on fd99::1"
    );
}

/// Ports published for a CNI runtime (`loopback_nat`): the runtime holds the
/// host port, so the driver DNATs the host's 127.0.0.0/8 too, with the
/// userland proxy ON (none runs here): route_localnet=1 on the bridge and
/// loopback sources masqueraded. Unflagged bindings keep loopback for the
/// proxy; the moby#45610 guard and the containers' isolation from the host's
/// loopback still hold; the rule count stays constant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_only_bindings_serve_loopback_with_proxy_on() {
    require_root!();
    let t = TestHost::new("pnatonly").await;
    let br = brname("npo");
    let n = network("pno", &br, "10.45.0.0/24", None);
    t.driver.create_network(&n).await.unwrap();
    let localnet = || async {
        t.sys
            .sysctl_get(&Ns::Host, &format!("net/ipv4/conf/{br}/route_localnet"))
            .await
            .unwrap()
    };
    assert_eq!(localnet().await, "0", "proxy on: not set at creation");
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    let ep1 = attach(&t, &n, "po1", &["10.45.0.2/24"], &s1, "eth0", true).await;
    let ep2 = attach(&t, &n, "po2", &["10.45.0.3/24"], &s2, "eth0", true).await;
    let (o, host_ip) = outside(&t, "o9", "10.250.9", None).await;
    let hip = ip(&host_ip);
    let _w1 = whoami_tcp(&s1, ip("0.0.0.0"), 80);
    let _w2 = whoami_tcp(&s2, ip("0.0.0.0"), 80);
    let _u1 = whoami_udp(&s1, ip("0.0.0.0"), 53, "s1");
    let (_sink, sunk) = udp_sink(&s1, 54);
    let rules0 = t.rule_count().await;

    let ports = vec![
        nat_only(Proto::Tcp, "0.0.0.0", 8080, "10.45.0.2", 80),
        nat_only(Proto::Tcp, "127.0.0.1", 8081, "10.45.0.2", 80),
        nat_only(Proto::Udp, "127.0.0.1", 5353, "10.45.0.2", 53),
        nat_only(Proto::Udp, "0.0.0.0", 5355, "10.45.0.2", 54),
    ];
    let plain = vec![pb(Proto::Tcp, "0.0.0.0", 8090, "10.45.0.3", 80)];
    t.driver
        .program_external_connectivity(&n, &ep1, &ports)
        .await
        .unwrap();
    t.driver
        .program_external_connectivity(&n, &ep2, &plain)
        .await
        .unwrap();
    assert_eq!(localnet().await, "1", "route_localnet on the bridge");
    assert_eq!(map_len(&t, "ports4_lo").await, 4);

    // The host's own loopback connections reach the container, masqueraded
    // to the gateway; all of 127.0.0.0/8 for wildcard bindings.
    assert_eq!(
        tcp_who(&t.host, ip("127.0.0.1"), 8080).as_deref(),
        Some("10.45.0.1")
    );
    assert_eq!(
        tcp_who(&t.host, ip("127.0.0.1"), 8081).as_deref(),
        Some("10.45.0.1")
    );
    assert!(tcp_who(&t.host, ip("127.0.0.2"), 8080).is_some());
    let c: UdpSocket = run_in_netns_blocking(&t.host, || UdpSocket::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    assert_eq!(
        udp_ask(&c, "127.0.0.1:5353".parse().unwrap()).as_deref(),
        Some("s1|10.45.0.1")
    );
    // Through a host address and from outside as before (real client).
    assert!(tcp_who(&t.host, ip("10.45.0.1"), 8080).is_some());
    assert_eq!(tcp_who(&o, hip, 8080).as_deref(), Some("10.250.9.2"));
    assert_eq!(tcp_who(&o, hip, 8081), None, "8081 is on 127.0.0.1 only");
    // An unflagged binding leaves loopback to the (absent) proxy.
    assert_eq!(tcp_who(&t.host, ip("127.0.0.1"), 8090), None);
    assert_eq!(
        tcp_who(&t.host, ip("10.45.0.1"), 8090).as_deref(),
        Some("10.45.0.1"),
        "control: the unflagged binding is published"
    );

    // moby#45610: a neighbour routing 127.0.0.0/8 to us gets nothing.
    probe_table(&t, "xho9");
    route_loopback_to_host(&o, "xoo9", &host_ip, "10.250.9.2");
    assert_eq!(tcp_who(&o, ip("127.0.0.1"), 8081), None);
    assert_eq!(tcp_who(&o, ip("127.0.0.1"), 8080), None);
    udp_send(&o, "127.0.0.1:5355".parse().unwrap());
    assert!(probe_packets(&t) > 0, "the attempts did reach the host");
    assert_eq!(
        sunk.load(Ordering::SeqCst),
        0,
        "nothing routed in got through"
    );
    udp_send(&o, SocketAddr::new(hip, 5355));
    assert!(
        sunk.load(Ordering::SeqCst) > 0,
        "control: sink via {host_ip}"
    );

    // Containers still cannot reach the host's loopback (route_localnet=1 on
    // the bridge): a route to 127.0.0.0/8 via the gateway gets nowhere.
    let _hl = whoami_tcp(&t.host, ip("127.0.0.1"), 9999);
    assert!(tcp_who(&t.host, ip("127.0.0.1"), 9999).is_some(), "control");
    route_loopback_to_host(&s2, "eth0", "10.45.0.1", "10.45.0.3");
    assert_eq!(tcp_who(&s2, ip("127.0.0.1"), 9999), None, "-> host lo");
    assert_eq!(tcp_who(&s2, ip("127.0.0.1"), 8081), None, "-> 127 port");

    // Constant rule count: 100 more NAT-only ports are 200 more elements.
    let many: Vec<_> = (0..100u16)
        .map(|i| nat_only(Proto::Tcp, "0.0.0.0", 21000 + i, "10.45.0.2", 80))
        .collect();
    t.driver
        .program_external_connectivity(&n, &ep1, &many)
        .await
        .unwrap();
    assert_eq!(t.rule_count().await, rules0);
    assert_eq!(rules0, drivers::bridge::rules::fixed_rule_count());
    assert_eq!(map_len(&t, "ports4_lo").await, 104);
    assert!(tcp_who(&t.host, ip("127.0.0.1"), 21099).is_some());
    // Revoking removes both elements of each binding.
    for set in [&many, &ports] {
        t.driver
            .revoke_external_connectivity(&n, &ep1, set)
            .await
            .unwrap();
    }
    assert_eq!(t.rule_count().await, rules0);
    assert_eq!(map_len(&t, "ports4_lo").await, 0);
    assert_eq!(tcp_who(&t.host, ip("127.0.0.1"), 8080), None, "revoked");
    assert_eq!(tcp_who(&t.host, hip, 8080), None, "revoked");
}
