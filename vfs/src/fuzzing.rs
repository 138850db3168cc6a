//! Fuzz builds only (`cfg(fuzzing)`, set by cargo-fuzz): a switch that makes the WAL,
//! manifest and run decoders accept any checksum, so the fuzzer reaches the decoders behind
//! them. It lives here because `vfs` is the one crate below both `wal` and `runs`.
//!
//! Off unless a fuzz target turns it on; the `wal_segment_crc` target keeps it off, so the
//! checksum checks themselves are fuzzed too. Never compiled into a normal build.

use std::sync::atomic::{AtomicBool, Ordering};

static SKIP_CHECKSUMS: AtomicBool = AtomicBool::new(false);

/// Turns the checksum bypass on or off for the whole process.
pub fn skip_checksums(on: bool) {
    SKIP_CHECKSUMS.store(on, Ordering::Relaxed);
}

/// True while checksum comparisons are bypassed.
pub fn checksums_skipped() -> bool {
    SKIP_CHECKSUMS.load(Ordering::Relaxed)
}
