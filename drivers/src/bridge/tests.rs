//! Driver logic against the recording fake (no root).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::sys::fake::FakeSys;
use crate::SubnetSpec;

fn net(internal: bool) -> NetworkSpec {
    NetworkSpec {
        id: "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into(),
        name: "n1".into(),
        options: BTreeMap::new(),
        ipv4: vec![SubnetSpec {
            subnet: "10.7.0.0/24".parse().unwrap(),
            gateway: Some("10.7.0.1".parse().unwrap()),
        }],
        ipv6: vec![SubnetSpec {
            subnet: "fd07::/64".parse().unwrap(),
            gateway: Some("fd07::1".parse().unwrap()),
        }],
        internal,
        enable_ipv6: true,
    }
}

fn ep(addrs: &[&str]) -> EndpointSpec {
    EndpointSpec {
        id: "0011223344556677".into(),
        network_id: "abc".into(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        mac: None,
    }
}

fn driver() -> (Arc<FakeSys>, BridgeDriver) {
    let sys = Arc::new(FakeSys::new());
    let d = BridgeDriver::new(
        sys.clone(),
        BridgeConfig {
            table: "t".into(),
            docker_coexistence: true,
            ..Default::default()
        },
    );
    (sys, d)
}

#[tokio::test]
async fn create_network_steps() {
    let (sys, d) = driver();
    d.create_network(&net(false)).await.unwrap();
    let calls = sys.calls();
    assert_eq!(
        calls,
        vec![
            "nft_apply_text host 6 lines",
            "nft_apply host 52 cmds",
            "create_bridge host br-abcdef012345 mtu=None",
            "sysctl_set host net/ipv6/conf/br-abcdef012345/disable_ipv6=0",
            "add_addr host br-abcdef012345 10.7.0.1/24",
            "add_addr host br-abcdef012345 fd07::1/64",
            "set_up host br-abcdef012345 true",
            "sysctl_set host net.ipv4.ip_forward=1",
            "sysctl_set host net.ipv6.conf.all.forwarding=1",
            "nft_apply host 6 cmds",
            "nft_list host list set inet t bridges",
            "nft_list host list chain ip filter DOCKER-USER",
            "nft_list host list chain ip6 filter DOCKER-USER",
        ]
    );
    // Replay: bridge reused, base table not re-applied, elements re-added.
    d.create_network(&net(false)).await.unwrap();
    let again = &sys.calls()[calls.len()..];
    assert!(
        !again.iter().any(|c| c.starts_with("create_bridge")),
        "{again:?}"
    );
    assert!(
        !again
            .iter()
            .any(|c| c.starts_with("sysctl_set host net.ipv4")),
        "{again:?}"
    );
}

#[tokio::test]
async fn create_network_rolls_back_bridge_when_firewall_fails() {
    let (sys, d) = driver();
    d.init().await.unwrap();
    sys.fail_on("nft_apply host 6 cmds");
    assert!(d.create_network(&net(false)).await.is_err());
    let calls = sys.calls();
    assert!(
        calls.contains(&"delete_link host br-abcdef012345".to_string()),
        "{calls:?}"
    );
    assert!(sys.link_names(&Ns::Host).is_empty());
}

#[tokio::test]
async fn create_network_rolls_back_bridge_when_address_fails() {
    let (sys, d) = driver();
    sys.fail_on("add_addr host br-abcdef012345 fd07");
    assert!(d.create_network(&net(false)).await.is_err());
    assert!(sys.link_names(&Ns::Host).is_empty());
    let mut n = net(false);
    n.options
        .insert(options::OPT_BRIDGE_NAME.into(), "docker0".into());
    assert!(matches!(
        d.create_network(&n).await,
        Err(DriverError::Conflict(_))
    ));
}

#[tokio::test]
async fn endpoint_lifecycle_and_rollback() {
    let (sys, d) = driver();
    let n = net(false);
    d.create_network(&n).await.unwrap();
    let e = ep(&["10.7.0.2/24", "fd07::2/64"]);
    let info = d.create_endpoint(&n, &e).await.unwrap();
    assert_eq!(info.host_ifname.as_deref(), Some("vnd00112233"));
    assert_eq!(info.container_ifname.as_deref(), Some("vnc00112233"));
    assert_eq!(info.mac.as_deref(), Some("02:42:0a:07:00:02"));
    let tail: Vec<_> = sys.calls().into_iter().rev().take(6).collect();
    assert_eq!(
        tail,
        vec![
            "set_up host vnd00112233 true",
            "sysctl_set host net/ipv6/conf/vnd00112233/disable_ipv6=1",
            "set_mac host vnc00112233 02:42:0a:07:00:02",
            "set_bridge_port host vnd00112233 hairpin=Some(true) isolated=None",
            "set_master host vnd00112233 Some(\"br-abcdef012345\")",
            "create_veth host vnd00112233 vnc00112233 mtu=None",
        ]
    );
    d.delete_endpoint(&n, &e).await.unwrap();
    assert_eq!(
        sys.link_names(&Ns::Host),
        vec!["br-abcdef012345".to_string()]
    );
    // Idempotent.
    d.delete_endpoint(&n, &e).await.unwrap();

    // A failing step deletes the veth again.
    sys.fail_on("set_master");
    assert!(d.create_endpoint(&n, &e).await.is_err());
    assert_eq!(
        sys.link_names(&Ns::Host),
        vec!["br-abcdef012345".to_string()]
    );
}

#[tokio::test]
async fn icc_off_isolates_ports() {
    let (sys, d) = driver();
    let mut n = net(false);
    n.options.insert(options::OPT_ICC.into(), "false".into());
    d.create_network(&n).await.unwrap();
    d.create_endpoint(&n, &ep(&["10.7.0.3/24"])).await.unwrap();
    assert!(sys.calls().contains(
        &"set_bridge_port host vnd00112233 hairpin=Some(true) isolated=Some(true)".to_string()
    ));
}

#[tokio::test]
async fn join_gateways() {
    let (_sys, d) = driver();
    let sb = SandboxSpec {
        id: "s".into(),
        netns_path: "/x".into(),
    };
    let j = d
        .join(&net(false), &ep(&["10.7.0.2/24", "fd07::2/64"]), &sb)
        .await
        .unwrap();
    assert_eq!(j.gateway4, Some("10.7.0.1".parse().unwrap()));
    assert_eq!(j.gateway6, Some("fd07::1".parse().unwrap()));
    let j = d
        .join(&net(true), &ep(&["10.7.0.2/24"]), &sb)
        .await
        .unwrap();
    assert_eq!(j, JoinInfo::default());
    let j = d
        .join(&net(false), &ep(&["10.7.0.2/24"]), &sb)
        .await
        .unwrap();
    assert_eq!(j.gateway6, None);
}

#[test]
fn macs() {
    assert_eq!(endpoint_mac(&ep(&["172.18.0.5/16"])), "02:42:ac:12:00:05");
    let m = endpoint_mac(&ep(&["fd00::5/64"]));
    let b = crate::sys::parse_mac(&m).unwrap();
    assert_eq!(b[0] & 0x03, 0x02, "locally administered unicast: {m}");
    assert_eq!(m, endpoint_mac(&ep(&["fd00::5/64"])), "stable");
    let mut e = ep(&["10.0.0.2/24"]);
    e.mac = Some("AA:BB:CC:DD:EE:FF".into());
    assert_eq!(endpoint_mac(&e), "aa:bb:cc:dd:ee:ff");
}

#[test]
fn validate() {
    let (_s, d) = driver();
    let mut n = net(false);
    n.ipv4[0].gateway = Some("10.8.0.1".parse().unwrap());
    assert!(d.validate_network(&n).is_err());
    assert!(d.validate_network(&net(false)).is_ok());
}
