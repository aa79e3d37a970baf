//! `netd-cni`: CNI plugin (and CNI IPAM plugin) that forwards every call to netd's socket.
//! All logic lives in `plugin_api::cni::runner`; this only wires it to the process.

use std::io::Write;

fn main() {
    let env = |k: &str| std::env::var(k).ok();
    let out = plugin_api::cni::runner::run(&env, &mut std::io::stdin().lock());
    let mut stdout = std::io::stdout().lock();
    // Nothing useful can be done if stdout is gone; the exit code still reports failure.
    let _ = stdout.write_all(out.stdout.as_bytes());
    let _ = stdout.flush();
    std::process::exit(out.exit_code);
}
