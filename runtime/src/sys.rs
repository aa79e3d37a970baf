//! Thin wrappers over the process syscalls the parent side needs: clone3 with a pidfd,
//! pidfd signals and waits, fd juggling and the error-pipe protocol.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

/// Layout of `struct clone_args` (first version fields, 64 bytes + extensions).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Result of [`clone_pidfd`].
pub(crate) enum Cloned {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// fork-like `clone3(flags | CLONE_PIDFD)`, falling back to `clone` where clone3 is
/// missing (old kernel or a seccomp filter that answers ENOSYS).
///
/// # Safety
/// In the `Child` branch only async-signal-safe code may run (see `child.rs`).
pub(crate) unsafe fn clone_pidfd(ns_flags: c_int) -> Result<Cloned, Errno> {
    let mut pidfd: c_int = -1;
    let flags = (ns_flags | libc::CLONE_PIDFD) as u64;
    let mut args = CloneArgs {
        flags,
        pidfd: &mut pidfd as *mut c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    let mut ret = libc::syscall(
        libc::SYS_clone3,
        &mut args as *mut CloneArgs,
        std::mem::size_of::<CloneArgs>(),
    );
    if ret == -1 && Errno::last() == Errno::ENOSYS {
        // Legacy clone: on x86_64 and aarch64 the pidfd is stored through parent_tid
        // (3rd argument); a null stack means "copy the parent's", i.e. fork semantics.
        ret = libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            0usize,
            &mut pidfd as *mut c_int,
            0usize,
            0usize,
        );
    }
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent {
            pid: pid as i32,
            pidfd: OwnedFd::from_raw_fd(pidfd),
        }),
    }
}

/// Blocks every signal on the current thread until dropped, so no handler of the
/// daemon (tokio's, for instance) runs in the child before it resets dispositions.
pub(crate) struct SignalsBlocked(SigSet);

impl SignalsBlocked {
    pub(crate) fn new() -> Result<Self, Errno> {
        let mut old = SigSet::empty();
        pthread_sigmask(
            SigmaskHow::SIG_SETMASK,
            Some(&SigSet::all()),
            Some(&mut old),
        )?;
        Ok(SignalsBlocked(old))
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Duplicate `fd` to a close-on-exec descriptor numbered >= 3, so that the child's
/// `dup2(x, 0..=2)` can never clobber another fd it still needs.
pub(crate) fn dup_high(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    Errno::result(r).map(|r| unsafe { OwnedFd::from_raw_fd(r) })
}

/// A close-on-exec pipe whose write end is numbered >= 3: (read, write).
pub(crate) fn error_pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let w = dup_high(std::os::fd::AsFd::as_fd(&w))?;
    Ok((r, w))
}

/// Read the child's report: `None` if the pipe closed empty (exec succeeded),
/// `Some((step, errno))` if a step failed.
pub(crate) fn read_report(r: OwnedFd) -> std::io::Result<Option<(usize, i32)>> {
    let mut buf = Vec::with_capacity(8);
    File::from(r).read_to_end(&mut buf)?;
    match buf.len() {
        0 => Ok(None),
        8 => {
            let idx = u32::from_ne_bytes(buf[..4].try_into().expect("4 bytes"));
            let err = i32::from_ne_bytes(buf[4..].try_into().expect("4 bytes"));
            Ok(Some((idx as usize, err)))
        }
        n => Err(std::io::Error::other(format!(
            "short report from child ({n} bytes)"
        ))),
    }
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub(crate) fn pidfd_send_signal(pidfd: RawFd, sig: c_int) -> Result<(), Errno> {
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

/// Outcome of [`waitid_pidfd`].
pub(crate) enum Waited {
    Running,
    Exited(i32),
    Signaled(i32),
}

/// `waitid(P_PIDFD, pidfd, WEXITED [| WNOHANG])`, retrying on EINTR.
pub(crate) fn waitid_pidfd(pidfd: RawFd, block: bool) -> Result<Waited, Errno> {
    let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
    loop {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, flags) };
        if r == -1 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        // With WNOHANG and nothing to reap, si_pid stays 0.
        let pid = unsafe { info.si_pid() };
        if pid == 0 {
            return Ok(Waited::Running);
        }
        let status = unsafe { info.si_status() };
        return Ok(match info.si_code {
            libc::CLD_EXITED => Waited::Exited(status),
            _ => Waited::Signaled(status),
        });
    }
}
