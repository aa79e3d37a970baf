//! Property tests for netctl's `-p` parser ([`rest::parse_publish`]): random strings never
//! panic and every accepted mapping is self-consistent and re-parses to itself from its
//! canonical form; generated valid forms (every shape Docker accepts) parse back to exactly
//! the fields they were built from. Case counts are printed for the closing notes
//! (`cargo test -p plugin-api --test publish_fuzz -- --nocapture`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::rest::{self, PortMapping};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Strings per proptest case: generation dominates in debug builds, so each case checks a
/// batch (as `cni_fuzz.rs` does).
const PER_CASE: usize = 8;
const CASES: u32 = 13_000;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Short strings over an alphabet rich in the parser's separators and edge bytes, mixed
/// with fully arbitrary unicode strings.
fn random_string() -> impl Strategy<Value = String> {
    const ALPHABET: &[char] = &[
        '0', '1', '5', '6', '8', '9', ':', ':', ':', '-', '/', '[', ']', '.', ' ', 'a', 'f', 't',
        'c', 'p', 'u', 'd', 's', 'T', 'C', 'P', '+', '\0', 'é', '٣', '😀',
    ];
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(ALPHABET), 0..24).prop_map(String::from_iter),
        1 => prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter),
        1 => (0u32..70_000, prop::option::of(0u32..70_000), 0u32..70_000, 0u8..6)
            .prop_map(|(a, b, c, p)| {
                let end = b.map(|b| format!("-{b}")).unwrap_or_default();
                let proto = ["", "/tcp", "/UDP", "/sctp", "/icmp", "/"][p as usize];
                format!("{a}{end}:{c}{proto}")
            }),
    ]
}

/// The canonical text of a mapping (what a user would type to get exactly it).
fn format_mapping(m: &PortMapping) -> String {
    let host = match (m.host_port, m.host_port_end) {
        (0, _) => String::new(),
        (a, 0) => a.to_string(),
        (a, b) => format!("{a}-{b}"),
    };
    let ip = if m.host_ip.contains(':') {
        format!("[{}]", m.host_ip)
    } else {
        m.host_ip.clone()
    };
    if ip.is_empty() && host.is_empty() {
        format!("{}/{}", m.container_port, m.proto)
    } else if ip.is_empty() {
        format!("{host}:{}/{}", m.container_port, m.proto)
    } else {
        format!("{ip}:{host}:{}/{}", m.container_port, m.proto)
    }
}

/// What every accepted mapping must satisfy, whatever the input was.
fn check_accepted(input: &str, m: &PortMapping) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(m.proto.as_str(), "tcp" | "udp" | "sctp"),
        "{input:?}: {m:?}"
    );
    prop_assert!(m.container_port >= 1, "{input:?}: {m:?}");
    if m.host_port == 0 {
        prop_assert_eq!(m.host_port_end, 0, "{:?}: {:?}", input, m);
    } else if m.host_port_end != 0 {
        prop_assert!(m.host_port_end >= m.host_port, "{input:?}: {m:?}");
    }
    if !m.host_ip.is_empty() {
        prop_assert!(
            m.host_ip.parse::<IpAddr>().is_ok(),
            "{input:?}: host_ip {:?}",
            m.host_ip
        );
    }
    let again = format_mapping(m);
    let back = rest::parse_publish(&again)
        .map_err(|e| TestCaseError::fail(format!("{input:?} -> {again:?} rejected: {e}")))?;
    prop_assert_eq!(&back, m, "{:?} -> {:?}", input, again);
    Ok(())
}

#[test]
fn random_strings_never_panic() {
    static CHECKED: AtomicU64 = AtomicU64::new(0);
    static ACCEPTED: AtomicU64 = AtomicU64::new(0);
    let strat = prop::collection::vec(random_string(), PER_CASE);
    let res = runner().run(&strat, |batch| {
        for s in &batch {
            CHECKED.fetch_add(1, Ordering::Relaxed);
            match rest::parse_publish(s) {
                Ok(m) => {
                    ACCEPTED.fetch_add(1, Ordering::Relaxed);
                    check_accepted(s, &m)?;
                }
                Err(e) => prop_assert!(e.starts_with("invalid port mapping"), "{e}"),
            }
        }
        Ok(())
    });
    let (n, ok) = (
        CHECKED.load(Ordering::Relaxed),
        ACCEPTED.load(Ordering::Relaxed),
    );
    eprintln!("publish_fuzz random strings: {n} cases ({ok} accepted), no panic");
    if let Err(e) = res {
        panic!("{e}");
    }
    assert!(n >= 100_000, "only {n} cases");
}

/// One valid `-p` value and the mapping it must give.
#[derive(Debug, Clone)]
struct Form {
    text: String,
    want: PortMapping,
}

fn port() -> impl Strategy<Value = u16> {
    prop_oneof![1u16..=1024, 1u16..=65535, Just(65535u16), Just(1u16)]
}

fn valid_form() -> impl Strategy<Value = Form> {
    let ip = prop_oneof![
        2 => Just(None),
        2 => any::<[u8; 4]>().prop_map(|a| Some(IpAddr::V4(Ipv4Addr::from(a)))),
        1 => any::<[u8; 16]>().prop_map(|a| Some(IpAddr::V6(Ipv6Addr::from(a)))),
        1 => prop::sample::select(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ]).prop_map(Some),
    ];
    // Host part: none, one port, or a range (a <= b).
    let host = prop_oneof![
        Just((0u16, 0u16)),
        port().prop_map(|p| (p, 0)),
        (port(), port()).prop_map(|(a, b)| (a.min(b), a.max(b))),
    ];
    // Protocol: implicit tcp, or spelled in any case.
    let proto = prop_oneof![
        Just(None),
        (
            prop::sample::select(vec!["tcp", "udp", "sctp"]),
            any::<u8>()
        )
            .prop_map(|(p, caps)| {
                Some(
                    p.chars()
                        .enumerate()
                        .map(|(i, c)| {
                            if caps >> i & 1 == 1 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect::<String>(),
                )
            }),
    ];
    (ip, host, port(), proto, any::<bool>()).prop_filter_map(
        "an address needs the HOST:CONTAINER form",
        |(ip, (hp, hend), cport, proto, explicit_empty_ip)| {
            let mut text = String::new();
            let host_ip = match ip {
                Some(IpAddr::V4(a)) => {
                    text.push_str(&format!("{a}:"));
                    a.to_string()
                }
                Some(IpAddr::V6(a)) => {
                    text.push_str(&format!("[{a}]:"));
                    a.to_string()
                }
                // `:8080:80` (an empty address) is accepted as no address.
                None if explicit_empty_ip && hp != 0 => {
                    text.push(':');
                    String::new()
                }
                None => String::new(),
            };
            match (hp, hend) {
                (0, _) if !host_ip.is_empty() => text.push(':'), // `IP::80`: ephemeral port
                (0, _) => {}
                (a, 0) => text.push_str(&format!("{a}:")),
                (a, b) => text.push_str(&format!("{a}-{b}:")),
            }
            text.push_str(&cport.to_string());
            let proto_out = match &proto {
                Some(p) => {
                    text.push('/');
                    text.push_str(p);
                    p.to_ascii_lowercase()
                }
                None => "tcp".to_string(),
            };
            Some(Form {
                text,
                want: PortMapping {
                    proto: proto_out,
                    host_ip,
                    host_port: hp,
                    host_port_end: hend,
                    container_port: cport,
                },
            })
        },
    )
}

#[test]
fn generated_valid_forms_round_trip() {
    static CHECKED: AtomicU64 = AtomicU64::new(0);
    let strat = prop::collection::vec(valid_form(), PER_CASE);
    let res = runner().run(&strat, |batch| {
        for f in &batch {
            CHECKED.fetch_add(1, Ordering::Relaxed);
            let got = rest::parse_publish(&f.text)
                .map_err(|e| TestCaseError::fail(format!("{:?} rejected: {e}", f.text)))?;
            prop_assert_eq!(&got, &f.want, "{:?}", f.text);
            check_accepted(&f.text, &got)?;
        }
        Ok(())
    });
    let n = CHECKED.load(Ordering::Relaxed);
    eprintln!("publish_fuzz generated valid forms: {n} cases, all round-tripped");
    if let Err(e) = res {
        panic!("{e}");
    }
    assert!(n >= 100_000, "only {n} cases");
}

/// Near-valid forms: one valid form with a single character deleted, duplicated or replaced
/// by a separator. Must not panic; what is accepted must still be self-consistent.
#[test]
fn mutated_valid_forms_never_panic() {
    static CHECKED: AtomicU64 = AtomicU64::new(0);
    let edit = (
        any::<prop::sample::Index>(),
        0u8..3,
        prop::sample::select(vec![':', '-', '/', '[', ']', '0', '.']),
    );
    let strat = prop::collection::vec((valid_form(), edit), PER_CASE);
    let res = runner().run(&strat, |batch| {
        for (f, (at, op, c)) in &batch {
            CHECKED.fetch_add(1, Ordering::Relaxed);
            let mut chars: Vec<char> = f.text.chars().collect();
            let i = at.index(chars.len());
            match op {
                0 => {
                    chars.remove(i);
                }
                1 => chars.insert(i, chars[i]),
                _ => chars[i] = *c,
            }
            let s: String = chars.into_iter().collect();
            if let Ok(m) = rest::parse_publish(&s) {
                check_accepted(&s, &m)?;
            }
        }
        Ok(())
    });
    let n = CHECKED.load(Ordering::Relaxed);
    eprintln!("publish_fuzz mutated valid forms: {n} cases, no panic");
    if let Err(e) = res {
        panic!("{e}");
    }
    assert!(n >= 100_000, "only {n} cases");
}
