//! Property tests: the allocator against simple models on small pools.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipam::{AddressSpace, DefaultPool, Ipam, IpamError, PoolId, PoolRequest};
use ipnetwork::IpNetwork;
use proptest::prelude::*;

const L: AddressSpace = AddressSpace::Local;

/// Address `off` of the test subnet family, counted from the subnet base.
fn addr(v6: bool, off: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(off)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + off))
    }
}

fn net(v6: bool, off: u32, host_bits: u32) -> IpNetwork {
    let prefix = if v6 { 128 - host_bits } else { 32 - host_bits } as u8;
    IpNetwork::new(addr(v6, off), prefix).unwrap()
}

/// A small pool definition, always valid.
#[derive(Debug, Clone)]
struct Shape {
    v6: bool,
    /// log2 of the subnet size (2..=6: /30../26 or /126../122).
    host_bits: u32,
    /// (offset, host bits) of the ip_range.
    range: Option<(u32, u32)>,
    gateway: Option<u32>,
    aux: BTreeSet<u32>,
}

impl Shape {
    fn size(&self) -> u32 {
        1 << self.host_bits
    }
    fn request(&self) -> PoolRequest {
        let mut req = PoolRequest::subnet(L, net(self.v6, 0, self.host_bits));
        if let Some((off, hb)) = self.range {
            req = req.with_ip_range(net(self.v6, off, hb));
        }
        if let Some(g) = self.gateway {
            req = req.with_gateway(addr(self.v6, g));
        }
        for (i, off) in self.aux.iter().enumerate() {
            req = req.with_aux(format!("aux{i}"), addr(self.v6, *off));
        }
        req
    }
    /// Offsets that can never be handed out.
    fn reserved(&self, off: u32) -> bool {
        off == 0
            || (!self.v6 && off == self.size() - 1)
            || self.gateway == Some(off)
            || self.aux.contains(&off)
    }
    /// Offsets next-free requests draw from, in order.
    fn range(&self) -> Vec<u32> {
        let (start, len) = match self.range {
            Some((off, hb)) => (off, 1 << hb),
            None => (0, self.size()),
        };
        (start..start + len)
            .filter(|&o| o != 0 && (self.v6 || o != self.size() - 1))
            .collect()
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    (any::<bool>(), 2u32..=6)
        .prop_flat_map(|(v6, hb)| {
            let size = 1u32 << hb;
            let range =
                prop::option::of((1..=hb).prop_flat_map(move |rhb| {
                    (0..(size >> rhb)).prop_map(move |i| (i << rhb, rhb))
                }));
            let gateway = prop::option::of(1..size - 1);
            let aux = prop::collection::btree_set(1..size - 1, 0..3);
            (Just(v6), Just(hb), range, gateway, aux)
        })
        .prop_map(|(v6, host_bits, range, gateway, mut aux)| {
            if let Some(g) = gateway {
                aux.remove(&g);
            }
            Shape {
                v6,
                host_bits,
                range,
                gateway,
                aux,
            }
        })
        // A range holding nothing but reserved-by-position addresses is refused at creation.
        .prop_filter("range has a usable address", |s| !s.range().is_empty())
}

#[derive(Debug, Clone)]
enum Op {
    Next,
    /// Offset from the subnet base; may fall outside the subnet.
    Specific(u32),
    Release(u32),
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(Op::Next),
            2 => (0u32..70).prop_map(Op::Specific),
            3 => (0u32..70).prop_map(Op::Release),
        ],
        0..max,
    )
}

/// The reference model: a set of held offsets and a cursor into the range order.
struct Model {
    shape: Shape,
    held: HashSet<u32>,
    order: Vec<u32>,
    cursor: usize,
}

impl Model {
    fn new(shape: &Shape) -> Self {
        Model {
            shape: shape.clone(),
            held: HashSet::new(),
            order: shape.range(),
            cursor: 0,
        }
    }

    /// The expected outcome of `op`: Ok(offset) or the error kind.
    fn apply(&mut self, op: &Op) -> Result<u32, &'static str> {
        let size = self.shape.size();
        match *op {
            Op::Next => {
                let n = self.order.len();
                for i in 0..n {
                    let idx = (self.cursor + i) % n;
                    let off = self.order[idx];
                    if !self.shape.reserved(off) && !self.held.contains(&off) {
                        self.held.insert(off);
                        self.cursor = (idx + 1) % n;
                        return Ok(off);
                    }
                }
                Err("exhausted")
            }
            Op::Specific(off) => {
                if off >= size {
                    Err("out of range")
                } else if self.shape.reserved(off) {
                    Err("reserved")
                } else if !self.held.insert(off) {
                    Err("in use")
                } else {
                    Ok(off)
                }
            }
            Op::Release(off) => {
                if off >= size {
                    Err("out of range")
                } else if self.shape.reserved(off) {
                    Err("reserved")
                } else if !self.held.remove(&off) {
                    Err("not allocated")
                } else {
                    Ok(off)
                }
            }
        }
    }
}

fn run(ipam: &mut Ipam, pool: &PoolId, v6: bool, op: &Op) -> Result<IpAddr, IpamError> {
    match *op {
        Op::Next => ipam.request_address(pool, None),
        Op::Specific(off) => ipam.request_address(pool, Some(addr(v6, off))),
        Op::Release(off) => ipam
            .release_address(pool, addr(v6, off))
            .map(|()| addr(v6, off)),
    }
}

fn kind(e: &IpamError) -> &'static str {
    match e {
        IpamError::Exhausted { .. } => "exhausted",
        IpamError::AddressOutOfRange { .. } => "out of range",
        IpamError::ReservedAddress { .. } => "reserved",
        IpamError::AddressInUse { .. } => "in use",
        IpamError::AddressNotAllocated { .. } => "not allocated",
        _ => "other",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every operation agrees exactly with the model (including which address next-free picks),
    /// so no address is ever handed out twice and the allocator's view equals the model's.
    #[test]
    fn allocator_matches_model(shape in shape(), ops in ops(150)) {
        let mut ipam = Ipam::new();
        let pool = ipam.request_pool(&shape.request()).unwrap();
        let mut model = Model::new(&shape);
        let mut handed_out = HashSet::new();
        for op in &ops {
            let got = run(&mut ipam, &pool, shape.v6, op);
            let want = model.apply(op);
            match (&got, want) {
                (Ok(a), Ok(off)) => {
                    prop_assert_eq!(*a, addr(shape.v6, off), "{:?}", op);
                    if !matches!(op, Op::Release(_)) {
                        prop_assert!(handed_out.insert(*a), "{} handed out twice", a);
                    } else {
                        handed_out.remove(a);
                    }
                }
                (Err(e), Err(k)) => prop_assert_eq!(kind(e), k, "{:?}: {}", op, e),
                _ => prop_assert!(false, "{:?}: got {:?}, model {:?}", op, got, want),
            }
            let mut view: Vec<IpAddr> = ipam.allocated(&pool).unwrap().collect();
            let mut expect: Vec<IpAddr> = model.held.iter().map(|&o| addr(shape.v6, o)).collect();
            view.sort();
            expect.sort();
            prop_assert_eq!(&view, &expect);
            prop_assert_eq!(ipam.allocated_count(&pool).unwrap(), model.held.len() as u128);
        }
    }

    /// Serializing and restoring at any point gives an equal state that then behaves
    /// identically.
    #[test]
    fn restore_continues_identically(shape in shape(), before in ops(80), after in ops(80)) {
        let mut ipam = Ipam::new();
        let pool = ipam.request_pool(&shape.request()).unwrap();
        for op in &before {
            let _ = run(&mut ipam, &pool, shape.v6, op);
        }
        let json = serde_json::to_string(&ipam).unwrap();
        let mut back: Ipam = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &ipam);
        for op in &after {
            prop_assert_eq!(run(&mut back, &pool, shape.v6, op), run(&mut ipam, &pool, shape.v6, op));
        }
        prop_assert_eq!(&back, &ipam);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), serde_json::to_string(&ipam).unwrap());
    }

    /// A small pool hands out exactly its usable addresses, all distinct, then says so.
    #[test]
    fn exhaustion_counts_usable_addresses(v6 in any::<bool>(), hb in 2u32..=8, gw in any::<bool>()) {
        let mut req = PoolRequest::subnet(L, net(v6, 0, hb));
        if gw {
            req = req.with_auto_gateway();
        }
        let mut ipam = Ipam::new();
        let pool = ipam.request_pool(&req).unwrap();
        let usable = (1u128 << hb) - if v6 { 1 } else { 2 } - u128::from(gw);
        prop_assert_eq!(ipam.pool_info(&pool).unwrap().capacity, usable);
        let mut seen = HashSet::new();
        loop {
            match ipam.request_address(&pool, None) {
                Ok(a) => prop_assert!(seen.insert(a)),
                Err(e) => {
                    prop_assert_eq!(&e, &IpamError::Exhausted { pool });
                    prop_assert!(e.to_string().contains("no free address left"));
                    break;
                }
            }
        }
        prop_assert_eq!(seen.len() as u128, usable);
    }

    /// On a full pool, releasing any set of addresses makes exactly those come back.
    #[test]
    fn release_then_request(v6 in any::<bool>(), hb in 2u32..=6, pick in prop::collection::vec(any::<prop::sample::Index>(), 1..10)) {
        let mut ipam = Ipam::new();
        let pool = ipam.request_pool(&PoolRequest::subnet(L, net(v6, 0, hb))).unwrap();
        let all: Vec<IpAddr> = std::iter::from_fn(|| ipam.request_address(&pool, None).ok()).collect();
        let freed: BTreeSet<IpAddr> = pick.iter().map(|i| *i.get(&all)).collect();
        for a in &freed {
            ipam.release_address(&pool, *a).unwrap();
        }
        let again: BTreeSet<IpAddr> = (0..freed.len()).map(|_| ipam.request_address(&pool, None).unwrap()).collect();
        prop_assert_eq!(again, freed);
        let last = ipam.request_address(&pool, None);
        prop_assert_eq!(last, Err(IpamError::Exhausted { pool }));
    }

    /// Pools never overlap in a space; default requests return the first free candidate;
    /// overlap errors name a pool that really overlaps.
    #[test]
    fn pools_never_overlap(reqs in prop::collection::vec(
        prop_oneof![
            Just(None),
            (16u32..=24, 0u32..(1 << 18)).prop_map(|(p, x)| Some((p, x))),
        ], 1..40),
        releases in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let default: DefaultPool = "base=10.0.0.0/14,size=20".parse().unwrap();
        let candidates: Vec<IpNetwork> = default.subnets().collect();
        prop_assert_eq!(candidates.len(), 64);
        let mut ipam = Ipam::with_default_pools(vec![default], vec![]);
        let overlap = |a: &IpNetwork, b: &IpNetwork| a.contains(b.network()) || b.contains(a.network());
        let mut existing: Vec<IpNetwork> = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            match r {
                None => {
                    let want = candidates.iter().find(|c| !existing.iter().any(|e| overlap(c, e)));
                    match (ipam.request_pool(&PoolRequest::any(L)), want) {
                        (Ok(id), Some(w)) => { prop_assert_eq!(id.subnet(), *w); existing.push(*w); }
                        (Err(IpamError::NoFreePool { .. }), None) => {}
                        (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
                    }
                }
                Some((p, x)) => {
                    let subnet = IpNetwork::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (x << 8))), *p as u8).unwrap();
                    let subnet = IpNetwork::new(subnet.network(), *p as u8).unwrap();
                    let clash = existing.iter().any(|e| overlap(e, &subnet));
                    match ipam.request_pool(&PoolRequest::subnet(L, subnet)) {
                        Ok(_) => { prop_assert!(!clash); existing.push(subnet); }
                        Err(IpamError::PoolOverlap { existing: e, .. }) => {
                            prop_assert!(clash);
                            prop_assert!(overlap(&e, &subnet));
                            prop_assert_eq!(ipam.overlapping(L, &subnet).map(|id| id.subnet()), Some(e));
                        }
                        Err(e) => prop_assert!(false, "{}", e),
                    }
                }
            }
            if let Some(ix) = releases.get(i) {
                if !existing.is_empty() && i % 3 == 0 {
                    let victim = existing.remove(ix.index(existing.len()));
                    ipam.release_pool(&PoolId::new(L, victim), false).unwrap();
                }
            }
            let mut listed: Vec<IpNetwork> = ipam.pool_ids().map(|id| id.subnet()).collect();
            let mut want = existing.clone();
            listed.sort();
            want.sort();
            prop_assert_eq!(listed, want);
        }
    }
}
