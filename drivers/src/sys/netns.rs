//! Network namespace files: create (unshare + bind mount), delete (umount +
//! unlink), and run a closure inside a namespace on a throwaway std thread.
//!
//! Why a dedicated thread: `setns`/`unshare` change the calling *thread's*
//! namespace. Doing that on a tokio worker would leak the namespace into
//! whatever task runs there next (and a panic would leave it there), so every
//! namespace switch happens on a fresh std thread that exits afterwards.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use super::{SysError, SysResult};

fn ns_err(path: &Path, msg: impl std::fmt::Display) -> SysError {
    SysError::Netns {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// Run `f` on a new std thread that first joins the network namespace at
/// `path`. The thread exits when `f` returns, so no other code ever runs in
/// that namespace by accident. Awaiting does not block a tokio worker.
pub async fn run_in_netns<T, F>(path: &Path, f: F) -> SysResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netd-netns".into())
        .spawn(move || {
            let res = (|| {
                let file = File::open(&path).map_err(|e| ns_err(&path, e))?;
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(&path, e))?;
                Ok(f())
            })();
            let _ = tx.send(res);
        })?;
    rx.await.map_err(|_| SysError::Netns {
        path: "?".into(),
        msg: "namespace thread panicked".into(),
    })?
}

/// Blocking variant of [`run_in_netns`] for code that is not async (tests,
/// benches). Same rule: the work happens on a fresh thread.
pub fn run_in_netns_blocking<T, F>(path: &Path, f: F) -> SysResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let file = File::open(&path).map_err(|e| ns_err(&path, e))?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(&path, e))?;
        Ok(f())
    })
    .join()
    .map_err(|_| SysError::Netns {
        path: "?".into(),
        msg: "namespace thread panicked".into(),
    })?
}

/// Make `dir` a directory that is a shared mount point, as `ip netns` does
/// for /run/netns: namespace bind mounts made later then propagate into mount
/// namespaces cloned from ours (e.g. a container started afterwards keeps
/// seeing them, and a umount here is seen there). Idempotent. The daemon
/// calls this once for /run/netd/netns; tests using a temp dir can skip it.
pub fn ensure_netns_dir(dir: &Path) -> SysResult<()> {
    std::fs::create_dir_all(dir)?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, None::<&str>, shared, None::<&str>) {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself, then make it shared.
        Err(nix::errno::Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| ns_err(dir, format!("bind mount: {e}")))?;
            mount(None::<&str>, dir, None::<&str>, shared, None::<&str>)
                .map_err(|e| ns_err(dir, format!("make shared: {e}")))
        }
        Err(e) => Err(ns_err(dir, format!("make shared: {e}"))),
    }
}

/// Create a new, empty network namespace and pin it at `path` with a bind
/// mount. `lo` is brought up inside (a fresh netns has it down, and the
/// embedded resolver at 127.0.0.11 needs it). Fails if `path` exists.
pub async fn create_netns(path: &Path) -> SysResult<()> {
    let p: PathBuf = path.to_path_buf();
    if p.exists() {
        return Err(ns_err(&p, "already exists"));
    }
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let p2 = p.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netd-mkns".into())
        .spawn(move || {
            let res = (|| -> SysResult<()> {
                File::create(&p2).map_err(|e| ns_err(&p2, format!("create file: {e}")))?;
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(&p2, e))?;
                // /proc/thread-self: this thread's namespace, not the main
                // thread's (/proc/self would pin the daemon's own netns).
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &p2,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| ns_err(&p2, format!("bind mount: {e}")))?;
                // Bring lo up from here, already inside: no second thread or
                // namespace entry.
                super::nlsync::SyncNetlink::open()?.set_up("lo", true)
            })();
            if res.is_err() {
                let _ = delete_netns(&p2);
            }
            let _ = tx.send(res);
        })?;
    rx.await
        .map_err(|_| ns_err(&p, "creator thread panicked"))?
}

/// Unmount (lazily, so open fds keep the namespace alive for their holders)
/// and remove the file. Missing file or mount is fine.
pub fn delete_netns(path: &Path) -> SysResult<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(ns_err(path, format!("umount: {e}"))),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ns_err(path, format!("remove: {e}"))),
    }
}
