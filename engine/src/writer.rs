//! The writer state: the commit queue, the WAL segment being written with the last
//! version and time handed out, and the visible version. Commits change it (`commit`),
//! sealing a memtable rotates its segment (`Inner::seal_memtable`), `Db::close` syncs it.
//!
//! It also owns the commit signal that change-feed subscribers (`feed::Subscription`)
//! sleep on. A commit pays one relaxed load of the waiter count for it, and takes the
//! signal's mutex only while someone waits. Why no wakeup is lost with a relaxed load: the
//! leader publishes and loads the count while it holds the WAL lock, and a waiter counts
//! itself, reads the epoch, then checks the visible version *under the WAL lock* before it
//! sleeps. Either the waiter's check comes after the publish (it sees the new version), or
//! the leader's section comes after the waiter's (the lock orders the count before the
//! load, so the leader sees it and bumps the epoch after the waiter read it).

use crate::error::{Error, Result};
use crate::lock_order::{Guard, Level, OrderedMutex};
use crate::options::{Options, RecoveryMode};
use crate::queue::CommitQueue;
use chronokv_snapshot::Version;
use chronokv_wal::SegmentWriter;
use parking_lot::{Condvar, Mutex};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Creates WAL segment `number` in `dir`, preallocating as [`wal_preallocation`] says.
pub fn create_segment(opts: &Options, dir: &Path, number: u64) -> Result<SegmentWriter> {
    let writer = SegmentWriter::create(opts.vfs.as_ref(), dir, number)?;
    Ok(writer.preallocating(wal_preallocation(opts)))
}

/// How far ahead a WAL segment is preallocated (`SegmentWriter::preallocating`): a quarter
/// of a memtable, between one 4 KiB page and 4 MiB, so a segment grows in a few steps and a
/// reader of a live or crashed segment reads at most one step of zeros (the tests' and
/// harness's tiny memtables read a page, not 64 KiB, per segment). Off under
/// `RecoveryMode::AbsoluteConsistency`, which takes any damage for an error: the zeros a
/// crash leaves past the last frame would make every crash fatal there.
pub fn wal_preallocation(opts: &Options) -> u64 {
    if opts.recovery_mode == RecoveryMode::AbsoluteConsistency {
        return 0;
    }
    let quarter = (opts.memtable_size / 4) as u64;
    quarter.clamp(4 << 10, 4 << 20)
}

/// The WAL segment being written and the last version handed out. Held by the commit
/// leader for the whole group, and by `flush` to seal the memtable.
pub struct WalState {
    /// `None` for a read-only store, which never writes a segment (see [`WalState::segment`]).
    pub writer: Option<SegmentWriter>,
    pub last_version: u64,
    /// The last commit's time (µs); the next commit's is never smaller.
    pub last_time: u64,
}

impl WalState {
    /// The segment being written: `Error::ReadOnly` for a read-only store (whose writes are
    /// refused before they get here, by `Health::check_writable`).
    pub fn segment(&mut self) -> Result<&mut SegmentWriter> {
        self.writer.as_mut().ok_or(Error::ReadOnly)
    }
}

pub struct Writer {
    queue: CommitQueue,
    wal: OrderedMutex<WalState>,
    /// Every version up to this one is committed and readable.
    visible: AtomicU64,
    signal: CommitSignal,
}

/// Wakes subscribers after a publish (see the module documentation).
#[derive(Default)]
struct CommitSignal {
    /// Threads inside [`Writer::wait_for`]; the commit path reads it relaxed.
    waiters: AtomicUsize,
    /// Bumped by every signalled publish and by close. A leaf lock.
    epoch: Mutex<u64>,
    cv: Condvar,
}

impl CommitSignal {
    fn bump(&self) {
        let mut epoch = self.epoch.lock();
        *epoch = epoch.wrapping_add(1);
        self.cv.notify_all();
    }
}

/// Why [`Writer::wait_for`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The version waited for is visible.
    Ready,
    /// The store is closing.
    Closed,
    /// The deadline passed first.
    Timeout,
}

/// Counts a waiter for as long as it lives, so a panic cannot leave the count high.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    pub fn new(wal: WalState) -> Writer {
        Writer {
            queue: CommitQueue::default(),
            visible: AtomicU64::new(wal.last_version),
            wal: OrderedMutex::new(Level::Wal, wal),
            signal: CommitSignal::default(),
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
        // The only cost to a commit while nobody subscribes: this relaxed load.
        if self.signal.waiters.load(Ordering::Relaxed) > 0 {
            self.signal.bump();
        }
    }

    /// Wakes every waiter for good: call after the store is marked closed (under the WAL
    /// lock), without holding it.
    pub fn signal_closed(&self) {
        self.signal.bump();
    }

    /// Sleeps until `version` is visible, `closed()` says the store is closing, or
    /// `deadline` passes. Call holding no engine lock: it takes the WAL lock briefly.
    pub fn wait_for(
        &self,
        version: Version,
        closed: &dyn Fn() -> bool,
        deadline: Option<Instant>,
    ) -> Wait {
        self.signal.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.signal.waiters);
        loop {
            let seen = *self.signal.epoch.lock();
            {
                let _wal = self.wal.lock();
                if self.visible() >= version {
                    return Wait::Ready;
                }
                if closed() {
                    return Wait::Closed;
                }
            }
            let mut epoch = self.signal.epoch.lock();
            while *epoch == seen {
                match deadline {
                    Some(d) => {
                        if self.signal.cv.wait_until(&mut epoch, d).timed_out() {
                            return if self.visible() >= version {
                                Wait::Ready
                            } else {
                                Wait::Timeout
                            };
                        }
                    }
                    None => self.signal.cv.wait(&mut epoch),
                }
            }
        }
    }
}
