//! The `netd-proxy` binary against docker-proxy's start-up protocol: status pipe on fd 3
//! (`0\n` or `1\n<error>`), listener on fd 4 with `-use-listen-fd`, relay, SIGTERM stop.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_netd-proxy");

/// Kills (by pid) and reaps the child if the test did not stop it.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Proc {
    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as libc::pid_t, sig) };
    }

    fn wait_timeout(&mut self, d: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.0.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array; O_CLOEXEC keeps them out of children
    // spawned concurrently by other tests.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds we own.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Start netd-proxy with a status pipe as fd 3 (and `listen` as fd 4); return the child
/// and the read end of the status pipe.
fn spawn(args: &[&str], listen: Option<OwnedFd>) -> (Proc, File) {
    let (r, w) = pipe();
    let wfd = w.as_raw_fd();
    let lfd: RawFd = listen.as_ref().map_or(-1, |l| l.as_raw_fd());
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null());
    // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Move both out of the way first, so neither is clobbered if it sits on 3/4.
            let w_hi = libc::fcntl(wfd, libc::F_DUPFD_CLOEXEC, 100);
            let l_hi = if lfd >= 0 {
                libc::fcntl(lfd, libc::F_DUPFD_CLOEXEC, 100)
            } else {
                -1
            };
            if w_hi < 0 || libc::dup2(w_hi, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if l_hi >= 0 && libc::dup2(l_hi, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn netd-proxy");
    drop(w);
    drop(listen);
    (Proc(child), File::from(r))
}

/// Everything written to the status pipe until the child closes it (10 s limit).
fn read_status(mut f: File) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("status pipe not closed within 10 s")
}

fn tcp_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn udp_echo() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tcp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(msg).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    got
}

fn udp_roundtrip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c.send_to(msg, addr).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn tcp_ready_signal_relay_and_sigterm() {
    let target = tcp_echo();
    let port = free_port();
    let (mut p, status) = spawn(
        &[
            "-proto",
            "tcp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &port.to_string(),
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            &target.port().to_string(),
        ],
        None,
    );
    assert_eq!(read_status(status), "0\n");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let msg = vec![42u8; 300_000];
    assert_eq!(tcp_roundtrip(addr, &msg), msg);
    p.signal(libc::SIGTERM);
    let st = p
        .wait_timeout(Duration::from_secs(5))
        .expect("did not exit on SIGTERM");
    assert!(st.success(), "{st:?}");
    // The port is released with the process.
    TcpListener::bind(addr).unwrap();
}

#[test]
fn udp_go_style_flags_and_sigint() {
    let target = udp_echo();
    let port = free_port();
    let (mut p, status) = spawn(
        &[
            "--proto=udp",
            "-host-ip=127.0.0.1",
            &format!("-host-port={port}"),
            "-container-ip=127.0.0.1",
            &format!("--container-port={}", target.port()),
        ],
        None,
    );
    assert_eq!(read_status(status), "0\n");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(udp_roundtrip(addr, b"dgram"), b"dgram");
    p.signal(libc::SIGINT);
    let st = p
        .wait_timeout(Duration::from_secs(5))
        .expect("did not exit on SIGINT");
    assert!(st.success(), "{st:?}");
}

#[test]
fn bind_failure_reports_1_and_message() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (mut p, status) = spawn(
        &[
            "-proto",
            "tcp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &port,
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            "80",
        ],
        None,
    );
    let s = read_status(status);
    assert!(s.starts_with("1\n"), "{s:?}");
    assert!(s.contains("already in use"), "{s:?}");
    assert!(s.contains(&port), "{s:?}");
    let st = p
        .wait_timeout(Duration::from_secs(5))
        .expect("did not exit");
    assert_eq!(st.code(), Some(1));
}

#[test]
fn sctp_and_bad_ports_are_reported_on_the_pipe() {
    for (args, want) in [
        (
            vec![
                "-proto",
                "sctp",
                "-host-port",
                "1",
                "-container-ip",
                "127.0.0.1",
                "-container-port",
                "2",
            ],
            "unsupported protocol sctp",
        ),
        (
            vec!["-container-ip", "127.0.0.1", "-container-port", "2"],
            "invalid port -1 for -host-port",
        ),
    ] {
        let (mut p, status) = spawn(&args, None);
        let s = read_status(status);
        assert_eq!(s, format!("1\n{want}"));
        assert_eq!(
            p.wait_timeout(Duration::from_secs(5)).unwrap().code(),
            Some(1)
        );
    }
}

#[test]
fn unknown_flag_exits_2_like_go_flag() {
    let (mut p, status) = spawn(&["-no-such-flag"], None);
    assert_eq!(read_status(status), "");
    assert_eq!(
        p.wait_timeout(Duration::from_secs(5)).unwrap().code(),
        Some(2)
    );
}

#[test]
fn use_listen_fd_tcp_and_udp() {
    // The daemon binds (reserving the port) and passes the socket as fd 4; host-ip and
    // host-port are still sent but not used for binding.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let target = tcp_echo();
    let (_p, status) = spawn(
        &[
            "-proto",
            "tcp",
            "-host-ip",
            "127.0.0.1",
            "-host-port",
            &addr.port().to_string(),
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            &target.port().to_string(),
            "-use-listen-fd",
        ],
        Some(OwnedFd::from(l)),
    );
    assert_eq!(read_status(status), "0\n");
    assert_eq!(tcp_roundtrip(addr, b"via fd 4"), b"via fd 4");

    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uaddr = u.local_addr().unwrap();
    let utarget = udp_echo();
    let (_pu, status) = spawn(
        &[
            "-proto",
            "udp",
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            &utarget.port().to_string(),
            "-use-listen-fd=true",
        ],
        Some(OwnedFd::from(u)),
    );
    assert_eq!(read_status(status), "0\n");
    assert_eq!(udp_roundtrip(uaddr, b"udp via fd 4"), b"udp via fd 4");
}

#[test]
fn use_listen_fd_with_wrong_socket_type_fails() {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (mut p, status) = spawn(
        &[
            "-proto",
            "tcp",
            "-container-ip",
            "127.0.0.1",
            "-container-port",
            "80",
            "-use-listen-fd",
        ],
        Some(OwnedFd::from(u)),
    );
    let s = read_status(status);
    assert!(
        s.starts_with("1\n") && s.contains("udp socket but -proto is tcp"),
        "{s:?}"
    );
    assert_eq!(
        p.wait_timeout(Duration::from_secs(5)).unwrap().code(),
        Some(1)
    );
}
