//! Benchmark fixture: run a command beside a private dockerd (Debian docker.io 20.10).
//!
//! `bench_dockerd [--bridge none] -- CMD ARGS...` starts dockerd on private paths with
//! the suite's harness (`netd_tests::dockerd`, which serialises private dockerds and
//! undoes what dockerd did to the host), imports the host's static busybox as
//! `busybox:bench`, runs CMD with `DOCKER_HOST` and `BENCH_DOCKER` (the Debian client)
//! set, then stops dockerd by its pid and cleans up, also when CMD fails. Exits with
//! CMD's status; exits 3 (after printing `SKIP`) when dockerd cannot run here. The
//! bench scripts (bench/dns.sh, bench/run_start.sh) use it so that the cleanup logic
//! lives in one place.

use std::process::Command;
use std::time::Duration;

use netd_tests::dockerd::{DockerdOpts, PrivateDockerd, DOCKER};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(sep) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: bench_dockerd [--bridge NAME|none] -- CMD ARGS...");
        std::process::exit(2);
    };
    let (opts_args, cmd) = (&args[..sep], &args[sep + 1..]);
    if cmd.is_empty() {
        eprintln!("bench_dockerd: no command after --");
        std::process::exit(2);
    }
    let mut opts = DockerdOpts {
        bridge: Some("none".into()),
        lock_timeout: Duration::from_secs(1200),
        ..DockerdOpts::default()
    };
    let mut it = opts_args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bridge" => opts.bridge = it.next().cloned(),
            other => {
                eprintln!("bench_dockerd: unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    // SIGINT/SIGTERM go to the child (same process group); we outlive it to clean up.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    let code = match PrivateDockerd::start(opts) {
        Ok(Some(d)) => run_with(&d, cmd),
        Ok(None) => {
            eprintln!("SKIP: private dockerd cannot run (docker.io not installed)");
            3
        }
        Err(e) => {
            eprintln!("SKIP: private dockerd did not start: {e:#}");
            3
        }
    };
    std::process::exit(code);
}

fn run_with(d: &PrivateDockerd, cmd: &[String]) -> i32 {
    if let Err(e) = d.import_busybox("busybox:bench") {
        eprintln!("SKIP: importing busybox into the private dockerd failed: {e:#}");
        return 3;
    }
    let status = Command::new(&cmd[0])
        .args(&cmd[1..])
        .env("DOCKER_HOST", d.host())
        .env("BENCH_DOCKER", DOCKER)
        .env("BENCH_DOCKERD_PID", d.pid().unwrap_or(0).to_string())
        .status();
    match status {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("bench_dockerd: running {cmd:?}: {e}");
            1
        }
    }
}
