//! `sys`: the only part of netd's drivers that touches the kernel.
//!
//! Everything here is a small typed call: netlink through rtnetlink (never the
//! `ip` binary), nftables through the `nft -j -f -` binary with stderr
//! captured, sysctls through /proc/sys, and network namespaces through
//! `unshare`/`setns` on dedicated std threads (never on a tokio worker).
//!
//! Driver logic talks to the [`Sys`] trait so it can be unit-tested against
//! [`fake::FakeSys`], a recorder; the daemon passes [`real::RealSys`] in.
//!
//! Namespaces are named with [`Ns`]: `Ns::Host` is the namespace the
//! [`real::RealSys`] was built for (normally the daemon's own; tests use an
//! isolated one), `Ns::Path` any other namespace file (a sandbox).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use serde::Serialize;

pub mod conntrack;
pub mod fake;
pub mod netlink;
pub mod netns;
pub mod nfnl;
pub mod nft;
pub mod nlsync;
pub mod placement;
pub mod real;

pub use netns::{create_netns, delete_netns, ensure_netns_dir, run_in_netns};

/// Which network namespace a call acts in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ns {
    /// The namespace the `Sys` implementation treats as the host.
    Host,
    /// A namespace file (bind mount, `/proc/PID/ns/net`, ...).
    Path(PathBuf),
}

impl Ns {
    pub fn path(p: impl AsRef<Path>) -> Ns {
        Ns::Path(p.as_ref().to_path_buf())
    }
}

impl std::fmt::Display for Ns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ns::Host => f.write_str("host"),
            Ns::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Errors from kernel calls. `errno` is kept so callers can treat EEXIST /
/// ENOENT / ENODEV as "already done".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SysError {
    #[error("netlink {op}: {msg}")]
    Netlink {
        op: String,
        msg: String,
        errno: Option<i32>,
    },
    #[error("link {0:?} not found")]
    LinkNotFound(String),
    #[error("nft: {0}")]
    Nft(String),
    #[error("netns {path}: {msg}")]
    Netns { path: String, msg: String },
    #[error("sysctl {key}: {msg}")]
    Sysctl { key: String, msg: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl SysError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            SysError::Netlink { errno, .. } => *errno,
            SysError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
    /// The object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
    /// The object is gone (ENOENT, ENODEV, ESRCH, EADDRNOTAVAIL, or a link lookup miss).
    pub fn is_gone(&self) -> bool {
        matches!(self, SysError::LinkNotFound(_))
            || matches!(
                self.errno(),
                Some(libc::ENOENT | libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL)
            )
    }
}

impl From<SysError> for crate::DriverError {
    fn from(e: SysError) -> Self {
        match e {
            SysError::LinkNotFound(n) => crate::DriverError::NotFound(format!("link {n}")),
            other => crate::DriverError::Kernel(other.to_string()),
        }
    }
}

pub type SysResult<T> = std::result::Result<T, SysError>;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    /// Index of the master (bridge) if enslaved.
    pub master: Option<u32>,
    /// `bridge`, `veth`, ... (None for `lo` and physical devices).
    pub kind: Option<String>,
}

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddrState {
    pub index: u32,
    pub addr: IpNetwork,
}

/// A main-table unicast route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteState {
    pub destination: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

/// Bridge port flags (`ip link set DEV type bridge_slave hairpin on isolated on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BridgePortFlags {
    pub hairpin: Option<bool>,
    pub isolated: Option<bool>,
}

/// One step of a [`Sys::batch`]: the in-namespace work of attaching an
/// interface (rename, sysctls, MAC, addresses, up) and of routing, so that a
/// whole attachment costs one namespace entry and one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsOp {
    /// Write a sysctl (key as for [`Sys::sysctl_set`]). Best effort: a
    /// failure is logged and ignored (e.g. the kernel has IPv6 off).
    Sysctl {
        key: String,
        value: String,
    },
    Rename {
        name: String,
        new_name: String,
    },
    /// Set the MAC (may be skipped when the link already has it).
    SetMac {
        name: String,
        mac: String,
    },
    /// Add an address (existing is fine; IPv6 `nodad`).
    AddAddr {
        name: String,
        addr: IpNetwork,
    },
    SetUp {
        name: String,
        up: bool,
    },
    /// Add or replace a route; `dev` None lets the kernel pick by gateway.
    ReplaceRoute {
        dst: IpNetwork,
        via: Option<IpAddr>,
        dev: Option<String>,
    },
    /// Delete a route; a missing one is fine.
    DelRoute {
        dst: IpNetwork,
        via: Option<IpAddr>,
    },
}

/// Run `ops` one by one through the single-call methods of `sys` (the
/// default [`Sys::batch`]; also what the real one does in the host namespace).
pub async fn batch_one_by_one<S: Sys + ?Sized>(sys: &S, ns: &Ns, ops: &[NsOp]) -> SysResult<()> {
    for op in ops {
        match op {
            NsOp::Sysctl { key, value } => {
                if let Err(e) = sys.sysctl_set(ns, key, value).await {
                    tracing::debug!(error = %e, key, "sysctl (ignored)");
                }
            }
            NsOp::Rename { name, new_name } => sys.rename(ns, name, new_name).await?,
            NsOp::SetMac { name, mac } => sys.set_mac(ns, name, mac).await?,
            NsOp::AddAddr { name, addr } => sys.add_addr(ns, name, *addr).await?,
            NsOp::SetUp { name, up } => sys.set_up(ns, name, *up).await?,
            NsOp::ReplaceRoute { dst, via, dev } => {
                sys.replace_route(ns, *dst, *via, dev.as_deref()).await?
            }
            NsOp::DelRoute { dst, via } => match sys.del_route(ns, *dst, *via).await {
                Ok(_) => {}
                Err(e) if e.is_gone() => {}
                Err(e) => return Err(e),
            },
        }
    }
    Ok(())
}

/// The kernel facade. Every call names the namespace it acts in.
/// Implementations open what they need per call (a netns may vanish at any
/// time), except a connection to the host namespace, which never goes stale.
#[async_trait]
pub trait Sys: Send + Sync {
    async fn get_link(&self, ns: &Ns, name: &str) -> SysResult<Option<LinkState>>;
    async fn list_links(&self, ns: &Ns) -> SysResult<Vec<LinkState>>;
    async fn create_bridge(&self, ns: &Ns, name: &str, mtu: Option<u32>) -> SysResult<()>;
    async fn create_veth(&self, ns: &Ns, name: &str, peer: &str, mtu: Option<u32>)
        -> SysResult<()>;
    async fn set_up(&self, ns: &Ns, name: &str, up: bool) -> SysResult<()>;
    async fn set_mtu(&self, ns: &Ns, name: &str, mtu: u32) -> SysResult<()>;
    /// Enslave `name` to `master`, or release it (`None`).
    async fn set_master(&self, ns: &Ns, name: &str, master: Option<&str>) -> SysResult<()>;
    async fn set_mac(&self, ns: &Ns, name: &str, mac: &str) -> SysResult<()>;
    async fn rename(&self, ns: &Ns, name: &str, new_name: &str) -> SysResult<()>;
    /// Move a link into the namespace at `target`.
    async fn move_to_netns(&self, ns: &Ns, name: &str, target: &Path) -> SysResult<()>;
    /// Delete a link; `Ok(false)` if it did not exist.
    async fn delete_link(&self, ns: &Ns, name: &str) -> SysResult<bool>;
    async fn set_bridge_port(&self, ns: &Ns, name: &str, flags: BridgePortFlags) -> SysResult<()>;
    /// Add an address (existing is fine). IPv6 addresses are added `nodad`.
    async fn add_addr(&self, ns: &Ns, name: &str, addr: IpNetwork) -> SysResult<()>;
    /// Delete an address; `Ok(false)` if it was not there.
    async fn del_addr(&self, ns: &Ns, name: &str, addr: IpNetwork) -> SysResult<bool>;
    async fn list_addrs(&self, ns: &Ns) -> SysResult<Vec<AddrState>>;
    /// Add or replace a route. `dev` None lets the kernel pick by gateway.
    async fn replace_route(
        &self,
        ns: &Ns,
        dst: IpNetwork,
        via: Option<IpAddr>,
        dev: Option<&str>,
    ) -> SysResult<()>;
    /// Delete a route; `Ok(false)` if it was not there.
    async fn del_route(&self, ns: &Ns, dst: IpNetwork, via: Option<IpAddr>) -> SysResult<bool>;
    async fn list_routes(&self, ns: &Ns) -> SysResult<Vec<RouteState>>;
    /// Run `ops` in order inside `ns`, stopping at the first error (the
    /// steps before it stay done). The real implementation enters a sandbox
    /// namespace once and uses one socket for all of them; the default runs
    /// the single-call methods one by one.
    async fn batch(&self, ns: &Ns, ops: &[NsOp]) -> SysResult<()> {
        batch_one_by_one(self, ns, ops).await
    }
    /// Read a sysctl (`net.ipv4.ip_forward` form), trimmed.
    async fn sysctl_get(&self, ns: &Ns, key: &str) -> SysResult<String>;
    async fn sysctl_set(&self, ns: &Ns, key: &str, value: &str) -> SysResult<()>;
    /// Apply one nft JSON batch atomically (`nft -j -f -`).
    async fn nft_apply(&self, ns: &Ns, batch: &nftables::schema::Nftables<'_>) -> SysResult<()>;
    /// Run `nft -j <args>` (e.g. `list table inet netd`) and parse stdout as
    /// raw JSON (raw so that rules we cannot model, e.g. iptables `xt`
    /// matches, never make the listing fail). `Ok(None)` when nft says the
    /// object does not exist.
    async fn nft_list(&self, ns: &Ns, args: &[&str]) -> SysResult<Option<serde_json::Value>>;
    /// Apply an nft script in the text syntax (`nft -f -`), one transaction.
    /// Only for what nft 1.0.6's JSON parser cannot express: maps whose data
    /// is a concatenation (`ipv4_addr . inet_service`).
    async fn nft_apply_text(&self, ns: &Ns, script: &str) -> SysResult<()>;
    /// Delete the conntrack entries matching `filter` (ctnetlink); returns how
    /// many were deleted.
    async fn conntrack_delete(&self, ns: &Ns, filter: &conntrack::CtFilter) -> SysResult<usize>;
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0;
    for (i, part) in mac.split(':').enumerate() {
        if i >= 6 || part.len() != 2 {
            return None;
        }
        out[i] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

pub fn format_mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward`. A key that
/// contains `/` is taken as a path below /proc/sys as is (for interface
/// names with dots: `net/ipv6/conf/br.10/disable_ipv6`). Refuses `..`.
pub fn sysctl_path(key: &str) -> SysResult<PathBuf> {
    if key.is_empty() || key.contains("..") || key.starts_with('/') {
        return Err(SysError::Sysctl {
            key: key.into(),
            msg: "bad key".into(),
        });
    }
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    Ok(Path::new("/proc/sys").join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_roundtrip() {
        let m = parse_mac("02:42:0a:00:00:02").unwrap();
        assert_eq!(m, [2, 0x42, 10, 0, 0, 2]);
        assert_eq!(format_mac(&m), "02:42:0a:00:00:02");
        assert!(parse_mac("02:42:0a:00:00").is_none());
        assert!(parse_mac("02:42:0a:00:00:02:03").is_none());
        assert!(parse_mac("zz:42:0a:00:00:02").is_none());
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert!(sysctl_path("net..x").is_err());
    }
}
