//! [`RunReader`]: opens a run file, answers point lookups and serves range iterators.
//!
//! Opening reads four pieces, none of them blocks: the leading magic, the last 10 bytes
//! (the footer length), the 40-byte private tail with the footer just after it, and the
//! private region the tail points to (properties, block index, bloom filter). Tail, footer
//! and private region are checksum-verified at open and kept in memory. Each block is read
//! with one positional read (`pread`) when first needed, verified, and kept decoded in the
//! shared [`BlockCache`]; nothing maps the file, so the process's memory is what the cache
//! and the indexes hold, however large the runs (the page cache keeps the rest).

use crate::block::{self, DecodedBlock, Rows};
use crate::cache::BlockCache;
use crate::error::Error;
use crate::filter::KeyHash;
use crate::framing::{Tail, LEADING_MAGIC, TAIL_LEN, TRAILING_MAGIC};
use crate::index::{self, IndexEntry, Private};
use crate::prefix::KeyWords;
use crate::writer::RunMeta;
use arrow_buffer::Buffer;
use chronokv_snapshot::{internal_cmp, Bytes, Entry, Kind, Version};
use chronokv_vfs::{RandomAccessFile, Vfs};
use std::cmp::Ordering;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open run file. `Send + Sync`; share it as `Arc<RunReader>`.
pub struct RunReader {
    path: PathBuf,
    id: u64,
    cache: Arc<BlockCache>,
    file: Arc<dyn RandomAccessFile>,
    private: Private,
    /// Ordinal of the first entry of each block, plus the total at the end.
    starts: Vec<u64>,
    /// Search words of the blocks' last keys (for `block_for`).
    last_words: KeyWords,
    meta: RunMeta,
}

impl std::fmt::Debug for RunReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunReader")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("meta", &self.meta)
            .finish()
    }
}

impl RunReader {
    /// Opens the file and verifies the tail, footer and private region checksums; loads the
    /// index and the bloom filter. `id` (the file number) keys the block cache.
    ///
    /// Only the end of the file is read here; blocks are read (`pread`) when first needed
    /// and kept in the cache, so the process holds what the cache and the indexes charge,
    /// never a mapping of the whole file.
    pub fn open(
        vfs: &dyn Vfs,
        path: &Path,
        id: u64,
        cache: Arc<BlockCache>,
    ) -> Result<Arc<RunReader>, Error> {
        let file = vfs.open_read(path).map_err(|e| Error::io(path, e))?;
        let read = |off: u64, len: usize| read_at(&*file, path, off, len);
        let corrupt = |off: u64, r: &str| Error::corrupt(path, off, r);
        let len = file.len();
        let min_len = (LEADING_MAGIC.len() + 8 + TAIL_LEN + 10) as u64;
        if len < min_len {
            return Err(corrupt(0, "file too short for a run"));
        }
        if read(0, 8)? != LEADING_MAGIC {
            return Err(corrupt(0, "leading ARROW1 magic missing"));
        }
        let end = read(len - 10, 10)?;
        if &end[4..] != TRAILING_MAGIC {
            return Err(corrupt(len - 6, "trailing ARROW1 magic missing"));
        }
        let footer_len = i32::from_le_bytes([end[0], end[1], end[2], end[3]]);
        let footer_start = u64::try_from(footer_len)
            .ok()
            .and_then(|f| (len - 10).checked_sub(f))
            .filter(|&s| s >= min_len - 10)
            .ok_or_else(|| corrupt(len - 10, "footer length out of range"))?;
        let tail_start = footer_start - TAIL_LEN as u64;
        // Tail and footer in one read.
        let tail_footer = read(tail_start, (len - 10 - tail_start) as usize)?;
        let (tail_bytes, footer) = tail_footer.split_at(TAIL_LEN);
        let tail = Tail::decode(tail_bytes).map_err(|r| corrupt(tail_start, &r))?;
        if !chronokv_vfs::checksum_accepts(tail.footer_crc, crc32fast::hash(footer)) {
            return Err(corrupt(footer_start, "footer checksum mismatch"));
        }
        let p_start = tail.private_offset;
        if p_start < 16 || p_start.checked_add(tail.private_len) != Some(tail_start) {
            return Err(corrupt(
                tail_start,
                "private region bounds disagree with the tail",
            ));
        }
        // Block messages end at the EOS marker that precedes the private region; both
        // come in one read.
        let eos = p_start - 8;
        let eos_region = read(eos, (tail_start - eos) as usize)?;
        let (eos_bytes, region) = eos_region.split_at(8);
        if !chronokv_vfs::checksum_accepts(tail.private_crc, crc32fast::hash(region)) {
            return Err(corrupt(p_start, "private region checksum mismatch"));
        }
        if eos_bytes != crate::framing::EOS {
            return Err(corrupt(eos, "end-of-stream marker missing"));
        }
        let private = index::decode(region, tail.format_version, eos)
            .map_err(|(o, r)| corrupt(p_start + o, &r))?;
        let mut starts = Vec::with_capacity(private.entries.len() + 1);
        let mut total = 0u64;
        for e in &private.entries {
            starts.push(total);
            total += u64::from(e.row_count);
        }
        starts.push(total);
        let first = &private.entries[0];
        let last = &private.entries[private.entries.len() - 1];
        let meta = RunMeta {
            file_size: len,
            entry_count: private.entry_count,
            tombstone_count: private.tombstone_count,
            block_count: private.entries.len() as u32,
            min_key: private.key(first.first_key).to_vec(),
            max_key: private.key(last.last_key).to_vec(),
            min_version: Version(private.min_version),
            max_version: Version(private.max_version),
        };
        let last_words = KeyWords::new(
            &meta.min_key,
            &meta.max_key,
            private.entries.iter().map(|e| private.key(e.last_key)),
        );
        Ok(Arc::new(RunReader {
            path: path.to_path_buf(),
            id,
            cache,
            file,
            starts,
            last_words,
            private,
            meta,
        }))
    }

    /// The run's properties.
    pub fn meta(&self) -> &RunMeta {
        &self.meta
    }

    /// The id given at open (the file number).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn decode_block(&self, i: usize, rows: Rows) -> Result<DecodedBlock, Error> {
        let e = &self.private.entries[i];
        let msg = self.read_message(e)?;
        block::decode(
            &msg,
            e,
            self.private.key(e.first_key),
            self.private.key(e.last_key),
            &self.path,
            rows,
        )
    }

    /// The bytes of block message `e`, read into a plain `Vec` that the decoded arrays
    /// share (no copy): malloc's 16-byte alignment is enough, since messages start at
    /// multiples of 8 in the file and pad their buffers to 8. Not a 64-byte aligned
    /// `MutableBuffer`: glibc serves aligned allocations by splitting chunks, and the
    /// fragments left by cache churn grew a 1M-key YCSB-F run to 973-1,097 MiB of anonymous RSS
    /// against 153 MiB with `Vec` (runner, `--workloads ycsb-f`).
    fn read_message(&self, e: &IndexEntry) -> Result<Buffer, Error> {
        let len = u64::from(e.meta_len) + e.body_len;
        if e.msg_offset
            .checked_add(len)
            .is_none_or(|end| end > self.meta.file_size)
        {
            return Err(Error::corrupt(
                &self.path,
                e.msg_offset,
                "block message beyond the end of the file",
            ));
        }
        let buf = read_at(&*self.file, &self.path, e.msg_offset, len as usize)?;
        Ok(Buffer::from_vec(buf))
    }

    /// Block `i`, from the cache or decoded (and cached).
    pub(crate) fn block(&self, i: usize) -> Result<Arc<DecodedBlock>, Error> {
        self.block_filling(i, true)
    }

    /// Block `i`, from the cache or decoded; cached only if `fill_cache`. A block read for
    /// the cache has its rows trusted, one read past it (compaction's) checked: see
    /// [`Rows`].
    fn block_filling(&self, i: usize, fill_cache: bool) -> Result<Arc<DecodedBlock>, Error> {
        if let Some(b) = self.cache.get(self.id, i as u32) {
            if !fill_cache {
                // Only blocks read for the cache are in it, and their rows were trusted:
                // a compaction read checks them before it carries them into a new run.
                let e = &self.private.entries[i];
                block::check_rows(&b, e)
                    .map_err(|r| Error::corrupt(&self.path, e.msg_offset, r))?;
            }
            return Ok(b);
        }
        let rows = if fill_cache {
            Rows::Trusted
        } else {
            Rows::Checked
        };
        let b = Arc::new(self.decode_block(i, rows)?);
        if fill_cache {
            self.cache.insert(self.id, i as u32, b.clone());
        }
        Ok(b)
    }

    fn block_count(&self) -> usize {
        self.private.entries.len()
    }

    /// The first block whose last key is `>= key` (`inclusive`) or `> key`.
    fn block_for(&self, key: &[u8], inclusive: bool) -> usize {
        let probe = self.last_words.probe(key);
        self.last_words.partition(probe, |i| {
            let last = self.private.key(self.private.entries[i].last_key);
            if inclusive {
                last < key
            } else {
                last <= key
            }
        })
    }

    /// The newest entry for `key` with version `<= snapshot`, tombstones included.
    pub fn get(
        &self,
        key: &[u8],
        snapshot: Version,
    ) -> Result<Option<(Version, Kind, Bytes)>, Error> {
        self.get_hashed(key, &KeyHash::new(key), snapshot)
    }

    /// [`RunReader::get`] with the key's bloom hashes already computed (`hash` must be
    /// `KeyHash::new(key)`), so a read that consults several runs hashes the key once.
    pub fn get_hashed(
        &self,
        key: &[u8],
        hash: &KeyHash,
        snapshot: Version,
    ) -> Result<Option<(Version, Kind, Bytes)>, Error> {
        // The filter before the key range: in overlapping level-0 runs the range rarely
        // excludes a key, and a filter probe (one cache line) is cheaper than two compares.
        if self.meta.min_version > snapshot
            || !self.private.filter.may_contain(hash)
            || key < self.meta.min_key.as_slice()
            || key > self.meta.max_key.as_slice()
        {
            return Ok(None);
        }
        let mut i = self.block_for(key, true);
        while i < self.block_count() {
            let e = &self.private.entries[i];
            if self.private.key(e.first_key) > key {
                return Ok(None);
            }
            if e.min_version <= snapshot.0 {
                let b = self.block(i)?;
                let row = b.lower_bound(key, snapshot);
                if row < b.len() {
                    if b.key(row) != key {
                        return Ok(None);
                    }
                    return Ok(Some((b.version(row), b.kind(row), b.value_bytes(row))));
                }
            }
            i += 1;
        }
        Ok(None)
    }

    /// The ordinal of the first entry whose key is `>= key` (`inclusive`) or `> key`.
    fn ordinal_for(&self, key: &[u8], inclusive: bool) -> Result<u64, Error> {
        let i = self.block_for(key, inclusive);
        if i >= self.block_count() {
            return Ok(self.starts[i]);
        }
        let b = self.block(i)?;
        Ok(self.starts[i] + b.key_bound(key, inclusive) as u64)
    }

    fn block_of(&self, ordinal: u64) -> usize {
        self.starts.partition_point(|&s| s <= ordinal) - 1
    }

    /// Every entry whose user key is within the bounds, in internal order, from both ends.
    pub fn range(self: &Arc<Self>, lo: Bound<Bytes>, hi: Bound<Bytes>) -> RunIter {
        RunIter {
            run: self.clone(),
            lo,
            hi,
            state: State::Unstarted,
            fill_cache: true,
        }
    }

    /// Every entry, front to back, reading blocks that are not cached without caching
    /// them: a compaction reads each block once, and caching its inputs would evict the
    /// blocks readers use (RocksDB's `fill_cache = false` for compaction reads).
    pub fn scan_uncached(self: &Arc<Self>) -> RunIter {
        RunIter {
            fill_cache: false,
            ..self.range(Bound::Unbounded, Bound::Unbounded)
        }
    }

    /// Reads and checks every block (checksums, types, order, index agreement, order across
    /// blocks, bloom membership). Returns every problem found; empty means healthy.
    pub fn verify(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        if let Err(e) = self.check_schema() {
            errors.push(e);
        }
        let mut prev: Option<(Vec<u8>, Version)> = None;
        for i in 0..self.block_count() {
            let e = &self.private.entries[i];
            match self.decode_block(i, Rows::Checked) {
                Err(err) => errors.push(err),
                Ok(b) => {
                    if let Some((pk, pv)) = &prev {
                        if internal_cmp(pk, *pv, b.key(0), b.version(0)) != Ordering::Less {
                            errors.push(Error::corrupt(
                                &self.path,
                                e.msg_offset,
                                format!("block {i} starts before the end of block {}", i - 1),
                            ));
                        }
                    }
                    for r in 0..b.len() {
                        if !self
                            .private
                            .filter
                            .contains_fingerprint(index::fingerprint(b.key(r)))
                        {
                            errors.push(Error::corrupt(
                                &self.path,
                                e.msg_offset,
                                format!("block {i} row {r}: key missing from the bloom filter"),
                            ));
                            break;
                        }
                    }
                    let n = b.len() - 1;
                    prev = Some((b.key(n).to_vec(), b.version(n)));
                }
            }
        }
        errors
    }
}

impl RunReader {
    /// Checks the schema message at the head of the file, which has no checksum and which
    /// chronokv itself never reads, but which every Arrow tool reading the run needs: it
    /// must decode to exactly the run schema and end before the first block.
    fn check_schema(&self) -> Result<(), Error> {
        let first_block = self.private.entries[0].msg_offset;
        let bytes = read_at(&*self.file, &self.path, 0, first_block as usize)?;
        let first_block = first_block as usize;
        let corrupt = |off: usize, r: String| Error::corrupt(&self.path, off as u64, r);
        let prefix_end = LEADING_MAGIC.len() + 8;
        if first_block < prefix_end || bytes[8..12] != [0xff; 4] {
            return Err(corrupt(
                8,
                "schema message: continuation marker missing".into(),
            ));
        }
        let meta_len = i32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let meta_end = usize::try_from(meta_len)
            .ok()
            .and_then(|l| prefix_end.checked_add(l))
            .filter(|&end| end <= first_block)
            .ok_or_else(|| {
                corrupt(
                    12,
                    format!("schema message: length {meta_len} out of range"),
                )
            })?;
        let schema = arrow_ipc::root_as_message(&bytes[prefix_end..meta_end])
            .map_err(|e| e.to_string())
            .and_then(|m| {
                m.header_as_schema()
                    .ok_or_else(|| "not a schema".to_string())
            })
            .and_then(|fb| arrow_ipc::convert::try_fb_to_schema(fb).map_err(|e| e.to_string()))
            // The flatbuffer verifier explains over several lines; the first says what.
            .map_err(|e| {
                let first = e.lines().next().unwrap_or_default().trim();
                corrupt(prefix_end, format!("schema message: {first}"))
            })?;
        if schema != *crate::framing::schema() {
            return Err(corrupt(
                prefix_end,
                "schema message: not the run schema (an Arrow tool would misread the file)".into(),
            ));
        }
        Ok(())
    }
}

/// `len` bytes of `file` at `off` (one positional read, no zero-fill on `RealFs`).
fn read_at(
    file: &dyn RandomAccessFile,
    path: &Path,
    off: u64,
    len: usize,
) -> Result<Vec<u8>, Error> {
    file.read_vec_at(off, len).map_err(|e| {
        // A file shorter than the run says (truncated under the reader, or lying about
        // its own layout) is corrupt at `off`, not an I/O error.
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corrupt(
                path,
                off,
                format!("{len} bytes at {off} lie past the end of the file"),
            )
        } else {
            Error::io(path, e)
        }
    })
}

enum State {
    Unstarted,
    Active {
        front: u64,
        back: u64,
        front_block: Option<(usize, Arc<DecodedBlock>)>,
        back_block: Option<(usize, Arc<DecodedBlock>)>,
    },
    Done,
}

/// A double-ended iterator over a run's entries within key bounds. Front and back never
/// yield the same entry; after an error it yields nothing more.
pub struct RunIter {
    run: Arc<RunReader>,
    lo: Bound<Bytes>,
    hi: Bound<Bytes>,
    state: State,
    fill_cache: bool,
}

impl std::fmt::Debug for RunIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunIter")
            .field("run", &self.run.path)
            .finish()
    }
}

impl RunIter {
    fn start(&mut self) -> Result<(), Error> {
        if let State::Unstarted = self.state {
            let run = &self.run;
            let front = match &self.lo {
                Bound::Unbounded => 0,
                Bound::Included(k) => run.ordinal_for(k, true)?,
                Bound::Excluded(k) => run.ordinal_for(k, false)?,
            };
            let back = match &self.hi {
                Bound::Unbounded => run.meta.entry_count,
                Bound::Included(k) => run.ordinal_for(k, false)?,
                Bound::Excluded(k) => run.ordinal_for(k, true)?,
            };
            self.state = State::Active {
                front,
                back,
                front_block: None,
                back_block: None,
            };
        }
        Ok(())
    }

    fn step(&mut self, forward: bool) -> Result<Option<Entry>, Error> {
        self.start()?;
        // Borrowed apart (no Arc clone per step).
        let RunIter {
            run,
            state,
            fill_cache,
            ..
        } = self;
        let State::Active {
            front,
            back,
            front_block,
            back_block,
        } = state
        else {
            return Ok(None);
        };
        if *front >= *back {
            return Ok(None);
        }
        let ord = if forward { *front } else { *back - 1 };
        let slot = if forward { front_block } else { back_block };
        // The block in hand usually holds `ord` (cursors move one entry at a time), so
        // the search over block starts runs only when a cursor crosses into another block.
        let holds = |i: usize| run.starts[i] <= ord && ord < run.starts[i + 1];
        let bi = match slot.as_ref() {
            Some((i, _)) if holds(*i) => *i,
            _ => run.block_of(ord),
        };
        if slot.as_ref().is_none_or(|(i, _)| *i != bi) {
            *slot = Some((bi, run.block_filling(bi, *fill_cache)?));
        }
        let Some((_, b)) = slot.as_ref() else {
            return Ok(None);
        };
        let row = (ord - run.starts[bi]) as usize;
        let entry = Entry {
            key: b.key_bytes(row),
            version: b.version(row),
            time: b.time(row),
            kind: b.kind(row),
            value: b.value_bytes(row),
        };
        if forward {
            *front += 1;
        } else {
            *back -= 1;
        }
        Ok(Some(entry))
    }

    fn next_in(&mut self, forward: bool) -> Option<Result<Entry, Error>> {
        if let State::Done = self.state {
            return None;
        }
        match self.step(forward) {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.state = State::Done;
                None
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for RunIter {
    type Item = Result<Entry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_in(true)
    }
}

impl DoubleEndedIterator for RunIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.next_in(false)
    }
}

impl RunReader {
    /// The codec and the block index, for inspection tools (`chronokv dump-run`, verify).
    pub fn layout(&self) -> crate::inspect::RunLayout {
        crate::inspect::layout(&self.private)
    }
}
