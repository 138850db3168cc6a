//! The memtable: a sorted map of versioned entries, written by one committing leader at a
//! time and read concurrently by any number of readers, bounded by size.
//!
//! Contract: one committing leader inserts at a time (the commit queue guarantees it; the
//! skiplist's writer lock makes it safe regardless) while any number of readers look up and
//! iterate concurrently. Entries are never removed; a full memtable becomes immutable and
//! is dropped once flushed. Each memtable's entries are logged in exactly one WAL segment
//! (`log_number`), so the segment can be deleted once the memtable is in a durable run.
//!
//! Entries live in [`skiplist`]'s arena: node, key and value in one piece of a chunk that
//! grows from 8 KiB to 1 MiB, so an insert makes no heap allocation of its own and an entry
//! costs its key and value plus 24 + 8 × height bytes (about 35 on average).
//! [`Memtable::approx_bytes`] counts what the arena really took, so
//! `Options::memtable_size` bounds memory, as RocksDB's arena-based accounting does.
//!
//! A value or key handed out (`get`, the iterators) is a copy in a `Bytes` of its own: one
//! allocation, as sharing the arena would also cost (`Bytes::from_owner` allocates its
//! owner record), without a caller's value keeping a whole flushed memtable's arena alive.

mod skiplist;

use bytes::Bytes;
use chronokv_snapshot::{Entry, Kind, Version};
use skiplist::{NodePtr, SkipList};
use std::cmp::Ordering as CmpOrdering;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// The in-memory table of recent writes: a skiplist in internal key order (key ascending,
/// version descending), one per WAL segment.
#[derive(Debug)]
pub struct Memtable {
    list: SkipList,
    approx_bytes: AtomicUsize,
    max_version: AtomicU64,
    log_number: u64,
}

/// A borrowed entry of a memtable, for a flush (which copies it into a run anyway).
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub key: &'a [u8],
    pub version: Version,
    pub time: u64,
    pub kind: Kind,
    pub value: &'a [u8],
}

impl Memtable {
    /// An empty memtable whose entries live in WAL segment `log_number`.
    pub fn new(log_number: u64) -> Self {
        Memtable {
            list: SkipList::new(0x9e37_79b9_7f4a_7c15 ^ log_number),
            approx_bytes: AtomicUsize::new(0),
            max_version: AtomicU64::new(0),
            log_number,
        }
    }

    /// The WAL segment that holds this memtable's entries.
    pub fn log_number(&self) -> u64 {
        self.log_number
    }

    /// Heap bytes taken: the arena's nodes, keys and values (with the unused tails of its
    /// full chunks). The current chunk's unused rest is not counted (at most 1 MiB, and the
    /// pages of a large chunk are not touched until used).
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes.load(Ordering::Relaxed)
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The highest version inserted (0 when empty).
    pub fn max_version(&self) -> Version {
        Version(self.max_version.load(Ordering::Acquire))
    }

    /// Inserts one entry committed at `time` (µs), copying key and value into the arena.
    /// Only the commit leader (or recovery) calls this, with ascending versions.
    pub fn insert(&self, key: &[u8], version: Version, time: u64, kind: Kind, value: &[u8]) {
        let size = self.list.insert(key, version.0, time, kind, value);
        self.approx_bytes.fetch_add(size, Ordering::Relaxed);
        self.max_version.fetch_max(version.0, Ordering::AcqRel);
    }

    /// The newest entry of `key` with a version `<= snapshot`.
    pub fn get(&self, key: &[u8], snapshot: Version) -> Option<(Version, Kind, Bytes)> {
        let n = self.list.seek(key, snapshot.0)?;
        if n.key() != key {
            return None;
        }
        Some((
            Version(n.version()),
            n.kind(),
            Bytes::copy_from_slice(n.value()),
        ))
    }

    /// Every entry in internal order, borrowed (no `Bytes` made): what a flush writes.
    pub fn entries(&self) -> impl Iterator<Item = EntryRef<'_>> + '_ {
        std::iter::successors(self.list.first(), |&n| self.list.next(n)).map(|n| EntryRef {
            key: n.key(),
            version: Version(n.version()),
            time: n.time(),
            kind: n.kind(),
            value: n.value(),
        })
    }

    /// A node as an owned entry: key and value copied out together (one allocation).
    fn entry(n: NodePtr) -> Entry {
        let kv = Bytes::copy_from_slice(n.kv());
        let key_len = n.key_len();
        Entry {
            key: kv.slice(..key_len),
            version: Version(n.version()),
            time: n.time(),
            kind: n.kind(),
            value: kv.slice(key_len..),
        }
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
        MemIter {
            mem: self.clone(),
            lo,
            hi,
            snapshot: snapshot.map(|v| v.0),
            front: Pos::Start,
            back: Pos::Start,
            front_taken: None,
            back_taken: None,
        }
    }

    /// The last node whose key is before `key` (`inclusive`: at or before).
    fn last_before_key(&self, key: &[u8], inclusive: bool) -> Option<NodePtr> {
        self.list.last_where(|n| match n.key().cmp(key) {
            CmpOrdering::Less => true,
            CmpOrdering::Equal => inclusive,
            CmpOrdering::Greater => false,
        })
    }

    /// The first node whose key is after `key` (`inclusive`: at or after).
    fn first_after_key(&self, key: &[u8], inclusive: bool) -> Option<NodePtr> {
        self.list.first_where_not(|n| match n.key().cmp(key) {
            CmpOrdering::Less => true,
            CmpOrdering::Equal => !inclusive,
            CmpOrdering::Greater => false,
        })
    }
}

/// Where one end of a [`MemIter`] stands: not started, at the next node to look at, or done.
#[derive(Debug, Clone, Copy)]
enum Pos {
    Start,
    At(NodePtr),
    End,
}

impl From<Option<NodePtr>> for Pos {
    /// At the node, or done when there is none.
    fn from(n: Option<NodePtr>) -> Pos {
        n.map_or(Pos::End, Pos::At)
    }
}

/// An owning, double-ended iterator over a memtable range. Each end keeps its position in
/// the list (the list never moves or frees a node while the memtable lives), so the front
/// steps along the bottom links and the back searches for the predecessor of what it took
/// (a search per step, as in LevelDB: the links point one way). The two ends never yield
/// the same entry: an end stops at what the other end has taken.
pub struct MemIter {
    mem: Arc<Memtable>,
    lo: Bound<Bytes>,
    hi: Bound<Bytes>,
    /// With a snapshot: only the newest entry `<=` it of each key (see `range_at`).
    snapshot: Option<u64>,
    front: Pos,
    back: Pos,
    /// The last node taken from each end.
    front_taken: Option<NodePtr>,
    back_taken: Option<NodePtr>,
}

// SAFETY: the node pointers point into the memtable's arena, which `mem` keeps alive, and
// are only read (see `skiplist`).
unsafe impl Send for MemIter {}

impl MemIter {
    fn below_hi(&self, n: NodePtr) -> bool {
        match &self.hi {
            Bound::Included(k) => n.key() <= &k[..],
            Bound::Excluded(k) => n.key() < &k[..],
            Bound::Unbounded => true,
        }
    }

    fn above_lo(&self, n: NodePtr) -> bool {
        match &self.lo {
            Bound::Included(k) => n.key() >= &k[..],
            Bound::Excluded(k) => n.key() > &k[..],
            Bound::Unbounded => true,
        }
    }

    fn front_start(&self) -> Option<NodePtr> {
        match &self.lo {
            Bound::Included(k) => self.mem.first_after_key(k, true),
            Bound::Excluded(k) => self.mem.first_after_key(k, false),
            Bound::Unbounded => self.mem.list.first(),
        }
    }

    fn back_start(&self) -> Option<NodePtr> {
        match &self.hi {
            Bound::Included(k) => self.mem.last_before_key(k, true),
            Bound::Excluded(k) => self.mem.last_before_key(k, false),
            Bound::Unbounded => self.mem.list.last_where(|_| true),
        }
    }

    /// The next node from the front, or `None` (and the front is done).
    fn take_front(&mut self) -> Option<NodePtr> {
        loop {
            let at = match self.front {
                Pos::Start => self.front_start(),
                Pos::At(n) => Some(n),
                Pos::End => return None,
            };
            let n = match at {
                Some(n) if self.below_hi(n) && self.before_back(n) => n,
                _ => {
                    self.front = Pos::End;
                    return None;
                }
            };
            let Some(snapshot) = self.snapshot else {
                self.front = Pos::from(self.mem.list.next(n));
                self.front_taken = Some(n);
                return Some(n);
            };
            if n.version() > snapshot {
                self.front = Pos::from(self.mem.list.next(n));
                continue; // committed after the snapshot
            }
            // The newest visible version: skip the key's older ones (one search when
            // there are some, a step along the list when there are none).
            let next = match self.mem.list.next(n) {
                Some(m) if m.key() == n.key() => self.mem.first_after_key(n.key(), false),
                other => other,
            };
            self.front = Pos::from(next);
            self.front_taken = Some(n);
            return Some(n);
        }
    }

    /// The next node from the back, or `None` (and the back is done).
    fn take_back(&mut self) -> Option<NodePtr> {
        loop {
            let at = match self.back {
                Pos::Start => self.back_start(),
                Pos::At(n) => Some(n),
                Pos::End => return None,
            };
            let n = match at {
                Some(n) if self.above_lo(n) && self.after_front(n) => n,
                _ => {
                    self.back = Pos::End;
                    return None;
                }
            };
            let Some(snapshot) = self.snapshot else {
                let prev = self
                    .mem
                    .list
                    .last_where(|m| m.cmp_node(n) == CmpOrdering::Less);
                self.back = Pos::from(prev);
                self.back_taken = Some(n);
                return Some(n);
            };
            // From the back a key's oldest version comes first: look its newest visible
            // one up, then go before the key.
            let key = n.key();
            self.back = Pos::from(self.mem.last_before_key(key, false));
            match self.mem.list.seek(key, snapshot) {
                Some(v) if v.key() == key => {
                    if !self.after_front(v) {
                        self.back = Pos::End;
                        return None;
                    }
                    self.back_taken = Some(v);
                    return Some(v);
                }
                _ => continue, // no version of the key is visible
            }
        }
    }

    /// True while `n` comes before what the back end has taken.
    fn before_back(&self, n: NodePtr) -> bool {
        self.back_taken
            .is_none_or(|b| n.cmp_node(b) == CmpOrdering::Less)
    }

    /// True while `n` comes after what the front end has taken.
    fn after_front(&self, n: NodePtr) -> bool {
        self.front_taken
            .is_none_or(|f| f.cmp_node(n) == CmpOrdering::Less)
    }
}

impl Iterator for MemIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let n = self.take_front()?;
        Some(Memtable::entry(n))
    }
}

impl DoubleEndedIterator for MemIter {
    fn next_back(&mut self) -> Option<Entry> {
        let n = self.take_back()?;
        Some(Memtable::entry(n))
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

    /// `approx_bytes` against what the inserts really allocated (on this thread, plus the
    /// mapped chunks), for a few entry shapes: within 10%, once the current chunk's unused
    /// rest is set aside.
    #[test]
    fn approx_bytes_tracks_the_heap() {
        // Thread-local and allocator state set up on first use is not the memtable's.
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
            let unused = m.list.unused_tail() as isize;
            let mapped = m.list.mapped_bytes() as isize;
            assert!(mapped > 0, "the larger chunks are mapped");
            let heap = LIVE.with(|l| l.get()) - before - unused + mapped;
            let approx = m.approx_bytes() as f64;
            let ratio = approx / heap as f64;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "{key_len}-byte keys, {value_len}-byte values: approx_bytes {approx} \
                 against {heap} heap bytes ({ratio:.3})"
            );
        }
    }

    /// One thread inserts versions 1, 2, ... of 8 keys (version `v` to key `v % 8`) and
    /// publishes each after its insert, as the commit path does; readers at the published
    /// version must see, for every key, exactly its newest version at or below it.
    #[test]
    fn gets_at_the_published_version_see_the_newest_entry_while_one_thread_writes() {
        let m = Arc::new(Memtable::new(1));
        let published = Arc::new(AtomicU64::new(0));
        let total = 200_000u64;
        let writer = {
            let (m, published) = (m.clone(), published.clone());
            std::thread::spawn(move || {
                for v in 1..=total {
                    let key = format!("acct{}", v % 8);
                    m.insert(key.as_bytes(), Version(v), v, Kind::Put, &v.to_le_bytes());
                    published.store(v, Ordering::Release);
                }
            })
        };
        let mut checks = 0u64;
        loop {
            let s = published.load(Ordering::Acquire);
            let want: Vec<u64> = (0..8u64)
                .filter_map(|k| (1..=s).rev().find(|v| v % 8 == k))
                .collect();
            for k in 0..8u64 {
                let want = (1..=s).rev().find(|v| v % 8 == k);
                let got = m.get(format!("acct{k}").as_bytes(), Version(s));
                assert_eq!(got.map(|(v, _, _)| v.0), want, "key {k} at {s}");
                checks += 1;
            }
            // Scans at the same version, from either end, see the same entries.
            let all = (Bound::Unbounded, Bound::Unbounded);
            let fwd: Vec<u64> = m
                .range_at(all.0.clone(), all.1.clone(), Some(Version(s)))
                .map(|e| e.version.0)
                .collect();
            assert_eq!(fwd, want, "forward scan at {s}");
            let mut back: Vec<u64> = m
                .range_at(all.0, all.1, Some(Version(s)))
                .rev()
                .map(|e| e.version.0)
                .collect();
            back.reverse();
            assert_eq!(back, want, "backward scan at {s}");
            if s == total {
                break;
            }
        }
        writer.join().unwrap();
        assert!(checks > 8);
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
