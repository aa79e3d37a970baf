//! Property tests for CNI parsing: random configurations (a valid one with random keys
//! overwritten by random JSON) and random environment strings never panic and always give a
//! parse or a spec error code; results round-trip through every version; the runner always
//! prints well-formed JSON with a matching exit code.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::cni::{self, CniError, CniVersion, Result100};
use plugin_api::rest::CniCall;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CODES: &[u32] = &[1, 2, 4, 5, 6, 7, 11, 50, 999];

const TOP_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "ipam",
    "dns",
    "runtimeConfig",
    "prevResult",
    "args",
    "capabilities",
    "network",
    "subnet",
    "gateway",
    "subnet6",
    "gateway6",
    "ipv6",
    "bridge",
    "ipMasq",
    "isGateway",
    "mtu",
    "socket",
    "options",
    "disableCheck",
    "internal",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
];
const INNER_KEYS: &[&str] = &[
    "type",
    "subnet",
    "gateway",
    "network",
    "portMappings",
    "hostPort",
    "containerPort",
    "protocol",
    "HostPort",
    "hostIP",
    "ips",
    "mac",
    "dns",
    "servers",
    "nameservers",
    "cni",
    "containerID",
    "ifname",
    "address",
    "version",
    "interface",
    "interfaces",
    "routes",
    "dst",
];

fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.1.0".to_string()),
        Just("0.3.1".to_string()),
        Just("0.2.0".to_string()),
        Just("netd-cni".to_string()),
        Just("bridge".to_string()),
        Just("10.88.0.0/16".to_string()),
        Just("10.88.0.1".to_string()),
        Just("fd00::/64".to_string()),
        Just("02:00:00:00:00:01".to_string()),
        Just("tcp".to_string()),
        Just("4".to_string()),
        small_string(10),
    ]
}

/// Random short strings from an alphabet that hits the parsers' separators and edge bytes
/// (regex strategies are an order of magnitude slower to generate).
fn small_string(max: usize) -> impl Strategy<Value = String> {
    const ALPHABET: &[char] = &[
        'a', 'Z', '0', '9', '_', '.', '-', '=', ';', ':', '/', ' ', ',', '\t', '\0', 'é', '😀',
        'I', 'P', 'M', 'A', 'C',
    ];
    prop::collection::vec(prop::sample::select(ALPHABET), 0..max).prop_map(String::from_iter)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![any::<i64>(), 0i64..70000].prop_map(Value::from),
        string_value().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(INNER_KEYS), inner), 0..4).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn config() -> impl Strategy<Value = Value> {
    let base = json!({"cniVersion": "1.1.0", "name": "n1", "type": "netd-cni",
                      "subnet": "10.88.0.0/16", "cni.dev/valid-attachments": []});
    prop::collection::vec((prop::sample::select(TOP_KEYS), json_value()), 0..4).prop_map(
        move |edits| {
            let mut m: Map<String, Value> = base.as_object().unwrap().clone();
            for (k, v) in edits {
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        },
    )
}

/// Candidate values for each CNI_* variable: valid ones, edge cases, and `None`.
const ENV_CHOICES: &[Option<&str>] = &[
    None,
    Some(""),
    Some("ctr-1"),
    Some("eth0"),
    Some("/var/run/netns/x"),
    Some("/opt/cni/bin:/usr/lib/cni"),
    Some("IgnoreUnknown=1;FOO=bar"),
    Some("IP=10.88.0.9;MAC=02:00:00:00:00:09"),
    Some("FOO=bar"),
    Some("IP=10.0.0.300"),
    Some("-bad"),
    Some("a/b"),
    Some("0123456789abcdef"),
    Some("."),
    Some("K8S_POD_NAME=a=b;;IgnoreUnknown=true"),
    Some("ä ;=:"),
];
const COMMANDS: &[&str] = &["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "", "add"];

/// Decodes one packed seed into the six CNI_* values (4 bits each, command 3 bits).
fn env_from_seed(seed: u64, config: &Value) -> CniCall {
    let pick = |shift: u32| ENV_CHOICES[((seed >> shift) & 0xf) as usize].map(str::to_string);
    CniCall {
        command: COMMANDS[(seed & 0x7) as usize].to_string(),
        container_id: pick(3),
        netns: pick(7),
        ifname: pick(11),
        args: pick(15),
        path: pick(19),
        config: config.clone(),
    }
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ADD".to_string()),
        Just("DEL".to_string()),
        Just("CHECK".to_string()),
        Just("GC".to_string()),
        Just("STATUS".to_string()),
        Just("VERSION".to_string()),
        small_string(6),
    ]
}

fn check_outcome(c: &CniCall) {
    match cni::parse_call(c) {
        Ok(p) => {
            assert_eq!(p.op.command().as_str(), c.command);
            if let Some((id, ifname)) = p.op.attachment() {
                assert!(!id.is_empty() && !ifname.is_empty() && ifname.len() <= 15);
            }
            assert!(CniVersion::ALL.contains(&p.version));
        }
        Err(e) => {
            assert!(
                CODES.contains(&e.code),
                "unexpected code {}: {} for {c:?}",
                e.code,
                e.msg
            );
            assert!(!e.msg.is_empty());
            assert!(e.to_json("1.1.0").is_object());
        }
    }
}

fn ip_net() -> impl Strategy<Value = ipnetwork::IpNetwork> {
    prop_oneof![
        (any::<[u8; 4]>(), 0u8..=32)
            .prop_map(|(a, p)| ipnetwork::Ipv4Network::new(a.into(), p).unwrap().into()),
        (any::<[u8; 16]>(), 0u8..=128)
            .prop_map(|(a, p)| ipnetwork::Ipv6Network::new(a.into(), p).unwrap().into()),
    ]
}

/// Inputs per proptest case: proptest's generation is slow in debug builds (~0.2 ms per
/// config), so each generated config is tried with 16 environments decoded from seeds.
const ENVS_PER_CASE: usize = 16;
const CASES: u32 = 8_000;

/// parse_call inputs checked so far (all threads), for the printed total.
static PARSED: AtomicU64 = AtomicU64::new(0);
static ROUND_TRIPS: AtomicU64 = AtomicU64::new(0);
static RUNS: AtomicU64 = AtomicU64::new(0);

#[test]
fn random_calls_136k() {
    let t = std::time::Instant::now();
    random_calls_parse_or_fail_cleanly();
    let n = PARSED.load(Ordering::Relaxed);
    eprintln!(
        "cni_fuzz: {n} parse_call cases (config x env) in {:.1?}, no panic, spec codes only",
        t.elapsed()
    );
    assert!(n >= 100_000, "only {n} cases");
}

#[test]
fn results_round_trip_10k() {
    results_round_trip_every_version();
    eprintln!(
        "cni_fuzz: {} result round-trips",
        ROUND_TRIPS.load(Ordering::Relaxed)
    );
}

#[test]
fn runner_10k() {
    runner_always_prints_json();
    eprintln!(
        "cni_fuzz: {} runner invocations printed JSON",
        RUNS.load(Ordering::Relaxed)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    /// 8,000 configs × (16 random environments + 1 valid one) = 136,000 parse_call inputs.
    fn random_calls_parse_or_fail_cleanly(
        cfg in config(),
        seeds in prop::collection::vec(any::<u64>(), ENVS_PER_CASE),
    ) {
        for seed in seeds {
            PARSED.fetch_add(1, Ordering::Relaxed);
            check_outcome(&env_from_seed(seed, &cfg));
        }
        PARSED.fetch_add(1, Ordering::Relaxed);
        // The same config with a fully valid environment reaches the config checks.
        check_outcome(&CniCall {
            command: "ADD".into(),
            container_id: Some("ctr-1".into()),
            netns: Some("/var/run/netns/x".into()),
            ifname: Some("eth0".into()),
            args: None,
            path: Some("/opt/cni/bin".into()),
            config: cfg,
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    fn results_round_trip_every_version(
        nets in prop::collection::vec((ip_net(), prop::option::of(0usize..2)), 0..4),
        v in prop::sample::select(CniVersion::ALL.to_vec()),
    ) {
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        let mut r = Result100::new()
            .interface(cni::Interface::host("netd0", "02:00:00:00:00:01"))
            .interface(cni::Interface::container("eth0", "02:00:00:00:00:02", "/x"));
        for (n, i) in &nets {
            r = r.ip(*n, None, *i).route(*n, Some(n.ip()));
        }
        let out = r.to_version(v);
        prop_assert_eq!(out["cniVersion"].as_str(), Some(v.as_str()));
        let back = Result100::parse_any(&out).unwrap();
        prop_assert_eq!(&back.ips, &r.ips);
        prop_assert_eq!(&back.routes, &r.routes);
        let has_version = out["ips"].as_array().is_some_and(|a| a.iter().all(|i| i.get("version").is_some()));
        if !nets.is_empty() {
            prop_assert_eq!(has_version, v.ips_have_version());
        }
    }

    fn runner_always_prints_json(cmd in command(), id in prop::option::of(small_string(12)), stdin in prop_oneof![
        config().prop_map(|c| c.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..32),
    ]) {
        RUNS.fetch_add(1, Ordering::Relaxed);
        let env = move |k: &str| match k {
            "CNI_COMMAND" => Some(cmd.clone()),
            "CNI_CONTAINERID" => id.clone(),
            "CNI_NETNS" => Some("/var/run/netns/x".into()),
            "CNI_IFNAME" => Some("eth0".into()),
            "CNI_PATH" => Some("/opt/cni/bin".into()),
            "NETD_HOST" => Some("/nonexistent/netd-fuzz.sock".into()),
            _ => None,
        };
        let out = cni::runner::run(&env, &mut stdin.as_slice());
        let v: Value = serde_json::from_str(&out.stdout).expect("stdout is JSON");
        if out.exit_code == 0 {
            prop_assert!(v.get("supportedVersions").is_some(), "only VERSION can succeed without netd: {}", v);
        } else {
            let code = v["code"].as_u64().unwrap() as u32;
            prop_assert!(CODES.contains(&code), "{}", v);
            prop_assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}

#[test]
fn codes_list_is_the_spec_set() {
    let set: BTreeSet<u32> = CODES.iter().copied().collect();
    assert!(set.contains(&CniError::INVALID_ENV) && set.contains(&CniError::DECODE_FAILURE));
}
