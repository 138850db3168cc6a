//! The memtable: a concurrent sorted map of versioned entries (crossbeam's lock-free
//! skiplist), bounded by size.
//!
//! Contract: one committing leader inserts at a time (the commit queue guarantees it) while
//! any number of readers look up and iterate concurrently. Entries are never removed; a full
//! memtable becomes immutable and is dropped once flushed. Each memtable's entries are
//! logged in exactly one WAL segment (`log_number`), so the segment can be deleted once the
//! memtable is in a durable run.
//!
//! Keys and values are copied into the memtable's [`Arena`]: chunks of memory that grow
//! from 8 KiB to 1 MiB, each shared by the `Bytes` of the entries it holds, so an insert
//! makes one heap allocation (the skiplist node) instead of three (node, key, value).
//! [`Memtable::approx_bytes`] counts what the memtable really holds on the heap (see
//! [`NODE_BYTES`] and `Arena`), so `Options::memtable_size` bounds memory, as RocksDB's
//! arena-based accounting does.

use bytes::{Bytes, BytesMut};
use chronokv_snapshot::{Entry, Kind, Version};
use crossbeam_skiplist::SkipMap;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// An entry's key, version and kind, ordered by user key ascending, then version
/// descending (the internal order; the kind takes no part in it). The key and the value
/// are one `Bytes` (`kv`, the key's `key_len` bytes then the value's, as the arena copied
/// them), so a skiplist node carries one `Bytes` header instead of two.
#[derive(Debug, Clone)]
struct InternalKey {
    kv: Bytes,
    version: u64,
    key_len: u32,
    kind: Kind,
}

impl InternalKey {
    /// A bound at `version` of `key` (no value).
    fn at(key: Bytes, version: u64) -> Self {
        InternalKey {
            key_len: key.len() as u32, // keys are at most MAX_KEY_LEN (64 KiB)
            kv: key,
            version,
            kind: Kind::Put,
        }
    }

    /// The first internal key of `key` (its newest possible version).
    fn first_of(key: Bytes) -> Self {
        Self::at(key, u64::MAX)
    }

    /// The last internal key of `key` (its oldest possible version).
    fn last_of(key: Bytes) -> Self {
        Self::at(key, 0)
    }

    /// The user key.
    fn key(&self) -> &[u8] {
        &self.kv[..self.key_len as usize]
    }

    /// The user key as a `Bytes` sharing the arena.
    fn key_bytes(&self) -> Bytes {
        self.kv.slice(..self.key_len as usize)
    }

    /// The value as a `Bytes` sharing the arena.
    fn value(&self) -> Bytes {
        self.kv.slice(self.key_len as usize..)
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Written out rather than through `dyn KeyView`: inserts compare with this.
        self.key()
            .cmp(other.key())
            .then(other.version.cmp(&self.version))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for InternalKey {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && self.key() == other.key()
    }
}

impl Eq for InternalKey {}

/// A borrowed view of an internal key. The skiplist is keyed by [`InternalKey`], which
/// borrows as `dyn KeyView`, so a lookup can compare against a `(&[u8], version)` probe
/// without copying the probe key into an owned `Bytes` (an allocation per lookup).
trait KeyView {
    fn parts(&self) -> (&[u8], u64);
}

impl KeyView for InternalKey {
    fn parts(&self) -> (&[u8], u64) {
        (self.key(), self.version)
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

// `InternalKey`'s order (key ascending, version descending), which `Borrow` requires to
// be the same for both.
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

/// The skiplist's value: the commit time (µs).
type Slot = u64;

/// The heap bytes one skiplist node takes, on average: crossbeam's node holds the key
/// (`InternalKey`: a `Bytes` header, the version, key length and kind) and the value (the
/// time), a reference count and height word, and a tower of `height` 8-byte pointers,
/// with `height` drawn as 1 + the trailing zeros of a random word (mean 2); the allocator
/// adds an 8-byte header and rounds to 16 bytes (glibc), about 8 bytes on average: 88
/// bytes; the memtable test
/// `approx_bytes_tracks_the_heap` checks the estimate against a counting allocator.
pub(crate) const NODE_BYTES: usize =
    std::mem::size_of::<InternalKey>() + std::mem::size_of::<Slot>() + 8 + 2 * 8 + 8;

/// The first arena chunk's size; each next chunk doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 8 << 10;
/// The largest arena chunk. An entry above a quarter of it gets an allocation of its own,
/// so a chunk's wasted tail (when the next entry does not fit) stays small.
const MAX_CHUNK: usize = 1 << 20;

/// The memory that holds a memtable's keys and values: entries are copied one after the
/// other into the current chunk, and each entry's key and value are a `Bytes` sharing the
/// chunk (a reference count), so a chunk lives until the memtable and every key or value
/// read from it are dropped. Only the commit leader (or recovery) inserts, so the lock is
/// never contended.
#[derive(Debug, Default)]
struct Arena {
    /// The unused rest of the current chunk (its length is 0, its capacity what is left).
    chunk: BytesMut,
    /// The next chunk's size.
    next_chunk: usize,
}

impl Arena {
    /// Copies `key` then `value` in; returns them as one `Bytes` and the heap bytes this
    /// added: the bytes copied, plus the tail of a chunk left unused when a new chunk had
    /// to start, or for an entry that gets an allocation of its own, its size.
    fn copy(&mut self, key: &[u8], value: &[u8]) -> (Bytes, usize) {
        let n = key.len() + value.len();
        if n > MAX_CHUNK / 4 {
            let mut own = Vec::with_capacity(n);
            own.extend_from_slice(key);
            own.extend_from_slice(value);
            return (Bytes::from(own), n + 16 + 32); // with malloc's header and `Shared`
        }
        let mut added = n;
        if self.chunk.capacity() < n {
            added += self.chunk.capacity(); // the old chunk's tail is never used
            self.next_chunk = self.next_chunk.max(FIRST_CHUNK);
            self.chunk = BytesMut::with_capacity(self.next_chunk.max(n));
            self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
        }
        // Within the capacity: no reallocation, the chunk stays where its entries are.
        self.chunk.extend_from_slice(key);
        self.chunk.extend_from_slice(value);
        (self.chunk.split().freeze(), added)
    }
}

/// The in-memory table of recent writes: a concurrent skiplist in internal key order
/// (key ascending, version descending), one per WAL segment.
#[derive(Debug)]
pub struct Memtable {
    map: SkipMap<InternalKey, Slot>,
    arena: Mutex<Arena>,
    approx_bytes: AtomicUsize,
    max_version: AtomicU64,
    log_number: u64,
}

impl Memtable {
    /// An empty memtable whose entries live in WAL segment `log_number`.
    pub fn new(log_number: u64) -> Self {
        Memtable {
            map: SkipMap::new(),
            arena: Mutex::default(),
            approx_bytes: AtomicUsize::new(0),
            max_version: AtomicU64::new(0),
            log_number,
        }
    }

    /// The WAL segment that holds this memtable's entries.
    pub fn log_number(&self) -> u64 {
        self.log_number
    }

    /// Heap bytes taken: the arena's keys and values (with the unused tails of its full
    /// chunks) and [`NODE_BYTES`] per entry. The current chunk's unused rest is not
    /// counted (at most 1 MiB, and the pages of a large chunk are not touched until used).
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

    /// Inserts one entry committed at `time` (µs), copying key and value into the arena.
    /// Only the commit leader (or recovery) calls this.
    pub fn insert(&self, key: &[u8], version: Version, time: u64, kind: Kind, value: &[u8]) {
        let key_len = key.len() as u32; // keys are at most MAX_KEY_LEN (64 KiB)
        let (kv, copied) = self.arena.lock().copy(key, value);
        let size = copied + NODE_BYTES;
        self.map.insert(
            InternalKey {
                kv,
                version: version.0,
                key_len,
                kind,
            },
            time,
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
        let k = e.key();
        if k.key() != key {
            return None;
        }
        Some((Version(k.version), k.kind, k.value()))
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

fn to_entry(k: &InternalKey, time: &Slot) -> Entry {
    Entry {
        key: k.key_bytes(),
        version: Version(k.version),
        time: *time,
        kind: k.kind,
        value: k.value(),
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
                if e.key().version > snapshot {
                    continue; // committed after the snapshot
                }
                if last.as_ref().is_some_and(|l| l.key() == e.key().key()) {
                    // An older version of the key just taken: seek past all of them.
                    let past = InternalKey::last_of(e.key().key_bytes());
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
                Some(_) => InternalKey::last_of(k.key_bytes()),
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
            let key = e.key().key_bytes();
            let probe = InternalKey::at(key.clone(), snapshot);
            if let Some(v) = self.mem.map.lower_bound(Bound::Included(&probe)) {
                if v.key().key() == key {
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

    /// Counts, per thread, the heap bytes live as glibc's malloc lays them out (an 8-byte
    /// header, 16-byte rounding, 32 bytes at least), for `approx_bytes_tracks_the_heap`.
    struct Counting;

    thread_local! {
        static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
    }

    fn chunk(size: usize) -> isize {
        ((size + 8).div_ceil(16) * 16).max(32) as isize
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl std::alloc::GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
            LIVE.with(|l| l.set(l.get() + chunk(layout.size())));
            // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s.
            unsafe { std::alloc::System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
            LIVE.with(|l| l.set(l.get() - chunk(layout.size())));
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// `approx_bytes` against what the inserts really allocated (on this thread), for a
    /// few entry shapes: within 10%, once the current chunk's unused rest is set aside.
    #[test]
    fn approx_bytes_tracks_the_heap() {
        // The epoch collector registers this thread on its first use: do that first.
        Memtable::new(0).insert(b"warm", Version(1), 0, Kind::Put, b"up");
        for (key_len, value_len, n) in [
            (16usize, 100usize, 20_000u64),
            (1, 0, 20_000),
            (24, 1000, 3_000),
        ] {
            let before = LIVE.with(|l| l.get());
            let m = Memtable::new(1);
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            let value = vec![7u8; value_len];
            for v in 1..=n {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let mut key = rng.to_be_bytes().repeat(key_len.div_ceil(8));
                key.truncate(key_len);
                m.insert(&key, Version(v), v, Kind::Put, &value);
            }
            let unused = m.arena.lock().chunk.capacity() as isize;
            let heap = LIVE.with(|l| l.get()) - before - unused;
            let approx = m.approx_bytes() as f64;
            let ratio = approx / heap as f64;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "{key_len}-byte keys, {value_len}-byte values: approx_bytes {approx} \
                 against {heap} heap bytes ({ratio:.3})"
            );
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn get_sees_newest_version_at_or_below_snapshot() {
        let m = Memtable::new(1);
        m.insert(b"k", Version(1), 0, Kind::Put, b"one");
        m.insert(b"k", Version(3), 0, Kind::Delete, b"");
        m.insert(b"k2", Version(2), 0, Kind::Put, b"");
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
            m.insert(
                k.as_bytes(),
                Version(i as u64 + 1),
                0,
                Kind::Put,
                k.as_bytes(),
            );
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
            m.insert(&k, Version(u64::from(i) + 1), 0, Kind::Put, b"");
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
                    m.insert(
                        k.as_bytes(),
                        Version(v),
                        0,
                        kind,
                        format!("{k}{round}").as_bytes(),
                    );
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
