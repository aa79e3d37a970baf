//! Default address pools: where subnets come from when a network is created without one.
//!
//! A [`DefaultPool`] is a base network split into equal subnets of a given prefix length,
//! exactly like dockerd's `--default-address-pool base=10.20.0.0/16,size=24`. Docker's built-in
//! list for the `local` space is 172.17.0.0/16 … 172.31.0.0/16 as /16s, then 192.168.0.0/16 as
//! /20s; the `global` space uses 10.0.0.0/8 as /24s (swarm's default).
//!
//! Candidate subnets are never materialised: 10.0.0.0/8 split into /24s is 65,536 subnets and an
//! IPv6 base can describe 2^64 of them. [`first_free_subnet`] walks candidates by arithmetic and,
//! when a candidate overlaps an existing pool, jumps straight past that pool's last address. Its
//! cost is therefore O(p · log P) for the p pools that sit inside the base (P pools in the
//! space), independent of how many candidate subnets the base holds.

use std::fmt;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::addr::{bounds, canonical, family_bits, from_u128};
use crate::error::IpamError;

/// A base network split into subnets of prefix length `size`.
///
/// Always valid once built: `base` is canonical and `base.prefix() <= size <= 32|128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawDefaultPool", into = "RawDefaultPool")]
pub struct DefaultPool {
    base: IpNetwork,
    size: u8,
}

/// The serialized shape, validated on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaultPool {
    base: IpNetwork,
    size: u8,
}

impl TryFrom<RawDefaultPool> for DefaultPool {
    type Error = IpamError;
    fn try_from(raw: RawDefaultPool) -> Result<Self, IpamError> {
        DefaultPool::new(raw.base, raw.size)
    }
}

impl From<DefaultPool> for RawDefaultPool {
    fn from(p: DefaultPool) -> Self {
        RawDefaultPool {
            base: p.base,
            size: p.size,
        }
    }
}

impl DefaultPool {
    /// A default pool splitting `base` into subnets of prefix length `size`.
    ///
    /// Host bits in `base` are cleared, as dockerd does (`10.20.1.0/16` means `10.20.0.0/16`).
    /// Fails if `size` is shorter than the base prefix, zero, or longer than the family allows.
    pub fn new(base: IpNetwork, size: u8) -> Result<Self, IpamError> {
        let base = canonical(&base);
        let invalid = |reason: String| IpamError::InvalidDefaultPool {
            input: format!("base={base},size={size}"),
            reason,
        };
        if size == 0 {
            return Err(invalid("size must be greater than 0".to_string()));
        }
        if size < base.prefix() {
            return Err(invalid(format!(
                "size {size} must be at least the base prefix length {}",
                base.prefix()
            )));
        }
        if size > family_bits(&base) {
            return Err(invalid(format!(
                "size {size} is longer than an IPv{} address",
                if base.is_ipv6() { 6 } else { 4 }
            )));
        }
        Ok(DefaultPool { base, size })
    }

    /// The network that is split.
    pub fn base(&self) -> IpNetwork {
        self.base
    }

    /// Prefix length of each subnet handed out.
    pub fn size(&self) -> u8 {
        self.size
    }

    /// True for an IPv6 base.
    pub fn is_ipv6(&self) -> bool {
        self.base.is_ipv6()
    }

    /// log2 of the address count of one subnet.
    fn host_bits(&self) -> u32 {
        u32::from(family_bits(&self.base) - self.size)
    }

    /// The candidate subnet starting at integer address `start`.
    fn subnet_at(&self, start: u128) -> IpNetwork {
        IpNetwork::new(from_u128(start, self.is_ipv6()), self.size)
            .expect("size was validated against the family")
    }

    /// Start of the first candidate that begins strictly after `addr`, if any.
    fn next_start_after(&self, addr: u128) -> Option<u128> {
        let (base_start, base_end) = bounds(&self.base);
        let hb = self.host_bits();
        if hb >= 128 {
            return None; // a single candidate covering everything
        }
        let index = ((addr.checked_sub(base_start)?) >> hb).checked_add(1)?;
        let start = base_start.checked_add(index.checked_shl(hb)?)?;
        // checked_shl only rejects shift amounts; catch the bits shifted out ourselves.
        if (start - base_start) >> hb != index || start > base_end {
            return None;
        }
        Some(start)
    }

    /// Every candidate subnet in order, lazily (no list is built).
    pub fn subnets(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        let (base_start, _) = bounds(&self.base);
        std::iter::successors(Some(base_start), move |&s| self.next_start_after(s))
            .map(move |s| self.subnet_at(s))
    }

    /// Docker's default list for the `local` space.
    pub fn docker_local() -> Vec<DefaultPool> {
        let mut pools: Vec<DefaultPool> = (17u8..=31)
            .map(|second| {
                let base = IpNetwork::new([172, second, 0, 0].into(), 16).expect("valid /16");
                DefaultPool::new(base, 16).expect("valid default")
            })
            .collect();
        let base = IpNetwork::new([192, 168, 0, 0].into(), 16).expect("valid /16");
        pools.push(DefaultPool::new(base, 20).expect("valid default"));
        pools
    }

    /// Docker's (swarm's) default list for the `global` space: 10.0.0.0/8 as /24s.
    pub fn docker_global() -> Vec<DefaultPool> {
        let base = IpNetwork::new([10, 0, 0, 0].into(), 8).expect("valid /8");
        vec![DefaultPool::new(base, 24).expect("valid default")]
    }
}

impl fmt::Display for DefaultPool {
    /// The `--default-address-pool` syntax, so that `to_string` and `from_str` round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "base={},size={}", self.base, self.size)
    }
}

impl FromStr for DefaultPool {
    type Err = IpamError;

    /// Parses dockerd's `--default-address-pool` value: comma-separated `key=value` fields,
    /// keys `base` and `size`, case-insensitive; a repeated key overrides the earlier one, like
    /// dockerd. Unknown keys and fields without `=` are refused. (dockerd reads the value as one
    /// CSV record; quoting is never needed for these values, so we split on commas.)
    fn from_str(input: &str) -> Result<Self, IpamError> {
        let invalid = |reason: String| IpamError::InvalidDefaultPool {
            input: input.to_string(),
            reason,
        };
        let mut base = None;
        let mut size = None;
        for field in input.trim().split(',') {
            let Some((key, value)) = field.split_once('=') else {
                return Err(invalid(format!(
                    "invalid field '{field}' must be a key=value pair"
                )));
            };
            match key.to_ascii_lowercase().as_str() {
                "base" => {
                    let net = value
                        .parse::<IpNetwork>()
                        .map_err(|e| invalid(format!("invalid base prefix {value:?}: {e}")))?;
                    // ipnetwork accepts a bare address as a host prefix; dockerd requires CIDR.
                    if !value.contains('/') {
                        return Err(invalid(format!(
                            "invalid base prefix {value:?}: missing /prefix length"
                        )));
                    }
                    base = Some(net);
                }
                "size" => {
                    let n = value.parse::<u8>().map_err(|_| {
                        invalid(format!("invalid size value {value:?} (must be an integer)"))
                    })?;
                    size = Some(n);
                }
                _ => {
                    return Err(invalid(format!("unexpected key '{key}' in '{field}'")));
                }
            }
        }
        let base = base.ok_or_else(|| invalid("missing base".to_string()))?;
        let size = size.ok_or_else(|| invalid("missing size".to_string()))?;
        DefaultPool::new(base, size).map_err(|e| match e {
            IpamError::InvalidDefaultPool { reason, .. } => invalid(reason),
            other => other,
        })
    }
}

/// The first candidate subnet of `pool` that overlaps nothing.
///
/// `overlap_end(lo, hi)` must return the last address of an existing pool overlapping
/// `lo..=hi` — when several do, the one that starts last (with disjoint pools, also the one
/// ending last) — or `None` if the range is free. Each overlap moves the search past a whole
/// existing pool, so the loop runs at most (pools inside the base + 1) times.
pub(crate) fn first_free_subnet(
    pool: &DefaultPool,
    mut overlap_end: impl FnMut(u128, u128) -> Option<u128>,
) -> Option<IpNetwork> {
    let (mut start, _) = bounds(&pool.base);
    loop {
        let (lo, hi) = bounds(&pool.subnet_at(start));
        match overlap_end(lo, hi) {
            None => return Some(pool.subnet_at(start)),
            Some(end) => start = pool.next_start_after(end)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn parses_dockerd_syntax() {
        let p: DefaultPool = "base=10.20.0.0/16,size=24".parse().unwrap();
        assert_eq!(p.base(), n("10.20.0.0/16"));
        assert_eq!(p.size(), 24);
        assert_eq!(p.to_string(), "base=10.20.0.0/16,size=24");
        // Keys are case-insensitive, order is free, the last repeated key wins.
        let p: DefaultPool = "SIZE=20,Base=10.0.0.0/8,size=24".parse().unwrap();
        assert_eq!((p.base(), p.size()), (n("10.0.0.0/8"), 24));
        // Host bits are cleared like Go's net.ParseCIDR.
        let p: DefaultPool = "base=10.20.1.0/16,size=24".parse().unwrap();
        assert_eq!(p.base(), n("10.20.0.0/16"));
        let p: DefaultPool = "base=fd00:abcd::/48,size=64".parse().unwrap();
        assert!(p.is_ipv6());
    }

    #[test]
    fn refuses_bad_pool_strings() {
        for (input, needle) in [
            ("base=10.0.0.0/8", "missing size"),
            ("size=24", "missing base"),
            ("base=10.0.0.0/8,size=x", "must be an integer"),
            ("base=10.0.0.0/8,size=-1", "must be an integer"),
            ("base=10.0.0.0/33,size=24", "invalid base prefix"),
            ("base=10.0.0.0,size=24", "missing /prefix length"),
            ("base=10.0.0.0/16,size=8", "at least the base prefix"),
            ("base=10.0.0.0/8,size=33", "longer than an IPv4"),
            ("base=0.0.0.0/0,size=0", "greater than 0"),
            (
                "base=10.0.0.0/8,size=24,scope=local",
                "unexpected key 'scope'",
            ),
            ("base=10.0.0.0/8,size", "must be a key=value pair"),
            ("", "must be a key=value pair"),
        ] {
            let err = input.parse::<DefaultPool>().unwrap_err();
            assert!(
                matches!(err, IpamError::InvalidDefaultPool { .. }),
                "{input}: {err:?}"
            );
            let msg = err.to_string();
            assert!(msg.contains(needle), "{input}: {msg}");
            assert!(msg.contains(&format!("{input:?}")), "{msg}");
        }
    }

    #[test]
    fn docker_defaults() {
        let local = DefaultPool::docker_local();
        assert_eq!(local.len(), 16);
        assert_eq!(local[0].to_string(), "base=172.17.0.0/16,size=16");
        assert_eq!(local[14].to_string(), "base=172.31.0.0/16,size=16");
        assert_eq!(local[15].to_string(), "base=192.168.0.0/16,size=20");
        assert_eq!(
            local.iter().map(|p| p.subnets().count()).sum::<usize>(),
            15 + 16
        );
        let global = DefaultPool::docker_global();
        assert_eq!(global[0].subnets().count(), 65_536);
        assert_eq!(global[0].subnets().last(), Some(n("10.255.255.0/24")));
    }

    #[test]
    fn subnets_are_lazy_even_for_huge_v6_bases() {
        let p = DefaultPool::new(n("fd00::/8"), 64).unwrap(); // 2^56 subnets
        let first: Vec<_> = p.subnets().take(2).collect();
        assert_eq!(first, vec![n("fd00::/64"), n("fd00:0:0:1::/64")]);
        let whole = DefaultPool::new(n("::/0"), 128).unwrap(); // 2^128 subnets
        assert_eq!(whole.subnets().nth(3), Some(n("::3/128")));
        let all = DefaultPool::new(n("::/1"), 1).unwrap();
        assert_eq!(all.subnets().count(), 1);
        let end = DefaultPool::new(n("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126"), 127).unwrap();
        assert_eq!(end.subnets().count(), 2);
    }

    #[test]
    fn first_free_skips_over_existing_pools() {
        let p = DefaultPool::new(n("10.0.0.0/8"), 24).unwrap();
        // Existing: 10.0.0.0/16 (covers 256 candidates) and 10.1.0.0/28 (inside a candidate).
        let existing = [bounds(&n("10.0.0.0/16")), bounds(&n("10.1.0.0/28"))];
        let mut calls = 0;
        let got = first_free_subnet(&p, |lo, hi| {
            calls += 1;
            existing
                .iter()
                .rev()
                .find(|&&(s, e)| s <= hi && e >= lo)
                .map(|&(_, e)| e)
        });
        assert_eq!(got, Some(n("10.1.1.0/24")));
        assert_eq!(calls, 3, "one probe per existing pool plus the free one");
        // Everything taken.
        let full = first_free_subnet(&p, |_, _| Some(bounds(&n("10.0.0.0/8")).1));
        assert_eq!(full, None);
    }

    #[test]
    fn serde_validates() {
        let p: DefaultPool = serde_json::from_str(r#"{"base":"10.0.0.0/8","size":24}"#).unwrap();
        assert_eq!(p.size(), 24);
        assert!(serde_json::from_str::<DefaultPool>(r#"{"base":"10.0.0.0/8","size":4}"#).is_err());
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"base":"10.0.0.0/8","size":24}"#
        );
    }
}
