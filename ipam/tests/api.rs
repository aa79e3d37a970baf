//! Behaviour of the public API, one Docker rule or one error per test.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipam::{AddressSpace, DefaultPool, Ipam, IpamError, PoolId, PoolRequest, Reserved};
use ipnetwork::IpNetwork;

const L: AddressSpace = AddressSpace::Local;
const G: AddressSpace = AddressSpace::Global;

fn n(s: &str) -> IpNetwork {
    s.parse().unwrap()
}
fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn id(s: &str) -> PoolId {
    s.parse().unwrap()
}
fn pools(list: &[&str]) -> Vec<DefaultPool> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}
fn explicit(ipam: &mut Ipam, space: AddressSpace, subnet: &str) -> PoolId {
    ipam.request_pool(&PoolRequest::subnet(space, n(subnet)))
        .unwrap()
}

// ---- default pools ----------------------------------------------------------------------------

#[test]
fn default_pools_follow_docker_order_then_run_out() {
    let mut ipam = Ipam::new();
    let mut got = Vec::new();
    loop {
        match ipam.request_pool(&PoolRequest::any(L)) {
            Ok(id) => got.push(id.subnet()),
            Err(e) => {
                assert_eq!(
                    e,
                    IpamError::NoFreePool {
                        space: L,
                        family: 4
                    }
                );
                assert_eq!(
                    e.to_string(),
                    "all default IPv4 address pools of address space local are in use; \
                     free a network or configure more default address pools"
                );
                break;
            }
        }
    }
    assert_eq!(got.len(), 15 + 16);
    assert_eq!(got[0], n("172.17.0.0/16"));
    assert_eq!(got[1], n("172.18.0.0/16"));
    assert_eq!(got[14], n("172.31.0.0/16"));
    assert_eq!(got[15], n("192.168.0.0/20"));
    assert_eq!(got[16], n("192.168.16.0/20"));
    assert_eq!(got[30], n("192.168.240.0/20"));
    // The global space is independent and uses 10.0.0.0/8 as /24s.
    assert_eq!(
        ipam.request_pool(&PoolRequest::any(G)).unwrap(),
        id("global/10.0.0.0/24")
    );
}

#[test]
fn default_request_skips_explicit_pools() {
    let mut ipam = Ipam::new();
    explicit(&mut ipam, L, "172.17.5.0/24");
    assert_eq!(
        ipam.request_pool(&PoolRequest::any(L)).unwrap(),
        id("local/172.18.0.0/16")
    );
    // One explicit pool covering every 172 default: next is 192.168.0.0/20.
    let mut ipam = Ipam::new();
    explicit(&mut ipam, L, "172.16.0.0/12");
    assert_eq!(
        ipam.request_pool(&PoolRequest::any(L)).unwrap(),
        id("local/192.168.0.0/20")
    );
    // Pools in the other space do not matter.
    let mut ipam = Ipam::new();
    explicit(&mut ipam, G, "172.17.0.0/16");
    assert_eq!(
        ipam.request_pool(&PoolRequest::any(L)).unwrap(),
        id("local/172.17.0.0/16")
    );
}

#[test]
fn huge_default_bases_are_searched_without_enumerating() {
    // 10.0.0.0/8 as /24s with the first half taken by one pool: answered by a jump, not by
    // probing 32,768 candidates.
    let mut ipam = Ipam::with_default_pools(pools(&["base=10.0.0.0/8,size=24"]), vec![]);
    explicit(&mut ipam, L, "10.0.0.0/9");
    explicit(&mut ipam, L, "10.128.0.0/28");
    assert_eq!(
        ipam.request_pool(&PoolRequest::any(L)).unwrap(),
        id("local/10.128.1.0/24")
    );
    // 2^56 IPv6 candidates, half taken.
    let mut ipam = Ipam::with_default_pools(pools(&["base=fd00::/8,size=64"]), vec![]);
    explicit(&mut ipam, L, "fd00::/9");
    assert_eq!(
        ipam.request_pool(&PoolRequest::any_v6(L)).unwrap(),
        id("local/fd80::/64")
    );
    // All of it taken.
    ipam.release_pool(&id("local/fd80::/64"), false).unwrap();
    explicit(&mut ipam, L, "fd80::/9");
    assert_eq!(
        ipam.request_pool(&PoolRequest::any_v6(L)),
        Err(IpamError::NoFreePool {
            space: L,
            family: 6
        })
    );
}

#[test]
fn configured_defaults_replace_dockers_and_are_tried_in_order() {
    let mut ipam = Ipam::new();
    ipam.set_default_pools(
        L,
        pools(&[
            "base=10.20.0.0/16,size=24",
            "base=fd00:1::/48,size=64",
            "base=10.30.0.0/24,size=25",
        ]),
    );
    assert_eq!(ipam.default_pools(L).len(), 3);
    let first = ipam.request_pool(&PoolRequest::any(L)).unwrap();
    assert_eq!(first, id("local/10.20.0.0/24"));
    let v6 = ipam.request_pool(&PoolRequest::any_v6(L)).unwrap();
    assert_eq!(v6, id("local/fd00:1::/64"));
    let v6b = ipam.request_pool(&PoolRequest::any_v6(L)).unwrap();
    assert_eq!(v6b, id("local/fd00:1:0:1::/64"));
}

#[test]
fn v6_without_subnet_needs_a_default_v6_pool() {
    let mut ipam = Ipam::new();
    let err = ipam.request_pool(&PoolRequest::any_v6(L)).unwrap_err();
    assert_eq!(err, IpamError::NoDefaultV6Pool { space: L });
    assert_eq!(
        err.to_string(),
        "no default IPv6 address pool is configured in address space local; \
         specify an IPv6 subnet"
    );
}

// ---- explicit pools and validation ------------------------------------------------------------

#[test]
fn overlap_is_refused_per_space_with_a_clear_message() {
    let mut ipam = Ipam::new();
    explicit(&mut ipam, L, "10.20.0.0/24");
    let err = ipam
        .request_pool(&PoolRequest::subnet(L, n("10.20.0.0/16")))
        .unwrap_err();
    assert_eq!(
        err,
        IpamError::PoolOverlap {
            requested: n("10.20.0.0/16"),
            existing: n("10.20.0.0/24"),
            space: L
        }
    );
    assert_eq!(
        err.to_string(),
        "subnet 10.20.0.0/16 overlaps existing pool 10.20.0.0/24 in address space local"
    );
    // Same subnet again, and a smaller one inside.
    assert!(matches!(
        ipam.request_pool(&PoolRequest::subnet(L, n("10.20.0.0/24"))),
        Err(IpamError::PoolOverlap { .. })
    ));
    assert!(matches!(
        ipam.request_pool(&PoolRequest::subnet(L, n("10.20.0.128/25"))),
        Err(IpamError::PoolOverlap { .. })
    ));
    // Neighbours, the other space and the other family are fine.
    explicit(&mut ipam, L, "10.20.1.0/24");
    explicit(&mut ipam, G, "10.20.0.0/16");
    explicit(&mut ipam, L, "::/0");
    assert_eq!(
        ipam.overlapping(L, &n("10.20.0.0/16")),
        Some(id("local/10.20.0.0/24"))
    );
    assert_eq!(
        ipam.overlapping(L, &n("10.20.1.7/32")),
        Some(id("local/10.20.1.0/24"))
    );
    assert_eq!(ipam.overlapping(L, &n("10.21.0.0/16")), None);
    assert_eq!(ipam.overlapping(L, &n("fd00::/64")), Some(id("local/::/0")));
}

#[test]
fn invalid_pool_requests() {
    let mut ipam = Ipam::new();
    let sub = |s: &str| PoolRequest::subnet(L, n(s));
    let cases: Vec<(PoolRequest, &str)> = vec![
        (sub("10.1.2.3/16"), "invalid subnet 10.1.2.3/16: host bits are set (did you mean 10.1.0.0/16?)"),
        (sub("10.1.0.0/16").with_ip_range(n("10.2.0.0/24")), "invalid IP range 10.2.0.0/24: it is not inside subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_ip_range(n("10.0.0.0/8")), "invalid IP range 10.0.0.0/8: it is not inside subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_ip_range(n("10.1.5.1/24")), "invalid IP range 10.1.5.1/24: host bits are set (did you mean 10.1.5.0/24?)"),
        (sub("10.1.0.0/16").with_ip_range(n("fd00::/64")), "invalid IP range fd00::/64: it is not in the IP family of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_ip_range(n("10.1.0.0/32")), "invalid IP range 10.1.0.0/32: it holds no usable address of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_gateway(a("10.2.0.1")), "invalid gateway 10.2.0.1: it is outside subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_gateway(a("10.1.0.0")), "invalid gateway 10.1.0.0: it is the network address of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_gateway(a("10.1.255.255")), "invalid gateway 10.1.255.255: it is the broadcast address of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_gateway(a("fd00::1")), "invalid gateway fd00::1: it is not in the IP family of subnet 10.1.0.0/16"),
        (sub("fd00::/64").with_gateway(a("fd00::")), "invalid gateway fd00::: it is the subnet-router anycast address of subnet fd00::/64"),
        (sub("10.1.0.0/16").with_aux("db", a("10.3.0.1")), "invalid auxiliary address db=10.3.0.1: it is outside subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_aux("db", a("10.1.0.0")), "invalid auxiliary address db=10.1.0.0: it is the network address of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_gateway(a("10.1.0.9")).with_aux("db", a("10.1.0.9")), "invalid auxiliary address db=10.1.0.9: it is the gateway of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_auto_gateway().with_aux("db", a("10.1.0.1")), "invalid auxiliary address db=10.1.0.1: it is the gateway of subnet 10.1.0.0/16"),
        (sub("10.1.0.0/16").with_aux("a", a("10.1.0.9")).with_aux("b", a("10.1.0.9")), "invalid auxiliary address b=10.1.0.9: it is auxiliary address \"a\" of subnet 10.1.0.0/16"),
        (PoolRequest::any(L).with_ip_range(n("10.1.0.0/24")), "invalid pool request: an IP range can only be given together with a subnet"),
        (PoolRequest::any(L).with_gateway(a("10.1.0.1")), "invalid pool request: a gateway can only be given together with a subnet"),
        (PoolRequest::any(L).with_aux("x", a("10.1.0.1")), "invalid pool request: auxiliary addresses can only be given together with a subnet"),
        (PoolRequest { v6: true, ..sub("10.1.0.0/16") }, "invalid pool request: an IPv6 pool was requested but subnet 10.1.0.0/16 is IPv4"),
    ];
    for (req, msg) in cases {
        let err = ipam.request_pool(&req).unwrap_err();
        assert_eq!(err.to_string(), msg, "{req:?}");
    }
    // Nothing was created by the failed requests.
    assert_eq!(ipam.pools().count(), 0);
}

#[test]
fn auto_gateway_is_first_address_of_subnet_even_with_ip_range() {
    let mut ipam = Ipam::new();
    let p = ipam
        .request_pool(
            &PoolRequest::subnet(L, n("172.18.0.0/16"))
                .with_ip_range(n("172.18.5.0/24"))
                .with_auto_gateway(),
        )
        .unwrap();
    assert_eq!(p, id("local/172.18.0.0/16"));
    assert_eq!(ipam.gateway(&p).unwrap(), Some(a("172.18.0.1")));
    // Next-free draws from the ip_range.
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("172.18.5.0"));
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("172.18.5.1"));
    // An explicit gateway wins over auto, and no gateway at all is possible.
    let q = ipam
        .request_pool(
            &PoolRequest::subnet(L, n("172.19.0.0/16"))
                .with_gateway(a("172.19.0.254"))
                .with_auto_gateway(),
        )
        .unwrap();
    assert_eq!(ipam.gateway(&q).unwrap(), Some(a("172.19.0.254")));
    let r = explicit(&mut ipam, L, "172.20.0.0/16");
    assert_eq!(ipam.gateway(&r).unwrap(), None);
    assert_eq!(ipam.request_address(&r, None).unwrap(), a("172.20.0.1"));
    // IPv6 auto gateway.
    let v6 = ipam
        .request_pool(&PoolRequest::subnet(L, n("fd00:1::/64")).with_auto_gateway())
        .unwrap();
    assert_eq!(ipam.gateway(&v6).unwrap(), Some(a("fd00:1::1")));
    assert_eq!(ipam.request_address(&v6, None).unwrap(), a("fd00:1::2"));
}

// ---- addresses --------------------------------------------------------------------------------

fn docker_like(ipam: &mut Ipam) -> PoolId {
    ipam.request_pool(
        &PoolRequest::subnet(L, n("10.5.0.0/24"))
            .with_ip_range(n("10.5.0.128/25"))
            .with_gateway(a("10.5.0.1"))
            .with_aux("router", a("10.5.0.130"))
            .with_aux("printer", a("10.5.0.200")),
    )
    .unwrap()
}

#[test]
fn specific_requests_and_their_errors() {
    let mut ipam = Ipam::new();
    let p = docker_like(&mut ipam);
    let pid = p.to_string();
    // Anywhere in the subnet, even outside the ip_range.
    assert_eq!(
        ipam.request_address(&p, Some(a("10.5.0.7"))).unwrap(),
        a("10.5.0.7")
    );
    let reserved = |addr: &str, reason: Reserved| IpamError::ReservedAddress {
        addr: a(addr),
        pool: p,
        reason,
    };
    let cases = [
        (
            "10.5.0.7",
            IpamError::AddressInUse {
                addr: a("10.5.0.7"),
                pool: p,
            },
            format!("address 10.5.0.7 is already in use in pool {pid}"),
        ),
        (
            "10.5.0.0",
            reserved("10.5.0.0", Reserved::Network),
            format!("address 10.5.0.0 is reserved in pool {pid}: it is the network address"),
        ),
        (
            "10.5.0.255",
            reserved("10.5.0.255", Reserved::Broadcast),
            format!("address 10.5.0.255 is reserved in pool {pid}: it is the broadcast address"),
        ),
        (
            "10.5.0.1",
            reserved("10.5.0.1", Reserved::Gateway),
            format!("address 10.5.0.1 is reserved in pool {pid}: it is the gateway"),
        ),
        (
            "10.5.0.130",
            reserved("10.5.0.130", Reserved::Aux("router".into())),
            format!(
                "address 10.5.0.130 is reserved in pool {pid}: it is auxiliary address \"router\""
            ),
        ),
        (
            "10.5.1.1",
            IpamError::AddressOutOfRange {
                addr: a("10.5.1.1"),
                subnet: n("10.5.0.0/24"),
                pool: p,
            },
            format!("address 10.5.1.1 is outside subnet 10.5.0.0/24 of pool {pid}"),
        ),
        (
            "fd00::1",
            IpamError::AddressOutOfRange {
                addr: a("fd00::1"),
                subnet: n("10.5.0.0/24"),
                pool: p,
            },
            format!("address fd00::1 is outside subnet 10.5.0.0/24 of pool {pid}"),
        ),
    ];
    for (addr, err, msg) in cases {
        let got = ipam.request_address(&p, Some(a(addr))).unwrap_err();
        assert_eq!(got, err);
        assert_eq!(got.to_string(), msg);
    }
    assert_eq!(ipam.allocated_count(&p).unwrap(), 1);
}

#[test]
fn next_free_stays_in_range_skips_reserved_and_round_robins() {
    let mut ipam = Ipam::new();
    let p = docker_like(&mut ipam);
    // ip_range 10.5.0.128/25: .128, .129, (.130 aux), .131 ...
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("10.5.0.128"));
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("10.5.0.129"));
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("10.5.0.131"));
    // Released addresses are not reused right away.
    ipam.release_address(&p, a("10.5.0.129")).unwrap();
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("10.5.0.132"));
    // A specific allocation ahead of the cursor is skipped over.
    ipam.request_address(&p, Some(a("10.5.0.133"))).unwrap();
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("10.5.0.134"));
    // Fill the rest of the range: .135..=.254 minus .200 (aux) = 119, then wrap to .129.
    for _ in 0..119 {
        let got = ipam.request_address(&p, None).unwrap();
        assert_ne!(got, a("10.5.0.200"));
        assert_ne!(got, a("10.5.0.255"));
    }
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("10.5.0.129"));
    let err = ipam.request_address(&p, None).unwrap_err();
    assert_eq!(err, IpamError::Exhausted { pool: p });
    assert_eq!(
        err.to_string(),
        "no free address left in pool local/10.5.0.0/24"
    );
    // Addresses outside the ip_range are still available specifically.
    ipam.request_address(&p, Some(a("10.5.0.2"))).unwrap();
    let info = ipam.pool_info(&p).unwrap();
    assert_eq!(info.capacity, 127 - 2); // .128..=.254 minus the two aux addresses
    assert_eq!(info.allocated, 127 - 2 + 1); // everything in range, plus .2 outside it
}

#[test]
fn small_pool_exhaustion_counts_exactly_the_usable_addresses() {
    let mut ipam = Ipam::new();
    let p = ipam
        .request_pool(&PoolRequest::subnet(L, n("192.0.2.0/29")).with_auto_gateway())
        .unwrap();
    assert_eq!(ipam.pool_info(&p).unwrap().capacity, 5);
    let got: Vec<IpAddr> = (0..5)
        .map(|_| ipam.request_address(&p, None).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "192.0.2.2",
            "192.0.2.3",
            "192.0.2.4",
            "192.0.2.5",
            "192.0.2.6"
        ]
        .map(a)
    );
    assert_eq!(
        ipam.request_address(&p, None),
        Err(IpamError::Exhausted { pool: p })
    );
    // Release-then-request gives the freed address back when it is the only one.
    ipam.release_address(&p, a("192.0.2.4")).unwrap();
    assert_eq!(ipam.request_address(&p, None).unwrap(), a("192.0.2.4"));
}

#[test]
fn ipv6_never_hands_out_the_anycast_address() {
    let mut ipam = Ipam::new();
    let p = explicit(&mut ipam, L, "fd00:2::/126");
    let got: Vec<IpAddr> = (0..3)
        .map(|_| ipam.request_address(&p, None).unwrap())
        .collect();
    assert_eq!(got, ["fd00:2::1", "fd00:2::2", "fd00:2::3"].map(a));
    assert_eq!(
        ipam.request_address(&p, None),
        Err(IpamError::Exhausted { pool: p })
    );
    assert_eq!(
        ipam.request_address(&p, Some(a("fd00:2::"))),
        Err(IpamError::ReservedAddress {
            addr: a("fd00:2::"),
            pool: p,
            reason: Reserved::SubnetRouterAnycast
        })
    );
    // A /64 hands out addresses as cheaply as a /24.
    let big = explicit(&mut ipam, L, "fd00:3::/64");
    assert_eq!(ipam.request_address(&big, None).unwrap(), a("fd00:3::1"));
    assert_eq!(
        ipam.request_address(&big, Some(a("fd00:3::ffff:ffff:ffff:ffff")))
            .unwrap(),
        a("fd00:3::ffff:ffff:ffff:ffff")
    );
    assert_eq!(ipam.pool_info(&big).unwrap().capacity, u128::from(u64::MAX));
}

#[test]
fn release_address_errors() {
    let mut ipam = Ipam::new();
    let p = docker_like(&mut ipam);
    let err = ipam.release_address(&p, a("10.5.0.9")).unwrap_err();
    assert_eq!(
        err,
        IpamError::AddressNotAllocated {
            addr: a("10.5.0.9"),
            pool: p
        }
    );
    assert_eq!(
        err.to_string(),
        "address 10.5.0.9 is not allocated in pool local/10.5.0.0/24"
    );
    assert!(matches!(
        ipam.release_address(&p, a("10.5.0.1")),
        Err(IpamError::ReservedAddress {
            reason: Reserved::Gateway,
            ..
        })
    ));
    assert!(matches!(
        ipam.release_address(&p, a("10.6.0.1")),
        Err(IpamError::AddressOutOfRange { .. })
    ));
    ipam.request_address(&p, Some(a("10.5.0.9"))).unwrap();
    ipam.release_address(&p, a("10.5.0.9")).unwrap();
    assert_eq!(ipam.is_allocated(&p, a("10.5.0.9")), Ok(false));
}

#[test]
fn unknown_pools() {
    let mut ipam = Ipam::new();
    explicit(&mut ipam, L, "10.0.0.0/24");
    // Same subnet, other space; and a different prefix at the same address.
    for missing in [id("global/10.0.0.0/24"), id("local/10.0.0.0/25")] {
        let err = ipam.request_address(&missing, None).unwrap_err();
        assert_eq!(err, IpamError::UnknownPool { pool: missing });
        assert_eq!(err.to_string(), format!("no such pool {missing}"));
        assert!(ipam.release_address(&missing, a("10.0.0.5")).is_err());
        assert!(ipam.release_pool(&missing, true).is_err());
        assert!(ipam.pool_info(&missing).is_err());
        assert!(ipam.gateway(&missing).is_err());
        assert!(ipam.allocated_count(&missing).is_err());
        assert!(ipam.allocated(&missing).is_err());
        assert!(ipam.allocated_ranges(&missing).is_err());
        assert!(ipam.is_allocated(&missing, a("10.0.0.5")).is_err());
    }
}

#[test]
fn release_pool_refuses_while_in_use_unless_forced() {
    let mut ipam = Ipam::new();
    let p = ipam
        .request_pool(&PoolRequest::any(L).with_auto_gateway())
        .unwrap();
    ipam.request_address(&p, None).unwrap();
    ipam.request_address(&p, None).unwrap();
    let err = ipam.release_pool(&p, false).unwrap_err();
    assert_eq!(err, IpamError::PoolInUse { pool: p, count: 2 });
    assert_eq!(
        err.to_string(),
        "pool local/172.17.0.0/16 still has 2 allocated address(es); \
         release them first or force the release"
    );
    ipam.release_pool(&p, true).unwrap();
    assert_eq!(ipam.pools().count(), 0);
    assert_eq!(
        ipam.release_pool(&p, false),
        Err(IpamError::UnknownPool { pool: p })
    );
    // The subnet is free again; a pool with only its gateway reserved releases unforced.
    let again = ipam
        .request_pool(&PoolRequest::any(L).with_auto_gateway())
        .unwrap();
    assert_eq!(again, p);
    assert_eq!(ipam.allocated_count(&again), Ok(0));
    ipam.release_pool(&again, false).unwrap();
}

// ---- introspection ----------------------------------------------------------------------------

#[test]
fn introspection() {
    let mut ipam = Ipam::new();
    let p = docker_like(&mut ipam);
    let d = ipam.request_pool(&PoolRequest::any(L)).unwrap();
    let g = explicit(&mut ipam, G, "fd00:9::/64");
    for addr in ["10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.9"] {
        ipam.request_address(&p, Some(a(addr))).unwrap();
    }
    let ids: Vec<PoolId> = ipam.pool_ids().collect();
    assert_eq!(ids, vec![p, d, g]);
    let info = ipam.pool_info(&p).unwrap();
    assert_eq!(info.id, p);
    assert_eq!(info.space, L);
    assert_eq!(info.subnet, n("10.5.0.0/24"));
    assert_eq!(info.ip_range, Some(n("10.5.0.128/25")));
    assert_eq!(info.gateway, Some(a("10.5.0.1")));
    assert_eq!(
        info.aux_addresses,
        BTreeMap::from([
            ("printer".to_string(), a("10.5.0.200")),
            ("router".to_string(), a("10.5.0.130"))
        ])
    );
    assert!(!info.v6);
    assert_eq!(info.allocated, 4);
    assert_eq!(info.capacity, 127 - 2); // .128..=.254 minus two aux
    assert!(ipam.pool_info(&g).unwrap().v6);
    assert_eq!(ipam.pools().map(|i| i.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        ipam.allocated(&p).unwrap().collect::<Vec<_>>(),
        ["10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.9"].map(a)
    );
    assert_eq!(
        ipam.allocated_ranges(&p).unwrap().collect::<Vec<_>>(),
        vec![
            (a("10.5.0.3"), a("10.5.0.5")),
            (a("10.5.0.9"), a("10.5.0.9"))
        ]
    );
    assert_eq!(ipam.is_allocated(&p, a("10.5.0.4")), Ok(true));
    assert_eq!(ipam.is_allocated(&p, a("10.5.0.6")), Ok(false));
    assert_eq!(ipam.is_allocated(&p, a("10.5.0.1")), Ok(false)); // reserved, not allocated
    assert!(matches!(
        ipam.is_allocated(&p, a("10.9.0.1")),
        Err(IpamError::AddressOutOfRange { .. })
    ));
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["id"], "local/10.5.0.0/24");
    assert_eq!(json["space"], "local");
}

// ---- persistence ------------------------------------------------------------------------------

#[test]
fn state_round_trips_and_continues_identically() {
    let mut ipam = Ipam::new();
    ipam.set_default_pools(
        G,
        pools(&["base=10.0.0.0/8,size=24", "base=fd00::/48,size=64"]),
    );
    let p = docker_like(&mut ipam);
    let big = explicit(&mut ipam, L, "11.0.0.0/8");
    let v6 = ipam
        .request_pool(&PoolRequest::any_v6(G).with_auto_gateway())
        .unwrap();
    for _ in 0..100_000 {
        ipam.request_address(&big, None).unwrap();
    }
    ipam.release_address(&big, a("11.0.0.50")).unwrap();
    ipam.request_address(&p, None).unwrap();
    ipam.request_address(&v6, None).unwrap();

    let json = serde_json::to_string(&ipam).unwrap();
    // 100,000 addresses in two runs: the state stays small.
    assert!(json.len() < 2_000, "{} bytes: {json}", json.len());
    assert!(
        json.contains(r#""allocated":["11.0.0.1-11.0.0.49","11.0.0.51-11.1.134.160"]"#),
        "{json}"
    );
    let mut back: Ipam = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ipam);
    for pool in [p, big, v6] {
        for _ in 0..5 {
            assert_eq!(
                back.request_address(&pool, None),
                ipam.request_address(&pool, None)
            );
        }
    }
    assert_eq!(
        back.request_pool(&PoolRequest::any(L)),
        ipam.request_pool(&PoolRequest::any(L))
    );
    assert_eq!(back, ipam);
}

#[test]
fn corrupt_state_is_refused() {
    let mut ipam = Ipam::new();
    explicit(&mut ipam, L, "10.0.0.0/16");
    let json = serde_json::to_string(&ipam).unwrap();
    let doubled = json.replace(
        r#""local":[{"subnet":"10.0.0.0/16""#,
        r#""local":[{"subnet":"10.0.0.0/24","next":"10.0.0.1"},{"subnet":"10.0.0.0/16""#,
    );
    assert_ne!(doubled, json);
    let err = serde_json::from_str::<Ipam>(&doubled)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("saved pool 10.0.0.0/16 overlaps saved pool 10.0.0.0/24"),
        "{err}"
    );
    let bad_default = json.replace(r#""size":20"#, r#""size":8"#);
    assert!(serde_json::from_str::<Ipam>(&bad_default).is_err());
}

#[test]
fn serialized_shape() {
    let mut ipam = Ipam::with_default_pools(pools(&["base=10.20.0.0/16,size=24"]), vec![]);
    let p = ipam
        .request_pool(&PoolRequest::any(L).with_auto_gateway())
        .unwrap();
    ipam.request_address(&p, None).unwrap();
    assert_eq!(
        serde_json::to_string(&ipam).unwrap(),
        r#"{"default_pools":{"local":[{"base":"10.20.0.0/16","size":24}],"global":[]},"pools":{"local":[{"subnet":"10.20.0.0/24","gateway":"10.20.0.1","allocated":["10.20.0.2"],"next":"10.20.0.3"}],"global":[]}}"#
    );
}
