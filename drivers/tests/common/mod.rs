//! Shared helpers for the root integration tests.
//!
//! Each test builds a whole "host" inside a network namespace it creates
//! (`TestHost`), and the driver's `RealSys` treats that namespace as the host.
//! Bridges, veths, sysctls and the nft table therefore never touch the
//! machine's real namespace, and deleting the namespace in `Drop` removes
//! everything even when an assertion failed half-way. Names still carry the
//! pid so that nothing collides if a test is pointed at the real host.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drivers::bridge::{BridgeConfig, BridgeDriver};
use drivers::sys::netns::run_in_netns_blocking;
use drivers::sys::real::RealSys;
use drivers::sys::{create_netns, delete_netns, Ns, Sys};
use drivers::{sandbox, Driver, EndpointSpec, NetworkSpec, SandboxSpec, SubnetSpec};
use ipnetwork::IpNetwork;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (loudly) when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("SKIPPED: this test needs root (network namespaces)");
            return;
        }
    };
}

/// Namespaces created by a test; all deleted on drop.
pub struct TestHost {
    pub dir: PathBuf,
    pub host: PathBuf,
    pub sys: Arc<RealSys>,
    pub driver: BridgeDriver,
    pub table: String,
    extra: std::sync::Mutex<Vec<PathBuf>>,
}

impl TestHost {
    pub async fn new(test: &str) -> TestHost {
        Self::new_with(test, true).await
    }

    /// Like [`TestHost::new`], with the daemon's `--userland-proxy` setting.
    pub async fn new_with(test: &str, userland_proxy: bool) -> TestHost {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("netd-drv-{test}-{pid}"));
        let host = dir.join("host");
        let _ = delete_netns(&host);
        create_netns(&host).await.expect("create host netns");
        let sys = Arc::new(RealSys::with_host_netns(&host));
        let table = format!("netd_t{pid}");
        let driver = BridgeDriver::new(
            sys.clone(),
            BridgeConfig {
                table: table.clone(),
                docker_coexistence: true,
                userland_proxy,
            },
        );
        driver.init().await.expect("init firewall");
        TestHost {
            dir,
            host,
            sys,
            driver,
            table,
            extra: Default::default(),
        }
    }

    /// A fresh sandbox namespace under the test dir.
    pub async fn netns(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        let _ = delete_netns(&p);
        create_netns(&p).await.expect("create sandbox netns");
        self.extra.lock().unwrap().push(p.clone());
        p
    }

    /// Run a command inside the host namespace (nsenter), return success.
    pub fn host_cmd(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("nsenter")
            .arg(format!("--net={}", self.host.display()))
            .args(args)
            .output()
            .expect("nsenter")
    }

    /// Number of rules in our table.
    pub async fn rule_count(&self) -> usize {
        let v = self
            .sys
            .nft_list(&Ns::Host, &["list", "table", "inet", &self.table])
            .await
            .unwrap()
            .expect("table exists");
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o.get("rule").is_some())
            .count()
    }

    /// Elements per set in our table.
    pub async fn set_elements(&self) -> BTreeMap<String, usize> {
        let v = self
            .sys
            .nft_list(&Ns::Host, &["list", "table", "inet", &self.table])
            .await
            .unwrap()
            .expect("table exists");
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.get("set"))
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["elem"].as_array().map_or(0, |e| e.len()),
                )
            })
            .collect()
    }

    pub async fn host_links(&self) -> Vec<String> {
        self.sys
            .list_links(&Ns::Host)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        for p in self.extra.lock().unwrap().drain(..) {
            let _ = delete_netns(&p);
        }
        // Everything else (bridges, veths, nft table, sysctls) lives in here.
        let _ = delete_netns(&self.host);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn id64(tag: &str) -> String {
    let mut s: String = tag.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    while s.len() < 64 {
        s.push('0');
    }
    s.truncate(64);
    s
}

pub fn network(tag: &str, bridge: &str, v4: &str, v6: Option<&str>) -> NetworkSpec {
    let sub = |s: &str| {
        let n: IpNetwork = s.parse().unwrap();
        let gw = match n {
            IpNetwork::V4(n) => IpAddr::V4(n.nth(1).unwrap()),
            IpNetwork::V6(n) => {
                let mut o = n.network().octets();
                o[15] = 1;
                IpAddr::V6(o.into())
            }
        };
        SubnetSpec {
            subnet: n,
            gateway: Some(gw),
        }
    };
    let mut options = BTreeMap::new();
    options.insert(
        "com.docker.network.bridge.name".to_string(),
        bridge.to_string(),
    );
    NetworkSpec {
        id: id64(tag),
        name: tag.into(),
        options,
        ipv4: vec![sub(v4)],
        ipv6: v6.map(|s| vec![sub(s)]).unwrap_or_default(),
        internal: false,
        enable_ipv6: v6.is_some(),
    }
}

/// Everything the daemon does to attach a sandbox to a network.
pub async fn attach(
    t: &TestHost,
    net: &NetworkSpec,
    ep_tag: &str,
    addrs: &[&str],
    sb: &Path,
    ifname: &str,
    default_route: bool,
) -> EndpointSpec {
    let ep = EndpointSpec {
        id: id64(ep_tag),
        network_id: net.id.clone(),
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        mac: None,
    };
    let info = t
        .driver
        .create_endpoint(net, &ep)
        .await
        .expect("create_endpoint");
    let sbs = SandboxSpec {
        id: ep_tag.into(),
        netns_path: sb.display().to_string(),
    };
    let join = t.driver.join(net, &ep, &sbs).await.expect("join");
    sandbox::add_interface(
        t.sys.as_ref(),
        sb,
        info.container_ifname.as_deref().unwrap(),
        ifname,
        info.mac.as_deref(),
        &ep.addresses,
    )
    .await
    .expect("add_interface");
    if default_route {
        sandbox::set_default_gateway(t.sys.as_ref(), sb, join.gateway4, join.gateway6)
            .await
            .expect("default gw");
    }
    ep
}

/// An echo server bound inside `ns`; answers each connection with "pong".
pub struct Echo {
    pub port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

pub fn echo_server(ns: &Path, bind: IpAddr) -> Echo {
    let l: TcpListener =
        run_in_netns_blocking(ns, move || TcpListener::bind(SocketAddr::new(bind, 0)))
            .unwrap()
            .expect("bind");
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        while !s2.load(std::sync::atomic::Ordering::SeqCst) {
            match l.accept() {
                Ok((mut c, _)) => {
                    c.set_nonblocking(false).ok();
                    c.set_read_timeout(Some(Duration::from_secs(2))).ok();
                    let mut b = [0u8; 4];
                    if c.read_exact(&mut b).is_ok() && &b == b"ping" {
                        let _ = c.write_all(b"pong");
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Echo { port, stop }
}

/// Whether a TCP ping-pong from inside `from` to `to:port` works.
pub fn tcp_ok(from: &Path, to: IpAddr, port: u16) -> bool {
    run_in_netns_blocking(from, move || {
        let mut s =
            TcpStream::connect_timeout(&SocketAddr::new(to, port), Duration::from_millis(1500))?;
        s.set_read_timeout(Some(Duration::from_millis(1500)))?;
        s.write_all(b"ping")?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
        Ok::<bool, std::io::Error>(&b == b"pong")
    })
    .unwrap()
    .unwrap_or(false)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A short bridge name with the pid: `<p><pid mod 1e6>`, <= 15 characters.
pub fn brname(p: &str) -> String {
    format!("{p}{}", std::process::id() % 1_000_000)
}
