//! Batched datagram I/O with recvmmsg(2)/sendmmsg(2): one syscall moves up to [`BATCH`]
//! datagrams, which is what lets the UDP relay keep up with a client at line rate.
//!
//! A [`Batch`] holds the receive slots, sender addresses and control buffers of one
//! recvmmsg call and the headers of the sendmmsg calls that forward those same bytes
//! (no copy). One batch per worker thread is enough: it is filled and emptied without
//! an await in between.

use std::cell::RefCell;
use std::io;
use std::mem::zeroed;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

use crate::pktinfo::{self, CmsgBuf, CMSG_BUF};

/// Datagrams per syscall.
pub(crate) const BATCH: usize = 16;
/// One slot holds the largest UDP payload (IPv6 allows 65527 bytes).
const SLOT: usize = 64 * 1024;

thread_local! {
    /// The worker thread's batch (1 MiB of address space; only touched pages are
    /// resident, one page per slot for ordinary datagrams).
    pub(crate) static BATCH_BUF: RefCell<Batch> = RefCell::new(Batch::new());
}

/// Buffers for one recvmmsg and the sendmmsg calls that forward its datagrams.
pub(crate) struct Batch {
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    cmsgs: Vec<CmsgBuf>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Datagrams held after the last [`Batch::recv`].
    len: usize,
}

impl Batch {
    fn new() -> Self {
        Batch {
            bufs: vec![0; BATCH * SLOT],
            // SAFETY: all-zero is a valid value for these plain C structs.
            names: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            cmsgs: (0..BATCH).map(|_| CmsgBuf([0; CMSG_BUF])).collect(),
            iovs: (0..BATCH)
                .map(|_| libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                })
                .collect(),
            // SAFETY: as above.
            hdrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            len: 0,
        }
    }

    /// Receive up to [`BATCH`] datagrams without blocking; with `meta`, also each
    /// sender and pktinfo destination. Returns how many arrived (never 0: an empty
    /// socket is `WouldBlock`).
    pub(crate) fn recv(&mut self, fd: RawFd, meta: bool) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void,
                iov_len: SLOT,
            };
            let h = &mut self.hdrs[i];
            // SAFETY: all-zero is a valid msghdr; pointers are set below.
            h.msg_hdr = unsafe { zeroed() };
            h.msg_hdr.msg_iov = &mut self.iovs[i];
            h.msg_hdr.msg_iovlen = 1;
            if meta {
                h.msg_hdr.msg_name = &mut self.names[i] as *mut _ as *mut libc::c_void;
                h.msg_hdr.msg_namelen =
                    std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_control = self.cmsgs[i].0.as_mut_ptr() as *mut libc::c_void;
                h.msg_hdr.msg_controllen = CMSG_BUF as _;
            }
            h.msg_len = 0;
        }
        self.len = 0;
        // SAFETY: every header points at live buffers of the stated sizes, all owned by
        // `self`, for the whole call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len = n as usize;
        Ok(self.len)
    }

    /// Payload of datagram `i` of the last receive.
    pub(crate) fn data(&self, i: usize) -> &[u8] {
        let n = self.hdrs[i].msg_len as usize;
        &self.bufs[i * SLOT..i * SLOT + n]
    }

    /// Sender of datagram `i` (receive with `meta`).
    pub(crate) fn from(&self, i: usize) -> Option<SocketAddr> {
        pktinfo::sockaddr_to_std(&self.names[i])
    }

    /// Local address datagram `i` was sent to, when PKTINFO is on (receive with `meta`).
    pub(crate) fn dst(&self, i: usize) -> Option<IpAddr> {
        pktinfo::destination(&self.hdrs[i].msg_hdr)
    }

    /// Send datagrams `range` of the last receive with one sendmmsg: on a connected
    /// socket when `to` is `None`, else to `to` from source `src`. Returns how many the
    /// kernel took; an error means the first of them failed.
    pub(crate) fn send(
        &mut self,
        fd: RawFd,
        range: std::ops::Range<usize>,
        to: Option<SocketAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<usize> {
        debug_assert!(range.end <= self.len);
        let (mut name, namelen) = match to {
            Some(a) => {
                let (n, l) = pktinfo::std_to_sockaddr(a);
                (Some(n), l)
            }
            None => (None, 0),
        };
        let mut cbuf = CmsgBuf([0; CMSG_BUF]);
        let count = range.len();
        for i in range.clone() {
            let len = self.hdrs[i].msg_len as usize;
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void,
                iov_len: len,
            };
            // The receive header is reused for the send (sender and pktinfo must have
            // been read before: `from()`/`dst()` are invalid for sent datagrams).
            let iov: *mut libc::iovec = &mut self.iovs[i];
            let h = &mut self.hdrs[i];
            // SAFETY: all-zero is a valid msghdr.
            h.msg_hdr = unsafe { zeroed() };
            h.msg_hdr.msg_iov = iov;
            h.msg_hdr.msg_iovlen = 1;
            if let (Some(n), Some(a)) = (name.as_mut(), to) {
                h.msg_hdr.msg_name = n as *mut _ as *mut libc::c_void;
                h.msg_hdr.msg_namelen = namelen;
                pktinfo::set_source(&mut h.msg_hdr, &mut cbuf, src, a);
            }
            h.msg_len = len as libc::c_uint;
        }
        // SAFETY: headers [start, start+count) point at live iovecs, name and control
        // buffers for the whole call.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.hdrs[range.start..].as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        // The headers now describe sends; restore the received lengths so `data()`
        // stays valid for the rest of the range (a caller may retry part of it).
        for i in range {
            self.hdrs[i].msg_len = self.iovs[i].iov_len as libc::c_uint;
        }
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}
