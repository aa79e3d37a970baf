//! A tiny upstream DNS server for tests, on a loopback address of the test's choosing:
//! it answers `A` for names in its zone and NXDOMAIN (with an SOA) for the rest, and
//! counts the questions it gets. Never forwards anything anywhere.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct StubDns {
    pub addr: SocketAddr,
    pub queries: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Parse the question name; returns (name, end offset of the question).
fn qname(p: &[u8]) -> Option<(String, usize)> {
    let mut i = 12;
    let mut labels = vec![];
    loop {
        let l = *p.get(i)? as usize;
        i += 1;
        if l == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(p.get(i..i + l)?).to_ascii_lowercase());
        i += l;
    }
    Some((labels.join("."), i + 4))
}

impl StubDns {
    /// Serve `zone` (name → IPv4) on `addr` (use a unique 127.x.y.z:53 or port 0).
    /// With `silent`, receive but never answer (a dead upstream).
    pub fn start(
        addr: &str,
        zone: HashMap<String, Ipv4Addr>,
        silent: bool,
    ) -> std::io::Result<StubDns> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = sock.local_addr()?;
        let queries = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(vec![]));
        let stop = Arc::new(AtomicBool::new(false));
        let (q, s, st) = (queries.clone(), seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !st.load(Ordering::SeqCst) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let p = &buf[..n];
                let Some((name, qend)) = qname(p) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push(name.clone());
                if silent || qend > n {
                    continue;
                }
                let qtype = u16::from_be_bytes([p[qend - 4], p[qend - 3]]);
                let mut r = p[..qend].to_vec();
                r[2] = 0x80 | (p[2] & 0x01); // QR, RD copied
                r[3] = 0x80; // RA
                r[6] = 0;
                r[7] = 0;
                r[8] = 0;
                r[9] = 0;
                r[10] = 0;
                r[11] = 0;
                match zone.get(&name) {
                    Some(ip) if qtype == 1 => {
                        r[7] = 1; // ANCOUNT
                        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                        r.extend_from_slice(&ip.octets());
                    }
                    Some(_) => {} // NODATA
                    None => {
                        r[3] |= 3; // NXDOMAIN
                        r[9] = 1; // NSCOUNT: SOA for negative caching
                        r.extend_from_slice(&[0, 0, 6, 0, 1, 0, 0, 0, 60]);
                        let mut rdata = vec![];
                        rdata.extend_from_slice(b"\x02ns\x04stub\x00\x05admin\x04stub\x00");
                        for v in [1u32, 60, 60, 60, 30] {
                            rdata.extend_from_slice(&v.to_be_bytes());
                        }
                        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
                        r.extend_from_slice(&rdata);
                    }
                }
                let _ = sock.send_to(&r, peer);
            }
        });
        Ok(StubDns {
            addr,
            queries,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    pub fn count(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for StubDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A unique loopback address for a stub upstream (port 53), so tests running at once
/// each get their own.
pub fn loopback_addr() -> String {
    let r = crate::rand_u16();
    format!(
        "127.{}.{}.{}:53",
        100 + (r % 100) as u8,
        (r >> 8) as u8,
        2 + (r % 200) as u8
    )
}
