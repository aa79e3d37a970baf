//! Test support: a stub upstream DNS server on 127.0.0.1 (UDP and TCP on the same random
//! port) with canned behaviour per name and per-transport query counters, plus a tiny client.
//! Nothing here talks to anything but loopback.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use resolver::{Resolver, ResolverConfig, SandboxServer, Table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Canned upstream behaviour, chosen by the first label of the question:
/// * `ext`   → A 192.0.2.10, TTL 300
/// * `short` → A 192.0.2.11, TTL 1
/// * `big`   → over UDP an empty TC answer; over TCP 60 A records
/// * `huge`  → 60 A records over UDP too (EDNS-sized answer, > 512 bytes)
/// * `refuse`→ REFUSED
/// * `nosoa` → NXDOMAIN without SOA (must not be cached)
/// * anything else → NXDOMAIN with SOA (TTL 900, minimum 60)
pub struct Stub {
    pub addr: SocketAddr,
    counts: Arc<Mutex<HashMap<(String, &'static str), usize>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Stub {
    pub async fn start() -> Stub {
        // Same port for UDP and TCP: bind UDP first, then TCP on its port (retry on clash).
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let counts: Arc<Mutex<HashMap<(String, &'static str), usize>>> = Default::default();
        let c = counts.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, src)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let resp = answer(&q, "udp", &c);
                let _ = udp.send_to(&resp.to_vec().unwrap(), src).await;
            }
        });
        let c = counts.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    continue;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    while let Ok(len) = s.read_u16().await {
                        let mut buf = vec![0u8; len as usize];
                        if s.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        let Ok(q) = Message::from_vec(&buf) else {
                            return;
                        };
                        let resp = answer(&q, "tcp", &c).to_vec().unwrap();
                        let mut out = (resp.len() as u16).to_be_bytes().to_vec();
                        out.extend_from_slice(&resp);
                        if s.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Stub {
            addr,
            counts,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// How many questions for `name` (lower-case, fully qualified) arrived over `transport`.
    pub fn count(&self, name: &str, transport: &str) -> usize {
        let map = self.counts.lock().unwrap();
        map.get(&(
            name.to_string(),
            if transport == "udp" { "udp" } else { "tcp" },
        ))
        .copied()
        .unwrap_or(0)
    }
}

fn answer(
    q: &Message,
    transport: &'static str,
    counts: &Mutex<HashMap<(String, &'static str), usize>>,
) -> Message {
    let query = &q.queries[0];
    let lname = query.name.to_ascii().to_ascii_lowercase();
    *counts
        .lock()
        .unwrap()
        .entry((lname.clone(), transport))
        .or_default() += 1;
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_query(query.clone());
    if let Some(e) = &q.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(e.max_payload().max(512));
        m.set_edns(edns);
    }
    let first = lname.split('.').next().unwrap_or("").to_string();
    let a = |ip: Ipv4Addr, ttl| Record::from_rdata(query.name.clone(), ttl, RData::A(A(ip)));
    let many = || (0..60).map(move |i| a(Ipv4Addr::new(198, 51, 100, i), 300));
    match (first.as_str(), query.query_type) {
        ("ext", RecordType::A) => m.answers.push(a(Ipv4Addr::new(192, 0, 2, 10), 300)),
        ("short", RecordType::A) => m.answers.push(a(Ipv4Addr::new(192, 0, 2, 11), 1)),
        ("big", RecordType::A) if transport == "udp" => m.metadata.truncation = true,
        ("big", RecordType::A) | ("huge", RecordType::A) => m.answers.extend(many()),
        ("refuse", _) => m.metadata.response_code = ResponseCode::Refused,
        ("nosoa", _) => m.metadata.response_code = ResponseCode::NXDomain,
        _ => {
            m.metadata.response_code = ResponseCode::NXDomain;
            let zone = Name::from_ascii("example.").unwrap();
            let soa = SOA::new(zone.clone(), zone.clone(), 1, 3600, 600, 86400, 60);
            m.authorities
                .push(Record::from_rdata(zone, 900, RData::SOA(soa)));
        }
    }
    m
}

/// A query packet for `name`/`qtype` with id `id` (EDNS with `edns` payload when given).
pub fn query_packet(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// Sends raw bytes over UDP and waits (up to `wait`) for one answer.
pub async fn udp_raw(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// One UDP question; panics if no answer within 5 s (the client's budget).
pub async fn udp_query(server: SocketAddr, id: u16, name: &str, qtype: RecordType) -> Message {
    udp_query_edns(server, id, name, qtype, None).await
}

pub async fn udp_query_edns(
    server: SocketAddr,
    id: u16,
    name: &str,
    qtype: RecordType,
    edns: Option<u16>,
) -> Message {
    let bytes = udp_raw(
        server,
        &query_packet(id, name, qtype, edns),
        Duration::from_secs(5),
    )
    .await
    .unwrap_or_else(|| panic!("no UDP answer for {name}"));
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, id, "query id preserved");
    assert_eq!(m.metadata.message_type, MessageType::Response);
    m
}

/// One TCP question on a fresh connection.
pub async fn tcp_query(server: SocketAddr, id: u16, name: &str, qtype: RecordType) -> Message {
    let mut s = TcpStream::connect(server).await.unwrap();
    tcp_query_on(&mut s, id, name, qtype).await
}

/// One TCP question on an existing connection.
pub async fn tcp_query_on(s: &mut TcpStream, id: u16, name: &str, qtype: RecordType) -> Message {
    let p = query_packet(id, name, qtype, None);
    let mut out = (p.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&p);
    s.write_all(&out).await.unwrap();
    let fut = async {
        let len = s.read_u16().await.unwrap();
        let mut buf = vec![0u8; len as usize];
        s.read_exact(&mut buf).await.unwrap();
        buf
    };
    let buf = tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .expect("TCP answer within 5 s");
    let m = Message::from_vec(&buf).unwrap();
    assert_eq!(m.metadata.id, id);
    m
}

/// Addresses in the answer section, in order.
pub fn answer_ips(m: &Message) -> Vec<std::net::IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(std::net::IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// Serves `sandbox` of `resolver` on fresh loopback sockets.
pub fn serve(resolver: &Resolver, sandbox: &str) -> SandboxServer {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    resolver.serve_sandbox(sandbox, udp, tcp).unwrap()
}

/// The standard test topology: networks `front` (web, two `cache` replicas) and `back` (db);
/// sandbox `sb1` on `front` only, `sb2` on both.
pub fn test_table(upstreams: &[SocketAddr]) -> Table {
    let ip = |s: &str| s.parse().unwrap();
    let mut b = Table::builder();
    b.add_endpoint(
        "nf",
        "front",
        "web",
        &["www".into()],
        "0123456789ab",
        &[ip("172.30.0.2"), ip("fd00:30::2")],
    );
    b.add_endpoint(
        "nf",
        "front",
        "cache-1",
        &["cache".into()],
        "111111111111",
        &[ip("172.30.0.5")],
    );
    b.add_endpoint(
        "nf",
        "front",
        "cache-2",
        &["cache".into()],
        "222222222222",
        &[ip("172.30.0.6")],
    );
    b.add_endpoint("nb", "back", "db", &[], "333333333333", &[ip("172.31.0.4")]);
    b.set_network("nf", "front", &["172.30.0.0/16".parse().unwrap()]);
    b.set_network("nb", "back", &["172.31.0.0/16".parse().unwrap()]);
    b.set_sandbox_scope("sb1", &["nf".into()], &[]);
    b.set_sandbox_scope("sb2", &["nf".into(), "nb".into()], &[]);
    b.set_default_upstreams(upstreams);
    b.build()
}

pub fn config(upstreams: Vec<SocketAddr>, timeout: Duration) -> ResolverConfig {
    ResolverConfig {
        upstreams,
        timeout,
        ..Default::default()
    }
}
