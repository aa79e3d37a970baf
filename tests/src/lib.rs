//! Shared helpers of netd's integration and end-to-end suites.
//!
//! Every test starts its own `netd` on private paths (temp data root, exec root, socket),
//! with its own nftables table and bridge names, so tests run in parallel beside each
//! other and beside a real netd. Everything a helper creates is removed in `Drop`, also
//! when the test fails.

pub mod dockerd;
pub mod stubdns;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for names (bridges are limited to 15 characters).
pub fn uniq() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{:x}{:x}", std::process::id() % 0xfffff, n)
}

/// Directory of the workspace's built binaries (`cargo build --workspace --bins` first).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("NETD_BIN_DIR") {
        return PathBuf::from(d);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.parent().unwrap().join("target"));
    target.join("debug")
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// True when running as root; tests that need the kernel print why they skip otherwise.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::Uid::effective().is_root() {
        true
    } else {
        eprintln!("SKIP {test}: needs root (network namespaces, bridges, nftables)");
        false
    }
}

/// Run a command, returning its output (never panics on non-zero exit).
pub fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output().with_context(|| format!("running {cmd:?}"))
}

/// Run a shell line; Ok(stdout) when it exits 0.
pub fn sh(line: &str) -> Result<String> {
    let o = run(Command::new("sh").arg("-c").arg(line))?;
    if !o.status.success() {
        bail!(
            "`{line}` failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A private netd for one test.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub nft_table: String,
    pub default_bridge: String,
    pub pool: String,
    pub extra: Vec<String>,
    child: Option<Child>,
    /// Bridges and tables to remove at the end even if the daemon left them.
    pub cleanup_bridges: Vec<String>,
    /// Run the daemon in this network namespace (a path) instead of the host's.
    pub netns: Option<String>,
}

impl Daemon {
    /// Start with a unique default address pool inside 10.64.0.0/10 and no default
    /// bridge (so parallel tests never fight over 172.17.0.0/16).
    pub fn start() -> Result<Daemon> {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Result<Daemon> {
        let mut d = Self::prepare(extra)?;
        d.spawn()?;
        Ok(d)
    }

    fn prepare(extra: &[&str]) -> Result<Daemon> {
        let u = uniq();
        let dir = tempfile::Builder::new().prefix("netd-test-").tempdir()?;
        let h = {
            let mut x: u32 = std::process::id().wrapping_mul(2654435761);
            x ^= COUNTER.fetch_add(1, Ordering::SeqCst).wrapping_mul(40503);
            x ^= Instant::now().elapsed().subsec_nanos();
            x ^= std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            x
        };
        let pool = format!(
            "base=10.{}.{}.0/20,size=24",
            64 + (h % 64),
            (h / 64 % 16) * 16
        );
        let d = Daemon {
            socket: dir.path().join("netd.sock"),
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("run"),
            nft_table: format!("netd_t{u}"),
            default_bridge: format!("nd{u}"),
            pool,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
            child: None,
            cleanup_bridges: vec![],
            netns: None,
        };
        Ok(d)
    }

    /// Start netd inside the network namespace at `netns` (entered with nsenter, so
    /// only the network namespace differs): its bridges, firewall table and ports live
    /// there, and the test may flush that namespace's whole ruleset.
    pub fn start_in_netns(netns: &str, extra: &[&str]) -> Result<Daemon> {
        let mut d = Self::prepare(extra)?;
        d.netns = Some(netns.to_string());
        d.spawn()?;
        Ok(d)
    }

    fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("netd.log"))?;
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).arg("--").arg(bin("netd"));
                c
            }
            None => Command::new(bin("netd")),
        };
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--nft-table")
            .arg(&self.nft_table)
            .arg("--default-bridge")
            .arg(&self.default_bridge)
            .arg("--default-address-pool")
            .arg(&self.pool)
            .arg("--docker-plugin-socket")
            .arg(self.dir.path().join("plugin.sock"))
            .arg("--log-level")
            .arg("debug")
            .args(self.extra.iter().filter(|a| *a != "--default-bridge-on"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if !self.extra.iter().any(|a| a == "--default-bridge-on") {
            cmd.arg("--no-default-bridge");
        }
        let child = cmd.spawn().context("spawn netd")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    bail!("netd exited early ({st}): {}", self.log());
                }
            }
            if self
                .netctl(&["version"])
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("netd did not come up: {}", self.log())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("netd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the daemon (kernel state stays) and wait for it.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            c.wait()?;
        }
        Ok(())
    }

    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    pub fn restart_after_kill9(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn()
    }

    /// Run `netctl --host SOCKET args...`.
    pub fn netctl(&self, args: &[&str]) -> Result<Output> {
        run(Command::new(bin("netctl"))
            .arg("--host")
            .arg(&self.socket)
            .args(args))
    }

    /// Run netctl and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let o = self.netctl(args)?;
        if !o.status.success() {
            bail!(
                "netctl {args:?} failed: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Run netctl, require failure, return stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let o = self.netctl(args)?;
        if o.status.success() {
            bail!(
                "netctl {args:?} unexpectedly succeeded: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        Ok(String::from_utf8_lossy(&o.stderr).into_owned())
    }

    /// netctl with --json, parsed.
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(&a)?;
        serde_json::from_str(&out).with_context(|| format!("parsing {out}"))
    }

    /// Raw HTTP request on the socket (for malformed-input tests): returns (status, body).
    pub fn raw(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
        raw_http(&self.socket, method, path, &[], body)
    }

    /// Remove everything this daemon's objects own: sandboxes, then networks.
    pub fn remove_all(&self) {
        if let Ok(v) = self.json(&["sandbox", "ls"]) {
            for s in v.as_array().into_iter().flatten() {
                let _ = self.netctl(&["sandbox", "rm", s["id"].as_str().unwrap_or("")]);
            }
        }
        if let Ok(v) = self.json(&["network", "ls"]) {
            for n in v.as_array().into_iter().flatten() {
                let _ = self.netctl(&["network", "rm", n["id"].as_str().unwrap_or("")]);
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.remove_all();
        }
        let _ = self.stop();
        // Whatever is left (a failed test, a killed daemon) goes too.
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.nft_table])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "bridge", &self.nft_table])
            .stderr(Stdio::null())
            .status();
        let mut bridges = self.cleanup_bridges.clone();
        bridges.push(self.default_bridge.clone());
        for b in bridges {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stderr(Stdio::null())
                .status();
        }
        unmount_netns_dir(&self.exec_root);
    }
}

/// Unmount the namespaces netd pinned under `<exec_root>/netns`, then that directory's
/// own (shared) mount: what a daemon killed mid-test leaves mounted.
pub fn unmount_netns_dir(exec_root: &Path) {
    let dir = exec_root.join("netns");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
}

/// A network namespace made by a test with `ip netns add`, removed on drop.
pub struct TestNs {
    pub name: String,
}

impl TestNs {
    pub fn new(prefix: &str) -> Result<TestNs> {
        let name = format!("{prefix}-{}", uniq());
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ))?;
        Ok(TestNs { name })
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
    pub fn exec(&self, line: &str) -> Result<String> {
        sh(&format!(
            "ip netns exec {} sh -c '{}'",
            self.name,
            line.replace('\'', "'\\''")
        ))
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Run a shell line inside the netns at `path` (a netd sandbox) with nsenter.
pub fn in_netns(path: &str, line: &str) -> Result<String> {
    sh(&format!(
        "nsenter --net={path} sh -c '{}'",
        line.replace('\'', "'\\''")
    ))
}

/// Like [`in_netns`] but returns whether it succeeded (for "cannot reach" checks).
pub fn in_netns_ok(path: &str, line: &str) -> bool {
    in_netns(path, line).is_ok()
}

/// Run `f` on a fresh thread inside the network namespace at `path`.
pub fn in_ns_thread<T: Send + 'static>(
    path: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<Result<T>> {
    let path = path.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("setns {path}"))?;
        Ok(f())
    })
}

/// Can a TCP client in `client_ns` exchange data both ways with a server on
/// `server_ip:port` in `server_ns`? Bounded to a few seconds.
pub fn tcp_talks(server_ns: &str, server_ip: &str, client_ns: &str) -> bool {
    use std::io::{Read, Write};
    let port = 20000 + (rand_u16() % 20000);
    let addr: std::net::SocketAddr = format!("{server_ip}:{port}")
        .replace("::", "[::]")
        .parse()
        .unwrap_or_else(|_| {
            if server_ip.contains(':') {
                format!("[{server_ip}]:{port}").parse().unwrap()
            } else {
                format!("{server_ip}:{port}").parse().unwrap()
            }
        });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_ns_thread(server_ns, move || -> std::io::Result<bool> {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        let _ = ready_tx.send(());
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            match l.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false)?;
                    s.set_read_timeout(Some(Duration::from_secs(3)))?;
                    let mut b = [0u8; 4];
                    s.read_exact(&mut b)?;
                    if &b != b"ping" {
                        return Ok(false);
                    }
                    s.write_all(b"pong")?;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    });
    if ready_rx.recv_timeout(Duration::from_secs(5)).is_err() {
        let _ = server.join();
        return false;
    }
    let client = in_ns_thread(client_ns, move || -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(b"ping")?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
        Ok(&b == b"pong")
    });
    let c = matches!(client.join(), Ok(Ok(Ok(true))));
    let s = matches!(server.join(), Ok(Ok(Ok(true))));
    c && s
}

pub fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    ((t ^ n.wrapping_mul(2654435761) ^ std::process::id().wrapping_mul(40503)) % 65521) as u16
}

/// Names of all links in the host namespace.
pub fn host_links() -> Vec<String> {
    sh("ip -o link show")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Number of rules and set/map elements in an nftables table (family, name).
pub fn nft_counts(family: &str, table: &str) -> (usize, usize) {
    let Ok(out) = sh(&format!("nft -j list table {family} {table}")) else {
        return (0, 0);
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let mut rules = 0;
    let mut elems = 0;
    for o in v["nftables"].as_array().into_iter().flatten() {
        if o.get("rule").is_some() {
            rules += 1;
        }
        for k in ["set", "map"] {
            if let Some(s) = o.get(k) {
                elems += s["elem"].as_array().map(|a| a.len()).unwrap_or(0);
            }
        }
    }
    (rules, elems)
}

/// Links enslaved to `bridge` (the veths of its endpoints).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    sh(&format!("ip -o link show master {bridge}"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// `10.X.Y` of a daemon's private pool (`base=10.X.Y.0/20`, see [`Daemon::pool`]):
/// subnets made from it do not collide with other tests' daemons.
pub fn pool_prefix(pool: &str) -> (u8, u8) {
    let base = pool
        .trim_start_matches("base=")
        .split('/')
        .next()
        .unwrap_or("");
    let p: Vec<u8> = base.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    (p[1], p[2])
}

/// The first address of an endpoint as the API shows it (`"10.0.0.2/24"`), without
/// the prefix length.
pub fn first_address(endpoint: &serde_json::Value) -> String {
    let a = endpoint["addresses"][0]
        .as_str()
        .unwrap_or_else(|| panic!("endpoint without addresses: {endpoint}"));
    a.split('/').next().unwrap_or(a).to_string()
}

/// Bridge name of a netd network (as `netctl network inspect` reports it).
pub fn bridge_of(d: &Daemon, network: &str) -> String {
    let v = d.json(&["network", "inspect", network]).unwrap();
    let id = v[0]["id"].as_str().unwrap().to_string();
    v[0]["options"]["com.docker.network.bridge.name"]
        .as_str()
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("br-{}", &id[..12]))
}

/// One raw HTTP/1.1 request on a unix socket (for malformed-input tests): `(status, body)`.
pub fn raw_http(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connect {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: netd\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status: u16 = resp
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}
