//! Throws random bytes and random JSON at every Docker plugin route: the router must always
//! answer well-formed JSON with the plugin content type, and never panic. 104,000 requests
//! (26,000 proptest cases of 4 bodies each); the count is printed (`-- --nocapture`).

mod docker_fake;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use docker_fake::Fake;
use http_body_util::BodyExt;
use plugin_api::docker;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

const ROUTES: &[&str] = &[
    "/Plugin.Activate",
    "/NetworkDriver.GetCapabilities",
    "/NetworkDriver.CreateNetwork",
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.CreateEndpoint",
    "/NetworkDriver.EndpointOperInfo",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.Join",
    "/NetworkDriver.Leave",
    "/NetworkDriver.ProgramExternalConnectivity",
    "/NetworkDriver.RevokeExternalConnectivity",
    "/NetworkDriver.DiscoverNew",
    "/NetworkDriver.DiscoverDelete",
    "/NetworkDriver.AllocateNetwork",
    "/NetworkDriver.FreeNetwork",
    "/IpamDriver.GetCapabilities",
    "/IpamDriver.GetDefaultAddressSpaces",
    "/IpamDriver.RequestPool",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.RequestAddress",
    "/IpamDriver.ReleaseAddress",
    "/Unknown.Method",
];

/// Field names Docker uses, so random objects often hit real fields.
const KEYS: &[&str] = &[
    "NetworkID",
    "EndpointID",
    "Options",
    "IPv4Data",
    "IPv6Data",
    "Pool",
    "SubPool",
    "Gateway",
    "AuxAddresses",
    "AddressSpace",
    "Interface",
    "Address",
    "AddressIPv6",
    "MacAddress",
    "SandboxKey",
    "PoolID",
    "V6",
    "DiscoveryType",
    "DiscoveryData",
    "com.docker.network.generic",
    "com.docker.network.portmap",
    "Proto",
    "HostPort",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("".to_string()),
            Just("10.0.0.0/24".to_string()),
            Just("10.0.0.1/24".to_string()),
            Just("fd00::/64".to_string()),
            Just("10.0.0.7".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

fn check(rt: &tokio::runtime::Runtime, app: &axum::Router, path: &str, body: Vec<u8>) {
    rt.block_on(async {
        let req = Request::post(path).body(Body::from(body)).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let ct = resp.headers().get("content-type").cloned();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&bytes).expect("answer is JSON");
        assert!(v.is_object(), "{v}");
        assert_eq!(ct.unwrap(), docker::CONTENT_TYPE);
    });
}

/// Requests per proptest case: generating a body costs more than the request itself in
/// debug builds, so each case sends a batch (as `cni_fuzz.rs` does).
const PER_CASE: usize = 4;
const CASES: u32 = 26_000;

/// Requests sent so far (all threads), for the printed total.
static SENT: AtomicU64 = AtomicU64::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    /// 26,000 cases × 4 requests = 104,000 requests over the router.
    fn every_route_answers_json(
        batch in prop::collection::vec((prop::sample::select(ROUTES), body()), PER_CASE),
    ) {
        thread_local! {
            static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            static APP: axum::Router = docker::router(Fake::new() as Arc<dyn docker::DockerBackend>);
        }
        for (route, body) in batch {
            SENT.fetch_add(1, Ordering::Relaxed);
            RT.with(|rt| APP.with(|app| check(rt, app, route, body)));
        }
    }
}

#[test]
fn every_route_answers_json_100k() {
    let t = std::time::Instant::now();
    every_route_answers_json();
    let n = SENT.load(Ordering::Relaxed);
    eprintln!(
        "docker_fuzz: {n} plugin requests over {} routes in {:.1?}, all answered JSON",
        ROUTES.len(),
        t.elapsed()
    );
    assert!(n >= 100_000, "only {n} requests");
}
