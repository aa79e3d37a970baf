//! `netctl run` end to end: real containers from a busybox root filesystem on netd
//! networks, attached and detached, exec, stop, rm, and failures that leave nothing.

use std::process::Command;

use netd_tests::{bin, bridge_of, bridge_ports, first_address, require_root, Daemon};

fn rootfs(d: &Daemon) -> String {
    let dir = d.dir.path().join("rootfs");
    let o = Command::new(bin("netctl"))
        .args(["rootfs", "busybox"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.to_string_lossy().into_owned()
}

fn netctl(d: &Daemon, args: &[&str]) -> std::process::Output {
    d.netctl(args).unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn run_rm_attached_shows_its_world() {
    if !require_root("run_rm_attached_shows_its_world") {
        return;
    }
    let d = Daemon::start().unwrap();
    let fs = rootfs(&d);
    let n = d.json(&["network", "create", "n1"]).unwrap();
    let subnet = n["subnets"][0]["subnet"].as_str().unwrap().to_string();
    let prefix = subnet.rsplitn(2, '.').nth(1).unwrap().to_string();
    let o = netctl(
        &d,
        &[
            "run",
            "--rm",
            "--name",
            "c1",
            "--network",
            "n1",
            &fs,
            "/bin/sh",
            "-c",
            "hostname; ip addr; cat /etc/resolv.conf; echo pid=$$; cat /proc/mounts",
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.lines().next() == Some("c1"),
        "hostname is the container name: {out}"
    );
    assert!(
        out.contains("eth0") && out.contains(&format!("inet {prefix}.")),
        "eth0 with an address from {subnet}: {out}"
    );
    assert!(
        out.contains("nameserver 127.0.0.11") && out.contains("ndots:0"),
        "netd's resolv.conf: {out}"
    );
    assert!(out.contains("pid=1"), "PID 1 is the command: {out}");
    assert!(
        !out.contains("/work") && !out.contains(" /boot"),
        "host mounts invisible: {out}"
    );
    // --rm: nothing is left, the address is free again.
    let ps = d.json(&["ps", "-a"]).unwrap();
    assert_eq!(ps.as_array().unwrap().len(), 0, "{ps}");
    assert!(d
        .json(&["sandbox", "ls"])
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    // Exit status is netctl's exit status.
    let o = netctl(
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "n1",
            &fs,
            "/bin/sh",
            "-c",
            "exit 3",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[test]
fn detached_containers_ping_exec_stop_rm() {
    if !require_root("detached_containers_ping_exec_stop_rm") {
        return;
    }
    let d = Daemon::start().unwrap();
    let fs = rootfs(&d);
    d.ok(&["network", "create", "n2"]).unwrap();
    let br = bridge_of(&d, "n2");
    let mut ips = vec![];
    for name in ["a", "b"] {
        let v = d
            .json(&[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "n2",
                &fs,
                "/bin/sleep",
                "1000",
            ])
            .unwrap();
        assert_eq!(v["state"], "running", "{v}");
        let ip = first_address(&v["sandbox"]["endpoints"][0]);
        ips.push(ip);
    }
    let o = netctl(&d, &["exec", "a", "ping", "-c", "1", "-W", "3", &ips[1]]);
    assert!(o.status.success(), "a pings b by address: {}", text(&o));
    let o = netctl(&d, &["exec", "b", "ping", "-c", "1", "-W", "3", &ips[0]]);
    assert!(o.status.success(), "b pings a by address: {}", text(&o));
    let o = netctl(&d, &["exec", "a", "hostname"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "a",
        "exec reaches inside"
    );
    let o = netctl(&d, &["exec", "a", "sh", "-c", "ps -o pid,comm | grep -w 1"]);
    assert!(
        text(&o).contains("sleep"),
        "exec is in the container's PID namespace: {}",
        text(&o)
    );
    let ps = d.ok(&["ps"]).unwrap();
    assert!(ps.contains(" a ") || ps.contains("a "), "{ps}");
    let pids: Vec<i64> = d
        .json(&["ps"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pid"].as_i64().unwrap())
        .collect();
    d.ok(&["stop", "-t", "1", "a", "b"]).unwrap();
    let all = d.json(&["ps", "-a"]).unwrap();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|c| c["state"] == "exited"),
        "{all}"
    );
    assert!(
        d.json(&["sandbox", "ls"])
            .unwrap()
            .as_array()
            .unwrap()
            .is_empty(),
        "networking released on exit"
    );
    d.ok(&["rm", "a", "b"]).unwrap();
    // A detached container's output is kept in its log.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lg",
        "--network",
        "n2",
        &fs,
        "/bin/sh",
        "-c",
        "echo hello-from-logs",
    ])
    .unwrap();
    let t0 = std::time::Instant::now();
    while d.json(&["inspect", "lg"]).unwrap()[0]["state"] != "exited" {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "lg did not exit"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(d.ok(&["logs", "lg"]).unwrap().contains("hello-from-logs"));
    d.ok(&["rm", "lg"]).unwrap();
    assert!(d
        .json(&["ps", "-a"])
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    for p in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists(),
            "process {p} is gone"
        );
    }
    let left = bridge_ports(&br);
    assert!(left.is_empty(), "veths left on {br}: {left:?}");
    let netns = std::fs::read_dir(d.exec_root.join("netns"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(netns, 0, "namespaces left");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(d.dir.path().to_str().unwrap()),
        "mounts left: {mounts}"
    );
    // The addresses are free again: a new container may take one of them.
    let n = d.json(&["network", "inspect", "n2"]).unwrap();
    assert!(n[0]["endpoints"].as_array().unwrap().is_empty());
}

#[test]
fn failures_leave_nothing_behind() {
    if !require_root("failures_leave_nothing_behind") {
        return;
    }
    let d = Daemon::start().unwrap();
    let fs = rootfs(&d);
    d.ok(&["network", "create", "n3"]).unwrap();
    let br = bridge_of(&d, "n3");
    // A command that fails: its status comes back.
    let o = netctl(&d, &["run", "--rm", "--network", "n3", &fs, "/bin/false"]);
    assert_eq!(o.status.code(), Some(1));
    // A command that does not exist: a clear error.
    let o = netctl(&d, &["run", "--rm", "--network", "n3", &fs, "/bin/nosuch"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("/bin/nosuch") && text(&o).contains("No such file"),
        "{}",
        text(&o)
    );
    // A missing rootfs.
    let o = netctl(
        &d,
        &["run", "--network", "n3", "/nonexistent/rootfs", "/bin/true"],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/rootfs"), "{}", text(&o));
    // Bad flags.
    let o = netctl(
        &d,
        &["run", "-p", "notaport", "--network", "n3", &fs, "/bin/true"],
    );
    assert!(
        !o.status.success() && text(&o).contains("invalid port mapping"),
        "{}",
        text(&o)
    );
    let o = netctl(&d, &["run", "--network", "nosuchnet", &fs, "/bin/true"]);
    assert!(
        !o.status.success() && text(&o).contains("no such network"),
        "{}",
        text(&o)
    );
    let o = netctl(&d, &["run", "--bogus-flag", &fs, "/bin/true"]);
    assert!(!o.status.success());
    // Nothing left.
    assert!(d
        .json(&["ps", "-a"])
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    assert!(d
        .json(&["sandbox", "ls"])
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    let left = bridge_ports(&br);
    assert!(left.is_empty(), "veths left on {br}: {left:?}");
}
