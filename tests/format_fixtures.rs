//! Committed files made by earlier code still read back byte for byte: the run files of
//! `tests/fixtures/v1-store` (written before manifest format 2). Their bloom filters are the
//! serialized form of the `bloomfilter` crate with its hashing (docs/format/run.md), which is
//! why the workspace pins that crate exactly: if a new release hashed differently, every key
//! of these runs would be reported missing from its filter here, and point reads of old
//! stores would miss.

use chronokv::vfs::RealFs;
use chronokv_runs::{BlockCache, RunReader};
use std::path::Path;

#[test]
fn the_committed_runs_pass_verify_with_every_key_in_its_bloom_filter() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store");
    let mut runs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "arrow") {
            continue;
        }
        let id: u64 = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        let reader = RunReader::open(&RealFs, &path, id, BlockCache::new(1 << 20)).unwrap();
        assert!(reader.meta().entry_count > 0, "{}", path.display());
        let problems = reader.verify();
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        runs += 1;
    }
    assert_eq!(runs, 3, "the fixture holds three runs");
}
