//! Operations inside a sandbox's network namespace (libnetwork's "osl"):
//! move an interface in and configure it, routes, removal, inspection.
//!
//! Everything goes through [`Sys`] with `Ns::Path(netns)`; no namespace is
//! entered by the calling thread. Interfaces are named by the daemon (it
//! tracks join order: eth0, eth1, ...); [`next_ifname`] helps when it wants
//! the kernel's view instead.

use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;
use serde::Serialize;

use crate::sys::{Ns, NsOp, Sys, SysError, SysResult};

/// One interface as seen inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxInterface {
    pub name: String,
    pub index: u32,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub addresses: Vec<IpNetwork>,
}

/// One route as seen inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxRoute {
    pub destination: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
}

/// What `inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxState {
    pub interfaces: Vec<SandboxInterface>,
    pub routes: Vec<SandboxRoute>,
}

/// Put the container end of a veth into the sandbox as `dst_name` and
/// configure it: MAC, addresses, up. IPv6 addresses are added `nodad` and
/// `accept_dad` is turned off, so they are usable at once; an interface
/// without IPv6 addresses gets IPv6 disabled (like Docker).
///
/// The container end is either still in the host namespace as
/// `host_side_name` (it is then moved in under that temporary name, which
/// cannot clash inside, and renamed there), or already inside as `dst_name`
/// (created there through a [`crate::sys::placement`] scope, or moved by an
/// earlier attempt: replays are idempotent). All the work inside the sandbox
/// is one [`Sys::batch`]: one namespace entry and one socket.
pub async fn add_interface(
    sys: &dyn Sys,
    netns: &Path,
    host_side_name: &str,
    dst_name: &str,
    mac: Option<&str>,
    addrs: &[IpNetwork],
) -> SysResult<()> {
    let sb = Ns::path(netns);
    let mut ops = Vec::with_capacity(4 + addrs.len());
    let moved = sys.get_link(&Ns::Host, host_side_name).await?.is_some();
    if moved {
        sys.move_to_netns(&Ns::Host, host_side_name, netns).await?;
        if host_side_name != dst_name {
            ops.push(NsOp::Rename {
                name: host_side_name.into(),
                new_name: dst_name.into(),
            });
        }
    }
    let has_v6 = addrs.iter().any(|a| a.is_ipv6());
    let (key, value) = if has_v6 {
        (format!("net/ipv6/conf/{dst_name}/accept_dad"), "0")
    } else {
        (format!("net/ipv6/conf/{dst_name}/disable_ipv6"), "1")
    };
    ops.push(NsOp::Sysctl {
        key,
        value: value.into(),
    });
    if let Some(m) = mac {
        ops.push(NsOp::SetMac {
            name: dst_name.into(),
            mac: m.into(),
        });
    }
    for a in addrs {
        ops.push(NsOp::AddAddr {
            name: dst_name.into(),
            addr: *a,
        });
    }
    ops.push(NsOp::SetUp {
        name: dst_name.into(),
        up: true,
    });
    let r = sys.batch(&sb, &ops).await;
    if r.is_err() && moved && host_side_name != dst_name {
        // Not renamed (e.g. the name is taken): do not leave it there under
        // its temporary name. Deleting it removes the whole pair.
        let _ = sys.delete_link(&sb, host_side_name).await;
    }
    r
}

fn default_dst(v6: bool) -> IpNetwork {
    if v6 {
        "::/0".parse().expect("static")
    } else {
        "0.0.0.0/0".parse().expect("static")
    }
}

/// Set (replace) the default routes. `None` leaves that family alone.
pub async fn set_default_gateway(
    sys: &dyn Sys,
    netns: &Path,
    gw4: Option<IpAddr>,
    gw6: Option<IpAddr>,
) -> SysResult<()> {
    let ops: Vec<NsOp> = [(gw4, false), (gw6, true)]
        .into_iter()
        .filter_map(|(g, v6)| {
            g.map(|g| NsOp::ReplaceRoute {
                dst: default_dst(v6),
                via: Some(g),
                dev: None,
            })
        })
        .collect();
    if ops.is_empty() {
        return Ok(());
    }
    sys.batch(&Ns::path(netns), &ops).await
}

/// Make the default routes exactly these, per family, in one batch: a family
/// with a gateway gets (replaces) its default route, one without loses it
/// (a missing route is fine).
pub async fn set_default_routes(
    sys: &dyn Sys,
    netns: &Path,
    gw4: Option<IpAddr>,
    gw6: Option<IpAddr>,
) -> SysResult<()> {
    let mut ops = Vec::with_capacity(2);
    // Deletions first, as the previous clear-then-set sequence did.
    for (g, v6) in [(gw4, false), (gw6, true)] {
        if g.is_none() {
            ops.push(NsOp::DelRoute {
                dst: default_dst(v6),
                via: None,
            });
        }
    }
    for (g, v6) in [(gw4, false), (gw6, true)] {
        if let Some(g) = g {
            ops.push(NsOp::ReplaceRoute {
                dst: default_dst(v6),
                via: Some(g),
                dev: None,
            });
        }
    }
    sys.batch(&Ns::path(netns), &ops).await
}

/// Remove the default route(s) (e.g. when the endpoint that provided the
/// gateway leaves). Missing routes are fine.
pub async fn clear_default_gateway(
    sys: &dyn Sys,
    netns: &Path,
    v4: bool,
    v6: bool,
) -> SysResult<()> {
    let ops: Vec<NsOp> = [(v4, false), (v6, true)]
        .into_iter()
        .filter(|(want, _)| *want)
        .map(|(_, v6)| NsOp::DelRoute {
            dst: default_dst(v6),
            via: None,
        })
        .collect();
    if ops.is_empty() {
        return Ok(());
    }
    sys.batch(&Ns::path(netns), &ops).await
}

/// Add (replace) a route in the sandbox.
pub async fn add_route(
    sys: &dyn Sys,
    netns: &Path,
    dst: IpNetwork,
    via: Option<IpAddr>,
    dev: Option<&str>,
) -> SysResult<()> {
    sys.replace_route(&Ns::path(netns), dst, via, dev).await
}

/// Delete the interface `dst_name` inside the sandbox (its veth peer on the
/// host goes with it). Missing interface or missing namespace is fine.
pub async fn remove_interface(sys: &dyn Sys, netns: &Path, dst_name: &str) -> SysResult<()> {
    if !netns.exists() {
        return Ok(());
    }
    match sys.delete_link(&Ns::path(netns), dst_name).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_gone() => Ok(()),
        Err(SysError::Netns { .. }) if !netns.exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The first `prefixN` name not in use in the sandbox.
pub async fn next_ifname(sys: &dyn Sys, netns: &Path, prefix: &str) -> SysResult<String> {
    let links = sys.list_links(&Ns::path(netns)).await?;
    Ok((0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| !links.iter().any(|l| &l.name == n))
        .expect("unbounded"))
}

/// Interfaces (with addresses) and main-table routes of a sandbox.
pub async fn inspect(sys: &dyn Sys, netns: &Path) -> SysResult<SandboxState> {
    let sb = Ns::path(netns);
    let links = sys.list_links(&sb).await?;
    let addrs = sys.list_addrs(&sb).await?;
    let routes = sys.list_routes(&sb).await?;
    let name_of = |i: u32| links.iter().find(|l| l.index == i).map(|l| l.name.clone());
    Ok(SandboxState {
        interfaces: links
            .iter()
            .map(|l| SandboxInterface {
                name: l.name.clone(),
                index: l.index,
                mac: l.mac.clone(),
                mtu: l.mtu,
                up: l.up,
                addresses: addrs
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| a.addr)
                    .collect(),
            })
            .collect(),
        routes: routes
            .iter()
            .map(|r| SandboxRoute {
                destination: r.destination,
                gateway: r.gateway,
                dev: r.oif.and_then(name_of),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fake::FakeSys;

    #[tokio::test]
    async fn add_interface_order() {
        let sys = FakeSys::new();
        sys.create_veth(&Ns::Host, "vnd1", "vnc1", None)
            .await
            .unwrap();
        let ns = Path::new("/run/netd/netns/sb1");
        let addrs: Vec<IpNetwork> = vec![
            "10.0.0.2/24".parse().unwrap(),
            "fd00::2/64".parse().unwrap(),
        ];
        add_interface(&sys, ns, "vnc1", "eth0", Some("02:42:0a:00:00:02"), &addrs)
            .await
            .unwrap();
        let calls = sys.calls();
        assert_eq!(
            &calls[1..],
            &[
                "move_to_netns host vnc1 /run/netd/netns/sb1",
                "rename /run/netd/netns/sb1 vnc1 eth0",
                "sysctl_set /run/netd/netns/sb1 net/ipv6/conf/eth0/accept_dad=0",
                "set_mac /run/netd/netns/sb1 eth0 02:42:0a:00:00:02",
                "add_addr /run/netd/netns/sb1 eth0 10.0.0.2/24",
                "add_addr /run/netd/netns/sb1 eth0 fd00::2/64",
                "set_up /run/netd/netns/sb1 eth0 true",
            ]
        );
        assert_eq!(sys.link_names(&Ns::path(ns)), vec!["eth0".to_string()]);
        // Replay: already inside, no second move.
        add_interface(&sys, ns, "vnc1", "eth0", None, &addrs[..1])
            .await
            .unwrap();
        assert!(!sys.calls()[8..].iter().any(|c| c.starts_with("move")));
    }

    #[tokio::test]
    async fn placed_peer_is_not_moved() {
        use crate::sys::placement::{with_peer_placement, PeerPlacement};
        let sys = FakeSys::new();
        let ns = Path::new("/run/netd/netns/sb2");
        let p = PeerPlacement {
            netns: ns.to_path_buf(),
            name: "eth0".into(),
            mac: Some("02:42:0a:00:00:03".into()),
        };
        with_peer_placement(p, sys.create_veth(&Ns::Host, "vnd2", "vnc2", Some(1400)))
            .await
            .unwrap();
        assert_eq!(sys.link_names(&Ns::Host), vec!["vnd2".to_string()]);
        assert_eq!(sys.link_names(&Ns::path(ns)), vec!["eth0".to_string()]);
        let addrs: Vec<IpNetwork> = vec!["10.0.0.3/24".parse().unwrap()];
        add_interface(&sys, ns, "vnc2", "eth0", Some("02:42:0a:00:00:03"), &addrs)
            .await
            .unwrap();
        let calls = sys.calls();
        assert_eq!(
            &calls[..],
            &[
                "create_veth host vnd2 vnc2 mtu=Some(1400) peer_in=/run/netd/netns/sb2 as eth0",
                "sysctl_set /run/netd/netns/sb2 net/ipv6/conf/eth0/disable_ipv6=1",
                "set_mac /run/netd/netns/sb2 eth0 02:42:0a:00:00:03",
                "add_addr /run/netd/netns/sb2 eth0 10.0.0.3/24",
                "set_up /run/netd/netns/sb2 eth0 true",
            ]
        );
        // Deleting the host end removes the pair, wherever the peer lives.
        sys.delete_link(&Ns::Host, "vnd2").await.unwrap();
        assert!(sys.link_names(&Ns::path(ns)).is_empty());
    }

    #[tokio::test]
    async fn placement_clash_falls_back_and_fails_cleanly() {
        use crate::sys::placement::{with_peer_placement, PeerPlacement};
        let sys = FakeSys::new();
        let ns = Path::new("/run/netd/netns/sb3");
        // Someone else's eth0 is already in the sandbox.
        sys.create_veth(&Ns::Host, "other", "eth0", None)
            .await
            .unwrap();
        sys.move_to_netns(&Ns::Host, "eth0", ns).await.unwrap();
        let p = PeerPlacement {
            netns: ns.to_path_buf(),
            name: "eth0".into(),
            mac: None,
        };
        with_peer_placement(p, sys.create_veth(&Ns::Host, "vnd3", "vnc3", None))
            .await
            .unwrap();
        assert!(sys.link_names(&Ns::Host).contains(&"vnc3".to_string()));
        let e = add_interface(&sys, ns, "vnc3", "eth0", None, &[])
            .await
            .unwrap_err();
        assert!(e.is_exists(), "{e}");
        // The clashing link was removed with its pair; the foreign eth0 stays.
        assert_eq!(sys.link_names(&Ns::path(ns)), vec!["eth0".to_string()]);
        assert!(!sys.link_names(&Ns::Host).contains(&"vnd3".to_string()));
    }

    #[tokio::test]
    async fn default_routes_in_one_batch() {
        let sys = FakeSys::new();
        let ns = Path::new("/run/netd/netns/sb4");
        set_default_routes(&sys, ns, Some("10.0.0.1".parse().unwrap()), None)
            .await
            .unwrap();
        assert_eq!(
            sys.calls(),
            vec![
                "del_route /run/netd/netns/sb4 ::/0 via=None",
                "replace_route /run/netd/netns/sb4 0.0.0.0/0 via=Some(10.0.0.1) dev=None",
            ]
        );
    }
}
