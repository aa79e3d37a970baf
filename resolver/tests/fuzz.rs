//! Property tests: arbitrary bytes and mutated valid queries fed to the packet handler must
//! never panic, never hang, and every answer must be a well-formed response carrying the
//! query's id. `RESOLVER_FUZZ_CASES` overrides the number of cases (default 100 000 each).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::RecordType;
use proptest::prelude::*;
use resolver::{Resolver, Transport};

fn cases() -> u32 {
    std::env::var("RESOLVER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

struct Harness {
    rt: tokio::runtime::Runtime,
    resolver: Resolver,
}

impl Harness {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // No upstreams at all: anything that would be forwarded fails at once with SERVFAIL,
        // so no case can reach the network.
        let resolver = Resolver::new(support::config(vec![], Duration::from_millis(100)));
        resolver.set_table(support::test_table(&[]));
        Self { rt, resolver }
    }

    fn check(&self, packet: &[u8], transport: Transport) -> Result<(), TestCaseError> {
        let fut = self.resolver.handle_packet("sb2", packet, transport);
        let out = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), fut).await });
        let out = out.map_err(|_| TestCaseError::fail("handler took more than 2 s"))?;
        if let Some(bytes) = out {
            prop_assert!(packet.len() >= 12, "short packets are dropped");
            let m = Message::from_vec(&bytes)
                .map_err(|e| TestCaseError::fail(format!("unparsable answer: {e}")))?;
            prop_assert_eq!(m.metadata.message_type, MessageType::Response);
            prop_assert_eq!(&bytes[..2], &packet[..2], "id echoed");
            if transport == Transport::Udp {
                prop_assert!(bytes.len() <= 4096);
            }
        }
        Ok(())
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let q = support::query_packet;
    vec![
        q(1, "web.", RecordType::A, None),
        q(2, "cache.", RecordType::A, Some(1232)),
        q(3, "db.back.", RecordType::AAAA, None),
        q(
            4,
            &resolver::reverse_name("172.31.0.4".parse().unwrap()),
            RecordType::PTR,
            None,
        ),
        q(5, "ext.example.", RecordType::MX, Some(4096)),
        q(
            6,
            &resolver::reverse_name("fd00:30::2".parse().unwrap()),
            RecordType::PTR,
            None,
        ),
    ]
}

/// A valid query with a few bytes overwritten, inserted or cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds().len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(i, edits)| {
            let mut p = seeds()[i].clone();
            for (at, byte, op) in edits {
                if p.is_empty() {
                    break;
                }
                let at = at.index(p.len());
                match op {
                    0 => p[at] = byte,
                    1 => p.insert(at, byte),
                    _ => p.truncate(at.max(1)),
                }
            }
            if p.len() > 2 {
                p[2] &= 0x7f; // keep it a query so it goes deep into the parser
            }
            p
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..700), tcp in any::<bool>()) {
        RANDOM.fetch_add(1, Ordering::Relaxed);
        let h = HARNESS.with(|h| h.clone());
        h.check(&bytes, if tcp { Transport::Tcp } else { Transport::Udp })?;
    }

    fn mutated_queries_never_panic(bytes in mutated(), tcp in any::<bool>()) {
        MUTATED.fetch_add(1, Ordering::Relaxed);
        let h = HARNESS.with(|h| h.clone());
        h.check(&bytes, if tcp { Transport::Tcp } else { Transport::Udp })?;
    }
}

/// Packets handled so far per target (all threads), for the printed totals.
static RANDOM: AtomicU64 = AtomicU64::new(0);
static MUTATED: AtomicU64 = AtomicU64::new(0);

#[test]
fn random_bytes() {
    let t = std::time::Instant::now();
    random_bytes_never_panic();
    let n = RANDOM.load(Ordering::Relaxed);
    eprintln!(
        "resolver fuzz: {n} random packets (UDP and TCP) in {:.1?}, no panic or hang",
        t.elapsed()
    );
    assert!(n >= u64::from(cases()), "only {n} packets");
}

#[test]
fn mutated_queries() {
    let t = std::time::Instant::now();
    mutated_queries_never_panic();
    let n = MUTATED.load(Ordering::Relaxed);
    eprintln!(
        "resolver fuzz: {n} mutated valid queries in {:.1?}, no panic or hang",
        t.elapsed()
    );
    assert!(n >= u64::from(cases()), "only {n} packets");
}

thread_local! {
    static HARNESS: std::rc::Rc<Harness> = std::rc::Rc::new(Harness::new());
}
