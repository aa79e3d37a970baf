//! netd's Docker plugin socket spoken to directly (no dockerd): Docker's create and
//! teardown sequences by hand, and malformed or hostile requests (bad JSON, unknown ids,
//! duplicate endpoints, requests aimed at netd's own networks and pools). Each must get an
//! `Err` (plus `Error` for IPAM), never a crash, and change nothing: same netd state, no
//! links or nft elements left. The end-to-end suite with a real dockerd is `docker_e2e.rs`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use netd_tests::{host_links, nft_counts, require_root, Daemon};
use serde_json::{json, Value};

/// A distinct /24 in 10.31.0.0/16 per call (per process).
fn subnet(k: u32) -> String {
    let x = (std::process::id().wrapping_mul(7) + k * 61) % 250 + 1;
    format!("10.31.{x}.0/24")
}

/// POST one plugin method on the plugin socket: (status, parsed JSON body).
fn call(sock: &Path, method: &str, body: &[u8]) -> Result<(u16, Value)> {
    // Like Docker: no Content-Type, the plugin Accept header.
    let accept = [("Accept", "application/vnd.docker.plugins.v1.2+json")];
    let (status, body) = netd_tests::raw_http(sock, "POST", &format!("/{method}"), &accept, body)?;
    let v = serde_json::from_str(&body).with_context(|| format!("body of {method}: {body:?}"))?;
    Ok((status, v))
}

fn ok(sock: &Path, method: &str, body: Value) -> Value {
    let (st, v) = call(sock, method, body.to_string().as_bytes()).unwrap();
    let failed = v
        .get("Err")
        .is_some_and(|e| e.as_str().is_some_and(|s| !s.is_empty()));
    assert!(st == 200 && !failed, "{method} {body} -> {st} {v}");
    v
}

/// The call must fail with a message (`Err`, plus `Error` for IPAM); returns it.
fn err(sock: &Path, method: &str, body: &[u8]) -> String {
    let (st, v) = call(sock, method, body).unwrap();
    let msg = v["Err"].as_str().unwrap_or("").to_string();
    assert!(
        !msg.is_empty(),
        "{method} {} -> {st} {v}: no Err",
        String::from_utf8_lossy(body)
    );
    if method.starts_with("IpamDriver.") {
        assert_eq!(v["Error"], v["Err"], "IPAM errors carry Error too");
        assert_ne!(st, 200);
    }
    msg
}

/// A fresh 64-hex id, like Docker's.
fn hex_id() -> String {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn state(d: &Daemon) -> (Value, Value, Value) {
    (
        d.json(&["network", "ls"]).unwrap(),
        d.json(&["endpoint", "ls"]).unwrap(),
        d.json(&["sandbox", "ls"]).unwrap(),
    )
}

#[test]
fn plugin_socket_malformed_requests() -> Result<()> {
    if !require_root("plugin_socket_malformed_requests") {
        return Ok(());
    }
    let mut d = Daemon::start()?;
    let sock = d.dir.path().join("plugin.sock");
    let pid = d.pid().unwrap();
    let base_nft = nft_counts("inet", &d.nft_table);
    let sub = subnet(5);

    // Handshake as Docker does it: empty bodies.
    let (st, v) = call(&sock, "Plugin.Activate", b"")?;
    assert_eq!(st, 200);
    assert_eq!(v["Implements"], json!(["NetworkDriver", "IpamDriver"]));
    let (_, v) = call(&sock, "IpamDriver.GetDefaultAddressSpaces", b"")?;
    assert_eq!(v["LocalDefaultAddressSpace"], "LocalDefault");

    // A netd network that Docker's face must never touch.
    d.ok(&["network", "create", "--subnet", &subnet(6), "own"])?;
    let own = d.json(&["network", "inspect", "own"])?[0].clone();
    let own_id = own["id"].as_str().unwrap().to_string();
    let own_pool = own["subnets"][0]["pool"].as_str().unwrap().to_string();

    // Docker's create sequence by hand.
    let p = ok(
        &sock,
        "IpamDriver.RequestPool",
        json!({"AddressSpace": "LocalDefault", "Pool": sub, "V6": false}),
    );
    let pool_id = p["PoolID"].as_str().unwrap().to_string();
    assert_eq!(p["Pool"], sub.as_str());
    let g = ok(
        &sock,
        "IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": "", "Options": {"RequestAddressType": "com.docker.network.gateway"}}),
    );
    let gw = g["Address"].as_str().unwrap().to_string();
    assert!(gw.ends_with(".1/24"), "gateway {gw}");
    let net_id = hex_id();
    ok(
        &sock,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": net_id, "Options": {"com.docker.network.generic": {}},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": sub, "Gateway": gw}], "IPv6Data": []}),
    );
    d.cleanup_bridges.push(format!("br-{}", &net_id[..12]));
    let a = ok(
        &sock,
        "IpamDriver.RequestAddress",
        json!({"PoolID": pool_id, "Address": "", "Options": null}),
    );
    let addr = a["Address"].as_str().unwrap().to_string();
    let ep_id = hex_id();
    let ce = ok(
        &sock,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID": net_id, "EndpointID": ep_id,
        "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": ""}, "Options": {}}),
    );
    let mac = ce["Interface"]["MacAddress"].as_str().unwrap_or("");
    assert_eq!(mac.len(), 17, "MAC filled in: {ce}");
    assert!(
        ce["Interface"].get("Address").is_none(),
        "Address must not be echoed: {ce}"
    );
    let before = state(&d);

    // ---- malformed and hostile requests: each an Err, none changes anything ----
    let mut used = Vec::new();
    let mut fresh = || {
        let id = hex_id();
        used.push(id.clone());
        id
    };
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("NetworkDriver.CreateNetwork", b"{not json".to_vec()),
        (
            "NetworkDriver.CreateNetwork",
            br#"{"NetworkID": 5}"#.to_vec(),
        ),
        (
            "NetworkDriver.CreateNetwork",
            br#"{"NetworkID": "abc", "IPv4Data": [{"Pool": "banana"}]}"#.to_vec(),
        ),
        (
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": "zz", "IPv4Data": [{"Pool": sub}]})
                .to_string()
                .into_bytes(),
        ),
        (
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": fresh(), "EndpointID": fresh(),
            "Interface": {"Address": addr}})
            .to_string()
            .into_bytes(),
        ),
        // Duplicate endpoint.
        (
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": net_id, "EndpointID": ep_id,
            "Interface": {"Address": addr}})
            .to_string()
            .into_bytes(),
        ),
        // An endpoint on netd's own network.
        (
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": own_id, "EndpointID": fresh(),
            "Interface": {"Address": addr}})
            .to_string()
            .into_bytes(),
        ),
        (
            "NetworkDriver.Join",
            json!({"NetworkID": net_id, "EndpointID": fresh(), "SandboxKey": "/proc/1/ns/net"})
                .to_string()
                .into_bytes(),
        ),
        (
            "NetworkDriver.Join",
            json!({"NetworkID": own_id, "EndpointID": ep_id, "SandboxKey": "/proc/1/ns/net"})
                .to_string()
                .into_bytes(),
        ),
        (
            "NetworkDriver.Join",
            json!({"NetworkID": net_id, "EndpointID": ep_id, "SandboxKey": ""})
                .to_string()
                .into_bytes(),
        ),
        ("NetworkDriver.Join", br#"{"NetworkID": "x"}"#.to_vec()),
        (
            "NetworkDriver.Leave",
            json!({"NetworkID": net_id, "EndpointID": fresh()})
                .to_string()
                .into_bytes(),
        ),
        (
            "NetworkDriver.DeleteNetwork",
            json!({"NetworkID": own_id}).to_string().into_bytes(),
        ),
        // Docker's network still has an endpoint.
        (
            "NetworkDriver.DeleteNetwork",
            json!({"NetworkID": net_id}).to_string().into_bytes(),
        ),
        (
            "NetworkDriver.DeleteEndpoint",
            json!({"NetworkID": own_id, "EndpointID": ep_id})
                .to_string()
                .into_bytes(),
        ),
        (
            "NetworkDriver.ProgramExternalConnectivity",
            json!({"NetworkID": net_id, "EndpointID": ep_id,
            "Options": {"com.docker.network.portmap": [{"Proto": 99, "Port": 80}]}})
            .to_string()
            .into_bytes(),
        ),
        (
            "NetworkDriver.EndpointOperInfo",
            json!({"NetworkID": net_id, "EndpointID": fresh()})
                .to_string()
                .into_bytes(),
        ),
        ("NetworkDriver.AllocateNetwork", b"{}".to_vec()),
        ("IpamDriver.RequestPool", br#"{"Pool": "banana"}"#.to_vec()),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "LocalDefault", "Pool": sub})
                .to_string()
                .into_bytes(),
        ),
        (
            "IpamDriver.RequestPool",
            json!({"AddressSpace": "Elsewhere"})
                .to_string()
                .into_bytes(),
        ),
        (
            "IpamDriver.RequestPool",
            json!({"Pool": "10.99.0.1/24"}).to_string().into_bytes(),
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": pool_id, "Address": addr.split('/').next().unwrap()})
                .to_string()
                .into_bytes(),
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": own_pool}).to_string().into_bytes(),
        ),
        (
            "IpamDriver.RequestAddress",
            json!({"PoolID": "not a pool"}).to_string().into_bytes(),
        ),
        (
            "IpamDriver.ReleasePool",
            json!({"PoolID": own_pool}).to_string().into_bytes(),
        ),
        (
            "IpamDriver.ReleaseAddress",
            json!({"PoolID": own_pool, "Address": "10.0.0.1"})
                .to_string()
                .into_bytes(),
        ),
        (
            "IpamDriver.ReleaseAddress",
            br#"{"PoolID": "local/10.1.0.0/24", "Address": "zzz"}"#.to_vec(),
        ),
    ];
    for (m, body) in &bad {
        let msg = err(&sock, m, body);
        eprintln!("{m}: {msg}");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "netd died on {m} {}",
            String::from_utf8_lossy(body)
        );
    }
    // Unknown method: 404 (Docker tolerates that only for Program/Revoke).
    let (st, _) = call(&sock, "NetworkDriver.Nope", b"{}")?;
    assert_eq!(st, 404);
    assert_eq!(state(&d), before, "state changed by refused requests");
    let links = host_links();
    for id in &used {
        for l in [
            format!("br-{}", &id[..12]),
            format!("vnd{}", &id[..8]),
            format!("vnc{}", &id[..8]),
        ] {
            assert!(!links.contains(&l), "refused request left link {l}");
        }
    }
    assert!(
        links.contains(&format!("br-{}", &net_id[..12])),
        "Docker's bridge kept"
    );
    assert!(
        links.contains(&format!("vnd{}", &ep_id[..8])),
        "Docker's endpoint kept"
    );
    let own_now = d.json(&["network", "inspect", "own"])?[0].clone();
    assert_eq!(own_now, own, "netd's own network untouched");
    d.ok(&["version"])?;

    // ---- a bad option in CreateNetwork: refused, rolled back, pool still Docker's ----
    let bad_net = hex_id();
    let p2 = ok(
        &sock,
        "IpamDriver.RequestPool",
        json!({"AddressSpace": "LocalDefault", "Pool": subnet(7)}),
    );
    let msg = err(
        &sock,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": bad_net,
        "Options": {"com.docker.network.generic": {"com.docker.network.driver.mtu": "12"}},
        "IPv4Data": [{"Pool": subnet(7)}]})
        .to_string()
        .as_bytes(),
    );
    assert!(msg.to_lowercase().contains("mtu"), "{msg}");
    assert!(!host_links().contains(&format!("br-{}", &bad_net[..12])));
    assert_eq!(state(&d), before);
    ok(
        &sock,
        "IpamDriver.ReleasePool",
        json!({"PoolID": p2["PoolID"]}),
    );

    // ---- Docker's teardown sequence; idempotent where Docker needs it ----
    ok(
        &sock,
        "NetworkDriver.RevokeExternalConnectivity",
        json!({"NetworkID": net_id, "EndpointID": ep_id}),
    );
    ok(
        &sock,
        "NetworkDriver.DeleteEndpoint",
        json!({"NetworkID": net_id, "EndpointID": ep_id}),
    );
    ok(
        &sock,
        "NetworkDriver.DeleteEndpoint",
        json!({"NetworkID": net_id, "EndpointID": ep_id}),
    );
    ok(
        &sock,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": pool_id, "Address": addr.split('/').next().unwrap()}),
    );
    ok(
        &sock,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID": pool_id, "Address": gw.split('/').next().unwrap()}),
    );
    ok(&sock, "IpamDriver.ReleasePool", json!({"PoolID": pool_id}));
    ok(
        &sock,
        "NetworkDriver.DeleteNetwork",
        json!({"NetworkID": net_id}),
    );
    ok(
        &sock,
        "NetworkDriver.DeleteNetwork",
        json!({"NetworkID": net_id}),
    );
    assert!(!host_links().contains(&format!("br-{}", &net_id[..12])));
    d.ok(&["network", "rm", "own"])?;
    assert_eq!(
        nft_counts("inet", &d.nft_table),
        base_nft,
        "nft back to start"
    );
    let (nets, eps, sbs) = state(&d);
    assert_eq!(
        names(&nets),
        vec!["host", "none"],
        "only the predefined networks left"
    );
    assert_eq!((eps, sbs), (json!([]), json!([])));
    // The pools are gone: netd can create both subnets again.
    d.ok(&["network", "create", "--subnet", &sub, "re"])?;
    d.ok(&["network", "rm", "re"])?;
    if d.pid() != Some(pid) {
        bail!("netd restarted underneath the test");
    }
    Ok(())
}
