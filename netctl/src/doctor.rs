//! `netctl doctor`: checks this machine for what netd needs (the nft binary and
//! nf_tables, bridge and veth support, forwarding, the Docker plugin folder, netd's
//! socket and the daemon itself) and says how to fix what is missing. Prints one line
//! per check (OK, INFO, WARN or FAIL); exits 1 when any check FAILs.
//!
//! Read-only except for one probe: as root it creates a bridge and a veth pair inside
//! a throwaway network namespace (`unshare --net`), which vanishes with the probe.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::client::{socket_path, Client};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Info,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Info => "INFO",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(
    name: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<&str>,
) -> Check {
    Check {
        name,
        status,
        detail: detail.into(),
        fix: fix.map(String::from),
    }
}

/// Run a command; Ok(stdout) on exit 0, Err(stderr or the spawn error) otherwise.
fn cmd(prog: &str, args: &[&str]) -> Result<String, String> {
    match Command::new(prog).args(args).stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!(
            "exit {}: {}",
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn read_trim(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn kernel() -> Check {
    let rel = read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into());
    let who = if is_root() {
        "root"
    } else {
        "not root: some checks are limited"
    };
    check(
        "kernel",
        Status::Info,
        format!("Linux {rel}; running as {who}"),
        None,
    )
}

fn nft_binary() -> Check {
    match cmd("nft", &["--version"]) {
        Ok(v) => check("nft binary", Status::Ok, v, None),
        Err(e) => check(
            "nft binary",
            Status::Fail,
            format!("nft not usable: {e}"),
            Some("apt-get install -y nftables"),
        ),
    }
}

fn nf_tables() -> Check {
    if !is_root() {
        return check(
            "nf_tables",
            Status::Warn,
            "not tested (needs root)",
            Some("run `sudo netctl doctor`"),
        );
    }
    match cmd("nft", &["list", "tables"]) {
        Ok(t) => check(
            "nf_tables",
            Status::Ok,
            format!("kernel answers `nft list tables` ({} tables)", t.lines().count()),
            None,
        ),
        Err(e) => check(
            "nf_tables",
            Status::Fail,
            format!("`nft list tables` failed: {e}"),
            Some("modprobe nf_tables (the kernel needs CONFIG_NF_TABLES, CONFIG_NFT_NAT, CONFIG_NFT_MASQ)"),
        ),
    }
}

fn bridge_veth() -> Check {
    let loaded = |m: &str| Path::new(&format!("/sys/module/{m}")).exists();
    if !is_root() {
        let (b, v) = (loaded("bridge"), loaded("veth"));
        return if b && v {
            check("bridge and veth", Status::Ok, "modules loaded", None)
        } else {
            check(
                "bridge and veth",
                Status::Warn,
                format!("bridge loaded: {b}, veth loaded: {v}; not probed (needs root)"),
                Some("modprobe bridge veth (they also load on demand)"),
            )
        };
    }
    // A throwaway namespace: everything in it disappears when the shell exits.
    let probe = "ip link add nd-doctor-br type bridge && \
                 ip link add nd-doctor-v0 type veth peer name nd-doctor-v1 && \
                 ip link set nd-doctor-v0 master nd-doctor-br && \
                 ip link del nd-doctor-v0 && ip link del nd-doctor-br";
    match cmd("unshare", &["--net", "sh", "-c", probe]) {
        Ok(_) => check(
            "bridge and veth",
            Status::Ok,
            "created a bridge and a veth pair in a throwaway namespace",
            None,
        ),
        Err(e) => check(
            "bridge and veth",
            Status::Fail,
            format!("probe in a throwaway namespace failed: {e}"),
            Some("modprobe bridge veth; the kernel needs CONFIG_BRIDGE and CONFIG_VETH (and util-linux's unshare, iproute2's ip for this probe)"),
        ),
    }
}

fn ip_forward() -> Check {
    match read_trim("/proc/sys/net/ipv4/ip_forward").as_deref() {
        Some("1") => {
            let v6 = read_trim("/proc/sys/net/ipv6/conf/all/forwarding").unwrap_or_default();
            check("ip_forward", Status::Ok, format!("net.ipv4.ip_forward=1 (ipv6 forwarding={v6})"), None)
        }
        Some(v) => check(
            "ip_forward",
            Status::Warn,
            format!("net.ipv4.ip_forward={v}: containers reach nothing beyond the host until it is 1 (netd turns it on when it creates a bridge network)"),
            Some("sysctl -w net.ipv4.ip_forward=1; persist it in /etc/sysctl.d/99-netd.conf"),
        ),
        None => check("ip_forward", Status::Fail, "cannot read /proc/sys/net/ipv4/ip_forward", Some("mount /proc")),
    }
}

fn br_netfilter() -> Check {
    if Path::new("/sys/module/br_netfilter").exists() {
        let v =
            read_trim("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap_or_else(|| "?".into());
        check(
            "br_netfilter",
            Status::Info,
            format!("loaded, bridge-nf-call-iptables={v}: bridged traffic also crosses the ip/inet hooks (Docker loads it; netd works either way)"),
            None,
        )
    } else {
        check(
            "br_netfilter",
            Status::Info,
            "not loaded (fine for netd; Docker loads it for its own isolation)",
            None,
        )
    }
}

fn tools() -> Check {
    let missing: Vec<&str> = ["nsenter", "ip"]
        .into_iter()
        .filter(|t| cmd(t, &["-V"]).is_err() && cmd(t, &["--version"]).is_err())
        .collect();
    if missing.is_empty() {
        check(
            "tools",
            Status::Ok,
            "nsenter (per-sandbox nft rules) and ip (explain subnet) found",
            None,
        )
    } else {
        check(
            "tools",
            if missing.contains(&"nsenter") {
                Status::Fail
            } else {
                Status::Warn
            },
            format!("missing: {}", missing.join(", ")),
            Some("apt-get install -y util-linux iproute2"),
        )
    }
}

fn plugin_dir() -> Check {
    let d = Path::new("/run/docker/plugins");
    if d.is_dir() {
        let sock = d.join("netd.sock");
        let detail = if sock.exists() {
            "exists, with netd.sock (Docker can use `--driver netd --ipam-driver netd`)".to_string()
        } else {
            "exists; no netd.sock in it (netd runs with another --docker-plugin-socket or none)"
                .to_string()
        };
        check("plugin folder", Status::Ok, detail, None)
    } else {
        check(
            "plugin folder",
            Status::Warn,
            "/run/docker/plugins is missing: Docker will not find netd's plugin",
            Some("needed only with Docker: netd creates it at start (default --docker-plugin-socket)"),
        )
    }
}

/// Mode and owner rule for netd's socket: 0660, root-owned.
pub fn socket_verdict(is_socket: bool, mode: u32, uid: u32) -> (Status, String) {
    let perm = mode & 0o7777;
    if !is_socket {
        return (Status::Fail, "exists but is not a socket".into());
    }
    let mut bad = Vec::new();
    if perm != 0o660 {
        bad.push(format!("mode {perm:04o} (want 0660)"));
    }
    if uid != 0 {
        bad.push(format!("owner uid {uid} (want root)"));
    }
    if bad.is_empty() {
        (Status::Ok, "mode 0660, owner root".into())
    } else {
        (Status::Warn, bad.join(", "))
    }
}

fn socket(host: &str) -> Check {
    let p = socket_path(host);
    match std::fs::metadata(&p) {
        Ok(m) => {
            let (st, d) = socket_verdict(m.file_type().is_socket(), m.mode(), m.uid());
            check(
                "netd socket",
                st,
                format!("{p}: {d}"),
                (st != Status::Ok).then_some(
                    "chown root: SOCKET && chmod 0660 SOCKET (netd sets both at start; restart it)",
                ),
            )
        }
        Err(e) => check(
            "netd socket",
            Status::Fail,
            format!("{p}: {e}"),
            Some(
                "start netd: `systemctl start netd` (contrib/netd.service) or `netd --socket PATH`",
            ),
        ),
    }
}

fn daemon(host: &str) -> Check {
    let c = match Client::new(host) {
        Ok(c) => c,
        Err(e) => return check("daemon", Status::Fail, e.to_string(), None),
    };
    match c.get::<plugin_api::rest::VersionInfo>("/version") {
        Ok(v) => check(
            "daemon",
            Status::Ok,
            format!("netd {} answers (API {})", v.version, v.api_version),
            None,
        ),
        Err(e) => check(
            "daemon",
            Status::Fail,
            format!("{e:#}"),
            Some("start netd and read its log: `journalctl -u netd`"),
        ),
    }
}

/// Every check, in order.
pub fn checks(host: &str) -> Vec<Check> {
    vec![
        kernel(),
        nft_binary(),
        nf_tables(),
        bridge_veth(),
        ip_forward(),
        br_netfilter(),
        tools(),
        plugin_dir(),
        socket(host),
        daemon(host),
    ]
}

/// Print the checks; the exit code is 1 when one failed.
pub fn run(host: &str, json: bool) -> i32 {
    let v = checks(host);
    if json {
        crate::print::json(&v);
    } else {
        for c in &v {
            println!("[{:>4}] {:<16} {}", c.status.label(), c.name, c.detail);
            if let Some(f) = &c.fix {
                println!("       {:<16} fix: {f}", "");
            }
        }
    }
    let fails = v.iter().filter(|c| c.status == Status::Fail).count();
    if !json {
        let warns = v.iter().filter(|c| c.status == Status::Warn).count();
        println!("{} checks: {fails} failed, {warns} warnings", v.len());
    }
    i32::from(fails > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_rules() {
        assert_eq!(socket_verdict(true, 0o140660, 0).0, Status::Ok);
        let (s, d) = socket_verdict(true, 0o140666, 0);
        assert_eq!(s, Status::Warn);
        assert!(d.contains("0666"), "{d}");
        let (s, d) = socket_verdict(true, 0o140660, 1000);
        assert_eq!(s, Status::Warn);
        assert!(d.contains("uid 1000"), "{d}");
        assert_eq!(socket_verdict(false, 0o100660, 0).0, Status::Fail);
    }

    #[test]
    fn missing_daemon_fails() {
        let d = tempfile_path();
        let c = socket(&d);
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.is_some());
        assert_eq!(daemon(&d).status, Status::Fail);
    }

    fn tempfile_path() -> String {
        format!("/tmp/netctl-doctor-missing-{}.sock", std::process::id())
    }
}
