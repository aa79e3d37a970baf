//! Root: ICC off, internal networks, masquerade, and a control showing that
//! the isolation comes from netd's table (removing it opens the path).

mod common;

use common::*;
use drivers::sys::{Ns, Sys};
use drivers::Driver;

async fn icc_off(br_netfilter: bool) {
    let t = TestHost::new(if br_netfilter { "icc1" } else { "icc0" }).await;
    // bridge-nf-call-* are per namespace: test both the L2-only path and the
    // path where bridged traffic also runs the inet hooks.
    let v = if br_netfilter { "1" } else { "0" };
    for k in [
        "net.bridge.bridge-nf-call-iptables",
        "net.bridge.bridge-nf-call-ip6tables",
    ] {
        if let Err(e) = t.sys.sysctl_set(&Ns::Host, k, v).await {
            eprintln!("note: {k}: {e}");
        }
    }
    let mut n = network("neticc", &brname("ndi"), "10.33.0.0/24", None);
    n.options.insert(
        "com.docker.network.bridge.enable_icc".into(),
        "false".into(),
    );
    t.driver.create_network(&n).await.unwrap();
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    attach(&t, &n, "ic1", &["10.33.0.2/24"], &s1, "eth0", true).await;
    attach(&t, &n, "ic2", &["10.33.0.3/24"], &s2, "eth0", true).await;
    let e1 = echo_server(&s1, ip("0.0.0.0"));
    let e2 = echo_server(&s2, ip("0.0.0.0"));
    assert!(
        !tcp_ok(&s1, ip("10.33.0.3"), e2.port),
        "icc off: s1 -/-> s2"
    );
    assert!(
        !tcp_ok(&s2, ip("10.33.0.2"), e1.port),
        "icc off: s2 -/-> s1"
    );
    let gw = echo_server(&t.host, ip("10.33.0.1"));
    assert!(
        tcp_ok(&s1, ip("10.33.0.1"), gw.port),
        "icc off: s1 -> gateway"
    );
    assert!(
        tcp_ok(&s2, ip("10.33.0.1"), gw.port),
        "icc off: s2 -> gateway"
    );

    // Control: the same topology with ICC on talks.
    let n2 = network("neticc2", &brname("ndj"), "10.35.0.0/24", None);
    t.driver.create_network(&n2).await.unwrap();
    let s3 = t.netns("s3").await;
    let s4 = t.netns("s4").await;
    attach(&t, &n2, "ic3", &["10.35.0.2/24"], &s3, "eth0", true).await;
    attach(&t, &n2, "ic4", &["10.35.0.3/24"], &s4, "eth0", true).await;
    let e4 = echo_server(&s4, ip("0.0.0.0"));
    assert!(tcp_ok(&s3, ip("10.35.0.3"), e4.port), "icc on: s3 -> s4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icc_off_with_br_netfilter() {
    require_root!();
    icc_off(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn icc_off_without_br_netfilter() {
    require_root!();
    icc_off(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_network_and_masquerade() {
    require_root!();
    let t = TestHost::new("internal").await;
    // An "outside" namespace routed via the host: 192.168.250.0/30, with no
    // route back to container subnets (so only masqueraded traffic returns).
    let out = t.netns("outside").await;
    let h = Ns::Host;
    let (ho, oo) = (brname("ho"), brname("oo"));
    t.sys.create_veth(&h, &ho, &oo, None).await.unwrap();
    t.sys
        .add_addr(&h, &ho, "192.168.250.1/30".parse().unwrap())
        .await
        .unwrap();
    t.sys.set_up(&h, &ho, true).await.unwrap();
    drivers::sandbox::add_interface(
        t.sys.as_ref(),
        &out,
        &oo,
        "eth0",
        None,
        &["192.168.250.2/30".parse().unwrap()],
    )
    .await
    .unwrap();
    let eo = echo_server(&out, ip("192.168.250.2"));
    let eh = echo_server(&t.host, ip("0.0.0.0"));

    // Internal network: gateway address on the bridge, no default route.
    let mut ni = network("netint", &brname("ndn"), "10.34.0.0/24", None);
    ni.internal = true;
    t.driver.create_network(&ni).await.unwrap();
    let si = t.netns("si").await;
    attach(&t, &ni, "in1", &["10.34.0.2/24"], &si, "eth0", true).await;
    let st = drivers::sandbox::inspect(t.sys.as_ref(), &si)
        .await
        .unwrap();
    assert!(
        !st.routes.iter().any(|r| r.destination.prefix() == 0),
        "internal network: no default route: {:?}",
        st.routes
    );
    // Even with a route forced through the gateway, nothing leaves...
    drivers::sandbox::add_route(
        t.sys.as_ref(),
        &si,
        "192.168.250.0/30".parse().unwrap(),
        Some(ip("10.34.0.1")),
        None,
    )
    .await
    .unwrap();
    assert!(
        !tcp_ok(&si, ip("192.168.250.2"), eo.port),
        "internal -/-> outside"
    );
    // ...and host addresses other than the gateway are closed.
    assert!(
        !tcp_ok(&si, ip("192.168.250.1"), eh.port),
        "internal -/-> other host address"
    );
    assert!(
        tcp_ok(&si, ip("10.34.0.1"), eh.port),
        "internal -> its gateway"
    );

    // A normal network reaches the outside, masqueraded (outside has no
    // route to 10.36.0.0/24, so without NAT the reply would be lost).
    let nn = network("netnat", &brname("ndm"), "10.36.0.0/24", None);
    t.driver.create_network(&nn).await.unwrap();
    let sn = t.netns("sn").await;
    attach(&t, &nn, "nt1", &["10.36.0.2/24"], &sn, "eth0", true).await;
    assert!(
        tcp_ok(&sn, ip("192.168.250.2"), eo.port),
        "normal -> outside via NAT"
    );
    assert!(
        tcp_ok(&sn, ip("192.168.250.1"), eh.port),
        "normal -> host address"
    );
    // Outside cannot open connections into the container network.
    let en = echo_server(&sn, ip("0.0.0.0"));
    t.sys
        .replace_route(
            &Ns::path(&out),
            "10.36.0.0/24".parse().unwrap(),
            Some(ip("192.168.250.1")),
            None,
        )
        .await
        .unwrap();
    assert!(
        !tcp_ok(&out, ip("10.36.0.2"), en.port),
        "outside -/-> container"
    );

    // Masquerade off: the outside sees the real source and cannot answer.
    let mut nm = network("netnomasq", &brname("ndq"), "10.37.0.0/24", None);
    nm.options.insert(
        "com.docker.network.bridge.enable_ip_masquerade".into(),
        "false".into(),
    );
    t.driver.create_network(&nm).await.unwrap();
    let sq = t.netns("sq").await;
    attach(&t, &nm, "nq1", &["10.37.0.2/24"], &sq, "eth0", true).await;
    assert!(
        !tcp_ok(&sq, ip("192.168.250.2"), eo.port),
        "no masquerade -> no reply"
    );
}

/// The isolation really is netd's table: without it, routed traffic between
/// the two networks flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_comes_from_netd_table() {
    require_root!();
    let t = TestHost::new("ctl").await;
    let na = network("cta", &brname("nca"), "10.38.0.0/24", None);
    let nb = network("ctb", &brname("ncb"), "10.39.0.0/24", None);
    t.driver.create_network(&na).await.unwrap();
    t.driver.create_network(&nb).await.unwrap();
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    attach(&t, &na, "c1", &["10.38.0.2/24"], &s1, "eth0", true).await;
    attach(&t, &nb, "c2", &["10.39.0.2/24"], &s2, "eth0", true).await;
    let e1 = echo_server(&s1, ip("0.0.0.0"));
    assert!(!tcp_ok(&s2, ip("10.38.0.2"), e1.port));
    t.driver.teardown_firewall().await.unwrap();
    assert!(
        tcp_ok(&s2, ip("10.38.0.2"), e1.port),
        "without netd's table B reaches A"
    );
    // init() rebuilds the base; re-creating the networks restores isolation.
    t.driver.init().await.unwrap();
    t.driver.create_network(&na).await.unwrap();
    t.driver.create_network(&nb).await.unwrap();
    assert!(!tcp_ok(&s2, ip("10.38.0.2"), e1.port), "isolation restored");
}
