//! The allocator facade: two address spaces, their default pools, and every operation the
//! daemon calls.
//!
//! `Ipam` is plain data. It derives `Clone`/`PartialEq` and (de)serializes to a compact form the
//! daemon persists after each change; restoring it gives a value equal to the one saved, which
//! continues allocating exactly as the original would have (the round-robin cursors are part of
//! the state).
//!
//! Costs, with P = pools in the space and n = allocated runs in the pool: pool lookups by id
//! O(log P); request/release of an address O(log n) (see `pool.rs`); explicit `request_pool`
//! O(log P + a) for a aux addresses; default `request_pool` O(p · log P) for the p pools lying
//! inside the default bases (never proportional to the number of candidate subnets);
//! `release_pool` O(log P).

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::addr::bounds;
use crate::defaults::{first_free_subnet, DefaultPool};
use crate::error::IpamError;
use crate::pool::{auto_gateway, Pool, PoolId, PoolInfo};
use crate::request::PoolRequest;
use crate::space::{AddressSpace, PerSpace, Space};

/// The IP address manager state. See the crate docs for an overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    /// Where subnets come from when a pool request names none.
    default_pools: PerSpace<Vec<DefaultPool>>,
    /// The pools, per address space.
    pools: PerSpace<Space>,
}

impl Default for Ipam {
    fn default() -> Self {
        Ipam::new()
    }
}

impl Ipam {
    /// An empty allocator with Docker's default pools (see [`DefaultPool::docker_local`] and
    /// [`DefaultPool::docker_global`]).
    pub fn new() -> Self {
        Ipam::with_default_pools(DefaultPool::docker_local(), DefaultPool::docker_global())
    }

    /// An empty allocator with the given default pools (e.g. parsed from
    /// `--default-address-pool` flags). IPv4 and IPv6 entries may be mixed; each request uses
    /// the entries of its family, in order.
    pub fn with_default_pools(local: Vec<DefaultPool>, global: Vec<DefaultPool>) -> Self {
        Ipam {
            default_pools: PerSpace { local, global },
            pools: PerSpace::default(),
        }
    }

    /// Replaces the default pools of `space`. Existing pools are kept as they are, even if they
    /// came from the old list. A daemon restoring saved state calls this with its current flags,
    /// since the saved state carries the defaults of the run that saved it.
    pub fn set_default_pools(&mut self, space: AddressSpace, pools: Vec<DefaultPool>) {
        *self.default_pools.get_mut(space) = pools;
    }

    /// The default pools of `space`, in the order they are tried.
    pub fn default_pools(&self, space: AddressSpace) -> &[DefaultPool] {
        self.default_pools.get(space)
    }

    /// Creates a pool and returns its id.
    ///
    /// Without a subnet, takes the first subnet of the space's default pools (of the requested
    /// family, in list order) that overlaps no existing pool of the space. With a subnet,
    /// refuses it if it overlaps an existing pool of the space. Validates `ip_range`, `gateway`
    /// and auxiliary addresses, and reserves the gateway (picked automatically when
    /// `auto_gateway` is set and none is given) and the auxiliary addresses.
    pub fn request_pool(&mut self, req: &PoolRequest) -> Result<PoolId, IpamError> {
        req.check()?;
        let space = req.space;
        let subnet = match req.subnet {
            Some(subnet) => {
                if let Some(existing) = self.pools.get(space).overlapping(&subnet) {
                    return Err(IpamError::PoolOverlap {
                        requested: subnet,
                        existing: existing.subnet(),
                        space,
                    });
                }
                subnet
            }
            None => self.free_default_subnet(space, req.v6)?,
        };
        let gateway = match req.gateway {
            None if req.auto_gateway => Some(auto_gateway(&subnet)),
            other => other,
        };
        let pool = Pool::new(subnet, req.ip_range, gateway, req.aux_addresses.clone())?;
        let id = pool.id(space);
        self.pools
            .get_mut(space)
            .insert(pool)
            .map_err(|existing| IpamError::PoolOverlap {
                requested: subnet,
                existing,
                space,
            })?;
        Ok(id)
    }

    /// First default subnet of the family that overlaps no pool of `space`.
    fn free_default_subnet(&self, space: AddressSpace, v6: bool) -> Result<IpNetwork, IpamError> {
        let pools = self.pools.get(space);
        let mut candidates = self
            .default_pools
            .get(space)
            .iter()
            .filter(|d| d.is_ipv6() == v6)
            .peekable();
        if v6 && candidates.peek().is_none() {
            return Err(IpamError::NoDefaultV6Pool { space });
        }
        candidates
            .find_map(|d| {
                first_free_subnet(d, |lo, hi| {
                    pools
                        .overlapping_range(v6, lo, hi)
                        .map(|p| bounds(&p.subnet()).1)
                })
            })
            .ok_or(IpamError::NoFreePool {
                space,
                family: if v6 { 6 } else { 4 },
            })
    }

    /// Deletes a pool. Refused with [`IpamError::PoolInUse`] while addresses are allocated,
    /// unless `force` is set (then they are dropped with the pool).
    pub fn release_pool(&mut self, id: &PoolId, force: bool) -> Result<(), IpamError> {
        let pool = self.pool(id)?;
        let count = pool.allocated_count();
        if count > 0 && !force {
            return Err(IpamError::PoolInUse { pool: *id, count });
        }
        self.pools.get_mut(id.space()).remove(&id.subnet());
        Ok(())
    }

    /// Hands out `addr`, or the next free address when `None`.
    ///
    /// Next free: within the pool's `ip_range` if it has one, else the subnet, continuing after
    /// the last address handed out this way (round robin, wrapping). A specific address may be
    /// anywhere in the subnet, also outside `ip_range`. Never the network address, the IPv4
    /// broadcast, the IPv6 subnet-router anycast address, the gateway or an auxiliary address.
    pub fn request_address(
        &mut self,
        id: &PoolId,
        addr: Option<IpAddr>,
    ) -> Result<IpAddr, IpamError> {
        self.pool_mut(id)?.request(id.space(), addr)
    }

    /// Gives an address back. Fails with [`IpamError::AddressNotAllocated`] if it was not
    /// handed out (callers tearing down may ignore that one) and with
    /// [`IpamError::ReservedAddress`] for the gateway and auxiliary addresses.
    pub fn release_address(&mut self, id: &PoolId, addr: IpAddr) -> Result<(), IpamError> {
        self.pool_mut(id)?.release(id.space(), addr)
    }

    /// The pool's gateway (reserved when the pool was created), if it has one.
    pub fn gateway(&self, id: &PoolId) -> Result<Option<IpAddr>, IpamError> {
        Ok(self.pool(id)?.gateway())
    }

    /// Every pool of both spaces: `local` first, then `global`; IPv4 before IPv6, then by
    /// address.
    pub fn pools(&self) -> impl Iterator<Item = PoolInfo> + '_ {
        AddressSpace::ALL
            .into_iter()
            .flat_map(move |space| self.pools.get(space).iter().map(move |p| p.info(space)))
    }

    /// Ids of every pool, in the order of [`Ipam::pools`].
    pub fn pool_ids(&self) -> impl Iterator<Item = PoolId> + '_ {
        AddressSpace::ALL
            .into_iter()
            .flat_map(move |space| self.pools.get(space).iter().map(move |p| p.id(space)))
    }

    /// Everything about one pool, including its usage.
    pub fn pool_info(&self, id: &PoolId) -> Result<PoolInfo, IpamError> {
        Ok(self.pool(id)?.info(id.space()))
    }

    /// Number of addresses handed out from the pool (reserved ones not counted). O(log P).
    pub fn allocated_count(&self, id: &PoolId) -> Result<u128, IpamError> {
        Ok(self.pool(id)?.allocated_count())
    }

    /// The addresses handed out from the pool, ascending. Lazy: a pool with a million
    /// addresses in one run yields them one by one without building a list.
    pub fn allocated(&self, id: &PoolId) -> Result<impl Iterator<Item = IpAddr> + '_, IpamError> {
        Ok(self.pool(id)?.allocated_addrs())
    }

    /// The addresses handed out from the pool as inclusive `(first, last)` runs, ascending.
    pub fn allocated_ranges(
        &self,
        id: &PoolId,
    ) -> Result<impl Iterator<Item = (IpAddr, IpAddr)> + '_, IpamError> {
        Ok(self.pool(id)?.allocated_ranges())
    }

    /// True if `addr` is currently handed out from the pool. The gateway and auxiliary
    /// addresses are reserved, not allocated, so they report `false`.
    pub fn is_allocated(&self, id: &PoolId, addr: IpAddr) -> Result<bool, IpamError> {
        self.pool(id)?.is_allocated(id.space(), addr)
    }

    /// The pool of `space` that overlaps `subnet`, if any (what `netctl explain` reports when
    /// a subnet is refused). O(log P).
    pub fn overlapping(&self, space: AddressSpace, subnet: &IpNetwork) -> Option<PoolId> {
        self.pools
            .get(space)
            .overlapping(subnet)
            .map(|p| p.id(space))
    }

    fn pool(&self, id: &PoolId) -> Result<&Pool, IpamError> {
        self.pools
            .get(id.space())
            .get(&id.subnet())
            .ok_or(IpamError::UnknownPool { pool: *id })
    }

    fn pool_mut(&mut self, id: &PoolId) -> Result<&mut Pool, IpamError> {
        self.pools
            .get_mut(id.space())
            .get_mut(&id.subnet())
            .ok_or(IpamError::UnknownPool { pool: *id })
    }
}
