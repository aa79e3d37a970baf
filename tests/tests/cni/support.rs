//! A small CNI runtime for the tests and the benchmark, doing what libcni does: run a
//! plugin binary found in `CNI_PATH` with the `CNI_*` environment and the request config
//! on stdin, build each plugin's request from a conflist (cniVersion, name,
//! `runtimeConfig` from declared capabilities, `prevResult` from the previous plugin), run
//! ADD in order and DEL in reverse with the final result.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

/// The per-attachment environment of a call.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `:`-separated plugin directories.
    pub cni_path: String,
    pub args: Option<String>,
    /// netd's socket (`NETD_HOST`), for netd-cni.
    pub netd_host: Option<String>,
    /// `PATH` for the plugins (default: the usual system directories).
    pub path: Option<String>,
}

impl Env {
    pub fn new(container_id: &str, netns: &str, ifname: &str, cni_path: &str) -> Self {
        Env {
            container_id: container_id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            cni_path: cni_path.into(),
            ..Default::default()
        }
    }

    pub fn with_netd(mut self, socket: &Path) -> Self {
        self.netd_host = Some(socket.to_string_lossy().into_owned());
        self
    }
}

/// What a plugin run produced.
#[derive(Debug, Clone)]
pub struct Out {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.exit == 0
    }

    /// stdout as JSON (`{}` when empty).
    pub fn json(&self) -> Result<Value> {
        if self.stdout.trim().is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("plugin stdout: {}", self.stdout))
    }

    /// The CNI error code printed on stdout, if the run failed with one.
    pub fn code(&self) -> Option<u64> {
        self.json().ok()?.get("code")?.as_u64()
    }

    pub fn msg(&self) -> String {
        self.json()
            .ok()
            .and_then(|v| v.get("msg").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default()
    }
}

/// First directory of `cni_path` holding `plugin_type`.
pub fn find_plugin(cni_path: &str, plugin_type: &str) -> Result<PathBuf> {
    cni_path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(plugin_type))
        .find(|p| p.exists())
        .ok_or_else(|| anyhow!("plugin {plugin_type} not found in {cni_path}"))
}

/// Run one plugin: `command` (ADD, DEL, CHECK, GC, STATUS, VERSION) with `conf` on stdin.
/// GC and STATUS get no attachment variables, as libcni does.
pub fn exec(plugin: &Path, command: &str, env: &Env, conf: &Value) -> Result<Out> {
    let mut cmd = Command::new(plugin);
    cmd.env_clear()
        .env(
            "PATH",
            env.path
                .as_deref()
                .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        )
        .env("CNI_COMMAND", command)
        .env("CNI_PATH", &env.cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !matches!(command, "GC" | "STATUS" | "VERSION") {
        cmd.env("CNI_CONTAINERID", &env.container_id)
            .env("CNI_NETNS", &env.netns)
            .env("CNI_IFNAME", &env.ifname);
        if let Some(a) = &env.args {
            cmd.env("CNI_ARGS", a);
        }
    }
    if let Some(h) = &env.netd_host {
        cmd.env("NETD_HOST", h);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", plugin.display()))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(conf.to_string().as_bytes())?;
    let o = child.wait_with_output()?;
    Ok(Out {
        exit: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    })
}

/// Capability arguments of the runtime (`portMappings`, `mac`, `ips`, `dns`...).
pub type Caps = Map<String, Value>;

fn version_at_least(v: &str, min: &str) -> bool {
    let p = |s: &str| -> Vec<u32> { s.split('.').map(|x| x.parse().unwrap_or(0)).collect() };
    p(v) >= p(min)
}

/// The request config of plugin `i` of `list` (libcni's buildOneConfig +
/// injectRuntimeConfig).
pub fn plugin_conf(list: &Value, i: usize, caps: &Caps, prev: Option<&Value>) -> Result<Value> {
    let plugins = list["plugins"]
        .as_array()
        .context("conflist has no plugins")?;
    let mut c = plugins.get(i).context("no such plugin")?.clone();
    let o = c.as_object_mut().context("plugin is not an object")?;
    o.insert("cniVersion".into(), list["cniVersion"].clone());
    o.insert("name".into(), list["name"].clone());
    let mut rc = Map::new();
    if let Some(declared) = o.get("capabilities").and_then(Value::as_object) {
        for (k, on) in declared {
            if on.as_bool() == Some(true) {
                if let Some(v) = caps.get(k) {
                    rc.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if !rc.is_empty() {
        o.insert("runtimeConfig".into(), Value::Object(rc));
    }
    if let Some(p) = prev {
        o.insert("prevResult".into(), p.clone());
    }
    Ok(c)
}

fn run_one(
    list: &Value,
    i: usize,
    command: &str,
    env: &Env,
    caps: &Caps,
    prev: Option<&Value>,
) -> Result<Out> {
    let conf = plugin_conf(list, i, caps, prev)?;
    let ty = conf["type"].as_str().context("plugin without type")?;
    let bin = find_plugin(&env.cni_path, ty)?;
    exec(&bin, command, env, &conf)
}

/// ADD every plugin in order; returns the final result.
pub fn add_list(list: &Value, env: &Env, caps: &Caps) -> Result<Value> {
    let n = list["plugins"].as_array().map_or(0, Vec::len);
    let mut prev: Option<Value> = None;
    for i in 0..n {
        let o = run_one(list, i, "ADD", env, caps, prev.as_ref())?;
        if !o.ok() {
            bail!(
                "ADD of plugin {i} ({}) failed: {}{}",
                list["plugins"][i]["type"],
                o.stdout,
                o.stderr
            );
        }
        prev = Some(o.json()?);
    }
    prev.context("empty conflist")
}

/// CHECK every plugin in order with the final ADD result.
pub fn check_list(list: &Value, env: &Env, caps: &Caps, result: &Value) -> Result<()> {
    let n = list["plugins"].as_array().map_or(0, Vec::len);
    for i in 0..n {
        let o = run_one(list, i, "CHECK", env, caps, Some(result))?;
        if !o.ok() {
            bail!(
                "CHECK of plugin {i} ({}) failed: {}{}",
                list["plugins"][i]["type"],
                o.stdout,
                o.stderr
            );
        }
    }
    Ok(())
}

/// DEL every plugin in reverse order; `prevResult` (the final ADD result) only from
/// 0.4.0 on, as libcni does.
pub fn del_list(list: &Value, env: &Env, caps: &Caps, result: Option<&Value>) -> Result<()> {
    let v = list["cniVersion"].as_str().unwrap_or("");
    let prev = result.filter(|_| version_at_least(v, "0.4.0"));
    let n = list["plugins"].as_array().map_or(0, Vec::len);
    for i in (0..n).rev() {
        let o = run_one(list, i, "DEL", env, caps, prev)?;
        if !o.ok() {
            bail!(
                "DEL of plugin {i} ({}) failed: {}{}",
                list["plugins"][i]["type"],
                o.stdout,
                o.stderr
            );
        }
    }
    Ok(())
}

/// GC every plugin with `cni.dev/valid-attachments` (and the old key, as libcni sends both).
pub fn gc_list(list: &Value, env: &Env, valid: &[(&str, &str)]) -> Result<()> {
    let att: Vec<Value> = valid
        .iter()
        .map(|(c, i)| json!({"containerID": c, "ifname": i}))
        .collect();
    let n = list["plugins"].as_array().map_or(0, Vec::len);
    for i in 0..n {
        let mut conf = plugin_conf(list, i, &Caps::new(), None)?;
        conf["cni.dev/valid-attachments"] = Value::Array(att.clone());
        conf["cni.dev/attachments"] = Value::Array(att.clone());
        let bin = find_plugin(&env.cni_path, conf["type"].as_str().unwrap_or(""))?;
        let o = exec(&bin, "GC", env, &conf)?;
        if !o.ok() {
            bail!("GC of plugin {i} failed: {}{}", o.stdout, o.stderr);
        }
    }
    Ok(())
}

/// A plugin directory holding a link to netd-cni, to put first in `CNI_PATH` before
/// the reference plugins.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
}

impl PluginDir {
    pub fn new(netd_cni: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("netd-cni-bin-").tempdir()?;
        std::os::unix::fs::symlink(netd_cni, dir.path().join("netd-cni"))?;
        Ok(PluginDir { dir })
    }

    /// `<this dir>:/usr/lib/cni`.
    pub fn cni_path(&self) -> String {
        format!("{}:/usr/lib/cni", self.dir.path().display())
    }
}

/// The reference plugins (Debian's containernetworking-plugins) are installed, or are
/// installed now; false (with a printed reason) when that is impossible.
pub fn reference_plugins() -> bool {
    if Path::new("/usr/lib/cni/bridge").exists() {
        return true;
    }
    let st = Command::new("apt-get")
        .args(["install", "-y", "containernetworking-plugins"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if Path::new("/usr/lib/cni/bridge").exists() {
        return true;
    }
    eprintln!("SKIP: containernetworking-plugins cannot be installed ({st:?})");
    false
}
