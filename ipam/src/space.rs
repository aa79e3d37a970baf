//! Address spaces and the pools each one holds.
//!
//! Docker keeps two independent address spaces, `LocalDefault` (networks on this host) and
//! `GlobalDefault` (multi-host networks). Pools may not overlap inside one space, but the same
//! subnet can exist once in each. A [`Space`] keeps its pools in a `BTreeMap` keyed by
//! (family, first address); since pools in a space never overlap, the pool that could overlap a
//! range `lo..=hi` is always the last one starting at or before `hi`, so overlap checks are
//! O(log P) for P pools.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::addr::bounds;
use crate::pool::Pool;

/// One of the two address spaces. Serialized in lowercase (`"local"`, `"global"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AddressSpace {
    /// Networks that exist on this host only (Docker's `LocalDefault`).
    #[default]
    Local,
    /// Networks that span hosts (Docker's `GlobalDefault`).
    Global,
}

impl AddressSpace {
    /// Both spaces, in a fixed order.
    pub const ALL: [AddressSpace; 2] = [AddressSpace::Local, AddressSpace::Global];

    /// The lowercase name used in pool ids and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressSpace::Local => "local",
            AddressSpace::Global => "global",
        }
    }
}

impl fmt::Display for AddressSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AddressSpace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(AddressSpace::Local),
            "global" => Ok(AddressSpace::Global),
            other => Err(format!(
                "unknown address space {other:?} (expected local or global)"
            )),
        }
    }
}

/// A value per address space; used for both the pools and the default-pool configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PerSpace<T> {
    pub(crate) local: T,
    pub(crate) global: T,
}

impl<T> PerSpace<T> {
    pub(crate) fn get(&self, space: AddressSpace) -> &T {
        match space {
            AddressSpace::Local => &self.local,
            AddressSpace::Global => &self.global,
        }
    }

    pub(crate) fn get_mut(&mut self, space: AddressSpace) -> &mut T {
        match space {
            AddressSpace::Local => &mut self.local,
            AddressSpace::Global => &mut self.global,
        }
    }
}

/// Map key: IPv4 pools sort before IPv6 ones, then by first address.
type Key = (bool, u128);

fn key_of(subnet: &IpNetwork) -> Key {
    (subnet.is_ipv6(), bounds(subnet).0)
}

/// The pools of one address space, non-overlapping by construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Space {
    pools: BTreeMap<Key, Pool>,
}

impl Space {
    /// The pool whose subnet is exactly `subnet`. O(log P).
    pub(crate) fn get(&self, subnet: &IpNetwork) -> Option<&Pool> {
        self.pools
            .get(&key_of(subnet))
            .filter(|p| p.subnet() == *subnet)
    }

    /// Mutable variant of [`Space::get`]. O(log P).
    pub(crate) fn get_mut(&mut self, subnet: &IpNetwork) -> Option<&mut Pool> {
        self.pools
            .get_mut(&key_of(subnet))
            .filter(|p| p.subnet() == *subnet)
    }

    /// The existing pool overlapping `lo..=hi` in the given family that starts last, if any.
    /// O(log P).
    pub(crate) fn overlapping_range(&self, v6: bool, lo: u128, hi: u128) -> Option<&Pool> {
        let (_, pool) = self.pools.range(..=(v6, hi)).next_back()?;
        let (start, end) = bounds(&pool.subnet());
        (pool.subnet().is_ipv6() == v6 && start <= hi && end >= lo).then_some(pool)
    }

    /// The existing pool overlapping `subnet` with the lowest address, if any (the one an
    /// error message should name first). O(log P).
    pub(crate) fn overlapping(&self, subnet: &IpNetwork) -> Option<&Pool> {
        let v6 = subnet.is_ipv6();
        let (lo, hi) = bounds(subnet);
        // A pool starting at or before `lo` and reaching it...
        if let Some((_, pool)) = self.pools.range(..=(v6, lo)).next_back() {
            if pool.is_v6() == v6 && bounds(&pool.subnet()).1 >= lo {
                return Some(pool);
            }
        }
        // ...or else the first pool starting inside the range.
        self.pools
            .range((v6, lo)..=(v6, hi))
            .next()
            .map(|(_, pool)| pool)
    }

    /// Adds a pool, or returns the subnet of the existing pool it overlaps. O(log P).
    pub(crate) fn insert(&mut self, pool: Pool) -> Result<(), IpNetwork> {
        if let Some(existing) = self.overlapping(&pool.subnet()) {
            return Err(existing.subnet());
        }
        self.pools.insert(key_of(&pool.subnet()), pool);
        Ok(())
    }

    /// Removes the pool with exactly this subnet. O(log P).
    pub(crate) fn remove(&mut self, subnet: &IpNetwork) -> Option<Pool> {
        self.get(subnet)?;
        self.pools.remove(&key_of(subnet))
    }

    /// Pools in order (IPv4 first, then by address).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Pool> + '_ {
        self.pools.values()
    }
}

impl Serialize for Space {
    /// A plain list of pools; the map key is derived from each pool's subnet.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.pools.values())
    }
}

impl<'de> Deserialize<'de> for Space {
    /// Rebuilds the map and re-checks that no two pools overlap.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Pool>::deserialize(d)?;
        let mut space = Space::default();
        for pool in list {
            let subnet = pool.subnet();
            if let Err(existing) = space.insert(pool) {
                return Err(serde::de::Error::custom(format!(
                    "saved pool {subnet} overlaps saved pool {existing}"
                )));
            }
        }
        Ok(space)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_names() {
        assert_eq!(AddressSpace::Local.to_string(), "local");
        assert_eq!("global".parse::<AddressSpace>(), Ok(AddressSpace::Global));
        assert!("Local".parse::<AddressSpace>().is_err());
        assert_eq!(
            serde_json::to_string(&AddressSpace::Global).unwrap(),
            r#""global""#
        );
        assert_eq!(
            serde_json::from_str::<AddressSpace>(r#""local""#).unwrap(),
            AddressSpace::Local
        );
    }
}
