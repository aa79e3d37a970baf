//! Allocator benchmarks: `cargo bench -p ipam`.
//!
//! Figures are printed by divan (time per iteration; with the item counter, also per address).
//! Nothing here asserts on time.

use std::net::{IpAddr, Ipv4Addr};

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use ipam::{AddressSpace, Ipam, PoolId, PoolRequest};

const MILLION: usize = 1_000_000;

fn main() {
    divan::main();
}

fn pool(subnet: &str) -> (Ipam, PoolId) {
    let mut ipam = Ipam::new();
    let id = ipam
        .request_pool(
            &PoolRequest::subnet(AddressSpace::Local, subnet.parse().unwrap()).with_auto_gateway(),
        )
        .unwrap();
    (ipam, id)
}

/// A /8 with `n` addresses handed out by next-free requests.
fn filled_slash8(n: usize) -> (Ipam, PoolId, Vec<IpAddr>) {
    let (mut ipam, id) = pool("10.0.0.0/8");
    let addrs = (0..n)
        .map(|_| ipam.request_address(&id, None).unwrap())
        .collect();
    (ipam, id, addrs)
}

/// A permutation of 0..n (multiplying by a constant coprime to n), deterministic and cheap.
fn scatter(i: usize, n: usize) -> usize {
    ((i as u128 * 7_919_u128 * 1_000_003_u128) % n as u128) as usize
}

/// 1,000,000 next-free requests in a fresh /8.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn v4_slash8_request_1m(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MILLION))
        .with_inputs(|| pool("10.0.0.0/8"))
        .bench_local_values(|(mut ipam, id)| {
            for _ in 0..MILLION {
                black_box(ipam.request_address(&id, None).unwrap());
            }
            ipam
        });
}

/// Releasing those 1,000,000 addresses in allocation order.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn v4_slash8_release_1m_in_order(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MILLION))
        .with_inputs(|| filled_slash8(MILLION))
        .bench_local_values(|(mut ipam, id, addrs)| {
            for a in &addrs {
                ipam.release_address(&id, *a).unwrap();
            }
            (ipam, addrs)
        });
}

/// Releasing them in scattered order: the single run shatters into ~hundreds of thousands of
/// runs before it empties (the allocator's worst case for memory).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn v4_slash8_release_1m_scattered(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MILLION))
        .with_inputs(|| filled_slash8(MILLION))
        .bench_local_values(|(mut ipam, id, addrs)| {
            for i in 0..MILLION {
                ipam.release_address(&id, addrs[scatter(i, MILLION)])
                    .unwrap();
            }
            (ipam, addrs)
        });
}

/// The whole cycle the brief asks for: allocate 1,000,000 in a /8, release them all.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn v4_slash8_request_and_release_1m(bencher: Bencher) {
    bencher
        .counter(ItemsCount::new(MILLION))
        .with_inputs(|| pool("10.0.0.0/8"))
        .bench_local_values(|(mut ipam, id)| {
            let addrs: Vec<IpAddr> = (0..MILLION)
                .map(|_| ipam.request_address(&id, None).unwrap())
                .collect();
            for a in &addrs {
                ipam.release_address(&id, *a).unwrap();
            }
            ipam
        });
}

/// One next-free request on a /64 that already has 1,000,000 addresses out (the pool stays
/// far from full, so the state keeps growing across iterations without changing shape).
#[divan::bench]
fn v6_slash64_request_next_free(bencher: Bencher) {
    let (mut ipam, id) = pool("fd00:1::/64");
    for _ in 0..MILLION {
        ipam.request_address(&id, None).unwrap();
    }
    bencher.bench_local(|| black_box(ipam.request_address(&id, None).unwrap()));
}

/// One next-free request on a /64 whose allocations ahead of the cursor are fragmented: every
/// odd address of the first 400,000 is taken (200,000 separate runs), so each request fills a
/// one-address hole and merges two runs.
#[divan::bench]
fn v6_slash64_request_next_free_fragmented(bencher: Bencher) {
    let (mut ipam, id) = pool("fd00:1::/64");
    let base = u128::from("fd00:1::".parse::<std::net::Ipv6Addr>().unwrap());
    for k in 1..200_000u128 {
        let a = IpAddr::V6((base + 2 * k + 1).into());
        ipam.request_address(&id, Some(a)).unwrap();
    }
    bencher.bench_local(|| black_box(ipam.request_address(&id, None).unwrap()));
}

/// One specific-address request at a scattered position in a /8 that already holds 100,000
/// scattered addresses (~100,000 separate runs).
#[divan::bench]
fn v4_slash8_request_specific_scattered(bencher: Bencher) {
    let (mut ipam, id) = pool("10.0.0.0/8");
    let span = 1usize << 24;
    let at = |i: usize| {
        IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 + 2 + scatter(i, span - 4) as u32,
        ))
    };
    for i in 0..100_000 {
        ipam.request_address(&id, Some(at(i))).unwrap();
    }
    let mut i = 100_000;
    bencher.bench_local(|| {
        i += 1;
        // Collisions with earlier picks return AddressInUse; both paths are measured alike.
        black_box(ipam.request_address(&id, Some(at(i)))).ok()
    });
}

/// A specific request followed by its release, on the same fragmented /8 (steady state).
#[divan::bench]
fn v4_slash8_specific_request_release_pair(bencher: Bencher) {
    let (mut ipam, id) = pool("10.0.0.0/8");
    let span = 1usize << 24;
    let at = |i: usize| {
        IpAddr::V4(Ipv4Addr::from(
            0x0a00_0000 + 2 + scatter(i, span - 4) as u32,
        ))
    };
    for i in 0..100_000 {
        ipam.request_address(&id, Some(at(i))).unwrap();
    }
    let target = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1));
    let _ = ipam.release_address(&id, target);
    bencher.bench_local(|| {
        ipam.request_address(&id, Some(target)).unwrap();
        ipam.release_address(&id, target).unwrap();
    });
}

/// A default pool request when 1,000 default subnets are already taken (10.0.0.0/8 as /24s).
#[divan::bench]
fn request_default_pool_after_1000(bencher: Bencher) {
    let mut ipam =
        Ipam::with_default_pools(vec!["base=10.0.0.0/8,size=24".parse().unwrap()], vec![]);
    for _ in 0..1000 {
        ipam.request_pool(&PoolRequest::any(AddressSpace::Local))
            .unwrap();
    }
    bencher.bench_local(|| {
        let id = ipam
            .request_pool(&PoolRequest::any(AddressSpace::Local))
            .unwrap();
        ipam.release_pool(&id, false).unwrap();
    });
}

/// Serializing the /8 state with 1,000,000 addresses out (one run) to JSON.
#[divan::bench]
fn serialize_slash8_1m(bencher: Bencher) {
    let (ipam, _, _) = filled_slash8(MILLION);
    bencher.bench_local(|| black_box(serde_json::to_vec(&ipam).unwrap().len()));
}
