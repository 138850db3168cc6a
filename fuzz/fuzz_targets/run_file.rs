//! A run file: open, verify, lookups, iteration from both ends; checksums bypassed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: chronokv_vfs::fuzzing::skip_checksums(true),
    |data: &[u8]| chronokv_harness::fuzz_targets::run_file(data)
);
