//! A blocking rtnetlink socket for the short-lived namespace threads, and the
//! executor of [`NsOp`] batches on it.
//!
//! Why: configuring an interface inside a sandbox used to cost one std
//! thread, one `setns` and one tokio-registered socket *per call* (rename,
//! sysctl, MAC, each address, up, each route). Here one thread joins the
//! namespace once, opens one plain (blocking) netlink socket and runs the
//! whole batch in order: request, wait for the kernel's answer, next. No
//! tokio reactor is involved, so it works on any thread. Link names are
//! resolved with one `RTM_GETLINK` by name (never a dump) and cached for the
//! batch.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket};
use rtnetlink::{AddressMessageBuilder, LinkUnspec, RouteMessageBuilder};

use super::{format_mac, parse_mac, sysctl_path, NsOp, SysError, SysResult};

/// One blocking NETLINK_ROUTE socket, bound to the namespace of the thread
/// that opened it (for life).
pub struct SyncNetlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// name -> (index, MAC) for links looked up during this batch.
    links: HashMap<String, (u32, Option<String>)>,
    /// The private procfs for sysctls: not asked for yet / unavailable / held.
    proc: Option<Option<Arc<OwnedFd>>>,
}

/// How many sysctl batches share one private procfs instance before a new one is made.
const PROC_REUSE: u32 = 64;

/// The private procfs instance sysctl writes go through, shared by all namespace
/// threads and replaced every [`PROC_REUSE`] uses. Why shared: releasing an instance
/// unmounts it, and that costs time proportional to the mounts in the daemon's mount
/// namespace (one per sandbox under the netns directory: 25 us at 10 sandboxes,
/// 100–400 us at 500). Why replaced: each namespace that looks a sysctl up leaves
/// entries in the instance's dentry chains (see [`private_proc`]), so a forever
/// instance would slow lookups down as sandboxes come and go. With a new one every 64
/// batches, chains stay at most 64 long and the unmount is paid once per 64.
fn shared_proc() -> Option<Arc<OwnedFd>> {
    static PROC: std::sync::Mutex<Option<(Arc<OwnedFd>, u32)>> = std::sync::Mutex::new(None);
    let mut g = PROC.lock().unwrap_or_else(|e| e.into_inner());
    match g.as_mut() {
        Some((fd, uses)) if *uses < PROC_REUSE => {
            *uses += 1;
            Some(fd.clone())
        }
        _ => {
            // The old instance (if any) goes when its last user is done.
            let fd = Arc::new(private_proc().ok()?);
            *g = Some((fd.clone(), 1));
            Some(fd)
        }
    }
}

/// A new, unattached procfs instance (`fsopen("proc")` + `fsmount`), as a
/// directory fd. Why: every lookup below `/proc/sys/net` walks a dentry hash
/// chain holding one `net` entry per network namespace that was ever looked
/// up through that procfs (0.4 us each, under a global lock): with 500
/// sandboxes a sysctl write costs ~0.2 ms more than with 10. A young instance
/// has few dentries, so the walk is short whatever the number of namespaces
/// (see [`shared_proc`]); it is released when the last fd closes. The
/// namespace is still the calling thread's (procfs resolves /proc/sys/net
/// against the caller).
fn private_proc() -> std::io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: raw syscalls with valid arguments; every fd returned is owned.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC);
        if fs < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fs = OwnedFd::from_raw_fd(fs as i32);
        let nul: *const libc::c_char = std::ptr::null();
        if libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            nul,
            nul,
            0,
        ) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let m = libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0);
        if m < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(m as i32))
    }
}

fn errno_err(op: &str, errno: i32) -> SysError {
    SysError::Netlink {
        op: op.to_string(),
        msg: std::io::Error::from_raw_os_error(errno).to_string(),
        errno: Some(errno),
    }
}

fn bad_route(op: &str, e: impl std::fmt::Display) -> SysError {
    SysError::Netlink {
        op: op.to_string(),
        msg: e.to_string(),
        errno: Some(libc::EINVAL),
    }
}

impl SyncNetlink {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> SysResult<SyncNetlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        // Kernel answers to a request on this socket only; no multicast groups.
        Ok(SyncNetlink {
            sock,
            seq: 0,
            buf: vec![0u8; 64 * 1024],
            links: HashMap::new(),
            proc: None,
        })
    }

    /// Send one request and collect the kernel's answer up to the ACK (or the
    /// error). Returns the non-ACK messages (e.g. a `NewLink` for a GETLINK).
    fn request(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> SysResult<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut out = vec![0u8; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| SysError::Netlink {
                        op: op.to_string(),
                        msg: format!("bad netlink answer: {e}"),
                        errno: None,
                    })?;
                let len = m.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(c) => Err(errno_err(op, c.get().abs())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(r) => replies.push(r),
                    _ => {}
                }
            }
        }
    }

    /// Look a link up by name with one `RTM_GETLINK` (no dump); `None` if absent.
    pub fn link(&mut self, name: &str) -> SysResult<Option<(u32, Option<String>)>> {
        if let Some(l) = self.links.get(name) {
            return Ok(Some(l.clone()));
        }
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let op = format!("get link {name}");
        match self.request(&op, RouteNetlinkMessage::GetLink(m), 0) {
            Ok(replies) => {
                for r in replies {
                    if let RouteNetlinkMessage::NewLink(l) = r {
                        let mac = l.attributes.iter().find_map(|a| match a {
                            LinkAttribute::Address(b) if b.len() == 6 => Some(format_mac(b)),
                            _ => None,
                        });
                        let v = (l.header.index, mac);
                        self.links.insert(name.to_string(), v.clone());
                        return Ok(Some(v));
                    }
                }
                Ok(None)
            }
            Err(e) if e.is_gone() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn index(&mut self, name: &str) -> SysResult<u32> {
        self.link(name)?
            .map(|l| l.0)
            .ok_or_else(|| SysError::LinkNotFound(name.to_string()))
    }

    fn set_link(&mut self, op: &str, msg: LinkMessage) -> SysResult<()> {
        self.request(op, RouteNetlinkMessage::SetLink(msg), 0)
            .map(drop)
    }

    pub fn set_up(&mut self, name: &str, up: bool) -> SysResult<()> {
        let i = self.index(name)?;
        let b = LinkUnspec::new_with_index(i);
        let b = if up { b.up() } else { b.down() };
        self.set_link(&format!("set {name} up={up}"), b.build())
    }

    /// Set the MAC; skipped when the link already has it.
    pub fn set_mac(&mut self, name: &str, mac: &str) -> SysResult<()> {
        let op = format!("set {name} address {mac}");
        let bytes = parse_mac(mac).ok_or_else(|| SysError::Netlink {
            op: op.clone(),
            msg: format!("bad MAC {mac:?}"),
            errno: Some(libc::EINVAL),
        })?;
        let (i, cur) = self
            .link(name)?
            .ok_or_else(|| SysError::LinkNotFound(name.to_string()))?;
        if cur.as_deref() == Some(format_mac(&bytes).as_str()) {
            return Ok(());
        }
        let msg = LinkUnspec::new_with_index(i)
            .address(bytes.to_vec())
            .build();
        self.set_link(&op, msg)?;
        self.links
            .insert(name.to_string(), (i, Some(format_mac(&bytes))));
        Ok(())
    }

    pub fn rename(&mut self, name: &str, new_name: &str) -> SysResult<()> {
        let (i, mac) = self
            .link(name)?
            .ok_or_else(|| SysError::LinkNotFound(name.to_string()))?;
        let msg = LinkUnspec::new_with_index(i)
            .name(new_name.to_string())
            .build();
        self.set_link(&format!("rename {name} -> {new_name}"), msg)?;
        self.links.remove(name);
        self.links.insert(new_name.to_string(), (i, mac));
        Ok(())
    }

    /// Add an address; one that is already there is fine. IPv6 gets `nodad`.
    pub fn add_addr(&mut self, name: &str, addr: ipnetwork::IpNetwork) -> SysResult<()> {
        let i = self.index(name)?;
        let mut msg = match addr.ip() {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(i)
                .address(a, addr.prefix())
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(i)
                .address(a, addr.prefix())
                .build(),
        };
        if addr.is_ipv6() {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        let op = format!("add address {addr} to {name}");
        match self.request(
            &op,
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if !e.is_exists() => Err(e),
            _ => Ok(()),
        }
    }

    fn route_msg(
        &mut self,
        op: &str,
        dst: ipnetwork::IpNetwork,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> SysResult<rtnetlink::packet_route::route::RouteMessage> {
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(dst.network(), dst.prefix())
            .map_err(|e| bad_route(op, e))?;
        if let Some(gw) = via {
            b = b.gateway(gw).map_err(|e| bad_route(op, e))?;
        }
        if let Some(d) = dev {
            b = b.output_interface(self.index(d)?);
        }
        Ok(b.build())
    }

    /// Add or replace a main-table route.
    pub fn replace_route(
        &mut self,
        dst: ipnetwork::IpNetwork,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> SysResult<()> {
        let op = format!("replace route {dst} via {via:?} dev {dev:?}");
        let msg = self.route_msg(&op, dst, via, dev)?;
        self.request(
            &op,
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Delete a route; `Ok(false)` if it was not there.
    pub fn del_route(&mut self, dst: ipnetwork::IpNetwork, via: Option<IpAddr>) -> SysResult<bool> {
        let op = format!("delete route {dst} via {via:?}");
        let msg = self.route_msg(&op, dst, via, None)?;
        match self.request(&op, RouteNetlinkMessage::DelRoute(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if e.is_gone() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Write a sysctl of the calling thread's namespace. Through a private procfs
    /// instance when the kernel allows it (see [`private_proc`]), else /proc/sys.
    fn write_sysctl(&mut self, key: &str, value: &str) -> SysResult<()> {
        let err = |e: std::io::Error| SysError::Sysctl {
            key: key.to_string(),
            msg: e.to_string(),
        };
        let path = sysctl_path(key)?;
        if self.proc.is_none() {
            self.proc = Some(shared_proc());
        }
        if let Some(Some(dir)) = &self.proc {
            let rel = path.strip_prefix("/proc").unwrap_or(&path);
            let rel = std::ffi::CString::new(rel.as_os_str().as_bytes())
                .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
            // SAFETY: plain syscalls on fds we own; `rel` outlives the call.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    rel.as_ptr(),
                    libc::O_WRONLY | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(err(std::io::Error::last_os_error()));
            }
            // SAFETY: `fd` was just opened and is owned here.
            let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
            return f.write_all(value.as_bytes()).map_err(err);
        }
        std::fs::write(&path, value).map_err(err)
    }

    /// Run `ops` in order. Must be called on a thread that is in the target
    /// namespace (sysctl files under /proc/sys/net resolve against it).
    pub fn run(&mut self, ops: &[NsOp]) -> SysResult<()> {
        for op in ops {
            match op {
                NsOp::Sysctl { key, value } => {
                    let r = self.write_sysctl(key, value);
                    if let Err(e) = r {
                        tracing::debug!(error = %e, key, "sysctl in namespace (ignored)");
                    }
                }
                NsOp::Rename { name, new_name } => self.rename(name, new_name)?,
                NsOp::SetMac { name, mac } => self.set_mac(name, mac)?,
                NsOp::AddAddr { name, addr } => self.add_addr(name, *addr)?,
                NsOp::SetUp { name, up } => self.set_up(name, *up)?,
                NsOp::ReplaceRoute { dst, via, dev } => {
                    self.replace_route(*dst, *via, dev.as_deref())?
                }
                NsOp::DelRoute { dst, via } => {
                    self.del_route(*dst, *via)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a throwaway namespace (root only): a batch brings `lo` up and writes a
    /// sysctl (through the private procfs when available); the ordinary /proc/sys
    /// shows the value, loopback traffic flows, and a missing link is `None`.
    #[test]
    fn batch_in_a_fresh_namespace() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP batch_in_a_fresh_namespace: needs root");
            return;
        }
        let r = std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let mut nl = SyncNetlink::open().unwrap();
            nl.run(&[
                NsOp::Sysctl {
                    key: "net/ipv6/conf/lo/disable_ipv6".into(),
                    value: "1".into(),
                },
                NsOp::SetUp {
                    name: "lo".into(),
                    up: true,
                },
            ])
            .unwrap();
            let v = std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6");
            // lo is up: a datagram to ourselves on 127.0.0.1 goes through.
            let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let lo_up = u.send_to(b"x", u.local_addr().unwrap()).is_ok();
            let missing = SyncNetlink::open().unwrap().link("nosuch0").unwrap();
            (v, lo_up, missing, private_proc().is_ok())
        })
        .join()
        .unwrap();
        if let Ok(v) = r.0 {
            assert_eq!(v.trim(), "1");
        }
        assert!(r.1, "lo is not up");
        assert!(r.2.is_none());
        eprintln!("private procfs available: {}", r.3);
    }

    /// Past several replacements of the shared private procfs (every PROC_REUSE
    /// batches), each namespace's sysctl write still lands in that namespace: written
    /// through the shared instance, read back through the ordinary /proc.
    #[test]
    fn shared_procfs_survives_replacement() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP shared_procfs_survives_replacement: needs root");
            return;
        }
        for i in 0..(2 * PROC_REUSE + 3) {
            let want = if i % 2 == 0 { "1" } else { "0" };
            let got = std::thread::spawn(move || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                SyncNetlink::open()
                    .unwrap()
                    .write_sysctl("net/ipv6/conf/lo/disable_ipv6", want)
                    .unwrap();
                std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6").ok()
            })
            .join()
            .unwrap();
            if let Some(v) = got {
                assert_eq!(v.trim(), want, "batch {i}");
            }
        }
    }
}
