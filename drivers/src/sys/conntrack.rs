//! Conntrack flush over ctnetlink (netlink-packet-netfilter), without the
//! `conntrack` binary.
//!
//! Why: a UDP flow that started before a port mapping existed (or while it
//! pointed elsewhere) keeps its conntrack entry, and with it the old NAT
//! decision, for as long as packets keep coming (the UDP timeout is refreshed
//! by every packet). The client then black-holes forever. Deleting the
//! entries whose original-direction destination is the published host port
//! makes the next packet take the new path.
//!
//! The kernel cannot delete by port, so this dumps the table of one family,
//! filters in user space and deletes each match by its original tuple. The
//! calls are blocking; callers run them on a dedicated thread (and, for
//! another namespace, on a thread that entered it).

use std::net::IpAddr;

use netlink_packet_netfilter::conntrack::{
    ConntrackAttribute, ConntrackMessage, IPTuple, ProtoTuple, Protocol, Tuple,
};
use netlink_packet_netfilter::{
    NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily,
};
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::{SysError, SysResult};

/// Which entries to delete: original direction, `proto` to `dst_port`, and
/// to `dst_addr` when given (`None` = any address of `ipv6`'s family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtFilter {
    /// IP protocol number (17 = UDP, 6 = TCP, 132 = SCTP).
    pub proto: u8,
    pub dst_port: u16,
    pub dst_addr: Option<IpAddr>,
    /// Family to scan when `dst_addr` is `None`.
    pub ipv6: bool,
}

impl CtFilter {
    fn family(&self) -> NetfilterProtoFamily {
        let v6 = self.dst_addr.map_or(self.ipv6, |a| a.is_ipv6());
        if v6 {
            NetfilterProtoFamily::IPv6
        } else {
            NetfilterProtoFamily::IPv4
        }
    }
}

/// The fields of an original tuple we filter on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleInfo {
    pub proto: Option<u8>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

impl TupleInfo {
    pub fn from_tuple(t: &[Tuple]) -> TupleInfo {
        let mut out = TupleInfo::default();
        for part in t {
            match part {
                Tuple::Ip(ips) => {
                    for ip in ips {
                        match ip {
                            IPTuple::SourceAddress(a) => out.src = Some(*a),
                            IPTuple::DestinationAddress(a) => out.dst = Some(*a),
                            _ => {}
                        }
                    }
                }
                Tuple::Proto(ps) => {
                    for p in ps {
                        match p {
                            ProtoTuple::Protocol(n) => out.proto = Some(u8::from(*n)),
                            ProtoTuple::SourcePort(x) => out.sport = Some(*x),
                            ProtoTuple::DestinationPort(x) => out.dport = Some(*x),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    pub fn matches(&self, f: &CtFilter) -> bool {
        self.proto == Some(f.proto)
            && self.dport == Some(f.dst_port)
            && match f.dst_addr {
                Some(a) => self.dst == Some(a),
                None => self.dst.is_some_and(|d| d.is_ipv6() == f.ipv6),
            }
    }

    /// The original tuple as ctnetlink wants it in a delete request.
    fn to_tuple(&self) -> Option<Vec<Tuple>> {
        Some(vec![
            Tuple::Ip(vec![
                IPTuple::SourceAddress(self.src?),
                IPTuple::DestinationAddress(self.dst?),
            ]),
            Tuple::Proto(vec![
                ProtoTuple::Protocol(Protocol::from(self.proto?)),
                ProtoTuple::SourcePort(self.sport?),
                ProtoTuple::DestinationPort(self.dport?),
            ]),
        ])
    }
}

fn nl_err(op: &str, e: impl std::fmt::Display, errno: Option<i32>) -> SysError {
    SysError::Netlink {
        op: format!("conntrack {op}"),
        msg: e.to_string(),
        errno,
    }
}

fn open() -> SysResult<Socket> {
    let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| {
        let n = e.raw_os_error();
        nl_err("socket", e, n)
    })?;
    s.bind_auto()
        .map_err(|e| nl_err("bind", &e, e.raw_os_error()))?;
    s.connect(&SocketAddr::new(0, 0))
        .map_err(|e| nl_err("connect", &e, e.raw_os_error()))?;
    Ok(s)
}

fn send(
    s: &Socket,
    family: NetfilterProtoFamily,
    flags: u16,
    msg: ConntrackMessage,
) -> SysResult<()> {
    let mut h = NetlinkHeader::default();
    h.flags = flags;
    let mut p = NetlinkMessage::new(
        h,
        NetlinkPayload::from(NetfilterMessage::new(
            NetfilterHeader::new(family, 0, 0),
            msg,
        )),
    );
    p.finalize();
    let mut buf = vec![0; p.header.length as usize];
    p.serialize(&mut buf[..]);
    s.send(&buf, 0)
        .map_err(|e| nl_err("send", &e, e.raw_os_error()))?;
    Ok(())
}

/// Read replies until `Done` (dump) or the ack / error (request). Calls
/// `each` for every conntrack message. Returns the errno of an error reply.
fn recv_all(s: &Socket, mut each: impl FnMut(&ConntrackMessage)) -> SysResult<Option<i32>> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = s
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| nl_err("recv", &e, e.raw_os_error()))?;
        if n == 0 {
            return Ok(None);
        }
        let mut off = 0;
        while off < n {
            let m = <NetlinkMessage<NetfilterMessage>>::deserialize(&buf[off..n])
                .map_err(|e| nl_err("decode", e, None))?;
            let len = m.header.length as usize;
            match m.payload {
                NetlinkPayload::Done(_) => return Ok(None),
                NetlinkPayload::Error(e) => {
                    // code None = ACK.
                    return Ok(e.code.map(|c| -c.get()));
                }
                NetlinkPayload::InnerMessage(NetfilterMessage {
                    inner: NetfilterMessageInner::Conntrack(c),
                    ..
                }) => each(&c),
                _ => {}
            }
            if len == 0 {
                break;
            }
            off += len;
        }
        // A dump ends with Done, a request with its ack or error: read on.
    }
}

/// Original tuples of all entries of `family` (one dump).
pub fn dump(family: NetfilterProtoFamily) -> SysResult<Vec<TupleInfo>> {
    let s = open()?;
    send(
        &s,
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        ConntrackMessage::Get(vec![]),
    )?;
    let mut out = Vec::new();
    let errno = recv_all(&s, |c| {
        if let ConntrackMessage::New(attrs) | ConntrackMessage::Get(attrs) = c {
            for a in attrs {
                if let ConntrackAttribute::CtaTupleOrig(t) = a {
                    out.push(TupleInfo::from_tuple(t));
                }
            }
        }
    })?;
    if let Some(e) = errno {
        return Err(nl_err(
            "dump",
            std::io::Error::from_raw_os_error(e),
            Some(e),
        ));
    }
    Ok(out)
}

/// Delete every entry matching `f`; returns how many were deleted (entries
/// that expired between the dump and the delete are not counted).
pub fn delete_matching(f: &CtFilter) -> SysResult<usize> {
    let family = f.family();
    let victims: Vec<TupleInfo> = dump(family)?.into_iter().filter(|t| t.matches(f)).collect();
    if victims.is_empty() {
        return Ok(0);
    }
    let s = open()?;
    let mut n = 0;
    for v in victims {
        let Some(tuple) = v.to_tuple() else { continue };
        send(
            &s,
            family,
            NLM_F_REQUEST | NLM_F_ACK,
            ConntrackMessage::Delete(vec![ConntrackAttribute::CtaTupleOrig(tuple)]),
        )?;
        match recv_all(&s, |_| {})? {
            None => n += 1,
            Some(libc::ENOENT) => {}
            Some(e) => {
                return Err(nl_err(
                    "delete",
                    std::io::Error::from_raw_os_error(e),
                    Some(e),
                ))
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(proto: u8, dst: &str, dport: u16) -> TupleInfo {
        TupleInfo {
            proto: Some(proto),
            src: Some("192.0.2.9".parse().unwrap()),
            dst: Some(dst.parse().unwrap()),
            sport: Some(40000),
            dport: Some(dport),
        }
    }

    #[test]
    fn filter_matching() {
        let any4 = CtFilter {
            proto: 17,
            dst_port: 5353,
            dst_addr: None,
            ipv6: false,
        };
        assert!(info(17, "10.0.0.1", 5353).matches(&any4));
        assert!(!info(6, "10.0.0.1", 5353).matches(&any4), "tcp is not udp");
        assert!(!info(17, "10.0.0.1", 5354).matches(&any4));
        let one = CtFilter {
            dst_addr: Some("127.0.0.1".parse().unwrap()),
            ..any4
        };
        assert!(info(17, "127.0.0.1", 5353).matches(&one));
        assert!(!info(17, "10.0.0.1", 5353).matches(&one));
        let any6 = CtFilter { ipv6: true, ..any4 };
        assert!(!info(17, "10.0.0.1", 5353).matches(&any6));
    }

    #[test]
    fn tuple_roundtrip() {
        let i = info(17, "10.0.0.1", 53);
        let t = i.to_tuple().unwrap();
        assert_eq!(TupleInfo::from_tuple(&t), i);
        assert!(TupleInfo::default().to_tuple().is_none());
    }
}
