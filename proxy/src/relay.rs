//! Bidirectional TCP relay. Each direction moves data socket → pipe → socket with
//! splice(2), so payload never enters user space; if the kernel refuses splice for these
//! sockets (EINVAL) or no pipe can be made, that direction falls back to a plain copy.
//!
//! Waiting is done on tokio readiness (`readable()`/`writable()` + `try_io`), never by
//! spinning. A FIN from one side becomes `shutdown(SHUT_WR)` on the other while the
//! opposite direction keeps flowing (half-close). Any error ends both directions and
//! both sockets are closed with RST.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::sock::set_linger_zero;
use crate::stats::{Dir, Meter};

/// Largest amount moved by one splice call when the pipe size is unknown.
const DEFAULT_CHUNK: usize = 64 * 1024;
/// Buffer for the copy fallback.
const COPY_BUF: usize = 64 * 1024;

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
    match Pipe::new(pipe_size) {
        Ok(pipe) => match splice_loop(src, dst, &pipe, meter, dir).await {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // Only returned before any byte moved: safe to switch.
                tracing::debug!("splice not supported for this socket pair, copying");
                copy_loop(src, dst, meter, dir).await
            }
            other => other,
        },
        Err(e) => {
            tracing::debug!(cause = %e, "no pipe for splice, copying");
            copy_loop(src, dst, meter, dir).await
        }
    }?;
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

async fn splice_loop(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    meter: &Meter,
    dir: Dir,
) -> io::Result<()> {
    let mut moved_any = false;
    loop {
        // Fill: socket → pipe. The pipe is empty here, so EAGAIN can only mean "socket
        // has no data" and clearing the socket's read readiness is correct.
        let n = loop {
            src.readable().await?;
            match src.try_io(Interest::READABLE, || {
                splice(src.as_fd(), pipe.w.as_fd(), pipe.chunk)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && moved_any => {
                    return Err(io::Error::other(format!("splice failed mid-stream: {e}")))
                }
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(());
        }
        moved_any = true;
        // Drain: pipe → socket, until the pipe is empty again.
        let mut left = n;
        while left > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || {
                splice(pipe.r.as_fd(), dst.as_fd(), left)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        meter.bytes(dir, n as u64);
    }
}

async fn copy_loop(src: &TcpStream, dst: &TcpStream, meter: &Meter, dir: Dir) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = loop {
            src.readable().await?;
            match src.try_read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off < n {
            dst.writable().await?;
            match dst.try_write(&buf[off..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => off += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        meter.bytes(dir, n as u64);
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
    /// How much one fill may move: the pipe's capacity, so a drain always empties it.
    chunk: usize,
}

impl Pipe {
    fn new(size: Option<usize>) -> io::Result<Self> {
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(io::Error::from)?;
        let mut chunk = DEFAULT_CHUNK;
        if let Some(want) = size {
            // SAFETY: fcntl on a pipe fd we own; failure (EPERM over pipe-max-size or the
            // per-user quota) leaves the default size in place.
            let got =
                unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, want as libc::c_int) };
            if got > 0 {
                chunk = got as usize;
            }
        }
        // SAFETY: as above, F_GETPIPE_SZ only reads.
        let cap = unsafe { libc::fcntl(w.as_raw_fd(), libc::F_GETPIPE_SZ) };
        if cap > 0 {
            chunk = cap as usize;
        }
        Ok(Pipe { r, w, chunk })
    }
}
