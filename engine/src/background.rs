//! Background-work signalling: the flusher and compaction threads wait for work on it,
//! writers and `flush`/`compact_range` callers wait on it for work to finish, and shutdown
//! and failures wake everyone.

use crate::error::{Error, Result};
use crate::health::Health;
use crate::lock_order::{Guard, Level, OrderedMutex};
use parking_lot::Condvar;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Background-work bookkeeping, under [`Background::lock`].
#[derive(Default)]
pub struct Bg {
    pub shutdown: bool,
    /// Runs that a compaction (automatic or manual) has taken as input.
    pub busy: HashSet<u64>,
}

impl Bg {
    /// What a caller waiting on background work must return instead of waiting (on): a
    /// poisoned store's error, or `Closed` once shutdown began.
    pub fn check_waitable(&self, health: &Health) -> Result<()> {
        health.check_writable()?;
        if self.shutdown {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

pub struct Background {
    state: OrderedMutex<Bg>,
    /// Wakes the flusher and compaction threads (a memtable was sealed, a run was added,
    /// or shutdown).
    work: Condvar,
    /// Wakes writers and callers waiting for a flush or compaction to finish.
    done: Condvar,
    /// Set on shutdown: running compactions stop early and discard their output.
    cancel: AtomicBool,
}

impl Default for Background {
    fn default() -> Self {
        Background {
            state: OrderedMutex::new(Level::Background, Bg::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            cancel: AtomicBool::new(false),
        }
    }
}

impl Background {
    pub fn lock(&self) -> Guard<'_, Bg> {
        self.state.lock()
    }

    /// Waits (in a worker) until work may be there.
    pub fn wait_for_work(&self, bg: &mut Guard<'_, Bg>) {
        bg.wait(&self.work);
    }

    /// Waits until some background work finished.
    pub fn wait_until_done(&self, bg: &mut Guard<'_, Bg>) {
        bg.wait(&self.done);
    }

    /// As [`Background::wait_until_done`], for at most `timeout`.
    pub fn wait_until_done_for(&self, bg: &mut Guard<'_, Bg>, timeout: Duration) {
        bg.wait_for(&self.done, timeout);
    }

    /// Tells the workers there may be work (takes the lock, so no waiter misses it).
    pub fn wake_workers(&self) {
        let _bg = self.lock();
        self.work.notify_all();
    }

    /// Tells the waiters some work finished.
    pub fn wake_waiters(&self) {
        let _bg = self.lock();
        self.done.notify_all();
    }

    /// Wakes workers and waiters alike.
    pub fn wake_everyone(&self) {
        let bg = self.lock();
        self.wake_everyone_holding(&bg);
    }

    /// As [`Background::wake_everyone`], for a caller already holding the lock.
    pub fn wake_everyone_holding(&self, _bg: &Guard<'_, Bg>) {
        self.work.notify_all();
        self.done.notify_all();
    }

    /// Asks running compactions to stop (shutdown).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    /// The flag a running compaction polls.
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }
}
