//! Size limits are the caller's business: a key, value, batch or transaction over its bound
//! is refused with `InvalidArgument` before anything is logged, nothing of it is applied,
//! and the next write works (a caller's mistake never poisons the store).

use chronokv::{Db, Error, Options, TransactionOptions, WriteBatch};
use std::path::Path;

const MAX_KEY: usize = 64 << 10;
const MAX_VALUE: usize = 256 << 20;

fn open(dir: &Path) -> Db {
    Db::open(dir, Options::default()).unwrap()
}

fn assert_invalid(result: chronokv::Result<impl std::fmt::Debug>, what: &str) {
    match result {
        Err(Error::InvalidArgument(why)) => assert!(why.contains(what), "{why}"),
        other => panic!("expected InvalidArgument mentioning {what:?}, got {other:?}"),
    }
}

/// The store still takes, logs and reopens with a write after a refused one.
fn assert_still_writable(db: Db, dir: &Path) {
    let v = db.put("after", "works").unwrap();
    db.close().unwrap();
    let db = open(dir);
    assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"works"[..]));
    assert_eq!(db.latest_version(), v);
}

#[test]
fn an_oversized_key_is_refused_and_the_store_stays_writable() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let key = vec![b'k'; MAX_KEY + 1];
    assert_invalid(db.put(&key, "v"), "key of 65537 bytes");
    assert_invalid(db.delete(&key), "key of 65537 bytes");
    let mut tx = db.begin();
    assert_invalid(tx.put(&key, "v"), "key of 65537 bytes");
    drop(tx);
    assert_still_writable(db, dir.path());
}

#[test]
fn an_oversized_value_is_refused_and_the_store_stays_writable() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let value = vec![0u8; MAX_VALUE + 1];
    assert_invalid(db.put("k", &value), "value of 268435457 bytes");
    let mut tx = db.begin();
    assert_invalid(tx.put("k", &value), "value of 268435457 bytes");
    drop(tx);
    assert_eq!(db.get("k").unwrap(), None);
    assert_still_writable(db, dir.path());
}

#[test]
fn a_batch_over_its_chosen_bound_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut batch = WriteBatch::with_max_bytes(1 << 20);
    assert_eq!(batch.max_bytes(), 1 << 20);
    // Each entry costs 9 + 2 + 100_000 bytes: ten fit in 1 MiB, the eleventh does not.
    for i in 0..11 {
        batch.put(format!("{i:02}"), vec![b'v'; 100_000]);
    }
    assert_eq!(batch.len(), 10, "the entry past the bound is not added");
    assert_invalid(db.write(batch), "exceeds the 1048576-byte limit");
    assert_eq!(db.get("00").unwrap(), None, "nothing of the batch applied");
    assert_eq!(
        WriteBatch::with_max_bytes(usize::MAX).max_bytes(),
        WriteBatch::MAX_BYTES
    );
    assert_still_writable(db, dir.path());
}

/// The reported case: values that are each allowed, in one batch larger than a WAL record
/// can carry. It was refused by the WAL writer as an I/O error that poisoned the store.
#[test]
fn a_batch_larger_than_a_wal_record_is_refused_and_does_not_poison() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let value = vec![7u8; MAX_VALUE];
    let mut batch = WriteBatch::new();
    // Three values of 256 MiB fit under the 1 GiB record; the fourth does not.
    for key in ["a", "b", "c", "d"] {
        batch.put(key, &value);
    }
    drop(value);
    assert_eq!(batch.len(), 3);
    assert_invalid(db.write(batch), "batch of");
    assert_eq!(db.get("a").unwrap(), None);
    assert_still_writable(db, dir.path());
}

#[test]
fn a_transaction_over_its_bound_refuses_the_write_and_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.put("seen", "0").unwrap();
    let mut tx = db.begin_with(TransactionOptions {
        max_write_bytes: Some(1 << 20),
        ..TransactionOptions::default()
    });
    tx.get("seen").unwrap();
    for i in 0..10 {
        tx.put(format!("{i:02}"), vec![b'v'; 100_000]).unwrap();
    }
    // Overwriting a buffered key replaces its entry: the total does not grow.
    tx.put("00", vec![b'w'; 100_000]).unwrap();
    assert_invalid(tx.put("10", vec![b'v'; 100_000]), "transaction of");
    assert_eq!(
        tx.get("10").unwrap(),
        None,
        "the refused write is not buffered"
    );
    // A smaller write still fits, and the transaction commits what it buffered.
    tx.delete("seen").unwrap();
    let v = tx.commit().unwrap();
    assert_eq!(db.get("00").unwrap().unwrap()[0], b'w');
    assert_eq!(db.get("09").unwrap().map(|v| v.len()), Some(100_000));
    assert_eq!(db.get("10").unwrap(), None);
    assert_eq!(db.get("seen").unwrap(), None);
    assert_eq!(db.latest_version(), v);
    assert_still_writable(db, dir.path());
}

/// Every test run checks the engine's invariants (the dev-dependency turns the feature on);
/// without it the checks in `engine/src/invariants.rs` would silently be off.
#[test]
fn tests_run_with_the_engines_invariant_checks() {
    assert!(chronokv_engine::internals::invariants_checked());
}
