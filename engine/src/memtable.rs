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
use std::collections::VecDeque;
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

/// A borrowed view of an internal key. The skiplist is keyed by [`InternalKey`], which
/// borrows as `dyn KeyView`, so a lookup can compare against a `(&[u8], version)` probe
/// without copying the probe key into an owned `Bytes` (an allocation per lookup).
trait KeyView {
    fn parts(&self) -> (&[u8], u64);
}

impl KeyView for InternalKey {
    fn parts(&self) -> (&[u8], u64) {
        (&self.key, self.version.0)
    }
}

/// A lookup probe: a borrowed user key and a version.
struct Probe<'a>(&'a [u8], u64);

impl KeyView for Probe<'_> {
    fn parts(&self) -> (&[u8], u64) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn KeyView + 'a> for InternalKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

// The same order as `InternalKey`'s derived one (key ascending, version descending), as
// `Borrow` requires.
impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let ((ka, va), (kb, vb)) = (self.parts(), other.parts());
        ka.cmp(kb).then(vb.cmp(&va))
    }
}

impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyView + '_ {}

/// Rough per-entry cost of the skiplist node and the two `Bytes` headers.
const ENTRY_OVERHEAD: usize = 80;

/// The in-memory table of recent writes: a concurrent skiplist in internal key order
/// (key ascending, version descending), one per WAL segment.
#[derive(Debug)]
pub struct Memtable {
    /// Kind, commit time (µs), value.
    map: SkipMap<InternalKey, (Kind, u64, Bytes)>,
    approx_bytes: AtomicUsize,
    max_version: AtomicU64,
    log_number: u64,
}

impl Memtable {
    /// An empty memtable whose entries live in WAL segment `log_number`.
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

    /// Bytes taken, counted as keys, values and a fixed per-entry overhead.
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes.load(Ordering::Relaxed)
    }

    /// True when nothing was inserted.
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
        if self.map.is_empty() {
            return None; // the usual case right after a flush: no epoch pin, no search
        }
        let probe = Probe(key, snapshot.0);
        let e = self
            .map
            .lower_bound(Bound::Included(&probe as &dyn KeyView))?;
        if e.key().key.as_ref() != key {
            return None;
        }
        let (kind, _, value) = e.value();
        Some((Version(e.key().version.0), *kind, value.clone()))
    }

    /// All entries whose user key lies within the bounds, in internal order, from both ends.
    pub fn range(self: &Arc<Self>, lo: Bound<Bytes>, hi: Bound<Bytes>) -> MemIter {
        self.range_at(lo, hi, None)
    }

    /// Like [`Memtable::range`], but with a snapshot: only each key's newest entry with a
    /// version `<= snapshot`, seeking past the key's older versions instead of stepping
    /// through them (a scan of often-rewritten keys costs per key, not per version). What
    /// it leaves out could never be visible at `snapshot`: the newest such entry hides it.
    pub fn range_at(
        self: &Arc<Self>,
        lo: Bound<Bytes>,
        hi: Bound<Bytes>,
        snapshot: Option<Version>,
    ) -> MemIter {
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
            front: VecDeque::new(),
            back: VecDeque::new(),
            front_batch: FIRST_BATCH,
            back_batch: FIRST_BATCH,
            snapshot: snapshot.map(|v| v.0),
        }
    }
}

/// An owning, double-ended iterator over a memtable range. It keeps no borrow of the
/// skiplist: each end re-seeks past what it has taken and copies the next few entries into
/// its own buffer (a batch that doubles up to `MAX_BATCH`, so short scans stay cheap and
/// long ones pay one seek per batch rather than per entry). The two ends' buffers never
/// overlap: each refill moves its bound past what it took, and an end that finds nothing
/// left between the bounds takes from the other end's buffer.
pub struct MemIter {
    mem: Arc<Memtable>,
    lo: Bound<InternalKey>,
    hi: Bound<InternalKey>,
    /// Taken from the front, ascending.
    front: VecDeque<Entry>,
    /// Taken from the back, descending.
    back: VecDeque<Entry>,
    front_batch: usize,
    back_batch: usize,
    /// With a snapshot: only the newest entry `<=` it of each key (see `range_at`).
    snapshot: Option<u64>,
}

const FIRST_BATCH: usize = 4;
const MAX_BATCH: usize = 128;

fn to_entry(k: &InternalKey, v: &(Kind, u64, Bytes)) -> Entry {
    Entry {
        key: k.key.clone(),
        version: Version(k.version.0),
        time: v.1,
        kind: v.0,
        value: v.2.clone(),
    }
}

impl MemIter {
    fn refill_front(&mut self) {
        let mut range = self.mem.map.range((self.lo.clone(), self.hi.clone()));
        let mut last: Option<InternalKey> = None;
        let mut taken = 0;
        while taken < self.front_batch {
            let Some(e) = range.next() else { break };
            if let Some(snapshot) = self.snapshot {
                if e.key().version.0 > snapshot {
                    continue; // committed after the snapshot
                }
                if last.as_ref().is_some_and(|l| l.key == e.key().key) {
                    // An older version of the key just taken: seek past all of them.
                    let past = InternalKey::last_of(e.key().key.clone());
                    range = self.mem.map.range((Bound::Excluded(past), self.hi.clone()));
                    continue;
                }
            }
            self.front.push_back(to_entry(e.key(), e.value()));
            last = Some(e.key().clone());
            taken += 1;
        }
        if let Some(k) = last {
            // With a snapshot the key's older versions are skipped too.
            let past = match self.snapshot {
                Some(_) => InternalKey::last_of(k.key),
                None => k,
            };
            self.lo = Bound::Excluded(past);
        }
        self.front_batch = (self.front_batch * 2).min(MAX_BATCH);
    }

    fn refill_back(&mut self) {
        let mut range = self.mem.map.range((self.lo.clone(), self.hi.clone()));
        let mut last = None;
        let mut taken = 0;
        while taken < self.back_batch {
            let Some(e) = range.next_back() else { break };
            let Some(snapshot) = self.snapshot else {
                self.back.push_back(to_entry(e.key(), e.value()));
                last = Some(e.key().clone());
                taken += 1;
                continue;
            };
            // From the back a key's oldest version comes first: look its newest visible
            // one up, then seek before the key. The bounds always cover whole keys, so
            // the lookup stays within them.
            let key = e.key().key.clone();
            let probe = InternalKey {
                key: key.clone(),
                version: Reverse(snapshot),
            };
            if let Some(v) = self.mem.map.lower_bound(Bound::Included(&probe)) {
                if v.key().key == key {
                    self.back.push_back(to_entry(v.key(), v.value()));
                    taken += 1;
                }
            }
            let first = InternalKey::first_of(key);
            range = self
                .mem
                .map
                .range((self.lo.clone(), Bound::Excluded(first.clone())));
            last = Some(first);
        }
        if let Some(k) = last {
            self.hi = Bound::Excluded(k);
        }
        self.back_batch = (self.back_batch * 2).min(MAX_BATCH);
    }
}

impl Iterator for MemIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.front.is_empty() {
            self.refill_front();
        }
        self.front.pop_front().or_else(|| self.back.pop_back())
    }
}

impl DoubleEndedIterator for MemIter {
    fn next_back(&mut self) -> Option<Entry> {
        if self.back.is_empty() {
            self.refill_back();
        }
        self.back.pop_front().or_else(|| self.front.pop_back())
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

    #[test]
    fn both_ends_over_many_entries_yield_each_once_in_order() {
        let m = Arc::new(Memtable::new(1));
        let mut want = Vec::new();
        for i in 0..700u32 {
            let k = b(&format!("{:04}", i / 3));
            m.insert(
                k.clone(),
                Version(u64::from(i) + 1),
                0,
                Kind::Put,
                Bytes::new(),
            );
            want.push((k, Version(u64::from(i) + 1)));
        }
        want.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        for pattern in [0u32, 1, 2, 7] {
            let mut it = m.range(Bound::Unbounded, Bound::Unbounded);
            let (mut front, mut back) = (Vec::new(), Vec::new());
            for step in 0.. {
                let from_back = pattern != 0 && (step % (pattern + 1) == 0);
                let e = if from_back { it.next_back() } else { it.next() };
                match e {
                    Some(e) if from_back => back.push((e.key, e.version)),
                    Some(e) => front.push((e.key, e.version)),
                    None => break,
                }
            }
            assert!(it.next().is_none() && it.next_back().is_none());
            back.reverse();
            front.extend(back);
            assert_eq!(front, want, "pattern {pattern}");
        }
    }

    #[test]
    fn a_snapshot_range_yields_the_newest_visible_version_of_each_key_from_both_ends() {
        let m = Arc::new(Memtable::new(1));
        let mut v = 0;
        for round in 0..20u64 {
            for k in ["a", "b", "c", "d", "e"] {
                if round % 3 == 0 || k != "c" {
                    v += 1;
                    let kind = if k == "d" && round == 10 {
                        Kind::Delete
                    } else {
                        Kind::Put
                    };
                    m.insert(b(k), Version(v), 0, kind, b(&format!("{k}{round}")));
                }
            }
        }
        for snapshot in [0, 1, 7, 23, 51, 52, 53, v] {
            // The model: the newest version <= snapshot of each key, in key order.
            let all: Vec<Entry> = m.range(Bound::Unbounded, Bound::Unbounded).collect();
            let mut want: Vec<(Bytes, Version)> = Vec::new();
            for e in all.iter().filter(|e| e.version.0 <= snapshot) {
                if want.last().is_none_or(|(k, _)| *k != e.key) {
                    want.push((e.key.clone(), e.version));
                }
            }
            let at = Some(Version(snapshot));
            let fwd: Vec<_> = m
                .range_at(Bound::Unbounded, Bound::Unbounded, at)
                .map(|e| (e.key, e.version))
                .collect();
            assert_eq!(fwd, want, "forward at {snapshot}");
            let mut back: Vec<_> = m
                .range_at(Bound::Unbounded, Bound::Unbounded, at)
                .rev()
                .map(|e| (e.key, e.version))
                .collect();
            back.reverse();
            assert_eq!(back, want, "backward at {snapshot}");
            for every in [1u32, 2, 3] {
                let mut it = m.range_at(Bound::Excluded(b("a")), Bound::Included(b("d")), at);
                let (mut front, mut tail) = (Vec::new(), Vec::new());
                for step in 0u32.. {
                    let e = if step % every == 0 {
                        it.next_back()
                    } else {
                        it.next()
                    };
                    let Some(e) = e else { break };
                    if step % every == 0 {
                        tail.push((e.key, e.version))
                    } else {
                        front.push((e.key, e.version))
                    }
                }
                tail.reverse();
                front.extend(tail);
                let sub: Vec<_> = want
                    .iter()
                    .filter(|(k, _)| k > &b("a") && k <= &b("d"))
                    .cloned()
                    .collect();
                assert_eq!(front, sub, "both ends at {snapshot}, every {every}");
            }
        }
    }
}
