//! Address arithmetic on `u128`.
//!
//! The allocator works on plain integers so that IPv4 and IPv6 share one code path: an IPv4
//! address is its `u32` value widened to `u128`, an IPv6 address is its `u128` value. The family
//! is carried next to the number (a pool knows whether it is v6), never inside it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

/// The integer value of an address.
pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address with integer value `v` in the given family.
///
/// For IPv4 `v` must fit in 32 bits; callers only pass values taken from IPv4 networks.
pub(crate) fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        debug_assert!(v <= u128::from(u32::MAX), "IPv4 value out of range: {v}");
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

/// Number of address bits in the family of `net` (32 or 128).
pub(crate) fn family_bits(net: &IpNetwork) -> u8 {
    if net.is_ipv6() {
        128
    } else {
        32
    }
}

/// First and last address of `net`, as integers (inclusive).
pub(crate) fn bounds(net: &IpNetwork) -> (u128, u128) {
    let start = to_u128(net.network());
    let host_bits = u32::from(family_bits(net) - net.prefix());
    // host_bits can be 128 for ::/0; build the mask without overflowing the shift.
    let span = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (start, start + span)
}

/// True if `net` is written in canonical form (no host bits set), e.g. `10.0.0.0/8` and not
/// `10.1.2.3/8`.
pub(crate) fn is_canonical(net: &IpNetwork) -> bool {
    net.ip() == net.network()
}

/// `net` with its host bits cleared.
pub(crate) fn canonical(net: &IpNetwork) -> IpNetwork {
    // Cannot fail: same prefix length, same family.
    IpNetwork::new(net.network(), net.prefix()).expect("prefix of an existing network is valid")
}

/// True if `inner` lies entirely inside `outer` (same family only).
pub(crate) fn contains_net(outer: &IpNetwork, inner: &IpNetwork) -> bool {
    if outer.is_ipv6() != inner.is_ipv6() {
        return false;
    }
    let (o0, o1) = bounds(outer);
    let (i0, i1) = bounds(inner);
    o0 <= i0 && i1 <= o1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_integers() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(to_u128(a), 0x0a01_0203);
        assert_eq!(from_u128(to_u128(a), false), a);
        let b: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(from_u128(to_u128(b), true), b);
    }

    #[test]
    fn bounds_of_networks() {
        assert_eq!(bounds(&n("10.0.0.0/8")), (0x0a00_0000, 0x0aff_ffff));
        assert_eq!(bounds(&n("10.0.0.7/32")), (0x0a00_0007, 0x0a00_0007));
        assert_eq!(bounds(&n("0.0.0.0/0")), (0, u128::from(u32::MAX)));
        assert_eq!(bounds(&n("::/0")), (0, u128::MAX));
        // Non-canonical input is measured from its network address.
        assert_eq!(bounds(&n("10.1.2.3/8")), (0x0a00_0000, 0x0aff_ffff));
    }

    #[test]
    fn canonical_form() {
        assert!(is_canonical(&n("10.0.0.0/8")));
        assert!(!is_canonical(&n("10.1.0.0/8")));
        assert_eq!(canonical(&n("10.1.0.0/8")), n("10.0.0.0/8"));
    }

    #[test]
    fn containment() {
        assert!(contains_net(&n("10.0.0.0/8"), &n("10.20.0.0/16")));
        assert!(!contains_net(&n("10.20.0.0/16"), &n("10.0.0.0/8")));
        assert!(!contains_net(&n("10.0.0.0/8"), &n("fd00::/64")));
    }
}
