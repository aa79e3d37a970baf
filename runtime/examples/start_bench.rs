//! Start-up cost of a container: spawn + wait of `/bin/true` in a busybox rootfs,
//! median of 20 runs, with host networking and with a fresh network namespace.
//! Needs root. Run: `cargo run --release -p runtime --example start_bench`.

use std::process::Command;
use std::time::{Duration, Instant};

use runtime::{ContainerSpec, ExitStatus, Stdio};

const RUNS: usize = 20;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn bench(rootfs: &std::path::Path, netns: Option<&str>) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let mut spec = ContainerSpec::new(
                "bench",
                rootfs,
                vec!["/bin/true".into()],
                Stdio::null().unwrap(),
            );
            spec.netns_path = netns.map(|n| format!("/run/netns/{n}").into());
            let t = Instant::now();
            let c = runtime::spawn(spec).expect("spawn");
            assert_eq!(c.wait().expect("wait"), ExitStatus::Exited(0));
            t.elapsed()
        })
        .collect()
}

fn report(label: &str, v: Vec<Duration>) {
    let min = *v.iter().min().unwrap();
    let max = *v.iter().max().unwrap();
    println!(
        "{label:<22} median {:>7.2} ms  min {:>7.2} ms  max {:>7.2} ms  ({RUNS} runs)",
        median(v).as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("start_bench needs root");
        std::process::exit(1);
    }
    let dir = tempfile::tempdir().unwrap();
    runtime::rootfs::busybox(dir.path()).unwrap();
    let ns = format!("rt-bench-{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip netns add {ns}");

    report("spawn+wait (host net)", bench(dir.path(), None));
    report("spawn+wait (netns)", bench(dir.path(), Some(&ns)));

    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
}
