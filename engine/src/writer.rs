//! The writer state: the commit queue, the WAL segment being written with the last
//! version and time handed out, and the visible version. Commits change it (`commit`),
//! sealing a memtable rotates its segment (`Inner::seal_memtable`), `Db::close` syncs it.

use crate::lock_order::{Guard, Level, OrderedMutex};
use crate::queue::CommitQueue;
use chronokv_snapshot::Version;
use chronokv_wal::SegmentWriter;
use std::sync::atomic::{AtomicU64, Ordering};

/// The WAL segment being written and the last version handed out. Held by the commit
/// leader for the whole group, and by `flush` to seal the memtable.
pub struct WalState {
    pub writer: SegmentWriter,
    pub last_version: u64,
    /// The last commit's time (µs); the next commit's is never smaller.
    pub last_time: u64,
}

pub struct Writer {
    queue: CommitQueue,
    wal: OrderedMutex<WalState>,
    /// Every version up to this one is committed and readable.
    visible: AtomicU64,
}

impl Writer {
    pub fn new(wal: WalState) -> Writer {
        Writer {
            queue: CommitQueue::default(),
            visible: AtomicU64::new(wal.last_version),
            wal: OrderedMutex::new(Level::Wal, wal),
        }
    }

    /// Writers waiting to commit; the leader of a group takes [`Writer::lock_wal`].
    pub fn queue(&self) -> &CommitQueue {
        &self.queue
    }

    pub fn lock_wal(&self) -> Guard<'_, WalState> {
        self.wal.lock()
    }

    /// The newest version readers may see.
    pub fn visible(&self) -> Version {
        Version(self.visible.load(Ordering::Acquire))
    }

    /// Makes every version up to `version` visible; versions only grow.
    pub fn publish(&self, version: Version) {
        debug_assert!(version >= self.visible(), "published versions only grow");
        self.visible.store(version.0, Ordering::Release);
    }
}
