//! Podman 4 (Debian's package, CNI backend) using netd through `netd-cni`: a private
//! podman (own containers.conf via `CONTAINERS_CONF`, own `--root`/`--runroot`, vfs
//! storage) runs busybox containers (image imported from busybox-static) on a conflist
//! whose only plugin is netd-cni, against a private netd.
//!
//! Podman needs, on this kind of machine: runtime runc, cgroup manager cgroupfs and
//! explicit `default_ulimits` (it raises nofile/nproc to the maximum by default, which is
//! refused here).
//!
//! Run: `cargo build --workspace --bins && cargo test -p tests --test podman_e2e -- --nocapture`

#[path = "cni/support.rs"]
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use netd_tests::{bin, require_root, sh, uniq, Daemon};
use serde_json::json;

/// Makes sure podman, runc and busybox-static are installed; Err(reason) when they cannot be.
fn ensure_tools() -> std::result::Result<(), String> {
    let have = |p: &str| Path::new(p).exists();
    if have("/usr/bin/podman") && have("/usr/sbin/runc") && have("/usr/bin/busybox") {
        return Ok(());
    }
    let o = Command::new("apt-get")
        .args(["install", "-y", "podman", "runc", "busybox-static"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if have("/usr/bin/podman") && have("/usr/sbin/runc") && have("/usr/bin/busybox") {
        Ok(())
    } else {
        Err(format!(
            "apt-get install podman runc busybox-static failed: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ))
    }
}

/// A private podman; everything it made is removed on drop.
struct Podman {
    dir: tempfile::TempDir,
    /// Host directories podman creates outside its root, removed if this test made them.
    created: Vec<PathBuf>,
}

impl Podman {
    fn new(net_name: &str, conflist: &serde_json::Value, plugin_dir: &Path) -> Result<Podman> {
        let dir = tempfile::Builder::new().prefix("netd-podman-").tempdir()?;
        let d = dir.path();
        for sub in ["root", "runroot", "tmp", "net.d"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        // Podman writes its blob-info cache and libcni its result cache here, whatever
        // --root says: remember which of them this test creates.
        let created = ["/var/lib/containers", "/var/lib/cni"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        std::fs::write(
            d.join("net.d").join(format!("{net_name}.conflist")),
            serde_json::to_vec_pretty(conflist)?,
        )?;
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}", "/usr/lib/cni"]
network_config_dir = "{d}/net.d"
default_network = "{net_name}"
"#,
            d = d.display(),
            plugins = plugin_dir.display()
        );
        std::fs::write(d.join("containers.conf"), conf)?;
        Ok(Podman { dir, created })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("timeout");
        c.arg("120")
            .arg("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--storage-driver")
            .arg("vfs")
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .stdin(Stdio::null());
        c
    }

    /// Run podman; Ok(stdout) on success.
    fn ok(&self, args: &[&str]) -> Result<String> {
        let o = self.cmd(args).output()?;
        if !o.status.success() {
            bail!(
                "podman {args:?} failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// `podman import` a rootfs tarball of busybox-static with its applet links.
    fn import_busybox(&self, image: &str) -> Result<()> {
        let root = self.dir.path().join("rootfs");
        for sub in ["bin", "etc", "tmp", "proc", "sys", "dev", "www"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        std::fs::copy("/usr/bin/busybox", root.join("bin/busybox"))?;
        let applets = sh("/usr/bin/busybox --list")?;
        for a in applets.lines().filter(|a| !a.is_empty() && *a != "busybox") {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a))?;
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        std::fs::write(root.join("etc/group"), "root:x:0:\n")?;
        std::fs::write(root.join("www/index.html"), "hello from netd\n")?;
        let tar = self.dir.path().join("busybox.tar");
        sh(&format!(
            "tar -C {} -cf {} .",
            root.display(),
            tar.display()
        ))?;
        self.ok(&["import", &tar.to_string_lossy(), image])?;
        Ok(())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-a", "-f", "-t", "0"]).output();
        let _ = self.cmd(&["rmi", "-a", "-f"]).output();
        for p in &self.created {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// GET / on 127.0.0.1:port from the host.
fn http_get(port: u16) -> Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse()?,
        Duration::from_secs(3),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET until the answer comes (the container's httpd may still be starting).
fn http_get_retry(port: u16) -> String {
    let mut got = String::new();
    for _ in 0..5 {
        got = http_get(port).unwrap_or_else(|e| e.to_string());
        if got.contains("hello from netd") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    got
}

/// The podman tests share host paths (/var/lib/cni, /var/lib/containers): one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PORTMAP_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-SETMARK",
    "CNI-HOSTPORT-MASQ",
];

fn nat_chain(tool: &str, c: &str) -> bool {
    sh(&format!("{tool} -t nat -S {c} >/dev/null 2>&1")).is_ok()
}

/// Removes portmap's top-level chains (and jumps to them) on drop, unless they existed.
struct PortmapChains(Vec<(String, String)>);

impl PortmapChains {
    fn snapshot() -> Self {
        PortmapChains(
            ["iptables", "ip6tables"]
                .iter()
                .flat_map(|t| {
                    PORTMAP_CHAINS
                        .iter()
                        .map(move |c| (t.to_string(), c.to_string()))
                })
                .filter(|(t, c)| !nat_chain(t, c))
                .collect(),
        )
    }
}

impl Drop for PortmapChains {
    fn drop(&mut self) {
        for (tool, c) in &self.0 {
            if !nat_chain(tool, c) {
                continue;
            }
            for hook in ["PREROUTING", "OUTPUT", "POSTROUTING"] {
                let rules = sh(&format!("{tool} -t nat -S {hook}")).unwrap_or_default();
                for rule in rules.lines().filter(|l| l.contains(&format!("-j {c}"))) {
                    let _ = sh(&format!("{tool} -t nat {}", rule.replacen("-A", "-D", 1)));
                }
            }
            let _ = sh(&format!("{tool} -t nat -F {c} && {tool} -t nat -X {c}"));
        }
    }
}

/// Root, tools present; else prints why the test is skipped.
fn can_run(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    if let Err(why) = ensure_tools() {
        println!("SKIP {test}: {why}");
        return false;
    }
    if !support::reference_plugins() {
        println!("SKIP {test}: containernetworking-plugins missing");
        return false;
    }
    true
}

fn cni_sandboxes(d: &Daemon) -> Result<Vec<serde_json::Value>> {
    Ok(d.json(&["sandbox", "ls"])?
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["owner"] == "cni")
        .collect())
}

fn ip_format(net: &str) -> String {
    format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}")
}

#[test]
fn podman_runs_on_netd() -> Result<()> {
    if !can_run("podman_runs_on_netd") {
        return Ok(());
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = Daemon::start()?;
    let pd = support::PluginDir::new(&bin("netd-cni"))?;
    let u = uniq();
    let net = format!("netdpod{u}");
    let br = format!("pb{u}");
    d.cleanup_bridges.push(br.clone());
    // netd-cni first, then Debian's portmap for -p, as Podman's own conflists do.
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": net,
        "plugins": [
            {"type": "netd-cni", "bridge": br, "socket": d.socket},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    let _chains = PortmapChains::snapshot();
    let pm = Podman::new(&net, &conflist, pd.dir.path())?;
    let version = pm.ok(&["version", "--format", "{{.Client.Version}}"])?;
    println!("podman {version}");
    let image = "localhost/netd-busybox:e2e";
    pm.import_busybox(image).context("podman import")?;

    // 1. A server container gets its address from netd.
    let c1 = format!("web{u}");
    pm.ok(&[
        "run",
        "-d",
        "--name",
        &c1,
        "--network",
        &net,
        image,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .context("podman run (server)")?;
    let ip1 = pm.ok(&["inspect", &c1, "--format", &ip_format(&net)])?;
    let sbs = cni_sandboxes(&d)?;
    let sb = sbs
        .first()
        .context("netd has no CNI sandbox for the container")?;
    let netd_addr = sb["endpoints"][0]["addresses"][0]
        .as_str()
        .unwrap_or("")
        .to_string();
    ensure!(
        netd_addr.split('/').next() == Some(ip1.as_str()),
        "podman says {ip1}, netd says {netd_addr}"
    );
    println!(
        "podman container {c1}: {ip1} (netd endpoint {netd_addr}, netns {})",
        sb["netns_path"]
    );

    // 2. A second container reaches it by address, and by name through netd's DNS.
    let by_addr = pm.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        image,
        "wget",
        "-qO-",
        &format!("http://{ip1}/"),
    ])?;
    ensure!(
        by_addr.contains("hello from netd"),
        "by address: {by_addr:?}"
    );
    let resolv = pm.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        image,
        "cat",
        "/etc/resolv.conf",
    ])?;
    ensure!(
        resolv.contains("nameserver 127.0.0.11"),
        "resolv.conf: {resolv}"
    );
    let by_name = pm.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        image,
        "wget",
        "-qO-",
        &format!("http://{c1}/"),
    ])?;
    ensure!(by_name.contains("hello from netd"), "by name: {by_name:?}");
    println!("second container -> {ip1}:80 and -> {c1}:80 (name via 127.0.0.11) ok");

    // 3. -p 127.0.0.1:P:80 (portmap after netd-cni).
    let port = free_port();
    let c3 = format!("pub{u}");
    pm.ok(&[
        "run",
        "-d",
        "--name",
        &c3,
        "--network",
        &net,
        "-p",
        &format!("127.0.0.1:{port}:80"),
        image,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])
    .context("podman run -p")?;
    let got = http_get_retry(port);
    ensure!(
        got.contains("hello from netd"),
        "127.0.0.1:{port} -> {c3}:80 failed: {got}"
    );
    println!("-p 127.0.0.1:{port}:80 -> {c3} ok (netd-cni + portmap)");

    // 4. Removal goes through CNI DEL.
    pm.ok(&["rm", "-f", "-t", "0", &c1, &c3])?;
    let left = cni_sandboxes(&d)?;
    ensure!(
        left.is_empty(),
        "CNI sandboxes left after podman rm: {left:?}"
    );
    Ok(())
}

/// Rules in netd's table (must not grow with published ports).
fn rule_count(d: &Daemon) -> usize {
    sh(&format!("nft -a list table inet {}", d.nft_table))
        .unwrap_or_default()
        .lines()
        .map(str::trim_start)
        .filter(|l| l.contains("# handle"))
        .filter(|l| {
            !["table ", "chain ", "map ", "set "]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .count()
}

/// Names of the processes listening on TCP port `port` (from `ss -p`).
fn tcp_listeners(port: u16) -> String {
    sh(&format!("ss -Hltnp 'sport = :{port}'")).unwrap_or_default()
}

/// `-p` published by netd itself (netd-cni with the portMappings capability). Podman's
/// conmon keeps a listening socket on every published host port (CNI's contract: the
/// runtime reserves the port, the plugin only NATs), so netd binds nothing and runs no
/// userland proxy for CNI endpoints: it DNATs, 127.0.0.1 included, in both proxy modes.
fn publish_through_netd(test: &str, daemon_args: &[&str]) -> Result<()> {
    if !can_run(test) {
        return Ok(());
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = Daemon::start_with(daemon_args)?;
    let pd = support::PluginDir::new(&bin("netd-cni"))?;
    let u = uniq();
    let net = format!("netdpub{u}");
    let br = format!("pq{u}");
    d.cleanup_bridges.push(br.clone());
    let conflist = json!({
        "cniVersion": "1.0.0",
        "name": net,
        "plugins": [{"type": "netd-cni", "bridge": br, "socket": d.socket,
                     "capabilities": {"portMappings": true}}]
    });
    let pm = Podman::new(&net, &conflist, pd.dir.path())?;
    let image = "localhost/netd-busybox:e2e";
    pm.import_busybox(image).context("podman import")?;
    let httpd = |name: &str, publish: &[String]| -> Result<String> {
        let mut args: Vec<&str> = vec!["run", "-d", "--name", name, "--network", &net];
        for p in publish {
            args.extend(["-p", p.as_str()]);
        }
        args.extend([image, "httpd", "-f", "-p", "80", "-h", "/www"]);
        pm.ok(&args)
    };
    let (p_lo, p_any) = (free_port(), free_port());
    let c = format!("pub{u}");
    httpd(&c, &[format!("127.0.0.1:{p_lo}:80"), format!("{p_any}:80")]).context("podman run -p")?;
    let got_lo = http_get_retry(p_lo);
    let got_any = http_get_retry(p_any);
    let listeners = tcp_listeners(p_lo);
    let rules1 = rule_count(&d);
    let nft = sh(&format!("nft list chain inet {} output", d.nft_table)).unwrap_or_default();
    let localnet = sh(&format!("sysctl -n net.ipv4.conf.{br}.route_localnet")).unwrap_or_default();
    let ports_json = d.json(&["sandbox", "ls"])?.to_string();
    // A second container with two more ports: rules stay, map elements grow.
    let c2 = format!("pub2{u}");
    let (q1, q2) = (free_port(), free_port());
    let second = httpd(&c2, &[format!("{q1}:80"), format!("127.0.0.1:{q2}:80")]);
    let got_q2 = http_get_retry(q2);
    let rules2 = rule_count(&d);
    let _ = pm.ok(&["rm", "-f", "-t", "0", &c, &c2]);
    let after_rm = http_get(p_lo).map(|_| ()).map_err(|e| e.to_string());
    let lo_map = sh(&format!("nft list map inet {} ports4_lo", d.nft_table)).unwrap_or_default();
    let diag = format!(
        "\nroute_localnet on {br}: {localnet}netd output chain:\n{nft}\nlisteners on {p_lo}: {listeners}"
    );
    ensure!(
        got_lo.contains("hello from netd"),
        "127.0.0.1:{p_lo} -> {c}:80 through netd failed: {got_lo}{diag}"
    );
    ensure!(
        got_any.contains("hello from netd"),
        "127.0.0.1:{p_any} (-p {p_any}:80) -> {c}:80 failed: {got_any}{diag}"
    );
    ensure!(
        listeners.contains("conmon") && !listeners.contains("\"netd\""),
        "podman's conmon, not netd, holds the host port: {listeners}"
    );
    ensure!(
        ports_json.contains(&format!("\"host_port\":{p_lo}")),
        "netd records the binding: {ports_json}"
    );
    second.context("second podman run -p")?;
    ensure!(
        got_q2.contains("hello from netd"),
        "127.0.0.1:{q2} -> {c2}:80 failed: {got_q2}{diag}"
    );
    ensure!(
        rules1 > 0 && rules1 == rules2,
        "rule count changed with more ports: {rules1} -> {rules2}"
    );
    ensure!(
        after_rm.is_err(),
        "127.0.0.1:{p_lo} still answers after podman rm"
    );
    ensure!(
        !lo_map.contains(&format!(" {p_lo} ")) && !lo_map.contains(&format!(" {q2} ")),
        "loopback elements left after podman rm: {lo_map}"
    );
    println!(
        "{test}: -p 127.0.0.1:{p_lo}:80 and -p {p_any}:80 published by netd (NAT, conmon holds the \
         ports), second container on {q1},{q2}; {rules1} rules before and after"
    );
    Ok(())
}

#[test]
fn podman_publish_through_netd() -> Result<()> {
    publish_through_netd("podman_publish_through_netd", &[])
}

#[test]
fn podman_publish_through_netd_without_proxy() -> Result<()> {
    publish_through_netd(
        "podman_publish_through_netd_without_proxy",
        &["--userland-proxy=false"],
    )
}
