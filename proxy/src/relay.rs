//! Bidirectional TCP relay. Each direction starts by copying through a per-thread
//! buffer, which costs two syscalls per message and no set-up: short request/response
//! connections never create a pipe. Once a read fills the whole buffer (bulk data),
//! that direction switches to splice(2) socket → pipe → socket, so payload no longer
//! enters user space. The splice loop is pipelined: it refills the pipe while data is
//! still in it and drains whatever is there, instead of strictly alternating "fill
//! completely, drain completely". If the kernel refuses splice (EINVAL before any byte
//! moved) or no pipe can be made, the direction keeps copying.
//!
//! Syscalls are tried first and only on EAGAIN does the task wait on tokio readiness
//! (`async_io`), so a busy connection makes no reactor round trips. A FIN from one side
//! becomes `shutdown(SHUT_WR)` on the other while the opposite direction keeps flowing
//! (half-close). Any error ends both directions and both sockets are closed with RST.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::sock::set_linger_zero;
use crate::stats::{Dir, Meter};

/// Size of the per-thread copy buffer; a read that fills it means bulk data.
const COPY_BUF: usize = 64 * 1024;

thread_local! {
    /// Copy buffer shared by every connection on a worker thread: a chunk is read and
    /// written without an await in between, so nothing else can touch it meanwhile.
    static COPY: RefCell<Vec<u8>> = RefCell::new(vec![0; COPY_BUF]);
}

/// Relay until both sides have closed their sending direction, or an error.
pub(crate) async fn relay(
    client: TcpStream,
    target: TcpStream,
    pipe_size: Option<usize>,
    meter: &Meter,
) -> io::Result<()> {
    let up = one_way(&client, &target, pipe_size, meter, Dir::ToTarget);
    let down = one_way(&target, &client, pipe_size, meter, Dir::FromTarget);
    let res = tokio::try_join!(up, down);
    if res.is_err() {
        set_linger_zero(&client);
        set_linger_zero(&target);
    }
    res.map(|_| ())
}

/// One direction: src → dst until EOF on src, then half-close dst.
async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    pipe_size: Option<usize>,
    meter: &Meter,
    dir: Dir,
) -> io::Result<()> {
    // `Some(0)` asks for copying only (benchmarks compare the two paths).
    let splice_ok = pipe_size != Some(0);
    if copy_loop(src, dst, meter, dir, splice_ok).await? == Copied::Bulk {
        match Pipe::new(pipe_size) {
            Ok(pipe) => match splice_loop(src, dst, &pipe, meter, dir).await {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // Only returned before any byte moved: safe to switch.
                    tracing::debug!("splice not supported for this socket pair, copying");
                    copy_loop(src, dst, meter, dir, false).await?;
                }
                other => other?,
            },
            Err(e) => {
                tracing::debug!(cause = %e, "no pipe for splice, copying");
                copy_loop(src, dst, meter, dir, false).await?;
            }
        }
    }
    half_close(dst);
    Ok(())
}

fn half_close(s: &TcpStream) {
    // SAFETY: plain syscall on an fd we borrow for the call.
    let rc = unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_WR) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOTCONN) {
            tracing::debug!(cause = %e, "shutdown(SHUT_WR) failed");
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Copied {
    /// The source reached EOF.
    Eof,
    /// A read filled the whole buffer: switch to splice.
    Bulk,
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// Copy src → dst through the per-thread buffer until EOF, or (with `until_bulk`)
/// until a read fills the buffer.
async fn copy_loop(
    src: &TcpStream,
    dst: &TcpStream,
    meter: &Meter,
    dir: Dir,
    until_bulk: bool,
) -> io::Result<Copied> {
    let (sfd, dfd) = (src.as_raw_fd(), dst.as_raw_fd());
    // Client → target: try the read at once, the first request is usually queued
    // already. Target → client: the target has only just been given that request.
    let mut first = dir == Dir::ToTarget;
    loop {
        let n = if first {
            first = false;
            match read_tls(sfd) {
                Err(e) if would_block(&e) => {
                    src.async_io(Interest::READABLE, || read_tls(sfd)).await
                }
                other => other,
            }
        } else {
            src.async_io(Interest::READABLE, || read_tls(sfd)).await
        }?;
        if n == 0 {
            return Ok(Copied::Eof);
        }
        // No await since the read: the buffer still holds this chunk.
        let sent = match COPY.with_borrow(|b| write_fd(dfd, &b[..n])) {
            Ok(m) => m,
            Err(e) if would_block(&e) => 0,
            Err(e) => return Err(e),
        };
        if sent < n {
            // Destination full: keep the rest, then wait for room.
            let rest: Vec<u8> = COPY.with_borrow(|b| b[sent..n].to_vec());
            let mut off = 0;
            while off < rest.len() {
                match dst
                    .async_io(Interest::WRITABLE, || write_fd(dfd, &rest[off..]))
                    .await?
                {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    m => off += m,
                }
            }
        }
        meter.bytes(dir, n as u64);
        if until_bulk && n == COPY_BUF {
            return Ok(Copied::Bulk);
        }
    }
}

fn read_tls(fd: libc::c_int) -> io::Result<usize> {
    COPY.with_borrow_mut(|b| {
        // SAFETY: valid fd; the buffer is live and writable for its whole length.
        let n = unsafe { libc::recv(fd, b.as_mut_ptr() as *mut libc::c_void, b.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

fn write_fd(fd: libc::c_int, data: &[u8]) -> io::Result<usize> {
    // SAFETY: valid fd; `data` is live for the call.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr() as *const libc::c_void,
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Pipelined splice: keep the pipe as full as the source allows and drain it as fast as
/// the destination allows.
///
/// EAGAIN from socket → pipe is ambiguous while the pipe holds data (its slots may be
/// full even if bytes < capacity), so only an empty-pipe EAGAIN is taken as "no data"
/// and waited on; otherwise the loop drains, which always makes progress or waits for
/// the destination.
async fn splice_loop(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    meter: &Meter,
    dir: Dir,
) -> io::Result<()> {
    let mut moved_any = false;
    let mut in_pipe = 0usize;
    let mut eof = false;
    loop {
        if !eof && in_pipe < pipe.cap {
            let room = pipe.cap - in_pipe;
            let res = match splice(src.as_fd(), pipe.w.as_fd(), room) {
                Err(e) if would_block(&e) && in_pipe == 0 => {
                    src.async_io(Interest::READABLE, || {
                        splice(src.as_fd(), pipe.w.as_fd(), room)
                    })
                    .await
                }
                other => other,
            };
            match res {
                Ok(0) => eof = true,
                Ok(n) => {
                    in_pipe += n;
                    moved_any = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && moved_any => {
                    return Err(io::Error::other(format!("splice failed mid-stream: {e}")))
                }
                Err(e) => return Err(e),
            }
        }
        if in_pipe == 0 {
            if eof {
                return Ok(());
            }
            continue;
        }
        let m = match splice(pipe.r.as_fd(), dst.as_fd(), in_pipe) {
            Err(e) if would_block(&e) => {
                dst.async_io(Interest::WRITABLE, || {
                    splice(pipe.r.as_fd(), dst.as_fd(), in_pipe)
                })
                .await?
            }
            other => other?,
        };
        if m == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        in_pipe -= m;
        meter.bytes(dir, m as u64);
    }
}

/// splice(2) without offsets, non-blocking on the pipe side too.
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: both fds are valid for the call; null offsets mean "current position".
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A non-blocking pipe used as the in-kernel buffer of one direction.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
    /// The pipe's capacity in bytes.
    cap: usize,
}

impl Pipe {
    fn new(size: Option<usize>) -> io::Result<Self> {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(io::Error::from)?;
        // The default pipe is 16 pages.
        let mut cap = 16 * page_size();
        if let Some(want) = size {
            // SAFETY: fcntl on a pipe fd we own; failure (EPERM over pipe-max-size or the
            // per-user quota) leaves the default size in place. On success it returns
            // the new capacity.
            let got =
                unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, want as libc::c_int) };
            if got > 0 {
                cap = got as usize;
            } else {
                // SAFETY: as above, F_GETPIPE_SZ only reads.
                let cur = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
                if cur > 0 {
                    cap = cur as usize;
                }
            }
        }
        Ok(Pipe { r, w, cap })
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}
