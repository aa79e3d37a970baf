//! Fuzz of netd's REST API in-process: the real axum router (`api::router` merged with
//! `api::container_router`, as `netd` serves them) over a real controller on a temp redb
//! store, with the bridge, host and null drivers on the recording `FakeSys` (no links, no
//! nftables), driven by `tower::ServiceExt::oneshot` with random bytes, random JSON,
//! structure-aware mutations of valid bodies for every POST route, and random methods and
//! paths (see `api_fuzz/gen.rs`).
//!
//! Properties, checked on every request: no panic and no hang; every 4xx/5xx answer is a
//! JSON object with a non-empty `message`; every 2xx body is JSON. After every batch: the
//! daemon still answers `GET /version`; the state is consistent (every network's subnets
//! have their IPAM pool, every endpoint has its network and sandbox, every endpoint address
//! is allocated in its pool, every IPAM pool belongs to a network or to a CNI IPAM network,
//! and the store holds exactly what the controller holds). Every 50 batches everything is
//! deleted through the API (which must succeed) and no pool, record or namespace may be left.
//!
//! Two kinds of objects would leave the process: namespaces (`Kernel::create_netns` is not
//! behind `Sys`) and containers. Sandbox bodies may make a real namespace (under the temp
//! exec root, removed again) up to `REAL_NETNS_CAP` times; after that a sandbox body without
//! `netns_path` gets the harness's plain file to adopt. Container bodies whose `rootfs` is a
//! real directory get a missing one, so no container is ever spawned.
//!
//! `cargo test -p daemon --test api_fuzz -- --nocapture` prints the counts.
//! `NETD_API_FUZZ_CASES` overrides the number of batches.

#[path = "api_fuzz/gen.rs"]
mod gen;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request};
use daemon::controller::{Config, Controller};
use daemon::kernel::Kernel;
use daemon::store::{Kind, RedbStore, Store};
use drivers::sys::fake::FakeSys;
use drivers::Driver;
use http_body_util::BodyExt;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};
use serde_json::Value;
use tower::ServiceExt;

const PER_CASE: usize = 8;
const DEFAULT_CASES: u32 = 12_600;
const RESET_EVERY: u64 = 50;
const REAL_NETNS_CAP: u64 = 40;

/// What the fuzz saw, printed at the end.
#[derive(Default)]
struct Tally {
    requests: u64,
    by_kind: BTreeMap<&'static str, u64>,
    by_status: BTreeMap<u16, u64>,
    server_errors: BTreeMap<String, (u64, String)>,
    real_netns: u64,
    adopted_rewrites: u64,
    rootfs_rewrites: u64,
    resets: u64,
    fresh_files: u64,
    /// Other daemon findings, by key, with evidence.
    findings: BTreeMap<String, String>,
}

struct Harness {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    ctl: Arc<Controller>,
    store: Arc<RedbStore>,
    paths: gen::Paths,
    exec_root: PathBuf,
    tally: Tally,
    batches: u64,
    /// The requests of the current batch with their answers (for failure messages).
    last_batch: Vec<String>,
    // Last: removed after the namespaces under it are unmounted (Drop).
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        // tmpfs: every operation is a durable redb commit, and fsync on a disk would make
        // 100,000 requests take many minutes.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("netd-api-fuzz-")
            .tempdir_in(base)
            .unwrap();
        let exec_root = dir.path().join("run");
        let fake_netns = dir.path().join("adopted-netns");
        std::fs::write(&fake_netns, b"").unwrap();
        for i in 0..4 {
            std::fs::write(format!("{}-ctr{i}", fake_netns.display()), b"").unwrap();
        }
        std::fs::create_dir(dir.path().join("fresh")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(RedbStore::open(&dir.path().join("data")).unwrap());
        let sys = Arc::new(FakeSys::new());
        let bridge = Arc::new(drivers::bridge::BridgeDriver::new(
            sys.clone(),
            drivers::bridge::BridgeConfig {
                table: "netd_api_fuzz".into(),
                docker_coexistence: false,
                userland_proxy: false,
            },
        ));
        let drivers: Vec<Arc<dyn Driver>> = vec![
            bridge,
            Arc::new(drivers::host::HostDriver),
            Arc::new(drivers::null::NullDriver),
        ];
        let cfg = Config {
            data_root: dir.path().join("data"),
            exec_root: exec_root.clone(),
            default_pools: vec!["base=10.203.0.0/16,size=24".parse().unwrap()],
            default_bridge: "nfz0".into(),
            create_default_bridge: false,
            userland_proxy: false,
        };
        let ctl = Controller::new(
            cfg,
            store.clone() as Arc<dyn Store>,
            drivers,
            Kernel { sys },
        )
        .unwrap();
        let ctl = Arc::new(ctl);
        rt.block_on(ctl.start()).unwrap();
        let containers = daemon::containers::Containers::new(
            ctl.clone(),
            store.clone() as Arc<dyn Store>,
            &dir.path().join("data"),
        )
        .unwrap();
        let app = daemon::api::router(ctl.clone()).merge(daemon::api::container_router(containers));
        Harness {
            rt,
            app,
            ctl,
            store,
            paths: gen::Paths {
                fake_netns: fake_netns.to_string_lossy().into_owned(),
            },
            exec_root,
            tally: Tally::default(),
            batches: 0,
            last_batch: vec![],
            dir,
        }
    }

    /// Send one request; (status, content-type, body). A panic or a hang is a failure.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String, Vec<u8>), String> {
        let req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri_escape(path))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .map_err(|e| format!("request not buildable: {e}"))?;
        let app = self.app.clone();
        self.rt.block_on(async move {
            let task = tokio::spawn(async move {
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status().as_u16();
                let ct = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec();
                (status, ct, bytes)
            });
            match tokio::time::timeout(Duration::from_secs(20), task).await {
                Err(_) => Err("no answer within 20 s (hang)".to_string()),
                Ok(Err(e)) if e.is_panic() => Err(format!("handler panicked: {e}")),
                Ok(Err(e)) => Err(format!("handler task failed: {e}")),
                Ok(Ok(x)) => Ok(x),
            }
        })
    }

    fn get_json(&self, path: &str) -> Result<Value, TestCaseError> {
        let (st, _, b) = self
            .send("GET", path, vec![])
            .map_err(TestCaseError::fail)?;
        if st != 200 {
            return Err(TestCaseError::fail(format!(
                "GET {path}: {st} {}",
                String::from_utf8_lossy(&b)
            )));
        }
        serde_json::from_slice(&b).map_err(|e| TestCaseError::fail(format!("GET {path}: {e}")))
    }

    /// A new plain file to adopt as a sandbox's namespace.
    fn fresh_netns(&mut self) -> String {
        self.tally.fresh_files += 1;
        let p = self
            .dir
            .path()
            .join("fresh")
            .join(self.tally.fresh_files.to_string());
        std::fs::write(&p, b"").unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Keep real namespaces and containers out (see the module comment).
    fn sanitize(&mut self, req: &mut gen::Req) {
        let text = String::from_utf8_lossy(&req.body);
        if text.contains(gen::FRESH_NETNS) {
            let fresh = self.fresh_netns();
            let json_path = serde_json::to_string(&fresh).unwrap();
            let json_path = &json_path[1..json_path.len() - 1];
            req.body = text.replace(gen::FRESH_NETNS, json_path).into_bytes();
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(&req.body) else {
            return;
        };
        // serde also reads a struct from a JSON array, field by field in declaration
        // order (`[]` is a valid `SandboxCreate`): `netns_path` is the 2nd field of
        // `SandboxCreate`, `rootfs` the 2nd of `ContainerCreate`.
        if req.method == "POST" && req.path == "/sandboxes" {
            if self.tally.real_netns < REAL_NETNS_CAP {
                return;
            }
            let fresh = Value::String(self.fresh_netns());
            if let Some(slot) = field(&mut v, "netns_path", true) {
                if slot.is_null() {
                    *slot = fresh;
                    self.tally.adopted_rewrites += 1;
                    req.body = v.to_string().into_bytes();
                }
            }
        } else if req.path.starts_with("/containers") {
            if let Some(slot) = field(&mut v, "rootfs", false) {
                if slot
                    .as_str()
                    .is_some_and(|r| std::path::Path::new(r).is_dir() || r.contains('\0'))
                {
                    *slot = Value::String("/nonexistent/netd-fuzz-rootfs".into());
                    self.tally.rootfs_rewrites += 1;
                    req.body = v.to_string().into_bytes();
                }
            }
        }
    }

    fn one(&mut self, mut req: gen::Req) -> Result<(), TestCaseError> {
        self.sanitize(&mut req);
        let (status, ct, body) =
            self.send(req.method, &req.path, req.body.clone())
                .map_err(|e| {
                    TestCaseError::fail(format!(
                        "{e}: {} {} {}",
                        req.method,
                        req.path,
                        String::from_utf8_lossy(&req.body)
                    ))
                })?;
        self.last_batch.push(format!(
            "{} {} {:.300} -> {status} {:.300}",
            req.method,
            req.path,
            String::from_utf8_lossy(&req.body),
            String::from_utf8_lossy(&body)
        ));
        let t = &mut self.tally;
        t.requests += 1;
        *t.by_kind.entry(req.kind).or_default() += 1;
        *t.by_status.entry(status).or_default() += 1;
        let example = || {
            format!(
                "{} {} {:.200} -> {status} {ct:?} {:.200}",
                req.method,
                req.path,
                String::from_utf8_lossy(&req.body),
                String::from_utf8_lossy(&body)
            )
        };
        if req.method == "POST" && status == 200 && req.body.trim_ascii_start().starts_with(b"[") {
            let ex = example();
            t.findings
                .entry(format!("array-body {}", req.path))
                .or_insert_with(|| format!("a JSON array is accepted as a request object (serde's sequence form): {ex}"));
        }
        if req.method == "POST" && req.path == "/sandboxes" && status == 200 {
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            if v["owns_netns"] == true {
                t.real_netns += 1;
                if t.real_netns > REAL_NETNS_CAP {
                    return Err(TestCaseError::fail(format!(
                        "namespace cap passed: {}",
                        example()
                    )));
                }
            }
        }
        // HEAD answers carry no body by definition (axum strips it).
        if status >= 400 && req.method != "HEAD" {
            let msg = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string));
            match msg {
                Some(m) if !m.is_empty() => {}
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "error without a JSON message: {}",
                        example()
                    )));
                }
            }
            if status >= 500 {
                let class = format!("{status} {}", req.kind);
                t.server_errors.entry(class).or_insert((0, example())).0 += 1;
            }
        } else if !body.is_empty() && ct.starts_with("application/json") {
            serde_json::from_slice::<Value>(&body).map_err(|e| {
                TestCaseError::fail(format!("2xx body is not JSON ({e}): {}", example()))
            })?;
        }
        Ok(())
    }

    /// The daemon still serves, and the state is consistent (API view and store).
    fn check_state(&mut self) -> Result<(), TestCaseError> {
        let v = self.get_json("/version")?;
        prop_ok(v["api_version"].is_string(), || format!("/version: {v}"))?;
        let nets = self.get_json("/networks")?;
        let eps = self.get_json("/endpoints")?;
        let sbs = self.get_json("/sandboxes")?;
        let ipam = self.get_json("/ipam")?;
        let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
        let (nets, eps, sbs) = (arr(&nets), arr(&eps), arr(&sbs));
        let pools: BTreeMap<String, Value> = arr(&ipam["pools"])
            .into_iter()
            .map(|p| (p["id"].as_str().unwrap_or("").to_string(), p))
            .collect();
        let net_by_id: BTreeMap<&str, &Value> = nets
            .iter()
            .map(|n| (n["id"].as_str().unwrap_or(""), n))
            .collect();
        let sb_by_id: BTreeMap<&str, &Value> = sbs
            .iter()
            .map(|s| (s["id"].as_str().unwrap_or(""), s))
            .collect();
        let mut net_pools = BTreeSet::new();
        for n in &nets {
            for s in arr(&n["subnets"]) {
                let pool = s["pool"].as_str().unwrap_or("").to_string();
                let p = pools.get(&pool);
                prop_ok(p.is_some(), || {
                    format!("network {} has subnet {s} without its IPAM pool", n["name"])
                })?;
                prop_ok(p.unwrap()["subnet"] == s["subnet"], || {
                    format!("pool {pool} vs {s}")
                })?;
                net_pools.insert(pool);
            }
            for e in arr(&n["endpoints"]) {
                prop_ok(eps.iter().any(|x| x["id"] == e), || {
                    format!("network {} lists missing endpoint {e}", n["name"])
                })?;
            }
        }
        for e in &eps {
            let nid = e["network_id"].as_str().unwrap_or("");
            let n = net_by_id.get(nid);
            prop_ok(n.is_some(), || format!("endpoint without its network: {e}"))?;
            if let Some(sid) = e["sandbox_id"].as_str() {
                let sb = sb_by_id.get(sid);
                prop_ok(sb.is_some(), || {
                    format!("endpoint without its sandbox: {e}")
                })?;
            }
            for a in arr(&e["addresses"]) {
                let ip = a
                    .as_str()
                    .unwrap_or("")
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let allocated = arr(&n.unwrap()["subnets"]).iter().any(|s| {
                    pools
                        .get(s["pool"].as_str().unwrap_or(""))
                        .is_some_and(|p| in_ranges(&ip, &p["allocated_ranges"]))
                });
                prop_ok(allocated, || {
                    format!("endpoint address {ip} not allocated in its pool: {e}")
                })?;
            }
        }
        for s in &sbs {
            for e in arr(&s["endpoints"]) {
                let id = e["id"].as_str().unwrap_or("");
                prop_ok(eps.iter().any(|x| x["id"] == id), || {
                    format!("sandbox {} lists missing endpoint {id}", s["name"])
                })?;
            }
        }
        // The store: the same records as the controller, and the same IPAM state; every
        // pool belongs to a network or to a CNI IPAM network.
        let snap = self.rt.block_on(self.ctl.snapshot());
        let stored = self
            .store
            .load()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let recs = |k: Kind| -> BTreeMap<String, Value> {
            stored
                .get(&k)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), serde_json::from_slice(v).unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default()
        };
        prop_ok(recs(Kind::Network) == to_values(&snap.networks), || {
            "stored networks differ from the controller's".into()
        })?;
        prop_ok(recs(Kind::Endpoint) == to_values(&snap.endpoints), || {
            "stored endpoints differ from the controller's".into()
        })?;
        prop_ok(recs(Kind::Sandbox) == to_values(&snap.sandboxes), || {
            "stored sandboxes differ from the controller's".into()
        })?;
        let meta = recs(Kind::Meta);
        if let Some(ip) = meta.get("ipam") {
            let stored_ipam: ipam::Ipam = serde_json::from_value(ip.clone())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if stored_ipam != snap.ipam {
                let (mut a, mut b) = (
                    serde_json::to_value(&stored_ipam).unwrap(),
                    serde_json::to_value(&snap.ipam).unwrap(),
                );
                let full = format!("store: {a}\ncontroller: {b}");
                strip_cursors(&mut a);
                strip_cursors(&mut b);
                if a != b {
                    return Err(TestCaseError::fail(format!(
                        "stored IPAM state differs from the controller's:\n{full}\nlast batch:\n  {}",
                        self.last_batch.join("\n  ")
                    )));
                }
                // Only the allocation cursors differ: a rolled-back operation committed its
                // undo to the store while the controller restored its backup. Benign, but a
                // divergence: a finding.
                self.tally.findings.entry("ipam-cursor".into()).or_insert_with(|| {
                    format!(
                        "after a failed operation the stored IPAM `next` cursor differs from the controller's:\n{full}\nbatch:\n  {}",
                        self.last_batch.join("\n  ")
                    )
                });
            }
        }
        let mut cni_pools = BTreeSet::new();
        for (k, v) in &meta {
            if k.starts_with("cni_ipam/") {
                for p in arr(&v["pools"]) {
                    cni_pools.insert(p["pool"].as_str().unwrap_or("").to_string());
                }
            }
        }
        for id in pools.keys() {
            prop_ok(net_pools.contains(id) || cni_pools.contains(id), || {
                format!("IPAM pool {id} belongs to nothing (leak)")
            })?;
        }
        Ok(())
    }

    /// Delete every sandbox and every non-predefined network through the API: each delete
    /// must succeed, and nothing may be left (records, pools, namespaces).
    fn reset(&mut self) -> Result<(), TestCaseError> {
        self.tally.resets += 1;
        for s in self
            .get_json("/sandboxes")?
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let id = s["id"].as_str().unwrap_or("");
            let (st, _, b) = self
                .send("DELETE", &format!("/sandboxes/{id}"), vec![])
                .map_err(TestCaseError::fail)?;
            prop_ok(st == 204, || {
                format!("DELETE sandbox {s}: {st} {}", String::from_utf8_lossy(&b))
            })?;
        }
        for n in self
            .get_json("/networks")?
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            // Start-up's pre-defined networks (`none`, `host`) carry netd's label and
            // stay; everything else, a user's own `bridge` too, must be removable.
            let predefined = n["labels"].get("com.netd.predefined").is_some();
            let id = n["id"].as_str().unwrap_or("");
            if predefined {
                continue;
            }
            let (st, _, b) = self
                .send("DELETE", &format!("/networks/{id}"), vec![])
                .map_err(TestCaseError::fail)?;
            prop_ok(st == 204, || {
                format!("DELETE network {n}: {st} {}", String::from_utf8_lossy(&b))
            })?;
        }
        let (st, _, b) = self
            .send("POST", "/system/reconcile", vec![])
            .map_err(TestCaseError::fail)?;
        prop_ok(st == 200, || {
            format!("reconcile: {st} {}", String::from_utf8_lossy(&b))
        })?;
        self.check_state()?;
        let snap = self.rt.block_on(self.ctl.snapshot());
        prop_ok(
            snap.endpoints.is_empty() && snap.sandboxes.is_empty(),
            || "objects left after reset".into(),
        )?;
        let netns_left = std::fs::read_dir(self.exec_root.join("netns"))
            .map(|d| d.count())
            .unwrap_or(0);
        prop_ok(netns_left == 0, || {
            format!("{netns_left} namespaces left under the exec root")
        })?;
        Ok(())
    }

    fn batch(&mut self, seeds: &[u64]) -> Result<(), TestCaseError> {
        self.last_batch.clear();
        for &s in seeds {
            let req = gen::request(s, &self.paths);
            self.one(req)?;
        }
        self.check_state()?;
        self.batches += 1;
        if self.batches % RESET_EVERY == 0 {
            self.reset()?;
        }
        Ok(())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Namespaces netd made under the temp exec root are bind mounts: unmount them
        // before the temp dir goes (also after a failure).
        if let Ok(rd) = std::fs::read_dir(self.exec_root.join("netns")) {
            for e in rd.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = nix::mount::umount2(
            &self.exec_root.join("netns"),
            nix::mount::MntFlags::MNT_DETACH,
        );
        let _ = self.dir.path();
    }
}

/// Drop the pools' allocation cursors (`next`), which only steer where the next search
/// starts.
fn strip_cursors(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("next");
            m.values_mut().for_each(strip_cursors);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_cursors),
        _ => {}
    }
}

/// The records as the store keeps them (JSON).
fn to_values<T: serde::Serialize + Clone>(
    m: &daemon::controller::Map<T>,
) -> BTreeMap<String, Value> {
    m.iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap()))
        .collect()
}

fn prop_ok(ok: bool, msg: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(msg()))
    }
}

/// Field `name` of a request body, which serde reads from an object or, field by field in
/// declaration order, from an array (the field must be the 2nd: `netns_path` of
/// `SandboxCreate`, `rootfs` of `ContainerCreate`). With `create`, a missing field is added
/// as null.
fn field<'a>(v: &'a mut Value, name: &str, create: bool) -> Option<&'a mut Value> {
    match v {
        Value::Object(m) => {
            if create {
                Some(m.entry(name).or_insert(Value::Null))
            } else {
                m.get_mut(name)
            }
        }
        Value::Array(a) if a.len() <= 5 => {
            if a.len() < 2 && create {
                a.resize(2, Value::Null);
            }
            a.get_mut(1)
        }
        _ => None,
    }
}

/// Percent-encode what may not appear in a request target (a client must), keeping `%`
/// itself so that invalid escapes (`%ff`, `%`) reach the router as sent.
fn uri_escape(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/%?=&:+,;@!$'()*".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `ip` is inside one of `ranges` (`["a", "b-c", ...]`).
fn in_ranges(ip: &str, ranges: &Value) -> bool {
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    ranges
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
                (Ok(a), Ok(b)) => a <= ip && ip <= b,
                _ => false,
            }
        })
}

fn cases() -> u32 {
    std::env::var("NETD_API_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn rest_api_fuzz() {
    let t = Instant::now();
    let cases = cases();
    let mut runner = TestRunner::new(PtConfig {
        cases,
        failure_persistence: None,
        // Shrinking replays against a changed state; the failing request is in the message.
        max_shrink_iters: 0,
        ..PtConfig::default()
    });
    let h = std::cell::RefCell::new(Harness::new());
    let strat = proptest::collection::vec(proptest::prelude::any::<u64>(), PER_CASE);
    let res = runner.run(&strat, |seeds| h.borrow_mut().batch(&seeds));
    let mut h = h.into_inner();
    let final_reset = if res.is_ok() { h.reset() } else { Ok(()) };
    let tl = &h.tally;
    eprintln!(
        "api_fuzz: {} requests in {} batches ({} per batch) in {:.1?}; {} resets; {} real namespaces made (cap {REAL_NETNS_CAP}), {} sandbox bodies redirected to an adopted file, {} container rootfs rewritten",
        tl.requests, h.batches, PER_CASE, t.elapsed(), tl.resets, tl.real_netns, tl.adopted_rewrites, tl.rootfs_rewrites
    );
    eprintln!("api_fuzz: by generator {:?}", tl.by_kind);
    eprintln!("api_fuzz: by status {:?}", tl.by_status);
    for (k, f) in &tl.findings {
        eprintln!("api_fuzz: DAEMON FINDING [{k}] {f}");
    }
    for (class, (n, ex)) in &tl.server_errors {
        eprintln!("api_fuzz: 5xx [{class}] x{n}, e.g. {ex}");
    }
    if let Err(e) = res {
        panic!("{e}");
    }
    final_reset.unwrap();
    assert!(
        u64::from(cases) < 12_500 || h.tally.requests >= 100_000,
        "only {} requests",
        h.tally.requests
    );
}
