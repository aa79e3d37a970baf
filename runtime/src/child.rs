//! The code that runs in the cloned child, between `clone` and `execve`.
//!
//! The daemon is multithreaded (tokio), and after `clone` only the calling thread exists
//! in the child: any lock another thread held (malloc, stdio, tracing) stays locked
//! forever. So this module allocates nothing, logs nothing and may not panic: it walks
//! a pre-built [`Plan`] and calls libc syscall wrappers with pointers into it. On the
//! first failure it writes `(step index, errno)` to the close-on-exec error pipe and
//! `_exit(127)`s; a successful `execve` closes the pipe, which the parent reads as EOF.

use std::os::fd::RawFd;
use std::ptr;

use libc::{c_char, c_int};

use crate::plan::{Op, Plan};

/// Pointer arrays for `execve`, built by the parent right before `clone`.
pub(crate) struct ExecArgs {
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
}

impl ExecArgs {
    pub(crate) fn new(plan: &Plan) -> Self {
        let nul = |v: &[std::ffi::CString]| {
            let mut p: Vec<*const c_char> = v.iter().map(|c| c.as_ptr()).collect();
            p.push(ptr::null());
            p
        };
        ExecArgs {
            argv: nul(&plan.argv),
            envp: nul(&plan.env),
        }
    }
}

fn errno() -> c_int {
    nix::errno::Errno::last_raw()
}

/// Report step `idx` failed with `err`, then exit. Never returns.
unsafe fn fail(err_fd: RawFd, idx: usize, err: c_int) -> ! {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&(idx as u32).to_ne_bytes());
    buf[4..].copy_from_slice(&err.to_ne_bytes());
    libc::write(err_fd, buf.as_ptr().cast(), buf.len());
    libc::_exit(127)
}

fn opt_ptr(c: &Option<std::ffi::CString>) -> *const c_char {
    c.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

/// Run one op; `Err(errno)` on failure.
unsafe fn run_op(op: &Op, args: &ExecArgs) -> Result<(), c_int> {
    let check = |r: c_int| if r == -1 { Err(errno()) } else { Ok(()) };
    match op {
        Op::ResetSignals => {
            // Raw rt_sigaction: glibc's wrapper refuses its reserved signals (32, 33),
            // which may still be ignored in the parent and would stay so across exec.
            // An all-zero kernel `struct sigaction` means SIG_DFL, no flags, empty mask
            // whatever the architecture's field order.
            let dfl = [0u64; 4];
            for sig in 1..=libc::SIGRTMAX() {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        dfl.as_ptr(),
                        ptr::null_mut::<u64>(),
                        8usize,
                    );
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            check(libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut()))
        }
        Op::CloexecFrom3 => {
            // Best effort: every fd the Rust std opens is CLOEXEC already.
            libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as c_int);
            Ok(())
        }
        Op::SetNs { fd, nstype } => check(libc::setns(*fd, *nstype)),
        Op::Umask(m) => {
            libc::umask(*m);
            Ok(())
        }
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => check(libc::mount(
            opt_ptr(source),
            target.as_ptr(),
            opt_ptr(fstype),
            *flags,
            opt_ptr(data).cast(),
        )),
        Op::Either { first, fallback } => {
            if first.iter().try_for_each(|op| run_op(op, args)).is_ok() {
                return Ok(());
            }
            fallback.iter().try_for_each(|op| run_op(op, args))
        }
        Op::Mkdir { path, mode } => match check(libc::mkdir(path.as_ptr(), *mode)) {
            Err(libc::EEXIST) => Ok(()),
            r => r,
        },
        Op::Mknod { path, mode, dev } => {
            check(libc::mknod(path.as_ptr(), libc::S_IFCHR | *mode, *dev))
        }
        Op::Symlink { target, link } => check(libc::symlink(target.as_ptr(), link.as_ptr())),
        Op::PivotRoot { root } => {
            // pivot_root(".", ".") stacks the old root on top of the new one; detaching
            // "." then removes it without needing a put_old directory in the rootfs.
            check(libc::chdir(root.as_ptr()))?;
            let dot = c".".as_ptr();
            if libc::syscall(libc::SYS_pivot_root, dot, dot) == -1 {
                return Err(errno());
            }
            check(libc::umount2(dot, libc::MNT_DETACH))?;
            check(libc::chdir(c"/".as_ptr()))
        }
        Op::ChrootFd(fd) => {
            check(libc::fchdir(*fd))?;
            check(libc::chroot(c".".as_ptr()))
        }
        Op::Sethostname(name) => check(libc::sethostname(name.as_ptr(), name.as_bytes().len())),
        Op::Setsid => {
            if libc::setsid() == -1 {
                return Err(errno());
            }
            Ok(())
        }
        Op::Dup2 { from, to } => check(libc::dup2(*from, *to)),
        Op::Chdir(path) => check(libc::chdir(path.as_ptr())),
        Op::Exec { candidates } => {
            // execvpe semantics: skip entries that don't exist, remember EACCES.
            let mut saved = libc::ENOENT;
            for c in candidates {
                libc::execve(c.as_ptr(), args.argv.as_ptr(), args.envp.as_ptr());
                match errno() {
                    libc::ENOENT
                    | libc::ENOTDIR
                    | libc::ESTALE
                    | libc::ENODEV
                    | libc::ETIMEDOUT => {}
                    libc::EACCES => saved = libc::EACCES,
                    e => return Err(e),
                }
            }
            Err(saved)
        }
    }
}

/// Execute `plan` and exec. Never returns.
///
/// # Safety
/// Must be called only in a freshly cloned child of a possibly multithreaded process;
/// `args` must point into `plan`, and `err_fd` must be the write end of the error pipe.
pub(crate) unsafe fn run(plan: &Plan, args: &ExecArgs, err_fd: RawFd) -> ! {
    for (idx, step) in plan.steps.iter().enumerate() {
        if let Err(e) = run_op(&step.op, args) {
            fail(err_fd, idx, e);
        }
    }
    // The plan always ends with Exec, which returns only on failure; be safe anyway.
    fail(err_fd, plan.steps.len().saturating_sub(1), libc::ENOEXEC)
}
