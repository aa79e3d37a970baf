//! Root: sandboxes on bridge networks talk (v4 and v6), networks are
//! isolated from each other, and joining a second network opens the path.

mod common;

use common::*;
use drivers::sys::{Ns, Sys};
use drivers::Driver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_network_talks_other_network_isolated_until_joined() {
    require_root!();
    let t = TestHost::new("conn").await;
    let na = network("neta", &brname("nda"), "10.31.0.0/24", None);
    let nb = network("netb", &brname("ndb"), "10.32.0.0/24", None);
    t.driver.create_network(&na).await.unwrap();
    t.driver.create_network(&nb).await.unwrap();

    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    let s3 = t.netns("s3").await;
    attach(&t, &na, "ep1", &["10.31.0.2/24"], &s1, "eth0", true).await;
    attach(&t, &na, "ep2", &["10.31.0.3/24"], &s2, "eth0", true).await;
    attach(&t, &nb, "ep3", &["10.32.0.2/24"], &s3, "eth0", true).await;

    let e1 = echo_server(&s1, ip("0.0.0.0"));
    let e2 = echo_server(&s2, ip("0.0.0.0"));
    assert!(tcp_ok(&s1, ip("10.31.0.3"), e2.port), "s1 -> s2");
    assert!(tcp_ok(&s2, ip("10.31.0.2"), e1.port), "s2 -> s1");
    assert!(
        !tcp_ok(&s3, ip("10.31.0.2"), e1.port),
        "s3 (net B) must not reach s1"
    );
    assert!(
        !tcp_ok(&s3, ip("10.31.0.3"), e2.port),
        "s3 (net B) must not reach s2"
    );
    let e3 = echo_server(&s3, ip("0.0.0.0"));
    assert!(
        !tcp_ok(&s1, ip("10.32.0.2"), e3.port),
        "s1 must not reach s3"
    );

    // Join s3 to network A as eth1: it now reaches s1 over A.
    attach(&t, &na, "ep4", &["10.31.0.4/24"], &s3, "eth1", false).await;
    assert!(
        tcp_ok(&s3, ip("10.31.0.2"), e1.port),
        "s3 joined to A -> s1"
    );
    assert!(tcp_ok(&s1, ip("10.31.0.4"), e3.port), "s1 -> s3 on A");

    // The sandbox view.
    let st = drivers::sandbox::inspect(t.sys.as_ref(), &s3)
        .await
        .unwrap();
    let names: Vec<_> = st.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["lo", "eth0", "eth1"]);
    let eth1 = &st.interfaces[2];
    assert!(eth1.up);
    assert_eq!(eth1.mac.as_deref(), Some("02:42:0a:1f:00:04"));
    assert_eq!(eth1.addresses, vec!["10.31.0.4/24".parse().unwrap()]);
    let default = st
        .routes
        .iter()
        .find(|r| r.destination.prefix() == 0 && r.destination.is_ipv4())
        .expect("default route");
    assert_eq!(default.gateway, Some(ip("10.32.0.1")));
    assert_eq!(default.dev.as_deref(), Some("eth0"));
    let json = serde_json::to_value(&st).unwrap();
    assert!(json["interfaces"][1]["addresses"].is_array());

    // ip_forward was enabled in the (test) host namespace only.
    assert_eq!(
        t.sys
            .sysctl_get(&drivers::sys::Ns::Host, "net.ipv4.ip_forward")
            .await
            .unwrap(),
        "1"
    );
    use drivers::sys::Sys;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack() {
    require_root!();
    let t = TestHost::new("v6").await;
    let br = brname("nd6");
    let n = network("net6", &br, "10.41.0.0/24", Some("fd00:41::/64"));
    t.driver.create_network(&n).await.unwrap();
    let bridge_mac = || async {
        let l = t.sys.get_link(&Ns::Host, &br).await.unwrap().unwrap();
        l.mac.unwrap()
    };
    let mac0 = bridge_mac().await;
    assert!(mac0.starts_with("02:42:"), "bridge MAC {mac0}");
    let s1 = t.netns("s1").await;
    let s2 = t.netns("s2").await;
    attach(
        &t,
        &n,
        "e61",
        &["10.41.0.2/24", "fd00:41::2/64"],
        &s1,
        "eth0",
        true,
    )
    .await;
    attach(
        &t,
        &n,
        "e62",
        &["10.41.0.3/24", "fd00:41::3/64"],
        &s2,
        "eth0",
        true,
    )
    .await;
    let e1 = echo_server(&s1, ip("::"));
    let e2 = echo_server(&s2, ip("::"));
    assert!(tcp_ok(&s1, ip("fd00:41::3"), e2.port), "v6 s1 -> s2");
    assert!(tcp_ok(&s2, ip("fd00:41::2"), e1.port), "v6 s2 -> s1");
    // Dual-stack socket also answers v4.
    assert!(tcp_ok(&s2, ip("10.41.0.2"), e1.port), "v4 s2 -> s1");
    // The v6 gateway (the bridge) is reachable and is the default route.
    let eh = echo_server(&t.host, ip("fd00:41::1"));
    assert!(tcp_ok(&s1, ip("fd00:41::1"), eh.port), "v6 s1 -> gateway");
    let st = drivers::sandbox::inspect(t.sys.as_ref(), &s1)
        .await
        .unwrap();
    assert!(st.routes.iter().any(|r| r.destination.is_ipv6()
        && r.destination.prefix() == 0
        && r.gateway == Some(ip("fd00:41::1"))));
    // The gateway's MAC is the bridge's own: ports joining do not change it.
    assert_eq!(bridge_mac().await, mac0);
    // The bridge ports forward IPv6 (above) with no IPv6 of their own.
    let ports: Vec<_> = t
        .sys
        .list_links(&Ns::Host)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.kind.as_deref() == Some("veth"))
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    for p in ports {
        let key = format!("net/ipv6/conf/{}/disable_ipv6", p.name);
        let v = t.sys.sysctl_get(&Ns::Host, &key).await.unwrap();
        assert_eq!(v.trim(), "1", "{key}");
    }
}
