//! A private Debian `docker.io` 20.10 daemon for end-to-end suites.
//!
//! [`PrivateDockerd::start`] runs `/usr/sbin/dockerd` on paths under its own temp dir
//! (data root, exec root, socket, pidfile, config file) so it never touches a system
//! Docker's state, and talks to it with the Debian client `/usr/bin/docker` (not
//! `/usr/local/bin/docker`). `Drop` removes its containers and networks, stops it by pid
//! with SIGTERM, waits for it and for the containerd it spawned, unmounts what is left
//! under its root and removes the host state it created (see "What dockerd leaves").
//!
//! # Flags used on this machine (Debian 12, dockerd 20.10.24+dfsg1, containerd 1.6.20)
//!
//! ```text
//! dockerd --config-file D/daemon.json --data-root D/data --exec-root D/exec
//!         -H unix://D/docker.sock --pidfile D/docker.pid
//!         --iptables=true --ip-forward=true [--bridge=none|NAME] [--userland-proxy-path P]
//! ```
//!
//! * No `--containerd`: dockerd starts its own containerd, and with `--exec-root` that
//!   containerd's config, socket and state live in `D/exec/containerd` and its root in
//!   `D/data/containerd/daemon` (checked in the generated `containerd.toml`), so nothing
//!   goes to `/var/run/docker/containerd` or `/var/lib/containerd`.
//! * `--config-file` points at a private `daemon.json` (`{}` unless the caller gives
//!   one) so a host `/etc/docker/daemon.json` is never read.
//! * Resource limits: no extra flag was needed here. dockerd, its containerd and
//!   `docker run` of a busybox container all work with the machine's limits (containers
//!   inherit `nofile` 20000). Do not pass `--default-ulimit` (raising limits is refused
//!   on this machine); if a later Docker needs it, `"default-ulimits": {}` in the
//!   private `daemon.json` keeps Docker from setting any.
//! * Not private in 20.10 (hard-coded): plugin discovery (`/run/docker/plugins`,
//!   `/etc/docker/plugins`), the `docker0` name, and the iptables chains. So only one
//!   private dockerd runs at a time on the host: `start` takes an exclusive `flock` on
//!   [`LOCK_PATH`] (across test processes and threads) and holds it until `Drop`.
//!
//! # What dockerd leaves (and what `Drop` does about it)
//!
//! With `--iptables` dockerd creates the iptables-nft tables `ip filter` (chains FORWARD,
//! DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2) and `ip nat` (DOCKER, PREROUTING,
//! OUTPUT, POSTROUTING with a masquerade for docker0's subnet), and does NOT remove them
//! when it stops (observed: after SIGTERM the chains and rules stay, and so does
//! `docker0`). They belong to Docker; we never flush them. `Drop` removes a table only
//! when it did not exist before this dockerd started AND everything left in it is
//! Docker's: chains it had once started, and rules that were there then or look like
//! the ones dockerd programs (no comment, interface matches on this dockerd's bridges
//! only, jumps to its chains only), or netd's `DOCKER-USER` accept rules (comment
//! `netd...:<bridge>`; every netd on the host, other tests' too, adds them only because
//! this chain exists and skips it when it is gone). Anything else (another tool's chain
//! or rule) keeps the table in place, reported on stderr, and then a FORWARD DROP the
//! harness set is put back to ACCEPT. `docker0` is
//! deleted only if it did not exist before `start`.
//!
//! # FORWARD policy
//!
//! dockerd sets the `ip filter` FORWARD policy to DROP only when it turns
//! `net.ipv4.ip_forward` on itself (libnetwork `setupIPForwarding`); on a host where
//! forwarding is already on (as here, where netd tests run) it stays ACCEPT. With
//! [`DockerdOpts::forward_drop`] (default on) the harness sets DROP after start, as
//! dockerd does on a fresh host, and puts ACCEPT back if the table outlives `Drop`.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{run, sh};

pub const DOCKERD: &str = "/usr/sbin/dockerd";
/// The Debian client (`docker.io`), matching the daemon's API version.
pub const DOCKER: &str = "/usr/bin/docker";
/// Serializes private dockerds on this host (they share docker0 and the iptables chains).
pub const LOCK_PATH: &str = "/run/netd-tests-private-dockerd.lock";

/// The iptables-nft tables dockerd may create: (family, table).
const DOCKER_TABLES: [(&str, &str); 4] = [
    ("ip", "filter"),
    ("ip", "nat"),
    ("ip6", "filter"),
    ("ip6", "nat"),
];

/// How to start the private dockerd.
#[derive(Debug, Clone)]
pub struct DockerdOpts {
    /// `--bridge`: `None` keeps Docker's default `docker0` (172.17.0.0/16);
    /// `Some("none")` gives no default bridge; `Some(name)` uses an existing bridge.
    pub bridge: Option<String>,
    /// `--iptables` (default true).
    pub iptables: bool,
    /// `--ip-forward` (default true).
    pub ip_forward: bool,
    /// `--userland-proxy-path` (default: Docker's own `docker-proxy`).
    pub userland_proxy_path: Option<PathBuf>,
    /// Set the `ip filter` FORWARD policy to DROP after start if dockerd left it ACCEPT
    /// (see the module docs). Only with `iptables`. Default true.
    pub forward_drop: bool,
    /// Content of the private `daemon.json` (default `{}`).
    pub daemon_json: serde_json::Value,
    /// More dockerd arguments, appended last.
    pub extra_args: Vec<String>,
    /// How long to wait for `docker version` to answer.
    pub start_timeout: Duration,
    /// How long to wait for [`LOCK_PATH`] held by another private dockerd.
    pub lock_timeout: Duration,
}

impl Default for DockerdOpts {
    fn default() -> Self {
        DockerdOpts {
            bridge: None,
            iptables: true,
            ip_forward: true,
            userland_proxy_path: None,
            forward_drop: true,
            daemon_json: serde_json::json!({}),
            extra_args: vec![],
            start_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(900),
        }
    }
}

/// A running private dockerd; everything it made goes away on `Drop`.
pub struct PrivateDockerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub log_path: PathBuf,
    pub opts: DockerdOpts,
    tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    docker0_existed: bool,
    /// Tables absent before start, with the chains and rule handles they had once
    /// dockerd was up: the only ones `Drop` may delete.
    new_tables: Vec<TableSnapshot>,
    /// Linux bridges of this dockerd's bridge networks (docker0, br-<id>), seen at stop.
    bridges: BTreeSet<String>,
    forced_drop: bool,
    _lock: std::fs::File,
}

#[derive(Debug, Clone)]
struct TableSnapshot {
    family: &'static str,
    name: &'static str,
    chains: BTreeSet<String>,
    handles: BTreeSet<u64>,
}

impl PrivateDockerd {
    /// Start a private dockerd, or `Ok(None)` (after printing `SKIP`) when
    /// `/usr/sbin/dockerd` is not installed and cannot be installed.
    pub fn start(opts: DockerdOpts) -> Result<Option<PrivateDockerd>> {
        if !ensure_installed(DOCKERD, "docker.io") || !Path::new(DOCKER).exists() {
            eprintln!("SKIP private dockerd: {DOCKERD} not installed (Debian package docker.io)");
            return Ok(None);
        }
        let lock = take_lock(opts.lock_timeout)?;
        let tmp = tempfile::Builder::new()
            .prefix("netd-dockerd-")
            .tempdir_in("/tmp")?;
        let dir = tmp.path().to_path_buf();
        let docker0_existed = Path::new("/sys/class/net/docker0").exists();
        let absent: Vec<(&'static str, &'static str)> = DOCKER_TABLES
            .into_iter()
            .filter(|(f, t)| list_table(f, t).is_none())
            .collect();
        let mut d = PrivateDockerd {
            socket: dir.join("docker.sock"),
            data_root: dir.join("data"),
            exec_root: dir.join("exec"),
            log_path: dir.join("dockerd.log"),
            dir,
            opts,
            tmp: Some(tmp),
            child: None,
            docker0_existed,
            new_tables: vec![],
            bridges: BTreeSet::new(),
            forced_drop: false,
            _lock: lock,
        };
        d.spawn()?;
        if d.opts.iptables && d.opts.forward_drop && forward_policy().as_deref() == Some("accept") {
            sh("iptables -P FORWARD DROP")?;
            d.forced_drop = true;
        }
        d.new_tables = absent
            .into_iter()
            .filter_map(|(f, t)| snapshot(f, t))
            .collect();
        Ok(Some(d))
    }

    fn spawn(&mut self) -> Result<()> {
        let cfg = self.dir.join("daemon.json");
        std::fs::write(&cfg, serde_json::to_vec_pretty(&self.opts.daemon_json)?)?;
        let log = std::fs::File::create(&self.log_path)?;
        let mut cmd = Command::new(DOCKERD);
        cmd.arg("--config-file")
            .arg(&cfg)
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--pidfile")
            .arg(self.dir.join("docker.pid"))
            .arg(format!("--iptables={}", self.opts.iptables))
            .arg(format!("--ip-forward={}", self.opts.ip_forward));
        if let Some(b) = &self.opts.bridge {
            cmd.arg(format!("--bridge={b}"));
        }
        if let Some(p) = &self.opts.userland_proxy_path {
            cmd.arg("--userland-proxy-path").arg(p);
        }
        cmd.args(&self.opts.extra_args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(cmd.spawn().context("spawn dockerd")?);
        let deadline = Instant::now() + self.opts.start_timeout;
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!("dockerd exited early ({st}); log:\n{}", self.log_tail(60));
            }
            if self
                .docker(&["version"])
                .map(|o| o.status.success())
                .unwrap_or(false)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = self.log_tail(60);
                let _ = self.stop();
                bail!(
                    "dockerd did not answer `docker version` within {:?}; log:\n{log}",
                    self.opts.start_timeout
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `-H` value for the client.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// True when the harness (not dockerd) set the FORWARD policy to DROP.
    pub fn forced_forward_drop(&self) -> bool {
        self.forced_drop
    }

    /// dockerd's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The last `lines` lines of dockerd's (and its containerd's) log.
    pub fn log_tail(&self, lines: usize) -> String {
        let s = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let v: Vec<&str> = s.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    /// Run `/usr/bin/docker -H unix://SOCK args...` (never fails on non-zero exit).
    pub fn docker(&self, args: &[&str]) -> Result<Output> {
        run(Command::new(DOCKER).arg("-H").arg(self.host()).args(args))
    }

    /// Run docker and require success; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> Result<String> {
        let o = self.docker(args)?;
        if !o.status.success() {
            bail!(
                "docker {args:?} failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// Import the host's static busybox as image `tag` (e.g. `busybox:netd`): a rootfs
    /// with `/bin/busybox` and a symlink per applet, tarred into `docker import`. Nothing
    /// is pulled from the internet.
    pub fn import_busybox(&self, tag: &str) -> Result<()> {
        if !ensure_busybox_static() {
            bail!("/bin/busybox (Debian package busybox-static) is not installed");
        }
        let root = self
            .dir
            .join(format!("rootfs-{}", tag.replace(['/', ':'], "_")));
        for d in [
            "bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root",
        ] {
            std::fs::create_dir_all(root.join(d))?;
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))?;
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        std::fs::write(root.join("etc/group"), "root:x:0:\n")?;
        // `--list-full` names each applet with its directory (bin/ash, usr/sbin/...).
        let list = sh("/bin/busybox --list-full")?;
        for rel in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let p = root.join(rel);
            if rel == "bin/busybox" || p.symlink_metadata().is_ok() {
                continue;
            }
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::os::unix::fs::symlink("/bin/busybox", &p)
                .with_context(|| format!("symlink {}", p.display()))?;
        }
        let mut tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["--numeric-owner", "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .context("spawn tar")?;
        let out = Command::new(DOCKER)
            .arg("-H")
            .arg(self.host())
            .args(["import", "-", tag])
            .stdin(tar.stdout.take().context("tar stdout")?)
            .output()
            .context("docker import")?;
        let tst = tar.wait()?;
        let _ = std::fs::remove_dir_all(&root);
        if !tst.success() || !out.status.success() {
            bail!(
                "importing busybox as {tag} failed (tar {tst}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Remove all containers and user-defined networks, SIGTERM dockerd by pid, wait
    /// for it and the processes it started (containerd, shims), then unmount anything
    /// left under the private root. Docker's iptables chains and `docker0` stay (as they
    /// do when a real dockerd stops) until `Drop`. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            self.bridges.extend(self.bridge_names());
            self.remove_objects();
            let pid = child.id() as i32;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            if !wait_child(&mut child, Duration::from_secs(30))? {
                eprintln!("private dockerd {pid} ignored SIGTERM for 30s; SIGKILL");
                let _ = child.kill();
                child.wait()?;
            }
        }
        self.reap_descendants();
        self.unmount_all();
        Ok(())
    }

    /// Linux bridge names of this dockerd's `bridge`-driver networks.
    fn bridge_names(&self) -> Vec<String> {
        let Ok(ids) = self.docker_ok(&[
            "network",
            "ls",
            "--no-trunc",
            "-q",
            "--filter",
            "driver=bridge",
        ]) else {
            return vec![];
        };
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return vec![];
        }
        let fmt = r#"{{.Id}} {{index .Options "com.docker.network.bridge.name"}}"#;
        let mut a = vec!["network", "inspect", "-f", fmt];
        a.extend(ids);
        let out = self.docker_ok(&a).unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let id = w.next()?;
                match w.next() {
                    Some(n) if n != "<no" => Some(n.to_string()),
                    _ => Some(format!("br-{}", id.get(..12)?)),
                }
            })
            .collect()
    }

    fn remove_objects(&self) {
        if let Ok(ids) = self.docker_ok(&["ps", "-aq"]) {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut a = vec!["rm", "-f"];
                a.extend(ids);
                let _ = self.docker(&a);
            }
        }
        if let Ok(ids) = self.docker_ok(&["network", "ls", "-q", "--filter", "type=custom"]) {
            for id in ids.split_whitespace() {
                let _ = self.docker(&["network", "rm", id]);
            }
        }
    }

    /// Processes whose command line names our private dir (containerd, shims, proxies).
    fn our_processes(&self) -> Vec<i32> {
        let me = std::process::id() as i32;
        let needle = self.dir.to_string_lossy().into_owned();
        let mut out = vec![];
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd)
                .replace('\0', " ")
                .contains(&needle)
            {
                out.push(pid);
            }
        }
        out
    }

    /// Wait for containerd (and any shim) to follow dockerd out: 5 s to exit on their
    /// own, then SIGTERM, 5 s more, then SIGKILL, each by pid.
    fn reap_descendants(&self) {
        use nix::sys::signal::{kill, Signal};
        for sig in [None, Some(Signal::SIGTERM), Some(Signal::SIGKILL)] {
            let left = self.our_processes();
            if left.is_empty() {
                return;
            }
            if let Some(sig) = sig {
                for p in &left {
                    eprintln!("private dockerd: {sig} to leftover pid {p}");
                    let _ = kill(nix::unistd::Pid::from_raw(*p), sig);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !self.our_processes().is_empty() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Mount points under our dir, deepest first.
    fn mounts_under(&self) -> Vec<PathBuf> {
        let prefix = self.dir.to_string_lossy().into_owned();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut v: Vec<PathBuf> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mount)
            .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
            .map(PathBuf::from)
            .collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        v.dedup();
        v
    }

    fn unmount_all(&self) {
        for _ in 0..3 {
            let m = self.mounts_under();
            if m.is_empty() {
                return;
            }
            for p in m {
                let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }

    /// Delete docker0 and the iptables tables if our dockerd created them and nothing
    /// else lives in them (module docs), else put FORWARD back to ACCEPT if we set DROP.
    fn clean_host_state(&mut self) {
        if !self.docker0_existed && Path::new("/sys/class/net/docker0").exists() {
            let _ = sh("ip link del docker0");
        }
        let mut filter_kept = !self
            .new_tables
            .iter()
            .any(|t| (t.family, t.name) == ("ip", "filter"));
        let mut bridges = self.bridges.clone();
        match &self.opts.bridge {
            None => {
                bridges.insert("docker0".into());
            }
            Some(b) if b != "none" => {
                bridges.insert(b.clone());
            }
            Some(_) => {}
        }
        for t in std::mem::take(&mut self.new_tables) {
            match only_dockers(&t, &bridges) {
                Ok(true) => {
                    if let Err(e) = sh(&format!("nft delete table {} {}", t.family, t.name)) {
                        eprintln!(
                            "private dockerd: could not delete table {} {}: {e}",
                            t.family, t.name
                        );
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    if (t.family, t.name) == ("ip", "filter") {
                        filter_kept = true;
                    }
                    eprintln!(
                        "private dockerd: leaving table {} {}: {e}",
                        t.family, t.name
                    );
                }
            }
        }
        if self.forced_drop && filter_kept && forward_policy().as_deref() == Some("drop") {
            let _ = sh("iptables -P FORWARD ACCEPT");
        }
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("private dockerd: stop: {e:#}");
        }
        self.clean_host_state();
        let left = self.mounts_under();
        if let Some(t) = self.tmp.take() {
            if left.is_empty() {
                drop(t);
            } else {
                // Never recurse into something still mounted: keep the dir.
                let p = t.keep();
                eprintln!(
                    "private dockerd: mounts left {left:?}; keeping {}",
                    p.display()
                );
            }
        }
    }
}

fn wait_child(c: &mut Child, t: Duration) -> Result<bool> {
    let deadline = Instant::now() + t;
    while Instant::now() < deadline {
        if c.try_wait()?.is_some() {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(false)
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// `apt-get install -y pkg` when `path` is missing; true when `path` exists afterwards.
fn ensure_installed(path: &str, pkg: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    eprintln!("{path} missing: apt-get install -y {pkg}");
    let _ = Command::new("apt-get")
        .args(["install", "-y", pkg])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    Path::new(path).exists()
}

/// The static busybox (Debian `busybox-static`), which runs in an empty rootfs.
fn ensure_busybox_static() -> bool {
    let installed = sh("dpkg-query -W -f='${Status}' busybox-static")
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false);
    if !installed {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "busybox-static"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status();
    }
    Path::new("/bin/busybox").exists()
}

fn take_lock(timeout: Duration) -> Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .with_context(|| format!("open {LOCK_PATH}"))?;
    let deadline = Instant::now() + timeout;
    let mut said = false;
    loop {
        // SAFETY: flock on a descriptor we own; released when the file is closed.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            let mut w = &f;
            let _ = w.write_all(format!("{}\n", std::process::id()).as_bytes());
            return Ok(f);
        }
        if Instant::now() > deadline {
            bail!("another private dockerd holds {LOCK_PATH} for more than {timeout:?}");
        }
        if !said {
            eprintln!("waiting for another private dockerd to finish ({LOCK_PATH})");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `nft -j list table FAMILY NAME`, or None when the table does not exist.
fn list_table(family: &str, name: &str) -> Option<serde_json::Value> {
    let o = Command::new("nft")
        .args(["-j", "list", "table", family, name])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    serde_json::from_slice(&o.stdout).ok()
}

fn chains_and_handles(v: &serde_json::Value) -> (BTreeSet<String>, BTreeSet<u64>) {
    let mut chains = BTreeSet::new();
    let mut handles = BTreeSet::new();
    for o in v["nftables"].as_array().into_iter().flatten() {
        if let Some(n) = o["chain"]["name"].as_str() {
            chains.insert(n.to_string());
        }
        if let Some(h) = o["rule"]["handle"].as_u64() {
            handles.insert(h);
        }
    }
    (chains, handles)
}

fn snapshot(family: &'static str, name: &'static str) -> Option<TableSnapshot> {
    let v = list_table(family, name)?;
    let (chains, handles) = chains_and_handles(&v);
    Some(TableSnapshot {
        family,
        name,
        chains,
        handles,
    })
}

/// Ok(true) when the table holds nothing but what our dockerd made: only chains it
/// had once started, and rules that were there then or look like Docker's own
/// ([`docker_like`]; Docker re-inserts its isolation and FORWARD rules as networks come
/// and go, so handles alone are not enough). Ok(false) when the table is gone; Err
/// (with what is foreign) otherwise.
fn only_dockers(t: &TableSnapshot, bridges: &BTreeSet<String>) -> Result<bool> {
    let Some(v) = list_table(t.family, t.name) else {
        return Ok(false);
    };
    let mut foreign = vec![];
    for o in v["nftables"].as_array().into_iter().flatten() {
        if let Some(n) = o["chain"]["name"].as_str() {
            if !t.chains.contains(n) {
                foreign.push(format!("chain {n}"));
            }
        }
        let r = &o["rule"];
        if let Some(h) = r["handle"].as_u64() {
            if !t.handles.contains(&h)
                && !docker_like(r, bridges, &t.chains)
                && !netd_coexistence_rule(r)
            {
                foreign.push(format!("rule {} handle {h} {}", r["chain"], r["comment"]));
            }
        }
    }
    if foreign.is_empty() {
        return Ok(true);
    }
    bail!("not made by our dockerd: {foreign:?}")
}

/// A netd DOCKER-USER accept rule (comment `<netd nft table>:<bridge>`, see
/// drivers/src/bridge/docker.rs). Any netd on the host (other tests' too) adds these
/// only because our dockerd's DOCKER-USER chain exists, and netd skips a missing
/// chain or table, so they go with the table rather than keep it alive forever.
fn netd_coexistence_rule(rule: &serde_json::Value) -> bool {
    rule["chain"] == "DOCKER-USER"
        && rule["comment"]
            .as_str()
            .and_then(|c| c.split_once(':'))
            .is_some_and(|(p, br)| p.starts_with("netd") && !br.is_empty())
}

/// A rule as dockerd programs it: no comment (netd's and most tools' rules carry
/// one), every interface match names one of this dockerd's bridges, and every
/// jump/goto targets one of the chains our dockerd created.
fn docker_like(
    rule: &serde_json::Value,
    bridges: &BTreeSet<String>,
    chains: &BTreeSet<String>,
) -> bool {
    if rule.get("comment").is_some() {
        return false;
    }
    for st in rule["expr"].as_array().into_iter().flatten() {
        let m = &st["match"];
        if matches!(
            m["left"]["meta"]["key"].as_str(),
            Some("iifname" | "oifname")
        ) {
            match m["right"].as_str() {
                Some(n) if bridges.contains(n) => {}
                _ => return false,
            }
        }
        for k in ["jump", "goto"] {
            if let Some(target) = st[k]["target"].as_str() {
                if !chains.contains(target) {
                    return false;
                }
            }
        }
    }
    true
}

/// The policy (`accept`/`drop`) of `ip filter` FORWARD, if that chain exists.
pub fn forward_policy() -> Option<String> {
    let o = Command::new("nft")
        .args(["-j", "list", "chain", "ip", "filter", "FORWARD"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["nftables"]
        .as_array()?
        .iter()
        .find_map(|x| x["chain"]["policy"].as_str().map(str::to_string))
}

/// Whether `ip filter` has a `DOCKER-USER` chain.
pub fn docker_user_exists() -> bool {
    Command::new("nft")
        .args(["list", "chain", "ip", "filter", "DOCKER-USER"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Rules in `ip filter DOCKER-USER` whose comment starts with `prefix`:
/// (handle, comment), in chain order.
pub fn docker_user_rules(prefix: &str) -> Vec<(u64, String)> {
    let Ok(out) = sh("nft -j list chain ip filter DOCKER-USER 2>/dev/null") else {
        return vec![];
    };
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let c = o["rule"]["comment"].as_str()?;
            let h = o["rule"]["handle"].as_u64()?;
            c.starts_with(prefix).then(|| (h, c.to_string()))
        })
        .collect()
}
