//! Port publishing on the daemon side: host port allocation (requested, range or
//! ephemeral), conflict checks (already published by netd, or bound by someone else on
//! the host), and the userland proxies of an endpoint.
//!
//! A host port is reserved by binding it: the bound socket both proves the port is
//! free on the host and, with the userland proxy on, becomes the proxy's listener, so
//! there is no window in which another process can take it.
//!
//! Except for CNI endpoints (owner `cni`): under CNI's `portMappings` contract the
//! runtime holds the host port itself (Podman's conmon keeps a socket on each), so
//! netd binds nothing, runs no proxy and marks the bindings
//! [`PortBinding::loopback_nat`]: the driver serves them by NAT only, 127.0.0.1
//! included, like the reference `portmap` plugin. Conflicts with ports netd already
//! publishes are still refused from netd's own table.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use drivers::{PortBinding, Proto};
use plugin_api::rest;

use super::{Controller, State};
use crate::error::{Error, Result};
use crate::model::EndpointRec;

/// A binding with the socket that reserves its host port (when the proxy is on).
pub(crate) struct Reserved {
    pub binding: PortBinding,
    pub listener: Option<proxy::StdListener>,
}

pub(crate) fn parse_proto(s: &str) -> Result<Proto> {
    match s.to_ascii_lowercase().as_str() {
        "" | "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        "sctp" => Ok(Proto::Sctp),
        o => Err(Error::bad(format!(
            "invalid protocol {o:?} (tcp, udp or sctp)"
        ))),
    }
}

/// The kernel's ephemeral range (`net.ipv4.ip_local_port_range`).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>());
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((32768, 60999))
}

/// The owner whose published ports are served by NAT only (see the module docs).
const NAT_ONLY_OWNER: &str = "cni";

/// Whether `ip` covers IPv4 loopback: `0.0.0.0` or a `127.x` address.
fn covers_loopback4(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_unspecified() || a.is_loopback(),
        IpAddr::V6(_) => false,
    }
}

/// Whether publishing `proto ip:port` (NAT-only when `nat_only`) collides with `a`.
/// A NAT-only binding covering loopback is DNAT'ed for the host's connections to all
/// of 127.0.0.0/8 on its port (the driver's `ports4_lo` key has no address), so it
/// collides with any other binding of that port on a loopback address too.
fn overlaps(a: &PortBinding, proto: Proto, ip: IpAddr, port: u16, nat_only: bool) -> bool {
    a.proto == proto
        && a.host_port == port
        && (a.host_ip == ip
            || (a.host_ip.is_unspecified() && a.host_ip.is_ipv4() == ip.is_ipv4())
            || (ip.is_unspecified() && a.host_ip.is_ipv4() == ip.is_ipv4())
            || ((a.loopback_nat || nat_only)
                && covers_loopback4(a.host_ip)
                && covers_loopback4(ip)))
}

/// Bind `ip:port` to prove it is free (and keep it as the proxy listener).
fn reserve(proto: Proto, ip: IpAddr, port: u16) -> std::io::Result<Option<proxy::StdListener>> {
    let ty = match proto {
        Proto::Tcp => socket2::Type::STREAM,
        Proto::Udp => socket2::Type::DGRAM,
        // SCTP is served by NAT only; no userland listener.
        Proto::Sctp => return Ok(None),
    };
    let addr = SocketAddr::new(ip, port);
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
    if proto == Proto::Tcp {
        s.set_reuse_address(true)?;
    }
    if ip.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    Ok(Some(match proto {
        Proto::Tcp => proxy::StdListener::Tcp(s.into()),
        _ => proxy::StdListener::Udp(s.into()),
    }))
}

impl Controller {
    /// Pick host ports for `reqs` on endpoint `ep` and reserve them.
    pub(crate) fn allocate_ports(
        &self,
        st: &State,
        ep: &EndpointRec,
        reqs: &[rest::PortMapping],
    ) -> Result<Vec<Reserved>> {
        let mut out: Vec<Reserved> = Vec::new();
        let nat_only = ep.owner == NAT_ONLY_OWNER;
        let used: Vec<PortBinding> = st
            .endpoints
            .values()
            .flat_map(|e| e.ports.iter().cloned())
            .collect();
        for r in reqs {
            let proto = parse_proto(&r.proto)?;
            let host_ip: IpAddr = if r.host_ip.is_empty() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                r.host_ip
                    .parse()
                    .map_err(|e| Error::bad(format!("invalid host IP {:?}: {e}", r.host_ip)))?
            };
            if r.container_port == 0 {
                return Err(Error::bad("container port must be 1-65535"));
            }
            let container_ip = ep
                .addresses
                .iter()
                .map(|a| a.ip())
                .find(|a| a.is_ipv4() == host_ip.is_ipv4())
                .ok_or_else(|| {
                    Error::bad(format!(
                        "cannot publish on {host_ip}: the endpoint has no IPv{} address",
                        if host_ip.is_ipv4() { 4 } else { 6 }
                    ))
                })?;
            let candidates: Vec<u16> = if r.host_port == 0 {
                let (lo, hi) = ephemeral_range();
                let start = lo + (rand::random::<u16>() % (hi - lo + 1));
                (start..=hi).chain(lo..start).collect()
            } else if r.host_port_end > r.host_port {
                (r.host_port..=r.host_port_end).collect()
            } else {
                vec![r.host_port]
            };
            let explicit = candidates.len() == 1;
            let mut last_err = None;
            let mut chosen = None;
            for port in candidates {
                let taken = used
                    .iter()
                    .chain(out.iter().map(|x| &x.binding))
                    .any(|b| overlaps(b, proto, host_ip, port, nat_only));
                if taken {
                    last_err = Some(Error::conflict(format!(
                        "host port {host_ip}:{port}/{proto} is already published by netd"
                    )));
                    continue;
                }
                let listener = if nat_only {
                    // The runtime holds the port: binding it here would fail (Podman)
                    // or steal it. netd's own table above is the conflict check.
                    Ok(None)
                } else if self.userland_proxy {
                    reserve(proto, host_ip, port)
                } else {
                    // Without the proxy, still refuse ports someone else holds.
                    reserve(proto, host_ip, port).map(|_| None)
                };
                match listener {
                    Ok(l) => {
                        chosen = Some(Reserved {
                            binding: PortBinding {
                                proto,
                                host_ip,
                                host_port: port,
                                container_ip,
                                container_port: r.container_port,
                                loopback_nat: nat_only,
                            },
                            listener: l,
                        });
                        break;
                    }
                    Err(e) => {
                        last_err = Some(Error::conflict(format!(
                            "host port {host_ip}:{port}/{proto} is not available: {e}"
                        )));
                    }
                }
            }
            match chosen {
                Some(c) => out.push(c),
                None => {
                    let e = last_err.unwrap_or_else(|| Error::conflict("no free host port"));
                    return Err(if explicit {
                        e
                    } else {
                        Error::conflict(format!(
                            "no free host port in the requested range for {}/{proto}: {}",
                            r.container_port, e.message
                        ))
                    });
                }
            }
        }
        Ok(out)
    }

    /// Start the userland proxies of an endpoint from its reserved sockets.
    pub(crate) fn start_port_proxies(
        &self,
        ep: &EndpointRec,
        reserved: Vec<Reserved>,
    ) -> Result<()> {
        let Some(px) = &self.proxy else { return Ok(()) };
        let mut handles = Vec::new();
        for r in reserved {
            let Some(l) = r.listener else { continue };
            let target = SocketAddr::new(r.binding.container_ip, r.binding.container_port);
            let h = px.add_with_listener(l, target).map_err(|e| {
                Error::internal(format!("userland proxy for {}: {e}", r.binding.host_port))
            })?;
            handles.push(h);
        }
        self.proxies.lock().unwrap().insert(ep.id.clone(), handles);
        Ok(())
    }

    /// Re-arm the proxies of an endpoint (start-up, reconcile).
    pub(crate) fn rearm_port_proxies(&self, ep: &EndpointRec) -> Result<()> {
        if self.proxy.is_none() || ep.ports.is_empty() {
            return Ok(());
        }
        if self.proxies.lock().unwrap().contains_key(&ep.id) {
            return Ok(());
        }
        let mut reserved = Vec::new();
        // NAT-only bindings have no proxy (their runtime holds the host port); the
        // owner check covers CNI records stored before the flag existed.
        let nat_only = ep.owner == NAT_ONLY_OWNER;
        for b in ep.ports.iter().filter(|b| !b.loopback_nat && !nat_only) {
            let l = reserve(b.proto, b.host_ip, b.host_port).map_err(|e| {
                Error::conflict(format!(
                    "re-arming {}:{}/{}: {e}",
                    b.host_ip, b.host_port, b.proto
                ))
            })?;
            reserved.push(Reserved {
                binding: b.clone(),
                listener: l,
            });
        }
        self.start_port_proxies(ep, reserved)
    }

    pub(crate) fn stop_port_proxies(&self, ep: &EndpointRec) {
        // Dropping the handles stops the listeners and their connections.
        self.proxies.lock().unwrap().remove(&ep.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(ip: &str, port: u16, nat_only: bool) -> PortBinding {
        PortBinding {
            proto: Proto::Tcp,
            host_ip: ip.parse().unwrap(),
            host_port: port,
            container_ip: "10.0.0.2".parse().unwrap(),
            container_port: 80,
            loopback_nat: nat_only,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn overlap_rules() {
        // (published addr, its NAT-only flag, asked proto, asked addr, asked port, asked
        // NAT-only flag, overlaps?)
        let cases = [
            // Same address, wildcard against specific, per family and protocol.
            ("0.0.0.0", false, Proto::Tcp, "10.1.1.1", 80, false, true),
            ("10.1.1.1", false, Proto::Tcp, "0.0.0.0", 80, false, true),
            ("0.0.0.0", false, Proto::Udp, "0.0.0.0", 80, false, false),
            ("::", false, Proto::Tcp, "0.0.0.0", 80, false, false),
            ("0.0.0.0", false, Proto::Tcp, "0.0.0.0", 81, false, false),
            // Two loopback addresses are distinct for proxied bindings...
            (
                "127.0.0.1",
                false,
                Proto::Tcp,
                "127.0.0.2",
                80,
                false,
                false,
            ),
            // ...but a NAT-only binding claims its port on all of 127.0.0.0/8, either way.
            ("127.0.0.1", true, Proto::Tcp, "127.0.0.2", 80, false, true),
            ("127.0.0.2", false, Proto::Tcp, "127.0.0.1", 80, true, true),
            // Not beyond loopback.
            ("127.0.0.1", true, Proto::Tcp, "10.1.1.1", 80, true, false),
            ("10.1.1.2", true, Proto::Tcp, "10.1.1.1", 80, true, false),
        ];
        for (have, have_nat, proto, want, port, want_nat, expect) in cases {
            assert_eq!(
                overlaps(&b(have, 80, have_nat), proto, ip(want), port, want_nat),
                expect,
                "{have} (nat {have_nat}) vs {proto}/{want}:{port} (nat {want_nat})"
            );
        }
    }
}
