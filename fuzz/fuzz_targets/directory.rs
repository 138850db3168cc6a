//! Structure-aware whole-directory target: a database built from an op script, one file
//! flipped, truncated, overwritten, zeroed, extended or removed, then reopened and read;
//! checksums bypassed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: chronokv_vfs::fuzzing::skip_checksums(true),
    |data: &[u8]| chronokv_harness::fuzz_targets::directory(data)
);
