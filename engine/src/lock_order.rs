//! The engine's lock order, checked in debug builds.
//!
//! Every lock of the shared state has a [`Level`], and a thread takes locks only in
//! increasing level: it may take a lock while holding locks of lower levels, never one of
//! the same or a lower level. Two threads that both follow the order cannot deadlock on
//! these locks. In debug builds (every test run) each thread keeps the levels it holds and
//! a lock taken out of order panics at once, naming both levels, instead of deadlocking
//! some day; release builds keep nothing.
//!
//! Leaf locks that never have another lock taken under them (the poison reason, the stall
//! state, the commit queue's own mutex) are plain mutexes.

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// Lock levels, lowest first: the order in which a thread may take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The WAL writer state, held by the commit leader for a whole group.
    Wal,
    /// Background-work bookkeeping (shutdown, busy runs); the condvars wait on it.
    Background,
    /// The manifest writer and the tree it recorded.
    Tree,
    /// Open transactions and the conflict tracker.
    Txns,
    /// Live snapshots, history floors and the retention horizon.
    Readers,
    /// The version <-> time index.
    Times,
    /// The read view (a `RwLock`): taken last, held only to clone or swap an `Arc`.
    View,
}

#[cfg(debug_assertions)]
mod held {
    use super::Level;
    use std::cell::RefCell;

    thread_local! {
        static HELD: RefCell<Vec<Level>> = const { RefCell::new(Vec::new()) };
    }

    /// Records that this thread takes `level`; panics if it holds that level or a higher one.
    pub fn take(level: Level) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(&top) = held.iter().max() {
                assert!(
                    level > top,
                    "lock order violated: taking {level:?} while holding {top:?} (see lock_order.rs)"
                );
            }
            held.push(level);
        });
    }

    /// Records that this thread released `level` (guards may drop in any order).
    pub fn release(level: Level) {
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            if let Some(i) = held.iter().rposition(|&l| l == level) {
                held.remove(i);
            }
        });
    }
}

/// Proof that this thread holds a lock of a level, for the debug check.
struct Held(#[cfg(debug_assertions)] Level);

impl Held {
    fn take(level: Level) -> Held {
        #[cfg(debug_assertions)]
        {
            held::take(level);
            Held(level)
        }
        #[cfg(not(debug_assertions))]
        {
            let _ = level;
            Held()
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        #[cfg(debug_assertions)]
        held::release(self.0);
    }
}

/// A mutex with a place in the lock order.
#[derive(Debug)]
pub struct OrderedMutex<T> {
    level: Level,
    mutex: Mutex<T>,
}

/// The guard of an [`OrderedMutex`].
pub struct Guard<'a, T> {
    guard: MutexGuard<'a, T>,
    _held: Held,
}

impl<T> OrderedMutex<T> {
    pub fn new(level: Level, value: T) -> Self {
        OrderedMutex {
            level,
            mutex: Mutex::new(value),
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        let held = Held::take(self.level);
        Guard {
            guard: self.mutex.lock(),
            _held: held,
        }
    }
}

impl<T> Guard<'_, T> {
    /// Waits on `condvar`, releasing the lock meanwhile (the thread is blocked, so it
    /// takes nothing else while its level stays recorded).
    pub fn wait(&mut self, condvar: &Condvar) {
        condvar.wait(&mut self.guard);
    }

    /// As [`Guard::wait`], for at most `timeout`.
    pub fn wait_for(&mut self, condvar: &Condvar, timeout: Duration) {
        condvar.wait_for(&mut self.guard, timeout);
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

/// A reader-writer lock with a place in the lock order.
#[derive(Debug)]
pub struct OrderedRwLock<T> {
    level: Level,
    lock: RwLock<T>,
}

/// A read guard of an [`OrderedRwLock`].
pub struct ReadGuard<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    _held: Held,
}

/// A write guard of an [`OrderedRwLock`].
pub struct WriteGuard<'a, T> {
    guard: RwLockWriteGuard<'a, T>,
    _held: Held,
}

impl<T> OrderedRwLock<T> {
    pub fn new(level: Level, value: T) -> Self {
        OrderedRwLock {
            level,
            lock: RwLock::new(value),
        }
    }

    pub fn read(&self) -> ReadGuard<'_, T> {
        let held = Held::take(self.level);
        ReadGuard {
            guard: self.lock.read(),
            _held: held,
        }
    }

    pub fn write(&self) -> WriteGuard<'_, T> {
        let held = Held::take(self.level);
        WriteGuard {
            guard: self.lock.write(),
            _held: held,
        }
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_taken_in_order_pass_and_release_in_any_order() {
        let wal = OrderedMutex::new(Level::Wal, 1);
        let tree = OrderedMutex::new(Level::Tree, 2);
        let view = OrderedRwLock::new(Level::View, 3);
        let w = wal.lock();
        let t = tree.lock();
        drop(w);
        let v = view.read();
        assert_eq!(*t + *v, 5);
        drop(t);
        drop(v);
        // Everything was released: the lowest level can be taken again.
        drop(wal.lock());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "lock order violated: taking Wal while holding Tree")]
    fn a_lock_taken_out_of_order_panics_in_debug_builds() {
        let wal = OrderedMutex::new(Level::Wal, ());
        let tree = OrderedMutex::new(Level::Tree, ());
        let _t = tree.lock();
        let _w = wal.lock();
    }
}
