//! One block: a record batch of the run schema, checked and decoded.
//!
//! Decoding order: check the message CRC over the bytes read, decode with arrow-ipc's
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
use chronokv_snapshot::{internal_cmp, Bytes, Kind, Version};
use std::cmp::Ordering;
use std::path::Path;

/// Lets a [`Bytes`] own an Arrow buffer (reference counted): keys and values handed out of
/// a block are slices of its buffers, not copies, and stay valid after the block leaves
/// the cache, because each slice holds the buffer.
struct ArrowOwner(Buffer);

impl AsRef<[u8]> for ArrowOwner {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

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
    /// The key column's data buffer as one shared [`Bytes`]; [`DecodedBlock::key_bytes`]
    /// slices it (a reference count, no allocation).
    key_data: Bytes,
    /// The value column's data buffer, likewise.
    value_data: Bytes,
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

    /// The key of row `i`, sharing the block's buffer.
    pub fn key_bytes(&self, i: usize) -> Bytes {
        slice_of(&self.key_data, &self.keys, i)
    }

    /// The value of row `i`, sharing the block's buffer.
    pub fn value_bytes(&self, i: usize) -> Bytes {
        slice_of(&self.value_data, &self.values, i)
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
    /// overhead (the message's flatbuffer header and the structs). Lengths, not
    /// capacities: an uncompressed block's arrays are slices of one message buffer.
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

/// Row `i` of `array` as a slice of `data`, the shared copy of `array`'s data buffer.
fn slice_of(data: &Bytes, array: &BinaryArray, i: usize) -> Bytes {
    let offsets = array.value_offsets();
    // Offsets were validated at decode (non-negative, ascending, within the buffer).
    let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
    data.slice(start..end)
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

/// How far [`decode`] checks a block's rows once its checksum matched and its structure
/// decoded (buffers in bounds, offsets ascending, no nulls, lengths as the index says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row as well: a valid kind, no value on a tombstone, a commit time that is not
    /// negative, strictly ascending internal order, versions within the index's bounds.
    /// `verify`, and compaction's reads of blocks not in the cache (which would carry a bad
    /// row into a new run).
    Checked,
    /// The first and last keys only (against the index). Reads through the block cache: the
    /// bytes passed their CRC, so they are what a writer wrote, and the writer refuses rows
    /// out of order; the row loop was a third of a block miss's instructions (see
    /// `docs/benchmarks.md`). Nothing a read does with a bad row can panic (the accessors
    /// are bounds-checked and map an unknown kind to a tombstone).
    Trusted,
}

/// Checks and decodes block `entry`, whose message bytes are `msg` (read from the file at
/// `entry.msg_offset`). `first_key`/`last_key` are the index's copies, compared with the
/// decoded data; `rows` says whether every row is checked as well.
pub fn decode(
    msg: &Buffer,
    entry: &IndexEntry,
    first_key: &[u8],
    last_key: &[u8],
    path: &Path,
    rows: Rows,
) -> Result<DecodedBlock, Error> {
    let off = entry.msg_offset;
    let corrupt = |reason: String| Error::corrupt(path, off, reason);
    let len = u64::from(entry.meta_len) + entry.body_len;
    if msg.len() as u64 != len {
        return Err(corrupt(
            "block message length disagrees with the index".into(),
        ));
    }
    // Planted bug (G6): blocks are read without their checksum check.
    if !chronokv_vfs::checksum_accepts(entry.crc, crc32fast::hash(msg.as_slice()))
        && !chronokv_vfs::bug!("run-skips-block-crc")
    {
        return Err(corrupt("block checksum mismatch".into()));
    }
    let layout = check_buffers(msg.as_slice(), entry.meta_len as usize).map_err(corrupt)?;
    let plain = match &layout {
        Some(l) => crate::plain::columns(msg, l).map_err(corrupt)?,
        None => None,
    };
    let b = match plain {
        Some(b) => b,
        None => {
            arrow_columns(msg, entry.msg_offset, entry.meta_len, entry.body_len).map_err(corrupt)?
        }
    };
    check_shape(&b, entry, first_key, last_key).map_err(corrupt)?;
    if rows == Rows::Checked {
        check_rows(&b, entry).map_err(corrupt)?;
    }
    Ok(b)
}

/// The block's columns as arrow-ipc's `FileDecoder` builds them: the path for compressed
/// blocks and for anything the plain path does not take.
pub(crate) fn arrow_columns(
    msg: &Buffer,
    offset: u64,
    meta_len: u32,
    body_len: u64,
) -> Result<DecodedBlock, String> {
    let block = Block::new(offset as i64, meta_len as i32, body_len as i64);
    let decoder = FileDecoder::new(schema(), MetadataVersion::V5);
    // The CRC matched, so the bytes are what the writer produced; the unwind guard only
    // keeps a hypothetical arrow panic on hostile input from crossing our API.
    let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decoder.read_record_batch(&block, msg)
    }))
    .map_err(|_| "arrow decoder panicked".to_string())?
    .map_err(|e| format!("arrow decode: {e}"))?
    .ok_or_else(|| "message is not a record batch".to_string())?;
    columns(&batch).ok_or_else(|| "unexpected column types".into())
}

/// A zstd frame of `n` bytes decodes to at most this many times `n` bytes (an RLE block
/// is 4 bytes for up to 128 KiB).
const ZSTD_MAX_RATIO: i64 = 32 * 1024;

/// The element width of each buffer of a run block, in schema order (key: validity,
/// i32 offsets, data; version: validity, u64 values; kind: validity, u8 values; value:
/// validity, i32 offsets, data; time: validity, i64 values); 1 where any length is valid.
const BUFFER_WIDTHS: [i64; 12] = [1, 4, 1, 1, 8, 1, 1, 1, 4, 1, 1, 8];

/// Checks what arrow-ipc's decoder assumes instead of checking (found by fuzzing, G5):
/// every buffer of the record batch lies inside the message body (it panics otherwise); a
/// compressed buffer declares an uncompressed length its bytes can produce (it allocates
/// the declared length up front); a buffer of fixed-width values holds whole values (its
/// validation panics otherwise). `msg` is the whole message, `meta_len` the length of its
/// prefix and flatbuffer (the body follows).
pub(crate) fn check_buffers(msg: &[u8], meta_len: usize) -> Result<Option<Layout>, String> {
    let fb = match msg.get(..4) {
        Some(c) if c == crate::framing::CONTINUATION => msg.get(8..),
        _ => msg.get(4..),
    }
    .ok_or("message shorter than its prefix")?;
    let message = arrow_ipc::root_as_message(fb).map_err(|e| format!("message: {e}"))?;
    let Some(batch) = message.header_as_record_batch() else {
        return Ok(None); // the decoder rejects it
    };
    let mut layout = Layout {
        rows: batch.length(),
        compressed: batch.compression().is_some(),
        nodes: batch
            .nodes()
            .iter()
            .flatten()
            .map(|n| (n.length(), n.null_count()))
            .collect(),
        // A run block has twelve; sized up front, as every block miss builds one.
        buffers: Vec::with_capacity(BUFFER_WIDTHS.len()),
    };
    let body = msg
        .get(meta_len..)
        .ok_or("message shorter than its metadata")?;
    let compressed = batch.compression().is_some();
    for (i, b) in batch.buffers().iter().flatten().enumerate() {
        let (off, len) = (b.offset(), b.length());
        let data = usize::try_from(off)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(o, l)| body.get(o..o.checked_add(l)?))
            .ok_or_else(|| {
                format!(
                    "buffer of {len} bytes at {off} lies outside the {}-byte body",
                    body.len()
                )
            })?;
        // The length of the values (after decompression); None if arrow rejects it anyway.
        let values_len = match (compressed, data.get(..8)) {
            (false, _) => Some(data.len() as i64),
            (true, None) => None,
            (true, Some(prefix)) => {
                let declared = i64::from_le_bytes(prefix.try_into().unwrap_or_default());
                let most = (data.len() as i64 - 8).saturating_mul(ZSTD_MAX_RATIO);
                if declared > most {
                    return Err(format!(
                        "compressed buffer of {} bytes declares {declared} bytes uncompressed",
                        data.len()
                    ));
                }
                // -1: stored uncompressed after the prefix.
                Some(if declared == -1 {
                    data.len() as i64 - 8
                } else {
                    declared
                })
            }
        };
        let width = BUFFER_WIDTHS.get(i).copied().unwrap_or(1);
        if let Some(n) = values_len.filter(|n| n % width != 0) {
            return Err(format!(
                "buffer {i} holds {n} bytes, not a whole number of {width}-byte values"
            ));
        }
        // In range of the body: checked above.
        layout.buffers.push((meta_len + off as usize, len as usize));
    }
    Ok(Some(layout))
}

/// Where a record batch message keeps its rows, field nodes and buffers, as
/// [`check_buffers`] found them.
#[derive(Debug)]
pub(crate) struct Layout {
    /// The batch's row count.
    pub rows: i64,
    /// True if the body is compressed.
    pub compressed: bool,
    /// Each field node's length and null count.
    pub nodes: Vec<(i64, i64)>,
    /// Each buffer's offset in the message (not the body) and length, all within it.
    pub buffers: Vec<(usize, usize)>,
}

impl DecodedBlock {
    /// A block of these columns; the key and value data are shared as [`Bytes`].
    pub(crate) fn new(
        keys: BinaryArray,
        versions: UInt64Array,
        kinds: UInt8Array,
        values: BinaryArray,
        times: TimestampMicrosecondArray,
    ) -> DecodedBlock {
        let shared = |a: &BinaryArray| Bytes::from_owner(ArrowOwner(a.values().clone()));
        DecodedBlock {
            key_data: shared(&keys),
            value_data: shared(&values),
            keys,
            versions,
            kinds,
            values,
            times,
        }
    }
}

fn columns(batch: &RecordBatch) -> Option<DecodedBlock> {
    if batch.num_columns() != 5 {
        return None;
    }
    let c = batch.columns();
    Some(DecodedBlock::new(
        c[0].as_any().downcast_ref::<BinaryArray>()?.clone(),
        c[1].as_any().downcast_ref::<UInt64Array>()?.clone(),
        c[2].as_any().downcast_ref::<UInt8Array>()?.clone(),
        c[3].as_any().downcast_ref::<BinaryArray>()?.clone(),
        c[4].as_any()
            .downcast_ref::<TimestampMicrosecondArray>()?
            .clone(),
    ))
}

/// What every decode checks: row count, column lengths, nulls, first and last key.
fn check_shape(b: &DecodedBlock, e: &IndexEntry, first: &[u8], last: &[u8]) -> Result<(), String> {
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
    if b.key(0) != first || b.key(n - 1) != last {
        return Err("block disagrees with its index entry".into());
    }
    Ok(())
}

/// Every row: kinds, times, internal order, versions within the index entry's bounds.
pub(crate) fn check_rows(b: &DecodedBlock, e: &IndexEntry) -> Result<(), String> {
    let n = b.len();
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
    if lo != e.min_version || hi != e.max_version {
        return Err("block versions disagree with its index entry".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_ipc::{
        BodyCompressionBuilder, CompressionType, MessageBuilder, MessageHeader, RecordBatchBuilder,
    };

    /// A record-batch message (prefix, flatbuffer, `body`) whose one buffer is `buffer`.
    fn message(buffer: arrow_ipc::Buffer, zstd: bool, body: &[u8]) -> (Vec<u8>, usize) {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let buffers = fbb.create_vector(&[buffer]);
        let compression = zstd.then(|| {
            let mut c = BodyCompressionBuilder::new(&mut fbb);
            c.add_codec(CompressionType::ZSTD);
            c.finish()
        });
        let mut rb = RecordBatchBuilder::new(&mut fbb);
        rb.add_length(1);
        rb.add_buffers(buffers);
        if let Some(c) = compression {
            rb.add_compression(c);
        }
        let rb = rb.finish();
        let mut m = MessageBuilder::new(&mut fbb);
        m.add_version(MetadataVersion::V5);
        m.add_header_type(MessageHeader::RecordBatch);
        m.add_header(rb.as_union_value());
        m.add_bodyLength(body.len() as i64);
        let m = m.finish();
        fbb.finish(m, None);
        let mut msg = crate::framing::message_prefix(0, fbb.finished_data());
        let meta_len = msg.len();
        msg.extend_from_slice(body);
        (msg, meta_len)
    }

    #[test]
    fn buffers_outside_the_body_are_rejected_before_arrow_sees_them() {
        let body = [0u8; 64];
        let ok = |off, len| {
            let (msg, meta) = message(arrow_ipc::Buffer::new(off, len), false, &body);
            check_buffers(&msg, meta)
        };
        assert!(ok(0, 64).is_ok());
        assert!(ok(8, 56).is_ok());
        // The fuzzer's case: a length far past the body (arrow's slice panics).
        assert!(ok(0, 301_989_888).unwrap_err().contains("outside"));
        assert!(ok(60, 8).is_err());
        assert!(ok(-1, 8).is_err());
        assert!(ok(0, -8).is_err());
        assert!(ok(i64::MAX, i64::MAX).is_err());
    }

    #[test]
    fn fixed_width_buffers_must_hold_whole_values() {
        // Buffer 1 is the key column's i32 offsets: arrow's validation panicked on 13 bytes.
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let buffers =
            fbb.create_vector(&[arrow_ipc::Buffer::new(0, 0), arrow_ipc::Buffer::new(0, 13)]);
        let mut rb = RecordBatchBuilder::new(&mut fbb);
        rb.add_length(1);
        rb.add_buffers(buffers);
        let rb = rb.finish();
        let mut m = MessageBuilder::new(&mut fbb);
        m.add_version(MetadataVersion::V5);
        m.add_header_type(MessageHeader::RecordBatch);
        m.add_header(rb.as_union_value());
        let m = m.finish();
        fbb.finish(m, None);
        let mut msg = crate::framing::message_prefix(0, fbb.finished_data());
        let meta = msg.len();
        msg.extend_from_slice(&[0; 16]);
        assert!(check_buffers(&msg, meta)
            .unwrap_err()
            .contains("whole number"));
    }

    #[test]
    fn compressed_buffers_cannot_declare_more_than_zstd_can_produce() {
        let with_declared = |declared: i64| {
            let mut body = declared.to_le_bytes().to_vec();
            body.extend_from_slice(&[0; 24]);
            let (msg, meta) = message(arrow_ipc::Buffer::new(0, 32), true, &body);
            check_buffers(&msg, meta)
        };
        assert!(with_declared(-1).is_ok()); // stored uncompressed
        assert!(with_declared(24 * ZSTD_MAX_RATIO).is_ok());
        // Would make arrow allocate 2^62 bytes up front.
        assert!(with_declared(1 << 62).unwrap_err().contains("declares"));
    }
}
