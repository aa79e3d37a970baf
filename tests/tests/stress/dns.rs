//! The load test's DNS side: a minimal UDP DNS client (A queries, answers parsed just
//! enough), the paced 1,000 queries per second load with stub-resolver retries, and the
//! UDP receive-buffer drop counter of a namespace.

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{DNS_MIN_SECS, DNS_QPS, LOAD_MAX};

/// A large receive buffer, so that the client never drops answers itself.
pub fn set_rcvbuf(s: &UdpSocket, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket fd and a pointer to a c_int of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &bytes as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// `Udp: ... RcvbufErrors` of the network namespace at `ns` (/proc/net/snmp).
pub fn udp_rcvbuf_errors(ns: &str) -> u64 {
    let out = netd_tests::in_netns(ns, "cat /proc/net/snmp").unwrap_or_default();
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("Udp:")).collect();
    if rows.len() < 2 {
        return 0;
    }
    let keys: Vec<&str> = rows[0].split_whitespace().collect();
    let vals: Vec<&str> = rows[1].split_whitespace().collect();
    keys.iter()
        .position(|k| *k == "RcvbufErrors")
        .and_then(|i| vals.get(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, QDCOUNT=1
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, A, IN
    q
}

pub fn skip_name(p: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let l = *p.get(i)?;
        if l & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        i += 1;
        if l == 0 {
            return Some(i);
        }
        i += l as usize;
    }
}

/// (id, rcode, A addresses) of an answer.
pub fn dns_answer(p: &[u8]) -> Option<(u16, u8, Vec<Ipv4Addr>)> {
    if p.len() < 12 || p[2] & 0x80 == 0 {
        return None;
    }
    let id = u16::from_be_bytes([p[0], p[1]]);
    let rcode = p[3] & 0x0f;
    let an = u16::from_be_bytes([p[6], p[7]]);
    let mut i = skip_name(p, 12)? + 4;
    let mut addrs = vec![];
    for _ in 0..an {
        i = skip_name(p, i)?;
        let ty = u16::from_be_bytes([*p.get(i)?, *p.get(i + 1)?]);
        let len = u16::from_be_bytes([*p.get(i + 8)?, *p.get(i + 9)?]) as usize;
        i += 10;
        if ty == 1 && len == 4 {
            let d = p.get(i..i + 4)?;
            addrs.push(Ipv4Addr::new(d[0], d[1], d[2], d[3]));
        }
        i += len;
    }
    Some((id, rcode, addrs))
}

#[derive(Debug, Default)]
pub struct DnsReport {
    pub sent: u64,
    pub answered: u64,
    /// Queries whose first attempt got no answer within `DNS_RETRY_AFTER` (resent).
    pub retried: u64,
    /// Lookups that failed: no answer after `DNS_ATTEMPTS`, or a wrong answer.
    pub errors: Vec<String>,
    pub max_latency: Duration,
    pub p99_latency: Duration,
    pub secs: f64,
}

/// Like a stub resolver with `options timeout:1 attempts:3`: UDP may lose a query, and a
/// client resends it; a lookup fails when no attempt is answered.
pub const DNS_RETRY_AFTER: Duration = Duration::from_secs(1);
pub const DNS_ATTEMPTS: u32 = 3;

/// One query in flight: name index, first and last send, attempts.
pub struct Pending {
    k: usize,
    first: Instant,
    last: Instant,
    attempts: u32,
}

#[derive(Default)]
pub struct Flight {
    pending: HashMap<u16, Pending>,
    /// Ids answered already (a late answer to an earlier attempt is no error).
    answered: std::collections::HashSet<u16>,
}

/// Send `DNS_QPS` queries per second (in 10 ms slices) until `stop` and at least
/// `DNS_MIN_SECS`; every lookup must get NOERROR with exactly the expected address.
pub fn dns_load(names: Vec<(String, Ipv4Addr)>, stop: Arc<AtomicBool>) -> DnsReport {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind in sandbox");
    sock.connect("127.0.0.11:53").expect("connect 127.0.0.11");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    set_rcvbuf(&sock, 8 << 20);
    let flight: Arc<Mutex<Flight>> = Default::default();
    let start = Instant::now();
    let done_sending = Arc::new(AtomicBool::new(false));
    let rx = {
        let sock = sock.try_clone().unwrap();
        let (flight, done, names) = (flight.clone(), done_sending.clone(), names.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let (mut answered, mut errors, mut lat) = (0u64, vec![], vec![]);
            let mut quiet_since: Option<Instant> = None;
            loop {
                if let Ok(n) = sock.recv(&mut buf) {
                    match dns_answer(&buf[..n]) {
                        Some((id, rcode, addrs)) => {
                            let mut f = flight.lock().unwrap();
                            let k = match f.pending.remove(&id) {
                                Some(p) => {
                                    f.answered.insert(id);
                                    lat.push(p.first.elapsed());
                                    answered += 1;
                                    p.k
                                }
                                None if f.answered.contains(&id) => continue,
                                None => {
                                    errors.push(format!("answer to no query (id {id})"));
                                    continue;
                                }
                            };
                            let (name, want) = &names[k];
                            if rcode != 0 || addrs != vec![*want] {
                                errors.push(format!(
                                    "{name}: rcode {rcode}, {addrs:?} (want {want})"
                                ));
                            }
                        }
                        None => errors.push(format!("unparsable answer ({n} bytes)")),
                    }
                }
                if done.load(Ordering::SeqCst) {
                    if flight.lock().unwrap().pending.is_empty() {
                        break;
                    }
                    let q = *quiet_since.get_or_insert_with(Instant::now);
                    if q.elapsed() > DNS_RETRY_AFTER * (DNS_ATTEMPTS + 1) {
                        break;
                    }
                }
            }
            (answered, errors, lat)
        })
    };
    let (mut sent, mut retried, mut slice) = (0u64, 0u64, 0u64);
    let send = |id: u16, k: usize| {
        let _ = sock.send(&dns_query(id, &names[k].0));
    };
    let retry_due = |retried: &mut u64| {
        let now = Instant::now();
        let mut f = flight.lock().unwrap();
        for (id, p) in f.pending.iter_mut() {
            if p.attempts < DNS_ATTEMPTS && now - p.last > DNS_RETRY_AFTER {
                if p.attempts == 1 {
                    *retried += 1;
                }
                p.attempts += 1;
                p.last = now;
                send(*id, p.k);
            }
        }
    };
    while start.elapsed() < LOAD_MAX
        && (start.elapsed() < Duration::from_secs(DNS_MIN_SECS) || !stop.load(Ordering::SeqCst))
    {
        for _ in 0..DNS_QPS / 100 {
            let id = (sent % 65_536) as u16;
            let k = (sent as usize) % names.len();
            {
                let mut f = flight.lock().unwrap();
                f.answered.remove(&id);
                let now = Instant::now();
                f.pending.insert(
                    id,
                    Pending {
                        k,
                        first: now,
                        last: now,
                        attempts: 1,
                    },
                );
            }
            send(id, k);
            sent += 1;
        }
        retry_due(&mut retried);
        slice += 1;
        let next = start + Duration::from_millis(slice * 10);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // Keep resending what is due until every query is answered or out of attempts.
    let deadline = Instant::now() + DNS_RETRY_AFTER * (DNS_ATTEMPTS + 1);
    while Instant::now() < deadline && !flight.lock().unwrap().pending.is_empty() {
        retry_due(&mut retried);
        std::thread::sleep(Duration::from_millis(10));
    }
    done_sending.store(true, Ordering::SeqCst);
    let (answered, mut errors, mut lat) = rx.join().unwrap();
    let mut lost: Vec<(f64, u16, usize)> = flight
        .lock()
        .unwrap()
        .pending
        .iter()
        .map(|(id, p)| (p.first.duration_since(start).as_secs_f64(), *id, p.k))
        .collect();
    lost.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at, id, k) in &lost {
        errors.push(format!(
            "no answer to {} after {DNS_ATTEMPTS} attempts (id {id}, first sent at {at:.2} s)",
            names[*k].0
        ));
    }
    lat.sort();
    DnsReport {
        sent,
        answered,
        retried,
        errors,
        max_latency: lat.last().copied().unwrap_or_default(),
        p99_latency: lat.get(lat.len() * 99 / 100).copied().unwrap_or_default(),
        secs,
    }
}
