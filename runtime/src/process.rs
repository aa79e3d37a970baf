//! Handles on started processes: [`Container`] (the container's PID 1) and [`Process`]
//! (anything started with `exec_in`). Both hold a pidfd, so signals and waits can never
//! hit a recycled pid, and a tokio daemon can await exit by polling the pidfd.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sys::{self, Waited};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

impl ExitStatus {
    /// The exit code, if the process exited normally.
    pub fn code(&self) -> Option<i32> {
        match *self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal that killed the process, if any.
    pub fn signal(&self) -> Option<i32> {
        match *self {
            ExitStatus::Signaled(s) => Some(s),
            ExitStatus::Exited(_) => None,
        }
    }

    /// Exit status the shell convention gives: the code, or 128 + signal.
    pub fn shell_code(&self) -> i32 {
        match *self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signaled(s) => match Signal::try_from(s) {
                Ok(sig) => write!(f, "killed by {sig}"),
                Err(_) => write!(f, "killed by signal {s}"),
            },
        }
    }
}

/// A child process of the caller, tracked through a pidfd.
///
/// Dropping it does not kill or reap the process: the owner must `wait` (or
/// `wait_async`) for it, or it stays a zombie until the caller exits. The caller must
/// not set SIGCHLD to SIG_IGN (children would be auto-reaped and `wait` would fail
/// with ECHILD), nor reap with `waitpid(-1)` behind our back.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pidfd: OwnedFd,
    status: Mutex<Option<ExitStatus>>,
}

impl Process {
    pub(crate) fn new(pid: i32, pidfd: OwnedFd) -> Self {
        Process {
            pid,
            pidfd,
            status: Mutex::new(None),
        }
    }

    /// Host pid (in the caller's PID namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pidfd: becomes readable when the process exits (for epoll / tokio AsyncFd).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn cached(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reap(&self, block: bool) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.cached() {
            return Ok(Some(s));
        }
        let status = match sys::waitid_pidfd(self.pidfd.as_raw_fd(), block) {
            Ok(Waited::Running) => return Ok(None),
            Ok(Waited::Exited(c)) => ExitStatus::Exited(c),
            Ok(Waited::Signaled(s)) => ExitStatus::Signaled(s),
            // Another thread reaped it between our cache check and waitid.
            Err(Errno::ECHILD) => {
                return self
                    .cached()
                    .map(Some)
                    .ok_or_else(|| Error::sys(format!("wait pid {}", self.pid), Errno::ECHILD))
            }
            Err(e) => return Err(Error::sys(format!("wait pid {}", self.pid), e)),
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        Ok(Some(status))
    }

    /// Block until the process exits; later calls return the same status.
    /// In async code call it from `spawn_blocking`, or use `wait_async`.
    pub fn wait(&self) -> Result<ExitStatus> {
        loop {
            if let Some(s) = self.reap(true)? {
                return Ok(s);
            }
        }
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        self.reap(false)
    }

    /// Send `sig`. Once the process has been reaped this fails with ESRCH.
    ///
    /// Note: a container's PID 1 ignores signals it has no handler for, except
    /// SIGKILL (and SIGSTOP) sent from outside its PID namespace, as with `docker run`
    /// without `--init`.
    pub fn kill(&self, sig: Signal) -> Result<()> {
        sys::pidfd_send_signal(self.pidfd.as_raw_fd(), sig as i32)
            .map_err(|e| Error::sys(format!("kill pid {} with {sig}", self.pid), e))
    }

    /// Await exit on the current tokio runtime by polling the pidfd.
    #[cfg(feature = "tokio")]
    pub async fn wait_async(&self) -> Result<ExitStatus> {
        use tokio::io::unix::AsyncFd;
        use tokio::io::Interest;
        if let Some(s) = self.try_wait()? {
            return Ok(s);
        }
        // A private dup: registering the same fd twice with epoll would fail.
        let fd = self
            .pidfd
            .try_clone()
            .map_err(|e| Error::io(format!("dup pidfd of {}", self.pid), e))?;
        // SAFETY: `fd` is an OwnedFd moved into the AsyncFd, so it stays open and the
        // same file description for the AsyncFd's whole life.
        let afd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| {
                Error::io(
                    format!("register pidfd of {}", self.pid),
                    std::io::Error::from(e),
                )
            })?;
        loop {
            let mut guard = afd
                .readable()
                .await
                .map_err(|e| Error::io(format!("poll pidfd of {}", self.pid), e))?;
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            guard.clear_ready();
        }
    }
}

/// A running container: its PID 1 plus the id it was started with.
#[derive(Debug)]
pub struct Container {
    /// Container id from the spec.
    pub id: String,
    /// Host pid of the container's PID 1 (the user's command).
    pub pid: i32,
    pub(crate) process: Process,
}

impl Container {
    /// The underlying process handle (pidfd, wait, kill).
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// See [`Process::pidfd`].
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.process.pidfd()
    }

    /// See [`Process::wait`].
    pub fn wait(&self) -> Result<ExitStatus> {
        self.process.wait()
    }

    /// See [`Process::try_wait`].
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        self.process.try_wait()
    }

    /// See [`Process::kill`].
    pub fn kill(&self, sig: Signal) -> Result<()> {
        self.process.kill(sig)
    }

    /// See [`Process::wait_async`].
    #[cfg(feature = "tokio")]
    pub async fn wait_async(&self) -> Result<ExitStatus> {
        self.process.wait_async().await
    }

    /// Start another process inside this container (see [`crate::exec_in`]); the pidfd
    /// guards against the pid having been recycled meanwhile.
    pub fn exec(&self, spec: crate::ExecSpec) -> Result<Process> {
        crate::spawn::exec_into(self.pid, Some(self.process.pidfd()), spec)
    }
}
