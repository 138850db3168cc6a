//! chronokv run files: immutable sorted runs stored as standard Arrow IPC files.
//!
//! A run holds versioned entries `(key, version, kind, value)` in internal order (key
//! ascending, version descending) as Arrow record batches ("blocks") of the schema
//! `key: Binary, version: UInt64, kind: UInt8, value: Binary`. Any Arrow reader can open a
//! run as an IPC file, or as an IPC stream after the first 8 bytes. Between the
//! end-of-stream marker and the footer sits a private region that Arrow readers ignore:
//! run properties, a block index and a bloom filter, located through a fixed-size tail just
//! before the footer. The byte layout is documented in `docs/format/run.md`.
//!
//! - [`RunWriter`] writes a run durably (temp file, sync, rename, directory sync).
//! - [`RunReader`] maps a run, verifies its checksums, and serves [`RunReader::get`],
//!   [`RunReader::range`] and [`RunReader::verify`].
//! - [`BlockCache`] caches decoded blocks of all runs of a database, bounded by bytes.
//!
//! All file I/O goes through [`chronokv_vfs::Vfs`].

#![warn(missing_docs)]

mod block;
mod cache;
mod error;
mod filter;
pub mod framing;
mod index;
mod inspect;
mod plain;
mod prefix;
mod reader;
mod writer;

pub use cache::BlockCache;
pub use error::Error;
pub use filter::KeyHash;
pub use inspect::{BlockInfo, FilterInfo, RunLayout};
pub use reader::{RunIter, RunReader};
pub use writer::{Compression, RunMeta, RunWriter, RunWriterOptions};

#[cfg(test)]
mod tests;
