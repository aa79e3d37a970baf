//! `netd-proxy`: a drop-in for `docker-proxy` (dockerd's `userland-proxy-path`), built on
//! the `proxy` library. Same flags, same fd-3 status pipe and fd-4 listener protocol;
//! runs until SIGTERM or SIGINT.

use std::process::ExitCode;

use anyhow::Context;
use proxy::cli::{self, DockerProxyArgs, StatusPipe};
use proxy::{Proxy, ProxyConfig, ProxySpec, StdListener};

/// docker-proxy's UDP flow timeout.
const DOCKER_UDP_TIMEOUT_SECS: u64 = 90;

fn main() -> ExitCode {
    // Parsing opens nothing, so fds 3 and 4 are still the daemon's when claimed below.
    let args = match cli::parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{}", cli::usage());
            return ExitCode::from(2);
        }
    };
    if args.help {
        eprint!("{}", cli::usage());
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!(
            "netd-proxy version {} (docker-proxy compatible)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let status = StatusPipe::inherit();
    let listen_fd = if args.use_listen_fd {
        cli::inherit_listen_fd()
    } else {
        None
    };

    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            status.fail(&format!("cannot start runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(args, status, listen_fd))
}

/// Worker threads: `NETD_PROXY_THREADS`, else the CPU count capped at 4.
fn worker_threads() -> usize {
    env_usize("NETD_PROXY_THREADS").unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(2)
    })
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok().filter(|n| *n > 0)
}

async fn run(
    args: DockerProxyArgs,
    status: StatusPipe,
    listen_fd: Option<std::os::fd::OwnedFd>,
) -> ExitCode {
    let handle = match start(&args, listen_fd) {
        Ok(h) => h,
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!(cause = %msg, "proxy failed to start");
            status.fail(&msg);
            return ExitCode::from(1);
        }
    };
    // Handlers are installed before reporting ready, so a stop sent right after the
    // ready message is not lost.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            status.fail(&format!("{e:#}"));
            return ExitCode::from(1);
        }
    };
    status.ready();
    signals.wait().await;
    handle.remove().await;
    ExitCode::SUCCESS
}

fn start(
    args: &DockerProxyArgs,
    listen_fd: Option<std::os::fd::OwnedFd>,
) -> anyhow::Result<proxy::ProxyHandle> {
    let proto = args.proto()?;
    let target = args.target()?;
    let config = ProxyConfig {
        udp_idle_timeout: std::time::Duration::from_secs(DOCKER_UDP_TIMEOUT_SECS),
        pipe_size: env_usize("NETD_PROXY_PIPE_SIZE").or(ProxyConfig::default().pipe_size),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::new(config)?;
    if args.use_listen_fd {
        let fd = listen_fd.context("-use-listen-fd given but fd 4 is not open")?;
        let listener = StdListener::from_fd(fd)?;
        anyhow::ensure!(
            listener.proto() == proto,
            "listener fd is a {} socket but -proto is {proto}",
            listener.proto()
        );
        Ok(proxy.add_with_listener(listener, target)?)
    } else {
        let listen = args.listen()?;
        Ok(proxy.add(ProxySpec {
            proto,
            listen,
            target,
        })?)
    }
}

/// SIGTERM (parent death, `docker stop` of the daemon) and SIGINT (dockerd's stop).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
