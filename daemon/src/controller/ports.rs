//! Port publishing on the daemon side: host port allocation (requested, range or
//! ephemeral), conflict checks (already published by netd, or bound by someone else on
//! the host), and the userland proxies of an endpoint.
//!
//! A host port is reserved by binding it: the bound socket both proves the port is
//! free on the host and, with the userland proxy on, becomes the proxy's listener, so
//! there is no window in which another process can take it.

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

fn overlaps(a: &PortBinding, proto: Proto, ip: IpAddr, port: u16) -> bool {
    a.proto == proto
        && a.host_port == port
        && (a.host_ip == ip
            || (a.host_ip.is_unspecified() && a.host_ip.is_ipv4() == ip.is_ipv4())
            || (ip.is_unspecified() && a.host_ip.is_ipv4() == ip.is_ipv4()))
}

/// Bind `ip:port` to prove it is free (and keep it as the proxy listener).
fn reserve(proto: Proto, ip: IpAddr, port: u16) -> std::io::Result<Option<proxy::StdListener>> {
    let addr = SocketAddr::new(ip, port);
    match proto {
        Proto::Tcp => {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            s.set_reuse_address(true)?;
            if ip.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&addr.into())?;
            Ok(Some(proxy::StdListener::Tcp(s.into())))
        }
        Proto::Udp => {
            let s = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::DGRAM,
                None,
            )?;
            if ip.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&addr.into())?;
            Ok(Some(proxy::StdListener::Udp(s.into())))
        }
        // SCTP is served by NAT only; no userland listener.
        Proto::Sctp => Ok(None),
    }
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
                    .any(|b| overlaps(b, proto, host_ip, port));
                if taken {
                    last_err = Some(Error::conflict(format!(
                        "host port {host_ip}:{port}/{proto} is already published by netd"
                    )));
                    continue;
                }
                let listener = if self.userland_proxy || proto == Proto::Sctp {
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
        for b in &ep.ports {
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
