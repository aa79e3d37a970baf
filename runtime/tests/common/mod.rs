//! Shared helpers for the root-only integration tests: skip when not root, throwaway
//! network namespaces and host mounts with Drop guards, busybox rootfs, output capture.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use runtime::{ContainerSpec, ExitStatus, Stdio};

pub fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: runtime integration tests need root");
    false
}

pub fn sh(cmd: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .expect("run sh");
    assert!(st.success(), "command failed: {cmd}");
}

/// `ip netns add NAME`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(test: &str) -> Self {
        let name = format!("rt-{test}-{}", std::process::id());
        sh(&format!("ip netns add {name}"));
        Netns { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A tmpfs mounted on the host (source name `marker`), unmounted on drop.
pub struct HostMount {
    pub dir: tempfile::TempDir,
}

impl HostMount {
    pub fn tmpfs(marker: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        sh(&format!("mount -t tmpfs {marker} {}", dir.path().display()));
        HostMount { dir }
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A busybox rootfs in a fresh temp dir.
pub fn busybox_rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    runtime::rootfs::busybox(dir.path()).expect("build busybox rootfs");
    dir
}

/// A pipe: (read end, Stdio with stdout and stderr on the write end).
pub fn capture() -> (File, Stdio) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let w2: OwnedFd = w.try_clone().unwrap();
    (File::from(r), Stdio::new(None, w, w2))
}

pub fn spec(rootfs: &Path, script: &str, stdio: Stdio) -> ContainerSpec {
    ContainerSpec::new(
        "t",
        rootfs,
        vec!["/bin/sh".into(), "-c".into(), script.into()],
        stdio,
    )
}

/// Spawn, read all output, wait.
pub fn run(f: impl FnOnce(Stdio) -> ContainerSpec) -> (ExitStatus, String) {
    let (mut r, stdio) = capture();
    let c = runtime::spawn(f(stdio)).expect("spawn");
    let mut out = String::new();
    r.read_to_string(&mut out).unwrap();
    (c.wait().unwrap(), out)
}

pub fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}
