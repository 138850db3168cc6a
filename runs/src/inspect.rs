//! What inspection tools (the `chronokv` CLI's `dump-run`, verification) may see of a run's
//! private region: the codec and the block index, decoded. Read-only and cheap: it copies
//! what [`crate::RunReader::open`] already decoded and checksummed.

use crate::filter::RunFilter;
use crate::index::{Private, CODEC_ZSTD};

/// One block's entry in a run's block index (`docs/format/run.md`, "Index entry").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockInfo {
    /// File offset of the block's IPC message (its continuation token).
    pub offset: u64,
    /// Metadata length including the 8-byte prefix and padding.
    pub meta_len: u32,
    /// Body length.
    pub body_len: u64,
    /// Rows (entries) in the block.
    pub rows: u32,
    /// CRC-32 of the whole message, as the index records it.
    pub crc: u32,
    /// Smallest version in the block.
    pub min_version: u64,
    /// Largest version in the block.
    pub max_version: u64,
    /// The block's first key.
    pub first_key: Vec<u8>,
    /// The block's last key.
    pub last_key: Vec<u8>,
}

/// A run's bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterInfo {
    /// `"blocked"` (format 3: one 512-bit block per key) or `"standard"` (format 2: the
    /// `bloomfilter` crate's).
    pub kind: &'static str,
    /// Bits set per key.
    pub probes: u32,
    /// Serialized size in bytes.
    pub bytes: usize,
}

/// The format, codec, filter and block index of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunLayout {
    /// The run format version (`docs/format/run.md`).
    pub format: u32,
    /// Block body compression: `"none"` or `"zstd"`.
    pub codec: &'static str,
    /// The bloom filter.
    pub filter: FilterInfo,
    /// The blocks, in file (and key) order.
    pub blocks: Vec<BlockInfo>,
}

pub(crate) fn layout(private: &Private) -> RunLayout {
    let filter = &private.filter;
    RunLayout {
        format: filter.format(),
        filter: FilterInfo {
            kind: match filter {
                RunFilter::Blocked(_) => "blocked",
                RunFilter::Legacy(_) => "standard",
            },
            probes: filter.probes(),
            bytes: filter.encoded_len(),
        },
        codec: if private.codec == CODEC_ZSTD {
            "zstd"
        } else {
            "none"
        },
        blocks: private
            .entries
            .iter()
            .map(|e| BlockInfo {
                offset: e.msg_offset,
                meta_len: e.meta_len,
                body_len: e.body_len,
                rows: e.row_count,
                crc: e.crc,
                min_version: e.min_version,
                max_version: e.max_version,
                first_key: private.key(e.first_key).to_vec(),
                last_key: private.key(e.last_key).to_vec(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use crate::{BlockCache, RunReader, RunWriter, RunWriterOptions};
    use chronokv_snapshot::{Kind, Version};
    use chronokv_vfs::{MemFs, Vfs};
    use std::path::Path;
    use std::sync::Arc;

    #[test]
    fn layout_agrees_with_the_bytes_of_a_two_block_run() {
        // The run of docs/format/run.md's worked example: two blocks.
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = Path::new("/db/000001.run");
        let opts = RunWriterOptions {
            block_max_rows: 2,
            ..Default::default()
        };
        let mut w = RunWriter::create(Arc::new(fs.clone()), path, opts).unwrap();
        w.add(b"apple", Version(2), 2000, Kind::Put, b"red")
            .unwrap();
        w.add(b"apple", Version(1), 1000, Kind::Delete, b"")
            .unwrap();
        w.add(b"kiwi", Version(3), 3000, Kind::Put, b"green")
            .unwrap();
        w.finish().unwrap();
        let bytes = fs.read(path).unwrap();
        let r = RunReader::open(&fs, path, 1, BlockCache::new(1 << 20)).unwrap();
        let l = r.layout();
        assert_eq!(l.codec, "none");
        let b = &l.blocks;
        assert_eq!(b.len(), 2);
        for blk in b {
            let (start, end) = (
                blk.offset as usize,
                (blk.offset + u64::from(blk.meta_len) + blk.body_len) as usize,
            );
            assert_eq!(
                &bytes[start..start + 4],
                &[0xff; 4],
                "a message starts here"
            );
            assert_eq!(crc32fast::hash(&bytes[start..end]), blk.crc);
            assert_eq!(
                (blk.offset + u64::from(blk.meta_len)) % 64,
                0,
                "aligned body"
            );
        }
        assert_eq!(
            b[1].offset,
            b[0].offset + u64::from(b[0].meta_len) + b[0].body_len
        );
        assert_eq!((b[0].rows, b[0].min_version, b[0].max_version), (2, 1, 2));
        assert_eq!(
            (&b[0].first_key[..], &b[0].last_key[..]),
            (&b"apple"[..], &b"apple"[..])
        );
        assert_eq!((b[1].rows, b[1].min_version, b[1].max_version), (1, 3, 3));
        assert_eq!(
            (&b[1].first_key[..], &b[1].last_key[..]),
            (&b"kiwi"[..], &b"kiwi"[..])
        );
    }
}
