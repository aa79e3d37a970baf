//! Container commands: run, ps, stop, rm, logs, exec, inspect, rootfs.

use std::io::{BufRead, BufReader, IoSlice};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use plugin_api::rest;

use crate::client::{seg, socket_path, Client};
use crate::print;

#[derive(Args)]
pub struct RunArgs {
    #[arg(long)]
    name: Option<String>,
    /// Network to connect (repeatable; the first gives the default route). Default: bridge.
    #[arg(long)]
    network: Vec<String>,
    /// Network alias on the first network (repeatable).
    #[arg(long = "network-alias")]
    network_alias: Vec<String>,
    /// IPv4 address on the first network.
    #[arg(long)]
    ip: Option<String>,
    /// Publish a port: `[HOSTIP:]HOSTPORT[-END]:PORT[/tcp|udp|sctp]` (repeatable).
    #[arg(long = "publish", short = 'p')]
    publish: Vec<String>,
    /// DNS server for names netd's resolver does not know (repeatable).
    #[arg(long)]
    dns: Vec<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// Environment variable `KEY=VALUE` (repeatable).
    #[arg(long = "env", short = 'e')]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long = "workdir", short = 'w')]
    workdir: Option<String>,
    /// Run in the background; output goes to the container's log.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Root filesystem folder.
    rootfs: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

#[derive(Subcommand)]
pub enum RootfsCmd {
    /// Build a root filesystem from the host's static busybox (busybox-static).
    Busybox { dir: String },
}

/// Send one attach request with our stdin/stdout/stderr; print nothing; return the
/// exit code the daemon reports.
fn attach(host: &str, req: &rest::AttachRequest) -> Result<i32> {
    let path = format!("{}.attach", socket_path(host));
    let s = UnixStream::connect(&path).with_context(|| format!("cannot reach netd at {path}"))?;
    let body = serde_json::to_vec(req)?;
    let fds = [
        std::io::stdin().as_raw_fd(),
        std::io::stdout().as_raw_fd(),
        std::io::stderr().as_raw_fd(),
    ];
    let iov = [IoSlice::new(&body)];
    sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .context("sending the attach request")?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("netd closed the attach connection without an exit status");
        }
        match serde_json::from_str::<rest::AttachEvent>(&line)? {
            rest::AttachEvent::Started { .. } => continue,
            rest::AttachEvent::Exited { code } => return Ok(code),
            rest::AttachEvent::Error { message } => return Err(anyhow!(message)),
        }
    }
}

pub fn run(c: &Client, host: &str, a: RunArgs, json: bool) -> Result<i32> {
    let rootfs = std::fs::canonicalize(&a.rootfs)
        .with_context(|| format!("rootfs {}", a.rootfs))?
        .to_string_lossy()
        .into_owned();
    let mut networks: Vec<rest::NetworkConnect> = a
        .network
        .iter()
        .map(|n| rest::NetworkConnect {
            target: n.clone(),
            ..Default::default()
        })
        .collect();
    if networks.is_empty()
        && (!a.publish.is_empty() || !a.network_alias.is_empty() || a.ip.is_some())
    {
        networks.push(rest::NetworkConnect {
            target: "bridge".into(),
            ..Default::default()
        });
    }
    if let Some(first) = networks.first_mut() {
        for p in &a.publish {
            first
                .ports
                .push(rest::parse_publish(p).map_err(|e| anyhow!(e))?);
        }
        first.aliases = a.network_alias.clone();
        first.ip = a.ip.clone();
    }
    for e in &a.env {
        if !e.contains('=') {
            bail!("invalid environment variable {e:?}: expected KEY=VALUE");
        }
    }
    let req = rest::ContainerCreate {
        name: a.name.clone(),
        rootfs,
        argv: a.cmd.clone(),
        env: a.env.clone(),
        cwd: a.workdir.clone(),
        hostname: a.hostname.clone(),
        networks,
        dns: a.dns.clone(),
        rm: a.rm,
        detach: a.detach,
    };
    let ct: rest::Container = c.post("/containers", &req)?;
    if a.detach {
        if json {
            print::json(&ct)
        } else {
            println!("{}", ct.id);
        }
        return Ok(0);
    }
    attach(host, &rest::AttachRequest::Start { id: ct.id })
}

pub fn exec(
    host: &str,
    container: &str,
    cmd: Vec<String>,
    env: Vec<String>,
    workdir: Option<String>,
) -> Result<i32> {
    attach(
        host,
        &rest::AttachRequest::Exec {
            id: container.to_string(),
            argv: cmd,
            env,
            cwd: workdir,
        },
    )
}

pub fn ps(c: &Client, all: bool, json: bool) -> Result<()> {
    let v: Vec<rest::Container> = c.get(&format!("/containers?all={all}"))?;
    if json {
        print::json(&v);
    } else {
        print::containers(&v);
    }
    Ok(())
}

pub fn stop(c: &Client, names: &[String], timeout: u64) -> Result<()> {
    for n in names {
        c.post::<_, serde_json::Value>(
            &format!("/containers/{}/stop?timeout={timeout}", seg(n)),
            &(),
        )?;
        println!("{n}");
    }
    Ok(())
}

pub fn rm(c: &Client, names: &[String], force: bool) -> Result<()> {
    for n in names {
        c.delete(&format!("/containers/{}?force={force}", seg(n)))?;
        println!("{n}");
    }
    Ok(())
}

pub fn logs(c: &Client, name: &str) -> Result<()> {
    use std::io::Write;
    let b = c.get_bytes(&format!("/containers/{}/logs", seg(name)))?;
    std::io::stdout().write_all(&b)?;
    Ok(())
}

pub fn inspect(c: &Client, names: &[String]) -> Result<()> {
    let mut out = vec![];
    for n in names {
        out.push(c.get::<rest::Container>(&format!("/containers/{}", seg(n)))?);
    }
    print::json(&out);
    Ok(())
}

pub fn rootfs(cmd: RootfsCmd) -> Result<()> {
    match cmd {
        RootfsCmd::Busybox { dir } => {
            runtime::rootfs::busybox(std::path::Path::new(&dir)).map_err(|e| anyhow!("{e}"))?;
            println!("{dir}");
        }
    }
    Ok(())
}
