//! What a caller asks for when creating a pool.
//!
//! One struct covers Docker's cases: "any free default subnet" (leave `subnet` empty, pick the
//! family with `v6`), or an explicit subnet with an optional `ip_range`, `gateway` and
//! auxiliary addresses. Consistency is checked by [`crate::Ipam::request_pool`]; the builder
//! methods are only sugar.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::error::IpamError;
use crate::space::AddressSpace;

/// A request for a new pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolRequest {
    /// Address space the pool goes into.
    pub space: AddressSpace,
    /// Explicit subnet (canonical, e.g. `172.18.0.0/16`). `None`: take the first free subnet
    /// of the space's default pools.
    pub subnet: Option<IpNetwork>,
    /// Family of the default subnet when `subnet` is `None`. With a subnet, the subnet decides;
    /// `v6 = true` together with an IPv4 subnet is refused as contradictory.
    pub v6: bool,
    /// Sub-range that next-free requests draw from; must lie inside `subnet`.
    pub ip_range: Option<IpNetwork>,
    /// Gateway address, reserved in the pool; inside `subnet`, not its network or broadcast.
    pub gateway: Option<IpAddr>,
    /// Named addresses reserved in the pool (never handed out); inside `subnet`.
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// When no `gateway` is given, reserve the first usable address of the subnet as the
    /// gateway (e.g. 172.18.0.1 for 172.18.0.0/16, even if `ip_range` is elsewhere).
    pub auto_gateway: bool,
}

impl PoolRequest {
    /// Any free IPv4 subnet from the default pools of `space`.
    pub fn any(space: AddressSpace) -> Self {
        PoolRequest {
            space,
            ..Default::default()
        }
    }

    /// Any free IPv6 subnet from the default pools of `space` (fails unless an IPv6 default
    /// pool is configured).
    pub fn any_v6(space: AddressSpace) -> Self {
        PoolRequest {
            space,
            v6: true,
            ..Default::default()
        }
    }

    /// Exactly `subnet` in `space`.
    pub fn subnet(space: AddressSpace, subnet: IpNetwork) -> Self {
        PoolRequest {
            space,
            subnet: Some(subnet),
            v6: subnet.is_ipv6(),
            ..Default::default()
        }
    }

    /// Sets the sub-range next-free requests draw from.
    pub fn with_ip_range(mut self, range: IpNetwork) -> Self {
        self.ip_range = Some(range);
        self
    }

    /// Sets the gateway.
    pub fn with_gateway(mut self, gateway: IpAddr) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Adds a named auxiliary (reserved) address.
    pub fn with_aux(mut self, name: impl Into<String>, addr: IpAddr) -> Self {
        self.aux_addresses.insert(name.into(), addr);
        self
    }

    /// Picks the gateway automatically when none is given.
    pub fn with_auto_gateway(mut self) -> Self {
        self.auto_gateway = true;
        self
    }

    /// Checks what can be checked without looking at existing pools.
    pub(crate) fn check(&self) -> Result<(), IpamError> {
        match self.subnet {
            Some(subnet) => {
                if self.v6 && !subnet.is_ipv6() {
                    return Err(IpamError::InvalidRequest {
                        reason: format!("an IPv6 pool was requested but subnet {subnet} is IPv4"),
                    });
                }
                Ok(())
            }
            None => {
                let what = if self.ip_range.is_some() {
                    Some("an IP range")
                } else if self.gateway.is_some() {
                    Some("a gateway")
                } else if !self.aux_addresses.is_empty() {
                    Some("auxiliary addresses")
                } else {
                    None
                };
                match what {
                    Some(what) => Err(IpamError::InvalidRequest {
                        reason: format!("{what} can only be given together with a subnet"),
                    }),
                    None => Ok(()),
                }
            }
        }
    }
}
