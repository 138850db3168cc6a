//! Optimistic conflict detection: which keys were written after a transaction's snapshot.
//!
//! A transaction reads at a snapshot version `start` and buffers its writes. When it
//! commits, the keys it read (serializable) or wrote (snapshot isolation) must not have been
//! written by any commit with a version above `start`; if one was, the commit is refused.
//!
//! The [`ConflictTracker`] remembers, for every key written since the oldest open
//! transaction began, the newest version that wrote it. What no open transaction can
//! conflict with any more is dropped as transactions finish, and the whole record stays
//! under a byte limit: past it, the oldest commits are forgotten and a transaction that
//! began before them is refused at commit (a conservative, retryable answer) instead of
//! being checked against writes the tracker no longer knows.
//!
//! The tracker does not see commits made while no transaction is open (recording them would
//! cost every plain write). It remembers the newest such version instead, and a transaction
//! may only begin once that version is visible ([`ConflictTracker::can_begin_at`]), so that
//! every commit newer than its snapshot is recorded.

use crate::Version;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

/// Bytes charged per remembered key beyond its own length (map node and log slot).
const KEY_OVERHEAD: usize = 48;

/// A key range `lo..hi` read by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The lower bound.
    pub lo: Bound<Bytes>,
    /// The upper bound.
    pub hi: Bound<Bytes>,
}

impl KeyRange {
    fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (as_ref(&self.lo), as_ref(&self.hi))
    }

    /// True when no key lies within the range (a `BTreeMap::range` would panic on it).
    fn is_empty(&self) -> bool {
        match (&self.lo, &self.hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        }
    }
}

fn as_ref(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// What a serializable transaction read: single keys, and the key ranges its scans covered.
#[derive(Debug, Clone, Default)]
pub struct ReadSet {
    keys: BTreeSet<Bytes>,
    ranges: Vec<KeyRange>,
}

impl ReadSet {
    /// An empty read set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a point read of `key`.
    pub fn add_key(&mut self, key: Bytes) {
        self.keys.insert(key);
    }

    /// Records a scanned range and returns its index, for [`ReadSet::set_range`].
    pub fn add_range(&mut self, range: KeyRange) -> usize {
        self.ranges.push(range);
        self.ranges.len() - 1
    }

    /// Replaces the range at `index` (a scan that went further).
    pub fn set_range(&mut self, index: usize, range: KeyRange) {
        self.ranges[index] = range;
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }
}

/// Why a commit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// `key` was written at `version`, after the transaction's snapshot.
    Key {
        /// The key both wrote or read.
        key: Bytes,
        /// The newer commit's version.
        version: Version,
    },
    /// The transaction began before `forgotten`, and the tracker dropped the commits up to
    /// that version to stay within its memory limit.
    Forgotten {
        /// The newest version the tracker no longer remembers.
        forgotten: Version,
    },
}

/// The newest write version of every key written since the oldest open transaction began.
#[derive(Debug)]
pub struct ConflictTracker {
    /// The snapshot versions of the open read-write transactions, with their counts.
    open: BTreeMap<Version, usize>,
    /// The newest version that wrote each remembered key.
    newest: BTreeMap<Bytes, Version>,
    /// Remembered commits, oldest first: the commit's last version and its keys.
    log: VecDeque<(Version, Vec<Bytes>)>,
    bytes: usize,
    limit: usize,
    /// Commits up to this version were dropped while a transaction that may need them was
    /// open.
    forgotten: Version,
    /// The newest version committed while no transaction was open (not recorded).
    unrecorded: Version,
}

impl ConflictTracker {
    /// A tracker that remembers at most about `limit` bytes of keys.
    pub fn new(limit: usize) -> Self {
        ConflictTracker {
            open: BTreeMap::new(),
            newest: BTreeMap::new(),
            log: VecDeque::new(),
            bytes: 0,
            limit,
            forgotten: Version::ZERO,
            unrecorded: Version::ZERO,
        }
    }

    /// True when a transaction reading at `visible` would see every unrecorded commit, so it
    /// may begin; otherwise wait until `visible` grows (see the module documentation).
    pub fn can_begin_at(&self, visible: Version) -> bool {
        visible >= self.unrecorded
    }

    /// Registers an open transaction reading at `start`.
    pub fn begin(&mut self, start: Version) {
        debug_assert!(
            start >= self.unrecorded,
            "a commit newer than start is unrecorded"
        );
        *self.open.entry(start).or_insert(0) += 1;
    }

    /// Unregisters a transaction registered with [`ConflictTracker::begin`], and drops what
    /// no open transaction can conflict with any more.
    pub fn finish(&mut self, start: Version) {
        if let Some(n) = self.open.get_mut(&start) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&start);
            }
        }
        self.prune();
    }

    /// True while some transaction is open, so commits must be [`recorded`]; otherwise
    /// call [`ConflictTracker::skip`].
    ///
    /// [`recorded`]: ConflictTracker::record
    pub fn is_tracking(&self) -> bool {
        !self.open.is_empty()
    }

    /// Notes a commit up to `version` made while no transaction was open.
    pub fn skip(&mut self, version: Version) {
        self.unrecorded = self.unrecorded.max(version);
    }

    /// Forgets unrecorded commits that will never become visible (their commit failed), so
    /// that transactions can begin at `visible`.
    pub fn abandon_unrecorded(&mut self, visible: Version) {
        self.unrecorded = self.unrecorded.min(visible);
    }

    /// Records that a commit ending at `version` wrote `keys`.
    pub fn record(&mut self, version: Version, keys: Vec<Bytes>) {
        for key in &keys {
            self.bytes += key.len() + KEY_OVERHEAD;
            let newest = self.newest.entry(key.clone()).or_insert(version);
            *newest = (*newest).max(version);
        }
        self.log.push_back((version, keys));
        while self.bytes > self.limit && self.log.len() > 1 {
            let version = self.pop_oldest();
            self.forgotten = self.forgotten.max(version);
        }
    }

    /// Checks that nothing a transaction reading at `start` read was written after it.
    pub fn check_reads(&self, start: Version, reads: &ReadSet) -> Result<(), Conflict> {
        self.check_forgotten(start)?;
        self.check_keys(start, reads.keys.iter())?;
        for range in &reads.ranges {
            if range.is_empty() {
                continue;
            }
            let newer = self
                .newest
                .range::<[u8], _>(range.bounds())
                .find(|(_, v)| **v > start);
            if let Some((key, version)) = newer {
                return Err(Conflict::Key {
                    key: key.clone(),
                    version: *version,
                });
            }
        }
        Ok(())
    }

    /// Checks that none of `keys` was written after `start` (write-write conflicts).
    pub fn check_writes<'a>(
        &self,
        start: Version,
        keys: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<(), Conflict> {
        self.check_forgotten(start)?;
        self.check_keys(start, keys)
    }

    /// Bytes of keys remembered now (an estimate, with per-key overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The number of open read-write transactions.
    pub fn open_count(&self) -> usize {
        self.open.values().sum()
    }

    fn check_forgotten(&self, start: Version) -> Result<(), Conflict> {
        if start < self.forgotten {
            return Err(Conflict::Forgotten {
                forgotten: self.forgotten,
            });
        }
        Ok(())
    }

    fn check_keys<'a>(
        &self,
        start: Version,
        keys: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<(), Conflict> {
        for key in keys {
            if let Some(&version) = self.newest.get(key) {
                if version > start {
                    return Err(Conflict::Key {
                        key: key.clone(),
                        version,
                    });
                }
            }
        }
        Ok(())
    }

    /// Drops commits no open transaction can conflict with: those at or below the oldest
    /// open snapshot, or all of them when none is open.
    fn prune(&mut self) {
        let Some(&oldest) = self.open.keys().next() else {
            self.newest.clear();
            self.log.clear();
            self.bytes = 0;
            return;
        };
        while self.log.front().is_some_and(|(v, _)| *v <= oldest) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) -> Version {
        let Some((version, keys)) = self.log.pop_front() else {
            return Version::ZERO;
        };
        for key in keys {
            self.bytes -= key.len() + KEY_OVERHEAD;
            // A newer commit of the same key stays remembered.
            if self.newest.get(&key) == Some(&version) {
                self.newest.remove(&key);
            }
        }
        version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn reads(keys: &[&str], ranges: &[(Bound<&str>, Bound<&str>)]) -> ReadSet {
        let mut r = ReadSet::new();
        for k in keys {
            r.add_key(b(k));
        }
        for (lo, hi) in ranges {
            r.add_range(KeyRange {
                lo: lo.map(b),
                hi: hi.map(b),
            });
        }
        r
    }

    #[test]
    fn a_write_after_the_snapshot_conflicts_and_one_before_does_not() {
        let mut t = ConflictTracker::new(1 << 20);
        t.begin(Version(10));
        t.record(Version(10), vec![b("old")]);
        t.record(Version(12), vec![b("k"), b("m")]);
        assert_eq!(
            t.check_reads(Version(10), &reads(&["old", "z"], &[])),
            Ok(())
        );
        assert_eq!(
            t.check_reads(Version(10), &reads(&["a", "m"], &[])),
            Err(Conflict::Key {
                key: b("m"),
                version: Version(12)
            })
        );
        assert_eq!(t.check_reads(Version(12), &reads(&["m"], &[])), Ok(()));
        assert!(t.check_writes(Version(11), [&b("k")]).is_err());
        assert!(t.check_writes(Version(11), [&b("j")]).is_ok());
    }

    #[test]
    fn ranges_conflict_only_on_keys_inside_them() {
        let mut t = ConflictTracker::new(1 << 20);
        t.begin(Version(5));
        t.record(Version(6), vec![b("b")]);
        let inside = [
            (Bound::Included("a"), Bound::Excluded("c")),
            (Bound::Included("b"), Bound::Included("b")),
            (Bound::Unbounded, Bound::Unbounded),
            (Bound::Excluded("a"), Bound::Unbounded),
        ];
        for r in inside {
            assert!(
                t.check_reads(Version(5), &reads(&[], &[r])).is_err(),
                "{r:?}"
            );
        }
        let outside = [
            (Bound::Included("a"), Bound::Excluded("b")),
            (Bound::Excluded("b"), Bound::Unbounded),
            (Bound::Included("c"), Bound::Included("a")), // empty, never a panic
            (Bound::Excluded("b"), Bound::Excluded("b")),
        ];
        for r in outside {
            assert!(
                t.check_reads(Version(5), &reads(&[], &[r])).is_ok(),
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_rewritten_key_keeps_its_newest_version_when_the_older_commit_is_pruned() {
        let mut t = ConflictTracker::new(1 << 20);
        t.begin(Version(1));
        t.begin(Version(3));
        t.record(Version(2), vec![b("k")]);
        t.record(Version(4), vec![b("k")]);
        t.finish(Version(1)); // drops commit 2, not the newer write of k
        assert!(t.check_reads(Version(3), &reads(&["k"], &[])).is_err());
        t.finish(Version(3));
        assert_eq!((t.bytes(), t.open_count(), t.log.len()), (0, 0, 0));
    }

    #[test]
    fn memory_stays_bounded_and_what_was_forgotten_is_refused() {
        let limit = 10 * (4 + KEY_OVERHEAD);
        let mut t = ConflictTracker::new(limit);
        t.begin(Version(0));
        t.begin(Version(50));
        for v in 1..=100u64 {
            t.record(Version(v), vec![b(&format!("{v:04}"))]);
            assert!(t.bytes() <= limit);
        }
        // The oldest transaction cannot be checked any more: refused, whatever it read.
        assert_eq!(
            t.check_reads(Version(0), &ReadSet::new()),
            Err(Conflict::Forgotten {
                forgotten: Version(90)
            })
        );
        assert!(t.check_writes(Version(50), std::iter::empty()).is_err());
        // One that began after the forgotten commits is still checked exactly.
        t.begin(Version(95));
        assert!(t.check_reads(Version(95), &reads(&["0094"], &[])).is_ok());
        assert!(t.check_reads(Version(95), &reads(&["0096"], &[])).is_err());
    }

    #[test]
    fn unrecorded_commits_hold_back_new_transactions_until_visible() {
        let mut t = ConflictTracker::new(1 << 20);
        assert!(!t.is_tracking());
        t.skip(Version(7));
        assert!(!t.can_begin_at(Version(6)));
        assert!(t.can_begin_at(Version(7)));
        t.skip(Version(9));
        t.abandon_unrecorded(Version(7)); // commit 8..9 failed and never became visible
        assert!(t.can_begin_at(Version(7)));
        t.begin(Version(7));
        assert!(t.is_tracking());
    }
}
