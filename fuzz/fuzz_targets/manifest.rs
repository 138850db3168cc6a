//! A manifest file and a bare version edit; checksums bypassed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: chronokv_vfs::fuzzing::skip_checksums(true),
    |data: &[u8]| chronokv_harness::fuzz_targets::manifest(data)
);
