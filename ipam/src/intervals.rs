//! A set of `u128` values stored as disjoint, coalesced runs.
//!
//! This is the allocator's bitmap replacement. Docker's libnetwork used a run-length bit
//! sequence; we keep a `BTreeMap<start, end>` (both inclusive) instead, so that a /8 IPv4 pool
//! or a /64 IPv6 pool costs memory proportional to the number of *runs* of allocated addresses,
//! not to the number of addresses. Runs never overlap and never touch: inserting a value next to
//! a run extends it, and inserting the value between two runs merges them.
//!
//! With `n` = number of runs, every operation below is O(log n) unless stated otherwise.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Disjoint, coalesced runs of integers, with a cached count of members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IntervalSet {
    /// start -> end, both inclusive; `start <= end`; runs are separated by at least one value.
    runs: BTreeMap<u128, u128>,
    /// Number of members (sum of run lengths). u128 because a full IPv6 /0 has 2^128 members,
    /// which saturates; real pools never get there.
    len: u128,
}

impl IntervalSet {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of members. O(1).
    pub(crate) fn len(&self) -> u128 {
        self.len
    }

    /// Number of runs. O(1).
    #[cfg(test)]
    pub(crate) fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// The run containing `v`, if any. O(log n).
    fn run_containing(&self, v: u128) -> Option<(u128, u128)> {
        let (&s, &e) = self.runs.range(..=v).next_back()?;
        (e >= v).then_some((s, e))
    }

    /// True if `v` is a member. O(log n).
    pub(crate) fn contains(&self, v: u128) -> bool {
        self.run_containing(v).is_some()
    }

    /// Adds `v`. Returns false if it was already a member. O(log n).
    pub(crate) fn insert(&mut self, v: u128) -> bool {
        self.insert_run(v, v)
    }

    /// Adds every value in `start..=end`. Returns false, changing nothing, if any of them is
    /// already a member. O(log n).
    pub(crate) fn insert_run(&mut self, start: u128, end: u128) -> bool {
        debug_assert!(start <= end);
        // Overlap with the run starting at or before `end`: since runs are disjoint and sorted,
        // that is the only candidate.
        if let Some((_, &e)) = self.runs.range(..=end).next_back() {
            if e >= start {
                return false;
            }
        }
        let mut new_start = start;
        let mut new_end = end;
        // Touching the run on the left (it ends at start - 1)?
        if let Some(prev) = start.checked_sub(1) {
            if let Some((s, _)) = self.run_containing(prev) {
                self.runs.remove(&s);
                new_start = s;
            }
        }
        // Touching the run on the right (it starts at end + 1)?
        if let Some(next) = end.checked_add(1) {
            if let Some(e) = self.runs.remove(&next) {
                new_end = e;
            }
        }
        self.runs.insert(new_start, new_end);
        self.len = self.len.saturating_add(end - start).saturating_add(1);
        true
    }

    /// Removes `v`, splitting its run if needed. Returns false if it was not a member.
    /// O(log n).
    pub(crate) fn remove(&mut self, v: u128) -> bool {
        let Some((s, e)) = self.run_containing(v) else {
            return false;
        };
        if s == v {
            self.runs.remove(&s);
        } else {
            // Shorten the left part in place: it now ends just before v.
            self.runs.insert(s, v - 1);
        }
        if e > v {
            self.runs.insert(v + 1, e);
        }
        self.len -= 1;
        true
    }

    /// The smallest value `>= from` and `<= hi` that is *not* a member. O(log n): because runs
    /// are coalesced, the value just after the run containing `from` is never a member.
    pub(crate) fn next_absent(&self, from: u128, hi: u128) -> Option<u128> {
        let candidate = match self.run_containing(from) {
            Some((_, e)) => e.checked_add(1)?,
            None => from,
        };
        (candidate <= hi).then_some(candidate)
    }

    /// Number of members in `lo..=hi`. O(log n + k) for the k runs that intersect the range;
    /// used only for the small reserved-address sets.
    pub(crate) fn count_in(&self, lo: u128, hi: u128) -> u128 {
        if lo > hi {
            return 0;
        }
        // The run starting before lo may reach into the range.
        let first = self
            .runs
            .range(..lo)
            .next_back()
            .map(|(&s, &e)| (s, e))
            .into_iter();
        let rest = self
            .runs
            .range((Bound::Included(lo), Bound::Included(hi)))
            .map(|(&s, &e)| (s, e));
        first
            .chain(rest)
            .filter(|&(_, e)| e >= lo)
            .map(|(s, e)| e.min(hi) - s.max(lo) + 1)
            .fold(0u128, u128::saturating_add)
    }

    /// The runs in ascending order, as inclusive `(start, end)` pairs.
    pub(crate) fn runs(&self) -> impl DoubleEndedIterator<Item = (u128, u128)> + '_ {
        self.runs.iter().map(|(&s, &e)| (s, e))
    }

    /// Every member in ascending order (lazy: walks runs, never materialises them).
    pub(crate) fn values(&self) -> impl Iterator<Item = u128> + '_ {
        self.runs().flat_map(|(s, e)| s..=e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn insert_coalesces_and_remove_splits() {
        let mut s = IntervalSet::new();
        assert!(s.insert(5));
        assert!(s.insert(7));
        assert_eq!(s.run_count(), 2);
        assert!(s.insert(6)); // bridges 5 and 7
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(5, 7)]);
        assert!(!s.insert(6));
        assert_eq!(s.len(), 3);
        assert!(s.remove(6));
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(5, 5), (7, 7)]);
        assert!(!s.remove(6));
        assert!(s.remove(5));
        assert!(s.remove(7));
        assert_eq!(s, IntervalSet::new());
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut s = IntervalSet::new();
        assert!(s.insert(u128::MAX));
        assert!(s.insert(0));
        assert_eq!(s.next_absent(u128::MAX, u128::MAX), None);
        assert_eq!(s.next_absent(0, u128::MAX), Some(1));
        assert!(s.insert_run(1, u128::MAX - 1));
        assert_eq!(s.run_count(), 1);
        assert_eq!(s.len(), u128::MAX); // saturated
    }

    #[test]
    fn insert_run_refuses_overlap() {
        let mut s = IntervalSet::new();
        assert!(s.insert_run(10, 20));
        assert!(!s.insert_run(0, 10));
        assert!(!s.insert_run(20, 30));
        assert!(!s.insert_run(12, 13));
        assert!(!s.insert_run(0, 100));
        assert!(s.insert_run(21, 30));
        assert_eq!(s.runs().collect::<Vec<_>>(), vec![(10, 30)]);
        assert_eq!(s.len(), 21);
    }

    #[test]
    fn next_absent_skips_runs() {
        let mut s = IntervalSet::new();
        s.insert_run(10, 20);
        assert_eq!(s.next_absent(5, 100), Some(5));
        assert_eq!(s.next_absent(10, 100), Some(21));
        assert_eq!(s.next_absent(15, 20), None);
        assert_eq!(s.count_in(0, 100), 11);
        assert_eq!(s.count_in(15, 17), 3);
        assert_eq!(s.count_in(18, 40), 3);
        assert_eq!(s.count_in(21, 40), 0);
    }

    proptest! {
        /// The set agrees with a BTreeSet model under random inserts and removes.
        #[test]
        fn matches_model(ops in proptest::collection::vec((any::<bool>(), 0u128..64), 0..300)) {
            let mut s = IntervalSet::new();
            let mut model = BTreeSet::new();
            for (ins, v) in ops {
                if ins {
                    prop_assert_eq!(s.insert(v), model.insert(v));
                } else {
                    prop_assert_eq!(s.remove(v), model.remove(&v));
                }
                prop_assert_eq!(s.len(), model.len() as u128);
            }
            prop_assert_eq!(s.values().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            // Coalesced: consecutive runs never touch.
            let runs: Vec<_> = s.runs().collect();
            for w in runs.windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0);
            }
            for from in 0u128..70 {
                let expect = (from..=66).find(|v| !model.contains(v));
                prop_assert_eq!(s.next_absent(from, 66), expect);
            }
            prop_assert_eq!(s.count_in(10, 40), model.range(10..=40).count() as u128);
        }
    }
}
