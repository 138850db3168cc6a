//! Group commit: the leader's work.
//!
//! Writers queue up in the [`CommitQueue`](crate::queue::CommitQueue); the leader takes
//! every batch queued behind it and, for the whole group, does one WAL write and at most
//! one fsync, assigns consecutive versions, inserts into the memtable and publishes the new
//! visible version. Only one leader runs at a time, so versions are published in order and
//! a batch becomes visible all at once.
//!
//! A transaction's batch carries a [`TxnCheck`]: the leader validates it against the
//! conflict tracker right before assigning versions, in commit order, so the check sees
//! every commit before it, those earlier in the same group included. While transactions
//! are open the leader records every batch's keys in the tracker (see
//! `chronokv_snapshot::conflict`, and `txn` for why a transaction may have to wait).

use crate::apply::insert_entries;
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::invariants::invariant;
use crate::options::Durability;
use crate::queue::{Request, Slot, TxnCheck};
use crate::stats::Counters;
use chronokv_snapshot::{to_commit_time, Version};
use chronokv_wal::RecordRef;
use std::time::{SystemTime, UNIX_EPOCH};

/// Commits `batch` through the commit queue and returns the version of its last entry.
/// Refuses an invalid batch (`InvalidArgument`), a poisoned store and a closed one before
/// the batch queues.
pub fn commit(
    inner: &Inner,
    batch: WriteBatch,
    durability: Durability,
    check: Option<TxnCheck>,
) -> Result<Version> {
    batch.validate()?;
    inner.check_open()?;
    inner.check_writable()?;
    let request = Request {
        batch,
        sync: durability == Durability::Sync,
        check,
    };
    inner.writer().queue().submit(request, &mut |group, bytes| {
        inner
            .throttle(bytes)
            .and_then(|()| commit_group(inner, group))
    })
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Logs, applies and publishes one group; records each batch's version, or its conflict,
/// in its slot.
fn commit_group(inner: &Inner, group: &[&Slot]) -> Result<()> {
    let mut wal = inner.writer().lock_wal();
    // Under the WAL lock, which `Db::close` takes to make its last sync: nothing is
    // appended after it.
    inner.check_open()?;
    inner.check_writable()?;
    let mut mem = inner.current_view().active.clone();
    if mem.approx_bytes() >= inner.opts().memtable_size {
        inner.seal_memtable(&mut wal)?;
        mem = inner.current_view().active.clone();
    }
    // Commit times never go back, even if the clock does (see `chronokv_snapshot::time`).
    let micros = to_commit_time(now_micros()).max(wal.last_time);
    let mut next = wal.last_version + 1;
    let mut unrecorded = false;
    let mut any = false;
    {
        let mut txns = inner.txns().lock();
        for slot in group {
            // Planted bug (G6): commit a transaction without its conflict check.
            let check = slot
                .check
                .as_ref()
                .filter(|_| !chronokv_vfs::bug!("txn-skips-validation"));
            if let Some(Err(conflict)) = check.map(|c| c.validate(&txns)) {
                slot.set_outcome(Err(conflict));
                continue;
            }
            let count = u64::from(slot.batch.entries.count());
            if count > 0 {
                any = true;
                let last = Version(next + count - 1);
                if txns.is_tracking() {
                    txns.record(last, slot.batch.keys());
                } else {
                    txns.skip(last);
                    unrecorded = true;
                }
            }
            next += count;
            slot.set_outcome(Ok(Version(next - 1)));
        }
    }
    if !any {
        return Ok(());
    }
    // The group's records: every batch with entries that passed its check, in order.
    let records = group.iter().filter_map(|slot| {
        let count = u64::from(slot.batch.entries.count());
        let last = slot.committed().filter(|_| count > 0)?;
        Some(RecordRef {
            first_version: Version(last.0 + 1 - count),
            commit_micros: micros,
            entries: &slot.batch.entries,
        })
    });
    // Present: `check_writable` above refused a read-only store.
    let segment = wal.segment()?;
    let wal_before = segment.len();
    let logged = segment.append_all(records.clone()).and_then(|()| {
        // Planted bug (G6): acknowledge a `Sync` group without fsyncing the WAL.
        if group.iter().any(|s| s.sync) && !chronokv_vfs::bug!("commit-skips-wal-sync") {
            segment.sync()
        } else {
            Ok(())
        }
    });
    if let Err(e) = logged {
        // Every batch met the WAL's limits before it queued (`WriteBatch` bounds its size
        // and refuses oversized entries), so a caller's mistake never gets here: this is a
        // failed write or sync of the device (or a broken engine invariant), and nothing
        // more may be acknowledged.
        let e = Error::from(e);
        inner.poison(&e);
        // The group's versions will never be visible: transactions waiting for them to be
        // may begin.
        inner
            .txns()
            .lock()
            .abandon_unrecorded(Version(wal.last_version));
        inner.txns().wake_beginners();
        return Err(e);
    }
    Counters::add(
        &inner.counters().wal_bytes,
        wal.segment()?.len().saturating_sub(wal_before),
    );
    let mut user_bytes = 0u64;
    for r in records {
        let inserted = insert_entries(&mem, r.entries.iter(), r.first_version, micros, Version(0));
        // The WAL encoder produced these bytes a moment ago; they always decode.
        debug_assert!(
            inserted.is_ok(),
            "a batch encoded by this process failed to decode"
        );
        user_bytes += inserted.unwrap_or(0);
    }
    Counters::add(&inner.counters().user_bytes, user_bytes);
    // The index learns the group's time before its versions become visible, so an "as of
    // time" read never resolves to a version it cannot date. Marks always follow the last
    // one here (versions and times only grow), so recording cannot fail.
    let _ = inner.times().record(Version(wal.last_version + 1), micros);
    invariant!(
        next - 1 > wal.last_version,
        "a group published {} after {}",
        next - 1,
        wal.last_version
    );
    wal.last_time = micros;
    wal.last_version = next - 1;
    inner.writer().publish(Version(next - 1));
    if unrecorded {
        // Under the tracker's lock, so a transaction checking `visible` cannot miss it.
        let _txns = inner.txns().lock();
        inner.txns().wake_beginners();
    }
    Ok(())
}
