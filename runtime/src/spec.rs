//! What the caller asks for: the container spec, the exec spec and the stdio fds.
//!
//! These are plain data; [`crate::spawn`] and [`crate::exec_in`] validate them and turn
//! them into a plan of syscalls (see `plan.rs`) before any process is created.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// Standard streams of the container process.
///
/// The fds are owned by the spec and closed in the caller once the child has its own
/// copies, so a daemon can pass fds received over a unix socket (SCM_RIGHTS) from
/// `netctl`, or a log file for detached mode.
#[derive(Debug)]
pub struct Stdio {
    /// Standard input; `None` means `/dev/null`.
    pub stdin: Option<OwnedFd>,
    /// Standard output.
    pub stdout: OwnedFd,
    /// Standard error.
    pub stderr: OwnedFd,
}

impl Stdio {
    /// Use the given descriptors.
    pub fn new(stdin: Option<OwnedFd>, stdout: OwnedFd, stderr: OwnedFd) -> Self {
        Stdio {
            stdin,
            stdout,
            stderr,
        }
    }

    /// All three streams on `/dev/null`.
    pub fn null() -> io::Result<Self> {
        let out = File::options().write(true).open("/dev/null")?;
        let err = out.try_clone()?;
        Ok(Stdio::new(None, out.into(), err.into()))
    }

    /// Duplicates of the calling process's own stdin, stdout and stderr.
    pub fn inherit() -> io::Result<Self> {
        Ok(Stdio::new(
            Some(io::stdin().as_fd().try_clone_to_owned()?),
            io::stdout().as_fd().try_clone_to_owned()?,
            io::stderr().as_fd().try_clone_to_owned()?,
        ))
    }

    /// Detached mode: stdout and stderr both go to `log` (e.g. an append-mode file),
    /// stdin is `/dev/null`.
    pub fn log(log: OwnedFd) -> io::Result<Self> {
        let err = log.try_clone()?;
        Ok(Stdio::new(None, log, err))
    }
}

/// A container to start with [`crate::spawn`].
#[derive(Debug)]
pub struct ContainerSpec {
    /// Container id, used in logs and error messages only.
    pub id: String,
    /// Folder holding the root file system (e.g. built by [`crate::rootfs::busybox`]).
    pub rootfs: PathBuf,
    /// Command and arguments; `argv[0]` without a `/` is searched in `PATH` inside the
    /// rootfs (from `env`, else a default PATH). It becomes PID 1 of the container.
    pub argv: Vec<String>,
    /// Environment, `KEY=value` entries, passed as is.
    pub env: Vec<String>,
    /// Working directory inside the container (default `/`).
    pub cwd: Option<String>,
    /// Hostname set in the container's new UTS namespace.
    pub hostname: String,
    /// Network namespace to join (e.g. `/run/netns/x`); `None` = host network.
    pub netns_path: Option<PathBuf>,
    /// Host file bind-mounted on `/etc/hosts`.
    pub hosts_file: Option<PathBuf>,
    /// Host file bind-mounted on `/etc/resolv.conf`.
    pub resolv_file: Option<PathBuf>,
    /// Host file bind-mounted on `/etc/hostname`.
    pub hostname_file: Option<PathBuf>,
    /// Standard streams.
    pub stdio: Stdio,
}

impl ContainerSpec {
    /// A spec with host networking, no bind-mounted /etc files, hostname = id, cwd `/`.
    pub fn new(
        id: impl Into<String>,
        rootfs: impl Into<PathBuf>,
        argv: Vec<String>,
        stdio: Stdio,
    ) -> Self {
        let id = id.into();
        ContainerSpec {
            hostname: id.clone(),
            id,
            rootfs: rootfs.into(),
            argv,
            env: vec![format!("PATH={}", crate::plan::DEFAULT_PATH)],
            cwd: None,
            netns_path: None,
            hosts_file: None,
            resolv_file: None,
            hostname_file: None,
            stdio,
        }
    }
}

/// A process to start inside a running container with [`crate::exec_in`].
#[derive(Debug)]
pub struct ExecSpec {
    /// Command and arguments (PATH search as for [`ContainerSpec::argv`]).
    pub argv: Vec<String>,
    /// Environment, `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory inside the container (default `/`).
    pub cwd: Option<String>,
    /// Standard streams.
    pub stdio: Stdio,
}

impl ExecSpec {
    /// An exec spec with the default PATH and cwd `/`.
    pub fn new(argv: Vec<String>, stdio: Stdio) -> Self {
        ExecSpec {
            argv,
            env: vec![format!("PATH={}", crate::plan::DEFAULT_PATH)],
            cwd: None,
            stdio,
        }
    }
}
