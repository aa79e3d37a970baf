//! End-to-end tests: a resolver serving sandboxes on loopback sockets, forwarding to a stub
//! upstream on loopback. Nothing leaves the machine.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use resolver::{reverse_name, Resolver, Table};
use support::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn setup(upstreams: &[SocketAddr]) -> Resolver {
    let r = Resolver::new(config(vec![], Duration::from_secs(2)));
    r.set_table(test_table(upstreams));
    r
}

#[tokio::test]
async fn container_name_resolves_over_udp_and_tcp() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    let m = udp_query(srv.udp_addr(), 4242, "web.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer_ips(&m), vec![ip("172.30.0.2")]);
    assert_eq!(m.queries[0].name.to_ascii(), "web.");
    let m = udp_query(srv.udp_addr(), 7, "WWW.", RecordType::AAAA).await;
    assert_eq!(answer_ips(&m), vec![ip("fd00:30::2")]);
    // Name asked with different case keeps the asker's case in the answer.
    assert_eq!(m.answers[0].name.to_ascii(), "WWW.");
    let m = tcp_query(srv.tcp_addr(), 9, "0123456789ab.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("172.30.0.2")]);
    assert_eq!(
        stub.count("web.", "udp"),
        0,
        "local names never go upstream"
    );
    let s = r.stats();
    assert!(s.local_answers >= 3 && s.forwarded == 0, "{s:?}");
}

#[tokio::test]
async fn tcp_connection_carries_several_queries() {
    let r = setup(&[]).await;
    let srv = serve(&r, "sb2");
    let mut conn = tokio::net::TcpStream::connect(srv.tcp_addr())
        .await
        .unwrap();
    for id in 0..5u16 {
        let m = tcp_query_on(&mut conn, id, "db.", RecordType::A).await;
        assert_eq!(answer_ips(&m), vec![ip("172.31.0.4")]);
    }
}

#[tokio::test]
async fn alias_shared_by_two_containers_returns_both_rotated() {
    let r = setup(&[]).await;
    let srv = serve(&r, "sb1");
    let mut firsts = std::collections::HashSet::new();
    for id in 0..4 {
        let m = udp_query(srv.udp_addr(), id, "cache.", RecordType::A).await;
        let ips = answer_ips(&m);
        let mut sorted = ips.clone();
        sorted.sort();
        assert_eq!(sorted, vec![ip("172.30.0.5"), ip("172.30.0.6")]);
        firsts.insert(ips[0]);
    }
    assert_eq!(firsts.len(), 2);
}

#[tokio::test]
async fn ptr_local_and_nxdomain_in_subnet() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb2");
    let m = udp_query(
        srv.udp_addr(),
        1,
        &reverse_name(ip("172.31.0.4")),
        RecordType::PTR,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    match &m.answers[0].data {
        RData::PTR(p) => assert_eq!(p.0.to_ascii(), "db.back."),
        other => panic!("{other:?}"),
    }
    let unknown = reverse_name(ip("172.31.7.7"));
    let m = udp_query(srv.udp_addr(), 2, &unknown, RecordType::PTR).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(stub.count(&unknown, "udp"), 0, "answered locally");
}

#[tokio::test]
async fn name_of_other_network_is_forwarded() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1"); // sb1 is not on "back", where db lives
    let m = udp_query(srv.udp_addr(), 3, "db.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty());
    assert_eq!(stub.count("db.", "udp"), 1, "went to the upstream");
}

#[tokio::test]
async fn nodata_for_known_name_without_that_type() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb2");
    let m = udp_query(srv.udp_addr(), 3, "db.", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(stub.count("db.", "udp"), 0);
}

#[tokio::test]
async fn external_name_forwarded_then_cached() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    let m = udp_query(srv.udp_addr(), 100, "ext.example.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.10")]);
    assert_eq!(m.answers[0].ttl, 300);
    // Different id and letter case: served from cache, id and question preserved.
    let m = udp_query(srv.udp_addr(), 101, "EXT.example.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.10")]);
    assert_eq!(m.queries[0].name.to_ascii(), "EXT.example.");
    assert!(m.answers[0].ttl <= 300);
    // And over TCP, from the cache too.
    let m = tcp_query(srv.tcp_addr(), 102, "ext.example.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.10")]);
    assert_eq!(stub.count("ext.example.", "udp"), 1);
    assert_eq!(stub.count("ext.example.", "tcp"), 0);
    let s = r.stats();
    assert_eq!((s.forwarded, s.cache_hits), (1, 2), "{s:?}");
}

#[tokio::test]
async fn cached_entry_expires_with_ttl() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    udp_query(srv.udp_addr(), 1, "short.example.", RecordType::A).await;
    udp_query(srv.udp_addr(), 2, "short.example.", RecordType::A).await;
    assert_eq!(stub.count("short.example.", "udp"), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    udp_query(srv.udp_addr(), 3, "short.example.", RecordType::A).await;
    assert_eq!(stub.count("short.example.", "udp"), 2, "TTL 1 s elapsed");
}

#[tokio::test]
async fn negative_answers_cached_with_soa_minimum_only() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    for id in 0..3 {
        let m = udp_query(srv.udp_addr(), id, "missing.example.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1, "SOA passed on");
        assert!(
            m.authorities[0].ttl <= 60,
            "negative TTL is the SOA minimum"
        );
    }
    assert_eq!(stub.count("missing.example.", "udp"), 1);
    // Without SOA there is nothing to bound the negative TTL: not cached.
    for id in 0..2 {
        let m = udp_query(srv.udp_addr(), id, "nosoa.example.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    assert_eq!(stub.count("nosoa.example.", "udp"), 2);
}

#[tokio::test]
async fn dead_upstream_gives_servfail_and_falls_back() {
    // A bound socket nobody reads: datagrams vanish, like an unreachable server.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let r = Resolver::new(config(vec![], Duration::from_millis(400)));
    r.set_table(test_table(&[dead_addr]));
    let srv = serve(&r, "sb1");
    let m = udp_query(srv.udp_addr(), 55, "ext.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.queries[0].name.to_ascii(), "ext.example.");
    assert_eq!(r.stats().servfail, 1);

    // Dead first, live second: the answer comes from the second.
    let stub = Stub::start().await;
    r.set_table(test_table(&[dead_addr, stub.addr]));
    let m = udp_query(srv.udp_addr(), 56, "ext.example.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.10")]);
    drop(dead);
}

#[tokio::test]
async fn refused_falls_through_and_ends_in_servfail() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr, stub.addr]).await;
    let srv = serve(&r, "sb1");
    let m = udp_query(srv.udp_addr(), 5, "refuse.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        stub.count("refuse.example.", "udp"),
        2,
        "both upstreams tried"
    );
}

#[tokio::test]
async fn truncated_upstream_answer_is_retried_over_tcp() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    // Client over TCP gets the full answer, fetched from the stub over TCP.
    let m = tcp_query(srv.tcp_addr(), 8, "big.example.", RecordType::A).await;
    assert_eq!(m.answers.len(), 60);
    assert_eq!(stub.count("big.example.", "udp"), 1);
    assert_eq!(stub.count("big.example.", "tcp"), 1);
    // Client over plain UDP (512 bytes): too big, so TC and no records.
    let m = udp_query(srv.udp_addr(), 9, "big.example.", RecordType::A).await;
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    // Client over UDP with EDNS 4096: fits, full answer.
    let m = udp_query_edns(
        srv.udp_addr(),
        10,
        "big.example.",
        RecordType::A,
        Some(4096),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 60);
    assert!(m.edns.is_some());
}

#[tokio::test]
async fn sandbox_upstreams_override_defaults() {
    let default_stub = Stub::start().await;
    let own_stub = Stub::start().await;
    let r = Resolver::new(config(vec![], Duration::from_secs(2)));
    let mut b = Table::builder();
    b.add_endpoint("n", "net", "c", &[], "", &[ip("10.1.0.2")]);
    b.set_sandbox_scope("a", &["n".into()], &[own_stub.addr]);
    b.set_sandbox_scope("b", &["n".into()], &[]);
    b.set_default_upstreams(&[default_stub.addr]);
    r.set_table(b.build());
    let (sa, sb) = (serve(&r, "a"), serve(&r, "b"));
    udp_query(sa.udp_addr(), 1, "x1.example.", RecordType::A).await;
    udp_query(sb.udp_addr(), 1, "x2.example.", RecordType::A).await;
    assert_eq!(own_stub.count("x1.example.", "udp"), 1);
    assert_eq!(default_stub.count("x1.example.", "udp"), 0);
    assert_eq!(default_stub.count("x2.example.", "udp"), 1);
    // With no table defaults, ResolverConfig.upstreams is used.
    let r2 = Resolver::new(config(vec![default_stub.addr], Duration::from_secs(2)));
    let s2 = serve(&r2, "unknown-sandbox");
    let m = udp_query(s2.udp_addr(), 1, "ext.example.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("192.0.2.10")]);
}

#[tokio::test]
async fn table_swap_is_immediate() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    let m = udp_query(srv.udp_addr(), 1, "newbie.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain); // from the stub
    let mut b = Table::builder();
    b.add_endpoint("nf", "front", "newbie", &[], "", &[ip("172.30.0.9")]);
    b.set_sandbox_scope("sb1", &["nf".into()], &[]);
    r.set_table(b.build());
    let m = udp_query(srv.udp_addr(), 2, "newbie.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("172.30.0.9")]);
}

#[tokio::test]
async fn garbage_does_not_kill_the_server() {
    let stub = Stub::start().await;
    let r = setup(&[stub.addr]).await;
    let srv = serve(&r, "sb1");
    let wait = Duration::from_millis(300);
    // Too short for a header: dropped silently.
    assert_eq!(udp_raw(srv.udp_addr(), b"\x01\x02\x03", wait).await, None);
    // A header followed by junk: FORMERR echoing the id.
    let mut junk = vec![0xbe, 0xef, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    junk.extend_from_slice(&[0x3f; 40]);
    let resp = udp_raw(srv.udp_addr(), &junk, wait).await.expect("FORMERR");
    assert_eq!(&resp[..2], &[0xbe, 0xef]);
    assert_eq!(resp[3] & 0x0f, 1, "FORMERR");
    // A response packet (QR set) is ignored.
    let mut resp_pkt = query_packet(1, "web.", RecordType::A, None);
    resp_pkt[2] |= 0x80;
    assert_eq!(udp_raw(srv.udp_addr(), &resp_pkt, wait).await, None);
    // A maximal datagram of noise.
    let noise: Vec<u8> = (0..65000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let _ = udp_raw(srv.udp_addr(), &noise, wait).await;
    // Garbage over TCP: a length prefix with junk, and an abrupt close.
    {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(srv.tcp_addr())
            .await
            .unwrap();
        s.write_all(&[0x00, 0x20, 1, 2, 3]).await.unwrap();
    }
    // Still alive on both transports.
    let m = udp_query(srv.udp_addr(), 77, "web.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("172.30.0.2")]);
    let m = tcp_query(srv.tcp_addr(), 78, "web.", RecordType::A).await;
    assert_eq!(answer_ips(&m), vec![ip("172.30.0.2")]);
    let s = r.stats();
    assert!(s.formerr >= 1 && s.dropped >= 2, "{s:?}");
}

#[tokio::test]
async fn stopping_closes_the_sockets() {
    let r = setup(&[]).await;
    let srv = serve(&r, "sb1");
    let (udp, tcp) = (srv.udp_addr(), srv.tcp_addr());
    udp_query(udp, 1, "web.", RecordType::A).await;
    srv.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(tcp).await.is_err(),
        "listener closed"
    );
    // The UDP port is free again: we can bind it ourselves.
    std::net::UdpSocket::bind(udp).expect("udp socket closed");
}

#[tokio::test]
async fn no_upstream_gives_servfail_not_silence() {
    let r = setup(&[]).await;
    let srv = serve(&r, "sb1");
    let m = udp_query(srv.udp_addr(), 1, "ext.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn serve_sandbox_outside_runtime_is_an_error() {
    let r = Resolver::new(Default::default());
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let res = std::thread::spawn(move || r.serve_sandbox("x", udp, tcp).map(|_| ()))
        .join()
        .unwrap();
    assert!(matches!(res, Err(resolver::ResolverError::NoRuntime)));
}

#[tokio::test]
async fn inflight_forwards_are_bounded() {
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = Resolver::new(resolver::ResolverConfig {
        max_inflight_forwards: 2,
        ..config(vec![], Duration::from_secs(2))
    });
    r.set_table(test_table(&[dead.local_addr().unwrap()]));
    let srv = serve(&r, "sb1");
    let addr = srv.udp_addr();
    let mut tasks = Vec::new();
    for i in 0..10u16 {
        let name = format!("flood{i}.example.");
        tasks.push(tokio::spawn(async move {
            udp_query(addr, i, &name, RecordType::A).await
        }));
        if i < 2 {
            // Let the first two occupy the forwarding slots.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for t in tasks {
        let m = t.await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    let s = r.stats();
    assert_eq!(s.forwarded, 2, "only two forwards ran: {s:?}");
    assert_eq!(s.servfail, 10);
}
