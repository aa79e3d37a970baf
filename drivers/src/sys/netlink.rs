//! A small typed wrapper over rtnetlink 0.24, bound to one network namespace.
//!
//! [`Netlink::current`] opens a socket in the caller's namespace;
//! [`Netlink::in_netns`] follows the recipe from crates.md pitfall 1: a std
//! thread joins the namespace, enters the tokio runtime, opens the socket
//! (which stays bound to that namespace for life) and hands it back; the
//! connection task then runs on the shared runtime.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteType};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::placement::PeerPlacement;
use super::{format_mac, parse_mac, AddrState, BridgePortFlags, LinkState, RouteState};
use super::{SysError, SysResult};

fn nl_err(op: impl Into<String>, e: rtnetlink::Error) -> SysError {
    let errno = match &e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    };
    SysError::Netlink {
        op: op.into(),
        msg: e.to_string(),
        errno,
    }
}

/// A netlink route socket bound to one namespace.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Open a socket in the calling thread's namespace. Must run inside a
    /// tokio runtime.
    pub fn current() -> SysResult<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Open a socket inside the namespace at `path` (pitfall 1 recipe).
    pub async fn in_netns(path: &Path) -> SysResult<Netlink> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle) = super::netns::run_in_netns(path, move || {
            let _g = rt.enter();
            rtnetlink::new_connection().map(|(c, h, _)| (c, h))
        })
        .await??;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Look a link up by name; `None` if absent.
    pub async fn get_link(&self, name: &str) -> SysResult<Option<LinkState>> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            // Statistics are never read here; skip them in the answer.
            .set_filter_mask(AddressFamily::Unspec, vec![LinkExtentMask::SkipStats])
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Ok(Some(link_state(&m))),
            Ok(None) => Ok(None),
            Err(e) => {
                let e = nl_err(format!("get link {name}"), e);
                if e.is_gone() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn index(&self, name: &str) -> SysResult<u32> {
        self.get_link(name)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| SysError::LinkNotFound(name.to_string()))
    }

    pub async fn list_links(&self) -> SysResult<Vec<LinkState>> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list links", e))?;
        Ok(msgs.iter().map(link_state).collect())
    }

    /// Create a bridge with a MAC address of its own (random, locally administered,
    /// `02:42:…` as Docker's): a bridge without one takes the lowest MAC of its ports,
    /// so the gateway's MAC would change as containers come and go (stale ARP caches
    /// in every container), and the kernel re-elects it by walking all ports on every
    /// port added or removed.
    pub async fn create_bridge(&self, name: &str, mtu: Option<u32>) -> SysResult<()> {
        let mut b = LinkBridge::new(name).address(random_mac().to_vec());
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        self.handle
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("create bridge {name}"), e))
    }

    /// Create a veth pair. The peer gets the MTU in the same message. With a
    /// `placement` the peer is born inside that namespace (`IFLA_NET_NS_FD`)
    /// under the placement's name and MAC, which saves the costly move later.
    pub async fn create_veth(
        &self,
        name: &str,
        peer: &str,
        mtu: Option<u32>,
        placement: Option<&PeerPlacement>,
    ) -> SysResult<()> {
        let ns_file = match placement {
            Some(p) => Some(std::fs::File::open(&p.netns).map_err(|e| SysError::Netns {
                path: p.netns.display().to_string(),
                msg: e.to_string(),
            })?),
            None => None,
        };
        let peer_name = placement.map_or(peer, |p| p.name.as_str());
        let mut pb = LinkUnspec::new_with_name(peer_name);
        if let Some(m) = mtu {
            pb = pb.mtu(m);
        }
        if let Some(mac) = placement.and_then(|p| p.mac.as_deref()) {
            let bytes = parse_mac(mac).ok_or_else(|| SysError::Netlink {
                op: format!("create veth {name}/{peer_name}"),
                msg: format!("bad MAC {mac:?}"),
                errno: Some(libc::EINVAL),
            })?;
            pb = pb.address(bytes.to_vec());
        }
        if let Some(f) = &ns_file {
            pb = pb.setns_by_fd(f.as_raw_fd());
        }
        let mut b = LinkVeth::new(name, peer_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(pb.build())));
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        let r = self
            .handle
            .link()
            .add(b.build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("create veth {name}/{peer_name}"), e));
        // The namespace file stays open until the kernel has answered.
        drop(ns_file);
        r
    }

    async fn set(&self, op: String, msg: LinkMessage) -> SysResult<()> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| nl_err(op, e))
    }

    /// `RTM_SETLINK` naming the link by `IFLA_IFNAME` (index 0): the kernel
    /// looks the name up itself, so no GETLINK round trip first. A missing
    /// link (ENODEV) is reported as [`SysError::LinkNotFound`].
    async fn set_by_name(&self, name: &str, op: String, msg: LinkMessage) -> SysResult<()> {
        match self.set(op, msg).await {
            Err(e) if e.errno() == Some(libc::ENODEV) => Err(SysError::LinkNotFound(name.into())),
            r => r,
        }
    }

    pub async fn set_up(&self, name: &str, up: bool) -> SysResult<()> {
        let b = LinkUnspec::new_with_name(name);
        let b = if up { b.up() } else { b.down() };
        self.set_by_name(name, format!("set {name} up={up}"), b.build())
            .await
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> SysResult<()> {
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.set_by_name(name, format!("set {name} mtu {mtu}"), msg)
            .await
    }

    pub async fn set_master(&self, name: &str, master: Option<&str>) -> SysResult<()> {
        let b = LinkUnspec::new_with_name(name);
        let b = match master {
            Some(m) => b.controller(self.index(m).await?),
            None => b.nocontroller(),
        };
        self.set_by_name(name, format!("set {name} master {master:?}"), b.build())
            .await
    }

    pub async fn set_mac(&self, name: &str, mac: &str) -> SysResult<()> {
        let bytes = parse_mac(mac).ok_or_else(|| SysError::Netlink {
            op: format!("set {name} address"),
            msg: format!("bad MAC {mac:?}"),
            errno: Some(libc::EINVAL),
        })?;
        let msg = LinkUnspec::new_with_name(name)
            .address(bytes.to_vec())
            .build();
        self.set_by_name(name, format!("set {name} address {mac}"), msg)
            .await
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> SysResult<()> {
        let i = self.index(name).await?;
        let msg = LinkUnspec::new_with_index(i)
            .name(new_name.to_string())
            .build();
        self.set(format!("rename {name} -> {new_name}"), msg).await
    }

    pub async fn move_to_netns(&self, name: &str, target: &Path) -> SysResult<()> {
        let i = self.index(name).await?;
        let f = std::fs::File::open(target).map_err(|e| SysError::Netns {
            path: target.display().to_string(),
            msg: e.to_string(),
        })?;
        let msg = LinkUnspec::new_with_index(i)
            .setns_by_fd(f.as_raw_fd())
            .build();
        // `f` stays open until the kernel has answered.
        let r = self
            .set(format!("move {name} to {}", target.display()), msg)
            .await;
        drop(f);
        r
    }

    pub async fn delete_link(&self, name: &str) -> SysResult<bool> {
        let Some(l) = self.get_link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(l.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) => {
                let e = nl_err(format!("delete {name}"), e);
                if e.is_gone() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn set_bridge_port(&self, name: &str, flags: BridgePortFlags) -> SysResult<()> {
        let i = self.index(name).await?;
        let mut b = LinkBridgePort::new(i);
        if let Some(h) = flags.hairpin {
            b = b.hairpin(h);
        }
        if let Some(iso) = flags.isolated {
            b = b.isolated(iso);
        }
        self.handle
            .link()
            .set_port(b.build())
            .execute()
            .await
            .map_err(|e| nl_err(format!("set bridge port {name} {flags:?}"), e))
    }

    pub async fn add_addr(&self, name: &str, addr: IpNetwork) -> SysResult<()> {
        let i = self.index(name).await?;
        let mut req = self.handle.address().add(i, addr.ip(), addr.prefix());
        if addr.is_ipv6() {
            // Usable at once: no duplicate address detection (we own the subnet).
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = nl_err(format!("add address {addr} to {name}"), e);
                if e.is_exists() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn del_addr(&self, name: &str, addr: IpNetwork) -> SysResult<bool> {
        let i = self.index(name).await?;
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(i)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list addresses", e))?;
        for m in msgs {
            if addr_of(&m) == Some(addr) {
                self.handle
                    .address()
                    .del(m)
                    .execute()
                    .await
                    .map_err(|e| nl_err(format!("delete address {addr}"), e))?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn list_addrs(&self) -> SysResult<Vec<AddrState>> {
        let msgs: Vec<_> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list addresses", e))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                addr_of(m).map(|addr| AddrState {
                    index: m.header.index,
                    addr,
                })
            })
            .collect())
    }

    pub async fn replace_route(
        &self,
        dst: IpNetwork,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> SysResult<()> {
        let op = format!("replace route {dst} via {via:?} dev {dev:?}");
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.network(), dst.prefix())
            .map_err(|e| route_err(&op, e))?;
        if let Some(gw) = via {
            b = b.gateway(gw).map_err(|e| route_err(&op, e))?;
        }
        if let Some(d) = dev {
            b = b.output_interface(self.index(d).await?);
        }
        self.handle
            .route()
            .add(b.build())
            .replace()
            .execute()
            .await
            .map_err(|e| nl_err(op, e))
    }

    pub async fn del_route(&self, dst: IpNetwork, via: Option<IpAddr>) -> SysResult<bool> {
        let op = format!("delete route {dst} via {via:?}");
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.network(), dst.prefix())
            .map_err(|e| route_err(&op, e))?;
        if let Some(gw) = via {
            b = b.gateway(gw).map_err(|e| route_err(&op, e))?;
        }
        match self.handle.route().del(b.build()).execute().await {
            Ok(()) => Ok(true),
            Err(e) => {
                let e = nl_err(op, e);
                if e.is_gone() {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Main-table unicast routes, v4 then v6.
    pub async fn list_routes(&self) -> SysResult<Vec<RouteState>> {
        let mut out = Vec::new();
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
        for q in [v4, v6] {
            let msgs: Vec<_> = self
                .handle
                .route()
                .get(q)
                .execute()
                .try_collect()
                .await
                .map_err(|e| nl_err("list routes", e))?;
            for m in msgs {
                let table = m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Table(t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(m.header.table as u32);
                if table != RouteHeader::RT_TABLE_MAIN as u32 || m.header.kind != RouteType::Unicast
                {
                    continue;
                }
                let mut dst = None;
                let mut gateway = None;
                let mut oif = None;
                for a in &m.attributes {
                    match a {
                        RouteAttribute::Destination(r) => dst = route_ip(r),
                        RouteAttribute::Gateway(r) => gateway = route_ip(r),
                        RouteAttribute::Oif(i) => oif = Some(*i),
                        _ => {}
                    }
                }
                let is_v6 = matches!(
                    m.header.address_family,
                    rtnetlink::packet_route::AddressFamily::Inet6
                );
                let dst_ip = dst.unwrap_or(if is_v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                });
                if let Ok(destination) = IpNetwork::new(dst_ip, m.header.destination_prefix_length)
                {
                    out.push(RouteState {
                        destination,
                        gateway,
                        oif,
                    });
                }
            }
        }
        Ok(out)
    }
}

fn route_err(op: &str, e: impl std::fmt::Display) -> SysError {
    SysError::Netlink {
        op: op.to_string(),
        msg: e.to_string(),
        errno: Some(libc::EINVAL),
    }
}

fn route_ip(r: &RouteAddress) -> Option<IpAddr> {
    match r {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn addr_of(m: &rtnetlink::packet_route::address::AddressMessage) -> Option<IpNetwork> {
    // IPv4: IFA_LOCAL is the interface's own address (IFA_ADDRESS may be the
    // peer on point-to-point links). IPv6 only has IFA_ADDRESS.
    let mut address = None;
    let mut local = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Local(ip) => local = Some(*ip),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    IpNetwork::new(ip, m.header.prefix_len).ok()
}

fn link_state(m: &LinkMessage) -> LinkState {
    let mut l = LinkState {
        index: m.header.index,
        up: m.header.flags.contains(LinkFlags::Up),
        ..Default::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::Address(b) if b.len() == 6 => l.mac = Some(format_mac(b)),
            LinkAttribute::Mtu(v) => l.mtu = Some(*v),
            LinkAttribute::Controller(c) => l.master = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        l.kind = Some(kind_name(k));
                    }
                }
            }
            _ => {}
        }
    }
    l
}

fn kind_name(k: &InfoKind) -> String {
    match k {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Veth => "veth".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// `02:42:` and four random bytes.
fn random_mac() -> [u8; 6] {
    let mut m = [0x02, 0x42, 0, 0, 0, 0];
    // SAFETY: getrandom writes at most the 4 bytes it is given.
    let n = unsafe { libc::getrandom(m[2..].as_mut_ptr().cast(), 4, 0) };
    if n != 4 {
        // No entropy source answering: derive from the time (still unique enough
        // for a bridge that only needs to differ from its ports).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        m[2..].copy_from_slice(&t.to_be_bytes());
    }
    m
}
