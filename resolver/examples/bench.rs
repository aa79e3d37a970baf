//! Load generator: serves one sandbox on loopback and hammers it with closed-loop UDP clients,
//! printing throughput and latency percentiles. Queries go to 127.0.0.1 only; the "cached"
//! mode uses an in-process upstream on loopback to fill the cache once.
//!
//! ```text
//! cargo run --release -p resolver --example bench -- [local|cached|handler|serve] [secs] [clients]
//! ```
//! `serve` only serves (UDP+TCP on 127.0.0.1:5353 unless BENCH_ADDR is set) so an external
//! tool such as dnsperf can drive it; it prints the resolver's counters every 5 s.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use resolver::{Resolver, ResolverConfig, Table};

fn table(upstream: Option<SocketAddr>) -> Table {
    let mut b = Table::builder();
    for i in 0..200u32 {
        let ip = Ipv4Addr::new(172, 18, (i / 250) as u8, (i % 250 + 2) as u8);
        let aliases = vec![format!("svc{}", i % 20)];
        b.add_endpoint(
            "net1",
            "bench",
            &format!("c{i}"),
            &aliases,
            &format!("{i:012x}"),
            &[ip.into()],
        );
    }
    b.set_network("net1", "bench", &["172.18.0.0/16".parse().unwrap()]);
    b.set_sandbox_scope("sb", &["net1".into()], &[]);
    if let Some(u) = upstream {
        b.set_default_upstreams(&[u]);
    }
    b.build()
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// A trivial upstream answering every A question with 192.0.2.1, TTL 3600.
fn spawn_upstream() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((n, src)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.queries = q.queries.clone();
            let name = q.queries[0].name.clone();
            m.answers.push(Record::from_rdata(
                name,
                3600,
                RData::A(A::new(192, 0, 2, 1)),
            ));
            let _ = sock.send_to(&m.to_vec().unwrap(), src);
        }
    });
    addr
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("local")
        .to_string();
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let clients: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let workers: usize = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let upstream = (mode == "cached" || mode == "serve").then(spawn_upstream);
    let resolver = Resolver::new(ResolverConfig::default());
    resolver.set_table(table(upstream));
    let bind: SocketAddr = if mode == "serve" {
        std::env::var("BENCH_ADDR")
            .unwrap_or_else(|_| "127.0.0.1:5353".into())
            .parse()
            .unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let udp = UdpSocket::bind(bind).unwrap();
    let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap()).unwrap();
    let server = {
        let _g = rt.enter();
        resolver.serve_sandbox("sb", udp, tcp).unwrap()
    };
    let addr = server.udp_addr();

    if mode == "serve" {
        eprintln!(
            "serving sandbox 'sb' on {addr} (udp+tcp); names c0..c199, svc0..svc19; \
             other names go to an in-process loopback upstream (A 192.0.2.1, TTL 3600)"
        );
        loop {
            std::thread::sleep(Duration::from_secs(5));
            eprintln!("{:?}", resolver.stats());
        }
    }

    if mode == "handler" {
        // In-process cost of one local answer: parse, lookup, encode (no sockets).
        let packets: Vec<Vec<u8>> = (0..200)
            .map(|i| query(i as u16, &format!("c{i}.")))
            .collect();
        let rt1 = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let n = 1_000_000;
        let t = Instant::now();
        rt1.block_on(async {
            for i in 0..n {
                let p = &packets[i % packets.len()];
                let out = resolver
                    .handle_packet("sb", p, resolver::Transport::Udp)
                    .await;
                assert!(out.is_some());
            }
        });
        let el = t.elapsed();
        eprintln!(
            "handler: {n} local answers in {el:?}: {:?} per query",
            el / n as u32
        );
        return;
    }

    let names: Arc<Vec<String>> = Arc::new(if mode == "cached" {
        (0..50).map(|i| format!("ext{i}.example.")).collect()
    } else {
        (0..200)
            .map(|i| format!("c{i}."))
            .chain((0..20).map(|i| format!("svc{i}.")))
            .collect()
    });
    // Warm up (fills the cache in "cached" mode).
    let warm = UdpSocket::bind("127.0.0.1:0").unwrap();
    warm.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 4096];
    for (i, n) in names.iter().enumerate() {
        warm.send_to(&query(i as u16, n), addr).unwrap();
        warm.recv_from(&mut buf).unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(secs);
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let names = names.clone();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                sock.connect(addr).unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let mut lat = Vec::with_capacity(1 << 20);
                let mut lost = 0u64;
                let mut buf = [0u8; 4096];
                let packets: Vec<Vec<u8>> = names.iter().map(|n| query(0, n)).collect();
                let mut i = c;
                while Instant::now() < deadline {
                    let mut p = packets[i % packets.len()].clone();
                    let id = (i as u16).wrapping_mul(31);
                    p[..2].copy_from_slice(&id.to_be_bytes());
                    let t = Instant::now();
                    sock.send(&p).unwrap();
                    loop {
                        match sock.recv(&mut buf) {
                            Ok(n) if n >= 2 && buf[..2] == id.to_be_bytes() => {
                                lat.push(t.elapsed());
                                break;
                            }
                            Ok(_) => continue,
                            Err(_) => {
                                lost += 1;
                                break;
                            }
                        }
                    }
                    i += 1;
                }
                (lat, lost)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut lost = 0;
    for h in handles {
        let (l, x) = h.join().unwrap();
        all.extend(l);
        lost += x;
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    eprintln!(
        "mode={mode} clients={clients} workers={workers} secs={secs}: {} answers, {:.0} qps, lost {lost}, \
         p50 {:?} p90 {:?} p99 {:?} max {:?}",
        all.len(),
        all.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        all[all.len() - 1]
    );
    eprintln!("{:?}", resolver.stats());
    drop(server);
}
