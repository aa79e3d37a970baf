//! The host's routes, for "which host route overlaps this subnet": `ip -j route show
//! table all` (v4 and v6) when iproute2 is there, else `/proc/net/route` (IPv4, every
//! table the kernel prints there). Parsing is pure and unit-tested.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;
use serde::Serialize;

/// A host route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRoute {
    pub dst: IpNetwork,
    pub dev: Option<String>,
    /// `unicast`, `local`, `unreachable`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub table: String,
    pub protocol: Option<String>,
    pub gateway: Option<IpAddr>,
}

/// Do two networks share any address?
pub fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a.contains(b.network()) || b.contains(a.network()))
}

/// Parse `ip -j route show table all` output. Default routes, broadcast and multicast
/// entries are dropped: they say nothing about address conflicts.
pub fn parse_ip_json(text: &str, v6: bool) -> Vec<HostRoute> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return vec![];
    };
    let s = |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_str()).map(String::from);
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let kind = s(r, "type").unwrap_or_else(|| "unicast".into());
            if matches!(kind.as_str(), "broadcast" | "multicast") {
                return None;
            }
            let dst = s(r, "dst")?;
            if dst == "default" {
                return None;
            }
            let dst: IpNetwork = if dst.contains('/') {
                dst.parse().ok()?
            } else {
                let ip: IpAddr = dst.parse().ok()?;
                IpNetwork::new(ip, if ip.is_ipv4() { 32 } else { 128 }).ok()?
            };
            if dst.is_ipv6() != v6 || dst.prefix() == 0 {
                return None;
            }
            Some(HostRoute {
                dst,
                dev: s(r, "dev"),
                kind,
                table: s(r, "table").unwrap_or_else(|| "main".into()),
                protocol: s(r, "protocol"),
                gateway: s(r, "gateway").and_then(|g| g.parse().ok()),
            })
        })
        .collect()
}

/// Parse `/proc/net/route` (hex, native byte order; default routes dropped).
pub fn parse_proc_route(text: &str) -> Vec<HostRoute> {
    let ip = |h: &str| -> Option<Ipv4Addr> {
        Some(Ipv4Addr::from(
            u32::from_str_radix(h, 16).ok()?.to_ne_bytes(),
        ))
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let dst = ip(f[1])?;
            let gw = ip(f[2])?;
            let mask = ip(f[7])?;
            let prefix = u32::from(mask).count_ones() as u8;
            if prefix == 0 {
                return None;
            }
            Some(HostRoute {
                dst: IpNetwork::new(IpAddr::V4(dst), prefix).ok()?,
                dev: Some(f[0].to_string()),
                kind: "unicast".into(),
                table: "main".into(),
                protocol: None,
                gateway: (!gw.is_unspecified()).then_some(IpAddr::V4(gw)),
            })
        })
        .collect()
}

/// Every host route of the family of `v6`.
pub fn host_routes(v6: bool) -> Vec<HostRoute> {
    let fam = if v6 { "-6" } else { "-4" };
    let out = std::process::Command::new("ip")
        .args(["-j", fam, "route", "show", "table", "all"])
        .stderr(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => parse_ip_json(&String::from_utf8_lossy(&o.stdout), v6),
        _ if !v6 => {
            parse_proc_route(&std::fs::read_to_string("/proc/net/route").unwrap_or_default())
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn overlap_rules() {
        assert!(overlaps(&net("10.1.0.0/16"), &net("10.1.2.0/24")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.1.0.0/16")));
        assert!(overlaps(&net("10.1.0.0/16"), &net("10.1.0.0/16")));
        assert!(!overlaps(&net("10.1.0.0/16"), &net("10.2.0.0/16")));
        assert!(!overlaps(&net("10.1.0.0/16"), &net("fd00::/8")));
        assert!(overlaps(&net("10.1.2.3/32"), &net("10.1.0.0/16")));
    }

    #[test]
    fn ip_json() {
        let j = r#"[
          {"dst":"default","gateway":"192.168.1.1","dev":"eth0","protocol":"dhcp","flags":[]},
          {"dst":"10.1.0.0/16","dev":"br0","protocol":"kernel","scope":"link","prefsrc":"10.1.0.1","flags":[]},
          {"type":"local","dst":"10.1.0.1","table":"local","dev":"br0","protocol":"kernel","scope":"host","prefsrc":"10.1.0.1","flags":[]},
          {"type":"broadcast","dst":"10.1.255.255","table":"local","dev":"br0","protocol":"kernel","scope":"link","flags":[]},
          {"dst":"fd00::/64","dev":"br0","flags":[]}
        ]"#;
        let v = parse_ip_json(j, false);
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].dst, net("10.1.0.0/16"));
        assert_eq!(v[0].dev.as_deref(), Some("br0"));
        assert_eq!(v[0].table, "main");
        assert_eq!(v[0].kind, "unicast");
        assert_eq!(v[1].dst, net("10.1.0.1/32"));
        assert_eq!(v[1].kind, "local");
        assert_eq!(v[1].table, "local");
        let v6 = parse_ip_json(j, true);
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].dst, net("fd00::/64"));
        assert!(parse_ip_json("not json", false).is_empty());
    }

    #[test]
    fn proc_route() {
        let t =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
";
        let v = parse_proc_route(t);
        assert_eq!(v.len(), 1);
        if cfg!(target_endian = "little") {
            assert_eq!(v[0].dst, net("192.168.1.0/24"));
        }
        assert_eq!(v[0].dev.as_deref(), Some("eth0"));
        assert_eq!(v[0].gateway, None);
    }

    #[test]
    fn real_routes_parse() {
        // Whatever this host has, loopback's local route is there (table local).
        let v = host_routes(false);
        if std::path::Path::new("/sbin/ip").exists()
            || std::path::Path::new("/usr/sbin/ip").exists()
            || std::path::Path::new("/bin/ip").exists()
        {
            assert!(
                v.iter()
                    .any(|r| r.dst.contains("127.0.0.1".parse().unwrap())),
                "{v:?}"
            );
        }
    }
}
