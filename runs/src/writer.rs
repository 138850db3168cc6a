//! [`RunWriter`]: builds a run file from entries in internal order.
//!
//! Entries are buffered into a block until about `block_target_bytes` of key+value bytes or
//! `block_max_rows` rows; each block becomes one Arrow record batch, encoded by
//! `IpcDataGenerator` and framed by [`crate::framing`]. The file is written to
//! `<final>.tmp`, synced, renamed to its final name and the directory is synced.

use crate::error::Error;
use crate::filter::RunFilter;
use crate::framing::{self, Tail, EOS, FORMAT_VERSION, LEADING_MAGIC, TRAILING_MAGIC};
use crate::index::{self, IndexEntry, Private, CODEC_NONE, CODEC_ZSTD};
use arrow_array::builder::{
    BinaryBuilder, TimestampMicrosecondBuilder, UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_ipc::{Block, CompressionType, MetadataVersion};
use arrow_schema::Metadata;
use chronokv_snapshot::{internal_cmp, Kind, Version};
use chronokv_vfs::{Vfs, WritableFile};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Block body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Raw buffers: blocks are read zero-copy from the map.
    None,
    /// Standard Arrow IPC ZSTD body compression at `level`.
    Zstd {
        /// The zstd level (1..=22; negative levels are fast modes).
        level: i32,
    },
}

/// Options of a [`RunWriter`].
#[derive(Clone, Debug)]
pub struct RunWriterOptions {
    /// Close a block once its keys and values reach this many bytes.
    pub block_target_bytes: usize,
    /// Close a block at this many rows.
    pub block_max_rows: usize,
    /// Body compression.
    pub compression: Compression,
    /// Target false-positive rate of the bloom filter, in (0, 1).
    pub bloom_fp_rate: f64,
}

impl Default for RunWriterOptions {
    fn default() -> Self {
        RunWriterOptions {
            block_target_bytes: 32 * 1024,
            block_max_rows: 4096,
            compression: Compression::None,
            bloom_fp_rate: 0.01,
        }
    }
}

/// What a finished run holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunMeta {
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Number of entries (all versions, tombstones included).
    pub entry_count: u64,
    /// Number of tombstones among them.
    pub tombstone_count: u64,
    /// Number of blocks (record batches).
    pub block_count: u32,
    /// Smallest user key.
    pub min_key: Vec<u8>,
    /// Largest user key.
    pub max_key: Vec<u8>,
    /// Smallest version.
    pub min_version: Version,
    /// Largest version.
    pub max_version: Version,
}

/// Largest key+value of one entry (Binary offsets are i32).
const MAX_ENTRY_BYTES: usize = i32::MAX as usize - 1024;

struct Pending {
    keys: BinaryBuilder,
    versions: UInt64Builder,
    kinds: UInt8Builder,
    values: BinaryBuilder,
    times: TimestampMicrosecondBuilder,
    rows: usize,
    bytes: usize,
    min_version: u64,
    max_version: u64,
    first_key: Vec<u8>,
}

impl Pending {
    fn new() -> Self {
        Pending {
            keys: BinaryBuilder::new(),
            versions: UInt64Builder::new(),
            kinds: UInt8Builder::new(),
            values: BinaryBuilder::new(),
            times: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            rows: 0,
            bytes: 0,
            min_version: u64::MAX,
            max_version: 0,
            first_key: Vec::new(),
        }
    }
}

/// Writes one run file. See the module documentation.
pub struct RunWriter {
    vfs: Arc<dyn Vfs>,
    final_path: PathBuf,
    tmp_path: PathBuf,
    file: Option<Box<dyn WritableFile>>,
    opts: RunWriterOptions,
    ipc_opts: IpcWriteOptions,
    generator: IpcDataGenerator,
    tracker: DictionaryTracker,
    ctx: IpcWriteContext,
    pos: u64,
    /// Bytes of the file's head (magic and schema), written before the first block.
    head_len: u64,
    pending: Pending,
    last: Option<(Vec<u8>, Version)>,
    entries: Vec<IndexEntry>,
    blocks: Vec<Block>,
    heap: Vec<u8>,
    fingerprints: Vec<u64>,
    entry_count: u64,
    tombstone_count: u64,
    min_version: u64,
    max_version: u64,
    min_key: Vec<u8>,
    failed: bool,
}

impl std::fmt::Debug for RunWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunWriter")
            .field("path", &self.final_path)
            .field("entries", &self.entry_count)
            .finish()
    }
}

impl RunWriter {
    /// Starts a run that will be published at `final_path`.
    pub fn create(
        vfs: Arc<dyn Vfs>,
        final_path: &Path,
        opts: RunWriterOptions,
    ) -> Result<Self, Error> {
        if opts.block_target_bytes == 0 || opts.block_max_rows == 0 {
            return Err(Error::InvalidInput("block sizes must be positive".into()));
        }
        if !(opts.bloom_fp_rate > 0.0 && opts.bloom_fp_rate < 1.0) {
            return Err(Error::InvalidInput(
                "bloom_fp_rate must be in (0, 1)".into(),
            ));
        }
        let bad = |e: arrow_schema::ArrowError| Error::InvalidInput(e.to_string());
        let mut ipc_opts = IpcWriteOptions::try_new(64, false, MetadataVersion::V5).map_err(bad)?;
        if let Compression::Zstd { level } = opts.compression {
            ipc_opts = ipc_opts
                .try_with_compression(Some(CompressionType::ZSTD))
                .and_then(|o| o.try_with_compression_level(Some(level)))
                .map_err(bad)?;
        }
        let mut name = final_path.as_os_str().to_owned();
        name.push(".tmp");
        let tmp_path = PathBuf::from(name);
        let mut file = vfs.create(&tmp_path).map_err(|e| Error::io(&tmp_path, e))?;
        let generator = IpcDataGenerator::default();
        let mut tracker = DictionaryTracker::new(true);
        let schema_msg = generator.schema_to_bytes_with_dictionary_tracker(
            &framing::schema(),
            &mut tracker,
            &ipc_opts,
        );
        let mut head = LEADING_MAGIC.to_vec();
        head.extend_from_slice(&framing::message_prefix(8, &schema_msg.ipc_message));
        file.write_all(&head).map_err(|e| Error::io(&tmp_path, e))?;
        Ok(RunWriter {
            vfs,
            final_path: final_path.to_path_buf(),
            tmp_path,
            file: Some(file),
            opts,
            ipc_opts,
            generator,
            tracker,
            ctx: IpcWriteContext::default(),
            pos: head.len() as u64,
            head_len: head.len() as u64,
            pending: Pending::new(),
            last: None,
            entries: Vec::new(),
            blocks: Vec::new(),
            heap: Vec::new(),
            fingerprints: Vec::new(),
            entry_count: 0,
            tombstone_count: 0,
            min_version: u64::MAX,
            max_version: 0,
            min_key: Vec::new(),
            failed: false,
        })
    }

    /// Appends an entry. Entries must arrive in strictly ascending internal order (key
    /// ascending, version descending); a tombstone must have an empty value; `time` is the
    /// commit time in microseconds since the Unix epoch (at most `i64::MAX`).
    pub fn add(
        &mut self,
        key: &[u8],
        version: Version,
        time: u64,
        kind: Kind,
        value: &[u8],
    ) -> Result<(), Error> {
        if self.failed {
            return Err(Error::InvalidInput("run writer failed earlier".into()));
        }
        if let Some((lk, lv)) = &self.last {
            if internal_cmp(lk, *lv, key, version) != Ordering::Less {
                return Err(Error::InvalidInput(format!(
                    "entry ({key:?}, {version}) is not after ({lk:?}, {lv}) in internal order"
                )));
            }
        }
        if kind == Kind::Delete && !value.is_empty() {
            return Err(Error::InvalidInput(
                "a tombstone must have an empty value".into(),
            ));
        }
        let Ok(time) = i64::try_from(time) else {
            return Err(Error::InvalidInput("commit time beyond i64::MAX".into()));
        };
        let size = key.len() + value.len();
        if size > MAX_ENTRY_BYTES {
            return Err(Error::InvalidInput("entry larger than 2 GiB".into()));
        }
        if self.pending.rows > 0 && self.pending.bytes + size > self.opts.block_target_bytes {
            self.guard(|w| w.flush())?;
        }
        let new_key = self
            .last
            .as_ref()
            .is_none_or(|(lk, _)| lk.as_slice() != key);
        if new_key {
            self.fingerprints.push(index::fingerprint(key));
        }
        if self.entry_count == 0 {
            self.min_key = key.to_vec();
        }
        let p = &mut self.pending;
        if p.rows == 0 {
            p.first_key = key.to_vec();
        }
        p.keys.append_value(key);
        p.versions.append_value(version.0);
        p.kinds.append_value(kind.as_u8());
        p.values.append_value(value);
        p.times.append_value(time);
        p.rows += 1;
        p.bytes += size;
        p.min_version = p.min_version.min(version.0);
        p.max_version = p.max_version.max(version.0);
        self.entry_count += 1;
        self.tombstone_count += u64::from(kind == Kind::Delete);
        self.min_version = self.min_version.min(version.0);
        self.max_version = self.max_version.max(version.0);
        match &mut self.last {
            Some((lk, lv)) if new_key => {
                lk.clear();
                lk.extend_from_slice(key);
                *lv = version;
            }
            Some((_, lv)) => *lv = version,
            None => self.last = Some((key.to_vec(), version)),
        }
        if self.pending.bytes >= self.opts.block_target_bytes
            || self.pending.rows >= self.opts.block_max_rows
        {
            self.guard(|w| w.flush())?;
        }
        Ok(())
    }

    fn guard<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        let r = f(self);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::InvalidInput("writer closed".into()))?;
        file.write_all(bytes)
            .map_err(|e| Error::io(&self.tmp_path, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Encodes the pending entries as one record batch.
    fn flush(&mut self) -> Result<(), Error> {
        if self.pending.rows == 0 {
            return Ok(());
        }
        let mut p = std::mem::replace(&mut self.pending, Pending::new());
        let cols: Vec<ArrayRef> = vec![
            Arc::new(p.keys.finish()),
            Arc::new(p.versions.finish()),
            Arc::new(p.kinds.finish()),
            Arc::new(p.values.finish()),
            Arc::new(p.times.finish()),
        ];
        let arrow_err =
            |e: arrow_schema::ArrowError| Error::InvalidInput(format!("arrow encode: {e}"));
        let batch = RecordBatch::try_new(framing::schema(), cols).map_err(arrow_err)?;
        let (_dicts, encoded) = self
            .generator
            .encode(&batch, &mut self.tracker, &self.ipc_opts, &mut self.ctx)
            .map_err(arrow_err)?;
        let prefix = framing::message_prefix(self.pos, &encoded.ipc_message);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&prefix);
        hasher.update(&encoded.arrow_data);
        let last_key = self
            .last
            .as_ref()
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        let first_off = self.heap.len() as u64;
        self.heap.extend_from_slice(&p.first_key);
        let last_off = self.heap.len() as u64;
        self.heap.extend_from_slice(&last_key);
        let entry = IndexEntry {
            msg_offset: self.pos,
            meta_len: prefix.len() as u32,
            row_count: p.rows as u32,
            body_len: encoded.arrow_data.len() as u64,
            crc: hasher.finalize(),
            min_version: p.min_version,
            max_version: p.max_version,
            first_key: (first_off, std::mem::take(&mut p.first_key).len() as u32),
            last_key: (last_off, last_key.len() as u32),
        };
        self.blocks.push(Block::new(
            self.pos as i64,
            prefix.len() as i32,
            encoded.arrow_data.len() as i64,
        ));
        self.entries.push(entry);
        self.write(&prefix)?;
        self.write(&encoded.arrow_data)?;
        Ok(())
    }

    /// Bytes of the blocks written so far: every finished block, not the one still being
    /// filled, nor the file's fixed head (magic and schema) or the index, filter and footer
    /// `finish` adds. A caller cutting outputs by size (compaction) counts real bytes with
    /// it rather than an estimate per entry; without the head, a small target counts data
    /// (with it, a target no larger than the head's 512 bytes cut every key into an output
    /// of its own: the model harness's 512-byte configuration).
    pub fn bytes_written(&self) -> u64 {
        self.pos - self.head_len
    }

    /// Writes the remaining block, the private region and the footer, then publishes the
    /// file durably. Fails if no entry was added.
    pub fn finish(mut self) -> Result<RunMeta, Error> {
        if self.failed {
            return Err(Error::InvalidInput("run writer failed earlier".into()));
        }
        if self.entry_count == 0 {
            return Err(Error::InvalidInput("a run needs at least one entry".into()));
        }
        self.guard(|w| w.finish_inner())
    }

    fn finish_inner(&mut self) -> Result<RunMeta, Error> {
        self.flush()?;
        self.write(&EOS)?;
        let mut fps = std::mem::take(&mut self.fingerprints);
        fps.sort_unstable();
        fps.dedup();
        let filter =
            RunFilter::build(&fps, self.opts.bloom_fp_rate).map_err(Error::InvalidInput)?;
        let codec = match self.opts.compression {
            Compression::None => CODEC_NONE,
            Compression::Zstd { .. } => CODEC_ZSTD,
        };
        let private = Private {
            codec,
            entry_count: self.entry_count,
            tombstone_count: self.tombstone_count,
            min_version: self.min_version,
            max_version: self.max_version,
            entries: std::mem::take(&mut self.entries),
            heap: std::mem::take(&mut self.heap),
            filter,
        };
        let region = index::encode(&private);
        let private_offset = self.pos;
        let custom = Metadata::from([
            ("chronokv.format", FORMAT_VERSION.to_string()),
            (
                "chronokv.private",
                format!("{private_offset}:{}", region.len()),
            ),
            ("chronokv.entries", self.entry_count.to_string()),
        ]);
        let footer = framing::footer(&self.blocks, &custom);
        let tail = Tail {
            private_offset,
            private_len: region.len() as u64,
            private_crc: crc32fast::hash(&region),
            footer_crc: crc32fast::hash(&footer),
            format_version: FORMAT_VERSION,
        };
        self.write(&region)?;
        self.write(&tail.encode())?;
        self.write(&footer)?;
        let mut end = (footer.len() as i32).to_le_bytes().to_vec();
        end.extend_from_slice(TRAILING_MAGIC);
        self.write(&end)?;
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Error::InvalidInput("writer closed".into()))?;
        // Planted bug (G6): publish the run without fsyncing its bytes.
        if !chronokv_vfs::bug!("run-skips-fsync") {
            file.sync().map_err(|e| Error::io(&self.tmp_path, e))?;
        }
        drop(file);
        self.vfs
            .rename(&self.tmp_path, &self.final_path)
            .map_err(|e| Error::io(&self.final_path, e))?;
        let dir = match self.final_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Planted bug (G6): skip the directory sync after the rename.
        if !chronokv_vfs::bug!("run-skips-dir-sync") {
            self.vfs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let max_key = private
            .key(private.entries[private.entries.len() - 1].last_key)
            .to_vec();
        Ok(RunMeta {
            file_size: self.pos,
            entry_count: self.entry_count,
            tombstone_count: self.tombstone_count,
            block_count: private.entries.len() as u32,
            min_key: std::mem::take(&mut self.min_key),
            max_key,
            min_version: Version(self.min_version),
            max_version: Version(self.max_version),
        })
    }
}

impl Drop for RunWriter {
    fn drop(&mut self) {
        // An unfinished (or failed) run leaves no temporary file behind.
        if self.file.take().is_some() || self.failed {
            let _ = self.vfs.remove_file(&self.tmp_path);
        }
    }
}
