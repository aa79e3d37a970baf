//! Turning one query packet into one answer packet: parse, ask the table, then the cache,
//! else hand back a forwarding job. Everything here except [`Shared::run_forward`] is
//! synchronous, so the serving loops answer local names and cache hits inline without
//! spawning a task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use tokio::sync::Semaphore;
use tracing::{debug, trace};

use crate::cache::{cache_ttl, clamp_negative_soa, Cache, CacheKey, CachedAnswer};
use crate::forward::forward;
use crate::stats::Counters;
use crate::table::{Answer, Table};
use crate::ResolverConfig;

/// EDNS payload size we advertise to clients.
const SERVER_PAYLOAD: u16 = 1232;
/// Largest UDP answer we send, whatever the client advertises.
const MAX_UDP_ANSWER: usize = 4096;

/// How a query arrived; decides the answer size limit (UDP truncates, TCP does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram: answers over the client's limit (512, or its EDNS size) come back with TC set.
    Udp,
    /// Stream: answers up to 65535 bytes.
    Tcp,
}

/// The synchronous outcome for one packet.
pub(crate) enum Step {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Say nothing (too short to carry an id, or not a query).
    Drop,
    /// Needs upstream: run [`Shared::run_forward`] and send what it returns.
    Forward(ForwardJob),
}

/// A question that must go upstream.
pub(crate) struct ForwardJob {
    request: Message,
    upstreams: Vec<SocketAddr>,
    key: CacheKey,
    limit: usize,
}

/// Everything the serving loops share: one per [`crate::Resolver`].
pub(crate) struct Shared {
    pub table: ArcSwap<Table>,
    pub cache: Cache,
    pub counters: Counters,
    pub config: ResolverConfig,
    pub inflight: Arc<Semaphore>,
}

impl Shared {
    pub fn new(config: ResolverConfig) -> Self {
        Self {
            table: ArcSwap::from_pointee(Table::default()),
            cache: Cache::new(config.cache_size),
            counters: Counters::default(),
            inflight: Arc::new(Semaphore::new(config.max_inflight_forwards.max(1))),
            config,
        }
    }

    /// Parses and answers what can be answered without I/O.
    pub fn process(&self, sandbox_id: &str, packet: &[u8], transport: Transport) -> Step {
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            // No room for a header, or a response (never answer those: loops, reflection).
            Counters::inc(&self.counters.dropped);
            return Step::Drop;
        }
        Counters::inc(&self.counters.queries);
        let request = match Message::from_vec(packet) {
            Ok(m) => m,
            Err(e) => {
                trace!(error = %e, "malformed query");
                Counters::inc(&self.counters.formerr);
                return Step::Reply(raw_error(packet, ResponseCode::FormErr));
            }
        };
        if request.metadata.op_code != OpCode::Query {
            return Step::Reply(self.error_reply(&request, ResponseCode::NotImp));
        }
        if request.queries.len() != 1 {
            Counters::inc(&self.counters.formerr);
            return Step::Reply(self.error_reply(&request, ResponseCode::FormErr));
        }
        let limit = answer_limit(&request, transport);
        let query = &request.queries[0];
        let table = self.table.load();
        let qname = query.name.to_ascii();
        let answer = if query.query_class == DNSClass::IN {
            table.lookup(sandbox_id, &qname, query.query_type)
        } else {
            Answer::Forward
        };
        let local = |rcode, answers| {
            Counters::inc(&self.counters.local_answers);
            Step::Reply(self.reply(&request, rcode, answers, Vec::new(), Vec::new(), limit))
        };
        match answer {
            Answer::Addrs(addrs) => {
                let ttl = self.config.local_ttl;
                let records = addrs
                    .into_iter()
                    .map(|a| {
                        let data = match a {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        Record::from_rdata(query.name.clone(), ttl, data)
                    })
                    .collect();
                local(ResponseCode::NoError, records)
            }
            Answer::Ptr(targets) => {
                let ttl = self.config.local_ttl;
                let records = targets
                    .iter()
                    .filter_map(|t| Name::from_ascii(t).ok())
                    .map(|n| Record::from_rdata(query.name.clone(), ttl, RData::PTR(PTR(n))))
                    .collect();
                local(ResponseCode::NoError, records)
            }
            Answer::NoData => local(ResponseCode::NoError, Vec::new()),
            Answer::NxDomain => local(ResponseCode::NXDomain, Vec::new()),
            Answer::Forward => {
                let key = CacheKey {
                    name: qname.to_ascii_lowercase(),
                    qtype: query.query_type.into(),
                    qclass: query.query_class.into(),
                };
                if let Some(hit) = self.cache.get(&key, Instant::now()) {
                    Counters::inc(&self.counters.cache_hits);
                    return Step::Reply(self.cached_reply(&request, &hit, limit));
                }
                let mut upstreams = table.upstreams(sandbox_id);
                if upstreams.is_empty() {
                    upstreams = &self.config.upstreams;
                }
                let upstreams = upstreams.to_vec();
                drop(table);
                Step::Forward(ForwardJob {
                    request,
                    upstreams,
                    key,
                    limit,
                })
            }
        }
    }

    /// Asks upstream, fills the cache, and returns the answer packet (SERVFAIL on failure).
    pub async fn run_forward(&self, job: ForwardJob) -> Vec<u8> {
        Counters::inc(&self.counters.forwarded);
        let query = &job.request.queries[0];
        match forward(query, &job.upstreams, self.config.timeout).await {
            Ok(mut msg) => {
                clamp_negative_soa(&mut msg);
                let now = Instant::now();
                let ttl = cache_ttl(&msg, self.config.max_cache_ttl);
                let answer = Arc::new(CachedAnswer::from_message(msg, ttl.unwrap_or(0), now));
                if ttl.is_some() {
                    self.cache.insert(job.key, answer.clone(), now);
                }
                self.cached_reply(&job.request, &answer, job.limit)
            }
            Err(e) => {
                debug!(name = %query.name, error = %e, "forwarding failed");
                self.error_reply(&job.request, ResponseCode::ServFail)
            }
        }
    }

    /// The answer when too many forwards are in flight.
    pub fn overloaded(&self, job: &ForwardJob) -> Vec<u8> {
        debug!("too many forwards in flight, SERVFAIL");
        self.error_reply(&job.request, ResponseCode::ServFail)
    }

    fn cached_reply(&self, request: &Message, hit: &CachedAnswer, limit: usize) -> Vec<u8> {
        let age = hit.age_secs(Instant::now());
        let aged = |rs: &[Record]| -> Vec<Record> {
            rs.iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.ttl = r.ttl.saturating_sub(age);
                    r
                })
                .collect()
        };
        self.reply(
            request,
            hit.rcode,
            aged(&hit.answers),
            aged(&hit.authorities),
            aged(&hit.additionals),
            limit,
        )
    }

    fn error_reply(&self, request: &Message, rcode: ResponseCode) -> Vec<u8> {
        self.reply(request, rcode, Vec::new(), Vec::new(), Vec::new(), 512)
    }

    /// Builds the answer to `request` (same id, same question) and truncates it to `limit`.
    fn reply(
        &self,
        request: &Message,
        rcode: ResponseCode,
        answers: Vec<Record>,
        authorities: Vec<Record>,
        additionals: Vec<Record>,
        limit: usize,
    ) -> Vec<u8> {
        if rcode == ResponseCode::ServFail {
            Counters::inc(&self.counters.servfail);
        }
        let mut m = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
        m.metadata.op_code = request.metadata.op_code;
        m.metadata.recursion_desired = request.metadata.recursion_desired;
        m.metadata.recursion_available = true;
        m.metadata.checking_disabled = request.metadata.checking_disabled;
        m.metadata.response_code = rcode;
        m.queries = request.queries.clone();
        m.answers = answers;
        m.authorities = authorities;
        m.additionals = additionals;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(SERVER_PAYLOAD);
            m.set_edns(edns);
        }
        match m.to_vec() {
            Ok(bytes) if bytes.len() <= limit => bytes,
            Ok(_) => {
                Counters::inc(&self.counters.truncated);
                m.answers.clear();
                m.authorities.clear();
                m.additionals.clear();
                m.metadata.truncation = true;
                m.to_vec()
                    .unwrap_or_else(|_| raw_error_id(request, ResponseCode::ServFail))
            }
            Err(e) => {
                debug!(error = %e, "cannot encode answer");
                raw_error_id(request, ResponseCode::ServFail)
            }
        }
    }
}

/// Largest answer the client can take.
fn answer_limit(request: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => u16::MAX as usize,
        Transport::Udp => request
            .edns
            .as_ref()
            .map(|e| (e.max_payload() as usize).clamp(512, MAX_UDP_ANSWER))
            .unwrap_or(512),
    }
}

/// A bare 12-byte error header echoing the id, opcode and RD bit of an unparsable query.
fn raw_error(packet: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let opcode_rd = packet[2] & 0x79; // opcode bits and RD
    vec![
        packet[0],
        packet[1],
        0x80 | opcode_rd,
        0x80 | (rcode.low() & 0x0f),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

fn raw_error_id(request: &Message, rcode: ResponseCode) -> Vec<u8> {
    let id = request.metadata.id.to_be_bytes();
    let rd = u8::from(request.metadata.recursion_desired);
    raw_error(&[id[0], id[1], rd, 0], rcode)
}
