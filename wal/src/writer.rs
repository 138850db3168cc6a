//! [`SegmentWriter`]: appends frames to one segment, group-commit style.

use crate::frame::{self, Chain, Header, Seed, MAX_FRAME_HEADER_LEN, MAX_PAYLOAD_HEADER_LEN};
use crate::header::{self, HEADER_LEN};
use crate::{segment_file_name, BatchEntries, Error, MAX_FRAME_LEN};
use chronokv_snapshot::Version;
use chronokv_vfs::{Vfs, WritableFile};
use std::io;
use std::path::{Path, PathBuf};

/// One record to append: a batch's entries and the version of its first entry.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// The version of the first entry; the others follow consecutively.
    pub first_version: Version,
    /// The commit's wall-clock time in microseconds since the Unix epoch.
    pub commit_micros: u64,
    /// The entries.
    pub entries: &'a BatchEntries,
}

/// Appends records to one WAL segment, in format v2 (the segment header goes out with the
/// first append, so a segment never appended to stays an empty file).
///
/// The writer enforces what the reader will check: every frame fits the limits, records
/// carry contiguous versions and commit times that do not go back. After any failed write or sync the writer is poisoned (the
/// file's contents past the last sync are unknown) and refuses further work; the engine must
/// rotate to a new segment or stop.
#[derive(Debug)]
pub struct SegmentWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    log_number: u64,
    synced_len: u64,
    /// The version and time the last appended record left (`next_version` is `None`
    /// before the first append).
    chain: Chain,
    seed: Seed,
    poisoned: bool,
    buf: Vec<u8>,
    /// Preallocation step in bytes (0: off; see [`SegmentWriter::preallocating`]).
    step: u64,
    /// The file's size as last set: at least `len()` while preallocating.
    allocated: u64,
}

impl SegmentWriter {
    /// Creates `dir/segment_file_name(log_number)` (truncating any existing file), fsyncs
    /// the directory so the new entry is durable, and returns the writer.
    pub fn create(vfs: &dyn Vfs, dir: &Path, log_number: u64) -> Result<Self, Error> {
        let path = dir.join(segment_file_name(log_number));
        let file = vfs.create(&path).map_err(|e| Error::io(&path, e))?;
        // Planted bug (G6): skip the directory sync, so the segment's entry may vanish.
        if !chronokv_vfs::bug!("wal-create-skips-dir-sync") {
            vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(SegmentWriter {
            file,
            path,
            log_number,
            synced_len: 0,
            chain: Chain::default(),
            seed: Seed::new(log_number),
            poisoned: false,
            buf: Vec::new(),
            step: 0,
            allocated: 0,
        })
    }

    /// Preallocates the segment `step` bytes at a time ([`WritableFile::set_size`]) as
    /// appends reach its end: a synced append into preallocated space need not make a new
    /// file size durable too, which costs a journal commit per fdatasync on ext4
    /// (`docs/benchmarks.md`, "Preallocated WAL segments"). The zeros
    /// past the last frame read as a torn tail, so [`SegmentWriter::finish`] must cut them
    /// off before a newer segment is written (see `docs/format/wal.md`, "Preallocated
    /// segments"). `step` 0 turns it off.
    pub fn preallocating(mut self, step: u64) -> Self {
        self.step = step;
        self
    }

    /// Appends one frame per record with a single `write_all` for the whole group. Each
    /// frame records the synced length at call time as its `durable_offset`. Nothing is
    /// durable until [`SegmentWriter::sync`].
    ///
    /// Fails without writing anything if a record is too large for a frame, its versions
    /// do not continue the previous record's (`first_version == prev.first_version +
    /// prev.count`) or its commit time is before the previous record's; empty batches are
    /// allowed and consume no versions.
    pub fn append(&mut self, records: &[RecordRef<'_>]) -> Result<(), Error> {
        self.append_all(records.iter().copied())
    }

    /// [`SegmentWriter::append`] for records given by an iterator, which is walked twice
    /// (checks, then encoding), so a commit group need not collect its records first.
    pub fn append_all<'a, I>(&mut self, records: I) -> Result<(), Error>
    where
        I: Iterator<Item = RecordRef<'a>> + Clone,
    {
        self.check_usable()?;
        let total = self.check_records(records.clone())?;
        if total == 0 {
            return Ok(());
        }
        self.buf.clear();
        let at_start = self.file.len();
        let mut at = at_start;
        if at == 0 {
            self.buf.reserve(HEADER_LEN + total);
            self.buf.extend_from_slice(&header::encode(self.log_number));
            at = HEADER_LEN as u64;
        } else {
            self.buf.reserve(total);
        }
        let mut chain = self.chain;
        for r in records {
            let h = Header {
                durable_offset: self.synced_len,
                first_version: r.first_version.get(),
                commit_micros: r.commit_micros,
                count: r.entries.count(),
            };
            let start = self.buf.len();
            chain = frame::encode(
                &mut self.buf,
                &self.seed,
                at,
                chain,
                &h,
                r.entries.as_bytes(),
            );
            at += (self.buf.len() - start) as u64;
        }
        let res = self
            .grow_to(at_start + self.buf.len() as u64)
            .and_then(|()| self.file.write_all(&self.buf));
        // Do not keep a huge buffer alive between groups.
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::new();
        }
        if let Err(e) = res {
            self.poisoned = true;
            return Err(Error::io(&self.path, e));
        }
        self.chain = chain;
        Ok(())
    }

    /// Checks every record against the limits and the chain of versions and times; returns
    /// an upper bound of the bytes their frames take (0 for no records).
    fn check_records<'a>(
        &self,
        records: impl Iterator<Item = RecordRef<'a>>,
    ) -> Result<usize, Error> {
        let mut chain = self.chain;
        let mut total = 0usize;
        for r in records {
            let first = r.first_version.get();
            let payload = MAX_PAYLOAD_HEADER_LEN + r.entries.encoded_len();
            let refuse = |reason: String| Err(Error::refused(&self.path, reason));
            if payload > MAX_FRAME_LEN {
                return refuse(format!(
                    "record of {payload} bytes exceeds the {MAX_FRAME_LEN}-byte frame limit"
                ));
            }
            if let Some(expected) = chain.next_version.filter(|&e| e != first) {
                return refuse(format!(
                    "non-contiguous versions: expected first_version {expected}, got {first}"
                ));
            }
            if r.commit_micros < chain.micros {
                return refuse(format!(
                    "commit time {} is before the previous record's {}",
                    r.commit_micros, chain.micros
                ));
            }
            let Some(next) = first.checked_add(u64::from(r.entries.count())) else {
                return refuse("version overflow".to_string());
            };
            chain = Chain {
                next_version: Some(next),
                micros: r.commit_micros,
            };
            total += MAX_FRAME_HEADER_LEN + payload;
        }
        Ok(total)
    }

    /// Extends the preallocated space to hold `end` bytes, if preallocating.
    fn grow_to(&mut self, end: u64) -> io::Result<()> {
        if self.step == 0 || end <= self.allocated {
            return Ok(());
        }
        let size = end.div_ceil(self.step).saturating_mul(self.step);
        self.file.set_size(size)?;
        self.allocated = size;
        Ok(())
    }

    /// Cuts the preallocated space past the last frame and syncs: the segment is then
    /// exactly its frames, as a segment must be before a newer one is written (a reader
    /// takes damage in an older segment, zeros included, for corruption). Call it instead
    /// of [`SegmentWriter::sync`] when the writer is done with the segment.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        let len = self.file.len();
        if self.allocated > len {
            if let Err(e) = self.file.set_size(len) {
                self.poisoned = true;
                return Err(Error::io(&self.path, e));
            }
            self.allocated = len;
        }
        self.sync()
    }

    /// Makes everything appended so far durable (fsync) and remembers the synced length,
    /// which later frames record as their `durable_offset`.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        if let Err(e) = self.file.sync() {
            // Planted bug (G6): retry a failed fsync and carry on if the retry "succeeds" (the
            // kernel may have dropped the dirty pages the first one failed to write).
            if chronokv_vfs::bug!("wal-fsync-retry") && self.file.sync().is_ok() {
                self.synced_len = self.file.len();
                return Ok(());
            }
            self.poisoned = true;
            return Err(Error::io(&self.path, e));
        }
        self.synced_len = self.file.len();
        Ok(())
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::io(
                &self.path,
                io::Error::other("WAL writer is unusable after an earlier write or sync failure"),
            ));
        }
        Ok(())
    }

    /// Bytes written so far (synced or not).
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    /// True when nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes known durable: the length at the last successful [`SegmentWriter::sync`].
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// The segment's log number.
    pub fn log_number(&self) -> u64 {
        self.log_number
    }

    /// The segment file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `first_version` the next record must carry, once a record was
    /// appended (`None` before the first append).
    pub fn next_version(&self) -> Option<Version> {
        self.chain.next_version.map(Version)
    }
}
