//! Short request/response connections for bench/proxy-vs-docker.sh (std only, built
//! with plain `rustc -O`): `rr serve ADDR` answers each connection's 64-byte request
//! with 64 bytes and closes; `rr rate ADDR WORKERS SECS` opens connections in a loop
//! (connect, 64 B request, 64 B reply, close) and prints `CONNS ERRORS`. Bounded to
//! SECS seconds and 200k connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.first().map(String::as_str) {
        Some("serve") => serve(a[1].parse().expect("ADDR")),
        Some("rate") => {
            let (n, e) = rate(
                a[1].parse().expect("ADDR"),
                a[2].parse().expect("WORKERS"),
                Duration::from_secs(a[3].parse().expect("SECS")),
            );
            println!("{n} {e}");
        }
        _ => {
            eprintln!("usage: rr serve ADDR | rr rate ADDR WORKERS SECS");
            std::process::exit(2);
        }
    }
}

fn serve(addr: SocketAddr) {
    let l = TcpListener::bind(addr).expect("bind");
    let (tx, rx) = mpsc::channel::<TcpStream>();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..8 {
        let rx = rx.clone();
        std::thread::spawn(move || loop {
            let s = rx.lock().unwrap().recv();
            let Ok(mut s) = s else { return };
            let mut b = [0u8; 64];
            if s.read_exact(&mut b).is_ok() {
                let _ = s.write_all(&b);
            }
        });
    }
    for s in l.incoming().flatten() {
        let _ = tx.send(s);
    }
}

fn rate(addr: SocketAddr, workers: usize, dur: Duration) -> (u64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errs = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + dur;
    let th: Vec<_> = (0..workers)
        .map(|_| {
            let (done, errs) = (done.clone(), errs.clone());
            std::thread::spawn(move || {
                while Instant::now() < end && done.load(Ordering::Relaxed) < 200_000 {
                    let r = (|| -> std::io::Result<()> {
                        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                        s.set_read_timeout(Some(Duration::from_secs(2)))?;
                        s.write_all(&[7u8; 64])?;
                        let mut b = [0u8; 64];
                        s.read_exact(&mut b)?;
                        Ok(())
                    })();
                    match r {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errs.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in th {
        let _ = t.join();
    }
    (done.load(Ordering::Relaxed), errs.load(Ordering::Relaxed))
}
