//! Operator tools against a private netd: Prometheus metrics (unix socket and opt-in
//! TCP), `netctl explain` (refused network rm, port holders, subnet overlaps),
//! `netctl doctor` and `netctl completion`. Traffic stays on loopback and inside the
//! sandboxes' namespaces; the DNS query asks for a container name (answered locally).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use netd_tests::{bin, in_ns_thread, require_root, run, Daemon, TestNs};

/// One parsed sample line: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parse the Prometheus text format (what our exposition writes: no timestamps).
fn parse_expo(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut m = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut val = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some('n') => val.push('\n'),
                                Some(o) => val.push(o),
                                None => break,
                            },
                            '"' => break,
                            c => val.push(c),
                        }
                    }
                    m.insert(key, val);
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                }
                (n.to_string(), m)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// Sum of the samples named `name` whose labels include all of `want`.
fn metric(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn scrape(d: &Daemon) -> Vec<Sample> {
    let (status, body) = d.raw("GET", "/metrics", b"").unwrap();
    assert_eq!(status, 200, "{body}");
    parse_expo(&body)
}

/// The text log has colour escapes; drop them for matching.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for c in it.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal DNS query (A, recursion desired) for `name`.
fn dns_query(name: &str) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p
}

fn net_create(d: &Daemon, name: &str) -> serde_json::Value {
    d.json(&["network", "create", name]).unwrap()
}

fn net_subnet(n: &serde_json::Value) -> String {
    n["subnets"][0]["subnet"].as_str().unwrap().to_string()
}

#[test]
fn metrics_count_operations_dns_proxy_ipam() {
    if !require_root("metrics_count_operations_dns_proxy_ipam") {
        return;
    }
    let d = Daemon::start_with(&["--dns", "127.0.0.1:9"]).unwrap();
    let before = scrape(&d);
    assert_eq!(metric(&before, "netd_build_info", &[]), 1.0);
    let created_before = metric(
        &before,
        "netd_api_requests_total",
        &[("operation", "create_network")],
    );

    let net = format!("mt{}", netd_tests::uniq());
    let n = net_create(&d, &net);
    let pool = n["subnets"][0]["pool"].as_str().unwrap().to_string();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let s = d
        .json(&[
            "sandbox",
            "create",
            "--name",
            &net,
            "--network",
            &net,
            "-p",
            &publish,
        ])
        .unwrap();
    let ns = s["netns_path"].as_str().unwrap().to_string();

    // A server inside the sandbox; a client on the host through the published port.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns_thread(&ns, move || -> std::io::Result<()> {
        let l = TcpListener::bind("0.0.0.0:80")?;
        ready_tx.send(()).unwrap();
        let (mut c, _) = l.accept()?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut b = [0u8; 4];
        c.read_exact(&mut b)?;
        c.write_all(b"pong")?;
        Ok(())
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
    drop(c);
    server.join().unwrap().unwrap().unwrap();

    // A DNS query for the sandbox's own name from inside it (answered from the table).
    let qname = net.clone();
    let answer = in_ns_thread(&ns, move || -> std::io::Result<usize> {
        let u = UdpSocket::bind("127.0.0.1:0")?;
        u.set_read_timeout(Some(Duration::from_secs(5)))?;
        u.send_to(&dns_query(&qname), "127.0.0.11:53")?;
        let mut buf = [0u8; 512];
        let (n, _) = u.recv_from(&mut buf)?;
        Ok(n)
    })
    .join()
    .unwrap()
    .unwrap()
    .unwrap();
    assert!(answer > 12, "a DNS answer came back");

    let mid = scrape(&d);
    assert_eq!(
        metric(
            &mid,
            "netd_api_requests_total",
            &[("operation", "create_network"), ("status", "200")]
        ),
        created_before + 1.0,
        "one more create_network"
    );
    assert!(
        metric(
            &mid,
            "netd_api_requests_total",
            &[("operation", "create_sandbox"), ("route", "/sandboxes")]
        ) >= 1.0
    );
    assert!(
        metric(
            &mid,
            "netd_api_request_duration_seconds_count",
            &[("operation", "create_network"), ("router", "api")]
        ) >= 1.0
    );
    assert!(
        metric(
            &mid,
            "netd_api_request_duration_seconds_bucket",
            &[("operation", "create_network"), ("le", "+Inf")]
        ) >= 1.0
    );
    assert!(metric(&mid, "netd_networks", &[]) >= 1.0);
    assert!(metric(&mid, "netd_sandboxes", &[]) >= 1.0);
    assert!(metric(&mid, "netd_published_ports", &[]) >= 1.0);
    // The network's pool: the gateway is reserved, the sandbox's address is allocated.
    assert_eq!(
        metric(
            &mid,
            "netd_ipam_pool_allocated_addresses",
            &[("pool", &pool)]
        ),
        1.0,
        "pool {pool}"
    );
    assert!(
        metric(
            &mid,
            "netd_ipam_pool_capacity_addresses",
            &[("pool", &pool)]
        ) > 1.0
    );
    // DNS and proxy counters moved.
    assert_eq!(metric(&mid, "netd_dns_enabled", &[]), 1.0);
    assert!(metric(&mid, "netd_dns_queries_total", &[]) >= 1.0);
    assert!(metric(&mid, "netd_dns_local_answers_total", &[]) >= 1.0);
    assert_eq!(metric(&mid, "netd_proxy_enabled", &[]), 1.0);
    assert!(metric(&mid, "netd_proxy_tcp_connections_total", &[]) >= 1.0);
    assert!(
        metric(
            &mid,
            "netd_proxy_bytes_total",
            &[("direction", "to_container")]
        ) >= 4.0
    );
    assert!(
        metric(
            &mid,
            "netd_proxy_bytes_total",
            &[("direction", "from_container")]
        ) >= 4.0
    );

    d.ok(&["sandbox", "rm", &net]).unwrap();
    d.ok(&["network", "rm", &net]).unwrap();
    // A refused request is counted under its status too.
    d.fails(&["network", "rm", &net]).unwrap();
    let after = scrape(&d);
    for op in ["delete_sandbox", "delete_network"] {
        assert!(
            metric(
                &after,
                "netd_api_requests_total",
                &[("operation", op), ("status", "204")]
            ) >= 1.0,
            "{op}"
        );
    }
    assert!(
        metric(
            &after,
            "netd_api_requests_total",
            &[("operation", "delete_network"), ("status", "404")]
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &after,
            "netd_ipam_pool_allocated_addresses",
            &[("pool", &pool)]
        ),
        0.0,
        "pool released"
    );
    // The log carries one span per API operation with the object id.
    let log = strip_ansi(&d.log());
    assert!(
        log.lines()
            .any(|l| l.contains("op=delete_network") && l.contains(&format!("id={net}"))),
        "no api span with the id in the log:\n{}",
        log.lines()
            .filter(|l| l.contains("delete_network"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn json_logs_carry_the_api_span() {
    if !require_root("json_logs_carry_the_api_span") {
        return;
    }
    let d = Daemon::start_with(&["--log-format", "json"]).unwrap();
    let net = format!("jl{}", netd_tests::uniq());
    net_create(&d, &net);
    d.ok(&["network", "rm", &net]).unwrap();
    let log = d.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{log}");
    assert!(
        lines.iter().any(|l| l["span"]["name"] == "api"
            && l["span"]["op"] == "delete_network"
            && l["span"]["id"] == net.as_str()
            && l["fields"]["status"] == 204),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "no colour escapes in a log file");
}

#[test]
fn metrics_on_opt_in_tcp_address() {
    if !require_root("metrics_on_opt_in_tcp_address") {
        return;
    }
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&["--metrics-addr", &addr]).unwrap();
    d.ok(&["network", "ls"]).unwrap();
    let get = |path: &str| -> String {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    };
    let r = get("/metrics");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("text/plain; version=0.0.4"), "{r}");
    let body = r.split("\r\n\r\n").nth(1).unwrap();
    let samples = parse_expo(body);
    assert!(
        metric(
            &samples,
            "netd_api_requests_total",
            &[("operation", "list_networks")]
        ) >= 1.0
    );
    // The TCP address serves metrics only, never the API.
    let r = get("/networks");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

#[test]
fn explain_refused_network_rm_names_the_sandbox() {
    if !require_root("explain_refused_network_rm_names_the_sandbox") {
        return;
    }
    let d = Daemon::start().unwrap();
    let net = format!("xn{}", netd_tests::uniq());
    let sb = format!("web{}", netd_tests::uniq());
    net_create(&d, &net);
    d.ok(&["sandbox", "create", "--name", &sb, "--network", &net])
        .unwrap();
    let err = d.fails(&["network", "rm", &net]).unwrap();
    assert!(err.contains("active endpoints"), "{err}");

    let out = d.ok(&["explain", "network", &net]).unwrap();
    assert!(out.contains("cannot be removed"), "{out}");
    assert!(out.contains(&format!("sandbox {sb}")), "{out}");
    assert!(
        out.contains(&format!("netctl network disconnect {net} {sb}")),
        "{out}"
    );
    let v = d.json(&["explain", "network", &net]).unwrap();
    assert_eq!(v["kind"], "network");
    assert_eq!(v["removable"], false);
    assert_eq!(v["endpoints"][0]["sandbox"]["name"], sb.as_str());

    d.ok(&["sandbox", "rm", &sb]).unwrap();
    let out = d.ok(&["explain", "network", &net]).unwrap();
    assert!(out.contains("can be removed"), "{out}");
    let err = d.fails(&["explain", "network", "no-such-net"]).unwrap();
    assert!(err.contains("no such network"), "{err}");
    d.ok(&["network", "rm", &net]).unwrap();
}

#[test]
fn explain_port_names_publisher_and_host_process() {
    if !require_root("explain_port_names_publisher_and_host_process") {
        return;
    }
    let d = Daemon::start().unwrap();
    let net = format!("xp{}", netd_tests::uniq());
    let sb = format!("pub{}", netd_tests::uniq());
    net_create(&d, &net);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    d.ok(&[
        "sandbox",
        "create",
        "--name",
        &sb,
        "--network",
        &net,
        "-p",
        &publish,
    ])
    .unwrap();
    let out = d.ok(&["explain", "port", &port.to_string()]).unwrap();
    assert!(out.contains("published by netd"), "{out}");
    assert!(out.contains(&format!("sandbox {sb}")), "{out}");
    let v = d
        .json(&["explain", "port", &format!("127.0.0.1:{port}/tcp")])
        .unwrap();
    assert_eq!(v["published"][0]["sandbox"]["name"], sb.as_str());
    assert_eq!(v["published"][0]["container_port"], 80);
    // With the userland proxy, netd itself listens on the port.
    let netd_pid = d.pid().unwrap();
    assert!(
        v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["netd"] == true && s["processes"][0]["pid"] == netd_pid),
        "{v}"
    );

    // A port held by a plain host process (this test), TCP and UDP.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let hp = l.local_addr().unwrap().port();
    let me = std::process::id();
    let out = d.ok(&["explain", "port", &hp.to_string()]).unwrap();
    assert!(out.contains(&format!("pid {me} (")), "{out}");
    assert!(out.contains("not netd's"), "{out}");
    let v = d.json(&["explain", "port", &hp.to_string()]).unwrap();
    assert_eq!(v["published"].as_array().unwrap().len(), 0);
    assert_eq!(v["sockets"][0]["state"], "LISTEN");
    assert_eq!(v["sockets"][0]["processes"][0]["pid"], me);
    assert_eq!(v["sockets"][0]["netd"], false);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let up = u.local_addr().unwrap().port();
    let v = d.json(&["explain", "port", &format!("{up}/udp")]).unwrap();
    assert_eq!(v["sockets"][0]["processes"][0]["pid"], me, "{v}");
    drop(l);
    let out = d.ok(&["explain", "port", &hp.to_string()]).unwrap();
    assert!(out.contains("is free"), "{out}");
    d.ok(&["sandbox", "rm", &sb]).unwrap();
    d.ok(&["network", "rm", &net]).unwrap();
}

#[test]
fn explain_subnet_names_overlapping_network_and_route() {
    if !require_root("explain_subnet_names_overlapping_network_and_route") {
        return;
    }
    let d = Daemon::start().unwrap();
    let net = format!("xs{}", netd_tests::uniq());
    let n = net_create(&d, &net);
    let subnet = net_subnet(&n); // a /24 from the daemon's private pool
    let base = subnet.split('/').next().unwrap();
    let o: Vec<&str> = base.split('.').collect();
    let wide = format!("{}.{}.0.0/16", o[0], o[1]);
    let out = d.ok(&["explain", "subnet", &wide]).unwrap();
    assert!(out.contains(&format!("netd network {net}")), "{out}");
    let v = d.json(&["explain", "subnet", &wide]).unwrap();
    assert_eq!(v["free"], false);
    assert!(
        v["networks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == net.as_str() && x["subnet"] == subnet.as_str()),
        "{v}"
    );
    // The bridge's connected route is a host route, attributed to the network.
    assert!(
        v["host_routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dst"] == subnet.as_str() && r["netd_network"] == net.as_str()),
        "{v}"
    );
    // A /24 inside the network overlaps too; a bad CIDR is a clear error.
    let inner = format!("{}.{}.{}.128/25", o[0], o[1], o[2]);
    let v = d.json(&["explain", "subnet", &inner]).unwrap();
    assert_eq!(v["networks"][0]["name"], net.as_str(), "{v}");
    let err = d.fails(&["explain", "subnet", "10.1.2.3/40"]).unwrap();
    assert!(err.contains("invalid subnet"), "{err}");
    d.ok(&["network", "rm", &net]).unwrap();
    let v = d.json(&["explain", "subnet", &subnet]).unwrap();
    assert_eq!(v["networks"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn doctor_passes_with_netd_running_and_fails_without() {
    if !require_root("doctor_passes_with_netd_running_and_fails_without") {
        return;
    }
    let d = Daemon::start().unwrap();
    let o = d.netctl(&["doctor"]).unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "doctor failed:\n{out}");
    for name in [
        "nft binary",
        "nf_tables",
        "bridge and veth",
        "ip_forward",
        "br_netfilter",
        "plugin folder",
        "netd socket",
        "daemon",
    ] {
        assert!(out.contains(name), "{name} missing:\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("[  OK]") && l.contains("netd socket")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("[  OK]") && l.contains("daemon")),
        "{out}"
    );
    let v = d.json(&["doctor"]).unwrap();
    assert!(
        v.as_array().unwrap().iter().all(|c| c["status"] != "FAIL"),
        "{v}"
    );

    // Without a daemon: the socket and daemon checks fail, exit code 1.
    let o = run(Command::new(bin("netctl")).args(["--host", "/nonexistent/netd.sock", "doctor"]))
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("[FAIL]") && l.contains("daemon")),
        "{out}"
    );
}

#[test]
fn completion_scripts() {
    let o = run(Command::new(bin("netctl")).args(["completion", "bash"])).unwrap();
    assert!(o.status.success());
    let script = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(script.contains("_netctl()"), "not a bash completion");
    for sub in ["explain", "doctor", "completion", "network", "sandbox"] {
        assert!(script.contains(sub), "{sub} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("netctl.bash");
    std::fs::write(&f, &script).unwrap();
    let ok = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(ok.success(), "bash -n rejects the script");
    for shell in ["zsh", "fish"] {
        let o = run(Command::new(bin("netctl")).args(["completion", shell])).unwrap();
        assert!(o.status.success() && o.stdout.len() > 100, "{shell}");
    }
    // The shipped copies exist and parse; regenerate with contrib/completions/generate.sh.
    let contrib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/completions");
    let shipped = contrib.join("netctl.bash");
    let ok = Command::new("bash")
        .arg("-n")
        .arg(&shipped)
        .status()
        .unwrap();
    assert!(ok.success(), "{} does not parse", shipped.display());
    if std::fs::read_to_string(&shipped).unwrap_or_default() != script {
        eprintln!(
            "NOTE: {} is stale; run contrib/completions/generate.sh",
            shipped.display()
        );
    }
    assert!(contrib.join("_netctl").exists() && contrib.join("netctl.fish").exists());
}

#[test]
fn cni_and_docker_plugin_calls_are_counted_and_explained() {
    if !require_root("cni_and_docker_plugin_calls_are_counted_and_explained") {
        return;
    }
    let mut d = Daemon::start().unwrap();
    let ns = TestNs::new("opcni").unwrap();
    let br = format!("cb{}", netd_tests::uniq());
    d.cleanup_bridges.push(br.clone());
    // The top /24 of the daemon's private pool `base=10.X.Y.0/20,size=24`.
    let base = d
        .pool
        .trim_start_matches("base=")
        .split('/')
        .next()
        .unwrap();
    let o: Vec<u32> = base.split('.').map(|x| x.parse().unwrap()).collect();
    let subnet = format!("10.{}.{}.0/24", o[1], o[2] + 15);
    let name = format!("cniop{}", netd_tests::uniq());
    let cid = format!("ctr{}", netd_tests::uniq());
    let call = |cmd: &str| {
        serde_json::json!({
            "command": cmd, "container_id": cid, "netns": ns.path(), "ifname": "eth0",
            "path": "/opt/cni/bin",
            "config": {"cniVersion": "1.0.0", "name": name, "type": "netd-cni",
                       "bridge": br, "subnet": subnet}
        })
        .to_string()
    };
    let (st, body) = d.raw("POST", "/cni", call("ADD").as_bytes()).unwrap();
    assert_eq!(st, 200, "CNI ADD through the metrics layer: {body}");

    // explain names the CNI container that holds the network.
    let v = d.json(&["explain", "network", &name]).unwrap();
    assert_eq!(v["removable"], false, "{v}");
    let c = &v["endpoints"][0]["sandbox"]["container"];
    assert_eq!(c["runtime"], "cni", "{v}");
    assert_eq!(c["id"], cid.as_str(), "{v}");
    let out = d.ok(&["explain", "network", &name]).unwrap();
    assert!(out.contains(&format!("CNI container {cid}")), "{out}");

    let (st, body) = d.raw("POST", "/cni", call("DEL").as_bytes()).unwrap();
    assert_eq!(st, 200, "{body}");
    let (st, _) = d.raw("POST", "/cni", b"{not json").unwrap();
    assert_eq!(st, 400);

    // One Docker plugin call on the plugin socket.
    let plugin = d.dir.path().join("plugin.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&plugin).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let m = scrape(&d);
    for (op, status) in [
        ("cni_add", "200"),
        ("cni_del", "200"),
        ("cni_invalid", "400"),
    ] {
        assert_eq!(
            metric(
                &m,
                "netd_api_requests_total",
                &[("operation", op), ("status", status), ("route", "/cni")]
            ),
            1.0,
            "{op}"
        );
    }
    assert_eq!(
        metric(
            &m,
            "netd_api_requests_total",
            &[("router", "docker"), ("operation", "Plugin.Activate")]
        ),
        1.0
    );
    assert!(
        metric(
            &m,
            "netd_api_request_duration_seconds_count",
            &[("router", "api"), ("operation", "cni_add")]
        ) >= 1.0
    );
}

#[test]
fn explain_names_a_netd_container_and_its_processes() {
    if !require_root("explain_names_a_netd_container_and_its_processes") {
        return;
    }
    let d = Daemon::start().unwrap();
    let fs = d.dir.path().join("rootfs");
    let o = run(Command::new(bin("netctl"))
        .arg("rootfs")
        .arg("busybox")
        .arg(&fs))
    .unwrap();
    if !o.status.success() {
        eprintln!(
            "SKIP explain_names_a_netd_container_and_its_processes: no busybox rootfs ({})",
            String::from_utf8_lossy(&o.stderr)
        );
        return;
    }
    let net = format!("xc{}", netd_tests::uniq());
    let ctr = format!("c{}", netd_tests::uniq());
    net_create(&d, &net);
    d.ok(&[
        "run",
        "-d",
        "--name",
        &ctr,
        "--network",
        &net,
        fs.to_str().unwrap(),
        "/bin/sleep",
        "60",
    ])
    .unwrap();
    let v = d.json(&["explain", "network", &net]).unwrap();
    let sb = &v["endpoints"][0]["sandbox"];
    assert_eq!(sb["container"]["runtime"], "netd", "{v}");
    assert_eq!(sb["container"]["name"], ctr.as_str(), "{v}");
    assert_eq!(sb["container"]["state"], "running", "{v}");
    assert!(
        sb["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["command"] == "sleep"),
        "the container's process lives in the sandbox's namespace: {v}"
    );
    let out = d.ok(&["explain", "network", &net]).unwrap();
    assert!(
        out.contains(&format!("container {ctr} of netd's runtime, running")),
        "{out}"
    );
    assert!(out.contains(&format!("netctl rm -f {ctr}")), "{out}");
    d.ok(&["rm", "-f", &ctr]).unwrap();
    d.ok(&["network", "rm", &net]).unwrap();
}
