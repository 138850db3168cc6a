//! Whether the store may still write: poisoned after a failed write or sync of the device,
//! closed once `Db::close` began, read-only from the start for `Db::open_read_only`.
//! Checked by every writer and background task.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Health {
    poisoned: AtomicBool,
    /// The first failure's message (a leaf lock: nothing is taken under it).
    reason: Mutex<Option<String>>,
    closed: AtomicBool,
    /// Set once, before the store is shared, by a read-only open: every write is refused.
    read_only: AtomicBool,
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

    /// Refuses every write from now on with `Error::ReadOnly`.
    pub fn mark_read_only(&self) {
        self.read_only.store(true, Ordering::Release);
    }

    /// True for a store opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// `Error::ReadOnly` for a read-only store, `Error::Poisoned` after a failure.
    pub fn check_writable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        self.check_not_poisoned()
    }

    /// `Error::Poisoned` after a failure (a read-only store is never poisoned).
    pub fn check_not_poisoned(&self) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_refuses_writes_before_poisoning_is_checked() {
        let h = Health::default();
        assert!(h.check_writable().is_ok());
        h.mark_read_only();
        assert!(matches!(h.check_writable(), Err(Error::ReadOnly)));
        assert!(h.check_not_poisoned().is_ok());
        h.mark_poisoned(&Error::Closed);
        assert!(matches!(h.check_writable(), Err(Error::ReadOnly)));
        assert!(matches!(
            h.check_not_poisoned(),
            Err(Error::Poisoned { .. })
        ));
    }
}
