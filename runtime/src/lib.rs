//! netd's minimal container runtime: the mechanism behind `netctl run`.
//!
//! The daemon owns the container lifecycle (ids, state, networking); this crate only
//! starts processes in namespaces, lets the daemon wait for and signal them, and runs
//! extra processes inside them.
//!
//! # API
//!
//! - [`spawn`]`(`[`ContainerSpec`]`) -> Result<`[`Container`]`>`: the command becomes
//!   PID 1 of new mount, UTS, IPC and PID namespaces, inside the network namespace at
//!   `netns_path` (`None` = host network). Its root is a bind of `rootfs` with fresh
//!   `/proc`, a small `/dev` (tmpfs with null, zero, full, random, urandom, tty, devpts,
//!   shm), read-only `/sys`, tmpfs `/tmp`, and `/etc/hosts`, `/etc/resolv.conf`,
//!   `/etc/hostname` bind-mounted from host files; then `pivot_root`. Errors from any
//!   setup step or from `execve` come back as [`Error::Setup`].
//! - [`Container`] / [`Process`]: `pid`, `pidfd()` (readable at exit), `wait()`,
//!   `try_wait()`, `kill(sig)`, and `wait_async()` with the `tokio` feature.
//!   [`ExitStatus`] is `Exited(code)` or `Signaled(sig)`.
//! - [`exec_in`]`(pid, `[`ExecSpec`]`) -> Result<`[`Process`]`>` and
//!   [`Container::exec`]: join a running container like `nsenter -a -r`.
//! - [`rootfs::busybox`]`(dir)`: build a root file system from the host's static busybox.
//!
//! # Layout
//!
//! - `spec.rs`: what callers fill in ([`ContainerSpec`], [`ExecSpec`], [`Stdio`]).
//! - `plan.rs`: the setup as a pure, unit-tested list of syscalls, built before clone.
//! - `child.rs`: runs the plan in the cloned child with raw syscalls only.
//! - `sys.rs`: clone3 + pidfd, waitid, signal masking, the error pipe.
//! - `spawn.rs`: [`spawn`] and [`exec_in`], the design rationale lives there.
//! - `process.rs`: handles and exit statuses. `rootfs.rs`: busybox root file systems.
//!
//! # Example
//!
//! ```no_run
//! use runtime::{spawn, ContainerSpec, Stdio};
//! runtime::rootfs::busybox("/var/lib/netd/rootfs/bb".as_ref())?;
//! let mut spec = ContainerSpec::new("c1", "/var/lib/netd/rootfs/bb", vec!["sh".into(), "-c".into(), "ip addr".into()], Stdio::inherit().unwrap());
//! spec.netns_path = Some("/run/netns/c1".into());
//! let c = spawn(spec)?;
//! println!("{}", c.wait()?);
//! # Ok::<(), runtime::Error>(())
//! ```
//!
//! Requirements: root (CAP_SYS_ADMIN), Linux >= 5.3 for clone3/pidfd (5.11 for
//! close_range, which is best effort).

#![warn(missing_docs)]
#![warn(clippy::dbg_macro, clippy::print_stdout)]

mod child;
mod error;
mod plan;
mod process;
pub mod rootfs;
mod spawn;
mod spec;
mod sys;

pub use error::{Error, Result};
pub use plan::DEFAULT_PATH;
pub use process::{Container, ExitStatus, Process};
pub use spawn::{exec_in, spawn};
pub use spec::{ContainerSpec, ExecSpec, Stdio};

/// Re-exported so callers can name signals without depending on nix themselves.
pub use nix::sys::signal::Signal;
