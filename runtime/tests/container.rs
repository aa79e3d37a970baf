//! Root-only tests of spawn: namespaces, mounts, files, exit statuses, networking.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;

use common::*;
use runtime::{ExitStatus, Signal};

#[test]
fn container_sees_its_own_world() {
    if !is_root() {
        return;
    }
    let root = busybox_rootfs();
    let ns = Netns::new("world");
    let marker = format!("rtmarker{}", std::process::id());
    let _host_marker = HostMount::tmpfs(&marker);
    let etc = tempfile::tempdir().unwrap();
    let resolv = etc.path().join("resolv.conf");
    let hosts = etc.path().join("hosts");
    std::fs::write(&resolv, "nameserver 10.99.0.1\nsearch netd.test\n").unwrap();
    std::fs::write(&hosts, "10.99.0.7 web.netd.test\n").unwrap();

    let script = "echo pid=$$; echo host=$(hostname); cat /etc/resolv.conf /etc/hosts; \
                  echo ls=$(ls / | tr '\\n' ' '); mount; \
                  echo hi > /tmp/f && echo tmp=$(cat /tmp/f); \
                  touch /sys/x 2>/dev/null || echo sys=ro; \
                  ls /dev | tr '\\n' ' '; echo; echo cwd=$(pwd); \
                  echo fds=$(ls /proc/self/fd | tr '\\n' ' ')";
    let (status, out) = run(|stdio| {
        let mut s = spec(root.path(), script, stdio);
        s.hostname = "box1".into();
        s.netns_path = Some(ns.path());
        s.resolv_file = Some(resolv.clone());
        s.hosts_file = Some(hosts.clone());
        s.cwd = Some("/tmp".into());
        s
    });
    println!("{out}");
    assert_eq!(status, ExitStatus::Exited(0), "{out}");
    assert!(out.starts_with("pid=1\n"), "{out}");
    assert!(out.contains("host=box1\n"), "{out}");
    assert!(
        out.contains("nameserver 10.99.0.1\nsearch netd.test\n"),
        "{out}"
    );
    assert!(out.contains("10.99.0.7 web.netd.test\n"), "{out}");
    let ls = out.lines().find(|l| l.starts_with("ls=")).unwrap();
    let entries: Vec<&str> = ls["ls=".len()..].split_whitespace().collect();
    assert!(
        entries.contains(&"bin") && entries.contains(&"proc"),
        "{ls}"
    );
    assert!(!entries.contains(&"work"), "host root visible: {ls}");
    assert!(
        !out.contains(&marker),
        "host mount leaked into the container:\n{out}"
    );
    assert!(out.contains("on /sys type sysfs (ro,"), "{out}");
    assert!(
        out.contains("tmp=hi\n") && out.contains("sys=ro\n"),
        "{out}"
    );
    let dev = out
        .lines()
        .find(|l| l.contains("urandom"))
        .expect("ls /dev line");
    let dev: Vec<&str> = dev.split_whitespace().collect();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd",
    ] {
        assert!(dev.contains(&d), "missing /dev/{d}: {dev:?}");
    }
    assert!(out.contains("cwd=/tmp\n"), "{out}");
    // No daemon fd leaks in (3 is ls's own directory fd); signals start clean even
    // though the test harness ignores SIGPIPE.
    assert!(out.contains("fds=0 1 2 3\n"), "{out}");
    let (st, out) = run(|stdio| {
        let mut s = spec(root.path(), "", stdio);
        s.argv = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]
            .map(String::from)
            .to_vec();
        s
    });
    assert_eq!(st, ExitStatus::Exited(0), "{out}");
    assert_eq!(
        out,
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
    // Nothing of the container's mount tree shows up on the host.
    let root_path = root.path().to_str().unwrap();
    assert!(
        !host_mountinfo().contains(root_path),
        "container mount leaked to the host"
    );
}

#[test]
fn exit_codes_and_signals() {
    if !is_root() {
        return;
    }
    let root = busybox_rootfs();
    let (st, _) = run(|stdio| spec(root.path(), "exit 3", stdio));
    assert_eq!(st, ExitStatus::Exited(3));
    assert_eq!(st.code(), Some(3));

    let c = runtime::spawn(spec(
        root.path(),
        "exec sleep 1000",
        runtime::Stdio::null().unwrap(),
    ))
    .unwrap();
    assert_eq!(c.try_wait().unwrap(), None);
    c.kill(Signal::SIGKILL).unwrap();
    let st = c.wait().unwrap();
    assert_eq!(st, ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(st.to_string(), "killed by SIGKILL");
    assert_eq!(c.wait().unwrap(), st, "status is remembered");

    // PID 1 with a handler gets SIGTERM from outside.
    let (r, stdio) = capture();
    let c = runtime::spawn(spec(
        root.path(),
        "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        stdio,
    ))
    .unwrap();
    let mut line = String::new();
    BufReader::new(r).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    c.kill(Signal::SIGTERM).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Exited(7));
}

#[test]
fn joins_the_given_network_namespace() {
    if !is_root() {
        return;
    }
    let root = busybox_rootfs();
    let ns = Netns::new("net");
    let n = &ns.name;
    sh(&format!(
        "ip -n {n} link add rtva type veth peer name rtvb && ip -n {n} addr add 10.201.7.2/24 dev rtva \
         && ip -n {n} link set rtva up && ip -n {n} link set lo up"
    ));
    let (st, out) = run(|stdio| {
        let mut s = spec(
            root.path(),
            "ip addr; echo sys=$(ls /sys/class/net | tr '\\n' ' ')",
            stdio,
        );
        s.netns_path = Some(ns.path());
        s
    });
    println!("{out}");
    assert_eq!(st, ExitStatus::Exited(0), "{out}");
    assert!(out.contains("inet 10.201.7.2/24"), "{out}");
    assert!(out.contains("rtva") && out.contains("lo:"), "{out}");
    // A fresh sysfs lists the namespace's devices, not the host's.
    let sys = out.lines().find(|l| l.starts_with("sys=")).unwrap();
    assert_eq!(sys.trim_end(), "sys=lo rtva rtvb", "{out}");
}

#[test]
fn host_network_when_no_netns() {
    if !is_root() {
        return;
    }
    let root = busybox_rootfs();
    let (st, out) = run(|stdio| spec(root.path(), "readlink /proc/1/ns/net", stdio));
    assert_eq!(st, ExitStatus::Exited(0), "{out}");
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(out.trim(), host.to_str().unwrap());
}

#[test]
fn exec_in_enters_every_namespace() {
    if !is_root() {
        return;
    }
    let root = busybox_rootfs();
    let ns = Netns::new("exec");
    let c = runtime::spawn({
        let mut s = spec(
            root.path(),
            "echo inside > /tmp/mark; exec sleep 1000",
            runtime::Stdio::null().unwrap(),
        );
        s.hostname = "exec-host".into();
        s.netns_path = Some(ns.path());
        s
    })
    .unwrap();
    // Wait until PID 1 has written its marker in the container's /tmp.
    let script = "hostname; ps; cat /tmp/mark; readlink /proc/self/ns/net; pwd";
    let mut out = String::new();
    for _ in 0..100 {
        let (mut r, stdio) = capture();
        let mut e = runtime::ExecSpec::new(vec!["sh".into(), "-c".into(), script.into()], stdio);
        e.cwd = Some("/tmp".into());
        let p = runtime::exec_in(c.pid, e).unwrap();
        out.clear();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(p.wait().unwrap(), ExitStatus::Exited(0), "{out}");
        if out.contains("inside") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    println!("{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("exec-host"));
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().next() == Some("1") && l.contains("sleep 1000")),
        "{out}"
    );
    assert!(out.contains("inside\n"), "{out}");
    let netns = std::fs::read_link(ns.path()).ok();
    let inode = std::fs::metadata(ns.path())
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap();
    assert!(out.contains(&format!("net:[{inode}]")), "{out} {netns:?}");
    assert!(out.ends_with("/tmp\n"), "{out}");

    // Container::exec does the same through the pidfd-guarded path.
    let (mut r, stdio) = capture();
    let p = c
        .exec(runtime::ExecSpec::new(vec!["hostname".into()], stdio))
        .unwrap();
    let mut h = String::new();
    r.read_to_string(&mut h).unwrap();
    assert_eq!(p.wait().unwrap(), ExitStatus::Exited(0));
    assert_eq!(h, "exec-host\n");
    // Exec failures are reported like spawn's.
    let err = c
        .exec(runtime::ExecSpec::new(
            vec!["nosuch".into()],
            runtime::Stdio::null().unwrap(),
        ))
        .unwrap_err();
    assert_eq!(err.to_string(), "exec nosuch: No such file or directory");

    c.kill(Signal::SIGKILL).unwrap();
    assert_eq!(c.wait().unwrap(), ExitStatus::Signaled(9));
    // Once PID 1 is gone, exec is refused.
    assert!(c
        .exec(runtime::ExecSpec::new(
            vec!["true".into()],
            runtime::Stdio::null().unwrap()
        ))
        .is_err());
    let _ = c.pidfd().as_fd();
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_async_on_pidfd() {
    if !is_root() {
        return;
    }
    // As the daemon would: build and spawn on the blocking pool, await exit on the pidfd.
    let c = tokio::task::spawn_blocking(|| {
        let root = busybox_rootfs();
        let c = runtime::spawn(spec(
            root.path(),
            "sleep 0.2; exit 5",
            runtime::Stdio::null().unwrap(),
        ));
        (root, c)
    })
    .await
    .unwrap();
    let (_root, c) = (c.0, c.1.unwrap());
    let st = tokio::time::timeout(std::time::Duration::from_secs(10), c.wait_async())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st, ExitStatus::Exited(5));
    assert_eq!(c.wait_async().await.unwrap(), st);
}
