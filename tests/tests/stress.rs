//! Load test: the daemon stays responsive while three loads run at once against one netd:
//! 50 concurrent CNI ADDs (then their 50 DELs) through the real `netd-cni` binary, driven as
//! a runtime drives it; 1,000 DNS queries per second to 127.0.0.11 from inside a netd
//! sandbox (container names answered by netd, external names through a stub upstream);
//! 200 TCP connections at once through a published port (userland proxy) to an echo server
//! in another sandbox. Throughout, `GET /version` and `netctl network ls` are timed.
//!
//! Asserted, over two identical rounds: zero errors in the three loads (every ADD and DEL
//! succeeds; every DNS lookup gets exactly the right answer, a UDP query without an answer
//! being resent after 1 s up to 3 attempts as stub resolvers do, with the resends printed;
//! every echo comes back intact with all 200 connections open at once), the API always
//! answers within a generous 5 s (timings are printed, never asserted tightly), and the
//! daemon's RSS returns near where it began (see `RSS_SLACK_KIB`). Printed: API latencies,
//! DNS rate and latency, UDP receive-buffer drops, connection counts, RSS before, peak and
//! after each round (`NETD_STRESS_ROUNDS` runs more rounds to watch RSS settle).
//!
//! Run: `cargo build --workspace --bins && cargo test -p tests --test stress -- --nocapture`

#[path = "stress/dns.rs"]
mod dns;
#[path = "cni/support.rs"]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use dns::{dns_answer, dns_load, dns_query, udp_rcvbuf_errors, DnsReport};
use netd_tests::stubdns::StubDns;
use netd_tests::{bin, in_ns_thread, require_root, uniq, Daemon, TestNs};
use serde_json::{json, Value};
use support::{add_list, del_list, Caps, Env, PluginDir};

const CNI_CONTAINERS: usize = 50;
const DNS_QPS: u64 = 1_000;
const DNS_MIN_SECS: u64 = 10;
const TCP_CLIENTS: usize = 200;
/// Longest the DNS and TCP loads may run while waiting for the CNI calls.
const LOAD_MAX: Duration = Duration::from_secs(90);
/// The API bound asserted (latencies are printed; only a stall fails the test).
const API_BOUND: Duration = Duration::from_secs(5);
/// RSS after ≤ before × 1.5 + 20 MiB: allocators keep freed memory (glibc malloc arenas
/// of the tokio workers, hyper/axum buffers), so RSS never returns exactly; a leak per
/// query, connection or attachment at this volume still shows (see the closing notes).
const RSS_SLACK_KIB: u64 = 20 * 1024;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 for the published port.
fn free_port() -> u16 {
    for _ in 0..50 {
        let p = 10_000 + netd_tests::rand_u16() % 22_000;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port");
}

/// `10.X.(Y+15).0/24`: the top /24 of the daemon's private pool (netd's own picks start at
/// the bottom), for the CNI network.
fn top_subnet(pool: &str) -> String {
    let (x, y) = netd_tests::pool_prefix(pool);
    format!("10.{x}.{}.0/24", y + 15)
}

// ---- TCP through the published port ----

/// Echo server on 0.0.0.0:80 inside the sandbox (one thread per connection).
fn echo_server(ns: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Result<u64>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = in_ns_thread(ns, move || -> u64 {
        let l = TcpListener::bind("0.0.0.0:80").expect("bind :80 in sandbox");
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let mut accepted = 0;
        while !stop.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((mut s, _)) => {
                    accepted += 1;
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).ok();
                        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                        let mut b = [0u8; 4096];
                        while let Ok(n) = s.read(&mut b) {
                            if n == 0 || s.write_all(&b[..n]).is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        accepted
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("echo server up");
    std::thread::spawn(move || h.join().unwrap())
}

#[derive(Debug, Default)]
struct TcpReport {
    connections: u64,
    exchanges: u64,
    max_open: u64,
    errors: Vec<String>,
}

/// `TCP_CLIENTS` clients, each reconnecting in a loop: connect, 10 echo round trips of
/// 512 bytes 100 ms apart, close (about 200 new connections and 2,000 round trips a
/// second: concurrency, not throughput, is the point here). They start together (a barrier), so 200 connections
/// are open at once throughout.
fn tcp_load(port: u16, stop: Arc<AtomicBool>) -> TcpReport {
    let open = Arc::new(AtomicU64::new(0));
    let max_open = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(TCP_CLIENTS));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let hs: Vec<_> = (0..TCP_CLIENTS)
        .map(|c| {
            let (open, max_open, barrier, stop) = (
                open.clone(),
                max_open.clone(),
                barrier.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let (mut conns, mut xs, mut errors) = (0u64, 0u64, vec![]);
                barrier.wait();
                let mut first = true;
                while first || !stop.load(Ordering::SeqCst) {
                    first = false;
                    let r = (|| -> Result<u64> {
                        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                        max_open.fetch_max(now, Ordering::SeqCst);
                        let res = (|| -> Result<u64> {
                            s.set_read_timeout(Some(Duration::from_secs(5)))?;
                            let mut n = 0;
                            for j in 0..10u32 {
                                let msg: Vec<u8> =
                                    (0..512u32).map(|i| (i ^ j ^ c as u32) as u8).collect();
                                s.write_all(&msg)?;
                                let mut back = vec![0u8; msg.len()];
                                s.read_exact(&mut back)?;
                                ensure!(back == msg, "echo differs");
                                n += 1;
                                std::thread::sleep(Duration::from_millis(100));
                            }
                            Ok(n)
                        })();
                        open.fetch_sub(1, Ordering::SeqCst);
                        res
                    })();
                    conns += 1;
                    match r {
                        Ok(n) => xs += n,
                        Err(e) => errors.push(format!("client {c}: {e:#}")),
                    }
                }
                (conns, xs, errors)
            })
        })
        .collect();
    let mut rep = TcpReport::default();
    for h in hs {
        let (c, x, e) = h.join().unwrap();
        rep.connections += c;
        rep.exchanges += x;
        rep.errors.extend(e);
    }
    rep.max_open = max_open.load(Ordering::SeqCst);
    rep
}

// ---- API latency and RSS ----

/// Latencies of one kind of API call, sampled in its own thread.
#[derive(Debug, Default, Clone)]
struct Probe {
    calls: u64,
    max: Duration,
    over_1s: u64,
    errors: Vec<String>,
}

impl Probe {
    fn run(every: Duration, stop: &AtomicBool, mut call: impl FnMut() -> Result<()>) -> Probe {
        let mut p = Probe::default();
        while !stop.load(Ordering::SeqCst) {
            let t = Instant::now();
            if let Err(e) = call() {
                p.errors.push(format!("{e:#}"));
            }
            let el = t.elapsed();
            p.max = p.max.max(el);
            p.over_1s += u64::from(el > Duration::from_secs(1));
            p.calls += 1;
            if let Some(rest) = every.checked_sub(el) {
                std::thread::sleep(rest);
            }
        }
        p
    }
}

#[derive(Debug, Default)]
struct Monitor {
    /// `GET /version` (no controller state involved).
    version: Probe,
    /// `GET /networks` (what `netctl network ls` asks), raw on the socket.
    networks: Probe,
    /// `netctl network ls`, the whole command.
    netctl_ls: Probe,
    rss_peak: u64,
}

fn monitor(d: &Daemon, pid: u32, stop: &AtomicBool) -> Monitor {
    std::thread::scope(|s| {
        let version = s.spawn(|| {
            Probe::run(Duration::from_millis(100), stop, || {
                match d.raw("GET", "/version", b"")? {
                    (200, b) if b.contains("api_version") => Ok(()),
                    other => anyhow::bail!("GET /version: {other:?}"),
                }
            })
        });
        let networks = s.spawn(|| {
            Probe::run(Duration::from_millis(200), stop, || {
                match d.raw("GET", "/networks", b"")? {
                    (200, b) if b.contains("\"st\"") => Ok(()),
                    other => anyhow::bail!("GET /networks: {other:?}"),
                }
            })
        });
        let netctl_ls = s.spawn(|| {
            Probe::run(Duration::from_millis(500), stop, || {
                let o = d.netctl(&["network", "ls"])?;
                ensure!(o.status.success(), "netctl network ls: {o:?}");
                Ok(())
            })
        });
        let mut peak = 0;
        while !stop.load(Ordering::SeqCst) {
            peak = rss_kib(pid).max(peak);
            std::thread::sleep(Duration::from_millis(50));
        }
        Monitor {
            version: version.join().unwrap(),
            networks: networks.join().unwrap(),
            netctl_ls: netctl_ls.join().unwrap(),
            rss_peak: peak,
        }
    })
}

// ---- CNI ----

struct CniSide {
    list: Value,
    nss: Vec<TestNs>,
    envs: Vec<Env>,
    _pd: PluginDir,
}

fn cni_side(d: &mut Daemon) -> Result<CniSide> {
    let br = format!("sc{}", uniq());
    d.cleanup_bridges.push(br.clone());
    let list = json!({
        "cniVersion": "1.0.0",
        "name": format!("stress-{}", uniq()),
        "plugins": [{
            "type": "netd-cni",
            "socket": d.socket.to_string_lossy(),
            "bridge": br,
            "subnet": top_subnet(&d.pool),
        }],
    });
    let pd = PluginDir::new(&bin("netd-cni"))?;
    let nss: Vec<TestNs> = (0..CNI_CONTAINERS)
        .map(|_| TestNs::new("stress"))
        .collect::<Result<_>>()?;
    let envs = nss
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            Env::new(
                &format!("stress-{i}-{}", uniq()),
                &ns.path(),
                "eth0",
                &pd.cni_path(),
            )
        })
        .collect();
    Ok(CniSide {
        list,
        nss,
        envs,
        _pd: pd,
    })
}

/// Sandbox create through netctl; (netns path, first address).
fn sandbox(d: &Daemon, args: &[&str]) -> Result<(String, Ipv4Addr)> {
    let mut a = vec!["sandbox", "create"];
    a.extend_from_slice(args);
    let v = d.json(&a)?;
    let ns = v["netns_path"].as_str().context("netns_path")?.to_string();
    let ip = v["endpoints"][0]["addresses"][0]
        .as_str()
        .and_then(|s| s.split('/').next())
        .context("address")?
        .parse()?;
    Ok((ns, ip))
}

#[test]
fn daemon_stays_responsive_under_load() -> Result<()> {
    if !require_root("daemon_stays_responsive_under_load") {
        return Ok(());
    }
    let ext: HashMap<String, Ipv4Addr> = (0..5)
        .map(|i| {
            (
                format!("ext{i}.stress.test"),
                Ipv4Addr::new(192, 0, 2, 10 + i),
            )
        })
        .collect();
    let stub = StubDns::start(&netd_tests::stubdns::loopback_addr(), ext.clone(), false)?;
    let mut d = Daemon::start_with(&["--dns", &stub.addr.to_string()])?;
    let pid = d.pid().context("netd pid")?;
    let rss_start = rss_kib(pid);
    d.ok(&["network", "create", "st"])?;
    // Five named containers to resolve, a DNS client, and the echo server behind -p.
    let mut names: Vec<(String, Ipv4Addr)> = vec![];
    for i in 0..5 {
        let n = format!("t{i}");
        let (_, ip) = sandbox(&d, &["--name", &n, "--network", "st"])?;
        names.push((n, ip));
    }
    names.extend(ext.iter().map(|(n, ip)| (n.clone(), *ip)));
    let (client_ns, _) = sandbox(&d, &["--name", "dnsc", "--network", "st"])?;
    let port = free_port();
    let (echo_ns, _) = sandbox(
        &d,
        &[
            "--name",
            "echo",
            "--network",
            "st",
            "-p",
            &format!("127.0.0.1:{port}:80"),
        ],
    )?;
    let echo_stop = Arc::new(AtomicBool::new(false));
    let echo = echo_server(&echo_ns, echo_stop.clone());
    let cni = cni_side(&mut d)?;

    // Warm-up: one query per name, a few proxied connections, one CNI ADD and DEL, so
    // that one-time allocations (runtimes, caches, the CNI network) count before "before".
    let warm = in_ns_thread(&client_ns, {
        let names = names.clone();
        move || -> Result<()> {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            for (i, (n, want)) in names.iter().enumerate() {
                s.send_to(&dns_query(i as u16, n), "127.0.0.11:53")?;
                let mut b = [0u8; 1500];
                let k = s.recv(&mut b)?;
                let (_, rc, a) = dns_answer(&b[..k]).context("answer")?;
                ensure!(rc == 0 && a == vec![*want], "warm-up {n}: rcode {rc} {a:?}");
            }
            Ok(())
        }
    });
    warm.join().unwrap().context("warm-up DNS thread")??;
    for _ in 0..5 {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"warm")?;
        let mut b = [0u8; 4];
        s.read_exact(&mut b)?;
        ensure!(&b == b"warm", "warm-up echo");
    }
    let r = add_list(&cni.list, &cni.envs[0], &Caps::new())?;
    del_list(&cni.list, &cni.envs[0], &Caps::new(), Some(&r))?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = rss_kib(pid);
    let rcvbuf_errors_before = udp_rcvbuf_errors(&client_ns);

    // Two identical rounds: memory a round leaks shows as growth from the first "after"
    // to the second, beside what the allocator keeps after the first.
    let mut rounds = vec![];
    for round in 1..=round_count() {
        let r = load_round(&d, pid, &cni, &names, &client_ns, port);
        std::thread::sleep(Duration::from_secs(3)); // closed connections, finished tasks
        let rss_after = rss_kib(pid);
        r.print(round, port, &stub, rss_after);
        rounds.push((r, rss_after));
    }
    echo_stop.store(true, Ordering::SeqCst);
    let accepted = echo.join().unwrap()?;
    let rcvbuf_drops = udp_rcvbuf_errors(&client_ns) - rcvbuf_errors_before;
    let rss_peak = rounds
        .iter()
        .map(|(r, a)| r.mon.rss_peak.max(*a))
        .max()
        .unwrap_or(0);
    let rss_after = rounds.last().map(|(_, a)| *a).unwrap_or(0);
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "echo server accepted {accepted} connections; UDP receive-buffer drops in the DNS client's namespace: {rcvbuf_drops} (client buffer 8 MiB)"
    );
    println!(
        "netd RSS: at start {:.1} MiB, before the load {:.1} MiB, peak {:.1} MiB, after each round {:?} MiB (bound {:.1} MiB)",
        mib(rss_start),
        mib(rss_before),
        mib(rss_peak),
        rounds.iter().map(|(_, a)| (mib(*a) * 10.0).round() / 10.0).collect::<Vec<_>>(),
        mib(rss_before * 3 / 2 + RSS_SLACK_KIB)
    );

    for (r, _) in &rounds {
        assert!(
            r.cni_errors.is_empty(),
            "CNI ADD errors: {:?}",
            r.cni_errors
        );
        assert_eq!(r.addrs, CNI_CONTAINERS, "ADD addresses not distinct");
        assert!(
            r.del_errors.is_empty(),
            "CNI DEL errors: {:?}",
            r.del_errors
        );
        assert_eq!(r.cni_left, 0, "CNI sandboxes left after the DELs");
        assert_eq!(r.eth0_left, 0, "eth0 left in CNI namespaces");
        assert!(
            r.dns.errors.is_empty(),
            "{} DNS errors, first: {:?}",
            r.dns.errors.len(),
            r.dns.errors.first()
        );
        assert!(
            r.dns.sent >= DNS_QPS * DNS_MIN_SECS * 9 / 10,
            "DNS load too small: {}",
            r.dns.sent
        );
        assert!(
            r.tcp.errors.is_empty(),
            "{} TCP errors, first: {:?}",
            r.tcp.errors.len(),
            r.tcp.errors.first()
        );
        assert_eq!(
            r.tcp.max_open, TCP_CLIENTS as u64,
            "not all connections were open at once"
        );
        let api_errors: Vec<&String> = r
            .mon
            .version
            .errors
            .iter()
            .chain(&r.mon.networks.errors)
            .chain(&r.mon.netctl_ls.errors)
            .collect();
        assert!(api_errors.is_empty(), "API errors: {api_errors:?}");
    }
    assert!(
        rss_after <= rss_before * 3 / 2 + RSS_SLACK_KIB,
        "RSS did not come back: before {rss_before} KiB, after {rss_after} KiB"
    );
    // Last, so that every other property is checked even when this one fails.
    for (r, _) in &rounds {
        let m = &r.mon;
        assert!(
            m.version.max < API_BOUND && m.networks.max < API_BOUND && m.netctl_ls.max < API_BOUND,
            "the API stalled: GET /version max {:?}, GET /networks max {:?}, netctl network ls max {:?}",
            m.version.max,
            m.networks.max,
            m.netctl_ls.max
        );
    }
    Ok(())
}

/// Rounds of the load (`NETD_STRESS_ROUNDS` overrides; default 2).
fn round_count() -> usize {
    std::env::var("NETD_STRESS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// What one round of the three loads measured.
struct Round {
    mon: Monitor,
    dns: DnsReport,
    tcp: TcpReport,
    cni_errors: Vec<String>,
    del_errors: Vec<String>,
    addrs: usize,
    cni_left: usize,
    eth0_left: usize,
    add_at: Duration,
    add_time: Duration,
    del_time: Duration,
    load_time: Duration,
}

impl Round {
    fn print(&self, round: usize, port: u16, stub: &StubDns, rss_after: u64) {
        let (dns, tcp, m) = (&self.dns, &self.tcp, &self.mon);
        println!(
            "round {round}: load ran {:.1?}; 50 CNI ADDs from {:.1?} in {:.1?} ({} errors, {} distinct addresses), 50 DELs in {:.1?} ({} errors)",
            self.load_time, self.add_at, self.add_time, self.cni_errors.len(), self.addrs, self.del_time, self.del_errors.len()
        );
        println!(
            "round {round}: DNS {} queries in {:.1} s ({:.0}/s), {} answered, {} resent after 1 s without an answer, {} failed lookups, latency p99 {:.1?} max {:.1?}; upstream saw {} queries so far",
            dns.sent, dns.secs, dns.sent as f64 / dns.secs, dns.answered, dns.retried, dns.errors.len(), dns.p99_latency, dns.max_latency, stub.count()
        );
        println!(
            "round {round}: TCP via 127.0.0.1:{port}: {} connections, {} echo round trips, max {} open at once, {} errors",
            tcp.connections, tcp.exchanges, tcp.max_open, tcp.errors.len()
        );
        for (what, p) in [
            ("GET /version", &m.version),
            ("GET /networks", &m.networks),
            ("netctl network ls", &m.netctl_ls),
        ] {
            println!(
                "round {round}: API {what}: {} calls, max {:.1?}, {} over 1 s, {} errors",
                p.calls,
                p.max,
                p.over_1s,
                p.errors.len()
            );
        }
        println!(
            "round {round}: netd RSS peak {:.1} MiB, after {:.1} MiB",
            m.rss_peak as f64 / 1024.0,
            rss_after as f64 / 1024.0
        );
        let api = m
            .version
            .errors
            .iter()
            .chain(&m.networks.errors)
            .chain(&m.netctl_ls.errors);
        for e in dns
            .errors
            .iter()
            .chain(&tcp.errors)
            .chain(api)
            .chain(&self.cni_errors)
            .chain(&self.del_errors)
            .take(10)
        {
            println!("round {round}:   error: {e}");
        }
    }
}

/// DNS and TCP load at full rate; after 1 s the 50 ADDs at once, then the 50 DELs at once;
/// the loads stop when the DELs are done (and DNS ran at least `DNS_MIN_SECS`).
fn load_round(
    d: &Daemon,
    pid: u32,
    cni: &CniSide,
    names: &[(String, Ipv4Addr)],
    client_ns: &str,
    port: u16,
) -> Round {
    let stop_loads = Arc::new(AtomicBool::new(false));
    let stop_monitor = AtomicBool::new(false);
    let t0 = Instant::now();
    let (mon, dns, tcp, adds, dels, add_at, add_time, del_time) = std::thread::scope(|s| {
        let mon = s.spawn(|| monitor(d, pid, &stop_monitor));
        let dns = in_ns_thread(client_ns, {
            let (names, stop) = (names.to_vec(), stop_loads.clone());
            move || dns_load(names, stop)
        });
        let tcp = {
            let stop = stop_loads.clone();
            std::thread::spawn(move || tcp_load(port, stop))
        };
        std::thread::sleep(Duration::from_secs(1));
        let add_at = t0.elapsed();
        let t = Instant::now();
        let adds: Vec<Result<Value>> = std::thread::scope(|s2| {
            let hs: Vec<_> = cni
                .envs
                .iter()
                .map(|e| s2.spawn(move || add_list(&cni.list, e, &Caps::new())))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let add_time = t.elapsed();
        let t = Instant::now();
        let dels: Vec<Result<()>> = std::thread::scope(|s2| {
            let hs: Vec<_> = cni
                .envs
                .iter()
                .zip(&adds)
                .map(|(e, r)| {
                    s2.spawn(move || del_list(&cni.list, e, &Caps::new(), r.as_ref().ok()))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let del_time = t.elapsed();
        stop_loads.store(true, Ordering::SeqCst);
        let dns = dns.join().unwrap().expect("DNS thread in the sandbox");
        let tcp = tcp.join().unwrap();
        stop_monitor.store(true, Ordering::SeqCst);
        let mon = mon.join().unwrap();
        (mon, dns, tcp, adds, dels, add_at, add_time, del_time)
    });
    let load_time = t0.elapsed();
    let mut cni_errors = vec![];
    let mut addrs = BTreeSet::new();
    for (i, r) in adds.iter().enumerate() {
        match r {
            Ok(v) => {
                addrs.insert(v["ips"][0]["address"].as_str().unwrap_or("").to_string());
            }
            Err(e) => cni_errors.push(format!("ADD {i}: {e:#}")),
        }
    }
    let del_errors = dels
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| format!("DEL {i}: {e:#}")))
        .collect();
    let cni_left = d
        .json(&["sandbox", "ls"])
        .ok()
        .and_then(|v| {
            v.as_array()
                .map(|a| a.iter().filter(|s| s["owner"] == "cni").count())
        })
        .unwrap_or(usize::MAX);
    let eth0_left = cni
        .nss
        .iter()
        .filter(|ns| ns.exec("ip link show eth0").is_ok())
        .count();
    Round {
        mon,
        dns,
        tcp,
        cni_errors,
        del_errors,
        addrs: addrs.len(),
        cni_left,
        eth0_left,
        add_at,
        add_time,
        del_time,
        load_time,
    }
}
