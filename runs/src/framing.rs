//! Arrow IPC framing: the fixed schema, encapsulated messages with 64-byte aligned bodies,
//! the end-of-stream marker, the standard footer and chronokv's private tail.
//!
//! `arrow_ipc::writer::FileWriter` is not used on purpose: it pads the leading magic to the
//! write alignment (which breaks stream readers that skip exactly 8 bytes) and it cannot
//! place bytes between the end-of-stream marker and the footer. This module frames the
//! messages `IpcDataGenerator` encodes and builds the footer with the generated flatbuffer
//! builders, all public arrow-ipc APIs.

use arrow_ipc::convert::{metadata_to_fb, IpcSchemaEncoder};
use arrow_ipc::{Block, FooterBuilder, MetadataVersion};
use arrow_schema::{DataType, Field, Metadata, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// The 8 bytes every run starts with: `ARROW1` plus two zero bytes (no extra padding).
pub const LEADING_MAGIC: &[u8; 8] = b"ARROW1\0\0";
/// The 6 bytes every Arrow IPC file ends with.
pub const TRAILING_MAGIC: &[u8; 6] = b"ARROW1";
/// The end-of-stream marker: continuation token plus a zero metadata length.
pub const EOS: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0];
/// The continuation token that starts every encapsulated message.
pub const CONTINUATION: [u8; 4] = [0xFF, 0xFF, 0xFF, 0xFF];
/// Message bodies start at file offsets that are multiples of this.
pub const BODY_ALIGN: u64 = 64;
/// The run format version written by this crate: 3, whose bloom filter is blocked
/// (cache-local). Format 2 differs only in its filter (the `bloomfilter` crate's); both are
/// read.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest run format this crate reads.
pub const MIN_FORMAT_VERSION: u32 = 2;
/// The magic that ends the private tail.
pub const TAIL_MAGIC: &[u8; 8] = b"CKVRUN01";
/// The size of the private tail in bytes.
pub const TAIL_LEN: usize = 40;

/// The run schema: `key: Binary, version: UInt64, kind: UInt8, value: Binary`, all
/// non-nullable, with the chronokv format and sort order in the schema metadata.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let fields = vec![
                Field::new("key", DataType::Binary, false),
                Field::new("version", DataType::UInt64, false),
                Field::new("kind", DataType::UInt8, false),
                Field::new("value", DataType::Binary, false),
                Field::new(
                    "time",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
            ];
            let meta = Metadata::from([
                ("chronokv.format", "2"),
                ("chronokv.sort", "key ASC, version DESC"),
            ]);
            Arc::new(Schema::new_with_metadata(fields, meta))
        })
        .clone()
}

/// The prefix of an encapsulated message that starts at file offset `pos`: continuation
/// token, metadata length, the flatbuffer, then zero padding so that the body starts at a
/// multiple of [`BODY_ALIGN`]. `pos` must be a multiple of 8. The returned length is the
/// footer `Block.metaDataLength` (prefix included).
pub fn message_prefix(pos: u64, flatbuffer: &[u8]) -> Vec<u8> {
    let unpadded = pos + 8 + flatbuffer.len() as u64;
    let end = unpadded.div_ceil(BODY_ALIGN) * BODY_ALIGN;
    let total = (end - pos) as usize;
    let meta_len = (total - 8) as i32;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&CONTINUATION);
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(flatbuffer);
    out.resize(total, 0);
    out
}

/// The standard Arrow footer flatbuffer: schema, record batch blocks and custom metadata.
pub fn footer(blocks: &[Block], custom: &Metadata) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let dictionaries = fbb.create_vector::<Block>(&[]);
    let record_batches = fbb.create_vector(blocks);
    let schema = IpcSchemaEncoder::new().schema_to_fb_offset(&mut fbb, &schema());
    let custom = metadata_to_fb(&mut fbb, custom);
    let mut b = FooterBuilder::new(&mut fbb);
    b.add_version(MetadataVersion::V5);
    b.add_schema(schema);
    b.add_dictionaries(dictionaries);
    b.add_recordBatches(record_batches);
    b.add_custom_metadata(custom);
    let root = b.finish();
    fbb.finish(root, None);
    fbb.finished_data().to_vec()
}

/// The private tail, placed immediately before the footer flatbuffer.
///
/// Layout (little-endian): `private_offset u64 | private_len u64 | private_crc u32 |
/// footer_crc u32 | format_version u32 | tail_crc u32 | magic [u8; 8]`, where `tail_crc`
/// is the CRC-32 of the first 28 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// File offset of the private region.
    pub private_offset: u64,
    /// Length of the private region.
    pub private_len: u64,
    /// CRC-32 of the private region.
    pub private_crc: u32,
    /// CRC-32 of the footer flatbuffer (the `footer_len` bytes after the tail).
    pub footer_crc: u32,
    /// The run format version.
    pub format_version: u32,
}

impl Tail {
    /// Serializes the tail.
    pub fn encode(&self) -> [u8; TAIL_LEN] {
        let mut out = [0u8; TAIL_LEN];
        out[0..8].copy_from_slice(&self.private_offset.to_le_bytes());
        out[8..16].copy_from_slice(&self.private_len.to_le_bytes());
        out[16..20].copy_from_slice(&self.private_crc.to_le_bytes());
        out[20..24].copy_from_slice(&self.footer_crc.to_le_bytes());
        out[24..28].copy_from_slice(&self.format_version.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out[32..40].copy_from_slice(TAIL_MAGIC);
        out
    }

    /// Parses and checks a tail; the error is a reason string.
    pub fn decode(b: &[u8]) -> Result<Tail, String> {
        if b.len() != TAIL_LEN {
            return Err("tail has the wrong size".into());
        }
        if &b[32..40] != TAIL_MAGIC {
            return Err("tail magic CKVRUN01 missing".into());
        }
        if !chronokv_vfs::checksum_accepts(u32_at(b, 28), crc32fast::hash(&b[0..28])) {
            return Err("tail checksum mismatch".into());
        }
        let tail = Tail {
            private_offset: u64_at(b, 0),
            private_len: u64_at(b, 8),
            private_crc: u32_at(b, 16),
            footer_crc: u32_at(b, 20),
            format_version: u32_at(b, 24),
        };
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&tail.format_version) {
            return Err(format!(
                "unsupported run format version {}",
                tail.format_version
            ));
        }
        Ok(tail)
    }
}

/// Reads a little-endian u32; the caller guarantees bounds.
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Reads a little-endian u64; the caller guarantees bounds.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_aligns_body() {
        for pos in [8u64, 64, 128, 4096] {
            for len in [0usize, 1, 55, 56, 57, 200] {
                let p = message_prefix(pos, &vec![1u8; len]);
                assert_eq!((pos + p.len() as u64) % BODY_ALIGN, 0);
                assert_eq!(
                    i32::from_le_bytes(p[4..8].try_into().unwrap()) as usize,
                    p.len() - 8
                );
            }
        }
    }

    #[test]
    fn tail_round_trip_and_checks() {
        let t = Tail {
            private_offset: 1234,
            private_len: 99,
            private_crc: 7,
            footer_crc: 8,
            format_version: FORMAT_VERSION,
        };
        let mut b = t.encode();
        assert_eq!(Tail::decode(&b).unwrap(), t);
        b[3] ^= 1;
        assert!(Tail::decode(&b).is_err());
    }
}
