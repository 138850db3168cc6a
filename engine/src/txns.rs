//! Open transactions: the conflict tracker (what was written since the oldest open
//! transaction began) and the wait of a transaction that may not begin yet (see `txn`).

use crate::lock_order::{Guard, Level, OrderedMutex};
use chronokv_snapshot::ConflictTracker;
use parking_lot::Condvar;

pub struct OpenTxns {
    /// Taken after `wal` by the commit leader, before `readers` by `Db::begin`.
    tracker: OrderedMutex<ConflictTracker>,
    /// Wakes transactions waiting to begin until an unrecorded commit is visible.
    begin: Condvar,
}

impl OpenTxns {
    pub fn new(conflict_memory: usize) -> OpenTxns {
        OpenTxns {
            tracker: OrderedMutex::new(Level::Txns, ConflictTracker::new(conflict_memory)),
            begin: Condvar::new(),
        }
    }

    pub fn lock(&self) -> Guard<'_, ConflictTracker> {
        self.tracker.lock()
    }

    /// Waits until a commit is published or abandoned.
    pub fn wait_to_begin(&self, tracker: &mut Guard<'_, ConflictTracker>) {
        tracker.wait(&self.begin);
    }

    /// Wakes the transactions waiting to begin.
    pub fn wake_beginners(&self) {
        self.begin.notify_all();
    }
}
