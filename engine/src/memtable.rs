//! The memtable: a concurrent sorted map of versioned entries (crossbeam's lock-free
//! skiplist), bounded by size.
//!
//! Contract: one committing leader inserts at a time (the commit queue guarantees it) while
//! any number of readers look up and iterate concurrently. Entries are never removed; a full
//! memtable becomes immutable and is dropped once flushed. Each memtable's entries are
//! logged in exactly one WAL segment (`log_number`), so the segment can be deleted once the
//! memtable is in a durable run.

use bytes::Bytes;
use chronokv_snapshot::{Entry, Kind, Version};
use crossbeam_skiplist::SkipMap;
use std::cmp::Reverse;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// User key ascending, then version descending (the internal order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct InternalKey {
    key: Bytes,
    version: Reverse<u64>,
}

impl InternalKey {
    /// The first internal key of `key` (its newest possible version).
    fn first_of(key: Bytes) -> Self {
        InternalKey {
            key,
            version: Reverse(u64::MAX),
        }
    }

    /// The last internal key of `key` (its oldest possible version).
    fn last_of(key: Bytes) -> Self {
        InternalKey {
            key,
            version: Reverse(0),
        }
    }
}

/// Rough per-entry cost of the skiplist node and the two `Bytes` headers.
const ENTRY_OVERHEAD: usize = 80;

#[derive(Debug)]
pub struct Memtable {
    /// Kind, commit time (µs), value.
    map: SkipMap<InternalKey, (Kind, u64, Bytes)>,
    approx_bytes: AtomicUsize,
    max_version: AtomicU64,
    log_number: u64,
}

impl Memtable {
    pub fn new(log_number: u64) -> Self {
        Memtable {
            map: SkipMap::new(),
            approx_bytes: AtomicUsize::new(0),
            max_version: AtomicU64::new(0),
            log_number,
        }
    }

    /// The WAL segment that holds this memtable's entries.
    pub fn log_number(&self) -> u64 {
        self.log_number
    }

    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The highest version inserted (0 when empty).
    pub fn max_version(&self) -> Version {
        Version(self.max_version.load(Ordering::Acquire))
    }

    /// Inserts one entry committed at `time` (µs). Only the commit leader (or recovery)
    /// calls this.
    pub fn insert(&self, key: Bytes, version: Version, time: u64, kind: Kind, value: Bytes) {
        let size = key.len() + value.len() + ENTRY_OVERHEAD;
        self.map.insert(
            InternalKey {
                key,
                version: Reverse(version.0),
            },
            (kind, time, value),
        );
        self.approx_bytes.fetch_add(size, Ordering::Relaxed);
        self.max_version.fetch_max(version.0, Ordering::AcqRel);
    }

    /// The newest entry of `key` with a version `<= snapshot`.
    pub fn get(&self, key: &[u8], snapshot: Version) -> Option<(Version, Kind, Bytes)> {
        let probe = InternalKey {
            key: Bytes::copy_from_slice(key),
            version: Reverse(snapshot.0),
        };
        let e = self.map.lower_bound(Bound::Included(&probe))?;
        if e.key().key.as_ref() != key {
            return None;
        }
        let (kind, _, value) = e.value();
        Some((Version(e.key().version.0), *kind, value.clone()))
    }

    /// All entries whose user key lies within the bounds, in internal order, from both ends.
    pub fn range(self: &Arc<Self>, lo: Bound<Bytes>, hi: Bound<Bytes>) -> MemIter {
        let lo = match lo {
            Bound::Included(k) => Bound::Included(InternalKey::first_of(k)),
            Bound::Excluded(k) => Bound::Excluded(InternalKey::last_of(k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let hi = match hi {
            Bound::Included(k) => Bound::Included(InternalKey::last_of(k)),
            Bound::Excluded(k) => Bound::Excluded(InternalKey::first_of(k)),
            Bound::Unbounded => Bound::Unbounded,
        };
        MemIter {
            mem: self.clone(),
            lo,
            hi,
        }
    }
}

/// An owning, double-ended iterator over a memtable range. Each step re-seeks the skiplist
/// past the last yielded key (O(log n)), which keeps the iterator free of borrows.
pub struct MemIter {
    mem: Arc<Memtable>,
    lo: Bound<InternalKey>,
    hi: Bound<InternalKey>,
}

fn to_entry(k: &InternalKey, v: &(Kind, u64, Bytes)) -> Entry {
    Entry {
        key: k.key.clone(),
        version: Version(k.version.0),
        time: v.1,
        kind: v.0,
        value: v.2.clone(),
    }
}

impl Iterator for MemIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let e = self
            .mem
            .map
            .range((self.lo.clone(), self.hi.clone()))
            .next()?;
        self.lo = Bound::Excluded(e.key().clone());
        Some(to_entry(e.key(), e.value()))
    }
}

impl DoubleEndedIterator for MemIter {
    fn next_back(&mut self) -> Option<Entry> {
        let e = self
            .mem
            .map
            .range((self.lo.clone(), self.hi.clone()))
            .next_back()?;
        self.hi = Bound::Excluded(e.key().clone());
        Some(to_entry(e.key(), e.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn get_sees_newest_version_at_or_below_snapshot() {
        let m = Memtable::new(1);
        m.insert(b("k"), Version(1), 0, Kind::Put, b("one"));
        m.insert(b("k"), Version(3), 0, Kind::Delete, Bytes::new());
        m.insert(b("k2"), Version(2), 0, Kind::Put, b(""));
        assert_eq!(m.get(b"k", Version(2)).unwrap().2, b("one"));
        assert_eq!(m.get(b"k", Version(9)).unwrap().1, Kind::Delete);
        assert!(m.get(b"k", Version(0)).is_none());
        assert_eq!(m.get(b"k2", Version(2)).unwrap().2, b(""));
        assert!(m.get(b"j", Version::MAX).is_none());
        assert_eq!(m.max_version(), Version(3));
    }

    #[test]
    fn range_meets_in_the_middle_without_duplicates() {
        let m = Arc::new(Memtable::new(1));
        for (i, k) in ["a", "b", "b", "c", "d"].iter().enumerate() {
            m.insert(b(k), Version(i as u64 + 1), 0, Kind::Put, b(k));
        }
        let mut it = m.range(Bound::Excluded(b("a")), Bound::Included(b("c")));
        let first = it.next().unwrap();
        assert_eq!((first.key.clone(), first.version), (b("b"), Version(3)));
        assert_eq!(it.next_back().unwrap().key, b("c"));
        assert_eq!(it.next().unwrap().version, Version(2));
        assert!(it.next().is_none() && it.next_back().is_none());
    }
}
