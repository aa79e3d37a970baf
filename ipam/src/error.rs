//! The one error type of the crate.
//!
//! Every variant carries enough context to print a sentence an end user can act on (which
//! subnet, which pool, which address), because these messages travel unchanged to `netctl` and
//! to the Docker CLI. Callers that need to branch (e.g. the daemon mapping to HTTP 404/409)
//! match on the variant, never on the text.

use std::fmt;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::pool::PoolId;
use crate::space::AddressSpace;

/// Why an address cannot be handed out even though nobody holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reserved {
    /// The first address of an IPv4 subnet.
    Network,
    /// The last address of an IPv4 subnet.
    Broadcast,
    /// The first address of an IPv6 subnet (RFC 4291 section 2.6.1).
    SubnetRouterAnycast,
    /// The pool's gateway.
    Gateway,
    /// An auxiliary address reserved at pool creation, with its name.
    Aux(String),
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reserved::Network => f.write_str("the network address"),
            Reserved::Broadcast => f.write_str("the broadcast address"),
            Reserved::SubnetRouterAnycast => f.write_str("the subnet-router anycast address"),
            Reserved::Gateway => f.write_str("the gateway"),
            Reserved::Aux(name) => write!(f, "auxiliary address {name:?}"),
        }
    }
}

/// Errors returned by the allocator.
///
/// Field names (`pool`, `addr`, `subnet`, `space`, …) are the values the message mentions.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpamError {
    /// An explicit subnet overlaps a pool that already exists in the same address space.
    #[error("subnet {requested} overlaps existing pool {existing} in address space {space}")]
    PoolOverlap {
        requested: IpNetwork,
        existing: IpNetwork,
        space: AddressSpace,
    },

    /// Every subnet of the default address pools is taken (or overlaps an explicit pool).
    #[error(
        "all default IPv{family} address pools of address space {space} are in use; \
         free a network or configure more default address pools"
    )]
    NoFreePool { space: AddressSpace, family: u8 },

    /// An IPv6 pool was requested without a subnet and no IPv6 default pool is configured.
    #[error(
        "no default IPv6 address pool is configured in address space {space}; \
         specify an IPv6 subnet"
    )]
    NoDefaultV6Pool { space: AddressSpace },

    /// The pool has no free address left in its allocation range.
    #[error("no free address left in pool {pool}")]
    Exhausted { pool: PoolId },

    /// A specific address was requested but someone already holds it.
    #[error("address {addr} is already in use in pool {pool}")]
    AddressInUse { addr: IpAddr, pool: PoolId },

    /// The address is not inside the pool's subnet (or is of the other IP family).
    #[error("address {addr} is outside subnet {subnet} of pool {pool}")]
    AddressOutOfRange {
        addr: IpAddr,
        subnet: IpNetwork,
        pool: PoolId,
    },

    /// The address is reserved in the pool (network, broadcast, gateway, auxiliary).
    #[error("address {addr} is reserved in pool {pool}: it is {reason}")]
    ReservedAddress {
        addr: IpAddr,
        pool: PoolId,
        reason: Reserved,
    },

    /// An address was released that is not allocated.
    #[error("address {addr} is not allocated in pool {pool}")]
    AddressNotAllocated { addr: IpAddr, pool: PoolId },

    /// No pool with this id exists.
    #[error("no such pool {pool}")]
    UnknownPool { pool: PoolId },

    /// `release_pool` without `force` while addresses are still allocated.
    #[error(
        "pool {pool} still has {count} allocated address(es); \
         release them first or force the release"
    )]
    PoolInUse { pool: PoolId, count: u128 },

    /// The requested subnet is unusable.
    #[error("invalid subnet {subnet}: {reason}")]
    InvalidSubnet { subnet: IpNetwork, reason: String },

    /// The requested `ip_range` is unusable.
    #[error("invalid IP range {range}: {reason}")]
    InvalidRange { range: IpNetwork, reason: String },

    /// The requested gateway is unusable.
    #[error("invalid gateway {gateway}: {reason}")]
    InvalidGateway { gateway: IpAddr, reason: String },

    /// An auxiliary address is unusable.
    #[error("invalid auxiliary address {name}={addr}: {reason}")]
    InvalidAuxAddress {
        name: String,
        addr: IpAddr,
        reason: String,
    },

    /// A pool request is inconsistent as a whole (e.g. a gateway without a subnet).
    #[error("invalid pool request: {reason}")]
    InvalidRequest { reason: String },

    /// A pool id string could not be parsed.
    #[error("invalid pool id {input:?}: expected SPACE/SUBNET, e.g. local/172.18.0.0/16")]
    InvalidPoolId { input: String },

    /// A default address pool (`base=...,size=...`) is invalid.
    #[error("invalid default address pool {input:?}: {reason}")]
    InvalidDefaultPool { input: String, reason: String },
}
