//! One block: a record batch of the run schema, checked and decoded.
//!
//! Decoding order: check the message CRC over the mapped bytes, decode with arrow-ipc's
//! `FileDecoder` (validation on; zero-copy when uncompressed), downcast the columns, then
//! check what arrow cannot: the row count, the kind bytes, strictly ascending internal order
//! and agreement with the block's index entry.

use crate::error::Error;
use crate::framing::schema;
use crate::index::IndexEntry;
use arrow_array::{
    Array, BinaryArray, RecordBatch, TimestampMicrosecondArray, UInt64Array, UInt8Array,
};
use arrow_buffer::Buffer;
use arrow_ipc::reader::FileDecoder;
use arrow_ipc::{Block, MetadataVersion};
use chronokv_snapshot::{internal_cmp, Kind, Version};
use std::cmp::Ordering;
use std::path::Path;

/// A decoded, checked block.
#[derive(Debug)]
pub struct DecodedBlock {
    /// User keys.
    pub keys: BinaryArray,
    /// Versions.
    pub versions: UInt64Array,
    /// Kind bytes (0 delete, 1 put).
    pub kinds: UInt8Array,
    /// Values (empty for deletes).
    pub values: BinaryArray,
    /// Commit times, microseconds since the Unix epoch (checked non-negative).
    pub times: TimestampMicrosecondArray,
}

impl DecodedBlock {
    /// Rows in the block.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key of row `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        self.keys.value(i)
    }

    /// The version of row `i`.
    pub fn version(&self, i: usize) -> Version {
        Version(self.versions.value(i))
    }

    /// The commit time of row `i`, microseconds since the Unix epoch.
    pub fn time(&self, i: usize) -> u64 {
        self.times.value(i) as u64
    }

    /// The kind of row `i` (checked at decode time).
    pub fn kind(&self, i: usize) -> Kind {
        Kind::from_u8(self.kinds.value(i)).unwrap_or(Kind::Delete)
    }

    /// The first row whose (key, version) is not before `(key, version)` in internal order.
    pub fn lower_bound(&self, key: &[u8], version: Version) -> usize {
        partition_point(self.len(), |i| {
            internal_cmp(self.key(i), self.version(i), key, version) == Ordering::Less
        })
    }

    /// The first row whose key is `>= key` (`inclusive`) or `> key` (not inclusive).
    pub fn key_bound(&self, key: &[u8], inclusive: bool) -> usize {
        partition_point(self.len(), |i| {
            if inclusive {
                self.key(i) < key
            } else {
                self.key(i) <= key
            }
        })
    }

    /// Bytes this block accounts for: the lengths of its arrays' buffers plus a fixed
    /// overhead. Lengths, not capacities: an uncompressed block's buffers are slices of the
    /// file's map, whose capacity is the whole file, and charging that would keep every
    /// block of a run larger than the cache out of the cache.
    pub fn weight(&self) -> u64 {
        let binary = |a: &BinaryArray| a.values().len() + a.offsets().inner().inner().len();
        (binary(&self.keys)
            + self.versions.values().inner().len()
            + self.kinds.values().inner().len()
            + binary(&self.values)
            + self.times.values().inner().len()
            + 512) as u64
    }
}

fn partition_point(n: usize, mut pred: impl FnMut(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Checks and decodes block `entry` of the file mapped as `file`. `first_key`/`last_key` are
/// the index's copies, compared with the decoded data.
pub fn decode(
    file: &Buffer,
    entry: &IndexEntry,
    first_key: &[u8],
    last_key: &[u8],
    path: &Path,
) -> Result<DecodedBlock, Error> {
    let off = entry.msg_offset;
    let corrupt = |reason: String| Error::corrupt(path, off, reason);
    let len = u64::from(entry.meta_len) + entry.body_len;
    if off.checked_add(len).is_none_or(|e| e > file.len() as u64) {
        return Err(corrupt("block message beyond the end of the file".into()));
    }
    let msg = file.slice_with_length(off as usize, len as usize);
    if crc32fast::hash(msg.as_slice()) != entry.crc && !crate::checksums_skipped() {
        return Err(corrupt("block checksum mismatch".into()));
    }
    let block = Block::new(off as i64, entry.meta_len as i32, entry.body_len as i64);
    let decoder = FileDecoder::new(schema(), MetadataVersion::V5);
    // The CRC matched, so the bytes are what the writer produced; the unwind guard only
    // keeps a hypothetical arrow panic on hostile input from crossing our API.
    let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decoder.read_record_batch(&block, &msg)
    }))
    .map_err(|_| corrupt("arrow decoder panicked".into()))?
    .map_err(|e| corrupt(format!("arrow decode: {e}")))?
    .ok_or_else(|| corrupt("message is not a record batch".into()))?;
    let b = columns(&batch).ok_or_else(|| corrupt("unexpected column types".into()))?;
    check(&b, entry, first_key, last_key).map_err(corrupt)?;
    Ok(b)
}

fn columns(batch: &RecordBatch) -> Option<DecodedBlock> {
    if batch.num_columns() != 5 {
        return None;
    }
    let c = batch.columns();
    Some(DecodedBlock {
        keys: c[0].as_any().downcast_ref::<BinaryArray>()?.clone(),
        versions: c[1].as_any().downcast_ref::<UInt64Array>()?.clone(),
        kinds: c[2].as_any().downcast_ref::<UInt8Array>()?.clone(),
        values: c[3].as_any().downcast_ref::<BinaryArray>()?.clone(),
        times: c[4]
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()?
            .clone(),
    })
}

fn check(b: &DecodedBlock, e: &IndexEntry, first: &[u8], last: &[u8]) -> Result<(), String> {
    let n = b.len();
    if n == 0 || n != e.row_count as usize {
        return Err(format!("block has {n} rows, index says {}", e.row_count));
    }
    if [
        b.versions.len(),
        b.kinds.len(),
        b.values.len(),
        b.times.len(),
    ] != [n, n, n, n]
    {
        return Err("columns have different lengths".into());
    }
    if b.keys.null_count()
        + b.versions.null_count()
        + b.kinds.null_count()
        + b.values.null_count()
        + b.times.null_count()
        > 0
    {
        return Err("null in a non-nullable column".into());
    }
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for i in 0..n {
        let v = b.versions.value(i);
        lo = lo.min(v);
        hi = hi.max(v);
        if b.times.value(i) < 0 {
            return Err(format!("row {i}: negative commit time"));
        }
        match Kind::from_u8(b.kinds.value(i)) {
            None => return Err(format!("row {i}: invalid kind byte")),
            Some(Kind::Delete) if !b.values.value(i).is_empty() => {
                return Err(format!("row {i}: tombstone with a value"))
            }
            _ => {}
        }
        if i > 0
            && internal_cmp(b.key(i - 1), b.version(i - 1), b.key(i), b.version(i))
                != Ordering::Less
        {
            return Err(format!("row {i}: keys out of internal order"));
        }
    }
    if b.key(0) != first || b.key(n - 1) != last || lo != e.min_version || hi != e.max_version {
        return Err("block disagrees with its index entry".into());
    }
    Ok(())
}

