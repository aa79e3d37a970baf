//! Containers of netd's bundled runtime (`netctl run`). The daemon, not the CLI, owns
//! their lifecycle, so `netctl` may exit while a container runs.
//!
//! Model (like Docker's): a container owns one sandbox. `create` makes the sandbox and
//! connects its networks; `start` runs the command (PID 1 of new mount, UTS, IPC and PID
//! namespaces, in the sandbox's network namespace). When the command exits, the
//! sandbox, its endpoints, addresses and published ports are released at once; the
//! container record (state `exited`, exit code, log) stays until `netctl rm`, or goes
//! too with `--rm`. `stop` sends SIGTERM, then SIGKILL after the timeout.
//!
//! Attached runs: `netctl` passes its own stdin/stdout/stderr as file descriptors over
//! the attach socket (SCM_RIGHTS), so the container writes straight to the user's
//! terminal with no copying, and the exit status comes back on the same connection.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use plugin_api::rest;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use crate::controller::{check_name, Controller, HOST_NETNS};
use crate::error::{Error, Result};
use crate::store::{Change, Kind, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRec {
    pub id: String,
    pub name: String,
    pub rootfs: String,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub hostname: String,
    pub rm: bool,
    pub created: String,
    pub state: String,
    pub pid: Option<i32>,
    /// Start time of `pid` (from /proc/PID/stat), to recognise it after a restart.
    pub pid_start: Option<u64>,
    pub exit_code: Option<i32>,
    pub finished: Option<String>,
    pub log_path: String,
    pub sandbox_id: Option<String>,
}

pub struct Containers {
    ctl: Arc<Controller>,
    store: Arc<dyn Store>,
    recs: Mutex<crate::controller::Map<ContainerRec>>,
    /// Running containers started by this daemon (for exec and signals).
    live: StdMutex<HashMap<String, Arc<runtime::Container>>>,
    /// Exit notifications: None while running, Some(code) once exited.
    exits: StdMutex<HashMap<String, watch::Sender<Option<i32>>>>,
    data_root: PathBuf,
}

fn proc_start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22, after the parenthesised command (which may contain spaces).
    let rest = &s[s.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn now() -> String {
    crate::controller::now_rfc3339()
}

impl Containers {
    pub fn new(ctl: Arc<Controller>, store: Arc<dyn Store>, data_root: &Path) -> Result<Arc<Self>> {
        let snap = store.load()?;
        let mut recs = crate::controller::Map::new();
        if let Some(m) = snap.get(&Kind::Container) {
            for (k, v) in m {
                let r: ContainerRec = serde_json::from_slice(v)
                    .map_err(|e| Error::internal(format!("corrupt container record {k}: {e}")))?;
                recs.insert(k.clone(), r);
            }
        }
        Ok(Arc::new(Containers {
            ctl,
            store,
            recs: Mutex::new(recs),
            live: StdMutex::new(HashMap::new()),
            exits: StdMutex::new(HashMap::new()),
            data_root: data_root.to_path_buf(),
        }))
    }

    fn persist(&self, r: &ContainerRec) -> Result<()> {
        let v = serde_json::to_vec(r).map_err(|e| Error::internal(e.to_string()))?;
        self.store
            .commit(&[Change::put(Kind::Container, &r.id, v)])?;
        Ok(())
    }

    fn forget(&self, id: &str) -> Result<()> {
        self.store.commit(&[Change::delete(Kind::Container, id)])?;
        let _ = std::fs::remove_dir_all(self.data_root.join("containers").join(id));
        Ok(())
    }

    /// After a daemon restart: watch containers that still run (by pidfd), release the
    /// networking of those that died while we were away.
    pub async fn recover(self: &Arc<Self>) {
        let running: Vec<ContainerRec> = self
            .recs
            .lock()
            .await
            .values()
            .filter(|r| r.state == "running")
            .cloned()
            .collect();
        for r in running {
            let alive = r
                .pid
                .filter(|p| proc_start_time(*p).is_some() && proc_start_time(*p) == r.pid_start);
            match alive.and_then(|p| pidfd_open(p).ok()) {
                Some(fd) => {
                    tracing::info!(container = %r.id, pid = ?r.pid, "re-attached to running container");
                    self.exits
                        .lock()
                        .unwrap()
                        .insert(r.id.clone(), watch::channel(None).0);
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _ = wait_pidfd(fd).await;
                        // Not our child any more: the exit code is unknown.
                        me.on_exit(&r.id, -1).await;
                    });
                }
                None => self.on_exit(&r.id, -1).await,
            }
        }
    }

    pub async fn create(self: &Arc<Self>, req: rest::ContainerCreate) -> Result<rest::Container> {
        if req.argv.is_empty() {
            return Err(Error::bad("no command given"));
        }
        let rootfs = Path::new(&req.rootfs);
        if !rootfs.is_absolute() {
            return Err(Error::bad(format!(
                "rootfs {:?} must be an absolute path",
                req.rootfs
            )));
        }
        if !rootfs.is_dir() {
            return Err(Error::bad(format!(
                "rootfs {} does not exist or is not a directory",
                req.rootfs
            )));
        }
        if let Some(n) = &req.name {
            check_name("container", n)?;
            if self.recs.lock().await.values().any(|r| &r.name == n) {
                return Err(Error::conflict(format!(
                    "container name {n} is already in use"
                )));
            }
        }
        let networks = if req.networks.is_empty() {
            vec![rest::NetworkConnect {
                target: "bridge".into(),
                ..Default::default()
            }]
        } else {
            req.networks.clone()
        };
        let sb = self
            .ctl
            .create_sandbox_owned(
                rest::SandboxCreate {
                    name: req.name.clone(),
                    netns_path: None,
                    hostname: req.hostname.clone(),
                    dns: req.dns.clone(),
                    networks,
                },
                "netd",
                None,
            )
            .await?;
        let id = sb.id.clone();
        let dir = self.data_root.join("containers").join(&id);
        let log_path = dir.join("log");
        let rec = ContainerRec {
            id: id.clone(),
            name: sb.name.clone(),
            rootfs: req.rootfs.clone(),
            argv: req.argv.clone(),
            env: req.env.clone(),
            cwd: req.cwd.clone(),
            hostname: req.hostname.clone().unwrap_or_else(|| sb.name.clone()),
            rm: req.rm,
            created: now(),
            state: "created".into(),
            pid: None,
            pid_start: None,
            exit_code: None,
            finished: None,
            log_path: log_path.to_string_lossy().into_owned(),
            sandbox_id: Some(id.clone()),
        };
        let res = std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("create {}: {e}", dir.display())))
            .and_then(|_| self.persist(&rec));
        if let Err(e) = res {
            let _ = self.ctl.delete_sandbox(&id).await;
            return Err(e);
        }
        self.recs.lock().await.insert(id.clone(), rec);
        self.exits
            .lock()
            .unwrap()
            .insert(id.clone(), watch::channel(None).0);
        if req.detach {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| Error::internal(format!("open {}: {e}", log_path.display())))?;
            let stdio = runtime::Stdio::log(log.into())
                .map_err(|e| Error::internal(format!("log stdio: {e}")))?;
            if let Err(e) = self.start(&id, stdio).await {
                self.discard(&id).await;
                return Err(e);
            }
        }
        self.inspect(&id).await
    }

    /// Undo a container that never ran: sandbox and record go.
    pub async fn discard(&self, id: &str) {
        let _ = self.ctl.delete_sandbox(id).await;
        self.recs.lock().await.remove(id);
        self.exits.lock().unwrap().remove(id);
        let _ = self.forget(id);
    }

    /// Start a created container with the given stdio.
    pub async fn start(self: &Arc<Self>, key: &str, stdio: runtime::Stdio) -> Result<i32> {
        let rec = self.find(key).await?;
        if rec.state != "created" {
            return Err(Error::conflict(format!(
                "container {} is {}",
                rec.name, rec.state
            )));
        }
        let sb = self.ctl.inspect_sandbox(&rec.id, false).await?;
        let files = crate::dns::sandbox_dir(&self.ctl.cfg.exec_root, &rec.id);
        let mut spec =
            runtime::ContainerSpec::new(rec.id.clone(), &rec.rootfs, rec.argv.clone(), stdio);
        spec.hostname = rec.hostname.clone();
        spec.netns_path = if sb.netns_path == HOST_NETNS {
            None
        } else {
            Some(PathBuf::from(&sb.netns_path))
        };
        if !rec.env.is_empty() {
            let mut env = rec.env.clone();
            if !env.iter().any(|e| e.starts_with("PATH=")) {
                env.push(format!("PATH={}", runtime::DEFAULT_PATH));
            }
            spec.env = env;
        }
        spec.cwd = rec.cwd.clone().or(Some("/".into()));
        spec.hosts_file = Some(files.join("hosts"));
        spec.resolv_file = Some(files.join("resolv.conf"));
        spec.hostname_file = Some(files.join("hostname"));
        let c = tokio::task::spawn_blocking(move || runtime::spawn(spec))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::bad(format!("starting container {}: {e}", rec.name)))?;
        let c = Arc::new(c);
        let pid = c.pid;
        {
            let mut recs = self.recs.lock().await;
            if let Some(r) = recs.get_mut(&rec.id) {
                r.state = "running".into();
                r.pid = Some(pid);
                r.pid_start = proc_start_time(pid);
                let r = r.clone();
                drop(recs);
                self.persist(&r)?;
            }
        }
        self.live.lock().unwrap().insert(rec.id.clone(), c.clone());
        tracing::info!(container = %rec.id, pid, "container started");
        let me = self.clone();
        let id = rec.id.clone();
        tokio::spawn(async move {
            let code = match c.wait_async().await {
                Ok(st) => st.shell_code(),
                Err(e) => {
                    tracing::error!(container = %id, error = %e, "waiting for container");
                    -1
                }
            };
            me.on_exit(&id, code).await;
        });
        Ok(pid)
    }

    async fn on_exit(&self, id: &str, code: i32) {
        self.live.lock().unwrap().remove(id);
        let rec = { self.recs.lock().await.get(id).cloned() };
        let Some(mut rec) = rec else { return };
        if let Some(sid) = rec.sandbox_id.take() {
            if let Err(e) = self.ctl.delete_sandbox(&sid).await {
                if e.kind != crate::error::Kind::NotFound {
                    tracing::warn!(container = %id, error = %e, "releasing the container's sandbox");
                }
            }
        }
        rec.state = "exited".into();
        rec.exit_code = Some(code);
        rec.finished = Some(now());
        tracing::info!(container = %id, code, "container exited; networking released");
        if rec.rm {
            self.recs.lock().await.remove(id);
            let _ = self.forget(id);
        } else {
            self.recs.lock().await.insert(id.to_string(), rec.clone());
            let _ = self.persist(&rec);
        }
        if let Some(tx) = self.exits.lock().unwrap().get(id) {
            let _ = tx.send(Some(code));
        }
        if rec.rm {
            // Keep the sender briefly so attached clients still get the code.
            self.exits.lock().unwrap().remove(id);
        }
    }

    /// Wait until the container exits; returns its code.
    pub async fn wait(&self, id: &str) -> Result<i32> {
        let rx = self.exits.lock().unwrap().get(id).map(|tx| tx.subscribe());
        let Some(mut rx) = rx else {
            return self
                .recs
                .lock()
                .await
                .get(id)
                .and_then(|r| r.exit_code)
                .ok_or_else(|| Error::not_found(format!("no such container: {id}")));
        };
        loop {
            if let Some(c) = *rx.borrow() {
                return Ok(c);
            }
            if rx.changed().await.is_err() {
                return Err(Error::internal("container watcher went away"));
            }
        }
    }

    pub async fn find(&self, key: &str) -> Result<ContainerRec> {
        let recs = self.recs.lock().await;
        crate::controller::resolve("container", &recs, |r| r.name.as_str(), key).cloned()
    }

    pub async fn inspect(&self, key: &str) -> Result<rest::Container> {
        let r = self.find(key).await?;
        let sandbox = match &r.sandbox_id {
            Some(s) if r.state != "exited" => self.ctl.inspect_sandbox(s, true).await.ok(),
            _ => None,
        };
        Ok(to_rest(&r, sandbox))
    }

    pub async fn list(&self, all: bool) -> Vec<rest::Container> {
        let recs: Vec<ContainerRec> = self.recs.lock().await.values().cloned().collect();
        let mut out = vec![];
        for r in recs.into_iter().filter(|r| all || r.state == "running") {
            let sb = match &r.sandbox_id {
                Some(s) if r.state != "exited" => self.ctl.inspect_sandbox(s, false).await.ok(),
                _ => None,
            };
            out.push(to_rest(&r, sb));
        }
        out
    }

    fn signal(&self, r: &ContainerRec, sig: runtime::Signal) -> Result<()> {
        if let Some(c) = self.live.lock().unwrap().get(&r.id) {
            return c.kill(sig).map_err(|e| Error::internal(e.to_string()));
        }
        // Re-attached after a restart: signal by pid (its start time was verified).
        match r.pid {
            Some(p) if proc_start_time(p) == r.pid_start => {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig)
                    .map_err(|e| Error::internal(e.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL after `timeout`.
    pub async fn stop(&self, key: &str, timeout: Duration) -> Result<()> {
        let r = self.find(key).await?;
        if r.state != "running" {
            return Ok(());
        }
        self.signal(&r, runtime::Signal::SIGTERM)?;
        if tokio::time::timeout(timeout, self.wait(&r.id))
            .await
            .is_err()
        {
            self.signal(&r, runtime::Signal::SIGKILL)?;
            self.wait(&r.id).await?;
        }
        Ok(())
    }

    pub async fn remove(&self, key: &str, force: bool) -> Result<()> {
        let r = self.find(key).await?;
        match r.state.as_str() {
            "running" if !force => {
                return Err(Error::conflict(format!(
                    "container {} is running: stop it first or use --force",
                    r.name
                )))
            }
            "running" => self.stop(&r.id, Duration::ZERO).await?,
            "created" => {
                let _ = self.ctl.delete_sandbox(&r.id).await;
            }
            _ => {}
        }
        self.recs.lock().await.remove(&r.id);
        self.exits.lock().unwrap().remove(&r.id);
        self.forget(&r.id)
    }

    /// Rename a container (and its sandbox, so DNS answers the new name at once).
    pub async fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        check_name("container", new_name)?;
        let r = self.find(key).await?;
        if self
            .recs
            .lock()
            .await
            .values()
            .any(|x| x.name == new_name && x.id != r.id)
        {
            return Err(Error::conflict(format!(
                "container name {new_name} is already in use"
            )));
        }
        if let Some(s) = &r.sandbox_id {
            if r.state != "exited" {
                self.ctl.rename_sandbox(s, new_name).await?;
            }
        }
        let mut recs = self.recs.lock().await;
        if let Some(x) = recs.get_mut(&r.id) {
            x.name = new_name.to_string();
            let x = x.clone();
            drop(recs);
            self.persist(&x)?;
        }
        Ok(())
    }

    pub async fn logs(&self, key: &str) -> Result<Vec<u8>> {
        let r = self.find(key).await?;
        Ok(std::fs::read(&r.log_path).unwrap_or_default())
    }

    /// Run a command inside a running container; returns its exit code when done.
    pub async fn exec(
        &self,
        key: &str,
        argv: Vec<String>,
        env: Vec<String>,
        cwd: Option<String>,
        stdio: runtime::Stdio,
        started: impl FnOnce(i32),
    ) -> Result<i32> {
        let r = self.find(key).await?;
        if argv.is_empty() {
            return Err(Error::bad("no command given"));
        }
        let c = self
            .live
            .lock()
            .unwrap()
            .get(&r.id)
            .cloned()
            .ok_or_else(|| Error::conflict(format!("container {} is not running", r.name)))?;
        let mut spec = runtime::ExecSpec::new(argv, stdio);
        if !env.is_empty() {
            spec.env = env;
        }
        spec.cwd = cwd;
        let p = tokio::task::spawn_blocking(move || c.exec(spec))
            .await
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(|e| Error::bad(format!("exec in {}: {e}", r.name)))?;
        started(p.pid());
        let st = p
            .wait_async()
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        Ok(st.shell_code())
    }
}

fn to_rest(r: &ContainerRec, sandbox: Option<rest::Sandbox>) -> rest::Container {
    rest::Container {
        id: r.id.clone(),
        name: r.name.clone(),
        rootfs: r.rootfs.clone(),
        argv: r.argv.clone(),
        state: r.state.clone(),
        pid: r.pid.filter(|_| r.state == "running"),
        exit_code: r.exit_code,
        created: r.created.clone(),
        finished: r.finished.clone(),
        rm: r.rm,
        log_path: r.log_path.clone(),
        sandbox,
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a valid, owned descriptor returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A pidfd becomes readable when the process exits.
async fn wait_pidfd(fd: OwnedFd) -> std::io::Result<()> {
    // SAFETY: `fd` is an OwnedFd moved into the AsyncFd, so it stays open and the same
    // file description for the AsyncFd's whole life.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .map_err(std::io::Error::from)?;
    let _g = afd.readable().await?;
    Ok(())
}
