//! The container setup as data: an ordered list of syscalls the child will run.
//!
//! Everything that allocates (paths, C strings, PATH candidates, error descriptions) is
//! built here, in the parent, before `clone`. The child (`child.rs`) only walks the list
//! and issues raw syscalls, which keeps it async-signal-safe inside a multithreaded
//! daemon. Building the plan is pure, so its order is unit-tested without root.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use libc::{c_int, c_ulong, dev_t, mode_t};

use crate::error::{Error, Result};

/// PATH used when the environment does not set one (same as Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Device nodes created in the container's `/dev` tmpfs: (name, major, minor).
pub(crate) const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// One syscall (or a tiny fixed group of them) run by the child.
#[derive(Debug, PartialEq)]
pub(crate) enum Op {
    /// Reset every signal disposition to default and unblock all signals.
    ResetSignals,
    /// Mark every fd >= 3 close-on-exec (close_range), so no daemon fd leaks in.
    CloexecFrom3,
    /// `setns(fd, nstype)`.
    SetNs { fd: RawFd, nstype: c_int },
    /// `umask(mask)`.
    Umask(mode_t),
    /// `mount(source, target, fstype, flags, data)`.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// Run the ops of `first`; if one fails, run every op of `fallback` instead
    /// (an empty fallback makes `first` optional).
    Either { first: Vec<Op>, fallback: Vec<Op> },
    /// `mkdir(path, mode)`; EEXIST is fine.
    Mkdir { path: CString, mode: mode_t },
    /// `mknod(path, S_IFCHR | mode, dev)`.
    Mknod {
        path: CString,
        mode: mode_t,
        dev: dev_t,
    },
    /// `symlink(target, link)`.
    Symlink { target: CString, link: CString },
    /// `chdir(root); pivot_root(".", "."); umount2(".", MNT_DETACH); chdir("/")`.
    PivotRoot { root: CString },
    /// `fchdir(fd); chroot(".")`: adopt a root directory held by an fd.
    ChrootFd(RawFd),
    /// `sethostname(name)`.
    Sethostname(CString),
    /// `setsid()`.
    Setsid,
    /// `dup2(from, to)`; `from` is always >= 3 so it never equals `to`.
    Dup2 { from: RawFd, to: RawFd },
    /// `chdir(path)`.
    Chdir(CString),
    /// `execve` each candidate in turn, like execvpe (argv/envp live in the [`Plan`]).
    Exec { candidates: Vec<CString> },
}

/// An [`Op`] plus the description reported if it fails.
#[derive(Debug)]
pub(crate) struct Step {
    pub op: Op,
    pub what: String,
}

/// Everything the child needs, fully allocated.
#[derive(Debug)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
}

/// The fds the child starts from; all are >= 3 (see `sys::dup_high`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StdioFds {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// Inputs of [`container_plan`], already validated by the caller.
#[derive(Debug)]
pub(crate) struct ContainerInput<'a> {
    pub rootfs: &'a Path,
    pub netns_fd: Option<RawFd>,
    pub hostname: &'a str,
    /// (host file, absolute path inside the container), e.g. ("/run/x/hosts", "/etc/hosts").
    pub binds: Vec<(PathBuf, &'static str)>,
    pub stdio: StdioFds,
    pub cwd: Option<&'a str>,
    pub argv: &'a [String],
    pub env: &'a [String],
}

/// Inputs of [`exec_plan`]: fds of the target's namespaces and root.
#[derive(Debug)]
pub(crate) struct ExecInput<'a> {
    /// (fd, CLONE_NEW*) for ipc, uts, net, mnt, in that order.
    pub ns_fds: Vec<(RawFd, c_int, &'static str)>,
    pub root_fd: RawFd,
    pub stdio: StdioFds,
    pub cwd: Option<&'a str>,
    pub argv: &'a [String],
    pub env: &'a [String],
}

pub(crate) fn cstr(s: impl AsRef<[u8]>, what: &str) -> Result<CString> {
    CString::new(s.as_ref()).map_err(|_| Error::InvalidSpec(format!("{what} contains a NUL byte")))
}

fn path_c(p: &Path) -> Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    cstr(p.as_os_str().as_bytes(), &p.display().to_string())
}

/// `root` joined with an absolute in-container path.
fn inside(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// The execve candidates for `argv0`: itself if it contains a `/`, else each PATH entry.
pub(crate) fn exec_candidates(argv0: &str, env: &[String]) -> Result<Vec<CString>> {
    if argv0.is_empty() {
        return Err(Error::InvalidSpec("empty argv[0]".into()));
    }
    if argv0.contains('/') {
        return Ok(vec![cstr(argv0, "argv[0]")?]);
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|dir| {
            let dir = if dir.is_empty() {
                "."
            } else {
                dir.trim_end_matches('/')
            };
            cstr(format!("{dir}/{argv0}"), "PATH entry")
        })
        .collect()
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: c_ulong,
    data: Option<&str>,
) -> Result<Op> {
    Ok(Op::Mount {
        source: source.map(path_c).transpose()?,
        target: path_c(target)?,
        fstype: fstype.map(|f| cstr(f, "fstype")).transpose()?,
        flags,
        data: data.map(|d| cstr(d, "mount data")).transpose()?,
    })
}

/// Bind `source` on `target` (recursively) then make the bind read-only.
fn bind_ro(source: &Path, target: &Path) -> Result<Vec<Op>> {
    Ok(vec![
        mount(
            Some(source),
            target,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?,
        mount(
            None,
            target,
            None,
            libc::MS_BIND
                | libc::MS_REMOUNT
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
            None,
        )?,
    ])
}

/// Steps shared by containers and execs once the process sits in the right root.
fn finish(
    steps: &mut Vec<Step>,
    stdio: StdioFds,
    cwd: Option<&str>,
    argv: &[String],
    env: &[String],
) -> Result<()> {
    steps.push(Step {
        op: Op::Setsid,
        what: "setsid".into(),
    });
    for (from, to) in [(stdio.stdin, 0), (stdio.stdout, 1), (stdio.stderr, 2)] {
        steps.push(Step {
            op: Op::Dup2 { from, to },
            what: format!("dup2 stdio fd {to}"),
        });
    }
    let cwd = cwd.unwrap_or("/");
    steps.push(Step {
        op: Op::Chdir(cstr(cwd, "cwd")?),
        what: format!("chdir {cwd}"),
    });
    steps.push(Step {
        op: Op::Exec {
            candidates: exec_candidates(&argv[0], env)?,
        },
        what: format!("exec {}", argv[0]),
    });
    Ok(())
}

fn args(argv: &[String], env: &[String]) -> Result<(Vec<CString>, Vec<CString>)> {
    if argv.is_empty() {
        return Err(Error::InvalidSpec("empty argv".into()));
    }
    let a = argv
        .iter()
        .map(|s| cstr(s, "argv"))
        .collect::<Result<_>>()?;
    let e = env.iter().map(|s| cstr(s, "env")).collect::<Result<_>>()?;
    Ok((a, e))
}

/// The plan for a new container: join the netns, build the mount tree under the rootfs,
/// pivot into it, set the hostname, wire stdio and exec.
pub(crate) fn container_plan(i: &ContainerInput<'_>) -> Result<Plan> {
    let (argv, env) = args(i.argv, i.env)?;
    let root = i.rootfs;
    let mut s: Vec<Step> = Vec::new();
    let mut push = |op: Op, what: String| s.push(Step { op, what });

    push(Op::ResetSignals, "reset signals".into());
    push(Op::CloexecFrom3, "close_range".into());
    // Join the network namespace first: /sys below is mounted from inside it, so its
    // class/net shows the container's interfaces.
    if let Some(fd) = i.netns_fd {
        push(
            Op::SetNs {
                fd,
                nstype: libc::CLONE_NEWNET,
            },
            "setns network namespace".into(),
        );
    }
    push(Op::Umask(0), "umask".into());
    // Nothing we mount below may propagate back to the host mount namespace.
    push(
        mount(
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?,
        "make / rprivate".into(),
    );
    // pivot_root needs the new root to be a mount point.
    push(
        mount(Some(root), root, None, libc::MS_BIND | libc::MS_REC, None)?,
        format!("bind rootfs {}", root.display()),
    );

    let proc_ = inside(root, "/proc");
    push(
        mount(
            Some(Path::new("proc")),
            &proc_,
            Some("proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )?,
        format!("mount proc on {}", proc_.display()),
    );
    // Like Docker: the container may not change kernel-wide settings. /proc/sys/net
    // is per network namespace, but it is read-only too (set sysctls from outside).
    let t = inside(root, "/proc/sys");
    for op in bind_ro(&t, &t)? {
        push(op, "read-only /proc/sys".into());
    }
    // Absent on kernels without CONFIG_MAGIC_SYSRQ, hence optional.
    let t = inside(root, "/proc/sysrq-trigger");
    push(
        Op::Either {
            first: bind_ro(&t, &t)?,
            fallback: vec![],
        },
        "read-only /proc/sysrq-trigger".into(),
    );

    let dev = inside(root, "/dev");
    push(
        mount(
            Some(Path::new("tmpfs")),
            &dev,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        )?,
        format!("mount tmpfs on {}", dev.display()),
    );
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        push(
            Op::Mknod {
                path: path_c(&p)?,
                mode: 0o666,
                dev: libc::makedev(major, minor),
            },
            format!("mknod {}", p.display()),
        );
    }
    for d in ["pts", "shm"] {
        let p = dev.join(d);
        push(
            Op::Mkdir {
                path: path_c(&p)?,
                mode: 0o755,
            },
            format!("mkdir {}", p.display()),
        );
    }
    let pts = dev.join("pts");
    push(
        mount(
            Some(Path::new("devpts")),
            &pts,
            Some("devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )?,
        format!("mount devpts on {}", pts.display()),
    );
    let shm = dev.join("shm");
    push(
        mount(
            Some(Path::new("shm")),
            &shm,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        )?,
        format!("mount tmpfs on {}", shm.display()),
    );
    for (target, link) in [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ] {
        let l = dev.join(link);
        push(
            Op::Symlink {
                target: cstr(target, "symlink")?,
                link: path_c(&l)?,
            },
            format!("symlink {}", l.display()),
        );
    }

    // A fresh sysfs (read-only) shows the joined netns's devices; if the kernel refuses
    // it, fall back to a read-only bind of the host's /sys.
    let sys = inside(root, "/sys");
    let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    push(
        Op::Either {
            first: vec![mount(
                Some(Path::new("sysfs")),
                &sys,
                Some("sysfs"),
                ro,
                None,
            )?],
            fallback: bind_ro(Path::new("/sys"), &sys)?,
        },
        format!("mount sysfs on {}", sys.display()),
    );

    let tmp = inside(root, "/tmp");
    push(
        mount(
            Some(Path::new("tmpfs")),
            &tmp,
            Some("tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some("mode=1777"),
        )?,
        format!("mount tmpfs on {}", tmp.display()),
    );
    for (host, target) in &i.binds {
        let t = inside(root, target);
        push(
            mount(Some(host), &t, None, libc::MS_BIND, None)?,
            format!("bind {} on {}", host.display(), t.display()),
        );
    }

    push(
        Op::PivotRoot {
            root: path_c(root)?,
        },
        format!("pivot_root {}", root.display()),
    );
    push(
        Op::Sethostname(cstr(i.hostname, "hostname")?),
        format!("sethostname {}", i.hostname),
    );
    push(Op::Umask(0o022), "umask".into());
    finish(&mut s, i.stdio, i.cwd, i.argv, i.env)?;
    Ok(Plan {
        steps: s,
        argv,
        env,
    })
}

/// The plan for a process joining a running container. The PID namespace is joined by
/// the thread that clones (see `spawn.rs`); the rest happens here, in the child.
pub(crate) fn exec_plan(i: &ExecInput<'_>) -> Result<Plan> {
    let (argv, env) = args(i.argv, i.env)?;
    let mut s = vec![
        Step {
            op: Op::ResetSignals,
            what: "reset signals".into(),
        },
        Step {
            op: Op::CloexecFrom3,
            what: "close_range".into(),
        },
    ];
    for &(fd, nstype, name) in &i.ns_fds {
        s.push(Step {
            op: Op::SetNs { fd, nstype },
            what: format!("setns {name}"),
        });
    }
    s.push(Step {
        op: Op::ChrootFd(i.root_fd),
        what: "chroot to container root".into(),
    });
    finish(&mut s, i.stdio, i.cwd, i.argv, i.env)?;
    Ok(Plan {
        steps: s,
        argv,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(argv: &'a [String], env: &'a [String]) -> ContainerInput<'a> {
        ContainerInput {
            rootfs: Path::new("/r"),
            netns_fd: Some(7),
            hostname: "h",
            binds: vec![(PathBuf::from("/host/resolv"), "/etc/resolv.conf")],
            stdio: StdioFds {
                stdin: 10,
                stdout: 11,
                stderr: 12,
            },
            cwd: Some("/work"),
            argv,
            env,
        }
    }

    fn index(p: &Plan, f: impl Fn(&Op) -> bool) -> usize {
        p.steps.iter().position(|s| f(&s.op)).expect("op present")
    }

    #[test]
    fn candidates_follow_path() {
        let env = vec!["PATH=/a:/b/:".to_string()];
        let c = exec_candidates("sh", &env).unwrap();
        assert_eq!(
            c,
            vec![
                cstr("/a/sh", "").unwrap(),
                cstr("/b/sh", "").unwrap(),
                cstr("./sh", "").unwrap()
            ]
        );
        assert_eq!(
            exec_candidates("/bin/x", &env).unwrap(),
            vec![cstr("/bin/x", "").unwrap()]
        );
        assert_eq!(
            exec_candidates("true", &[]).unwrap().len(),
            DEFAULT_PATH.split(':').count()
        );
        assert!(exec_candidates("", &[]).is_err());
    }

    #[test]
    fn container_plan_order() {
        let argv = vec!["sh".to_string(), "-c".into(), "x".into()];
        let p = container_plan(&input(&argv, &[])).unwrap();
        let setns = index(
            &p,
            |o| matches!(o, Op::SetNs { fd: 7, nstype } if *nstype == libc::CLONE_NEWNET),
        );
        let private = index(
            &p,
            |o| matches!(o, Op::Mount { flags, .. } if *flags == libc::MS_REC | libc::MS_PRIVATE),
        );
        let resolv = index(
            &p,
            |o| matches!(o, Op::Mount { target, .. } if target.to_bytes() == b"/r/etc/resolv.conf"),
        );
        let sys = index(
            &p,
            |o| matches!(o, Op::Either { fallback, .. } if !fallback.is_empty()),
        );
        let pivot = index(&p, |o| matches!(o, Op::PivotRoot { .. }));
        let host = index(&p, |o| matches!(o, Op::Sethostname(_)));
        let chdir = index(
            &p,
            |o| matches!(o, Op::Chdir(c) if c.to_bytes() == b"/work"),
        );
        let exec = p.steps.len() - 1;
        assert!(setns < private && private < resolv && resolv < pivot && sys < pivot);
        assert!(pivot < host && host < chdir && chdir < exec);
        assert!(matches!(p.steps[exec].op, Op::Exec { .. }));
        assert_eq!(p.steps[exec].what, "exec sh");
        // Every mount happens before pivot_root, i.e. on paths under the rootfs.
        for s in &p.steps[private + 1..pivot] {
            if let Op::Mount { target, .. } = &s.op {
                assert!(target.to_bytes().starts_with(b"/r"), "{:?}", s);
            }
        }
        assert_eq!(p.argv.len(), 3);
    }

    #[test]
    fn host_network_has_no_setns() {
        let argv = vec!["true".to_string()];
        let mut i = input(&argv, &[]);
        i.netns_fd = None;
        let p = container_plan(&i).unwrap();
        assert!(!p.steps.iter().any(|s| matches!(s.op, Op::SetNs { .. })));
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(
            container_plan(&input(&[], &[])),
            Err(Error::InvalidSpec(_))
        ));
        let argv = vec!["a\0b".to_string()];
        assert!(matches!(
            container_plan(&input(&argv, &[])),
            Err(Error::InvalidSpec(_))
        ));
    }

    #[test]
    fn exec_plan_enters_then_chroots() {
        let argv = vec!["ps".to_string()];
        let p = exec_plan(&ExecInput {
            ns_fds: vec![
                (3, libc::CLONE_NEWIPC, "ipc"),
                (4, libc::CLONE_NEWNS, "mnt"),
            ],
            root_fd: 5,
            stdio: StdioFds {
                stdin: 10,
                stdout: 11,
                stderr: 12,
            },
            cwd: None,
            argv: &argv,
            env: &[],
        })
        .unwrap();
        let mnt = index(&p, |o| matches!(o, Op::SetNs { fd: 4, .. }));
        let chroot = index(&p, |o| matches!(o, Op::ChrootFd(5)));
        let chdir = index(&p, |o| matches!(o, Op::Chdir(c) if c.to_bytes() == b"/"));
        assert!(mnt < chroot && chroot < chdir);
    }
}
