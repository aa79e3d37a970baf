//! TCP relay through the library on loopback: integrity of large transfers both ways,
//! half-close, concurrency, unreachable target, stats.

mod common;

use common::*;
use proxy::{Proto, Proxy, ProxyConfig, ProxyHandle, ProxySpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn add_tcp(proxy: &Proxy, target: std::net::SocketAddr) -> ProxyHandle {
    proxy
        .add(ProxySpec {
            proto: Proto::Tcp,
            listen: "127.0.0.1:0".parse().unwrap(),
            target,
        })
        .unwrap()
}

/// Send `data` and read the echo concurrently; return what came back.
async fn echo_roundtrip(addr: std::net::SocketAddr, data: Vec<u8>) -> Vec<u8> {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfer_both_directions_is_intact() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_tcp(&proxy, tcp_echo().await);
    let data = pattern(7, 8 * 1024 * 1024);
    let got = within(60, echo_roundtrip(h.local_addr(), data.clone())).await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echoed bytes differ");
    let st = h.stats();
    assert_eq!(st.bytes_to_target, data.len() as u64);
    assert!(eventually(5, || h.stats().bytes_from_target == data.len() as u64).await);
    assert_eq!(st.tcp_connections_total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_fallback_path_also_intact_with_tiny_pipe() {
    // A 4 KiB pipe forces many splice rounds; pipe_size None keeps the default;
    // Some(0) copies through user space only.
    for pipe_size in [Some(4096), None, Some(0)] {
        let proxy = Proxy::new(ProxyConfig {
            pipe_size,
            ..ProxyConfig::default()
        })
        .unwrap();
        let h = add_tcp(&proxy, tcp_echo().await);
        let data = pattern(11, 3 * 1024 * 1024 + 17);
        let got = within(60, echo_roundtrip(h.local_addr(), data.clone())).await;
        assert!(got == data, "echoed bytes differ with pipe {pipe_size:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_keeps_the_other_direction_open() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let reply_len = 2 * 1024 * 1024;
    let h = add_tcp(&proxy, tcp_read_all_then_reply(reply_len).await);
    let mut s = TcpStream::connect(h.local_addr()).await.unwrap();
    let sent = pattern(3, 100_000);
    s.write_all(&sent).await.unwrap();
    // The server answers only after it sees our FIN: the proxy must pass the FIN on
    // and still relay the answer back.
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    within(30, s.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got.len(), reply_len);
    assert!(got == pattern(sent.len() as u64, reply_len));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_tcp(&proxy, tcp_echo().await);
    let addr = h.local_addr();
    let n = 200;
    let mut tasks = Vec::new();
    for i in 0..n {
        tasks.push(tokio::spawn(async move {
            let data = pattern(i, 32 * 1024 + i as usize);
            let got = echo_roundtrip(addr, data.clone()).await;
            assert!(got == data, "connection {i} corrupted");
        }));
    }
    within(60, async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    assert_eq!(h.stats().tcp_connections_total, n);
    assert!(eventually(5, || h.stats().tcp_connections_active == 0).await);
    assert_eq!(proxy.stats().tcp_connections_total, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_closes_client_promptly() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_tcp(&proxy, closed_port());
    let mut s = TcpStream::connect(h.local_addr()).await.unwrap();
    let mut buf = [0u8; 16];
    // EOF or reset, but within a few seconds, not the 10 s connect timeout.
    let r = within(3, s.read(&mut buf)).await;
    assert!(matches!(r, Ok(0) | Err(_)), "got {r:?}");
    assert!(eventually(2, || h.stats().tcp_connect_failures == 1).await);
    assert!(eventually(2, || h.stats().tcp_connections_active == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_reset_is_propagated_and_connection_closed() {
    // A target that accepts and immediately closes with unread data gets a RST path;
    // the client must see the connection end, not hang.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO));
            drop(s);
        }
    });
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = add_tcp(&proxy, target);
    // The reset can arrive before connect() even reports success: that is a close too.
    if let Ok(mut s) = TcpStream::connect(h.local_addr()).await {
        let _ = s.write_all(b"hello").await;
        let mut buf = Vec::new();
        let r = within(5, s.read_to_end(&mut buf)).await;
        assert!(r.is_err() || buf.is_empty(), "got {r:?}");
    }
    assert!(eventually(2, || h.stats().tcp_connections_active == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_flag_falls_back_for_loopback_clients() {
    // IP_TRANSPARENT cannot apply to a loopback source; the dial must still succeed.
    let proxy = Proxy::new(ProxyConfig {
        transparent: true,
        ..ProxyConfig::default()
    })
    .unwrap();
    let h = add_tcp(&proxy, tcp_echo().await);
    let data = pattern(9, 70_000);
    assert!(within(10, echo_roundtrip(h.local_addr(), data.clone())).await == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_listener_relays_to_ipv4_target() {
    // docker publishes `[::]:p` for IPv4-only containers through the proxy.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIP: no IPv6 loopback");
        return;
    }
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = proxy
        .add(ProxySpec {
            proto: Proto::Tcp,
            listen: "[::1]:0".parse().unwrap(),
            target: tcp_echo().await,
        })
        .unwrap();
    let data = pattern(13, 50_000);
    assert!(within(10, echo_roundtrip(h.local_addr(), data.clone())).await == data);
}
