//! Attachment benchmark (root). In a throwaway "host" namespace, grows one
//! bridge network to N = 10, 100, 500 attached sandboxes and at each N times
//! 20 extra attachments (create netns + create_endpoint + join +
//! add_interface + default route) and their detachment, printing per-
//! attachment figures and the nft rule count. Timings are printed, never
//! asserted.
//!
//! By default the controller's fast path is measured: `create_endpoint` runs
//! in a peer-placement scope, so the container end of the veth is born in the
//! sandbox as `eth0` (no move between namespaces). `--move` measures the
//! plain CNM path instead (veth in the host, moved at join).
//!
//! Run: `cargo run --release -p drivers --example join_bench [-- 10,100,500] [--move]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drivers::bridge::{BridgeConfig, BridgeDriver};
use drivers::sys::placement::{with_peer_placement, PeerPlacement};
use drivers::sys::real::RealSys;
use drivers::sys::{create_netns, delete_netns, Ns, Sys};

fn use_move() -> bool {
    std::env::args().any(|a| a == "--move")
}
use drivers::{sandbox, Driver, EndpointSpec, NetworkSpec, SandboxSpec, SubnetSpec};

struct Cleanup(PathBuf, Vec<PathBuf>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.1 {
            let _ = delete_netns(p);
        }
        let _ = delete_netns(&self.0.join("host"));
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ep_spec(net: &NetworkSpec, i: u32) -> EndpointSpec {
    let ip = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 200, 0, 0)) + 2 + i);
    EndpointSpec {
        id: format!("{:08x}{}", i, "0".repeat(56)),
        network_id: net.id.clone(),
        addresses: vec![format!("{ip}/16").parse().unwrap()],
        mac: None,
    }
}

/// Phase times: netns, endpoint (veth + bridge port), join + add_interface + route.
type Phases = [Duration; 3];

async fn attach(
    d: &BridgeDriver,
    sys: &dyn Sys,
    net: &NetworkSpec,
    i: u32,
    dir: &Path,
) -> (PathBuf, Phases) {
    let sb = dir.join(format!("sb{i}"));
    let t0 = Instant::now();
    create_netns(&sb).await.expect("netns");
    let t1 = Instant::now();
    let ep = ep_spec(net, i);
    let create = d.create_endpoint(net, &ep);
    let info = if use_move() {
        create.await
    } else {
        let p = PeerPlacement {
            netns: sb.clone(),
            name: "eth0".into(),
            mac: Some(drivers::bridge::endpoint_mac(&ep)),
        };
        with_peer_placement(p, create).await
    }
    .expect("endpoint");
    let t2 = Instant::now();
    let s = SandboxSpec {
        id: i.to_string(),
        netns_path: sb.display().to_string(),
    };
    let j = d.join(net, &ep, &s).await.expect("join");
    sandbox::add_interface(
        sys,
        &sb,
        info.container_ifname.as_deref().unwrap(),
        "eth0",
        info.mac.as_deref(),
        &ep.addresses,
    )
    .await
    .expect("add_interface");
    sandbox::set_default_gateway(sys, &sb, j.gateway4, j.gateway6)
        .await
        .expect("gw");
    (sb, [t1 - t0, t2 - t1, t2.elapsed()])
}

async fn detach(d: &BridgeDriver, sys: &dyn Sys, net: &NetworkSpec, i: u32, sb: &Path) {
    let ep = ep_spec(net, i);
    sandbox::remove_interface(sys, sb, "eth0")
        .await
        .expect("remove");
    d.delete_endpoint(net, &ep).await.expect("delete ep");
    delete_netns(sb).expect("delete netns");
}

fn stats(v: &mut [Duration]) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    format!(
        "mean {:6.2} ms  p50 {:6.2}  p95 {:6.2}  max {:6.2}",
        mean,
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 95 / 100).min(v.len() - 1)]),
        ms(v[v.len() - 1])
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("join_bench needs root");
        std::process::exit(2);
    }
    let targets: Vec<u32> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_else(|| "10,100,500".into())
        .split(',')
        .map(|s| s.parse().expect("N list"))
        .collect();
    let dir = std::env::temp_dir().join(format!("netd-bench-{}", std::process::id()));
    let mut guard = Cleanup(dir.clone(), vec![]);
    // Namespace files on a tmpfs, as /run is on a usual host: on ext4, fast
    // create/delete churn makes inode allocation itself slow (ext4's
    // recently-deleted inode scan), which is not what this bench measures.
    std::fs::create_dir_all(&dir).expect("bench dir");
    nix::mount::mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("mode=0755,size=16m"),
    )
    .expect("tmpfs on the bench dir");
    let host = dir.join("host");
    create_netns(&host).await.expect("host netns");
    let sys = Arc::new(RealSys::with_host_netns(&host));
    let table = format!("netd_b{}", std::process::id());
    let d = BridgeDriver::new(
        sys.clone(),
        BridgeConfig {
            table: table.clone(),
            docker_coexistence: true,
            ..Default::default()
        },
    );
    d.init().await.expect("init");
    let mut options = BTreeMap::new();
    options.insert(
        "com.docker.network.bridge.name".to_string(),
        "ndbench".to_string(),
    );
    let net = NetworkSpec {
        id: "b".repeat(64),
        name: "bench".into(),
        options,
        ipv4: vec![SubnetSpec {
            subnet: "10.200.0.0/16".parse().unwrap(),
            gateway: Some("10.200.0.1".parse().unwrap()),
        }],
        ipv6: vec![],
        internal: false,
        enable_ipv6: false,
    };
    println!(
        "path: {}",
        if use_move() {
            "veth created in the host, moved into the sandbox at join (--move)"
        } else {
            "veth peer created inside the sandbox (peer placement)"
        }
    );
    let t = Instant::now();
    d.create_network(&net).await.expect("network");
    println!(
        "create_network: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let mut next = 0u32;
    let mut fill = Vec::new();
    let samples: u32 = std::env::var("NETD_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for n in targets {
        let t = Instant::now();
        let before = next;
        while next < n {
            let (sb, _) = attach(&d, sys.as_ref(), &net, next, &dir).await;
            guard.1.push(sb);
            next += 1;
        }
        if next > before {
            fill.push((next - before, t.elapsed()));
        }
        let mut att = Vec::new();
        let mut det = Vec::new();
        let mut phases: [Vec<Duration>; 3] = Default::default();
        for k in 0..samples {
            let i = 100_000 + n * 100 + k;
            let t = Instant::now();
            let (sb, ph) = attach(&d, sys.as_ref(), &net, i, &dir).await;
            att.push(t.elapsed());
            for (v, p) in phases.iter_mut().zip(ph) {
                v.push(p);
            }
            let t = Instant::now();
            detach(&d, sys.as_ref(), &net, i, &sb).await;
            det.push(t.elapsed());
        }
        let listing = sys
            .nft_list(&Ns::Host, &["list", "table", "inet", &table])
            .await
            .unwrap()
            .unwrap();
        let objs = listing["nftables"].as_array().unwrap();
        let rules = objs.iter().filter(|o| o.get("rule").is_some()).count();
        let elems: usize = objs
            .iter()
            .filter_map(|o| o["set"]["elem"].as_array())
            .map(|a| a.len())
            .sum();
        let links = sys.list_links(&Ns::Host).await.unwrap().len();
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0);
        println!("N={n:4} existing endpoints | attach: {} | detach: {} | nft rules {rules}, set elements {elems}, host links {links}, open fds {fds}", stats(&mut att), stats(&mut det));
        let p50 = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1000.0
        };
        let [a, b, c] = &mut phases;
        println!(
            "        phases (p50): create_netns {:.2} ms, create_endpoint {:.2} ms, join+add_interface+route {:.2} ms",
            p50(a),
            p50(b),
            p50(c)
        );
    }
    for (count, el) in fill {
        println!(
            "fill: {count} attachments in {:.2} s ({:.2} ms each)",
            el.as_secs_f64(),
            el.as_secs_f64() * 1000.0 / count as f64
        );
    }
    let _ = d.delete_network(&net).await;
}
