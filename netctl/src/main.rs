//! `netctl`: the command line of netd. Parses arguments, calls netd's socket, prints.
//! Human tables by default, `--json` for scripts; a failure prints one line and exits 1.

mod client;
mod containers;
mod doctor;
mod explain;
mod print;

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Parser, Subcommand};
use plugin_api::rest;

use client::{seg, Client};

#[derive(Parser)]
#[command(name = "netctl", version, about = "Inspect and manage netd")]
struct Cli {
    /// netd's socket (`unix:///path` or a path).
    #[arg(
        long,
        short = 'H',
        global = true,
        env = "NETD_HOST",
        default_value = "/run/netd/netd.sock"
    )]
    host: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage sandboxes (network namespaces with their endpoints).
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Inspect endpoints.
    #[command(subcommand)]
    Endpoint(EndpointCmd),
    /// Show client and daemon versions.
    Version,
    /// Daemon-wide operations.
    #[command(subcommand)]
    System(SystemCmd),
    /// Run a command in a new container (netd's bundled runtime).
    Run(containers::RunArgs),
    /// List containers.
    Ps {
        /// Also exited containers.
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Stop containers (SIGTERM, then SIGKILL after the timeout).
    Stop {
        #[arg(long = "time", short = 't', default_value_t = 10)]
        time: u64,
        names: Vec<String>,
    },
    /// Remove containers.
    Rm {
        #[arg(long, short = 'f')]
        force: bool,
        names: Vec<String>,
    },
    /// Rename a container (its DNS name changes at once).
    Rename { container: String, new_name: String },
    /// Print a detached container's output.
    Logs { name: String },
    /// Run a command inside a running container (all its namespaces).
    Exec {
        #[arg(long = "env", short = 'e')]
        env: Vec<String>,
        #[arg(long = "workdir", short = 'w')]
        workdir: Option<String>,
        container: String,
        #[arg(trailing_var_arg = true, required = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Show containers in detail.
    Inspect { names: Vec<String> },
    /// Build root filesystems for containers.
    #[command(subcommand)]
    Rootfs(containers::RootfsCmd),
    /// Explain why: a refused `network rm`, who holds a port, what overlaps a subnet.
    #[command(subcommand)]
    Explain(explain::ExplainCmd),
    /// Check this machine for what netd needs, and how to fix what is missing.
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum NetworkCmd {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls,
    /// Show networks in detail.
    Inspect { names: Vec<String> },
    /// Remove networks.
    #[command(alias = "remove")]
    Rm { names: Vec<String> },
    /// Connect a sandbox to a network.
    Connect(ConnectArgs),
    /// Disconnect a sandbox from a network.
    Disconnect { network: String, sandbox: String },
}

#[derive(Args)]
struct NetworkCreateArgs {
    /// Driver: bridge (default), host, null.
    #[arg(long, short = 'd')]
    driver: Option<String>,
    /// Subnet in CIDR form (repeatable: one per IPv4/IPv6 subnet).
    #[arg(long)]
    subnet: Vec<String>,
    /// Gateway of the subnet that contains it.
    #[arg(long)]
    gateway: Vec<String>,
    /// Allocate container addresses from this sub-range.
    #[arg(long = "ip-range")]
    ip_range: Vec<String>,
    /// Reserved address `name=IP` (repeatable).
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// Enable IPv6.
    #[arg(long)]
    ipv6: bool,
    /// No external connectivity.
    #[arg(long)]
    internal: bool,
    /// Driver option `key=value` (repeatable).
    #[arg(long = "opt", short = 'o')]
    opt: Vec<String>,
    /// Label `key=value` (repeatable).
    #[arg(long)]
    label: Vec<String>,
    name: String,
}

#[derive(Args)]
struct ConnectArgs {
    #[arg(long)]
    alias: Vec<String>,
    #[arg(long)]
    ip: Option<String>,
    #[arg(long)]
    ip6: Option<String>,
    network: String,
    sandbox: String,
}

#[derive(Subcommand)]
enum SandboxCmd {
    /// Create a sandbox (a network namespace) and connect it to networks.
    Create {
        #[arg(long)]
        name: Option<String>,
        /// Adopt an existing network namespace instead of creating one.
        #[arg(long)]
        netns: Option<String>,
        /// Network to connect (repeatable, in order; the first gives the default route).
        #[arg(long)]
        network: Vec<String>,
        #[arg(long)]
        hostname: Option<String>,
        #[arg(long)]
        dns: Vec<String>,
        /// Publish a port on the first network: `[HOSTIP:]HOSTPORT[-END]:PORT[/proto]`.
        #[arg(long = "publish", short = 'p')]
        publish: Vec<String>,
        /// Network alias on the first network (repeatable).
        #[arg(long = "network-alias")]
        network_alias: Vec<String>,
    },
    /// List sandboxes.
    #[command(alias = "list")]
    Ls,
    /// Show sandboxes with their interfaces, addresses and routes.
    Inspect { names: Vec<String> },
    /// Remove sandboxes (and their endpoints and namespaces).
    #[command(alias = "remove")]
    Rm { names: Vec<String> },
    /// Rename a sandbox (its DNS name changes at once).
    Rename { sandbox: String, new_name: String },
}

#[derive(Subcommand)]
enum SystemCmd {
    /// Compare the store with the kernel and repair both ways.
    Reconcile,
}

#[derive(Subcommand)]
enum EndpointCmd {
    /// List endpoints.
    #[command(alias = "list")]
    Ls,
}

fn kv(what: &str, s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow!("invalid {what} {s:?}: expected key=value"))
}

fn network_create_body(a: &NetworkCreateArgs) -> Result<rest::NetworkCreate> {
    let mut ipam: Vec<rest::IpamConfig> = a
        .subnet
        .iter()
        .map(|s| rest::IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    // Like docker: each --gateway/--ip-range/--aux-address belongs to the subnet that
    // contains it.
    let owner = |ipam: &mut Vec<rest::IpamConfig>, what: &str, ip: &str| -> Result<usize> {
        let addr: ipnet_lite::Addr = ip
            .parse()
            .map_err(|e| anyhow!("invalid {what} {ip:?}: {e}"))?;
        ipam.iter()
            .position(|c| ipnet_lite::contains(c.subnet.as_deref().unwrap_or(""), &addr))
            .ok_or_else(|| anyhow!("{what} {ip} is not in any --subnet"))
    };
    for g in &a.gateway {
        let i = owner(&mut ipam, "gateway", g)?;
        if ipam[i].gateway.is_some() {
            bail!(
                "two gateways for subnet {}",
                ipam[i].subnet.as_deref().unwrap_or("")
            );
        }
        ipam[i].gateway = Some(g.clone());
    }
    for r in &a.ip_range {
        let ip = r.split('/').next().unwrap_or("");
        let i = owner(&mut ipam, "ip-range", ip)?;
        ipam[i].ip_range = Some(r.clone());
    }
    for x in &a.aux_address {
        let (k, v) = kv("aux-address", x)?;
        let i = owner(&mut ipam, "aux-address", &v)?;
        ipam[i].aux_addresses.insert(k, v);
    }
    let mut options = BTreeMap::new();
    for o in &a.opt {
        let (k, v) = kv("option", o)?;
        options.insert(k, v);
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = kv("label", l)?;
        labels.insert(k, v);
    }
    Ok(rest::NetworkCreate {
        name: a.name.clone(),
        driver: a.driver.clone(),
        ipam,
        ipv6: a.ipv6,
        internal: a.internal,
        options,
        labels,
        owner: None,
    })
}

/// Just enough address parsing for matching flags to subnets (netctl has no ipnetwork).
mod ipnet_lite {
    use std::net::IpAddr;
    pub type Addr = IpAddr;
    pub fn contains(cidr: &str, a: &IpAddr) -> bool {
        let Some((net, len)) = cidr.split_once('/') else {
            return false;
        };
        let (Ok(net), Ok(len)) = (net.parse::<IpAddr>(), len.parse::<u32>()) else {
            return false;
        };
        match (net, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) if len <= 32 => {
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(n) & m == u32::from(*a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) if len <= 128 => {
                let m = if len == 0 {
                    0
                } else {
                    u128::MAX << (128 - len)
                };
                u128::from(n) & m == u128::from(*a) & m
            }
            _ => false,
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let c = Client::new(&cli.host)?;
    let json = cli.json;
    match cli.cmd {
        Cmd::Run(a) => return containers::run(&c, &cli.host, a, json),
        Cmd::Exec {
            env,
            workdir,
            container,
            cmd,
        } => return containers::exec(&cli.host, &container, cmd, env, workdir),
        Cmd::System(SystemCmd::Reconcile) => {
            let v: serde_json::Value = c.post("/system/reconcile", &())?;
            print::json(&v);
        }
        Cmd::Ps { all } => containers::ps(&c, all, json)?,
        Cmd::Stop { time, names } => containers::stop(&c, &names, time)?,
        Cmd::Rm { force, names } => containers::rm(&c, &names, force)?,
        Cmd::Rename {
            container,
            new_name,
        } => {
            c.post::<_, serde_json::Value>(
                &format!("/containers/{}/rename", seg(&container)),
                &serde_json::json!({ "name": new_name }),
            )?;
        }
        Cmd::Logs { name } => containers::logs(&c, &name)?,
        Cmd::Inspect { names } => containers::inspect(&c, &names)?,
        Cmd::Rootfs(r) => containers::rootfs(r)?,
        Cmd::Explain(e) => explain::run(&c, e, json)?,
        Cmd::Doctor => return Ok(doctor::run(&cli.host, json)),
        Cmd::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "netctl", &mut std::io::stdout());
        }
        Cmd::Version => {
            let v: rest::VersionInfo = c.get("/version")?;
            if json {
                print::json(&serde_json::json!({"client": env!("CARGO_PKG_VERSION"), "daemon": v}));
            } else {
                println!("Client: netctl {}", env!("CARGO_PKG_VERSION"));
                println!("Daemon: netd {} (API {})", v.version, v.api_version);
            }
        }
        Cmd::Network(n) => match n {
            NetworkCmd::Create(a) => {
                let body = network_create_body(&a)?;
                let n: rest::Network = c.post("/networks", &body)?;
                if json {
                    print::json(&n)
                } else {
                    println!("{}", n.id)
                }
            }
            NetworkCmd::Ls => {
                let v: Vec<rest::Network> = c.get("/networks")?;
                if json {
                    print::json(&v)
                } else {
                    print::networks(&v)
                }
            }
            NetworkCmd::Inspect { names } => {
                let mut out = Vec::new();
                for n in &names {
                    out.push(c.get::<rest::Network>(&format!("/networks/{}", seg(n)))?);
                }
                print::json(&out);
            }
            NetworkCmd::Rm { names } => {
                for n in &names {
                    c.delete(&format!("/networks/{}", seg(n)))?;
                    if !json {
                        println!("{n}");
                    }
                }
            }
            NetworkCmd::Connect(a) => {
                let body = rest::NetworkConnect {
                    target: a.sandbox.clone(),
                    aliases: a.alias.clone(),
                    ip: a.ip.clone(),
                    ip6: a.ip6.clone(),
                    ..Default::default()
                };
                let e: rest::Endpoint =
                    c.post(&format!("/networks/{}/connect", seg(&a.network)), &body)?;
                if json {
                    print::json(&e)
                } else {
                    println!("{}", e.id)
                }
            }
            NetworkCmd::Disconnect { network, sandbox } => {
                let body = rest::NetworkDisconnect {
                    sandbox,
                    force: false,
                };
                c.post::<_, serde_json::Value>(
                    &format!("/networks/{}/disconnect", seg(&network)),
                    &body,
                )?;
            }
        },
        Cmd::Sandbox(s) => match s {
            SandboxCmd::Create {
                name,
                netns,
                network,
                hostname,
                dns,
                publish,
                network_alias,
            } => {
                let mut networks: Vec<rest::NetworkConnect> = network
                    .into_iter()
                    .map(|n| rest::NetworkConnect {
                        target: n,
                        ..Default::default()
                    })
                    .collect();
                if (!publish.is_empty() || !network_alias.is_empty()) && networks.is_empty() {
                    bail!("--publish and --network-alias need a --network");
                }
                if let Some(first) = networks.first_mut() {
                    for p in &publish {
                        first
                            .ports
                            .push(rest::parse_publish(p).map_err(|e| anyhow!(e))?);
                    }
                    first.aliases = network_alias;
                }
                let body = rest::SandboxCreate {
                    name,
                    netns_path: netns,
                    hostname,
                    dns,
                    networks,
                };
                let s: rest::Sandbox = c.post("/sandboxes", &body)?;
                if json {
                    print::json(&s)
                } else {
                    println!("{}", s.id)
                }
            }
            SandboxCmd::Ls => {
                let v: Vec<rest::Sandbox> = c.get("/sandboxes")?;
                if json {
                    print::json(&v)
                } else {
                    print::sandboxes(&v)
                }
            }
            SandboxCmd::Inspect { names } => {
                let mut out = Vec::new();
                for n in &names {
                    out.push(
                        c.get::<rest::Sandbox>(&format!("/sandboxes/{}?kernel=true", seg(n)))?,
                    );
                }
                print::json(&out);
            }
            SandboxCmd::Rename { sandbox, new_name } => {
                c.post::<_, serde_json::Value>(
                    &format!("/sandboxes/{}/rename", seg(&sandbox)),
                    &serde_json::json!({ "name": new_name }),
                )?;
            }
            SandboxCmd::Rm { names } => {
                for n in &names {
                    c.delete(&format!("/sandboxes/{}", seg(n)))?;
                    if !json {
                        println!("{n}");
                    }
                }
            }
        },
        Cmd::Endpoint(EndpointCmd::Ls) => {
            let v: Vec<rest::Endpoint> = c.get("/endpoints")?;
            if json {
                print::json(&v)
            } else {
                print::endpoints(&v)
            }
        }
    }
    Ok(0)
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("netctl: {e:#}");
            std::process::exit(125);
        }
    }
}
