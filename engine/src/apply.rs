//! Applying a logged record to a memtable: the one loop that both the commit path and
//! recovery run (LevelDB's `WriteBatchInternal::InsertInto` serves both the same way), so a
//! replayed record lands in the memtable exactly as it did when it was committed.

use crate::invariants::invariant;
use crate::memtable::Memtable;
use chronokv_snapshot::Version;
use chronokv_wal::EntryIter;

/// Inserts a record's entries into `mem`: entry `i` gets version `first + i` and the
/// record's commit `time`; entries below `from` (already in a run) are skipped. Returns the
/// key and value bytes inserted, or the first entry that does not decode (a record that
/// passed the WAL reader's checks never has one).
pub fn insert_entries(
    mem: &Memtable,
    entries: EntryIter<'_>,
    first: Version,
    time: u64,
    from: Version,
) -> Result<u64, chronokv_wal::Error> {
    let mut user_bytes = 0u64;
    for (i, entry) in entries.enumerate() {
        let (kind, key, value) = entry?;
        let version = Version(first.0 + i as u64);
        if version < from {
            continue;
        }
        invariant!(
            mem.is_empty() || version > mem.max_version(),
            "memtable insert of {version} after {}",
            mem.max_version()
        );
        user_bytes += (key.len() + value.len()) as u64;
        mem.insert(key, version, time, kind, value);
    }
    Ok(user_bytes)
}
