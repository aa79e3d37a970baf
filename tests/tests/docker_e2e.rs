//! netd as Docker's remote network driver and IPAM plugin, end to end, with a private
//! Debian `docker.io` 20.10 dockerd (tests/src/dockerd.rs) and a private netd per test.
//!
//! Plugin discovery: each test registers a unique plugin name `netdt<uniq>` with a spec
//! file `/etc/docker/plugins/<name>.spec` pointing at its netd's plugin socket (removed on
//! drop), so parallel tests and a real netd on `/run/docker/plugins/netd.sock` never meet.
//!
//! - `docker_network_end_to_end`: network create, two containers ping each other by address
//!   and by name (Docker's DNS), connect/disconnect of a running container, `-p
//!   127.0.0.1:P:80` (and an ephemeral `-p 127.0.0.1::80`) reaching busybox httpd, a subnet
//!   picked by netd's IPAM, an `--internal` network, netctl's view (owner, sandbox), netd
//!   restarts (SIGTERM and SIGKILL) with containers running, then `docker network rm`
//!   removing the bridge, the nft elements and the pool.
//! - `docker_failures_leave_nothing`: refused options, overlapping subnets and a taken host
//!   port fail with a clear message and leave nothing in Docker or netd.
//! - `docker_ipv6_network`: `--ipv6` with a v4 and a v6 subnet from netd's IPAM; ping6
//!   between containers and an IPv6 default route through netd's bridge.
//!
//! Raw protocol tests without dockerd (malformed requests) are in `docker_plugin.rs`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use netd_tests::dockerd::{DockerdOpts, PrivateDockerd};
use netd_tests::{host_links, nft_counts, require_root, uniq, Daemon};
use serde_json::Value;

const IMAGE: &str = "busybox:netd";
const SPEC_DIR: &str = "/etc/docker/plugins";

/// A distinct /24 in 10.30.0.0/16 per call (per process and test).
fn subnet(k: u32) -> String {
    let x = (std::process::id().wrapping_mul(7) + k * 61) % 250 + 1;
    format!("10.30.{x}.0/24")
}

/// `/etc/docker/plugins/<name>.spec`, removed on drop (with the directory if we made it
/// and it is empty).
struct SpecFile {
    path: PathBuf,
    made_dir: bool,
}

impl SpecFile {
    fn new(name: &str, socket: &Path) -> Result<SpecFile> {
        let made_dir = !Path::new(SPEC_DIR).exists();
        std::fs::create_dir_all(SPEC_DIR)?;
        let path = Path::new(SPEC_DIR).join(format!("{name}.spec"));
        std::fs::write(&path, format!("unix://{}\n", socket.display()))?;
        Ok(SpecFile { path, made_dir })
    }
}

impl Drop for SpecFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if self.made_dir {
            let _ = std::fs::remove_dir(SPEC_DIR);
        }
    }
}

/// One test's world. Fields drop in order: dockerd first (its containers and networks go
/// while netd still answers), then the spec file, then netd.
struct Env {
    dk: PrivateDockerd,
    _spec: SpecFile,
    d: Daemon,
    plugin: String,
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- dockerd log (tail) ----\n{}", self.dk.log_tail(40));
            let log = self.d.log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "---- netd log (tail) ----\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

impl Env {
    fn start(test: &str) -> Option<Env> {
        if !require_root(test) {
            return None;
        }
        let d = Daemon::start().expect("start netd");
        let opts = DockerdOpts {
            // No docker0: Docker's containers here only use netd's networks.
            bridge: Some("none".into()),
            ..Default::default()
        };
        let t = Instant::now();
        let dk = match PrivateDockerd::start(opts).expect("start private dockerd") {
            Some(dk) => dk,
            None => {
                eprintln!("SKIP {test}: no dockerd (Debian docker.io could not be installed)");
                return None;
            }
        };
        eprintln!("{test}: private dockerd up in {:?}", t.elapsed());
        dk.import_busybox(IMAGE).expect("import busybox");
        let plugin = format!("netdt{}", uniq());
        let spec = SpecFile::new(&plugin, &d.dir.path().join("plugin.sock")).expect("spec file");
        Some(Env {
            dk,
            _spec: spec,
            d,
            plugin,
        })
    }

    fn docker(&self, args: &[&str]) -> String {
        self.dk.docker_ok(args).unwrap().trim().to_string()
    }

    /// `docker network create -d P --ipam-driver P --subnet S [extra] name` → Docker's id.
    fn network(&mut self, name: &str, subnet: &str, extra: &[&str]) -> String {
        let p = self.plugin.clone();
        let mut a = vec![
            "network",
            "create",
            "-d",
            &p,
            "--ipam-driver",
            &p,
            "--subnet",
            subnet,
        ];
        a.extend_from_slice(extra);
        a.push(name);
        let id = self.docker(&a);
        self.d.cleanup_bridges.push(format!("br-{}", &id[..12]));
        id
    }

    fn run(&self, name: &str, net: &str, extra: &[&str], cmd: &[&str]) -> String {
        let mut a = vec!["run", "-d", "--name", name, "--network", net];
        a.extend_from_slice(extra);
        a.push(IMAGE);
        a.extend_from_slice(cmd);
        self.docker(&a)
    }

    fn ip(&self, container: &str, net: &str) -> String {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
        self.docker(&["inspect", "-f", &f, container])
    }

    /// `ping` from a container: true once one reply came back within `tries` attempts.
    fn pings(&self, from: &str, target: &str, tries: u32) -> bool {
        (0..tries).any(|i| {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            self.dk
                .docker(&["exec", from, "ping", "-c", "1", "-W", "2", target])
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
    }

    /// netd's networks (JSON), without the predefined `host` and `none`.
    fn netd_networks(&self) -> Vec<Value> {
        let v = self.d.json(&["network", "ls"]).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|n| n["name"] != "host" && n["name"] != "none")
            .cloned()
            .collect()
    }

    fn netd_network(&self, id: &str) -> Option<Value> {
        self.netd_networks().into_iter().find(|n| n["id"] == id)
    }

    fn dump(&self) -> String {
        format!(
            "docker ps: {}\nnetd networks: {}\nnetd sandboxes: {}",
            self.dk.docker_ok(&["ps", "-a"]).unwrap_or_default(),
            self.d.ok(&["network", "ls"]).unwrap_or_default(),
            self.d.ok(&["sandbox", "ls"]).unwrap_or_default()
        )
    }
}

/// GET / on 127.0.0.1:port; the body when it answers.
fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn http_get_eventually(port: u16, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if http_get(port).is_some_and(|b| b.contains(want)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Bridges named in this netd's log (Docker network ids it heard of) that still exist.
fn bridges_left(d: &Daemon) -> Vec<String> {
    let log = d.log();
    let links = host_links();
    let mut left: Vec<String> = log
        .match_indices("br-")
        .map(|(i, _)| log[i..].chars().take(15).collect::<String>())
        .filter(|b| b[3..].chars().all(|c| c.is_ascii_hexdigit()) && links.contains(b))
        .collect();
    left.sort();
    left.dedup();
    left
}

#[test]
fn docker_network_end_to_end() {
    let Some(mut e) = Env::start("docker_network_end_to_end") else {
        return;
    };
    let (s1, s2) = (subnet(1), subnet(2));
    let base = nft_counts("inet", &e.d.nft_table);

    // ---- create: one netd network owned by Docker, with its bridge ----
    let t = Instant::now();
    let id = e.network("n", &s1, &[]);
    eprintln!("docker network create: {:?}", t.elapsed());
    let bridge = format!("br-{}", &id[..12]);
    assert!(host_links().contains(&bridge), "bridge {bridge} missing");
    let n = e.netd_network(&id).expect("netd knows Docker's network");
    assert_eq!(n["owner"], "docker");
    assert_eq!(n["name"], format!("docker-{}", &id[..12]));
    assert_eq!(n["subnets"][0]["subnet"], s1.as_str());
    let ls = e.d.ok(&["network", "ls"]).unwrap();
    let row = ls
        .lines()
        .find(|l| l.contains(&id[..12]))
        .expect("network ls row");
    assert!(row.trim_end().ends_with("docker"), "owner column: {row}");
    // The gateway Docker reserved through netd's IPAM (Docker's inspect only shows a
    // --gateway the user gave).
    let gw = n["subnets"][0]["gateway"]
        .as_str()
        .expect("gateway")
        .to_string();
    assert_eq!(gw, s1.replace("0/24", "1"));

    // ---- two containers talk by address and by name ----
    let t = Instant::now();
    e.run("ca", "n", &[], &["sleep", "600"]);
    eprintln!("docker run (first container): {:?}", t.elapsed());
    let t = Instant::now();
    e.run("cb", "n", &[], &["sleep", "600"]);
    eprintln!("docker run (second container): {:?}", t.elapsed());
    let (ipa, ipb) = (e.ip("ca", "n"), e.ip("cb", "n"));
    assert!(
        ipa.starts_with(s1.trim_end_matches("0/24")),
        "{ipa} not in {s1}"
    );
    assert_ne!(ipa, ipb);
    let t = Instant::now();
    assert!(e.pings("ca", &ipb, 5), "a -> b by address\n{}", e.dump());
    eprintln!("first ping a -> b: {:?}", t.elapsed());
    assert!(e.pings("cb", &ipa, 5), "b -> a by address");
    assert!(e.pings("ca", "cb", 5), "a -> b by name (Docker's DNS)");
    assert!(e.pings("cb", "ca", 5), "b -> a by name (Docker's DNS)");
    // The container's default route goes through netd's bridge address.
    let routes = e.docker(&["exec", "ca", "ip", "route"]);
    assert!(
        routes.contains(&format!("default via {gw}")),
        "routes in a: {routes}"
    );

    // ---- netctl shows Docker's sandbox with the container's endpoint ----
    let key = e.docker(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "ca"]);
    let sbs = e.d.json(&["sandbox", "ls"]).unwrap();
    let sb = sbs
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["netns_path"] == key.as_str())
        .unwrap_or_else(|| panic!("no netd sandbox for {key}: {sbs}"))
        .clone();
    assert_eq!(sb["owner"], "docker");
    let name = sb["name"].as_str().unwrap();
    let insp = e.d.json(&["sandbox", "inspect", name]).unwrap();
    let insp = if insp.is_array() {
        insp[0].clone()
    } else {
        insp
    };
    assert_eq!(insp["owner"], "docker");
    assert_eq!(insp["endpoints"][0]["network_id"], id.as_str());
    assert_eq!(insp["endpoints"][0]["addresses"][0], format!("{ipa}/24"));
    let text = e.d.ok(&["sandbox", "inspect", name]).unwrap();
    assert!(text.contains(&ipa), "sandbox inspect text: {text}");
    let host_ifs: Vec<String> =
        e.d.json(&["endpoint", "ls"])
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["host_ifname"].as_str().map(str::to_string))
            .collect();
    assert_eq!(host_ifs.len(), 2, "two endpoints: {host_ifs:?}");

    // ---- connect and disconnect a running container ----
    let id2 = e.network("n2", &s2, &[]);
    e.run("cc", "n2", &[], &["sleep", "600"]);
    assert!(!e.pings("cc", &ipa, 1), "c (n2 only) must not reach a on n");
    let t = Instant::now();
    e.docker(&["network", "connect", "n", "cc"]);
    eprintln!("docker network connect: {:?}", t.elapsed());
    let ipc = e.ip("cc", "n");
    assert!(e.pings("cc", &ipa, 5), "c -> a after connect");
    assert!(e.pings("ca", "cc", 5), "a -> c by name after connect");
    let addrs = e.docker(&["exec", "cc", "ip", "-4", "-o", "addr"]);
    assert!(addrs.contains(&ipc), "c has its n address: {addrs}");
    let t = Instant::now();
    e.docker(&["network", "disconnect", "n", "cc"]);
    eprintln!("docker network disconnect: {:?}", t.elapsed());
    let addrs = e.docker(&["exec", "cc", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains(&ipc), "n address gone from c: {addrs}");
    assert!(
        !e.pings("cc", &ipa, 1),
        "c must not reach a after disconnect"
    );
    assert!(e.pings("ca", &ipb, 2), "a -> b still fine");
    let eps_n = e.d.json(&["network", "inspect", &id]).unwrap()[0]["endpoints"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(eps_n, 2, "only a and b left on n in netd");

    // ---- published port through the userland proxy ----
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let t = Instant::now();
    e.run(
        "web",
        "n",
        &["-p", &publish],
        &["sh", "-c", "mkdir -p /www && echo hello-from-netd > /www/index.html && exec httpd -f -p 80 -h /www"],
    );
    assert!(
        http_get_eventually(port, "hello-from-netd"),
        "GET 127.0.0.1:{port}\n{}",
        e.dump()
    );
    eprintln!("docker run -p .. and first answer: {:?}", t.elapsed());
    let eps = e.d.json(&["endpoint", "ls"]).unwrap();
    assert!(
        eps.as_array()
            .unwrap()
            .iter()
            .any(|x| x["ports"][0]["host_port"] == port),
        "netd shows the published port: {eps}"
    );

    // An ephemeral host port (`-p 127.0.0.1::80`): netd picks it; Docker cannot show ports
    // of remote drivers, netd's endpoint list does.
    e.run(
        "web2",
        "n",
        &["-p", "127.0.0.1::80"],
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo ephemeral-ok > /www/index.html && exec httpd -f -p 80 -h /www",
        ],
    );
    let ip_web2 = e.ip("web2", "n");
    let eps = e.d.json(&["endpoint", "ls"]).unwrap();
    let eph = eps
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["addresses"][0] == format!("{ip_web2}/24"))
        .and_then(|x| x["ports"][0]["host_port"].as_u64())
        .unwrap_or_else(|| panic!("no ephemeral port for {ip_web2}: {eps}")) as u16;
    assert_ne!(eph, 0);
    assert!(
        http_get_eventually(eph, "ephemeral-ok"),
        "GET 127.0.0.1:{eph}"
    );
    e.docker(&["rm", "-f", "web2"]);
    assert!(port_free(eph), "ephemeral port {eph} released");

    // ---- netd restarts while Docker has containers on n ----
    let t = Instant::now();
    e.d.restart().unwrap();
    eprintln!("netd restart (SIGTERM): {:?}", t.elapsed());
    assert!(e.pings("ca", &ipb, 5), "a -> b after netd restart");
    assert!(e.pings("cb", "ca", 5), "b -> a by name after netd restart");
    assert!(
        http_get_eventually(port, "hello-from-netd"),
        "published port after restart"
    );
    e.d.restart_after_kill9().unwrap();
    assert!(e.pings("ca", &ipb, 5), "a -> b after netd SIGKILL + start");
    assert!(
        http_get_eventually(port, "hello-from-netd"),
        "published port after SIGKILL"
    );
    // Docker can still drive netd afterwards.
    e.run("cd", "n", &[], &["sleep", "600"]);
    assert!(
        e.pings("cd", "ca", 5),
        "new container after restart reaches a by name"
    );

    // ---- no --subnet: netd's IPAM picks one from its default pools ----
    let p = e.plugin.clone();
    let auto = e.docker(&["network", "create", "-d", &p, "--ipam-driver", &p, "auto"]);
    e.d.cleanup_bridges.push(format!("br-{}", &auto[..12]));
    let an = e.netd_network(&auto).expect("auto network in netd");
    let auto_sub = an["subnets"][0]["subnet"].as_str().unwrap().to_string();
    // e.d.pool is `base=A.B.C.D/20,size=24`.
    let pool_base: std::net::Ipv4Addr = e.d.pool["base=".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let got: std::net::Ipv4Addr = auto_sub.split('/').next().unwrap().parse().unwrap();
    assert_eq!(
        u32::from(got) & !0xfff,
        u32::from(pool_base),
        "{auto_sub} not from netd's default pool {}",
        e.d.pool
    );
    // ---- --internal: no default route, still reachable inside the network ----
    let int_sub = subnet(8);
    let int_id = e.network("int", &int_sub, &["--internal"]);
    e.run("ci1", "int", &[], &["sleep", "600"]);
    e.run("ci2", "int", &[], &["sleep", "600"]);
    let routes = e.docker(&["exec", "ci1", "ip", "route"]);
    assert!(
        !routes.contains("default"),
        "internal network gave a default route: {routes}"
    );
    assert!(
        e.pings("ci1", "ci2", 5),
        "ci1 -> ci2 by name on the internal network"
    );
    let nets = e.docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "ci1"]);
    assert!(
        !nets.contains("docker_gwbridge"),
        "Docker added docker_gwbridge: {nets}"
    );
    e.docker(&["rm", "-f", "ci1", "ci2"]);
    e.docker(&["network", "rm", "auto", "int"]);
    assert!(e.netd_network(&auto).is_none() && e.netd_network(&int_id).is_none());

    // ---- teardown: containers, then networks; nothing of them stays ----
    let t = Instant::now();
    e.docker(&["rm", "-f", "web"]);
    assert!(
        port_free(port),
        "host port {port} released with the container"
    );
    e.docker(&["rm", "-f", "ca", "cb", "cc", "cd"]);
    eprintln!("docker rm -f (5 containers): {:?}", t.elapsed());
    assert!(e
        .d
        .json(&["endpoint", "ls"])
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    let docker_sbs: Vec<Value> =
        e.d.json(&["sandbox", "ls"])
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["owner"] == "docker")
            .cloned()
            .collect();
    assert!(
        docker_sbs.is_empty(),
        "docker sandboxes left: {docker_sbs:?}"
    );
    let t = Instant::now();
    e.docker(&["network", "rm", "n", "n2"]);
    eprintln!("docker network rm (2 networks): {:?}", t.elapsed());
    assert!(e.netd_network(&id).is_none() && e.netd_network(&id2).is_none());
    let links = host_links();
    assert!(!links.contains(&bridge), "bridge {bridge} left");
    assert!(!links.contains(&format!("br-{}", &id2[..12])));
    for h in &host_ifs {
        assert!(!links.contains(h), "veth {h} left");
    }
    assert_eq!(
        nft_counts("inet", &e.d.nft_table),
        base,
        "nft rules/elements back to start"
    );
    // The pools are free again: netd itself can take the subnet, then Docker again.
    e.d.ok(&["network", "create", "--subnet", &s1, "again"])
        .unwrap();
    e.d.ok(&["network", "rm", "again"]).unwrap();
    let id3 = e.network("n3", &s1, &[]);
    e.docker(&["network", "rm", "n3"]);
    assert!(e.netd_network(&id3).is_none());
}

#[test]
fn docker_failures_leave_nothing() {
    let Some(mut e) = Env::start("docker_failures_leave_nothing") else {
        return;
    };
    let p = e.plugin.clone();
    let (s1, s2) = (subnet(3), subnet(4));
    let base = nft_counts("inet", &e.d.nft_table);

    // An option the bridge driver does not know: refused by name, nothing left.
    let o =
        e.dk.docker(&[
            "network",
            "create",
            "-d",
            &p,
            "--ipam-driver",
            &p,
            "--subnet",
            &s1,
            "-o",
            "com.docker.network.bridge.bogus=1",
            "bad",
        ])
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("docker said: {}", err.trim());
    assert!(!o.status.success(), "bogus option accepted");
    assert!(
        err.contains("com.docker.network.bridge.bogus"),
        "message: {err}"
    );
    assert!(!e
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .contains("bad"));
    assert!(
        e.netd_networks().is_empty(),
        "netd: {:?}",
        e.netd_networks()
    );
    assert_eq!(bridges_left(&e.d), Vec::<String>::new(), "bridges left");
    assert_eq!(nft_counts("inet", &e.d.nft_table), base);

    // A subnet netd already uses: refused by netd's IPAM.
    e.d.ok(&["network", "create", "--subnet", &s2, "mine"])
        .unwrap();
    let o =
        e.dk.docker(&[
            "network",
            "create",
            "-d",
            &p,
            "--ipam-driver",
            &p,
            "--subnet",
            &s2,
            "x",
        ])
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("docker said: {}", err.trim());
    assert!(
        !o.status.success() && err.contains("overlaps"),
        "message: {err}"
    );
    // Same subnet with Docker's default IPAM: netd's driver refuses it.
    let o =
        e.dk.docker(&["network", "create", "-d", &p, "--subnet", &s2, "y"])
            .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("docker said: {}", err.trim());
    assert!(
        !o.status.success() && err.contains("overlaps"),
        "message: {err}"
    );
    let names = e.docker(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        !names.contains('x') && !names.contains('y'),
        "docker kept: {names}"
    );
    assert_eq!(e.netd_networks().len(), 1);
    e.d.ok(&["network", "rm", "mine"]).unwrap();

    // The failed attempt released its pool: the subnet works now.
    let id = e.network("n", &s1, &[]);
    assert!(e.netd_network(&id).is_some());

    // A taken host port: the container does not start and leaves no endpoint behind.
    let hold = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hold.local_addr().unwrap().port();
    let publish = format!("127.0.0.1:{port}:80");
    let o =
        e.dk.docker(&[
            "run",
            "-d",
            "--name",
            "cw",
            "--network",
            "n",
            "-p",
            &publish,
            IMAGE,
            "sleep",
            "60",
        ])
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    eprintln!("docker said: {}", err.trim());
    assert!(!o.status.success(), "run with a taken port succeeded");
    assert!(
        err.contains(&port.to_string()),
        "message names the port: {err}"
    );
    e.docker(&["rm", "-f", "cw"]);
    assert!(e
        .d
        .json(&["endpoint", "ls"])
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    drop(hold);
    // And the address it had is free again: two containers still fit and talk.
    e.run("ca", "n", &[], &["sleep", "600"]);
    e.run("cb", "n", &[], &["sleep", "600"]);
    assert!(e.pings("ca", "cb", 5), "a -> b after the failed run");
    e.docker(&["rm", "-f", "ca", "cb"]);
    e.docker(&["network", "rm", "n"]);
    assert!(e.netd_networks().is_empty());
    assert_eq!(bridges_left(&e.d), Vec::<String>::new(), "bridges left");
    assert_eq!(nft_counts("inet", &e.d.nft_table), base);
}

#[test]
fn docker_ipv6_network() {
    let Some(mut e) = Env::start("docker_ipv6_network") else {
        return;
    };
    let s4 = subnet(9);
    let x = (std::process::id() % 0xffff) as u16;
    let s6 = format!("fd30:{x:x}::/64");
    let id = e.network("v6", &s4, &["--ipv6", "--subnet", &s6]);
    let n = e.netd_network(&id).expect("netd network");
    assert_eq!(n["ipv6"], true);
    assert_eq!(n["subnets"].as_array().unwrap().len(), 2, "{n}");
    e.run("c6a", "v6", &[], &["sleep", "600"]);
    e.run("c6b", "v6", &[], &["sleep", "600"]);
    let f = "{{(index .NetworkSettings.Networks \"v6\").GlobalIPv6Address}}";
    let ip6b = e.docker(&["inspect", "-f", f, "c6b"]);
    assert!(
        ip6b.starts_with(&format!("fd30:{x:x}:")),
        "c6b IPv6 {ip6b:?}"
    );
    let ok6 = (0..5).any(|_| {
        std::thread::sleep(Duration::from_millis(300));
        e.dk.docker(&["exec", "c6a", "ping", "-6", "-c", "1", "-W", "2", &ip6b])
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    assert!(ok6, "c6a -> c6b over IPv6\n{}", e.dump());
    assert!(e.pings("c6a", "c6b", 5), "c6a -> c6b by name");
    let r6 = e.docker(&["exec", "c6a", "ip", "-6", "route"]);
    assert!(r6.contains("default via fd30:"), "IPv6 default route: {r6}");
    e.docker(&["rm", "-f", "c6a", "c6b"]);
    e.docker(&["network", "rm", "v6"]);
    assert!(e.netd_network(&id).is_none());
    assert_eq!(bridges_left(&e.d), Vec::<String>::new());
}
