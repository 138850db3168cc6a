//! The private region: run properties, the block index with its key heap, and the bloom
//! filter. All integers are little-endian; see `docs/format/run.md` for the byte layout.
//!
//! ```text
//! header (96 bytes) | index entries (block_count × 72 bytes) | key heap | bloom filter | pad to 8
//! ```
//!
//! The region is checksummed as a whole (the CRC is in the private tail), so this module
//! only has to guard against inconsistent values, never against random bytes: every length
//! and offset is still bounds-checked so that a CRC collision cannot cause a panic.

use crate::filter::RunFilter;
use crate::framing::{u32_at, u64_at};

/// Size of the private region header.
pub const HEADER_LEN: usize = 96;
/// Size of one index entry.
pub const ENTRY_LEN: usize = 72;

/// Codec ids stored in the header.
pub const CODEC_NONE: u32 = 0;
/// ZSTD body compression.
pub const CODEC_ZSTD: u32 = 1;

/// One block's entry in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// File offset of the message (its continuation token).
    pub msg_offset: u64,
    /// Metadata length including the 8-byte prefix and padding (`Block.metaDataLength`).
    pub meta_len: u32,
    /// Rows in the block.
    pub row_count: u32,
    /// Body length (`Block.bodyLength`).
    pub body_len: u64,
    /// CRC-32 of the message bytes `[msg_offset, msg_offset + meta_len + body_len)`.
    pub crc: u32,
    /// Smallest version in the block.
    pub min_version: u64,
    /// Largest version in the block.
    pub max_version: u64,
    /// First key: offset into the key heap and length.
    pub first_key: (u64, u32),
    /// Last key: offset into the key heap and length.
    pub last_key: (u64, u32),
}

impl IndexEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.msg_offset.to_le_bytes());
        out.extend_from_slice(&self.meta_len.to_le_bytes());
        out.extend_from_slice(&self.row_count.to_le_bytes());
        out.extend_from_slice(&self.body_len.to_le_bytes());
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.min_version.to_le_bytes());
        out.extend_from_slice(&self.max_version.to_le_bytes());
        out.extend_from_slice(&self.first_key.0.to_le_bytes());
        out.extend_from_slice(&self.first_key.1.to_le_bytes());
        out.extend_from_slice(&self.last_key.1.to_le_bytes());
        out.extend_from_slice(&self.last_key.0.to_le_bytes());
    }

    fn decode(b: &[u8]) -> IndexEntry {
        IndexEntry {
            msg_offset: u64_at(b, 0),
            meta_len: u32_at(b, 8),
            row_count: u32_at(b, 12),
            body_len: u64_at(b, 16),
            crc: u32_at(b, 24),
            min_version: u64_at(b, 32),
            max_version: u64_at(b, 40),
            first_key: (u64_at(b, 48), u32_at(b, 56)),
            last_key: (u64_at(b, 64), u32_at(b, 60)),
        }
    }
}

/// Everything the private region holds, decoded.
#[derive(Debug)]
pub struct Private {
    /// Compression codec id of the blocks.
    pub codec: u32,
    /// Total entries in the run.
    pub entry_count: u64,
    /// Tombstones among them.
    pub tombstone_count: u64,
    /// Smallest version in the run.
    pub min_version: u64,
    /// Largest version in the run.
    pub max_version: u64,
    /// The block index.
    pub entries: Vec<IndexEntry>,
    /// First and last keys of all blocks.
    pub heap: Vec<u8>,
    /// The bloom filter over key fingerprints; its kind follows the format version.
    pub filter: RunFilter,
}

impl Private {
    /// A key of the heap; callers pass entries that [`decode`] validated.
    pub fn key(&self, at: (u64, u32)) -> &[u8] {
        &self.heap[at.0 as usize..at.0 as usize + at.1 as usize]
    }
}

/// A stable 64-bit fingerprint of a user key: FNV-1a 64 followed by the MurmurHash3 fmix64
/// finalizer. Bloom filters store fingerprints, not keys, so their bit positions depend
/// only on this function and the filter's own rule (`filter`).
pub fn fingerprint(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= key.len() as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Serializes the private region.
pub fn encode(p: &Private) -> Vec<u8> {
    let index_len = p.entries.len() * ENTRY_LEN;
    let heap_off = (HEADER_LEN + index_len) as u64;
    let bloom = p.filter.encode();
    let bloom_off = heap_off + p.heap.len() as u64;
    let mut out = Vec::with_capacity(bloom_off as usize + bloom.len());
    out.extend_from_slice(&p.filter.format().to_le_bytes());
    out.extend_from_slice(&p.codec.to_le_bytes());
    out.extend_from_slice(&p.entry_count.to_le_bytes());
    out.extend_from_slice(&(p.entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
    out.extend_from_slice(&p.min_version.to_le_bytes());
    out.extend_from_slice(&p.max_version.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    out.extend_from_slice(&heap_off.to_le_bytes());
    out.extend_from_slice(&(p.heap.len() as u64).to_le_bytes());
    out.extend_from_slice(&bloom_off.to_le_bytes());
    out.extend_from_slice(&(bloom.len() as u64).to_le_bytes());
    out.extend_from_slice(&p.tombstone_count.to_le_bytes());
    out.resize(HEADER_LEN, 0);
    for e in &p.entries {
        e.encode(&mut out);
    }
    out.extend_from_slice(&p.heap);
    out.extend_from_slice(&bloom);
    // Zero padding so that the tail and the footer start 8-byte aligned.
    out.resize(out.len().div_ceil(8) * 8, 0);
    out
}

fn range(b: &[u8], off: u64, len: u64, what: &str) -> Result<std::ops::Range<usize>, String> {
    let end = off
        .checked_add(len)
        .filter(|&e| e <= b.len() as u64)
        .ok_or_else(|| format!("{what} out of bounds"))?;
    Ok(off as usize..end as usize)
}

/// Parses the private region of a run of `format` (the tail's version, which the region's
/// header must repeat), whose CRC was already verified. `data_end` is the file offset where
/// block messages must end (the EOS marker). Errors are `(offset within region, reason)`.
pub fn decode(b: &[u8], format: u32, data_end: u64) -> Result<Private, (u64, String)> {
    if b.len() < HEADER_LEN {
        return Err((0, "private region shorter than its header".into()));
    }
    let version = u32_at(b, 0);
    if version != format {
        return Err((
            0,
            format!("private region version {version} in a run of format {format}"),
        ));
    }
    let codec = u32_at(b, 4);
    if codec != CODEC_NONE && codec != CODEC_ZSTD {
        return Err((4, format!("unknown codec {codec}")));
    }
    let entry_count = u64_at(b, 8);
    let tombstone_count = u64_at(b, 80);
    if tombstone_count > entry_count {
        return Err((80, "more tombstones than entries".into()));
    }
    let block_count = u32_at(b, 16) as u64;
    if u32_at(b, 20) as usize != ENTRY_LEN {
        return Err((20, "unexpected index entry size".into()));
    }
    let min_version = u64_at(b, 24);
    let max_version = u64_at(b, 32);
    let index = range(
        b,
        u64_at(b, 40),
        block_count * ENTRY_LEN as u64,
        "block index",
    )
    .map_err(|r| (40, r))?;
    let heap = range(b, u64_at(b, 48), u64_at(b, 56), "key heap").map_err(|r| (48, r))?;
    let bloom = range(b, u64_at(b, 64), u64_at(b, 72), "bloom filter").map_err(|r| (64, r))?;
    if block_count == 0 || entry_count == 0 {
        return Err((8, "run has no entries".into()));
    }
    let heap_bytes = b[heap.clone()].to_vec();
    let mut entries = Vec::with_capacity(block_count as usize);
    let mut next_msg = 0u64;
    let mut rows = 0u64;
    for i in 0..block_count as usize {
        let at = index.start + i * ENTRY_LEN;
        let e = IndexEntry::decode(&b[at..at + ENTRY_LEN]);
        let bad = |r: &str| (at as u64, format!("index entry {i}: {r}"));
        let end = e
            .msg_offset
            .checked_add(u64::from(e.meta_len))
            .and_then(|x| x.checked_add(e.body_len));
        if e.msg_offset < next_msg || end.is_none_or(|x| x > data_end) {
            return Err(bad("message out of bounds or out of order"));
        }
        if e.meta_len < 8 || e.row_count == 0 || e.min_version > e.max_version {
            return Err(bad("bad lengths or versions"));
        }
        for k in [e.first_key, e.last_key] {
            range(&heap_bytes, k.0, u64::from(k.1), "key").map_err(|r| bad(&r))?;
        }
        next_msg = end.unwrap_or(u64::MAX);
        rows += u64::from(e.row_count);
        entries.push(e);
    }
    if rows != entry_count {
        return Err((8, "entry count disagrees with the index row counts".into()));
    }
    let filter =
        RunFilter::decode(format, &b[bloom.clone()]).map_err(|r| (bloom.start as u64, r))?;
    Ok(Private {
        codec,
        entry_count,
        tombstone_count,
        min_version,
        max_version,
        entries,
        heap: heap_bytes,
        filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable() {
        // Pinned: changing the function breaks the bloom filters of existing runs.
        assert_eq!(fingerprint(b"chronokv"), 0xf264_bcfd_5da1_6463);
        assert_eq!(fingerprint(b""), 0xefd0_1f60_ba99_2926);
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
    }

    #[test]
    fn private_round_trip() {
        let filter = RunFilter::build(&[fingerprint(b"a"), fingerprint(b"b")], 0.01).unwrap();
        let p = Private {
            codec: CODEC_NONE,
            entry_count: 3,
            tombstone_count: 1,
            min_version: 1,
            max_version: 9,
            entries: vec![IndexEntry {
                msg_offset: 128,
                meta_len: 184,
                row_count: 3,
                body_len: 320,
                crc: 42,
                min_version: 1,
                max_version: 9,
                first_key: (0, 1),
                last_key: (1, 1),
            }],
            heap: b"ab".to_vec(),
            filter,
        };
        let bytes = encode(&p);
        assert_eq!(u32_at(&bytes, 0), 3, "written as format 3");
        let q = decode(&bytes, 3, 10_000).unwrap();
        assert_eq!(q.entries, p.entries);
        assert_eq!(q.tombstone_count, 1);
        assert_eq!(q.key(q.entries[0].last_key), b"b");
        assert!(q.filter.contains_fingerprint(fingerprint(b"a")));
        assert!(decode(&bytes, 3, 100).is_err());
        // The header's version must be the tail's: a format 3 region is not read as 2.
        assert!(decode(&bytes, 2, 10_000).is_err());
    }
}
