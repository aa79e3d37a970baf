//! Counters kept with relaxed atomics (they are statistics, not synchronisation) and the
//! plain snapshot returned by [`crate::Resolver::stats`].

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queries: AtomicU64,
    pub local_answers: AtomicU64,
    pub forwarded: AtomicU64,
    pub cache_hits: AtomicU64,
    pub servfail: AtomicU64,
    pub formerr: AtomicU64,
    pub dropped: AtomicU64,
    pub truncated: AtomicU64,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            queries: g(&self.queries),
            local_answers: g(&self.local_answers),
            forwarded: g(&self.forwarded),
            cache_hits: g(&self.cache_hits),
            servfail: g(&self.servfail),
            formerr: g(&self.formerr),
            dropped: g(&self.dropped),
            truncated: g(&self.truncated),
        }
    }
}

/// A snapshot of the resolver's counters since it was created (all sandboxes together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets with a query header (parsable or not).
    pub queries: u64,
    /// Answered from the table (addresses, PTR, NODATA, local NXDOMAIN).
    pub local_answers: u64,
    /// Sent upstream (cache misses).
    pub forwarded: u64,
    /// Answered from the cache.
    pub cache_hits: u64,
    /// SERVFAIL answers (upstream failure, overload, encoding failure).
    pub servfail: u64,
    /// FORMERR answers (garbage after a valid header, or not exactly one question).
    pub formerr: u64,
    /// Packets dropped without answer (shorter than a header, or responses).
    pub dropped: u64,
    /// UDP answers sent with TC set because they did not fit.
    pub truncated: u64,
}
