//! Failure behaviour: backpressure instead of errors, and fail-stop after an I/O error.

mod common;

use chronokv::vfs::{FaultFs, MemFs};
use chronokv::{Db, Error, Options};
use std::sync::Arc;

#[test]
fn a_failed_wal_write_poisons_writes_but_not_reads_and_reopen_recovers() {
    let fs = FaultFs::new(Arc::new(MemFs::new()));
    let opts = || Options {
        vfs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let db = Db::open("/db", opts()).unwrap();
    db.put("before", "1").unwrap();
    fs.fail_writes(true);
    let err = db.put("during", "2").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    fs.fail_writes(false);
    // Fail-stop: even though the disk works again, nothing more is acknowledged.
    let err = db.put("after", "3").unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert!(err.to_string().contains("injected EIO"), "{err}");
    assert_eq!(db.get("before").unwrap().unwrap(), "1");
    assert_eq!(
        db.get("during").unwrap(),
        None,
        "a failed write must not become visible"
    );
    drop(db);
    let db = Db::open("/db", opts()).unwrap();
    assert_eq!(db.get("before").unwrap().unwrap(), "1");
    assert_eq!(db.get("during").unwrap(), None);
    db.put("after", "3").unwrap();
}

#[test]
fn writers_wait_for_flushes_instead_of_failing() {
    let fs = MemFs::new();
    let opts = Options {
        max_immutable_memtables: 1,
        ..common::mem_options(&fs, 2 << 10)
    };
    let db = Arc::new(Db::open("/db", opts).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..1500u32 {
                    db.put(format!("{t}-{i:05}"), [b'v'; 64]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(db.scan::<&str, _>(..).count(), 6000);
    // Count flushes, not run files: compaction merges the runs as they arrive.
    let flushes = db.stats().flushes;
    assert!(flushes > 10, "expected many flushes, saw {flushes}");
}
