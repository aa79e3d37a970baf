//! `netd`: the container networking daemon.
//!
//! Wiring only: parse flags, set up logging, open the store, pick the real driver
//! implementations, start the controller and serve the REST API (and the Docker plugin
//! API) on unix sockets until SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use tokio::net::UnixListener;

use daemon::controller::{Config, Controller};
use daemon::store::RedbStore;

#[derive(Parser, Debug)]
#[command(name = "netd", version, about = "netd container networking daemon")]
struct Args {
    /// Unix socket of the REST API.
    #[arg(long, env = "NETD_SOCKET", default_value = "/run/netd/netd.sock")]
    socket: PathBuf,
    /// Directory of the embedded state store.
    #[arg(long, env = "NETD_DATA_ROOT", default_value = "/var/lib/netd")]
    data_root: PathBuf,
    /// Directory of runtime files (network namespaces, per-sandbox files).
    #[arg(long, env = "NETD_EXEC_ROOT", default_value = "/run/netd")]
    exec_root: PathBuf,
    /// Default address pools, like dockerd: `base=10.20.0.0/16,size=24` (repeatable).
    #[arg(long = "default-address-pool")]
    default_address_pools: Vec<String>,
    /// Bridge of the pre-defined `bridge` network.
    #[arg(long, default_value = "netd0")]
    default_bridge: String,
    /// Do not create the pre-defined `bridge` network.
    #[arg(long)]
    no_default_bridge: bool,
    /// Name of netd's own nftables table (family inet).
    #[arg(long, default_value = "netd")]
    nft_table: String,
    /// Log level (error, warn, info, debug, trace) or a tracing filter.
    #[arg(long, env = "NETD_LOG", default_value = "info")]
    log_level: String,
    /// Serve published ports from the host with the userland proxy (like dockerd's
    /// --userland-proxy); false uses hairpin NAT with route_localnet instead.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    userland_proxy: bool,
    /// Upstream DNS servers for names the embedded DNS does not know (repeatable);
    /// default: the host's /etc/resolv.conf.
    /// `IP` or `IP:PORT`.
    #[arg(long = "dns", value_parser = parse_upstream)]
    dns: Vec<std::net::SocketAddr>,
    /// Serve the embedded DNS at 127.0.0.11 in sandboxes on user-defined bridge networks.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    embedded_dns: bool,
    /// Socket of the Docker network-driver and IPAM plugin ("" to disable).
    #[arg(long, default_value = "/run/docker/plugins/netd.sock")]
    docker_plugin_socket: String,
    /// On SIGTERM, remove every sandbox and network netd made and its firewall table
    /// (default: keep kernel state so running containers keep working across restarts).
    #[arg(long)]
    cleanup_on_exit: bool,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
    /// Also serve Prometheus metrics (`GET /metrics` only) on this TCP address.
    #[arg(long, env = "NETD_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

fn parse_upstream(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(std::net::SocketAddr::new(ip, 53));
    }
    s.parse()
        .map_err(|e| format!("invalid DNS server {s:?} (IP or IP:PORT): {e}"))
}

fn init_logging(a: &Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&a.log_level)
        .with_context(|| format!("invalid --log-level {:?}", a.log_level))?;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match a.log_format.as_str() {
        "json" => b.json().init(),
        "text" => b.init(),
        f => bail!("invalid --log-format {f:?} (text or json)"),
    }
    Ok(())
}

/// Bind a unix socket, replacing a stale file but refusing while something answers.
pub async fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "another daemon is already listening on {}; refusing to start",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    let l = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(l)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = init_logging(&args) {
        eprintln!("netd: {e:#}");
        std::process::exit(2);
    }
    if let Err(e) = run(args).await {
        tracing::error!("{e:#}");
        eprintln!("netd: {e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut pools = Vec::new();
    for p in &args.default_address_pools {
        pools.push(
            p.parse::<ipam::DefaultPool>()
                .map_err(|e| anyhow::anyhow!("invalid --default-address-pool {p:?}: {e}"))?,
        );
    }
    if pools.is_empty() {
        pools = ipam::DefaultPool::docker_local();
    }
    let cfg = Config {
        data_root: args.data_root.clone(),
        exec_root: args.exec_root.clone(),
        default_pools: pools,
        default_bridge: args.default_bridge.clone(),
        create_default_bridge: !args.no_default_bridge,
        userland_proxy: args.userland_proxy,
    };
    // Refuse early (before touching the store or the kernel) if another netd is live.
    let listener = bind_socket(&args.socket).await?;
    let store: Arc<dyn daemon::store::Store> = Arc::new(RedbStore::open(&args.data_root)?);
    let wired = daemon::wiring::wire(&args.nft_table, args.userland_proxy).await?;
    let mut ctl = Controller::new(cfg, store.clone(), wired.drivers, wired.kernel)?;
    ctl.set_bridge(wired.bridge.clone());
    if args.embedded_dns {
        let upstreams: Vec<std::net::SocketAddr> = if args.dns.is_empty() {
            resolver::parse_resolv_conf(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
            .nameservers
        } else {
            args.dns.clone()
        };
        let r = resolver::Resolver::new(resolver::ResolverConfig {
            upstreams,
            ..Default::default()
        });
        ctl.set_dns(Arc::new(daemon::dns::Dns::new(r)));
    }
    let ctl = Arc::new(ctl);
    let metrics = daemon::metrics::Metrics::new(ctl.clone());
    ctl.start().await?;
    let _fw_watch = daemon::background::spawn_firewall_watch(
        ctl.clone(),
        wired.bridge.clone(),
        std::time::Duration::from_secs(5),
    );
    let _trim = daemon::background::spawn_memory_trim(std::time::Duration::from_secs(5));
    tracing::info!(socket = %args.socket.display(), data_root = %args.data_root.display(), "netd ready");

    // Docker's plugin API on its discovery socket.
    let plugin_task = if args.docker_plugin_socket.is_empty() {
        None
    } else {
        let path = PathBuf::from(&args.docker_plugin_socket);
        let l = bind_socket(&path).await?;
        let backend: Arc<dyn plugin_api::docker::DockerBackend> =
            Arc::new(daemon::docker::DockerPlugin::new(ctl.clone()));
        let app = metrics.instrument("docker", plugin_api::docker::router(backend));
        tracing::info!(socket = %path.display(), "Docker plugin API ready");
        Some((path, tokio::spawn(async move { axum::serve(l, app).await })))
    };
    // Containers of the bundled runtime, and their attach socket.
    let containers =
        daemon::containers::Containers::new(ctl.clone(), store.clone(), &args.data_root)?;
    containers.recover().await;
    let attach_path = daemon::attach::attach_path(&args.socket);
    let attach_l = bind_socket(&attach_path).await?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&attach_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let attach_task = tokio::spawn(daemon::attach::serve(attach_l, containers.clone()));
    let app =
        daemon::api::router(ctl.clone()).merge(daemon::api::container_router(containers.clone()));
    let app = app
        .merge(metrics.router())
        .merge(daemon::explain::router(ctl.clone(), containers.clone()));
    let app = app.layer(axum::middleware::map_response(daemon::api::json_errors));
    let app = metrics.instrument("api", app);
    if let Some(addr) = args.metrics_addr {
        metrics
            .serve_tcp(addr)
            .await
            .with_context(|| format!("--metrics-addr {addr}"))?;
    }
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("signal handler");
        let mut int = signal(SignalKind::interrupt()).expect("signal handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down; kernel state stays in place");
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    if args.cleanup_on_exit {
        tracing::info!("--cleanup-on-exit: removing netd's sandboxes, networks and firewall table");
        for c in containers.list(true).await {
            let _ = containers.remove(&c.id, true).await;
        }
        if let Err(e) = ctl.cleanup_all().await {
            tracing::error!(error = %e, "cleanup on exit");
        }
        if let Err(e) = wired.bridge.teardown_firewall().await {
            tracing::error!(error = %e, "removing the firewall table");
        }
    }
    let _ = std::fs::remove_file(&args.socket);
    attach_task.abort();
    let _ = std::fs::remove_file(&attach_path);
    if let Some((path, task)) = plugin_task {
        task.abort();
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
