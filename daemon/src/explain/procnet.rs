//! Who holds a socket on the host: `/proc/net/{tcp,tcp6,udp,udp6}` parsing (pure) and
//! the socket-inode → process map built from `/proc/*/fd`, plus the processes living in
//! a network namespace (to name a sandbox's container whatever runtime made it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

/// One socket line of `/proc/net/tcp*` or `/proc/net/udp*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockEntry {
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
    /// Kernel socket state (`0A` = TCP LISTEN, `07` = closed/unconnected).
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

pub const TCP_LISTEN: u8 = 0x0A;
pub const TCP_CLOSE: u8 = 0x07;

/// Name of a TCP state as `ss` prints it (UDP sockets show 07 = UNCONN).
pub fn state_name(tcp: bool, st: u8) -> &'static str {
    match (tcp, st) {
        (false, 0x07) => "UNCONN",
        (false, 0x01) => "ESTAB",
        (false, _) => "UDP",
        (true, 0x01) => "ESTAB",
        (true, 0x02) => "SYN-SENT",
        (true, 0x03) => "SYN-RECV",
        (true, 0x04) => "FIN-WAIT-1",
        (true, 0x05) => "FIN-WAIT-2",
        (true, 0x06) => "TIME-WAIT",
        (true, 0x07) => "BOUND",
        (true, 0x08) => "CLOSE-WAIT",
        (true, 0x09) => "LAST-ACK",
        (true, 0x0A) => "LISTEN",
        (true, 0x0B) => "CLOSING",
        (true, _) => "UNKNOWN",
    }
}

/// `0100007F:0035` → (127.0.0.1, 53). The address is the kernel's `__be32` words printed
/// as native integers, so the words go back through native byte order.
pub fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (a, p) = s.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(a.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match a.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parse the whole text of a `/proc/net/{tcp,udp}{,6}` file; bad lines are skipped.
pub fn parse_proc_net(text: &str) -> Vec<SockEntry> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let (local_ip, local_port) = parse_addr(f[1])?;
            let (remote_ip, remote_port) = parse_addr(f[2])?;
            Some(SockEntry {
                local_ip,
                local_port,
                remote_ip,
                remote_port,
                state: u8::from_str_radix(f[3], 16).ok()?,
                uid: f[7].parse().ok()?,
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// A process, as explain reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcRef {
    pub pid: u32,
    pub command: String,
    pub cmdline: String,
}

pub fn proc_ref(pid: u32) -> Option<ProcRef> {
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()?
        .trim_end()
        .to_string();
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut cmdline: String = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if cmdline.len() > 200 {
        let mut cut = 200;
        while !cmdline.is_char_boundary(cut) {
            cut -= 1;
        }
        cmdline.truncate(cut);
        cmdline.push('…');
    }
    Some(ProcRef {
        pid,
        command,
        cmdline,
    })
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The processes holding each of `inodes` open (by scanning `/proc/*/fd`).
pub fn socket_owners(inodes: &BTreeSet<u64>) -> BTreeMap<u64, Vec<u32>> {
    let mut out: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    if inodes.is_empty() {
        return out;
    }
    for pid in pids() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(ino) = link.to_str().and_then(socket_inode) {
                if inodes.contains(&ino) {
                    let v = out.entry(ino).or_default();
                    if !v.contains(&pid) {
                        v.push(pid);
                    }
                }
            }
        }
    }
    out
}

/// Sockets of this (the host's) network namespace for `proto` (`tcp` or `udp`), v4 and v6.
pub fn host_sockets(proto: &str) -> Vec<SockEntry> {
    let mut v = Vec::new();
    for suffix in ["", "6"] {
        if let Ok(t) = std::fs::read_to_string(format!("/proc/net/{proto}{suffix}")) {
            v.extend(parse_proc_net(&t));
        }
    }
    v
}

/// Up to `limit` processes whose network namespace is the one at `netns_path`.
pub fn procs_in_netns(netns_path: &str, limit: usize) -> Vec<ProcRef> {
    let Ok(ns) = std::fs::metadata(netns_path) else {
        return vec![];
    };
    let mut out = Vec::new();
    for pid in pids() {
        if let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net")) {
            if m.ino() == ns.ino() && m.dev() == ns.dev() {
                if let Some(p) = proc_ref(pid) {
                    out.push(p);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0A01A8C0:0016 6401A8C0:D431 01 00000000:00000000 02:000A7B2D 00000000  1000        0 4242 4 0000000000000000 20 4 29 10 -1
   garbage line
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 778 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_tcp4() {
        let v = parse_proc_net(TCP);
        assert_eq!(v.len(), 2);
        if cfg!(target_endian = "little") {
            assert_eq!(v[0].local_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
            assert_eq!(v[1].local_ip, "192.168.1.10".parse::<IpAddr>().unwrap());
            assert_eq!(v[1].remote_ip, "192.168.1.100".parse::<IpAddr>().unwrap());
        }
        assert_eq!(v[0].local_port, 8080);
        assert_eq!(v[0].state, TCP_LISTEN);
        assert_eq!(v[0].inode, 31337);
        assert_eq!(v[1].local_port, 22);
        assert_eq!(v[1].remote_port, 0xD431);
        assert_eq!(v[1].uid, 1000);
        assert_eq!(state_name(true, v[1].state), "ESTAB");
    }

    #[test]
    fn parses_tcp6() {
        let v = parse_proc_net(TCP6);
        assert_eq!(v.len(), 2);
        if cfg!(target_endian = "little") {
            assert_eq!(v[0].local_ip, "::1".parse::<IpAddr>().unwrap());
            assert_eq!(v[1].local_ip, "::ffff:127.0.0.1".parse::<IpAddr>().unwrap());
        }
        assert_eq!(v[0].local_port, 8080);
        assert_eq!(v[1].local_port, 80);
        assert_eq!(v[1].uid, 33);
        assert_eq!(v[1].inode, 778);
    }

    #[test]
    fn bad_addresses() {
        assert_eq!(parse_addr("0100007F"), None);
        assert_eq!(parse_addr("0100007:0035"), None);
        assert_eq!(parse_addr("XX00007F:0035"), None);
        assert_eq!(parse_addr("0100007F:FFFFF"), None);
    }

    #[test]
    fn inode_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    /// The real files parse, and a listener we open is found with our own pid.
    #[test]
    fn finds_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let socks = host_sockets("tcp");
        let mine: Vec<_> = socks
            .iter()
            .filter(|s| s.local_port == port && s.state == TCP_LISTEN)
            .collect();
        assert_eq!(mine.len(), 1, "{port} in {socks:?}");
        assert_eq!(mine[0].local_ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        let owners = socket_owners(&[mine[0].inode].into_iter().collect());
        // Other tests of this process may fork at this moment: a child holds every fd
        // between fork and exec, so it can show up as a second owner for an instant.
        assert!(
            owners[&mine[0].inode].contains(&std::process::id()),
            "{:?}",
            owners[&mine[0].inode]
        );
        let me = proc_ref(std::process::id()).unwrap();
        assert!(!me.command.is_empty());
    }
}
