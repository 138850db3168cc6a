//! The memtable's sorted map: a skiplist whose nodes live in an arena, with one writer and
//! any number of lock-free readers (LevelDB's and RocksDB's `InlineSkipList` design).
//!
//! **Why not a general concurrent map.** The memtable never removes an entry and has one
//! writer at a time (the commit leader, or recovery). That is the easy case of a concurrent
//! skiplist: a node is written in full, then published by storing its address into its
//! predecessors' links with `Release`; a reader that loads a link with `Acquire` sees the
//! whole node. Nothing is freed until the list is dropped, so readers need no epoch or
//! reference counting. A general map (crossbeam's) pays for removal and many writers with a
//! heap node per entry, a 32-byte `Bytes` per key, tower heights averaging 2 and an epoch
//! pin per operation: about 88 bytes per entry besides the key and value. Here a node costs
//! 24 bytes plus 8 per tower level (1.33 levels on average, branching factor 4), and the
//! key and value sit right after it in the same arena chunk.
//!
//! **Node layout** (8-byte aligned, in an arena chunk):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | version |
//! | 8 | 8 | commit time (µs) |
//! | 16 | 4 | value length |
//! | 20 | 4 | `meta`: key length (bits 0-23), height - 1 (bits 24-27), kind (bit 28) |
//! | 24 | 8 × height | tower: the next node at each level (level 0 first), atomic |
//! | 24 + 8h | key length | key |
//! | … | value length | value |
//!
//! Every pointer to a node is derived from its chunk's allocation (never from a reference
//! to the header alone), so reading the tower, key and value past the header is in bounds
//! of the pointer's provenance.

use chronokv_snapshot::Kind;
use parking_lot::Mutex;
use std::alloc::Layout;
use std::cmp::Ordering as CmpOrdering;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The tallest tower. With branching factor 4, 12 levels serve 4^12 (16M) entries at the
/// expected search cost; a memtable holds far fewer.
const MAX_HEIGHT: usize = 12;
/// Header bytes before the tower.
const HEADER: usize = 24;
/// The first arena chunk's size; each next chunk doubles, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 8 << 10;
/// The largest arena chunk. A node above a quarter of it gets an allocation of its own, so
/// a chunk's wasted tail (when the next node does not fit) stays small.
const MAX_CHUNK: usize = 1 << 20;
/// What glibc's malloc adds to an allocation of its own (header and rounding), counted by
/// [`SkipList::insert`] so that `approx_bytes` stays close to the heap.
const MALLOC_OVERHEAD: usize = 16;
/// Chunks of this size or more are anonymous mappings of their own, unmapped when the list
/// drops, instead of heap allocations. glibc serves them from the heap once its mmap
/// threshold has risen past them (it does, after the first such free), and then keeps the
/// freed chunks of every flushed memtable: with heap chunks the runner's 1M-key YCSB run
/// peaked at 237 MiB, with glibc's threshold fixed at 128 KiB at 167 MiB (see
/// `docs/benchmarks.md`). 128 KiB is glibc's default threshold.
const MAP_AT: usize = 128 << 10;
/// The page size mappings are rounded up to (counted by `approx_bytes`).
const PAGE: usize = 4096;

/// The memory an allocation of its own of `size` bytes takes: a mapping's pages, or a heap
/// block's size plus malloc's overhead.
fn chunk_bytes(size: usize) -> usize {
    if size >= MAP_AT {
        size.next_multiple_of(PAGE)
    } else {
        size + MALLOC_OVERHEAD
    }
}

/// One arena allocation, freed when the list drops.
#[derive(Debug)]
enum Chunk {
    Heap(NonNull<u8>, Layout),
    /// Held for its `Drop`, which unmaps it (only tests read it).
    #[allow(dead_code)]
    Mapped(memmap2::MmapMut),
}

const KEY_LEN_BITS: u32 = 24;
const KEY_LEN_MASK: u32 = (1 << KEY_LEN_BITS) - 1;
const KIND_BIT: u32 = 1 << 28;

/// A node's address, derived from its chunk's allocation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct NodePtr(NonNull<u8>);

impl NodePtr {
    fn word(self, offset: usize) -> u64 {
        // SAFETY: offsets 0 and 8 are inside the header of a node that was fully written
        // before it was published (see the module comment); the node is 8-byte aligned.
        unsafe { self.0.as_ptr().add(offset).cast::<u64>().read() }
    }

    fn half(self, offset: usize) -> u32 {
        // SAFETY: as `word`, for offsets 16 and 20.
        unsafe { self.0.as_ptr().add(offset).cast::<u32>().read() }
    }

    pub(super) fn version(self) -> u64 {
        self.word(0)
    }

    pub(super) fn time(self) -> u64 {
        self.word(8)
    }

    fn value_len(self) -> usize {
        self.half(16) as usize
    }

    fn meta(self) -> u32 {
        self.half(20)
    }

    pub(super) fn key_len(self) -> usize {
        (self.meta() & KEY_LEN_MASK) as usize
    }

    fn height(self) -> usize {
        ((self.meta() >> KEY_LEN_BITS) & 0xf) as usize + 1
    }

    pub(super) fn kind(self) -> Kind {
        if self.meta() & KIND_BIT != 0 {
            Kind::Put
        } else {
            Kind::Delete
        }
    }

    fn link(self, level: usize) -> &'static AtomicPtr<u8> {
        debug_assert!(level < self.height());
        // SAFETY: the tower has `height` initialised 8-byte aligned `AtomicPtr`s after the
        // header. The `'static` is a lie the callers keep true: a `NodePtr` is only used
        // while its `SkipList` lives (the list owns the chunks and outlives its readers).
        unsafe {
            &*self
                .0
                .as_ptr()
                .add(HEADER + 8 * level)
                .cast::<AtomicPtr<u8>>()
        }
    }

    /// The next node at `level` (null at the end), as a reader sees it.
    fn next(self, level: usize) -> Option<NodePtr> {
        NonNull::new(self.link(level).load(Ordering::Acquire)).map(NodePtr)
    }

    /// The start of the key, followed by the value.
    fn kv_ptr(self) -> *const u8 {
        // SAFETY: the key starts right after the tower, inside the node's allocation.
        unsafe { self.0.as_ptr().add(HEADER + 8 * self.height()) }
    }

    /// The key and the value, contiguous. Valid while the list lives (see `link`).
    pub(super) fn kv(self) -> &'static [u8] {
        // SAFETY: `key_len + value_len` bytes were written after the tower before the node
        // was published and are never written again.
        unsafe { std::slice::from_raw_parts(self.kv_ptr(), self.key_len() + self.value_len()) }
    }

    pub(super) fn key(self) -> &'static [u8] {
        &self.kv()[..self.key_len()]
    }

    pub(super) fn value(self) -> &'static [u8] {
        &self.kv()[self.key_len()..]
    }

    /// The internal order (key ascending, version descending) of this node against
    /// `(key, version)`.
    pub(super) fn cmp_to(self, key: &[u8], version: u64) -> CmpOrdering {
        compare_keys(self.key(), key).then_with(|| version.cmp(&self.version()))
    }

    /// This node's order against another's.
    pub(super) fn cmp_node(self, other: NodePtr) -> CmpOrdering {
        if self == other {
            return CmpOrdering::Equal;
        }
        self.cmp_to(other.key(), other.version())
    }
}

/// The byte order of two keys, 8 bytes at a time as big-endian words, inline. A search
/// compares the probe with some 38 nodes; through `slice::cmp` and a `memcmp` call each
/// comparison cost about 24 instructions (900 a put in the runner's fill), two word
/// comparisons do for its 16-byte keys.
#[inline]
fn compare_keys(a: &[u8], b: &[u8]) -> CmpOrdering {
    for (wa, wb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let wa = u64::from_be_bytes(wa.try_into().expect("8 bytes"));
        let wb = u64::from_be_bytes(wb.try_into().expect("8 bytes"));
        if wa != wb {
            return wa.cmp(&wb);
        }
    }
    // The shorter key's last partial word, against the same bytes of the other.
    let done = a.len().min(b.len()) / 8 * 8;
    for (ca, cb) in a[done..].iter().zip(&b[done..]) {
        if ca != cb {
            return ca.cmp(cb);
        }
    }
    a.len().cmp(&b.len())
}

/// The writer's state: the arena's current chunk and the height generator.
#[derive(Debug)]
struct Writer {
    /// Every allocation made, freed when the list drops.
    chunks: Vec<Chunk>,
    /// The current chunk's next free byte and how many bytes are left after it.
    cursor: *mut u8,
    left: usize,
    next_chunk: usize,
    rng: u64,
}

/// A sorted map of versioned entries; see the module comment.
#[derive(Debug)]
pub(super) struct SkipList {
    head: NodePtr,
    /// The tallest tower in the list (readers start their search there).
    height: AtomicUsize,
    writer: Mutex<Writer>,
}

// SAFETY: the raw pointers point into chunks the list owns. Readers only read nodes that
// were published with `Release` (so they see them fully written) and never written again
// except their atomic links; the one writer is serialised by the `writer` mutex.
unsafe impl Send for SkipList {}
// SAFETY: as for `Send`.
unsafe impl Sync for SkipList {}
// SAFETY: `cursor` points into a chunk of the list that owns this writer.
unsafe impl Send for Writer {}

impl Writer {
    /// `size` bytes (a multiple of 8), 8-byte aligned, and the heap bytes the allocation
    /// added: `size`, plus the tail of a chunk left unused when a new chunk had to start,
    /// or for a node that gets an allocation of its own, malloc's overhead.
    fn alloc(&mut self, size: usize) -> (NonNull<u8>, usize) {
        if size > MAX_CHUNK / 4 {
            let ptr = self.new_chunk(size);
            return (ptr, chunk_bytes(size));
        }
        let mut added = size;
        if self.left < size {
            added += self.left; // the old chunk's tail is never used
            self.next_chunk = self.next_chunk.max(FIRST_CHUNK);
            let chunk = self.next_chunk.max(size);
            self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
            self.cursor = self.new_chunk(chunk).as_ptr();
            self.left = chunk;
        }
        let ptr = self.cursor;
        // SAFETY: `size <= left`, so the result stays inside the chunk (or one past it).
        self.cursor = unsafe { ptr.add(size) };
        self.left -= size;
        // SAFETY: `ptr` points into a live chunk, never null.
        (unsafe { NonNull::new_unchecked(ptr) }, added)
    }

    fn new_chunk(&mut self, size: usize) -> NonNull<u8> {
        if size >= MAP_AT {
            let Ok(mut map) = memmap2::MmapMut::map_anon(size) else {
                std::alloc::handle_alloc_error(Layout::from_size_align(size, PAGE).expect("layout"))
            };
            // The mapping's address does not change when the `MmapMut` moves.
            let ptr = NonNull::new(map.as_mut_ptr()).expect("a mapping is never at null");
            self.chunks.push(Chunk::Mapped(map));
            return ptr;
        }
        let layout = Layout::from_size_align(size, 8).expect("chunk layout");
        // SAFETY: `size > 0` (at least a header).
        let ptr = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        self.chunks.push(Chunk::Heap(ptr, layout));
        ptr
    }

    /// A tower height: 1, then one more level with probability 1/4 each, up to the max.
    fn random_height(&mut self) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let pairs = (self.rng | 1 << 63).trailing_zeros() as usize / 2;
        (1 + pairs).min(MAX_HEIGHT)
    }
}

impl Drop for SkipList {
    fn drop(&mut self) {
        for chunk in self.writer.get_mut().chunks.drain(..) {
            if let Chunk::Heap(ptr, layout) = chunk {
                // SAFETY: allocated in `new_chunk` with this layout; nothing reads the list
                // any more (this is its drop, and readers hold it alive).
                unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) };
            } // a mapping is unmapped as its `MmapMut` drops
        }
    }
}

impl SkipList {
    pub(super) fn new(seed: u64) -> Self {
        let mut writer = Writer {
            chunks: Vec::new(),
            cursor: std::ptr::null_mut(),
            left: 0,
            next_chunk: FIRST_CHUNK,
            rng: seed | 1,
        };
        let (head, _) = writer.alloc(HEADER + 8 * MAX_HEIGHT);
        // SAFETY: the allocation holds a header and `MAX_HEIGHT` links; the head's key and
        // value are empty and it is never compared (searches start after it).
        unsafe {
            let p = head.as_ptr();
            p.cast::<u64>().write(0);
            p.add(8).cast::<u64>().write(0);
            p.add(16).cast::<u32>().write(0);
            p.add(20)
                .cast::<u32>()
                .write(((MAX_HEIGHT as u32) - 1) << KEY_LEN_BITS);
            for level in 0..MAX_HEIGHT {
                p.add(HEADER + 8 * level)
                    .cast::<AtomicPtr<u8>>()
                    .write(AtomicPtr::new(std::ptr::null_mut()));
            }
        }
        SkipList {
            head: NodePtr(head),
            height: AtomicUsize::new(1),
            writer: Mutex::new(writer),
        }
    }

    /// The current chunk's unused rest (not counted by `insert`'s sizes), for tests.
    #[cfg(test)]
    pub(super) fn unused_tail(&self) -> usize {
        self.writer.lock().left
    }

    /// The bytes of the list's mapped chunks (which a counting allocator does not see),
    /// for tests.
    #[cfg(test)]
    pub(super) fn mapped_bytes(&self) -> usize {
        let w = self.writer.lock();
        w.chunks
            .iter()
            .map(|c| match c {
                Chunk::Mapped(m) => chunk_bytes(m.len()),
                Chunk::Heap(..) => 0,
            })
            .sum()
    }

    /// True when nothing was inserted.
    pub(super) fn is_empty(&self) -> bool {
        self.head.next(0).is_none()
    }

    /// The first node.
    pub(super) fn first(&self) -> Option<NodePtr> {
        self.head.next(0)
    }

    /// The node after `node` in internal order.
    pub(super) fn next(&self, node: NodePtr) -> Option<NodePtr> {
        node.next(0)
    }

    /// Searches for where `before` stops holding, where `before` holds for a prefix of the
    /// list (it is monotone in the internal order). Returns the last node for which it
    /// holds (`None`: none) and the first for which it does not (`None`: the end), both as
    /// this search saw them: the second is the very link the search compared at level 0,
    /// never a reload of it, since the writer may link a new node there in between (a
    /// reload could return a node for which `before` holds). Also fills `preds` with the
    /// last such node at each level (the head where none).
    fn find(
        &self,
        before: impl Fn(NodePtr) -> bool,
        mut preds: Option<&mut [NodePtr; MAX_HEIGHT]>,
    ) -> (Option<NodePtr>, Option<NodePtr>) {
        let mut x = self.head;
        let mut level = self.height.load(Ordering::Relaxed).max(1) - 1;
        loop {
            let next = x.next(level);
            match next {
                Some(n) if before(n) => x = n,
                _ => {
                    if let Some(p) = preds.as_deref_mut() {
                        p[level] = x;
                    }
                    if level == 0 {
                        return ((x != self.head).then_some(x), next);
                    }
                    level -= 1;
                }
            }
        }
    }

    /// The last node for which `before` holds (see `find`).
    pub(super) fn last_where(&self, before: impl Fn(NodePtr) -> bool) -> Option<NodePtr> {
        self.find(before, None).0
    }

    /// The first node for which `before` does not hold (see `find`).
    pub(super) fn first_where_not(&self, before: impl Fn(NodePtr) -> bool) -> Option<NodePtr> {
        self.find(before, None).1
    }

    /// The first node at or after `(key, version)` in internal order.
    pub(super) fn seek(&self, key: &[u8], version: u64) -> Option<NodePtr> {
        self.first_where_not(|n| n.cmp_to(key, version) == CmpOrdering::Less)
    }

    /// Inserts an entry and returns the heap bytes this added. `(key, version)` must not be
    /// in the list yet (the memtable inserts ascending versions, so it never is).
    pub(super) fn insert(
        &self,
        key: &[u8],
        version: u64,
        time: u64,
        kind: Kind,
        value: &[u8],
    ) -> usize {
        assert!(
            key.len() <= KEY_LEN_MASK as usize,
            "key of {} bytes",
            key.len()
        );
        let value_len = u32::try_from(value.len()).expect("value longer than 4 GiB");
        let mut w = self.writer.lock();
        let mut preds = [self.head; MAX_HEIGHT];
        let _ = self.find(
            |n| n.cmp_to(key, version) == CmpOrdering::Less,
            Some(&mut preds),
        );
        let height = w.random_height();
        let size = (HEADER + 8 * height + key.len() + value.len()).next_multiple_of(8);
        let (node, added) = w.alloc(size);
        let meta = key.len() as u32
            | ((height as u32 - 1) << KEY_LEN_BITS)
            | if kind == Kind::Put { KIND_BIT } else { 0 };
        // SAFETY: `node` has `size` bytes, 8-byte aligned; the header, `height` links, key
        // and value fit (`size` was computed from them). Nothing can read the node before
        // the `Release` stores below publish it.
        unsafe {
            let p = node.as_ptr();
            p.cast::<u64>().write(version);
            p.add(8).cast::<u64>().write(time);
            p.add(16).cast::<u32>().write(value_len);
            p.add(20).cast::<u32>().write(meta);
            for (level, pred) in preds.iter().enumerate().take(height) {
                let next = pred.link(level).load(Ordering::Relaxed);
                p.add(HEADER + 8 * level)
                    .cast::<AtomicPtr<u8>>()
                    .write(AtomicPtr::new(next));
            }
            let kv = p.add(HEADER + 8 * height);
            std::ptr::copy_nonoverlapping(key.as_ptr(), kv, key.len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), kv.add(key.len()), value.len());
        }
        // Readers that see the taller height before the node is linked at those levels
        // find the head's null link there and go down a level: harmless.
        if height > self.height.load(Ordering::Relaxed) {
            self.height.store(height, Ordering::Relaxed);
        }
        for (level, pred) in preds.iter().enumerate().take(height) {
            pred.link(level).store(node.as_ptr(), Ordering::Release);
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_follow_a_quarter_per_level() {
        let list = SkipList::new(7);
        let mut w = list.writer.lock();
        let mut counts = [0usize; MAX_HEIGHT + 1];
        for _ in 0..100_000 {
            counts[w.random_height()] += 1;
        }
        // P(height = 1) = 3/4, P(2) = 3/16: generous bounds, the generator is fixed.
        assert!((73_000..77_000).contains(&counts[1]), "{counts:?}");
        assert!((17_000..20_500).contains(&counts[2]), "{counts:?}");
        assert_eq!(counts[0], 0);
    }

    #[test]
    fn seek_and_walk_follow_internal_order() {
        let list = SkipList::new(1);
        let mut want = Vec::new();
        let mut rng = 5u64;
        for v in 1..=5_000u64 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = format!("{:03}", (rng >> 33) % 700).into_bytes();
            let value = vec![(v % 251) as u8; (v % 37) as usize];
            list.insert(&key, v, v * 10, Kind::Put, &value);
            want.push((key, v, value));
        }
        want.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut got = Vec::new();
        let mut at = list.first();
        while let Some(n) = at {
            assert_eq!(n.time(), n.version() * 10);
            got.push((n.key().to_vec(), n.version(), n.value().to_vec()));
            at = list.next(n);
        }
        assert_eq!(got, want);
        for (i, (k, v, _)) in want.iter().enumerate().step_by(97) {
            let n = list.seek(k, *v).unwrap();
            assert_eq!((n.key(), n.version()), (&k[..], *v));
            let before = list.last_where(|n| n.cmp_to(k, *v) == CmpOrdering::Less);
            assert_eq!(
                before.map(|n| n.version()),
                i.checked_sub(1).map(|j| want[j].1)
            );
        }
        assert!(list.seek(b"zzz", 0).is_none());
    }

    #[test]
    fn word_comparison_is_byte_order() {
        let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for len in 0..=20usize {
            for _ in 0..12 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // Few distinct bytes, so that keys share prefixes of every length.
                let key: Vec<u8> = (0..len)
                    .map(|i| ((rng >> (i % 60)) & 3) as u8 * 85)
                    .collect();
                keys.push(key);
            }
        }
        for a in &keys {
            for b in &keys {
                assert_eq!(compare_keys(a, b), a.cmp(b), "{a:?} against {b:?}");
            }
        }
    }

    #[test]
    fn nodes_of_every_size_class_keep_their_bytes() {
        let list = SkipList::new(11);
        // Small, larger than the first chunk, just under and over the own-allocation limit.
        let sizes = [
            0usize,
            1,
            7,
            100,
            9 << 10,
            200 << 10,
            (MAX_CHUNK / 4) - 40,
            300 << 10,
        ];
        for (v, &len) in sizes.iter().enumerate() {
            let value: Vec<u8> = (0..len).map(|i| (i * 31 + v) as u8).collect();
            list.insert(
                &(v as u32).to_be_bytes(),
                v as u64 + 1,
                0,
                Kind::Put,
                &value,
            );
        }
        let mut at = list.first();
        for (v, &len) in sizes.iter().enumerate() {
            let n = at.expect("every node");
            let want: Vec<u8> = (0..len).map(|i| (i * 31 + v) as u8).collect();
            assert_eq!(
                (n.key(), n.value()),
                (&(v as u32).to_be_bytes()[..], &want[..])
            );
            at = list.next(n);
        }
        assert!(at.is_none());
    }

    #[test]
    fn readers_see_whole_nodes_while_one_thread_writes() {
        let list = std::sync::Arc::new(SkipList::new(3));
        let writer = {
            let list = list.clone();
            std::thread::spawn(move || {
                for v in 1..=20_000u64 {
                    let key = (v.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40).to_be_bytes();
                    list.insert(&key, v, v, Kind::Put, &v.to_le_bytes());
                }
            })
        };
        let mut seen = 0;
        while !writer.is_finished() || seen == 0 {
            let mut last: Option<NodePtr> = None;
            let mut at = list.first();
            seen = 0;
            while let Some(n) = at {
                assert_eq!(n.value(), n.version().to_le_bytes());
                if let Some(l) = last {
                    assert_eq!(l.cmp_node(n), CmpOrdering::Less);
                }
                last = Some(n);
                seen += 1;
                at = list.next(n);
            }
        }
        writer.join().unwrap();
        assert!(seen > 0);
    }
}
