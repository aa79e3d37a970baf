//! Packet-level tests through `Resolver::handle_packet` (no sockets): truncation of big local
//! answers, opcode and question-count checks, EDNS echo.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use resolver::{Resolver, Table, Transport};

fn resolver_with_big_alias() -> Resolver {
    let r = Resolver::new(support::config(vec![], Duration::from_millis(100)));
    let mut b = Table::builder();
    for i in 0..80u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 7, 0, i + 2));
        b.add_endpoint("n", "net", &format!("w{i}"), &["workers".into()], "", &[ip]);
    }
    b.set_sandbox_scope("s", &["n".into()], &[]);
    r.set_table(b.build());
    r
}

async fn ask(r: &Resolver, packet: &[u8], t: Transport) -> Message {
    let bytes = r.handle_packet("s", packet, t).await.expect("an answer");
    Message::from_vec(&bytes).unwrap()
}

#[tokio::test]
async fn big_local_answer_truncates_over_udp_only() {
    let r = resolver_with_big_alias();
    let p = support::query_packet(1, "workers.", RecordType::A, None);
    let m = ask(&r, &p, Transport::Udp).await;
    assert!(m.metadata.truncation && m.answers.is_empty());
    assert_eq!(m.queries.len(), 1, "question kept in the truncated answer");
    let m = ask(&r, &p, Transport::Tcp).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 80);
    // With a large EDNS buffer it fits over UDP, and the answer carries EDNS.
    let p = support::query_packet(2, "workers.", RecordType::A, Some(4096));
    let m = ask(&r, &p, Transport::Udp).await;
    assert_eq!(m.answers.len(), 80);
    assert!(m.edns.is_some());
    assert_eq!(r.stats().truncated, 1);
}

#[tokio::test]
async fn other_opcodes_get_notimp_and_multiple_questions_formerr() {
    let r = resolver_with_big_alias();
    let mut m = Message::new(9, MessageType::Query, OpCode::Status);
    m.add_query(Query::query(
        Name::from_ascii("w1.").unwrap(),
        RecordType::A,
    ));
    let a = ask(&r, &m.to_vec().unwrap(), Transport::Udp).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(a.metadata.id, 9);

    let mut m = Message::new(10, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("w1.").unwrap(),
        RecordType::A,
    ));
    m.add_query(Query::query(
        Name::from_ascii("w2.").unwrap(),
        RecordType::A,
    ));
    let a = ask(&r, &m.to_vec().unwrap(), Transport::Udp).await;
    assert_eq!(a.metadata.response_code, ResponseCode::FormErr);

    let m = Message::new(11, MessageType::Query, OpCode::Query);
    let a = ask(&r, &m.to_vec().unwrap(), Transport::Udp).await;
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::FormErr,
        "no question"
    );
}

#[tokio::test]
async fn recursion_flags_echoed() {
    let r = resolver_with_big_alias();
    let p = support::query_packet(3, "w5.", RecordType::A, None);
    let m = ask(&r, &p, Transport::Udp).await;
    assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 600, "Docker's local TTL");
}
