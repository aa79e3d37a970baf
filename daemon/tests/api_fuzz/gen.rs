//! Request generator of the REST API fuzz: one request (method, path, body) from one u64
//! seed. A small seeded PRNG is much faster than composed proptest strategies in debug
//! builds, so proptest only supplies seeds (and its runner). Requests are random bytes,
//! random JSON, structure-aware mutations of valid bodies for every POST route, and random
//! methods and paths. Names come from a small pool so requests refer to each other's
//! objects (connect to a network made by an earlier request, delete it later, ...).

use serde_json::{json, Map, Value};

/// xorshift64*: tiny and good enough to pick among choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `p` percent.
    pub fn pct(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// One generated request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
    /// Which generator made it (for the printed tally).
    pub kind: &'static str,
}

const NAMES: &[&str] = &[
    "a", "b", "c", "web", "n1", "none", "host", "bridge", "x-1", "a.b", "_bad", "", "A",
];
const SUBNETS: &[&str] = &[
    "10.202.0.0/24",
    "10.202.1.0/24",
    "10.202.2.0/24",
    "10.202.0.0/16",
    "10.202.9.0/30",
    "10.202.9.4/31",
    "10.202.9.8/32",
    "fd00:202::/64",
    "fd00:202:1::/120",
    "0.0.0.0/0",
    "::/0",
    "10.202.0.1/24",
    "10.202.0.0/33",
    "10.202.0.0",
    "not-a-subnet",
    "",
];
const IPS: &[&str] = &[
    "10.202.0.1",
    "10.202.0.2",
    "10.202.0.7",
    "10.202.0.255",
    "10.202.0.0",
    "10.202.1.9",
    "10.202.9.1",
    "fd00:202::5",
    "fd00:202::1",
    "::ffff:10.202.0.9",
    "127.0.0.1",
    "0.0.0.0",
    "10.202.0.300",
    "x",
    "",
];
const MACS: &[&str] = &[
    "02:42:ac:11:00:02",
    "02:42:AC:11:00:03",
    "01:00:5e:00:00:01",
    "00:00:00:00:00:00",
    "ff:ff:ff:ff:ff:ff",
    "02:42:ac:11:00",
    "zz:42:ac:11:00:02",
    "",
];
const IFNAMES: &[&str] = &[
    "eth0",
    "eth1",
    "net1",
    "lo",
    "",
    "a/b",
    "verylongifname0123",
    "eth 0",
    "..",
];
const OPT_KEYS: &[&str] = &[
    "com.docker.network.bridge.name",
    "com.docker.network.driver.mtu",
    "com.docker.network.bridge.enable_ip_masquerade",
    "com.docker.network.bridge.enable_icc",
    "com.docker.network.bridge.host_binding_ipv4",
    "com.docker.network.bridge.default_bridge",
    "com.docker.network.bridge.gateway_mode_ipv4",
    "foo",
];
const OPT_VALS: &[&str] = &[
    "nfz0",
    "nfz-b1",
    "1500",
    "68",
    "65536",
    "-1",
    "true",
    "false",
    "0.0.0.0",
    "127.0.0.1",
    "routed",
    "verylongbridgename0123",
    "",
];
const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "é",
    "\u{0}",
    "../../etc/passwd",
    "/",
    "-1",
    "0",
    "null",
    "%ff",
    "eth0\n",
    "😀",
    "10.202.0.0/24",
    "fd00:202::/64",
];
const CNI_VERSIONS: &[&str] = &[
    "1.1.0", "1.0.0", "0.4.0", "0.3.1", "0.3.0", "0.2.0", "9.9.9", "",
];
const CNI_COMMANDS: &[&str] = &[
    "ADD", "ADD", "DEL", "DEL", "CHECK", "GC", "STATUS", "VERSION", "", "add",
];
/// Every field name of the REST request types, for random objects.
const KEYS: &[&str] = &[
    "name",
    "driver",
    "ipam",
    "subnet",
    "ip_range",
    "gateway",
    "aux_addresses",
    "ipv6",
    "internal",
    "options",
    "labels",
    "owner",
    "netns_path",
    "hostname",
    "dns",
    "networks",
    "target",
    "aliases",
    "ip",
    "ip6",
    "mac",
    "ports",
    "ifname",
    "proto",
    "host_ip",
    "host_port",
    "host_port_end",
    "container_port",
    "sandbox",
    "force",
    "command",
    "container_id",
    "netns",
    "args",
    "path",
    "config",
    "rootfs",
    "argv",
    "env",
    "cwd",
    "rm",
    "detach",
    "cniVersion",
    "type",
    "bridge",
    "runtimeConfig",
    "portMappings",
];

/// Paths of the plain files the harness uses as "namespaces" (adopted, never entered).
pub struct Paths {
    /// One file many sandboxes may adopt at once.
    pub fake_netns: String,
}

/// Replaced by the harness with a new file of its own in each request (one namespace per
/// sandbox, as runtimes do).
pub const FRESH_NETNS: &str = "@FRESH_NETNS@";

fn name(r: &mut Rng) -> Value {
    if r.pct(8) {
        Value::String(small_string(r, 12))
    } else {
        json!(r.pick(NAMES))
    }
}

fn small_string(r: &mut Rng, max: usize) -> String {
    const ALPHABET: &[char] = &[
        'a', 'z', 'Z', '0', '9', '_', '.', '-', '/', ':', ' ', '\0', 'é', '😀', '%', '\n',
    ];
    let n = r.below(max + 1);
    (0..n).map(|_| *r.pick(ALPHABET)).collect()
}

fn leaf(r: &mut Rng) -> Value {
    match r.below(9) {
        0 => Value::Null,
        1 => json!(r.pct(50)),
        2 => json!(*r.pick(&[0i64, 1, -1, 80, 65535, 65536, i64::MAX, i64::MIN])),
        3 => json!(*r.pick(&[0.5f64, 1e300, -0.0])),
        4 => json!(u64::MAX),
        5 => json!(r.pick(EDGE_STRINGS)),
        6 => json!(r.pick(IPS)),
        7 => json!(r.pick(SUBNETS)),
        _ => Value::String(small_string(r, 10)),
    }
}

pub fn random_json(r: &mut Rng, depth: u32) -> Value {
    if depth == 0 || r.pct(45) {
        return leaf(r);
    }
    if r.pct(40) {
        let n = r.below(4);
        Value::Array((0..n).map(|_| random_json(r, depth - 1)).collect())
    } else {
        let n = r.below(6);
        let mut m = Map::new();
        for _ in 0..n {
            m.insert(r.pick(KEYS).to_string(), random_json(r, depth - 1));
        }
        Value::Object(m)
    }
}

fn port_mapping(r: &mut Rng) -> Value {
    let band = 41_000 + (r.next() % 200) as u32;
    let mut m = json!({
        "proto": r.pick(&["tcp", "tcp", "udp", "sctp", "icmp", ""]),
        "host_ip": r.pick(&["", "", "127.0.0.1", "0.0.0.0", "::1", "10.9.9.9", "x"]),
        "host_port": *r.pick(&[0u32, 0, band, 1, 65535, 65536]),
        "container_port": *r.pick(&[80u32, 80, 443, 0, 65535, 70000]),
    });
    if r.pct(20) {
        m["host_port_end"] = json!(41_000 + (r.next() % 300) as u32);
    }
    m
}

/// A valid-looking connect body; `target` names a sandbox (connect route) or a network
/// (inside a sandbox create).
fn connect_body(r: &mut Rng) -> Value {
    let mut m = json!({ "target": name(r) });
    if r.pct(30) {
        m["aliases"] = json!([name(r), name(r)]);
    }
    if r.pct(30) {
        m["ip"] = json!(r.pick(IPS));
    }
    if r.pct(10) {
        m["ip6"] = json!(r.pick(IPS));
    }
    if r.pct(20) {
        m["mac"] = json!(r.pick(MACS));
    }
    if r.pct(25) {
        let n = 1 + r.below(2);
        m["ports"] = Value::Array((0..n).map(|_| port_mapping(r)).collect());
    }
    if r.pct(20) {
        m["ifname"] = json!(r.pick(IFNAMES));
    }
    m
}

fn network_body(r: &mut Rng) -> Value {
    let mut m = json!({ "name": name(r) });
    if r.pct(90) {
        m["driver"] =
            json!(r.pick(&["bridge", "bridge", "bridge", "null", "host", "none", "macvlan", ""]));
    }
    if r.pct(60) {
        let n = 1 + r.below(2);
        let pools: Vec<Value> = (0..n)
            .map(|_| {
                let mut p = json!({ "subnet": r.pick(SUBNETS) });
                if r.pct(40) {
                    p["gateway"] = json!(r.pick(IPS));
                }
                if r.pct(25) {
                    p["ip_range"] = json!(r.pick(SUBNETS));
                }
                if r.pct(10) {
                    p["aux_addresses"] = json!({ "h": r.pick(IPS) });
                }
                p
            })
            .collect();
        m["ipam"] = Value::Array(pools);
    }
    if r.pct(25) {
        m["ipv6"] = json!(r.pct(50));
    }
    if r.pct(15) {
        m["internal"] = json!(r.pct(50));
    }
    if r.pct(30) {
        m["options"] = json!({ r.pick(OPT_KEYS).to_string(): r.pick(OPT_VALS) });
    }
    if r.pct(10) {
        m["labels"] = json!({ "k": small_string(r, 6) });
    }
    if r.pct(15) {
        m["owner"] = json!(r.pick(&["netd", "cni", "docker", "someone"]));
    }
    m
}

fn sandbox_body(r: &mut Rng, p: &Paths) -> Value {
    let mut m = json!({});
    if r.pct(85) {
        m["name"] = name(r);
    }
    match r.below(20) {
        0 | 1 => {} // netd makes a namespace (the harness caps how many)
        2 => m["netns_path"] = json!("/nonexistent/netd-fuzz-ns"),
        3 => m["netns_path"] = json!(p.fake_netns),
        _ => m["netns_path"] = json!(FRESH_NETNS),
    }
    if r.pct(15) {
        m["hostname"] = json!(small_string(r, 10));
    }
    if r.pct(15) {
        m["dns"] = json!([r.pick(IPS)]);
    }
    if r.pct(60) {
        let n = 1 + r.below(2);
        m["networks"] = Value::Array((0..n).map(|_| connect_body(r)).collect());
    }
    m
}

fn cni_body(r: &mut Rng, p: &Paths) -> Value {
    let net = *r.pick(&["cn1", "cn2", "a", "none"]);
    let mut cfg = json!({
        "cniVersion": r.pick(CNI_VERSIONS),
        "name": net,
    });
    if r.pct(75) {
        // Interface mode: netd makes the network from the config.
        cfg["type"] = json!("netd-cni");
        if r.pct(60) {
            cfg["subnet"] = json!(r.pick(SUBNETS));
        }
        if r.pct(30) {
            cfg["bridge"] = json!(r.pick(&["nfzc1", "nfzc2", "verylongbridgename0123"]));
        }
    } else {
        // IPAM mode: another plugin with netd as its IPAM.
        cfg["type"] = json!("bridge");
        let mut ipam = json!({ "type": "netd-cni" });
        if r.pct(60) {
            ipam["subnet"] = json!(r.pick(SUBNETS));
        }
        cfg["ipam"] = ipam;
    }
    if r.pct(20) {
        let band = 41_000 + (r.next() % 200) as u32;
        cfg["runtimeConfig"] = json!({ "portMappings": [{
            "hostPort": *r.pick(&[0u32, band, 70000]),
            "containerPort": *r.pick(&[80u32, 0]),
            "protocol": r.pick(&["tcp", "udp", "x"]),
        }]});
    }
    let cid = format!("ctr{}", r.below(4));
    if r.pct(20) {
        cfg["cni.dev/valid-attachments"] = json!([{ "containerID": cid, "ifname": "eth0" }]);
    }
    let mut m = json!({
        "command": r.pick(CNI_COMMANDS),
        "container_id": cid,
        "netns": match r.below(20) {
            0 => "/nonexistent/netd-fuzz-ns".to_string(),
            1 => p.fake_netns.clone(),
            _ => format!("{}-{cid}", p.fake_netns),
        },
        "ifname": r.pick(&["eth0", "eth0", "eth1", "net1", "", "verylongifname0123"]),
        "path": "/opt/cni/bin",
        "config": cfg,
    });
    if r.pct(15) {
        m["args"] = json!(r.pick(&["IgnoreUnknown=1", "IP=10.202.0.9", "K8S_POD_NAME=x", "=;="]));
    }
    m
}

fn container_body(r: &mut Rng) -> Value {
    let mut m = json!({
        "rootfs": r.pick(&["/nonexistent/rootfs", "/", "relative", ""]),
        "argv": if r.pct(70) { json!(["/bin/true"]) } else { json!([]) },
    });
    if r.pct(50) {
        m["name"] = name(r);
    }
    if r.pct(30) {
        m["networks"] = json!([connect_body(r)]);
    }
    if r.pct(30) {
        m["detach"] = json!(r.pct(50));
    }
    m
}

/// Change a valid body a little: replace, drop or add a field anywhere in the tree, retype
/// a value, or swap in an edge value.
pub fn mutate(r: &mut Rng, v: &mut Value, depth: u32) {
    let descend = depth < 4 && r.pct(55);
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let k = m.keys().nth(r.below(m.len())).cloned().unwrap();
            mutate(r, m.get_mut(&k).unwrap(), depth + 1);
            return;
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = r.below(a.len());
            mutate(r, &mut a[i], depth + 1);
            return;
        }
        _ => {}
    }
    match (r.below(6), &mut *v) {
        (0, Value::Object(m)) if !m.is_empty() => {
            let k = m.keys().nth(r.below(m.len())).cloned().unwrap();
            m.remove(&k);
        }
        (1, Value::Object(m)) => {
            m.insert(r.pick(KEYS).to_string(), random_json(r, 2));
        }
        (1, Value::Array(a)) => a.push(random_json(r, 2)),
        (2, Value::String(s)) => *s = r.pick(EDGE_STRINGS).to_string(),
        (2, Value::Number(_)) => *v = leaf(r),
        (3, _) => *v = json!("x".repeat(1 + r.below(300))),
        _ => *v = random_json(r, 2),
    }
}

fn route_name(r: &mut Rng) -> String {
    match r.below(10) {
        0 => small_string(r, 8),
        1 => r
            .pick(&["%ff", "%2F", "..", "a%20b", "%", "é", "0123456789abcdef"])
            .to_string(),
        _ => r.pick(NAMES).to_string(),
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// A POST route and its valid-body generator.
fn post_route(r: &mut Rng, p: &Paths) -> (String, Value, &'static str) {
    match r.below(12) {
        0..=2 => ("/networks".into(), network_body(r), "network-create"),
        3..=4 => (
            format!("/networks/{}/connect", route_name(r)),
            connect_body(r),
            "connect",
        ),
        5 => (
            format!("/networks/{}/disconnect", route_name(r)),
            json!({ "sandbox": name(r), "force": r.pct(30) }),
            "disconnect",
        ),
        6..=8 => ("/sandboxes".into(), sandbox_body(r, p), "sandbox-create"),
        9..=10 => ("/cni".into(), cni_body(r, p), "cni"),
        _ => ("/containers".into(), container_body(r), "container-create"),
    }
}

/// The request of one seed.
pub fn request(seed: u64, p: &Paths) -> Req {
    let mut r = Rng::new(seed);
    let (path, mut body, kind) = post_route(&mut r, p);
    match r.below(20) {
        // Valid bodies as generated (they still name missing objects often).
        0..=4 => Req {
            method: "POST",
            path,
            body: body.to_string().into_bytes(),
            kind,
        },
        // Structure-aware mutations.
        5..=10 => {
            for _ in 0..1 + r.below(3) {
                mutate(&mut r, &mut body, 0);
            }
            Req {
                method: "POST",
                path,
                body: body.to_string().into_bytes(),
                kind: "mutated",
            }
        }
        // Random JSON.
        11..=12 => Req {
            method: "POST",
            path,
            body: random_json(&mut r, 3).to_string().into_bytes(),
            kind: "random-json",
        },
        // Random bytes, or a valid body cut short.
        13..=14 => {
            let b = if r.pct(50) {
                let n = r.below(96);
                (0..n).map(|_| r.next() as u8).collect()
            } else {
                let mut b = body.to_string().into_bytes();
                b.truncate(r.below(b.len()));
                b
            };
            Req {
                method: "POST",
                path,
                body: b,
                kind: "random-bytes",
            }
        }
        // Reads and deletes of named objects.
        15..=17 => {
            let (method, path) = match r.below(9) {
                0 => ("GET", "/networks".to_string()),
                1 => ("GET", format!("/networks/{}", route_name(&mut r))),
                2 | 3 => ("DELETE", format!("/networks/{}", route_name(&mut r))),
                4 => (
                    "GET",
                    format!(
                        "/sandboxes/{}?kernel={}",
                        route_name(&mut r),
                        r.pick(&["false", "true", "x"])
                    ),
                ),
                5 | 6 => ("DELETE", format!("/sandboxes/{}", route_name(&mut r))),
                7 => ("GET", "/ipam".to_string()),
                _ => ("GET", format!("/containers/{}", route_name(&mut r))),
            };
            Req {
                method,
                path,
                body: vec![],
                kind: "get-delete",
            }
        }
        // Random method and path.
        _ => {
            let method = *r.pick(METHODS);
            let path = match r.below(4) {
                0 => {
                    let n = r.below(5);
                    let segs: Vec<String> = (0..n).map(|_| route_name(&mut r)).collect();
                    format!("/{}", segs.join("/"))
                }
                1 => format!(
                    "/{}/{}/{}",
                    r.pick(&[
                        "networks",
                        "sandboxes",
                        "containers",
                        "endpoints",
                        "system",
                        "ipam",
                        "cni",
                        "version"
                    ]),
                    route_name(&mut r),
                    r.pick(&[
                        "connect",
                        "disconnect",
                        "stop",
                        "logs",
                        "wait",
                        "reconcile",
                        "",
                        "x"
                    ])
                ),
                2 => format!(
                    "/containers{}",
                    r.pick(&[
                        "?all=1",
                        "?all=true",
                        "/x?force=maybe",
                        "/x/stop?timeout=-1",
                        "/x/wait",
                        "/x/logs"
                    ])
                ),
                _ => format!("/{}", "a/".repeat(r.below(600))),
            };
            let body = if r.pct(50) {
                body.to_string().into_bytes()
            } else {
                vec![]
            };
            Req {
                method,
                path,
                body,
                kind: "random-route",
            }
        }
    }
}
