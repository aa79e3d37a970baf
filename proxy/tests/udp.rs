//! UDP relay through the library on loopback: per-client replies, reply source address
//! on a wildcard listener, idle expiry, and the flow bound (both overflow policies).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use proxy::{Proto, Proxy, ProxyConfig, ProxyHandle, ProxySpec, UdpOverflow};
use tokio::net::UdpSocket;

fn add_udp(proxy: &Proxy, listen: &str, target: SocketAddr) -> ProxyHandle {
    proxy
        .add(ProxySpec {
            proto: Proto::Udp,
            listen: listen.parse().unwrap(),
            target,
        })
        .unwrap()
}

async fn client(to: SocketAddr) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Connected: the kernel drops replies from any other source address.
    c.connect(to).await.unwrap();
    c
}

async fn ask(c: &UdpSocket, msg: &[u8]) -> Option<Vec<u8>> {
    c.send(msg).await.unwrap();
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout(Duration::from_millis(1500), c.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_gets_its_own_replies() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_udp(&proxy, "127.0.0.1:0", udp_echo().await);
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(client(h.local_addr()).await);
    }
    // Interleave: every client sends, then every client reads its own echo.
    for round in 0..20u8 {
        for (i, c) in clients.iter().enumerate() {
            c.send(&[i as u8, round]).await.unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            let mut buf = [0u8; 16];
            let n = within(3, c.recv(&mut buf)).await.unwrap();
            assert_eq!(
                &buf[..n],
                &[i as u8, round],
                "client {i} got someone else's reply"
            );
        }
    }
    let big = pattern(5, 60_000);
    assert_eq!(ask(&clients[0], &big).await.as_deref(), Some(&big[..]));
    let st = h.stats();
    assert_eq!(st.udp_flows_total, 5);
    assert_eq!(st.udp_flows_active, 5);
    assert_eq!(st.udp_datagrams_to_target, 101);
    assert!(eventually(2, || h.stats().udp_datagrams_from_target == 101).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_listener_replies_from_the_address_the_client_used() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_udp(&proxy, "0.0.0.0:0", udp_echo().await);
    // 127.0.0.2 is local but not the kernel's default source: without PKTINFO the reply
    // would come from 127.0.0.1 and the connected client would never see it.
    let to: SocketAddr = format!("127.0.0.2:{}", h.local_addr().port())
        .parse()
        .unwrap();
    let c = client(to).await;
    assert_eq!(
        ask(&c, b"where from").await.as_deref(),
        Some(&b"where from"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_flows_expire_and_active_ones_stay() {
    let proxy = Proxy::new(ProxyConfig {
        udp_idle_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    })
    .unwrap();
    let h = add_udp(&proxy, "127.0.0.1:0", udp_echo().await);
    let idle = client(h.local_addr()).await;
    let busy = client(h.local_addr()).await;
    assert!(ask(&idle, b"a").await.is_some());
    assert!(ask(&busy, b"b").await.is_some());
    assert_eq!(h.stats().udp_flows_active, 2);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(ask(&busy, b"keepalive").await.is_some());
    }
    // 1 s without traffic for `idle`, more than three timeouts.
    assert_eq!(h.stats().udp_flows_active, 1, "{:?}", h.stats());
    assert!(eventually(3, || h.stats().udp_flows_active == 0).await);
    // A returning client gets a fresh flow and still works.
    assert_eq!(ask(&idle, b"again").await.as_deref(), Some(&b"again"[..]));
    assert_eq!(h.stats().udp_flows_total, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_bound_evicts_least_recently_used() {
    let proxy = Proxy::new(ProxyConfig {
        udp_max_flows: 2,
        ..ProxyConfig::default()
    })
    .unwrap();
    let h = add_udp(&proxy, "127.0.0.1:0", udp_echo().await);
    let (a, b, c) = (
        client(h.local_addr()).await,
        client(h.local_addr()).await,
        client(h.local_addr()).await,
    );
    let tick = || tokio::time::sleep(Duration::from_millis(3));
    assert!(ask(&a, b"a").await.is_some());
    tick().await;
    assert!(ask(&b, b"b").await.is_some());
    tick().await;
    assert!(ask(&a, b"a2").await.is_some()); // b is now least recently used
    tick().await;
    assert!(ask(&c, b"c").await.is_some());
    let st = h.stats();
    assert_eq!(st.udp_flows_active, 2);
    assert_eq!(st.udp_flows_evicted, 1);
    // a kept its flow; b comes back as a new flow and evicts someone else.
    tick().await;
    assert!(ask(&a, b"a3").await.is_some());
    tick().await;
    assert_eq!(h.stats().udp_flows_total, 3);
    assert!(ask(&b, b"b2").await.is_some());
    assert_eq!(h.stats().udp_flows_total, 4);
    assert_eq!(h.stats().udp_flows_active, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_bound_refuses_new_clients_when_configured() {
    let proxy = Proxy::new(ProxyConfig {
        udp_max_flows: 2,
        udp_overflow: UdpOverflow::RefuseNew,
        ..ProxyConfig::default()
    })
    .unwrap();
    let h = add_udp(&proxy, "127.0.0.1:0", udp_echo().await);
    let (a, b, c) = (
        client(h.local_addr()).await,
        client(h.local_addr()).await,
        client(h.local_addr()).await,
    );
    assert!(ask(&a, b"a").await.is_some());
    assert!(ask(&b, b"b").await.is_some());
    assert_eq!(ask(&c, b"c").await, None);
    let st = h.stats();
    assert_eq!(st.udp_flows_refused, 1);
    assert_eq!(st.udp_flows_active, 2);
    assert!(ask(&a, b"still fine").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_target_port_keeps_flow_and_recovers() {
    // docker-proxy ignores ECONNREFUSED from the target: when it comes up, replies flow.
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let spare = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = spare.local_addr().unwrap();
    drop(spare);
    let h = add_udp(&proxy, "127.0.0.1:0", target);
    let c = client(h.local_addr()).await;
    assert_eq!(ask(&c, b"nobody").await, None);
    let server = UdpSocket::bind(target).await.unwrap();
    c.send(b"now").await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = within(3, server.recv_from(&mut buf)).await.unwrap();
    server.send_to(&buf[..n], from).await.unwrap();
    let n = within(3, c.recv(&mut buf)).await.unwrap();
    assert_eq!(&buf[..n], b"now");
    assert_eq!(h.stats().udp_flows_total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_are_relayed_intact_and_in_order_both_ways() {
    // Sent back to back, these arrive in batches (recvmmsg/sendmmsg): every datagram
    // must keep its own length and bytes, in order, including one of 60000 bytes.
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_udp(&proxy, "127.0.0.1:0", udp_echo().await);
    let c = client(h.local_addr()).await;
    let sizes: Vec<usize> = (0..100usize)
        .map(|i| if i == 50 { 60_000 } else { 1 + (i * 37) % 900 })
        .collect();
    let sent: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| pattern(i as u64, n))
        .collect();
    for d in &sent {
        c.send(d).await.unwrap();
    }
    let mut buf = vec![0u8; 65536];
    for (i, d) in sent.iter().enumerate() {
        let n = within(3, c.recv(&mut buf)).await.unwrap();
        assert_eq!(n, d.len(), "datagram {i}: wrong length");
        assert!(&buf[..n] == &d[..], "datagram {i}: bytes differ");
    }
    let st = h.stats();
    assert_eq!(st.udp_datagrams_to_target, 100);
    assert_eq!(st.udp_datagrams_dropped, 0);
    let total: u64 = sizes.iter().map(|&n| n as u64).sum();
    assert_eq!(st.bytes_to_target, total);
    assert!(eventually(2, || h.stats().bytes_from_target == total).await);
}
