//! Whether the store may still write: poisoned after a failed write or sync of the device,
//! closed once `Db::close` began. Checked by every writer and background task.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Health {
    poisoned: AtomicBool,
    /// The first failure's message (a leaf lock: nothing is taken under it).
    reason: Mutex<Option<String>>,
    closed: AtomicBool,
}

impl Health {
    /// Records the first failure that stopped writes. Callable under any lock.
    pub fn mark_poisoned(&self, err: &Error) {
        let mut reason = self.reason.lock();
        if reason.is_none() {
            *reason = Some(err.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// `Error::Poisoned` after a failure.
    pub fn check_writable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.reason.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned { reason });
        }
        Ok(())
    }

    /// Marks the store closed. `Db::close` calls it with the WAL lock held, before its last
    /// sync, so no commit is appended after that sync.
    pub fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// `Error::Closed` once `Db::close` began (a transaction or snapshot may outlive it).
    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }
}
