//! A backup metadata file, decoded and then listed, verified and restored by a
//! `BackupEngine`; checksums bypassed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: chronokv_vfs::fuzzing::skip_checksums(true),
    |data: &[u8]| chronokv_harness::fuzz_targets::backup_meta(data)
);
