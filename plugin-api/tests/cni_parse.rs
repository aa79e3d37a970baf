//! CNI call parsing: every supported version, every error code path, interface vs IPAM mode,
//! runtimeConfig / args / CNI_ARGS precedence, prevResult per version.

use plugin_api::cni::{self, CniError, CniVersion, Command, Op};
use plugin_api::rest::CniCall;
use serde_json::{json, Value};

fn call(command: &str, config: Value) -> CniCall {
    CniCall {
        command: command.into(),
        container_id: Some("c0ffee-1".into()),
        netns: Some("/var/run/netns/cni-1234".into()),
        ifname: Some("eth0".into()),
        args: Some("IgnoreUnknown=1;K8S_POD_NAME=web;K8S_POD_NAMESPACE=default".into()),
        path: Some("/opt/cni/bin:/usr/lib/cni".into()),
        config,
    }
}

fn conf(version: &str) -> Value {
    json!({
        "cniVersion": version, "name": "mynet", "type": "netd-cni",
        "bridge": "netd0", "ipMasq": true, "isGateway": true, "mtu": 1400,
        "subnet": "10.88.0.0/16", "gateway": "10.88.0.1",
        "options": {"k": "v", "n": 3}, "somethingUnknown": {"x": 1}
    })
}

fn code(c: &CniCall) -> u32 {
    match cni::parse_call(c) {
        Ok(p) => panic!("expected an error, parsed {p:?}"),
        Err(e) => {
            assert!(!e.msg.is_empty());
            e.code
        }
    }
}

#[test]
fn parses_add_for_every_version() {
    for v in cni::SUPPORTED_VERSIONS {
        let p = cni::parse_call(&call("ADD", conf(v))).unwrap();
        assert_eq!(p.version.as_str(), v);
        assert!(!p.ipam_mode);
        assert_eq!(
            p.op,
            Op::Add {
                container_id: "c0ffee-1".into(),
                ifname: "eth0".into(),
                netns: "/var/run/netns/cni-1234".into()
            }
        );
        assert_eq!(p.netd.network, "mynet");
        assert_eq!(p.netd.bridge.as_deref(), Some("netd0"));
        assert_eq!(p.netd.subnet.unwrap().to_string(), "10.88.0.0/16");
        assert_eq!(p.netd.gateway.unwrap().to_string(), "10.88.0.1");
        assert_eq!(
            (p.netd.ip_masq, p.netd.is_gateway, p.netd.mtu),
            (Some(true), Some(true), Some(1400))
        );
        assert_eq!(p.netd.options["n"], "3");
        assert_eq!(p.args.k8s_pod_name.as_deref(), Some("web"));
        assert_eq!(p.cni_path, ["/opt/cni/bin", "/usr/lib/cni"]);
        assert_eq!(p.op.command(), Command::Add);
    }
}

#[test]
fn version_errors() {
    let mut c = conf("1.0.0");
    c["cniVersion"] = json!("0.2.0");
    assert_eq!(
        code(&call("ADD", c.clone())),
        CniError::INCOMPATIBLE_VERSION
    );
    c["cniVersion"] = json!("9.9.9");
    assert_eq!(code(&call("ADD", c.clone())), 1);
    c.as_object_mut().unwrap().remove("cniVersion");
    assert_eq!(code(&call("ADD", c.clone())), 1);
    c["cniVersion"] = json!("one");
    assert_eq!(code(&call("ADD", c.clone())), CniError::DECODE_FAILURE);
    c["cniVersion"] = json!(1.0);
    assert_eq!(code(&call("ADD", c.clone())), 6);
    // Verbs newer than the config's version.
    assert_eq!(code(&call("CHECK", conf("0.3.1"))), 1);
    assert!(cni::parse_call(&call("CHECK", conf("0.4.0"))).is_ok());
    assert_eq!(code(&call("STATUS", conf("1.0.0"))), 1);
    let mut gc = conf("1.0.0");
    gc["cni.dev/valid-attachments"] = json!([]);
    assert_eq!(code(&call("GC", gc)), 1);
}

#[test]
fn env_errors_are_code_4() {
    let base = call("ADD", conf("1.1.0"));
    type Mutation = Box<dyn Fn(&mut CniCall)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("unknown command", Box::new(|c| c.command = "ATTACH".into())),
        ("missing container id", Box::new(|c| c.container_id = None)),
        (
            "empty container id",
            Box::new(|c| c.container_id = Some(String::new())),
        ),
        (
            "bad container id",
            Box::new(|c| c.container_id = Some("-abc".into())),
        ),
        (
            "bad container id chars",
            Box::new(|c| c.container_id = Some("a b".into())),
        ),
        ("missing ifname", Box::new(|c| c.ifname = None)),
        ("long ifname", Box::new(|c| c.ifname = Some("a".repeat(16)))),
        (
            "ifname with slash",
            Box::new(|c| c.ifname = Some("a/b".into())),
        ),
        ("ifname dot", Box::new(|c| c.ifname = Some(".".into()))),
        ("missing netns", Box::new(|c| c.netns = None)),
        ("missing path", Box::new(|c| c.path = None)),
        ("unknown arg", Box::new(|c| c.args = Some("FOO=bar".into()))),
        (
            "unknown arg ignore=0",
            Box::new(|c| c.args = Some("IgnoreUnknown=0;FOO=bar".into())),
        ),
        ("bad pair", Box::new(|c| c.args = Some("IP".into()))),
        (
            "bad ip arg",
            Box::new(|c| c.args = Some("IP=10.0.0.300".into())),
        ),
        ("version verb", Box::new(|c| c.command = "VERSION".into())),
    ];
    for (what, f) in cases {
        let mut c = base.clone();
        f(&mut c);
        assert_eq!(code(&c), CniError::INVALID_ENV, "{what}");
    }
    let e = cni::parse_call(&CniCall {
        args: Some("FOO=bar".into()),
        ..base.clone()
    })
    .unwrap_err();
    assert!(
        e.msg.contains("FOO") && e.msg.contains("IgnoreUnknown"),
        "{}",
        e.msg
    );
    let e = cni::parse_call(&CniCall {
        netns: None,
        ..base.clone()
    })
    .unwrap_err();
    assert!(e.msg.contains("CNI_NETNS"), "{}", e.msg);
}

#[test]
fn del_needs_no_netns_gc_and_status_need_little() {
    let mut c = call("DEL", conf("1.1.0"));
    c.netns = None;
    let p = cni::parse_call(&c).unwrap();
    assert_eq!(
        p.op,
        Op::Del {
            container_id: "c0ffee-1".into(),
            ifname: "eth0".into(),
            netns: None
        }
    );
    let mut g = conf("1.1.0");
    g["cni.dev/valid-attachments"] = json!([{"containerID": "a1", "ifname": "eth0"}]);
    let gc = CniCall {
        command: "GC".into(),
        path: Some("/opt/cni/bin".into()),
        config: g,
        ..CniCall::default()
    };
    let p = cni::parse_call(&gc).unwrap();
    let Op::Gc { valid_attachments } = &p.op else {
        panic!()
    };
    assert_eq!(valid_attachments[0].container_id, "a1");
    // Older key accepted too; a missing list is refused rather than read as "nothing valid".
    let mut old = gc.clone();
    old.config = conf("1.1.0");
    old.config["cni.dev/attachments"] = json!([]);
    assert!(cni::parse_call(&old).is_ok());
    let mut none = gc.clone();
    none.config = conf("1.1.0");
    assert_eq!(code(&none), CniError::INVALID_CONFIG);
    let mut badlist = gc.clone();
    badlist.config["cni.dev/valid-attachments"] = json!([{"ifname": "eth0"}]);
    assert_eq!(code(&badlist), 7);
    let status = CniCall {
        command: "STATUS".into(),
        config: conf("1.1.0"),
        ..CniCall::default()
    };
    assert_eq!(cni::parse_call(&status).unwrap().op, Op::Status);
}

#[test]
fn config_errors() {
    let cases: Vec<(Value, u32, &str)> = vec![
        (
            json!({"cniVersion": "1.0.0", "type": "netd-cni"}),
            7,
            "name",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "bad name", "type": "netd-cni"}),
            7,
            "name",
        ),
        (json!({"cniVersion": "1.0.0", "name": "n"}), 7, "type"),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "bridge"}),
            7,
            "netd-cni",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "ipMasq": "yes"}),
            7,
            "ipMasq",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "mtu": 10}),
            7,
            "mtu",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "mtu": 70000}),
            7,
            "mtu",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "subnet": "10.0.0.0/33"}),
            7,
            "subnet",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "subnet": "fd00::/64"}),
            7,
            "subnet",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "subnet": "10.0.0.0/24", "gateway": "10.0.1.1"}),
            7,
            "outside",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "gateway": "10.0.1.1"}),
            7,
            "subnet",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "bridge": "a:b"}),
            7,
            "bridge",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "network": "-x"}),
            7,
            "network",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "options": {"a": [1]}}),
            7,
            "options.a",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "ipam": {"type": "host-local"}}),
            2,
            "host-local",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "ipam": []}),
            7,
            "ipam",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "dns": {"nameservers": [1]}}),
            7,
            "dns.nameservers",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni",
                "runtimeConfig": {"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]}}),
            2,
            "protocol",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni",
                "runtimeConfig": {"portMappings": [{"hostPort": 0, "containerPort": 80}]}}),
            7,
            "hostPort",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni",
                "runtimeConfig": {"mac": "nope"}}),
            7,
            "runtimeConfig.mac",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni",
                "args": {"cni": {"ips": ["x"]}}}),
            7,
            "args.cni.ips",
        ),
        (
            json!({"cniVersion": "1.0.0", "name": "n", "type": "netd-cni", "prevResult": {"ips": 3}}),
            6,
            "prevResult",
        ),
        (json!("just a string"), 6, "object"),
    ];
    for (cfg, want, needle) in cases {
        let e = cni::parse_call(&call("ADD", cfg.clone())).unwrap_err();
        assert_eq!(e.code, want, "{cfg}: {}", e.msg);
        assert!(
            e.msg.contains(needle),
            "{cfg}: message {:?} lacks {needle:?}",
            e.msg
        );
    }
}

#[test]
fn from_env_decode_errors() {
    let env = |k: &str| (k == "CNI_COMMAND").then(|| "ADD".to_string());
    assert_eq!(cni::call_from_env(&env, b"{nope").unwrap_err().code, 6);
    assert_eq!(cni::call_from_env(&env, b"  \n").unwrap_err().code, 6);
    let none = |_: &str| None;
    assert_eq!(cni::call_from_env(&none, b"{}").unwrap_err().code, 4);
    let c = cni::call_from_env(&env, br#"{"a":1}"#).unwrap();
    assert_eq!(
        (c.command.as_str(), c.config["a"].as_i64()),
        ("ADD", Some(1))
    );
}

#[test]
fn ipam_mode_rule() {
    let bridge = json!({
        "cniVersion": "0.4.0", "name": "podnet", "type": "bridge", "bridge": "cni0", "ipMasq": "weird but not ours",
        "ipam": {"type": "netd-cni", "network": "shared", "subnet": "10.77.0.0/24", "socket": "/tmp/x.sock"}
    });
    let p = cni::parse_call(&call("ADD", bridge.clone())).unwrap();
    assert!(p.ipam_mode);
    assert_eq!(p.netd.network, "shared");
    assert_eq!(p.netd.subnet.unwrap().to_string(), "10.77.0.0/24");
    assert_eq!(p.netd.socket.as_deref(), Some("/tmp/x.sock"));
    assert_eq!(
        p.netd.bridge, None,
        "interface keys belong to the bridge plugin"
    );
    assert!(cni::is_ipam_mode("bridge", Some("netd-cni")));
    assert!(!cni::is_ipam_mode("netd-cni", Some("netd-cni")));
    assert!(!cni::is_ipam_mode("bridge", Some("host-local")));
    // Type netd-cni with ipam.type netd-cni is interface mode (an explicit no-op ipam).
    let mut c = conf("1.0.0");
    c["ipam"] = json!({"type": "netd-cni"});
    assert!(!cni::parse_call(&call("ADD", c)).unwrap().ipam_mode);
    // Errors in the ipam object name the ipam path.
    let mut b = bridge;
    b["ipam"]["subnet"] = json!("x");
    let e = cni::parse_call(&call("ADD", b)).unwrap_err();
    assert_eq!(e.code, 7);
    assert!(e.msg.contains("ipam.subnet"), "{}", e.msg);
}

#[test]
fn runtime_config_and_precedence() {
    let mut c = conf("1.0.0");
    c["runtimeConfig"] = json!({
        "portMappings": [
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
            {"HostPort": 5353, "ContainerPort": 53, "Protocol": "UDP", "HostIP": "127.0.0.1"},
            {"hostPort": 9000, "containerPort": 9, "hostIP": ""}
        ],
        "ips": ["10.88.0.9/16"], "mac": "C2:11:22:33:44:55",
        "dns": {"servers": ["10.0.0.53"], "searches": ["corp"], "options": ["ndots:1"]},
        "bandwidth": {"ingressRate": 1}
    });
    c["capabilities"] = json!({"portMappings": true, "ips": true});
    let mut k = call("ADD", c.clone());
    k.args = Some("IP=10.88.0.7;MAC=02:00:00:00:00:07".into());
    let p = cni::parse_call(&k).unwrap();
    let pm = &p.conf.runtime_config.port_mappings;
    assert_eq!(
        (
            pm[0].host_port,
            pm[0].container_port,
            pm[0].protocol.as_str()
        ),
        (8080, 80, "tcp")
    );
    assert_eq!(
        (pm[1].protocol.as_str(), pm[1].host_ip),
        ("udp", Some("127.0.0.1".parse().unwrap()))
    );
    assert_eq!(pm[2].host_ip, None);
    assert_eq!(
        p.conf.runtime_config.dns.as_ref().unwrap().searches,
        ["corp"]
    );
    assert!(p.conf.capabilities["portMappings"]);
    assert_eq!(
        p.requested_ips(),
        ["10.88.0.9".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(p.requested_mac(), Some("c2:11:22:33:44:55"));
    // args.cni wins over runtimeConfig; CNI_ARGS is the fallback.
    c["args"] = json!({"cni": {"ips": ["10.88.0.10"], "mac": "02:00:00:00:00:10"}});
    let p = cni::parse_call(&CniCall {
        config: c.clone(),
        ..k.clone()
    })
    .unwrap();
    assert_eq!(p.requested_ips()[0].to_string(), "10.88.0.10");
    assert_eq!(p.requested_mac(), Some("02:00:00:00:00:10"));
    c.as_object_mut().unwrap().remove("args");
    c.as_object_mut().unwrap().remove("runtimeConfig");
    let p = cni::parse_call(&CniCall { config: c, ..k }).unwrap();
    assert_eq!(p.requested_ips()[0].to_string(), "10.88.0.7");
    assert_eq!(p.requested_mac(), Some("02:00:00:00:00:07"));
}

#[test]
fn prev_result_of_each_version() {
    for v in CniVersion::ALL {
        let ips = if v.ips_have_version() {
            json!([{"version": "4", "address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1}])
        } else {
            json!([{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 1}])
        };
        let mut c = conf(v.as_str());
        c["prevResult"] = json!({
            "cniVersion": v.as_str(),
            "interfaces": [{"name": "netd0", "mac": "02:00:00:00:00:01"},
                           {"name": "eth0", "mac": "02:00:00:00:00:02", "sandbox": "/var/run/netns/x"}],
            "ips": ips, "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}],
            "dns": {"nameservers": ["10.88.0.1"]}
        });
        let p = cni::parse_call(&call("DEL", c)).unwrap();
        let r = p.prev_result.unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.88.0.5/16", "{v}");
        assert_eq!(r.ips[0].interface, Some(1));
        assert_eq!(r.interfaces[1].sandbox, "/var/run/netns/x");
        assert_eq!(r.dns.nameservers, ["10.88.0.1"]);
    }
}

#[test]
fn disable_check_string_or_bool() {
    let mut c = conf("0.4.0");
    c["disableCheck"] = json!("true");
    assert!(
        cni::parse_call(&call("ADD", c.clone()))
            .unwrap()
            .conf
            .disable_check
    );
    c["disableCheck"] = json!(false);
    assert!(
        !cni::parse_call(&call("ADD", c.clone()))
            .unwrap()
            .conf
            .disable_check
    );
    c["disableCheck"] = json!("nah");
    assert_eq!(code(&call("ADD", c)), 7);
}
