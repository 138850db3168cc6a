//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! bodies (`chronokv_harness::fuzz_targets`), on stable and without cargo-fuzz, so every
//! `cargo test` runs each seed and each crash reproducer committed there.
//!
//! Checksums are always checked here (the bypass exists only in fuzz builds), so an input
//! that reached a decoder only through the bypass stops at the checksum in this replay; the
//! decoder bugs fuzzing found are pinned by unit tests beside the decoders.

use chronokv_harness::fuzz_targets::{run, TARGETS};
use std::path::Path;

#[test]
fn every_committed_corpus_input_runs_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for target in TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        files.sort();
        assert!(
            files.len() >= 8,
            "{target}: only {} corpus files in {}",
            files.len(),
            dir.display()
        );
        for file in files {
            let data = std::fs::read(&file).expect("read corpus file");
            run(target, &data);
        }
    }
}
