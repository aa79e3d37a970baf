//! Per-endpoint cost as a network fills up: the time to create a sandbox and join it to
//! a bridge network that already has N = 10, 100, 500 endpoints, and the number of
//! firewall rules at each N, for netd and, in the same run, for the reference CNI
//! `bridge` + `host-local` plugins (Debian's containernetworking-plugins) attaching
//! namespaces to a bridge of their own. Prints a table and writes the rows of the bench
//! convention (bench/README.md) to `bench/results/endpoints.json` (or `--json PATH`).
//! Timings are printed, never asserted.
//!
//! How each side is measured (sequentially, one attachment at a time, medians over
//! `ENDPOINTS_SAMPLES` (default 20) attachments at each N; the measured attachments are
//! kept, so sample k at level N has N + k endpoints beside it):
//! - netd: a private `netd` (its own socket, data and exec roots, nft table, no default
//!   bridge, no Docker plugin socket, log level warn; the exec root on a tmpfs of the
//!   bench's own, as /run is on a standard Debian host, the store on disk); one
//!   user-defined bridge network; one
//!   REST call `POST /sandboxes {"networks":[{"target": NET}]}` over netd's unix socket per
//!   attachment: it creates the namespace, the endpoint, joins, routes, hosts/resolv.conf
//!   and arms the embedded DNS. Rules: the rules of netd's nftables table.
//! - reference: `ip netns add` (timed apart, not counted), then one CNI ADD of a conflist
//!   of `bridge` (isGateway, ipMasq) with `host-local` IPAM, as a runtime runs it (plugin
//!   process, CNI_* environment, config on stdin). Rules: the iptables rules (all tables)
//!   that carry this network's name in their comment, so the count is this bench's own
//!   even when other things change iptables meanwhile.
//!
//! Everything is removed at the end, also on failure: netd's sandboxes and network through
//! its API (then its table, bridge and mounts if anything is left), the reference's
//! attachments through the plugin's own DEL (which removes its iptables rules), its
//! namespaces, its bridge and its IPAM directory. Nothing is flushed.
//!
//! Run (root): `bench/endpoints.sh`, or
//! `cargo build --release --workspace --bins && NETD_BIN_DIR=target/release cargo run --release -p tests --example endpoints_bench`
//! Options: `-- 10,100,500` levels; `--json PATH`; `--only netd|cni`;
//! `ENDPOINTS_SAMPLES`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netd_tests::{bin, nft_counts, require_root, sh, uniq, unmount_netns_dir};
use serde_json::{json, Value};

const CNI_DIR: &str = "/usr/lib/cni";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn p90(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s.get((s.len() * 9 / 10).min(s.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// What one side measured at one level.
#[derive(Default, Clone)]
struct Level {
    n: usize,
    samples: Vec<Duration>,
    /// Firewall rules this side owns, after the level's samples.
    rules: usize,
    /// netd: set/map elements of its table; reference: time of `ip netns add` (median ms).
    extra: f64,
}

// ------------------------------------------------------------------------------------------
// netd
// ------------------------------------------------------------------------------------------

struct Netd {
    dir: tempfile::TempDir,
    socket: PathBuf,
    table: String,
    child: Option<Child>,
    bridges: Vec<String>,
    sandboxes: Vec<String>,
    network: Option<String>,
}

impl Netd {
    fn start() -> Result<Netd> {
        let u = uniq();
        let dir = tempfile::Builder::new().prefix("netd-endp-").tempdir()?;
        let socket = dir.path().join("netd.sock");
        let table = format!("netd_e{u}");
        let log = std::fs::File::create(dir.path().join("netd.log"))?;
        // Runtime files (namespace mounts, hosts/resolv.conf) on a tmpfs, as /run is on
        // any standard Debian host; the state store stays on disk.
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run)?;
        nix::mount::mount(
            Some("tmpfs"),
            &run,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("mode=0755,size=256m"),
        )
        .context("tmpfs for the exec root")?;
        let child = Command::new(bin("netd"))
            .arg("--socket")
            .arg(&socket)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("run"))
            .arg("--nft-table")
            .arg(&table)
            .arg("--no-default-bridge")
            .arg("--default-bridge")
            .arg(format!("ne{u}"))
            .arg("--default-address-pool")
            .arg("base=10.233.0.0/20,size=24")
            .arg("--docker-plugin-socket")
            .arg("")
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = nix::mount::umount2(&run, nix::mount::MntFlags::MNT_DETACH);
                return Err(e).context("spawn netd");
            }
        };
        let mut d = Netd {
            dir,
            socket,
            table,
            child: Some(child),
            bridges: vec![format!("ne{u}")],
            sandboxes: vec![],
            network: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = d.http("GET", "/version", b"") {
                return Ok(d);
            }
            if let Some(st) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("netd exited early ({st}): {}", d.log());
            }
            if Instant::now() > deadline {
                bail!("netd did not come up: {}", d.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("netd.log")).unwrap_or_default()
    }

    /// One HTTP/1.1 request on netd's unix socket (what netctl does, minus its process).
    fn http(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String)> {
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: netd\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        s.write_all(&req)?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        let status = resp
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Ok((status, body))
    }

    fn create_network(&mut self, name: &str, subnet: &str, gateway: &str) -> Result<()> {
        let body = json!({"name": name, "driver": "bridge",
            "ipam": [{"subnet": subnet, "gateway": gateway}]});
        let (st, out) = self.http("POST", "/networks", body.to_string().as_bytes())?;
        if !(200..300).contains(&st) {
            bail!("network create: {st} {out}");
        }
        let v: Value = serde_json::from_str(&out).context("network create answer")?;
        let id = v["id"].as_str().context("network id")?.to_string();
        let br = v["options"]["com.docker.network.bridge.name"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("br-{}", &id[..12]));
        self.bridges.push(br);
        self.network = Some(id);
        Ok(())
    }

    /// Create a sandbox on the network; returns how long the API call took.
    fn attach(&mut self, name: &str) -> Result<Duration> {
        let net = self.network.clone().context("no network")?;
        let body = json!({"name": name, "networks": [{"target": net}]}).to_string();
        let t = Instant::now();
        let (st, out) = self.http("POST", "/sandboxes", body.as_bytes())?;
        let el = t.elapsed();
        if !(200..300).contains(&st) {
            bail!("sandbox create: {st} {out}");
        }
        let v: Value = serde_json::from_str(&out).context("sandbox create answer")?;
        self.sandboxes
            .push(v["id"].as_str().context("sandbox id")?.to_string());
        Ok(el)
    }

    fn rules(&self) -> (usize, usize) {
        nft_counts("inet", &self.table)
    }

    fn cleanup(&mut self) {
        for id in std::mem::take(&mut self.sandboxes).iter().rev() {
            let _ = self.http("DELETE", &format!("/sandboxes/{id}"), b"");
        }
        if let Some(n) = self.network.take() {
            let _ = self.http("DELETE", &format!("/networks/{n}"), b"");
        }
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Whatever is left (a failed run): table, bridges, namespace mounts.
        for fam in ["inet", "bridge"] {
            let _ = Command::new("nft")
                .args(["delete", "table", fam, &self.table])
                .stderr(Stdio::null())
                .status();
        }
        for b in &self.bridges {
            let _ = Command::new("ip")
                .args(["link", "del", b])
                .stderr(Stdio::null())
                .status();
        }
        unmount_netns_dir(&self.dir.path().join("run"));
        let _ = nix::mount::umount2(
            &self.dir.path().join("run"),
            nix::mount::MntFlags::MNT_DETACH,
        );
    }
}

impl Drop for Netd {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn run_netd(levels: &[usize], samples: usize) -> Result<Vec<Level>> {
    let mut d = Netd::start()?;
    d.create_network(&format!("endp{}", uniq()), "10.231.0.0/16", "10.231.0.1")?;
    // Warm-up (first attachment: page cache, lazily opened sockets), not counted.
    d.attach("warmup")?;
    let mut out = Vec::new();
    let mut i = 0usize;
    for &n in levels {
        let t = Instant::now();
        let before = d.sandboxes.len();
        while d.sandboxes.len() < n {
            d.attach(&format!("fill{i}"))?;
            i += 1;
        }
        let filled = d.sandboxes.len() - before;
        let mut lv = Level {
            n,
            ..Default::default()
        };
        for k in 0..samples {
            lv.samples.push(d.attach(&format!("n{n}s{k}"))?);
        }
        let (rules, elems) = d.rules();
        lv.rules = rules;
        lv.extra = elems as f64;
        eprintln!(
            "netd  N={n:4}: fill {filled} in {:.1} s; create+join median {:.2} ms (p90 {:.2}); nft rules {rules}, set elements {elems}",
            t.elapsed().as_secs_f64() - lv.samples.iter().map(|s| s.as_secs_f64()).sum::<f64>(),
            median(&lv.samples),
            p90(&lv.samples)
        );
        out.push(lv);
    }
    let t = Instant::now();
    let count = d.sandboxes.len();
    d.cleanup();
    eprintln!(
        "netd: removed {count} sandboxes and the network in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// reference: CNI bridge + host-local
// ------------------------------------------------------------------------------------------

struct CniRef {
    dir: tempfile::TempDir,
    name: String,
    bridge: String,
    /// (container id, netns name) of every attachment made.
    attached: Vec<(String, String)>,
    /// Namespaces made but not (yet) attached.
    spare: Vec<String>,
}

impl CniRef {
    fn new() -> Result<CniRef> {
        for p in ["bridge", "host-local"] {
            if !Path::new(CNI_DIR).join(p).exists() {
                bail!("{CNI_DIR}/{p} is missing: apt-get install -y containernetworking-plugins");
            }
        }
        let u = uniq();
        Ok(CniRef {
            dir: tempfile::Builder::new()
                .prefix("netd-endp-cni-")
                .tempdir()?,
            name: format!("endpref{u}"),
            bridge: format!("cb{u}"),
            attached: vec![],
            spare: vec![],
        })
    }

    fn conf(&self) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "name": self.name,
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "ipam": {
                "type": "host-local",
                "subnet": "10.232.0.0/16",
                "dataDir": self.dir.path().join("ipam"),
            }
        })
    }

    fn exec(&self, command: &str, id: &str, netns: &str) -> Result<String> {
        let mut child = Command::new(Path::new(CNI_DIR).join("bridge"))
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", format!("/run/netns/{netns}"))
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn the bridge plugin")?;
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(self.conf().to_string().as_bytes())?;
        let o = child.wait_with_output()?;
        if !o.status.success() {
            bail!(
                "CNI {command} {id}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// `ip netns add` (timed), then ADD (timed): (netns time, ADD time).
    fn attach(&mut self, k: usize) -> Result<(Duration, Duration)> {
        let ns = format!("{}-{k}", self.name);
        let t = Instant::now();
        sh(&format!("ip netns add {ns}"))?;
        let t_ns = t.elapsed();
        self.spare.push(ns.clone());
        let id = format!("{}{k:08}", self.name);
        let t = Instant::now();
        let r = self.exec("ADD", &id, &ns);
        let t_add = t.elapsed();
        self.spare.retain(|s| *s != ns);
        // Even a failed ADD may have left things behind: DEL it at the end too.
        self.attached.push((id, ns));
        r?;
        Ok((t_ns, t_add))
    }

    /// iptables rules (all tables) that carry this network's name.
    fn rules(&self) -> usize {
        let tag = format!("name: \\\"{}\\\"", self.name);
        sh("iptables-save")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("-A ") && l.contains(&tag))
            .count()
    }

    fn cleanup(&mut self) {
        for (id, ns) in std::mem::take(&mut self.attached).iter().rev() {
            if let Err(e) = self.exec("DEL", id, ns) {
                eprintln!("reference cleanup: {e:#}");
            }
            let _ = sh(&format!("ip netns del {ns}"));
        }
        for ns in std::mem::take(&mut self.spare) {
            let _ = sh(&format!("ip netns del {ns}"));
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for CniRef {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn run_reference(levels: &[usize], samples: usize) -> Result<Vec<Level>> {
    let mut r = CniRef::new()?;
    let base = r.rules();
    let mut k = 0usize;
    // Warm-up: the first ADD creates the bridge.
    r.attach(k)?;
    k += 1;
    let mut out = Vec::new();
    for &n in levels {
        let t = Instant::now();
        while r.attached.len() < n {
            r.attach(k)?;
            k += 1;
        }
        let fill = t.elapsed();
        let mut lv = Level {
            n,
            ..Default::default()
        };
        let mut ns_times = Vec::new();
        for _ in 0..samples {
            let (tn, ta) = r.attach(k)?;
            k += 1;
            ns_times.push(tn);
            lv.samples.push(ta);
        }
        lv.rules = r.rules() - base;
        lv.extra = median(&ns_times);
        eprintln!(
            "cni   N={n:4}: fill in {:.1} s; ADD median {:.2} ms (p90 {:.2}), ip netns add {:.2} ms; iptables rules {}",
            fill.as_secs_f64(),
            median(&lv.samples),
            p90(&lv.samples),
            lv.extra,
            lv.rules
        );
        out.push(lv);
    }
    let t = Instant::now();
    let count = r.attached.len();
    r.cleanup();
    eprintln!(
        "cni: DEL of {count} attachments, namespaces and bridge in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// report
// ------------------------------------------------------------------------------------------

const REF_NAME: &str = "CNI bridge + host-local (containernetworking-plugins 1.1.1, Debian 12)";

fn rows(netd: &[Level], cni: &[Level], samples: usize) -> Vec<Value> {
    let find = |v: &[Level], n: usize| v.iter().find(|l| l.n == n).cloned();
    let mut out = Vec::new();
    let levels: Vec<usize> = netd
        .iter()
        .chain(cni)
        .map(|l| l.n)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for &n in &levels {
        let a = find(netd, n);
        let b = find(cni, n);
        out.push(json!({
            "metric": format!("sandbox create + join at {n} endpoints"),
            "unit": "ms",
            "netd": a.as_ref().map(|l| median(&l.samples)),
            "reference": b.as_ref().map(|l| median(&l.samples)),
            "reference_name": REF_NAME,
            "better": "lower",
            "goal": "informational",
            "note": format!(
                "median of {samples}; netd: one REST call (netns + endpoint + join + DNS), p90 {}; reference: CNI ADD only, p90 {}, its `ip netns add` ({} ms median) not counted",
                a.as_ref().map_or("-".into(), |l| format!("{:.2} ms", p90(&l.samples))),
                b.as_ref().map_or("-".into(), |l| format!("{:.2} ms", p90(&l.samples))),
                b.as_ref().map_or("-".into(), |l| format!("{:.2}", l.extra)),
            ),
        }));
        out.push(json!({
            "metric": format!("firewall rules at {n} endpoints"),
            "unit": "rules",
            "netd": a.as_ref().map(|l| l.rules),
            "reference": b.as_ref().map(|l| l.rules),
            "reference_name": REF_NAME,
            "better": "lower",
            "goal": "constant in N (netd)",
            "met": netd.iter().all(|l| Some(l.rules) == netd.first().map(|f| f.rules)),
            "note": "netd: rules in its nftables table; reference: iptables rules naming its network",
        }));
    }
    let (lo, hi) = (levels.first().copied(), levels.last().copied());
    if let (Some(lo), Some(hi)) = (lo, hi) {
        if lo != hi {
            let growth = |v: &[Level]| -> Option<f64> {
                Some(median(&find(v, hi)?.samples) / median(&find(v, lo)?.samples))
            };
            let g = growth(netd);
            out.push(json!({
                "metric": format!("per-endpoint cost growth {lo} -> {hi} endpoints"),
                "unit": "x",
                "netd": g,
                "reference": growth(cni),
                "reference_name": REF_NAME,
                "better": "lower",
                "goal": "at most 1.2x from 10 to 500 (netd)",
                "met": g.is_some_and(|g| g <= 1.2),
                "note": format!("median at {hi} / median at {lo}"),
            }));
        }
    }
    out
}

fn print_table(netd: &[Level], cni: &[Level]) {
    println!(
        "{:>6} | {:>10} {:>10} | {:>12} {:>12} | {:>7} | {:>10} {:>10}",
        "N", "netd ms", "netd p90", "ref ADD ms", "ref p90", "ratio", "netd rules", "ref rules"
    );
    for a in netd {
        let b = cni.iter().find(|l| l.n == a.n);
        let (bm, bp, br) = b.map_or((f64::NAN, f64::NAN, String::from("-")), |b| {
            (median(&b.samples), p90(&b.samples), b.rules.to_string())
        });
        println!(
            "{:>6} | {:>10.2} {:>10.2} | {:>12.2} {:>12.2} | {:>7.3} | {:>10} {:>10}",
            a.n,
            median(&a.samples),
            p90(&a.samples),
            bm,
            bp,
            median(&a.samples) / bm,
            a.rules,
            br
        );
    }
    if netd.is_empty() {
        for b in cni {
            println!(
                "{:>6} | {:>10} {:>10} | {:>12.2} {:>12.2} | {:>7} | {:>10} {:>10}",
                b.n,
                "-",
                "-",
                median(&b.samples),
                p90(&b.samples),
                "-",
                "-",
                b.rules
            );
        }
    }
}

fn main() -> Result<()> {
    if !require_root("endpoints_bench") {
        std::process::exit(3);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut levels = vec![10usize, 100, 500];
    let mut json_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("bench/results/endpoints.json");
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json_path = PathBuf::from(it.next().context("--json PATH")?),
            "--only" => only = Some(it.next().context("--only netd|cni")?.clone()),
            l => {
                levels = l
                    .split(',')
                    .map(|x| x.parse().context("levels: 10,100,500"))
                    .collect::<Result<_>>()?
            }
        }
    }
    let samples: usize = std::env::var("ENDPOINTS_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let netd = if only.as_deref() != Some("cni") {
        run_netd(&levels, samples)?
    } else {
        vec![]
    };
    // Let the kernel finish tearing the namespaces down before the other side runs.
    std::thread::sleep(Duration::from_secs(3));
    let cni = if only.as_deref() != Some("netd") {
        match run_reference(&levels, samples) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("reference not measured: {e:#}");
                vec![]
            }
        }
    } else {
        vec![]
    };
    print_table(&netd, &cni);
    let rows = rows(&netd, &cni, samples);
    if let Some(p) = json_path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&rows)? + "\n")?;
    eprintln!("wrote {}", json_path.display());
    Ok(())
}
