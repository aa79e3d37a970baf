//! A small nf_tables batch over netlink, for the few fixed rules netd loads into a
//! namespace many times a second (the embedded DNS's 127.0.0.11:53 DNAT in every new
//! sandbox), where starting an `nft` process each time costs 10–20 ms of fork and exec.
//!
//! Only what those rules need is here: tables, base chains, and rules made of
//! `payload`, `cmp`, `immediate` and `nat` expressions, sent as one atomic batch
//! (`NFNL_MSG_BATCH_BEGIN` … `END`) with an ack requested for every message. Everything
//! else (the bridge driver's table, sets and maps) stays on the `nft` binary via
//! [`super::nft`], which is the better tool for a large ruleset loaded rarely.
//!
//! The calls are blocking and act on the network namespace of the calling thread; run
//! them inside [`super::netns::run_in_netns`] for another namespace.
//! Message layouts: linux/netfilter/nf_tables.h and nfnetlink.h.

use std::net::Ipv4Addr;

use rtnetlink::sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use super::{SysError, SysResult};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_EXCL: u16 = 0x200;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;

/// Protocol families (`NFPROTO_*`).
pub const NFPROTO_IPV4: u8 = 2;

/// Netfilter hooks (`NF_INET_*`).
pub const HOOK_OUTPUT: u32 = 3;

// Attribute numbers.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

const NF_ACCEPT: u32 = 1;

/// Where a `payload` expression reads (`NFT_PAYLOAD_*_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Network = 1,
    Transport = 2,
}

/// One expression of a rule. Registers are the 16-byte `NFT_REG_1`..`NFT_REG_4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load `len` bytes at `offset` of a header into `reg`.
    Payload {
        reg: u32,
        base: Base,
        offset: u32,
        len: u32,
    },
    /// Continue only if `reg` equals `data`.
    CmpEq { reg: u32, data: Vec<u8> },
    /// Put `data` into `reg`.
    Immediate { reg: u32, data: Vec<u8> },
    /// IPv4 destination NAT to the address in `addr_reg` and the port in `port_reg`.
    Dnat4 { addr_reg: u32, port_reg: u32 },
}

impl Expr {
    /// `ip daddr == a`
    pub fn ip_daddr_eq(a: Ipv4Addr) -> [Expr; 2] {
        [
            Expr::Payload {
                reg: 1,
                base: Base::Network,
                offset: 16,
                len: 4,
            },
            Expr::CmpEq {
                reg: 1,
                data: a.octets().to_vec(),
            },
        ]
    }

    /// `ip protocol == proto` and `th dport == port`
    pub fn l4_dport_eq(proto: u8, port: u16) -> [Expr; 4] {
        [
            Expr::Payload {
                reg: 1,
                base: Base::Network,
                offset: 9,
                len: 1,
            },
            Expr::CmpEq {
                reg: 1,
                data: vec![proto],
            },
            Expr::Payload {
                reg: 1,
                base: Base::Transport,
                offset: 2,
                len: 2,
            },
            Expr::CmpEq {
                reg: 1,
                data: port.to_be_bytes().to_vec(),
            },
        ]
    }

    /// `dnat to a:port`
    pub fn dnat4(a: Ipv4Addr, port: u16) -> [Expr; 3] {
        [
            Expr::Immediate {
                reg: 1,
                data: a.octets().to_vec(),
            },
            Expr::Immediate {
                reg: 2,
                data: port.to_be_bytes().to_vec(),
            },
            Expr::Dnat4 {
                addr_reg: 1,
                port_reg: 2,
            },
        ]
    }

    fn encode(&self, b: &mut Attrs) {
        let (name, data) = match self {
            Expr::Payload {
                reg,
                base,
                offset,
                len,
            } => {
                let mut d = Attrs::default();
                d.u32(1, *reg); // NFTA_PAYLOAD_DREG
                d.u32(2, *base as u32); // NFTA_PAYLOAD_BASE
                d.u32(3, *offset); // NFTA_PAYLOAD_OFFSET
                d.u32(4, *len); // NFTA_PAYLOAD_LEN
                ("payload", d)
            }
            Expr::CmpEq { reg, data } => {
                let mut d = Attrs::default();
                d.u32(1, *reg); // NFTA_CMP_SREG
                d.u32(2, 0); // NFTA_CMP_OP = NFT_CMP_EQ
                d.nested(3, |v| v.bytes(NFTA_DATA_VALUE, data)); // NFTA_CMP_DATA
                ("cmp", d)
            }
            Expr::Immediate { reg, data } => {
                let mut d = Attrs::default();
                d.u32(1, *reg); // NFTA_IMMEDIATE_DREG
                d.nested(2, |v| v.bytes(NFTA_DATA_VALUE, data)); // NFTA_IMMEDIATE_DATA
                ("immediate", d)
            }
            Expr::Dnat4 { addr_reg, port_reg } => {
                let mut d = Attrs::default();
                d.u32(1, 1); // NFTA_NAT_TYPE = NFT_NAT_DNAT
                d.u32(2, NFPROTO_IPV4 as u32); // NFTA_NAT_FAMILY
                d.u32(3, *addr_reg); // NFTA_NAT_REG_ADDR_MIN
                d.u32(5, *port_reg); // NFTA_NAT_REG_PROTO_MIN
                ("nat", d)
            }
        };
        b.nested(NFTA_LIST_ELEM, |e| {
            e.str(NFTA_EXPR_NAME, name);
            e.nested(NFTA_EXPR_DATA, |x| x.0.extend_from_slice(&data.0));
        });
    }
}

/// Netlink attributes being written (type-length-value, 4-byte aligned).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn bytes(&mut self, ty: u16, v: &[u8]) {
        let len = 4 + v.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(v);
        self.pad();
    }
    fn str(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(ty, &v);
    }
    /// Big-endian, as nf_tables wants its integers.
    fn u32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_be_bytes());
    }
    fn nested(&mut self, ty: u16, f: impl FnOnce(&mut Attrs)) {
        let mut inner = Attrs::default();
        f(&mut inner);
        self.bytes(ty | NLA_F_NESTED, &inner.0);
    }
    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }
}

/// One atomic nf_tables transaction for one protocol family.
pub struct Batch {
    family: u8,
    buf: Vec<u8>,
    seq: u32,
    /// Sequence numbers of the messages the kernel acknowledges.
    acked: Vec<u32>,
}

impl Batch {
    pub fn new(family: u8) -> Self {
        let mut b = Batch {
            family,
            buf: Vec::with_capacity(1024),
            seq: 0,
            acked: Vec::new(),
        };
        b.msg(
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            NFNL_SUBSYS_NFTABLES,
            Attrs::default(),
        );
        b
    }

    fn msg(&mut self, ty: u16, flags: u16, res_id: u16, attrs: Attrs) {
        self.seq += 1;
        let len = 16 + 4 + attrs.0.len();
        self.buf.extend_from_slice(&(len as u32).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg: family, version (NFNETLINK_V0), res_id (big-endian).
        self.buf.push(self.family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        self.buf.extend_from_slice(&attrs.0);
        if flags & NLM_F_ACK != 0 {
            self.acked.push(self.seq);
        }
    }

    fn nft(&mut self, ty: u16, extra: u16, attrs: Attrs) {
        self.msg(
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            NLM_F_REQUEST | NLM_F_ACK | extra,
            0,
            attrs,
        );
    }

    /// `add table` (no error when it exists).
    pub fn add_table(&mut self, name: &str) -> &mut Self {
        let mut a = Attrs::default();
        a.str(NFTA_TABLE_NAME, name);
        self.nft(NFT_MSG_NEWTABLE, NLM_F_CREATE, a);
        self
    }

    /// `create table`: fails with EEXIST when it exists. A batch that creates its table
    /// is the fast way to load a namespace's first rules (tens of microseconds);
    /// changing an existing table's base chain or deleting a table makes the kernel
    /// wait for RCU grace periods (5–20 ms measured), so callers try this first and
    /// fall back to a replacing batch on EEXIST.
    pub fn create_table(&mut self, name: &str) -> &mut Self {
        let mut a = Attrs::default();
        a.str(NFTA_TABLE_NAME, name);
        self.nft(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, a);
        self
    }

    /// `delete table` with everything in it (fails when it does not exist, so pair it
    /// with a preceding [`Batch::add_table`] to empty a table whatever its state).
    pub fn delete_table(&mut self, name: &str) -> &mut Self {
        let mut a = Attrs::default();
        a.str(NFTA_TABLE_NAME, name);
        self.nft(NFT_MSG_DELTABLE, 0, a);
        self
    }

    /// A base chain of type `kind` ("filter", "nat", "route") on `hook` at `prio`,
    /// policy accept.
    pub fn add_base_chain(
        &mut self,
        table: &str,
        name: &str,
        kind: &str,
        hook: u32,
        prio: i32,
    ) -> &mut Self {
        let mut a = Attrs::default();
        a.str(NFTA_CHAIN_TABLE, table);
        a.str(NFTA_CHAIN_NAME, name);
        a.nested(NFTA_CHAIN_HOOK, |h| {
            h.u32(NFTA_HOOK_HOOKNUM, hook);
            h.u32(NFTA_HOOK_PRIORITY, prio as u32);
        });
        a.u32(NFTA_CHAIN_POLICY, NF_ACCEPT);
        a.str(NFTA_CHAIN_TYPE, kind);
        self.nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE, a);
        self
    }

    /// Append a rule made of `exprs` to a chain.
    pub fn add_rule(&mut self, table: &str, chain: &str, exprs: &[Expr]) -> &mut Self {
        let mut a = Attrs::default();
        a.str(NFTA_RULE_TABLE, table);
        a.str(NFTA_RULE_CHAIN, chain);
        a.nested(NFTA_RULE_EXPRESSIONS, |l| {
            for e in exprs {
                e.encode(l);
            }
        });
        self.nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, a);
        self
    }

    /// The bytes sent (batch begin, messages, batch end).
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = Batch {
            family: self.family,
            buf: self.buf.clone(),
            seq: self.seq,
            acked: vec![],
        };
        b.msg(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            NFNL_SUBSYS_NFTABLES,
            Attrs::default(),
        );
        b.buf
    }

    /// Send the batch in the calling thread's network namespace and wait for every
    /// acknowledgement. The kernel applies all of it or none; the first error is
    /// returned with its errno and the number of the failing message.
    pub fn commit(&self) -> SysResult<()> {
        let err = |op: &str, e: std::io::Error| SysError::Netlink {
            op: format!("nf_tables {op}"),
            msg: e.to_string(),
            errno: e.raw_os_error(),
        };
        let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| err("socket", e))?;
        s.bind_auto().map_err(|e| err("bind", e))?;
        s.connect(&SocketAddr::new(0, 0))
            .map_err(|e| err("connect", e))?;
        set_recv_timeout(&s, std::time::Duration::from_secs(5)).map_err(|e| err("socket", e))?;
        s.send(&self.bytes(), 0).map_err(|e| err("send", e))?;
        let mut pending: Vec<u32> = self.acked.clone();
        let mut buf = vec![0u8; 1 << 16];
        while !pending.is_empty() {
            let n = s.recv(&mut &mut buf[..], 0).map_err(|e| err("recv", e))?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
                let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
                if len < 16 || off + len > n {
                    break;
                }
                if ty == NLMSG_ERROR && len >= 20 {
                    let code = i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap());
                    if code != 0 {
                        let errno = -code;
                        return Err(SysError::Netlink {
                            op: format!("nf_tables batch (message {seq})"),
                            msg: std::io::Error::from_raw_os_error(errno).to_string(),
                            errno: Some(errno),
                        });
                    }
                    pending.retain(|s| *s != seq);
                }
                off += (len + 3) & !3;
            }
        }
        Ok(())
    }
}

fn set_recv_timeout(s: &Socket, d: std::time::Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid socket fd and a timeval of the size passed.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walk the netlink messages of a batch: (type, flags, seq, attribute bytes).
    fn messages(b: &[u8]) -> Vec<(u16, u16, u32, Vec<u8>)> {
        let mut out = vec![];
        let mut off = 0;
        while off < b.len() {
            let len = u32::from_ne_bytes(b[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(b[off + 4..off + 6].try_into().unwrap());
            let fl = u16::from_ne_bytes(b[off + 6..off + 8].try_into().unwrap());
            let seq = u32::from_ne_bytes(b[off + 8..off + 12].try_into().unwrap());
            out.push((ty, fl, seq, b[off + 20..off + len].to_vec()));
            off += len;
        }
        out
    }

    #[test]
    fn batch_is_framed_and_acks_every_command() {
        let mut b = Batch::new(NFPROTO_IPV4);
        b.add_table("t").delete_table("t").add_table("t");
        b.add_base_chain("t", "output", "nat", HOOK_OUTPUT, -100);
        let bytes = b.bytes();
        let m = messages(&bytes);
        assert_eq!(m.len(), 6);
        assert_eq!(m[0].0, NFNL_MSG_BATCH_BEGIN);
        assert_eq!(m[5].0, NFNL_MSG_BATCH_END);
        assert_eq!(m[1].0, (10 << 8) | NFT_MSG_NEWTABLE);
        assert_eq!(m[2].0, (10 << 8) | NFT_MSG_DELTABLE);
        assert_eq!(m[4].0, (10 << 8) | NFT_MSG_NEWCHAIN);
        assert!(m[1..5].iter().all(|x| x.1 & NLM_F_ACK != 0));
        assert_eq!(b.acked, vec![2, 3, 4, 5]);
        // The batch begin names the nf_tables subsystem, big-endian.
        assert_eq!(&bytes[18..20], &10u16.to_be_bytes());
        // Table name attribute: len 6 ("t\0" + header), type 1, padded to 8.
        assert_eq!(m[1].3, vec![6, 0, 1, 0, b't', 0, 0, 0]);
    }

    #[test]
    fn attributes_are_aligned_and_nested_flagged() {
        let mut a = Attrs::default();
        a.nested(4, |h| {
            h.u32(1, 3);
            h.u32(2, (-100i32) as u32);
        });
        assert_eq!(a.0.len(), 4 + 8 + 8);
        assert_eq!(u16::from_ne_bytes([a.0[2], a.0[3]]), 4 | NLA_F_NESTED);
        assert_eq!(&a.0[16..20], &(-100i32).to_be_bytes());
    }
}
