//! CNI ADD/DEL latency: netd-cni (against a private netd) beside the reference `bridge` +
//! `host-local` plugins (Debian's containernetworking-plugins), on the same machine in the
//! same run, driven the same way (a plugin process per call, env + stdin, namespaces made
//! with `ip netns add`). Prints figures; asserts nothing about time.
//!
//! Run (root): `cargo build --workspace --bins && cargo run -p tests --example cni_bench`
//! Options: `NETD_BIN_DIR=target/release` to measure release binaries; `CNI_BENCH_N` (20)
//! sequential operations, `CNI_BENCH_C` (20) concurrent ones; `CNI_BENCH_NETD_ARGS` extra
//! netd flags.

#[path = "../tests/cni/support.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netd_tests::{bin, require_root, uniq, Daemon, TestNs};
use serde_json::{json, Value};
use support::{add_list, del_list, Caps, Env, PluginDir};

struct Figures {
    seq_add: Vec<Duration>,
    seq_del: Vec<Duration>,
    conc_add: Duration,
    conc_del: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mean(v: &[Duration]) -> f64 {
    v.iter().map(|d| ms(*d)).sum::<f64>() / v.len().max(1) as f64
}

fn median(v: &[Duration]) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// Sequential ADDs then DELs over `nss[..n]`, then `c` concurrent ADDs and DELs.
fn measure(list: &Value, envs: &[Env], n: usize, c: usize) -> Result<Figures> {
    let caps = Caps::new();
    let mut seq_add = Vec::new();
    let mut seq_del = Vec::new();
    let mut results = Vec::new();
    // Warm-up (first network creation, page cache), not counted.
    let r = add_list(list, &envs[0], &caps)?;
    del_list(list, &envs[0], &caps, Some(&r))?;
    for e in &envs[..n] {
        let t = Instant::now();
        results.push(add_list(list, e, &caps)?);
        seq_add.push(t.elapsed());
    }
    for (e, r) in envs[..n].iter().zip(&results) {
        let t = Instant::now();
        del_list(list, e, &caps, Some(r))?;
        seq_del.push(t.elapsed());
    }
    let t = Instant::now();
    let results: Vec<Result<Value>> = std::thread::scope(|s| {
        let hs: Vec<_> = envs[..c]
            .iter()
            .map(|e| s.spawn(move || add_list(list, e, &Caps::new())))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let conc_add = t.elapsed();
    let results: Vec<Value> = results.into_iter().collect::<Result<_>>()?;
    let t = Instant::now();
    let dels: Vec<Result<()>> = std::thread::scope(|s| {
        let hs: Vec<_> = envs[..c]
            .iter()
            .zip(&results)
            .map(|(e, r)| s.spawn(move || del_list(list, e, &Caps::new(), Some(r))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let conc_del = t.elapsed();
    dels.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(Figures {
        seq_add,
        seq_del,
        conc_add,
        conc_del,
    })
}

fn main() -> Result<()> {
    if !require_root("cni_bench") || !support::reference_plugins() {
        return Ok(());
    }
    let n: usize = std::env::var("CNI_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let c: usize = std::env::var("CNI_BENCH_C")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    // Extra netd flags, e.g. `--embedded-dns=false` to see what the DNS arming costs.
    let extra = std::env::var("CNI_BENCH_NETD_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let mut d = Daemon::start_with(&extra)?;
    println!("netd flags: {extra:?}");
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let (netd_br, ref_br) = (format!("bn{}", uniq()), format!("br{}", uniq()));
    d.cleanup_bridges.push(netd_br.clone());
    d.cleanup_bridges.push(ref_br.clone());
    let nss: Vec<TestNs> = (0..n.max(c))
        .map(|_| TestNs::new("cnib"))
        .collect::<Result<_>>()?;
    let data = tempfile::Builder::new().prefix("cni-bench-hl-").tempdir()?;
    let base = d
        .pool
        .trim_start_matches("base=")
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    let p: Vec<&str> = base.split('.').collect();
    let y: u8 = p[2].parse()?;
    let netd_list = json!({"cniVersion": "1.0.0", "name": format!("bn-{}", uniq()),
        "plugins": [{"type": "netd-cni", "bridge": netd_br,
                     "subnet": format!("10.{}.{}.0/24", p[1], y + 15)}]});
    let ref_list = json!({"cniVersion": "1.0.0", "name": format!("br-{}", uniq()),
        "plugins": [{"type": "bridge", "bridge": ref_br, "isGateway": true, "ipMasq": true,
                     "ipam": {"type": "host-local", "dataDir": data.path(),
                              "ranges": [[{"subnet": format!("10.{}.{}.0/24", p[1], y + 14)}]],
                              "routes": [{"dst": "0.0.0.0/0"}]}}]});
    let envs = |tag: &str| -> Vec<Env> {
        nss.iter()
            .enumerate()
            .map(|(i, ns)| {
                Env::new(
                    &format!("{tag}{i}-{}", uniq()),
                    &ns.path(),
                    "eth0",
                    &pd.cni_path(),
                )
                .with_netd(&d.socket)
            })
            .collect()
    };
    println!(
        "binaries: {} (netd, netd-cni); reference: /usr/lib/cni",
        netd_tests::bin_dir().display()
    );
    let reference = measure(&ref_list, &envs("r"), n, c).context("reference plugins")?;
    let netd = measure(&netd_list, &envs("n"), n, c).context("netd-cni")?;
    println!(
        "\n{:<34} {:>12} {:>12} {:>8}",
        "", "netd-cni", "bridge+h-l", "ratio"
    );
    let row = |what: &str, a: f64, b: f64| {
        println!("{what:<34} {a:>9.1} ms {b:>9.1} ms {:>8.2}", a / b);
    };
    row(
        &format!("ADD sequential, mean of {n}"),
        mean(&netd.seq_add),
        mean(&reference.seq_add),
    );
    row(
        &format!("ADD sequential, median of {n}"),
        median(&netd.seq_add),
        median(&reference.seq_add),
    );
    row(
        &format!("DEL sequential, mean of {n}"),
        mean(&netd.seq_del),
        mean(&reference.seq_del),
    );
    row(
        &format!("DEL sequential, median of {n}"),
        median(&netd.seq_del),
        median(&reference.seq_del),
    );
    row(
        &format!("{c} concurrent ADDs, wall"),
        ms(netd.conc_add),
        ms(reference.conc_add),
    );
    row(
        &format!("{c} concurrent DELs, wall"),
        ms(netd.conc_del),
        ms(reference.conc_del),
    );
    println!("(ratio = netd-cni / reference; below 1 is faster)");
    Ok(())
}
