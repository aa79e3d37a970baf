//! A minimal IP prefix type (address + prefix length) for the table's "this reverse name is
//! ours" check; kept local so the table stays dependency-free.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix such as `172.17.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    addr: IpAddr,
    prefix: u8,
}

/// Errors from [`Subnet::new`] and parsing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubnetError {
    /// The prefix length is larger than the address width.
    #[error("prefix length {0} too long for the address family")]
    PrefixTooLong(u8),
    /// Not of the form `addr/len`.
    #[error("invalid subnet {0:?}")]
    Invalid(String),
}

impl Subnet {
    /// A prefix; host bits of `addr` are ignored by [`Subnet::contains`].
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, SubnetError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(SubnetError::PrefixTooLong(prefix));
        }
        Ok(Self { addr, prefix })
    }

    /// The address as given.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this prefix (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| SubnetError::Invalid(s.to_string()))?;
        let addr: IpAddr = a.parse().map_err(|_| SubnetError::Invalid(s.to_string()))?;
        let prefix: u8 = p.parse().map_err(|_| SubnetError::Invalid(s.to_string()))?;
        Self::new(addr, prefix)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains() {
        let s: Subnet = "172.18.0.0/16".parse().unwrap();
        assert!(s.contains("172.18.5.9".parse().unwrap()));
        assert!(!s.contains("172.19.0.1".parse().unwrap()));
        assert!(!s.contains("fd00::1".parse().unwrap()));
        let all: Subnet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Subnet = "fd00:1::/64".parse().unwrap();
        assert!(v6.contains("fd00:1::42".parse().unwrap()));
        assert!(!v6.contains("fd00:2::42".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("10.0.0.0".parse::<Subnet>().is_err());
    }
}
