//! The write-ahead log of chronokv.
//!
//! Every committed batch is appended to the current WAL *segment* before it becomes
//! visible, so a crash loses nothing that was acknowledged as durable. This crate owns the
//! segment format (specified byte by byte in `docs/format/wal.md`) and its two sides:
//!
//! Format v2 is written; v1 segments (written before it) are still read, their entries
//! converted to the v2 encoding, so callers see one encoding.
//!
//! - Writing: [`BatchEntries`] encodes a batch's entries; [`SegmentWriter`] appends one
//!   checksummed frame per batch, a whole commit group in a single write, and fsyncs on
//!   request. Each frame records how much of the segment was known fsynced when it was
//!   written (`durable_offset`). The writer refuses records the reader would reject
//!   (oversized frames, non-contiguous versions) and is poisoned by any I/O failure.
//! - Reading: [`read_segment`] validates a whole segment up front (checksums, log number,
//!   every entry's lengths, version contiguity) and returns its valid [`Record`]s. Where the
//!   bytes stop being valid, the [`RecoveryMode`] decides: a *torn tail* (damage in the
//!   newest segment that only touches data no later frame claims was fsynced) is tolerated
//!   and reported as [`Damage`]; anything else is [`Error::Corruption`].
//!
//! Contract with the engine: segments are named by [`segment_file_name`] and numbered by the
//! engine; versions are contiguous within a segment (the engine checks them across
//! segments, e.g. with [`Record::next_version`]); records returned by [`read_segment`] have
//! valid entries, so [`Record::entries`] never yields an error. All I/O goes through
//! [`chronokv_vfs::Vfs`]. Decoding never panics and never allocates from an unchecked
//! length, whatever the file holds.

#![warn(missing_docs)]

mod batch;
pub mod envelope;
mod error;
mod frame;
mod header;
mod reader;
mod v1;
mod varint;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v1;

pub use batch::{check_entry_lens, BatchEntries, EntryIter};
pub use error::Error;
pub use reader::{read_segment, Damage, Record, RecoveryMode, SegmentContents};
pub use writer::{RecordRef, SegmentWriter};

/// The largest key a WAL entry can hold, in bytes.
pub const MAX_KEY_LEN: usize = 65536;
/// The largest value a WAL entry can hold, in bytes (256 MiB).
pub const MAX_VALUE_LEN: usize = 1 << 28;
/// The largest frame payload (`len`), in bytes (1 GiB).
pub const MAX_FRAME_LEN: usize = 1 << 30;
/// The largest encoded batch ([`BatchEntries::encoded_len`]) one record can carry: a frame
/// payload less its longest header. Callers check a batch against it before committing,
/// since a larger one can never be logged.
pub const MAX_BATCH_BYTES: usize = MAX_FRAME_LEN - frame::MAX_PAYLOAD_HEADER_LEN;

/// The bytes an entry with a key and value of these lengths adds to a batch's encoding:
/// the key and value, a kind byte and the two lengths as varints (3 bytes of header for
/// lengths below 128).
pub const fn entry_encoded_len(key_len: usize, value_len: usize) -> usize {
    batch::encoded_len(key_len, value_len)
}

/// The file name of segment `log_number`: at least six decimal digits, then `.wal`
/// (`000007.wal`, `1234567.wal`).
pub fn segment_file_name(log_number: u64) -> String {
    format!("{log_number:06}.wal")
}

/// The log number of a segment file name, or `None` if `name` is not exactly what
/// [`segment_file_name`] produces for some number.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (segment_file_name(n) == name).then_some(n)
}
