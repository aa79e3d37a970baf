//! Forwarding to upstream servers over UDP, with TCP retry on truncation.
//!
//! Runs in the daemon's own namespace with ordinary sockets. One fresh, connected UDP socket
//! per attempt gives a random source port and lets the kernel drop datagrams from anyone but
//! the upstream (and report ICMP port-unreachable as an error, so a dead local upstream fails
//! over at once instead of waiting for the timeout). The total time budget is split between
//! the upstreams still to try; inside one upstream's share the query is sent once more half
//! way through, to ride out a single lost datagram.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};
use tracing::debug;

/// EDNS payload size we advertise upstream (the DNS flag day 2020 value).
const UPSTREAM_PAYLOAD: u16 = 1232;

/// Why forwarding produced no usable answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// No upstream configured for this sandbox nor by default.
    #[error("no upstream servers configured")]
    NoUpstreams,
    /// Every upstream timed out, failed, or answered SERVFAIL/REFUSED/…
    #[error("all {0} upstream servers failed")]
    AllFailed(usize),
    /// The query could not be encoded.
    #[error("cannot encode upstream query: {0}")]
    Encode(String),
}

/// Asks `upstreams` in order, within `budget` in total; returns the first NOERROR or NXDOMAIN
/// answer. The returned message's id is the upstream one: callers re-emit the records.
pub(crate) async fn forward(
    query: &Query,
    upstreams: &[SocketAddr],
    budget: Duration,
) -> Result<Message, ForwardError> {
    if upstreams.is_empty() {
        return Err(ForwardError::NoUpstreams);
    }
    let deadline = Instant::now() + budget;
    for (i, upstream) in upstreams.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let share = (deadline - now) / (upstreams.len() - i) as u32;
        let attempt_deadline = now + share;
        let id: u16 = rand::random();
        let packet = upstream_query(id, query)?;
        let result = match udp_exchange(*upstream, &packet, id, query, attempt_deadline).await {
            Ok(m) if m.metadata.truncation => {
                debug!(%upstream, "truncated answer, retrying over TCP");
                tcp_exchange(*upstream, &packet, id, query, attempt_deadline).await
            }
            other => other,
        };
        match result {
            Ok(m) if acceptable(m.metadata.response_code) => return Ok(m),
            Ok(m) => debug!(%upstream, rcode = %m.metadata.response_code, "upstream refused, next"),
            Err(e) => debug!(%upstream, error = %e, "upstream failed, next"),
        }
    }
    Err(ForwardError::AllFailed(upstreams.len()))
}

fn acceptable(rcode: ResponseCode) -> bool {
    matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain)
}

fn upstream_query(id: u16, query: &Query) -> Result<Vec<u8>, ForwardError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(query.clone());
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD);
    m.set_edns(edns);
    m.to_vec().map_err(|e| ForwardError::Encode(e.to_string()))
}

/// Is `m` the answer to our question (id, QR bit, same question ignoring case)?
fn matches_query(m: &Message, id: u16, query: &Query) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && (m.queries.is_empty() && m.metadata.response_code != ResponseCode::NoError
            || m.queries.len() == 1
                && m.queries[0].query_type == query.query_type
                && m.queries[0].query_class == query.query_class
                && m.queries[0].name.eq_ignore_root(&query.name))
}

fn unspecified_for(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "upstream timed out")
}

async fn udp_exchange(
    upstream: SocketAddr,
    packet: &[u8],
    id: u16,
    query: &Query,
    deadline: Instant,
) -> io::Result<Message> {
    let sock = UdpSocket::bind(unspecified_for(&upstream)).await?;
    sock.connect(upstream).await?;
    sock.send(packet).await?;
    let resend_at = Instant::now() + (deadline - Instant::now()) / 2;
    let mut resent = false;
    let mut buf = vec![0u8; 65535];
    loop {
        let until = if resent { deadline } else { resend_at };
        match timeout_at(until, sock.recv(&mut buf)).await {
            Err(_) if resent => return Err(timed_out()),
            Err(_) => {
                sock.send(packet).await?;
                resent = true;
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(n)) => match Message::from_vec(&buf[..n]) {
                Ok(m) if matches_query(&m, id, query) => return Ok(m),
                _ => debug!(%upstream, "ignoring unrelated or malformed datagram"),
            },
        }
    }
}

async fn tcp_exchange(
    upstream: SocketAddr,
    packet: &[u8],
    id: u16,
    query: &Query,
    deadline: Instant,
) -> io::Result<Message> {
    let len = u16::try_from(packet.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    let exchange = async {
        let mut stream = TcpStream::connect(upstream).await?;
        stream.set_nodelay(true)?;
        let mut out = Vec::with_capacity(packet.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(packet);
        stream.write_all(&out).await?;
        loop {
            let n = stream.read_u16().await? as usize;
            let mut buf = vec![0u8; n];
            stream.read_exact(&mut buf).await?;
            let m = Message::from_vec(&buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if matches_query(&m, id, query) {
                return Ok(m);
            }
        }
    };
    timeout_at(deadline, exchange)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}
