//! One address pool: a subnet, its reservations, and the addresses handed out from it.
//!
//! Allocation state is an [`IntervalSet`] of allocated addresses plus a small one of reserved
//! addresses (gateway and auxiliary addresses). The network address, the IPv4 broadcast address
//! and the IPv6 subnet-router anycast address (the all-zero host, which *is* the network address)
//! are never in either set: they lie outside the usable bounds `lo..=hi` and are refused by
//! [`Pool::reserved_reason`]. For IPv4 /31 and /32 and IPv6 /127 and /128 there is no such
//! reservation (RFC 3021, RFC 6164): every address is usable.
//!
//! **Round robin.** "Next free" requests start at a cursor that sits just after the last address
//! handed out by a next-free request, and wrap around to the start of the range. A released
//! address is therefore not reused until the cursor comes round again, like Docker's serial
//! bitmap allocation (it avoids handing a stale address, still cached in peers' ARP/neighbour
//! tables, to a new container). Specific requests and releases do not move the cursor.
//!
//! Costs, with n = runs of allocated addresses and r = runs of reserved addresses (tiny):
//! specific request, release, `is_allocated`: O(log n); next-free request: O(r · log n) worst
//! case (each reserved run met at most once), usually O(log n).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::addr::{bounds, canonical, contains_net, from_u128, is_canonical, to_u128};
use crate::error::{IpamError, Reserved};
use crate::intervals::IntervalSet;
use crate::space::AddressSpace;

/// Stable identifier of a pool: `SPACE/SUBNET`, e.g. `local/172.18.0.0/16` or
/// `global/fd00:1::/64`.
///
/// Pools never overlap within a space, so the subnet alone names a pool there; the `ip_range`
/// is a property of the pool, not part of its identity. The string form is what the daemon
/// stores and what `netctl` shows; it is parsed back with [`str::parse`] and (de)serialized as
/// that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PoolId {
    space: AddressSpace,
    subnet: IpNetwork,
}

impl PoolId {
    /// The id of the pool for `subnet` in `space`.
    pub fn new(space: AddressSpace, subnet: IpNetwork) -> Self {
        PoolId { space, subnet }
    }

    /// The address space of the pool.
    pub fn space(&self) -> AddressSpace {
        self.space
    }

    /// The subnet of the pool.
    pub fn subnet(&self) -> IpNetwork {
        self.subnet
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.space, self.subnet)
    }
}

impl FromStr for PoolId {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, IpamError> {
        let invalid = || IpamError::InvalidPoolId {
            input: s.to_string(),
        };
        let (space, subnet) = s.split_once('/').ok_or_else(invalid)?;
        let space = space.parse().map_err(|_| invalid())?;
        if !subnet.contains('/') {
            return Err(invalid());
        }
        let subnet: IpNetwork = subnet.parse().map_err(|_| invalid())?;
        if !is_canonical(&subnet) {
            return Err(invalid());
        }
        Ok(PoolId { space, subnet })
    }
}

impl Serialize for PoolId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PoolId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything there is to know about a pool, by value (for listings, metrics and `netctl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// The pool's id (`SPACE/SUBNET`).
    pub id: PoolId,
    /// Address space the pool lives in.
    pub space: AddressSpace,
    /// The pool's subnet.
    pub subnet: IpNetwork,
    /// The sub-range next-free requests draw from, if one was given.
    pub ip_range: Option<IpNetwork>,
    /// The reserved gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Reserved auxiliary addresses by name.
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// True for an IPv6 pool.
    pub v6: bool,
    /// Addresses currently handed out (reserved ones not included).
    pub allocated: u128,
    /// Addresses next-free requests can hand out in total: the ip_range (or subnet) minus the
    /// network/broadcast/gateway/aux reservations. Saturates at `u128::MAX` for `::/0`.
    /// Specific requests outside the ip_range can push `allocated` above it.
    pub capacity: u128,
}

/// Usable bounds of a subnet: everything but the network and IPv4 broadcast addresses, except
/// on point-to-point sized subnets where every address is usable.
fn usable_bounds(subnet: &IpNetwork) -> (u128, u128) {
    let (s, e) = bounds(subnet);
    match (subnet.is_ipv6(), subnet.prefix()) {
        (false, p) if p < 31 => (s + 1, e - 1),
        (true, p) if p < 127 => (s + 1, e),
        _ => (s, e),
    }
}

/// The address a pool uses as its gateway when asked to pick one: the first usable address of
/// the subnet (e.g. 172.18.0.1 for 172.18.0.0/16), regardless of any ip_range, as Docker does.
pub(crate) fn auto_gateway(subnet: &IpNetwork) -> IpAddr {
    from_u128(usable_bounds(subnet).0, subnet.is_ipv6())
}

/// An address pool. See the module docs for the allocation policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pool {
    subnet: IpNetwork,
    ip_range: Option<IpNetwork>,
    gateway: Option<IpAddr>,
    aux: BTreeMap<String, IpAddr>,
    allocated: IntervalSet,
    // Derived from the fields above at construction.
    /// Gateway and aux addresses.
    reserved: IntervalSet,
    /// Next-free range: the ip_range (or subnet) clipped to the usable bounds.
    lo: u128,
    hi: u128,
    /// Round-robin cursor, always within `lo..=hi`.
    next: u128,
}

impl Pool {
    /// Validates a pool definition and builds an empty pool.
    pub(crate) fn new(
        subnet: IpNetwork,
        ip_range: Option<IpNetwork>,
        gateway: Option<IpAddr>,
        aux: BTreeMap<String, IpAddr>,
    ) -> Result<Pool, IpamError> {
        if !is_canonical(&subnet) {
            return Err(IpamError::InvalidSubnet {
                subnet,
                reason: format!("host bits are set (did you mean {}?)", canonical(&subnet)),
            });
        }
        let v6 = subnet.is_ipv6();
        let (ulo, uhi) = usable_bounds(&subnet);
        let (lo, hi) = match ip_range {
            None => (ulo, uhi),
            Some(range) => {
                let bad = |reason: String| IpamError::InvalidRange { range, reason };
                if range.is_ipv6() != v6 {
                    return Err(bad(format!(
                        "it is not in the IP family of subnet {subnet}"
                    )));
                }
                if !is_canonical(&range) {
                    return Err(bad(format!(
                        "host bits are set (did you mean {}?)",
                        canonical(&range)
                    )));
                }
                if !contains_net(&subnet, &range) {
                    return Err(bad(format!("it is not inside subnet {subnet}")));
                }
                let (rlo, rhi) = bounds(&range);
                let (lo, hi) = (rlo.max(ulo), rhi.min(uhi));
                if lo > hi {
                    return Err(bad(format!(
                        "it holds no usable address of subnet {subnet}"
                    )));
                }
                (lo, hi)
            }
        };
        let mut pool = Pool {
            subnet,
            ip_range,
            gateway: None,
            aux: BTreeMap::new(),
            allocated: IntervalSet::new(),
            reserved: IntervalSet::new(),
            lo,
            hi,
            next: lo,
        };
        if let Some(gw) = gateway {
            let bad = |reason: String| IpamError::InvalidGateway {
                gateway: gw,
                reason,
            };
            let v = pool.check_member(gw).map_err(bad)?;
            if let Some(r) = pool.reserved_reason(v) {
                return Err(bad(format!("it is {r} of subnet {subnet}")));
            }
            pool.reserved.insert(v);
            pool.gateway = Some(gw);
        }
        for (name, addr) in aux {
            let bad = |reason: String| IpamError::InvalidAuxAddress {
                name: name.clone(),
                addr,
                reason,
            };
            let v = pool.check_member(addr).map_err(bad)?;
            if let Some(r) = pool.reserved_reason(v) {
                return Err(bad(format!("it is {r} of subnet {subnet}")));
            }
            pool.reserved.insert(v);
            pool.aux.insert(name, addr);
        }
        Ok(pool)
    }

    pub(crate) fn subnet(&self) -> IpNetwork {
        self.subnet
    }

    pub(crate) fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }

    pub(crate) fn is_v6(&self) -> bool {
        self.subnet.is_ipv6()
    }

    pub(crate) fn id(&self, space: AddressSpace) -> PoolId {
        PoolId::new(space, self.subnet)
    }

    /// Number of allocated addresses. O(1).
    pub(crate) fn allocated_count(&self) -> u128 {
        self.allocated.len()
    }

    /// See [`PoolInfo::capacity`]. O(r).
    pub(crate) fn capacity(&self) -> u128 {
        (self.hi - self.lo)
            .saturating_add(1)
            .saturating_sub(self.reserved.count_in(self.lo, self.hi))
    }

    pub(crate) fn info(&self, space: AddressSpace) -> PoolInfo {
        PoolInfo {
            id: self.id(space),
            space,
            subnet: self.subnet,
            ip_range: self.ip_range,
            gateway: self.gateway,
            aux_addresses: self.aux.clone(),
            v6: self.is_v6(),
            allocated: self.allocated_count(),
            capacity: self.capacity(),
        }
    }

    /// The integer value of `addr` if it is in the subnet; otherwise why not.
    fn check_member(&self, addr: IpAddr) -> Result<u128, String> {
        if addr.is_ipv6() != self.is_v6() {
            return Err(format!(
                "it is not in the IP family of subnet {}",
                self.subnet
            ));
        }
        if !self.subnet.contains(addr) {
            return Err(format!("it is outside subnet {}", self.subnet));
        }
        Ok(to_u128(addr))
    }

    /// Like `check_member`, as the user-facing error.
    fn member(&self, space: AddressSpace, addr: IpAddr) -> Result<u128, IpamError> {
        self.check_member(addr)
            .map_err(|_| IpamError::AddressOutOfRange {
                addr,
                subnet: self.subnet,
                pool: self.id(space),
            })
    }

    /// Why `v` (inside the subnet) can never be handed out, if it cannot. O(a) for the aux
    /// lookup, only reached for reserved addresses.
    fn reserved_reason(&self, v: u128) -> Option<Reserved> {
        let (s, e) = bounds(&self.subnet);
        let (ulo, uhi) = usable_bounds(&self.subnet);
        if v == s && v < ulo {
            return Some(if self.is_v6() {
                Reserved::SubnetRouterAnycast
            } else {
                Reserved::Network
            });
        }
        if v == e && v > uhi {
            return Some(Reserved::Broadcast);
        }
        if !self.reserved.contains(v) {
            return None;
        }
        let addr = from_u128(v, self.is_v6());
        if self.gateway == Some(addr) {
            return Some(Reserved::Gateway);
        }
        self.aux
            .iter()
            .find(|(_, a)| **a == addr)
            .map(|(name, _)| Reserved::Aux(name.clone()))
    }

    /// First address in `from..=hi` that is neither allocated nor reserved.
    /// O((r + 1) · log n): each round either succeeds or steps past one reserved run.
    fn first_free(&self, from: u128, hi: u128) -> Option<u128> {
        let mut x = from;
        loop {
            let a = self.allocated.next_absent(x, hi)?;
            let r = self.reserved.next_absent(a, hi)?;
            if r == a {
                return Some(a);
            }
            x = r;
        }
    }

    /// Hands out `addr`, or the next free address after the cursor.
    pub(crate) fn request(
        &mut self,
        space: AddressSpace,
        addr: Option<IpAddr>,
    ) -> Result<IpAddr, IpamError> {
        let v6 = self.is_v6();
        match addr {
            Some(addr) => {
                let v = self.member(space, addr)?;
                if let Some(reason) = self.reserved_reason(v) {
                    return Err(IpamError::ReservedAddress {
                        addr,
                        pool: self.id(space),
                        reason,
                    });
                }
                if !self.allocated.insert(v) {
                    return Err(IpamError::AddressInUse {
                        addr,
                        pool: self.id(space),
                    });
                }
                Ok(addr)
            }
            None => {
                let found = self.first_free(self.next, self.hi).or_else(|| {
                    (self.next > self.lo)
                        .then(|| self.first_free(self.lo, self.next - 1))
                        .flatten()
                });
                let v = found.ok_or_else(|| IpamError::Exhausted {
                    pool: self.id(space),
                })?;
                self.allocated.insert(v);
                self.next = if v >= self.hi { self.lo } else { v + 1 };
                Ok(from_u128(v, v6))
            }
        }
    }

    /// Gives `addr` back. Reserved addresses cannot be released.
    pub(crate) fn release(&mut self, space: AddressSpace, addr: IpAddr) -> Result<(), IpamError> {
        let v = self.member(space, addr)?;
        if let Some(reason) = self.reserved_reason(v) {
            return Err(IpamError::ReservedAddress {
                addr,
                pool: self.id(space),
                reason,
            });
        }
        if !self.allocated.remove(v) {
            return Err(IpamError::AddressNotAllocated {
                addr,
                pool: self.id(space),
            });
        }
        Ok(())
    }

    /// True if `addr` is handed out (reserved addresses are not "allocated"). O(log n).
    pub(crate) fn is_allocated(
        &self,
        space: AddressSpace,
        addr: IpAddr,
    ) -> Result<bool, IpamError> {
        let v = self.member(space, addr)?;
        Ok(self.allocated.contains(v))
    }

    /// Allocated runs as inclusive address pairs, ascending.
    pub(crate) fn allocated_ranges(&self) -> impl Iterator<Item = (IpAddr, IpAddr)> + '_ {
        let v6 = self.is_v6();
        self.allocated
            .runs()
            .map(move |(s, e)| (from_u128(s, v6), from_u128(e, v6)))
    }

    /// Allocated addresses, ascending, lazily.
    pub(crate) fn allocated_addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let v6 = self.is_v6();
        self.allocated.values().map(move |v| from_u128(v, v6))
    }
}

// ---- Serialized form -------------------------------------------------------------------------
//
// {"subnet":"172.18.0.0/16","gateway":"172.18.0.1","allocated":["172.18.0.2-172.18.0.9",
//  "172.18.0.12"],"next":"172.18.0.10"}
//
// Allocated addresses are written as runs ("a-b", or "a" for a single address), so a /8 with a
// million addresses in use serializes to one string. Everything is re-validated on load.

/// One allocated run, written as "a" or "a-b".
struct RunText(IpAddr, IpAddr);

impl fmt::Display for RunText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}-{}", self.0, self.1)
        }
    }
}

struct RunsOut<'a>(&'a Pool);

impl Serialize for RunsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.0
                .allocated_ranges()
                .map(|(a, b)| RunText(a, b).to_string()),
        )
    }
}

#[derive(Serialize)]
struct PoolOut<'a> {
    subnet: IpNetwork,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_range: Option<IpNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    aux_addresses: &'a BTreeMap<String, IpAddr>,
    allocated: RunsOut<'a>,
    next: IpAddr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolIn {
    subnet: IpNetwork,
    #[serde(default)]
    ip_range: Option<IpNetwork>,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    aux_addresses: BTreeMap<String, IpAddr>,
    #[serde(default)]
    allocated: Vec<String>,
    #[serde(default)]
    next: Option<IpAddr>,
}

impl Serialize for Pool {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PoolOut {
            subnet: self.subnet,
            ip_range: self.ip_range,
            gateway: self.gateway,
            aux_addresses: &self.aux,
            allocated: RunsOut(self),
            next: from_u128(self.next, self.is_v6()),
        }
        .serialize(s)
    }
}

impl Pool {
    /// Rebuilds a pool from its serialized form, checking every run and the cursor.
    fn restore(raw: PoolIn) -> Result<Pool, String> {
        let mut pool = Pool::new(raw.subnet, raw.ip_range, raw.gateway, raw.aux_addresses)
            .map_err(|e| e.to_string())?;
        let (ulo, uhi) = usable_bounds(&pool.subnet);
        for text in &raw.allocated {
            let (a, b) = text.split_once('-').unwrap_or((text, text));
            let parse = |t: &str| -> Result<u128, String> {
                let addr: IpAddr = t
                    .parse()
                    .map_err(|_| format!("bad address {t:?} in allocated run {text:?}"))?;
                pool.check_member(addr)
                    .map_err(|why| format!("allocated run {text:?}: {why}"))
            };
            let (s, e) = (parse(a)?, parse(b)?);
            if s > e || s < ulo || e > uhi || pool.reserved.count_in(s, e) > 0 {
                return Err(format!(
                    "allocated run {text:?} is reversed or covers a reserved address"
                ));
            }
            if !pool.allocated.insert_run(s, e) {
                return Err(format!("allocated run {text:?} overlaps another run"));
            }
        }
        if let Some(next) = raw.next {
            let v = pool
                .check_member(next)
                .map_err(|why| format!("cursor {next}: {why}"))?;
            if v < pool.lo || v > pool.hi {
                return Err(format!("cursor {next} is outside the allocation range"));
            }
            pool.next = v;
        }
        Ok(pool)
    }
}

impl<'de> Deserialize<'de> for Pool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = PoolIn::deserialize(d)?;
        let subnet = raw.subnet;
        Pool::restore(raw)
            .map_err(|e| serde::de::Error::custom(format!("saved pool {subnet}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }
    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    const L: AddressSpace = AddressSpace::Local;

    #[test]
    fn pool_id_round_trips() {
        let id: PoolId = "local/172.18.0.0/16".parse().unwrap();
        assert_eq!(id, PoolId::new(L, n("172.18.0.0/16")));
        assert_eq!(id.to_string(), "local/172.18.0.0/16");
        let id6: PoolId = "global/fd00:1::/64".parse().unwrap();
        assert_eq!(id6.space(), AddressSpace::Global);
        assert_eq!(
            serde_json::to_string(&id6).unwrap(),
            r#""global/fd00:1::/64""#
        );
        for bad in [
            "",
            "local",
            "local/",
            "space/10.0.0.0/8",
            "local/10.0.0.1",
            "local/10.0.0.1/8",
        ] {
            let err = bad.parse::<PoolId>().unwrap_err();
            assert!(matches!(err, IpamError::InvalidPoolId { .. }), "{bad}");
            assert!(err.to_string().contains("expected SPACE/SUBNET"));
        }
    }

    #[test]
    fn usable_bounds_by_prefix() {
        assert_eq!(usable_bounds(&n("10.0.0.0/30")), (0x0a00_0001, 0x0a00_0002));
        assert_eq!(usable_bounds(&n("10.0.0.0/31")), (0x0a00_0000, 0x0a00_0001));
        assert_eq!(usable_bounds(&n("10.0.0.0/32")), (0x0a00_0000, 0x0a00_0000));
        assert_eq!(
            usable_bounds(&n("fd00::/126")),
            (to_u128(a("fd00::1")), to_u128(a("fd00::3")))
        );
        assert_eq!(
            usable_bounds(&n("fd00::/127")),
            (to_u128(a("fd00::")), to_u128(a("fd00::1")))
        );
        assert_eq!(auto_gateway(&n("172.18.0.0/16")), a("172.18.0.1"));
        assert_eq!(auto_gateway(&n("fd00::/64")), a("fd00::1"));
    }

    #[test]
    fn point_to_point_subnets_use_every_address() {
        let mut p = Pool::new(n("10.0.0.0/31"), None, None, BTreeMap::new()).unwrap();
        assert_eq!(p.capacity(), 2);
        assert_eq!(p.request(L, None).unwrap(), a("10.0.0.0"));
        assert_eq!(p.request(L, None).unwrap(), a("10.0.0.1"));
        assert!(matches!(
            p.request(L, None),
            Err(IpamError::Exhausted { .. })
        ));
        let mut p = Pool::new(n("fd00::/128"), None, None, BTreeMap::new()).unwrap();
        assert_eq!(p.request(L, None).unwrap(), a("fd00::"));
    }

    #[test]
    fn next_free_skips_reserved_runs_and_wraps() {
        let aux = BTreeMap::from([
            ("x".to_string(), a("10.0.0.3")),
            ("y".to_string(), a("10.0.0.4")),
        ]);
        let mut p = Pool::new(n("10.0.0.0/29"), None, Some(a("10.0.0.1")), aux).unwrap();
        assert_eq!(p.capacity(), 3); // .2 .5 .6
        assert_eq!(p.request(L, None).unwrap(), a("10.0.0.2"));
        assert_eq!(p.request(L, None).unwrap(), a("10.0.0.5"));
        p.release(L, a("10.0.0.2")).unwrap();
        // Round robin: .6 before reusing .2.
        assert_eq!(p.request(L, None).unwrap(), a("10.0.0.6"));
        assert_eq!(p.request(L, None).unwrap(), a("10.0.0.2"));
        assert!(matches!(
            p.request(L, None),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn serialized_form_is_compact_and_validated() {
        let mut p = Pool::new(n("10.0.0.0/8"), None, Some(a("10.0.0.1")), BTreeMap::new()).unwrap();
        for _ in 0..1000 {
            p.request(L, None).unwrap();
        }
        p.request(L, Some(a("10.9.9.9"))).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"subnet":"10.0.0.0/8","gateway":"10.0.0.1","allocated":["10.0.0.2-10.0.3.233","10.9.9.9"],"next":"10.0.3.234"}"#
        );
        let back: Pool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);

        for (bad, needle) in [
            (
                r#"{"subnet":"10.0.0.0/24","allocated":["10.0.0.0"]}"#,
                "reserved",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","gateway":"10.0.0.1","allocated":["10.0.0.1-10.0.0.3"]}"#,
                "reserved",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","allocated":["10.0.0.5-10.0.0.3"]}"#,
                "reversed",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","allocated":["10.0.0.2-10.0.0.5","10.0.0.4"]}"#,
                "overlaps",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","allocated":["10.0.1.4"]}"#,
                "outside subnet",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","allocated":["fd00::1"]}"#,
                "IP family",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","allocated":["nope"]}"#,
                "bad address",
            ),
            (
                r#"{"subnet":"10.0.0.0/24","ip_range":"10.0.0.128/25","next":"10.0.0.5"}"#,
                "cursor",
            ),
            (r#"{"subnet":"10.0.0.1/24"}"#, "host bits"),
            (
                r#"{"subnet":"10.0.0.0/24","colour":"red"}"#,
                "unknown field",
            ),
        ] {
            let err = serde_json::from_str::<Pool>(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
