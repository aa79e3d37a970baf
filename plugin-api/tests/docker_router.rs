//! Drives the Docker plugin router in-process with a recording fake backend: request
//! fixtures shaped like Docker 20.10's, no Content-Type, empty bodies, error conventions.

mod docker_fake;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use docker_fake::{Call, Fake};
use http_body_util::BodyExt;
use plugin_api::docker::{self, options, Protocol};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Posts `body` without a Content-Type, as Docker does; returns status, content type, JSON.
async fn post(fake: &Arc<Fake>, path: &str, body: &str) -> (StatusCode, String, Value) {
    let app = docker::router(fake.clone());
    let req = Request::post(path)
        .header("Accept", "application/vnd.docker.plugins.v1.2+json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("non-JSON answer {bytes:?} for {path}: {e}"));
    (status, ct, v)
}

#[tokio::test]
async fn activate_and_capabilities_with_empty_bodies() {
    let fake = Fake::new();
    let (s, ct, v) = post(&fake, "/Plugin.Activate", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, docker::CONTENT_TYPE);
    assert_eq!(v, json!({"Implements": ["NetworkDriver", "IpamDriver"]}));

    let (s, _, v) = post(&fake, "/NetworkDriver.GetCapabilities", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"Scope": "local", "ConnectivityScope": "local"}));

    let (_, _, v) = post(&fake, "/IpamDriver.GetCapabilities", "").await;
    assert_eq!(
        v,
        json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
    );
    let (_, _, v) = post(&fake, "/IpamDriver.GetDefaultAddressSpaces", "\n").await;
    assert_eq!(
        v,
        json!({"LocalDefaultAddressSpace": "LocalDefault", "GlobalDefaultAddressSpace": "GlobalDefault"})
    );
    assert!(fake.calls().is_empty());
}

const CREATE_NETWORK: &str = r#"{"NetworkID":"5b7a3e3b0a1f8c3d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"com.docker.network.bridge.name":"br-test","foo":"bar"}},"IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"172.18.0.1/16","Pool":"172.18.0.0/16","AuxAddresses":{"router":"172.18.0.5/16"}}],"IPv6Data":[]}
"#;

#[tokio::test]
async fn create_network_fixture_reaches_backend_typed() {
    let fake = Fake::new();
    let (s, _, v) = post(&fake, "/NetworkDriver.CreateNetwork", CREATE_NETWORK).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    let calls = fake.calls();
    let Call::CreateNetwork(req) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert!(req.network_id.starts_with("5b7a3e"));
    let d = &req.ipv4_data[0];
    assert_eq!(d.pool.to_string(), "172.18.0.0/16");
    assert_eq!(d.gateway_ip(), Some("172.18.0.1".parse().unwrap()));
    assert_eq!(
        d.aux_ips()["router"],
        "172.18.0.5".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        req.options.generic().unwrap()["com.docker.network.bridge.name"],
        "br-test"
    );
    assert!(!req.options.enable_ipv6().unwrap());
    assert!(req.ipv6_data.is_empty());
}

#[tokio::test]
async fn null_maps_and_lists_are_tolerated() {
    let fake = Fake::new();
    let body = r#"{"NetworkID":"n1","Options":null,"IPv4Data":null,"IPv6Data":null,"Unknown":1}"#;
    let (s, _, v) = post(&fake, "/NetworkDriver.CreateNetwork", body).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    let body =
        r#"{"AddressSpace":"LocalDefault","Pool":"","SubPool":"","Options":null,"V6":false}"#;
    let (s, _, v) = post(&fake, "/IpamDriver.RequestPool", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["PoolID"], "pool-1");
    assert_eq!(v["Pool"], "10.99.0.0/24");
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn endpoint_lifecycle_fixtures() {
    let fake = Fake::new();
    let body = r#"{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"172.18.0.2/16","AddressIPv6":"","MacAddress":""},"Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]}}"#;
    let (s, _, v) = post(&fake, "/NetworkDriver.CreateEndpoint", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"Interface": {"MacAddress": "02:42:ac:12:00:02"}}));
    let Call::CreateEndpoint(req) = &fake.calls()[0] else {
        panic!()
    };
    let iface = req.interface.as_ref().unwrap();
    assert_eq!(iface.address.unwrap().to_string(), "172.18.0.2/16");
    assert_eq!(iface.address_ipv6, None);
    assert_eq!(iface.mac_address, None);
    let pm = req.options.port_map().unwrap();
    assert_eq!(pm[0].proto, Protocol::Tcp);
    assert_eq!((pm[0].host_port, pm[0].container_port), (8080, 80));

    let body = r#"{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/0123456789ab","Options":{"com.docker.network.portmap":[{"Proto":17,"IP":"","Port":53,"HostIP":"127.0.0.1","HostPort":5353,"HostPortEnd":5353}]}}"#;
    let (s, _, v) = post(&fake, "/NetworkDriver.Join", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"InterfaceName": {"SrcName": "vethabc1234", "DstPrefix": "eth"},
               "Gateway": "172.18.0.1",
               "StaticRoutes": [{"Destination": "10.0.0.0/8", "RouteType": 0, "NextHop": "172.18.0.1"}],
               "DisableGatewayService": false})
    );
    let body = r#"{"NetworkID":"n1","EndpointID":"e1","Options":{"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]}}"#;
    post(&fake, "/NetworkDriver.ProgramExternalConnectivity", body).await;
    let ep = r#"{"NetworkID":"n1","EndpointID":"e1"}"#;
    for m in ["RevokeExternalConnectivity", "Leave", "DeleteEndpoint"] {
        let (s, _, v) = post(&fake, &format!("/NetworkDriver.{m}"), ep).await;
        assert_eq!((s, v), (StatusCode::OK, json!({})), "{m}");
    }
    let (_, _, v) = post(&fake, "/NetworkDriver.EndpointOperInfo", ep).await;
    assert_eq!(v, json!({"Value": {"id": "e1"}}));
    let (_, _, v) = post(
        &fake,
        "/NetworkDriver.DeleteNetwork",
        r#"{"NetworkID":"n1"}"#,
    )
    .await;
    assert_eq!(v, json!({}));
    let names: Vec<&str> = fake.calls().iter().map(Call::name).collect();
    assert_eq!(
        names,
        [
            "CreateEndpoint",
            "Join",
            "ProgramExternalConnectivity",
            "RevokeExternalConnectivity",
            "Leave",
            "DeleteEndpoint",
            "EndpointOperInfo",
            "DeleteNetwork"
        ]
    );
    let calls = fake.calls();
    let Call::Join(j) = &calls[1] else { panic!() };
    assert_eq!(j.sandbox_key, "/var/run/docker/netns/0123456789ab");
    let pm = j.options.port_map().unwrap();
    assert_eq!(pm[0].proto, Protocol::Udp);
    assert_eq!(pm[0].host_ip, Some("127.0.0.1".parse().unwrap()));
}

#[tokio::test]
async fn ipam_fixtures() {
    let fake = Fake::new();
    let body = r#"{"AddressSpace":"LocalDefault","Pool":"172.18.0.0/16","SubPool":"172.18.5.0/24","Options":{},"V6":false}"#;
    let (s, _, _) = post(&fake, "/IpamDriver.RequestPool", body).await;
    assert_eq!(s, StatusCode::OK);
    let body = r#"{"PoolID":"pool-1","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#;
    let (s, _, v) = post(&fake, "/IpamDriver.RequestAddress", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"Address": "10.99.0.1/24", "Data": {}}));
    let body = r#"{"PoolID":"pool-1","Address":"172.18.5.9","Options":{"com.docker.network.endpoint.name":"web"}}"#;
    post(&fake, "/IpamDriver.RequestAddress", body).await;
    let body = r#"{"PoolID":"pool-1","Address":"172.18.5.9"}"#;
    let (_, _, v) = post(&fake, "/IpamDriver.ReleaseAddress", body).await;
    assert_eq!(v, json!({}));
    let (_, _, v) = post(&fake, "/IpamDriver.ReleasePool", r#"{"PoolID":"pool-1"}"#).await;
    assert_eq!(v, json!({}));
    let calls = fake.calls();
    let Call::RequestPool(p) = &calls[0] else {
        panic!()
    };
    assert_eq!(p.sub_pool.unwrap().to_string(), "172.18.5.0/24");
    let Call::RequestAddress(gw) = &calls[1] else {
        panic!()
    };
    assert!(gw.is_gateway());
    assert_eq!(gw.address, None);
    let Call::RequestAddress(a) = &calls[2] else {
        panic!()
    };
    assert!(!a.is_gateway());
    assert_eq!(a.endpoint_name(), Some("web"));
    assert_eq!(a.address, Some("172.18.5.9".parse().unwrap()));
}

#[tokio::test]
async fn ipam_error_is_500_with_err_and_error() {
    let fake = Fake::new();
    fake.fail_with("pool exhausted");
    let body = r#"{"PoolID":"pool-1","Address":""}"#;
    let (s, ct, v) = post(&fake, "/IpamDriver.RequestAddress", body).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ct, docker::CONTENT_TYPE);
    assert_eq!(
        v,
        json!({"Err": "pool exhausted", "Error": "pool exhausted"})
    );
}

#[tokio::test]
async fn network_error_is_200_with_err() {
    let fake = Fake::new();
    fake.fail_with("bridge name in use");
    let (s, _, v) = post(&fake, "/NetworkDriver.CreateNetwork", CREATE_NETWORK).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"Err": "bridge name in use"}));
}

#[tokio::test]
async fn bad_json_gives_err_and_backend_is_not_called() {
    let fake = Fake::new();
    let cases = [
        ("/NetworkDriver.CreateNetwork", "{not json"),
        (
            "/NetworkDriver.CreateNetwork",
            r#"{"NetworkID":"n","IPv4Data":[{"Pool":"nope"}]}"#,
        ),
        (
            "/NetworkDriver.CreateNetwork",
            r#"{"NetworkID":"n","IPv4Data":[{"Pool":"fd00::/64"}]}"#,
        ),
        (
            "/NetworkDriver.CreateNetwork",
            r#"{"NetworkID":"n","IPv4Data":[{"Pool":"10.0.0.0/24","Gateway":"10.1.0.1/24"}]}"#,
        ),
        ("/NetworkDriver.CreateNetwork", "{}"),
        (
            "/NetworkDriver.Join",
            r#"{"NetworkID":"n","EndpointID":"e"}"#,
        ),
        ("/NetworkDriver.Leave", "[1,2]"),
        (
            "/NetworkDriver.CreateEndpoint",
            r#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"300.1.1.1/8"}}"#,
        ),
    ];
    for (path, body) in cases {
        let (s, _, v) = post(&fake, path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body}");
        let method = path.trim_start_matches('/');
        let err = v["Err"].as_str().unwrap();
        assert!(
            err.starts_with(&format!("invalid request body for {method}: ")),
            "{err}"
        );
        assert!(v.get("Error").is_none());
    }
    let ipam_cases = [
        (
            "/IpamDriver.RequestPool",
            r#"{"Pool":"","SubPool":"10.0.0.0/24"}"#,
        ),
        (
            "/IpamDriver.RequestPool",
            r#"{"Pool":"10.0.0.0/16","SubPool":"10.1.0.0/24"}"#,
        ),
        (
            "/IpamDriver.RequestPool",
            r#"{"Pool":"10.0.0.0/16","V6":true}"#,
        ),
        ("/IpamDriver.ReleaseAddress", r#"{"PoolID":"p"}"#),
        ("/IpamDriver.ReleasePool", r#"{}"#),
        (
            "/IpamDriver.RequestAddress",
            r#"{"PoolID":"p","Options":{"a":[1]}}"#,
        ),
    ];
    for (path, body) in ipam_cases {
        let (s, _, v) = post(&fake, path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_eq!(v["Err"], v["Error"]);
        assert!(v["Err"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body for IpamDriver."));
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[tokio::test]
async fn swarm_only_and_discovery_and_unknown() {
    let fake = Fake::new();
    let (s, _, v) = post(
        &fake,
        "/NetworkDriver.AllocateNetwork",
        r#"{"NetworkID":"n"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["Err"].as_str().unwrap().contains("not supported"));
    let (_, _, v) = post(&fake, "/NetworkDriver.FreeNetwork", "").await;
    assert!(v["Err"].as_str().unwrap().contains("not supported"));
    let body = r#"{"DiscoveryType":1,"DiscoveryData":{"Address":"10.0.0.5","self":true}}"#;
    for m in ["DiscoverNew", "DiscoverDelete"] {
        let (s, _, v) = post(&fake, &format!("/NetworkDriver.{m}"), body).await;
        assert_eq!((s, v), (StatusCode::OK, json!({})));
    }
    let (s, _, v) = post(&fake, "/NetworkDriver.GwAllocCheck", "{}").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["Err"].as_str().unwrap().contains("unknown method"));
    let (s, _, _) = post(&fake, "/nope", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn get_is_refused_with_json() {
    let app = docker::router(Fake::new());
    let resp = app
        .oneshot(
            Request::get("/Plugin.Activate")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(v["Err"].is_string());
}

#[test]
fn option_constants_match_docker() {
    assert_eq!(options::PORTMAP, "com.docker.network.portmap");
    assert_eq!(
        options::EXPOSED_PORTS,
        "com.docker.network.endpoint.exposedports"
    );
    assert_eq!(options::GENERIC, "com.docker.network.generic");
}
