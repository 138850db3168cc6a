//! Write stalls: backpressure instead of failure when compaction falls behind.
//!
//! After every change of the tree the engine computes a stall state from the number of
//! level-0 runs and the strategy's compaction debt. In `SLOW` the commit leader sleeps so
//! that writes proceed at about `slowdown_write_rate`; in `STOP` it waits until a flush or
//! compaction brings the tree back under the thresholds. With automatic compaction off
//! nothing would ever bring it back, so there are no stalls then; likewise when the strategy
//! has no task for the tree (its own thresholds are looser than the stall's). A poisoned or
//! closing database ends the wait with an error: a stall never deadlocks.

use crate::background::Background;
use crate::error::Result;
use crate::health::Health;
use crate::options::Options;
use crate::stats::Counters;
use crate::tree::Tree;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

pub const NONE: u8 = 0;
pub const SLOW: u8 = 1;
pub const STOP: u8 = 2;

/// Sleeps shorter than this are saved up: the OS cannot sleep for a few microseconds.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// The write-stall state. Its two mutexes are leaves of the lock order.
#[derive(Debug, Default)]
pub struct Stall {
    /// `NONE`, `SLOW` or `STOP`, refreshed on every tree change.
    state: AtomicU8,
    /// Serialises refreshes, each computed from the view current under it, so the last
    /// refresh stored is computed from the newest view (see [`Stall::refresh`]).
    refresh: Mutex<()>,
    /// Delay owed by slowed-down writes, in nanoseconds, paid in sleeps of at least 1 ms.
    debt: Mutex<u64>,
}

impl Stall {
    /// Recomputes the stall state from the current view (call after installing a view) and
    /// wakes writers that may proceed.
    ///
    /// Refreshes are serialised and each reads the view current under the lock, so the state
    /// stored last comes from a view at least as new as every installed one. Computing from
    /// the caller's view instead let a slow refresh store `STOP` for a view with two level-0
    /// runs after a compaction had installed the view without them and stored `NONE`:
    /// compaction then had nothing to do, nothing refreshed the state again, and writers
    /// waited forever (`tests/compaction.rs`, `a_stopped_writer_resumes_when_compaction_catches_up`,
    /// hung once under load).
    pub fn refresh(&self, tree: &Tree, opts: &Options, background: &Background) {
        let _serial = self.refresh.lock();
        let view = tree.current_view();
        let strategy = opts.compaction.strategy();
        let state = if opts.compaction_threads == 0 {
            NONE
        } else {
            let l0 = view.levels.first().map_or(0, |l| l.runs.len());
            let levels = view.policy_levels();
            let debt = strategy.pending_bytes(&levels);
            let o = opts;
            let over_stop = l0 >= o.l0_stop_runs || debt >= o.pending_compaction_stop_bytes;
            let over_slow = l0 >= o.l0_slowdown_runs || debt >= o.pending_compaction_slowdown_bytes;
            // Stalling helps only if compaction has something to do (running or not): a tree
            // the strategy leaves as it is (say, fewer level-0 runs than its trigger but more
            // than `l0_stop_runs`) would otherwise stop writes forever.
            let can_progress = || strategy.pick(&levels, &Default::default()).is_some();
            if !(over_stop || over_slow) || !can_progress() {
                NONE
            } else if over_stop {
                STOP
            } else {
                SLOW
            }
        };
        let before = self.state.swap(state, Ordering::AcqRel);
        if state < before {
            background.wake_waiters();
        }
    }

    /// Called by the commit leader before it writes a group of `bytes`.
    pub fn throttle(
        &self,
        bytes: usize,
        opts: &Options,
        counters: &Counters,
        background: &Background,
        health: &Health,
    ) -> Result<()> {
        match self.state.load(Ordering::Acquire) {
            NONE => Ok(()),
            SLOW => {
                Counters::add(&counters.slowdowns, 1);
                let rate = opts.slowdown_write_rate.max(1);
                let owed = {
                    let mut debt = self.debt.lock();
                    *debt += (bytes as u64).saturating_mul(1_000_000_000) / rate;
                    if *debt < MIN_SLEEP.as_nanos() as u64 {
                        return Ok(());
                    }
                    std::mem::take(&mut *debt)
                };
                let owed = Duration::from_nanos(owed).min(Duration::from_secs(1));
                std::thread::sleep(owed);
                Counters::add(&counters.stall_micros, owed.as_micros() as u64);
                Ok(())
            }
            _ => self.wait_while_stopped(counters, background, health),
        }
    }

    fn wait_while_stopped(
        &self,
        counters: &Counters,
        background: &Background,
        health: &Health,
    ) -> Result<()> {
        Counters::add(&counters.stops, 1);
        let start = Instant::now();
        let mut bg = background.lock();
        let result = loop {
            if self.state.load(Ordering::Acquire) != STOP {
                break Ok(());
            }
            if let Err(e) = bg.check_waitable(health) {
                break Err(e);
            }
            // A timeout guards against a missed wake-up; the state is re-checked anyway.
            background.wait_until_done_for(&mut bg, Duration::from_millis(100));
        };
        Counters::add(&counters.stall_micros, start.elapsed().as_micros() as u64);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, Options};
    use chronokv_vfs::MemFs;
    use std::sync::Arc;

    /// A refresh that waited behind a slower one stores the state of the view current when
    /// it runs, whatever the slower one stored from an older view. (Before, each refresh was
    /// handed the view its caller had just installed, and a slow refresh of an old view with
    /// two level-0 runs could store `STOP` after the compaction that emptied level 0 had
    /// stored `NONE`: writers then waited forever.)
    #[test]
    fn the_last_refresh_reflects_the_current_view() {
        let fs = MemFs::new();
        let db = Db::open(
            "/db",
            Options {
                vfs: Arc::new(fs),
                l0_slowdown_runs: 1,
                l0_stop_runs: 1,
                compaction_threads: 1,
                ..Options::default()
            },
        )
        .unwrap();
        let inner = db.inner();
        assert_eq!(inner.stall().state.load(Ordering::Acquire), NONE);
        std::thread::scope(|s| {
            // A slow refresh is under way ...
            let slow = inner.stall().refresh.lock();
            let waiting = s.spawn(|| inner.refresh_stall());
            // ... and stores what it computed from an older view, with a level-0 run.
            inner.stall().state.store(STOP, Ordering::Release);
            drop(slow);
            waiting.join().unwrap();
        });
        // The current view has no run at all.
        assert_eq!(inner.stall().state.load(Ordering::Acquire), NONE);
    }
}
