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

use crate::sys::{Ns, Sys, SysError, SysResult};

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

/// Move `host_side_name` (a link in the host namespace, e.g. the container end
/// of a veth) into the sandbox, rename it `dst_name`, set its MAC, add the
/// addresses and bring it up. IPv6 addresses are added `nodad` and
/// `accept_dad` is turned off, so they are usable at once.
///
/// Idempotent on replay: if the link is already inside under `dst_name` the
/// move and rename are skipped.
pub async fn add_interface(
    sys: &dyn Sys,
    netns: &Path,
    host_side_name: &str,
    dst_name: &str,
    mac: Option<&str>,
    addrs: &[IpNetwork],
) -> SysResult<()> {
    let sb = Ns::path(netns);
    if sys.get_link(&sb, dst_name).await?.is_none() {
        // The temporary name may collide with a sandbox interface: move first
        // under the temporary name, then rename inside.
        sys.move_to_netns(&Ns::Host, host_side_name, netns).await?;
        if host_side_name != dst_name {
            if let Err(e) = sys.rename(&sb, host_side_name, dst_name).await {
                let _ = sys.delete_link(&sb, host_side_name).await;
                return Err(e);
            }
        }
    }
    // Like Docker: an interface without IPv6 addresses gets IPv6 disabled
    // (no stray link-local address or router solicitations); one with IPv6
    // gets DAD off so its addresses work at once. Best effort: the kernel may
    // have IPv6 off entirely.
    let has_v6 = addrs.iter().any(|a| a.is_ipv6());
    let (key, val) = if has_v6 {
        (format!("net/ipv6/conf/{dst_name}/accept_dad"), "0")
    } else {
        (format!("net/ipv6/conf/{dst_name}/disable_ipv6"), "1")
    };
    if let Err(e) = sys.sysctl_set(&sb, &key, val).await {
        tracing::debug!(error = %e, key, "sysctl in sandbox");
    }
    if let Some(m) = mac {
        sys.set_mac(&sb, dst_name, m).await?;
    }
    for a in addrs {
        sys.add_addr(&sb, dst_name, *a).await?;
    }
    sys.set_up(&sb, dst_name, true).await
}

/// Set (replace) the default routes. `None` leaves that family alone.
pub async fn set_default_gateway(
    sys: &dyn Sys,
    netns: &Path,
    gw4: Option<IpAddr>,
    gw6: Option<IpAddr>,
) -> SysResult<()> {
    let sb = Ns::path(netns);
    if let Some(g) = gw4 {
        let dst: IpNetwork = "0.0.0.0/0".parse().expect("static");
        sys.replace_route(&sb, dst, Some(g), None).await?;
    }
    if let Some(g) = gw6 {
        let dst: IpNetwork = "::/0".parse().expect("static");
        sys.replace_route(&sb, dst, Some(g), None).await?;
    }
    Ok(())
}

/// Remove the default route(s) (e.g. when the endpoint that provided the
/// gateway leaves). Missing routes are fine.
pub async fn clear_default_gateway(
    sys: &dyn Sys,
    netns: &Path,
    v4: bool,
    v6: bool,
) -> SysResult<()> {
    let sb = Ns::path(netns);
    if v4 {
        sys.del_route(&sb, "0.0.0.0/0".parse().expect("static"), None)
            .await?;
    }
    if v6 {
        sys.del_route(&sb, "::/0".parse().expect("static"), None)
            .await?;
    }
    Ok(())
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
}
