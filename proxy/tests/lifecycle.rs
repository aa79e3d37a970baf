//! Adding and removing listeners: typed bind errors, port freed after remove or drop,
//! connections closed with their listener, adopting pre-bound sockets.

mod common;

use std::net::SocketAddr;

use common::*;
use proxy::{Proto, Proxy, ProxyConfig, ProxyError, ProxySpec, StdListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn spec(proto: Proto, listen: SocketAddr, target: SocketAddr) -> ProxySpec {
    ProxySpec {
        proto,
        listen,
        target,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addr_in_use_is_typed_and_remove_frees_the_port() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    for proto in [Proto::Tcp, Proto::Udp] {
        let target = match proto {
            Proto::Tcp => tcp_echo().await,
            Proto::Udp => udp_echo().await,
        };
        let h = proxy
            .add(spec(proto, "127.0.0.1:0".parse().unwrap(), target))
            .unwrap();
        let addr = h.local_addr();
        assert_ne!(addr.port(), 0);
        let err = proxy.add(spec(proto, addr, target)).unwrap_err();
        assert!(
            matches!(err, ProxyError::AddrInUse { proto: p, addr: a } if p == proto && a == addr),
            "{err:?}"
        );
        assert!(err.to_string().contains("already in use"), "{err}");
        proxy.remove(h).await;
        // Free again: both a plain socket and a new proxy listener can take it.
        match proto {
            Proto::Tcp => drop(std::net::TcpListener::bind(addr).unwrap()),
            Proto::Udp => drop(std::net::UdpSocket::bind(addr).unwrap()),
        }
        let h2 = proxy.add(spec(proto, addr, target)).unwrap();
        assert_eq!(h2.local_addr(), addr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_listener_and_its_connections() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = proxy
        .add(spec(
            Proto::Tcp,
            "127.0.0.1:0".parse().unwrap(),
            tcp_echo().await,
        ))
        .unwrap();
    let addr = h.local_addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    within(5, s.read_exact(&mut buf)).await.unwrap();
    assert!(eventually(2, || proxy.stats().tcp_connections_active == 1).await);
    drop(h);
    // The established connection is torn down with its listener...
    let r = within(5, s.read(&mut buf)).await;
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert!(eventually(2, || proxy.stats().tcp_connections_active == 0).await);
    // ...and the port becomes bindable.
    assert!(eventually(2, || std::net::TcpListener::bind(addr).is_ok()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_udp_listener_closes_flows() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    let h = proxy
        .add(spec(
            Proto::Udp,
            "127.0.0.1:0".parse().unwrap(),
            udp_echo().await,
        ))
        .unwrap();
    let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"x", h.local_addr()).await.unwrap();
    let mut buf = [0u8; 4];
    within(3, c.recv_from(&mut buf)).await.unwrap();
    assert_eq!(proxy.stats().udp_flows_active, 1);
    h.remove().await;
    assert!(eventually(2, || proxy.stats().udp_flows_active == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_bound_but_not_listening_tcp_socket_and_bound_udp_socket() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    // What a daemon does to reserve a port: bind, no listen.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let tcp: std::net::TcpListener = s.into();
    let h = proxy
        .add_with_listener(StdListener::Tcp(tcp), tcp_echo().await)
        .unwrap();
    assert_eq!(h.spec().proto, Proto::Tcp);
    let mut c = TcpStream::connect(h.local_addr()).await.unwrap();
    c.write_all(b"adopted").await.unwrap();
    let mut buf = [0u8; 7];
    within(5, c.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"adopted");

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let hu = proxy
        .add_with_listener(StdListener::Udp(udp), udp_echo().await)
        .unwrap();
    let c = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"u", hu.local_addr()).await.unwrap();
    let mut b = [0u8; 1];
    within(3, c.recv_from(&mut b)).await.unwrap();
    assert_eq!(&b, b"u");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_unusable_listener_and_target() {
    let proxy = Proxy::new(ProxyConfig::default()).unwrap();
    // Unbound socket.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let err = proxy
        .add_with_listener(StdListener::Tcp(s.into()), tcp_echo().await)
        .unwrap_err();
    assert!(matches!(err, ProxyError::BadListener { .. }), "{err:?}");
    // A UDP socket passed off as TCP.
    let u = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    u.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let err = proxy
        .add_with_listener(StdListener::Tcp(u.into()), tcp_echo().await)
        .unwrap_err();
    assert!(matches!(err, ProxyError::BadListener { .. }), "{err:?}");
    let err = proxy
        .add(spec(
            Proto::Tcp,
            "127.0.0.1:0".parse().unwrap(),
            "0.0.0.0:80".parse().unwrap(),
        ))
        .unwrap_err();
    assert!(matches!(err, ProxyError::InvalidTarget { .. }), "{err:?}");
}

#[test]
fn new_outside_runtime_is_an_error_and_with_runtime_works() {
    assert!(matches!(
        Proxy::new(ProxyConfig::default()),
        Err(ProxyError::NoRuntime)
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proxy = Proxy::with_runtime(ProxyConfig::default(), rt.handle().clone());
    let target = rt.block_on(tcp_echo());
    // add() from a plain thread: binding and spawning use the stored handle.
    let h = proxy
        .add(spec(Proto::Tcp, "127.0.0.1:0".parse().unwrap(), target))
        .unwrap();
    let mut c = std::net::TcpStream::connect(h.local_addr()).unwrap();
    use std::io::{Read, Write};
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    c.write_all(b"sync").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"sync");
    drop(h);
}
