//! Starting containers and joining them: [`spawn`] and [`exec_in`].
//!
//! Design (why not `std::process::Command` + `pre_exec`): `unshare(CLONE_NEWPID)` only
//! affects the caller's *children*, so with `Command` the user's command would need a
//! second fork and would not be our child (no waitpid, no pidfd from clone). Instead we
//! call `clone3(CLONE_NEWNS|NEWUTS|NEWIPC|NEWPID|CLONE_PIDFD)` ourselves, with fork
//! semantics (no separate stack): the child is PID 1 of its new PID namespace, a direct
//! child of the caller, and we get a race-free pidfd. The child then joins the network
//! namespace with `setns` (a single-threaded process may do that), builds its mount tree
//! and execs the command, which stays PID 1.
//!
//! Everything the child needs is computed before `clone` (`plan.rs`); the child only
//! issues raw syscalls (`child.rs`), which is safe in a multithreaded tokio daemon.
//! Setup failures come back over a close-on-exec pipe as (step, errno).
//!
//! `spawn` blocks the calling thread until the child has exec'd (a few milliseconds);
//! async callers should run it in `spawn_blocking`.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use tracing::{debug, info};

use crate::child::{self, ExecArgs};
use crate::error::{Error, Result};
use crate::plan::{self, ContainerInput, ExecInput, Plan, StdioFds};
use crate::process::{Container, Process};
use crate::spec::{ContainerSpec, ExecSpec, Stdio};
use crate::sys::{self, Cloned, SignalsBlocked};

/// Stdio fds duplicated to numbers >= 3 (owned until the child has its copies).
struct HighStdio {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl HighStdio {
    fn new(s: &Stdio) -> Result<Self> {
        let null;
        let stdin = match &s.stdin {
            Some(fd) => fd.as_fd(),
            None => {
                null = File::open("/dev/null").map_err(|e| Error::io("open /dev/null", e))?;
                null.as_fd()
            }
        };
        let dup = |fd: BorrowedFd<'_>| sys::dup_high(fd).map_err(|e| Error::sys("dup stdio fd", e));
        Ok(HighStdio {
            stdin: dup(stdin)?,
            stdout: dup(s.stdout.as_fd())?,
            stderr: dup(s.stderr.as_fd())?,
        })
    }

    fn fds(&self) -> StdioFds {
        StdioFds {
            stdin: self.stdin.as_raw_fd(),
            stdout: self.stdout.as_raw_fd(),
            stderr: self.stderr.as_raw_fd(),
        }
    }
}

fn open_high(path: &Path, what: &str) -> Result<OwnedFd> {
    let f =
        File::open(path).map_err(|e| Error::io(format!("open {what} {}", path.display()), e))?;
    sys::dup_high(f.as_fd()).map_err(|e| Error::sys(format!("dup {what}"), e))
}

/// Create `p` as a directory unless it is one; refuse symlinks (a mount on a symlink
/// would follow it out of the rootfs).
fn ensure_dir(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.file_type().is_symlink() => Err(Error::Rootfs {
            path: p.into(),
            reason: "is a symlink, refusing to mount on it".into(),
        }),
        Ok(_) => Err(Error::Rootfs {
            path: p.into(),
            reason: "exists and is not a directory".into(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match fs::DirBuilder::new().mode(0o755).create(p) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                    Err(Error::io(format!("mkdir {}", p.display()), e))
                }
                _ => Ok(()),
            }
        }
        Err(e) => Err(Error::io(format!("stat {}", p.display()), e)),
    }
}

/// Create `p` as an empty regular file unless it is one; refuse symlinks.
fn ensure_file(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Error::Rootfs {
            path: p.into(),
            reason: "bind target is not a regular file".into(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => match File::create_new(p) {
            Err(e) if e.kind() != ErrorKind::AlreadyExists => {
                Err(Error::io(format!("create {}", p.display()), e))
            }
            _ => Ok(()),
        },
        Err(e) => Err(Error::io(format!("stat {}", p.display()), e)),
    }
}

/// Make sure every mount point exists in the rootfs (created on the host side, before
/// clone, so the child does no file-system surgery).
fn prepare_rootfs(root: &Path, binds: &[(PathBuf, &'static str)]) -> Result<()> {
    for d in ["proc", "dev", "sys", "tmp", "etc"] {
        ensure_dir(&root.join(d))?;
    }
    for (_, target) in binds {
        ensure_file(&root.join(target.trim_start_matches('/')))?;
    }
    Ok(())
}

fn check_rootfs(rootfs: &Path) -> Result<PathBuf> {
    match fs::canonicalize(rootfs) {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(_) => Err(Error::RootfsMissing {
            path: rootfs.into(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::RootfsMissing {
            path: rootfs.into(),
        }),
        Err(e) => Err(Error::io(format!("rootfs {}", rootfs.display()), e)),
    }
}

/// Parent side after clone: close our write end, read the child's report, and on
/// failure reap the child so nothing is left behind.
fn await_exec(
    pid: i32,
    pidfd: OwnedFd,
    read: OwnedFd,
    write: OwnedFd,
    plan: &Plan,
) -> Result<Process> {
    drop(write);
    let proc_ = Process::new(pid, pidfd);
    match sys::read_report(read) {
        Ok(None) => Ok(proc_),
        Ok(Some((idx, errno))) => {
            let _ = proc_.wait();
            let step = plan
                .steps
                .get(idx)
                .map_or_else(|| format!("step {idx}"), |s| s.what.clone());
            Err(Error::Setup {
                step,
                errno: Errno::from_raw(errno),
            })
        }
        Err(e) => {
            let _ = proc_.kill(nix::sys::signal::Signal::SIGKILL);
            let _ = proc_.wait();
            Err(Error::io("read child setup report", e))
        }
    }
}

/// Clone a child that runs `plan`; `ns_flags` are the CLONE_NEW* namespaces to create.
fn clone_and_exec(plan: &Plan, ns_flags: libc::c_int) -> Result<Process> {
    let (read, write) = sys::error_pipe().map_err(|e| Error::sys("pipe", e))?;
    let args = ExecArgs::new(plan);
    let blocked = SignalsBlocked::new().map_err(|e| Error::sys("block signals", e))?;
    // SAFETY: the child branch only runs `child::run`, which performs raw syscalls on
    // memory prepared above and never returns.
    match unsafe { sys::clone_pidfd(ns_flags) } {
        Ok(Cloned::Child) => unsafe { child::run(plan, &args, write.as_raw_fd()) },
        Ok(Cloned::Parent { pid, pidfd }) => {
            drop(blocked);
            await_exec(pid, pidfd, read, write, plan)
        }
        Err(e) => Err(Error::sys("clone3", e)),
    }
}

/// Start a container: PID 1 of new mount, UTS, IPC and PID namespaces, in the given
/// network namespace (or the host's), with `spec.rootfs` as its root.
///
/// Returns once the command has been exec'd; setup or exec failures are returned as
/// [`Error::Setup`] (e.g. `exec /bin/nosuch: No such file or directory`) and leave no
/// process or mount behind.
pub fn spawn(spec: ContainerSpec) -> Result<Container> {
    let ContainerSpec {
        id,
        rootfs,
        argv,
        env,
        cwd,
        hostname,
        netns_path,
        hosts_file,
        resolv_file,
        hostname_file,
        stdio,
    } = spec;
    if hostname.is_empty() || hostname.len() > 64 {
        return Err(Error::InvalidSpec(format!(
            "hostname {hostname:?} must be 1 to 64 bytes"
        )));
    }
    let root = check_rootfs(&rootfs)?;
    let mut binds = Vec::new();
    for (file, target) in [
        (hosts_file, "/etc/hosts"),
        (resolv_file, "/etc/resolv.conf"),
        (hostname_file, "/etc/hostname"),
    ] {
        if let Some(f) = file {
            let m = fs::metadata(&f)
                .map_err(|e| Error::io(format!("{target} source {}", f.display()), e))?;
            if !m.is_file() {
                return Err(Error::InvalidSpec(format!(
                    "{target} source {} is not a file",
                    f.display()
                )));
            }
            binds.push((f, target));
        }
    }
    prepare_rootfs(&root, &binds)?;
    let netns = netns_path
        .as_deref()
        .map(|p| open_high(p, "netns"))
        .transpose()?;
    let fds = HighStdio::new(&stdio)?;
    let plan = plan::container_plan(&ContainerInput {
        rootfs: &root,
        netns_fd: netns.as_ref().map(|f| f.as_raw_fd()),
        hostname: &hostname,
        binds,
        stdio: fds.fds(),
        cwd: cwd.as_deref(),
        argv: &argv,
        env: &env,
    })?;
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
    let process = clone_and_exec(&plan, flags)
        .inspect_err(|e| debug!(%id, error = %e, "container start failed"))?;
    info!(%id, pid = process.pid(), rootfs = %root.display(), "container started");
    Ok(Container {
        id,
        pid: process.pid(),
        process,
    })
}

/// Start a process inside the running container whose PID 1 has host pid `pid`, like
/// `nsenter -t PID -i -u -n -m -p -r`: it joins the IPC, UTS, network, mount and PID
/// namespaces and the container's root. The returned process is a child of the caller.
///
/// Prefer [`Container::exec`], which also guards against pid reuse.
pub fn exec_in(pid: i32, spec: ExecSpec) -> Result<Process> {
    exec_into(pid, None, spec)
}

pub(crate) fn exec_into(
    pid: i32,
    guard: Option<BorrowedFd<'_>>,
    spec: ExecSpec,
) -> Result<Process> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let ns = |name: &str| open_high(&proc_dir.join("ns").join(name), "namespace");
    let (ipc, uts, net, mnt, pidns) = (ns("ipc")?, ns("uts")?, ns("net")?, ns("mnt")?, ns("pid")?);
    let root = open_high(&proc_dir.join("root"), "container root")?;
    if let Some(pidfd) = guard {
        // The fds above were opened by pid; make sure it is still the same process.
        sys::pidfd_send_signal(pidfd.as_raw_fd(), 0)
            .map_err(|e| Error::sys(format!("container pid {pid}"), e))?;
    }
    let fds = HighStdio::new(&spec.stdio)?;
    let plan = plan::exec_plan(&ExecInput {
        ns_fds: vec![
            (ipc.as_raw_fd(), libc::CLONE_NEWIPC, "ipc"),
            (uts.as_raw_fd(), libc::CLONE_NEWUTS, "uts"),
            (net.as_raw_fd(), libc::CLONE_NEWNET, "net"),
            (mnt.as_raw_fd(), libc::CLONE_NEWNS, "mnt"),
        ],
        root_fd: root.as_raw_fd(),
        stdio: fds.fds(),
        cwd: spec.cwd.as_deref(),
        argv: &spec.argv,
        env: &spec.env,
    })?;
    // setns(CLONE_NEWPID) only moves the caller's future children, and it sticks to the
    // calling thread; do it on a short-lived thread so the caller's threads are
    // untouched, and clone from there: the child lands in the container's PID namespace
    // and is still a child of this process (waitable from any thread).
    let process = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&pidns, nix::sched::CloneFlags::CLONE_NEWPID)
                .map_err(|e| Error::sys("setns pid namespace", e))?;
            clone_and_exec(&plan, 0)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::InvalidSpec("exec helper thread panicked".into())))
    })?;
    info!(container_pid = pid, pid = process.pid(), argv0 = %spec.argv[0], "exec in container");
    Ok(process)
}
