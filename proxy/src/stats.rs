//! Relay counters. Each listener has its own [`Stats`]; the [`crate::Proxy`] keeps a
//! second set that sums every listener it ever ran. Updates are relaxed atomics: the
//! figures are for monitoring, not for synchronisation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Live counters (read them with [`Stats::snapshot`]).
#[derive(Debug, Default)]
pub struct Stats {
    tcp_connections_total: AtomicU64,
    tcp_connections_active: AtomicU64,
    tcp_connect_failures: AtomicU64,
    bytes_to_target: AtomicU64,
    bytes_from_target: AtomicU64,
    udp_flows_total: AtomicU64,
    udp_flows_active: AtomicU64,
    udp_flows_evicted: AtomicU64,
    udp_flows_refused: AtomicU64,
    udp_datagrams_to_target: AtomicU64,
    udp_datagrams_from_target: AtomicU64,
    udp_datagrams_dropped: AtomicU64,
}

/// A point-in-time copy of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// TCP clients accepted.
    pub tcp_connections_total: u64,
    /// TCP clients currently being relayed (or dialling the target).
    pub tcp_connections_active: u64,
    /// Dials to the target that failed or timed out.
    pub tcp_connect_failures: u64,
    /// Payload bytes relayed client → target (TCP and UDP).
    pub bytes_to_target: u64,
    /// Payload bytes relayed target → client (TCP and UDP).
    pub bytes_from_target: u64,
    /// UDP flows created.
    pub udp_flows_total: u64,
    /// UDP flows currently open.
    pub udp_flows_active: u64,
    /// UDP flows closed early because the table was full.
    pub udp_flows_evicted: u64,
    /// New UDP clients turned away because the table was full.
    pub udp_flows_refused: u64,
    /// Datagrams relayed client → target.
    pub udp_datagrams_to_target: u64,
    /// Datagrams relayed target → client.
    pub udp_datagrams_from_target: u64,
    /// Datagrams dropped (full socket buffer, refused flow, send error).
    pub udp_datagrams_dropped: u64,
}

impl Stats {
    /// Copy the current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            tcp_connections_total: self.tcp_connections_total.load(Relaxed),
            tcp_connections_active: self.tcp_connections_active.load(Relaxed),
            tcp_connect_failures: self.tcp_connect_failures.load(Relaxed),
            bytes_to_target: self.bytes_to_target.load(Relaxed),
            bytes_from_target: self.bytes_from_target.load(Relaxed),
            udp_flows_total: self.udp_flows_total.load(Relaxed),
            udp_flows_active: self.udp_flows_active.load(Relaxed),
            udp_flows_evicted: self.udp_flows_evicted.load(Relaxed),
            udp_flows_refused: self.udp_flows_refused.load(Relaxed),
            udp_datagrams_to_target: self.udp_datagrams_to_target.load(Relaxed),
            udp_datagrams_from_target: self.udp_datagrams_from_target.load(Relaxed),
            udp_datagrams_dropped: self.udp_datagrams_dropped.load(Relaxed),
        }
    }
}

/// Which way payload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    ToTarget,
    FromTarget,
}

/// The pair of counter sets a listener updates: its own and the proxy-wide one.
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    pub(crate) local: Arc<Stats>,
    pub(crate) global: Arc<Stats>,
}

macro_rules! both {
    ($self:ident, $field:ident, $op:ident, $n:expr) => {{
        $self.local.$field.$op($n, Relaxed);
        $self.global.$field.$op($n, Relaxed);
    }};
}

impl Meter {
    pub(crate) fn new(global: Arc<Stats>) -> Self {
        Meter {
            local: Arc::new(Stats::default()),
            global,
        }
    }

    pub(crate) fn bytes(&self, dir: Dir, n: u64) {
        match dir {
            Dir::ToTarget => both!(self, bytes_to_target, fetch_add, n),
            Dir::FromTarget => both!(self, bytes_from_target, fetch_add, n),
        }
    }

    /// Count an accepted connection; the returned guard keeps it "active" until dropped.
    pub(crate) fn tcp_open(&self) -> ActiveGuard {
        both!(self, tcp_connections_total, fetch_add, 1);
        both!(self, tcp_connections_active, fetch_add, 1);
        ActiveGuard {
            meter: self.clone(),
            udp: false,
        }
    }

    pub(crate) fn tcp_connect_failed(&self) {
        both!(self, tcp_connect_failures, fetch_add, 1);
    }

    /// Count a new UDP flow; the guard keeps it "active" until dropped.
    pub(crate) fn udp_open(&self) -> ActiveGuard {
        both!(self, udp_flows_total, fetch_add, 1);
        both!(self, udp_flows_active, fetch_add, 1);
        ActiveGuard {
            meter: self.clone(),
            udp: true,
        }
    }

    pub(crate) fn udp_evicted(&self) {
        both!(self, udp_flows_evicted, fetch_add, 1);
    }

    pub(crate) fn udp_refused(&self) {
        both!(self, udp_flows_refused, fetch_add, 1);
    }

    pub(crate) fn datagram(&self, dir: Dir, len: usize) {
        match dir {
            Dir::ToTarget => both!(self, udp_datagrams_to_target, fetch_add, 1),
            Dir::FromTarget => both!(self, udp_datagrams_from_target, fetch_add, 1),
        }
        self.bytes(dir, len as u64);
    }

    /// Count `count` datagrams of `len` bytes in total at once (a batch).
    pub(crate) fn datagrams(&self, dir: Dir, count: u64, len: u64) {
        match dir {
            Dir::ToTarget => both!(self, udp_datagrams_to_target, fetch_add, count),
            Dir::FromTarget => both!(self, udp_datagrams_from_target, fetch_add, count),
        }
        self.bytes(dir, len);
    }

    pub(crate) fn dropped(&self) {
        self.dropped_n(1);
    }

    pub(crate) fn dropped_n(&self, n: u64) {
        both!(self, udp_datagrams_dropped, fetch_add, n);
    }
}

/// Decrements an "active" gauge when dropped (also when the task is aborted).
#[derive(Debug)]
pub(crate) struct ActiveGuard {
    meter: Meter,
    udp: bool,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let m = &self.meter;
        if self.udp {
            both!(m, udp_flows_active, fetch_sub, 1);
        } else {
            both!(m, tcp_connections_active, fetch_sub, 1);
        }
    }
}
