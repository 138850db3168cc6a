//! A WAL segment read in every recovery mode, with checksums checked: the one target that
//! fuzzes the checksum checks themselves (and the torn-tail scan over real checksums).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chronokv_harness::fuzz_targets::wal_segment(data));
