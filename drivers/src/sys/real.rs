//! The real [`Sys`]: rtnetlink, nft, /proc/sys.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use tokio::sync::OnceCell;

use super::conntrack::{self, CtFilter};
use super::netlink::Netlink;
use super::nlsync::SyncNetlink;
use super::{netns, nft, sysctl_path, AddrState, BridgePortFlags, LinkState, RouteState};
use super::{Ns, NsOp, Sys, SysError, SysResult};

/// Real kernel access. `host` is the namespace `Ns::Host` means: `None` for
/// the daemon's own, or a namespace file (tests run a whole "host" in a
/// namespace they created, so they never touch the machine's real one).
pub struct RealSys {
    host: Option<PathBuf>,
    /// Host connection, opened on first use. The host namespace outlives us,
    /// so this is the one thing worth keeping; sandbox sockets are per call.
    host_nl: OnceCell<Netlink>,
}

impl RealSys {
    /// Act on the current (daemon's) namespace as the host.
    pub fn new() -> RealSys {
        RealSys {
            host: None,
            host_nl: OnceCell::new(),
        }
    }

    /// Treat the namespace at `path` as the host (tests, benches).
    pub fn with_host_netns(path: impl Into<PathBuf>) -> RealSys {
        RealSys {
            host: Some(path.into()),
            host_nl: OnceCell::new(),
        }
    }

    pub fn host_netns(&self) -> Option<&Path> {
        self.host.as_deref()
    }

    fn ns_path<'a>(&'a self, ns: &'a Ns) -> Option<&'a Path> {
        match ns {
            Ns::Host => self.host.as_deref(),
            Ns::Path(p) => Some(p),
        }
    }

    async fn nl(&self, ns: &Ns) -> SysResult<Netlink> {
        match ns {
            Ns::Host => self
                .host_nl
                .get_or_try_init(|| async {
                    match &self.host {
                        None => Netlink::current(),
                        Some(p) => Netlink::in_netns(p).await,
                    }
                })
                .await
                .cloned(),
            Ns::Path(p) => Netlink::in_netns(p).await,
        }
    }
}

impl Default for RealSys {
    fn default() -> Self {
        Self::new()
    }
}

fn sysctl_read(key: &str) -> SysResult<String> {
    let p = sysctl_path(key)?;
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| SysError::Sysctl {
            key: key.into(),
            msg: e.to_string(),
        })
}

fn sysctl_write(key: &str, value: &str) -> SysResult<()> {
    let p = sysctl_path(key)?;
    std::fs::write(&p, value).map_err(|e| SysError::Sysctl {
        key: key.into(),
        msg: e.to_string(),
    })
}

#[async_trait]
impl Sys for RealSys {
    async fn get_link(&self, ns: &Ns, name: &str) -> SysResult<Option<LinkState>> {
        self.nl(ns).await?.get_link(name).await
    }
    async fn list_links(&self, ns: &Ns) -> SysResult<Vec<LinkState>> {
        self.nl(ns).await?.list_links().await
    }
    async fn create_bridge(&self, ns: &Ns, name: &str, mtu: Option<u32>) -> SysResult<()> {
        self.nl(ns).await?.create_bridge(name, mtu).await
    }
    async fn create_veth(
        &self,
        ns: &Ns,
        name: &str,
        peer: &str,
        mtu: Option<u32>,
    ) -> SysResult<()> {
        let nl = self.nl(ns).await?;
        // A peer placement (see `placement`) is honoured for the first veth of
        // its scope. If the sandbox already has a link of that name, fall back
        // to the plain pair: the join then moves the peer and reports the clash.
        if let Some(p) = super::placement::take() {
            match nl.create_veth(name, peer, mtu, Some(&p)).await {
                Err(e) if e.is_exists() => {
                    tracing::debug!(netns = %p.netns.display(), name = %p.name,
                        "veth peer name taken in the sandbox; creating the pair in place");
                }
                r => return r,
            }
        }
        nl.create_veth(name, peer, mtu, None).await
    }
    async fn set_up(&self, ns: &Ns, name: &str, up: bool) -> SysResult<()> {
        self.nl(ns).await?.set_up(name, up).await
    }
    async fn set_mtu(&self, ns: &Ns, name: &str, mtu: u32) -> SysResult<()> {
        self.nl(ns).await?.set_mtu(name, mtu).await
    }
    async fn set_master(&self, ns: &Ns, name: &str, master: Option<&str>) -> SysResult<()> {
        self.nl(ns).await?.set_master(name, master).await
    }
    async fn set_mac(&self, ns: &Ns, name: &str, mac: &str) -> SysResult<()> {
        self.nl(ns).await?.set_mac(name, mac).await
    }
    async fn rename(&self, ns: &Ns, name: &str, new_name: &str) -> SysResult<()> {
        self.nl(ns).await?.rename(name, new_name).await
    }
    async fn move_to_netns(&self, ns: &Ns, name: &str, target: &Path) -> SysResult<()> {
        self.nl(ns).await?.move_to_netns(name, target).await
    }
    async fn delete_link(&self, ns: &Ns, name: &str) -> SysResult<bool> {
        self.nl(ns).await?.delete_link(name).await
    }
    async fn set_bridge_port(&self, ns: &Ns, name: &str, flags: BridgePortFlags) -> SysResult<()> {
        self.nl(ns).await?.set_bridge_port(name, flags).await
    }
    async fn add_addr(&self, ns: &Ns, name: &str, addr: IpNetwork) -> SysResult<()> {
        self.nl(ns).await?.add_addr(name, addr).await
    }
    async fn del_addr(&self, ns: &Ns, name: &str, addr: IpNetwork) -> SysResult<bool> {
        self.nl(ns).await?.del_addr(name, addr).await
    }
    async fn list_addrs(&self, ns: &Ns) -> SysResult<Vec<AddrState>> {
        self.nl(ns).await?.list_addrs().await
    }
    async fn replace_route(
        &self,
        ns: &Ns,
        dst: IpNetwork,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> SysResult<()> {
        self.nl(ns).await?.replace_route(dst, via, dev).await
    }
    async fn del_route(&self, ns: &Ns, dst: IpNetwork, via: Option<IpAddr>) -> SysResult<bool> {
        self.nl(ns).await?.del_route(dst, via).await
    }
    async fn list_routes(&self, ns: &Ns) -> SysResult<Vec<RouteState>> {
        self.nl(ns).await?.list_routes().await
    }
    async fn batch(&self, ns: &Ns, ops: &[NsOp]) -> SysResult<()> {
        match self.ns_path(ns) {
            // The daemon's own namespace: the host connection is kept open and
            // sysctls need no thread, so there is nothing to save.
            None => super::batch_one_by_one(self, ns, ops).await,
            // One thread, one namespace entry, one socket for the whole batch.
            Some(p) => {
                let ops = ops.to_vec();
                netns::run_in_netns(p, move || SyncNetlink::open()?.run(&ops)).await?
            }
        }
    }
    async fn sysctl_get(&self, ns: &Ns, key: &str) -> SysResult<String> {
        // /proc/sys/net resolves against the *opening* thread's netns.
        match self.ns_path(ns) {
            None => sysctl_read(key),
            Some(p) => {
                let k = key.to_string();
                netns::run_in_netns(p, move || sysctl_read(&k)).await?
            }
        }
    }
    async fn sysctl_set(&self, ns: &Ns, key: &str, value: &str) -> SysResult<()> {
        match self.ns_path(ns) {
            None => sysctl_write(key, value),
            Some(p) => {
                let (k, v) = (key.to_string(), value.to_string());
                netns::run_in_netns(p, move || sysctl_write(&k, &v)).await?
            }
        }
    }
    async fn nft_apply(&self, ns: &Ns, batch: &nftables::schema::Nftables<'_>) -> SysResult<()> {
        nft::apply(self.ns_path(ns), batch).await
    }
    async fn nft_list(&self, ns: &Ns, args: &[&str]) -> SysResult<Option<serde_json::Value>> {
        nft::list(self.ns_path(ns), args).await
    }
    async fn nft_apply_text(&self, ns: &Ns, script: &str) -> SysResult<()> {
        nft::apply_text(self.ns_path(ns), script).await
    }
    async fn conntrack_delete(&self, ns: &Ns, filter: &CtFilter) -> SysResult<usize> {
        // ctnetlink acts in the namespace of the thread that opens the socket.
        let f = *filter;
        match self.ns_path(ns) {
            None => tokio::task::spawn_blocking(move || conntrack::delete_matching(&f))
                .await
                .map_err(|e| SysError::Nft(format!("conntrack task: {e}")))?,
            Some(p) => netns::run_in_netns(p, move || conntrack::delete_matching(&f)).await?,
        }
    }
}
