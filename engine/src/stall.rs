//! Write stalls: backpressure instead of failure when compaction falls behind.
//!
//! After every change of the tree the engine computes a stall state from the number of
//! level-0 runs and the strategy's compaction debt. In `SLOW` the commit leader sleeps so
//! that writes proceed at about `slowdown_write_rate`; in `STOP` it waits until a flush or
//! compaction brings the tree back under the thresholds. With automatic compaction off
//! nothing would ever bring it back, so there are no stalls then; likewise when the strategy
//! has no task for the tree (its own thresholds are looser than the stall's). A poisoned or
//! closing database ends the wait with an error: a stall never deadlocks.

use crate::error::Result;
use crate::inner::Inner;
use crate::stats::Counters;
use crate::view::View;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub const NONE: u8 = 0;
pub const SLOW: u8 = 1;
pub const STOP: u8 = 2;

/// Sleeps shorter than this are saved up: the OS cannot sleep for a few microseconds.
const MIN_SLEEP: Duration = Duration::from_millis(1);

impl Inner {
    /// Recomputes the stall state for `view` (the view just installed) and wakes writers
    /// that may proceed.
    pub fn refresh_stall(&self, view: &View) {
        let state = if self.opts.compaction_threads == 0 {
            NONE
        } else {
            let l0 = view.levels.first().map_or(0, |l| l.runs.len());
            let levels = view.policy_levels();
            let debt = self.strategy().pending_bytes(&levels);
            let o = &self.opts;
            let over_stop = l0 >= o.l0_stop_runs || debt >= o.pending_compaction_stop_bytes;
            let over_slow = l0 >= o.l0_slowdown_runs || debt >= o.pending_compaction_slowdown_bytes;
            // Stalling helps only if compaction has something to do (running or not): a tree
            // the strategy leaves as it is (say, fewer level-0 runs than its trigger but more
            // than `l0_stop_runs`) would otherwise stop writes forever.
            let can_progress = || self.strategy().pick(&levels, &Default::default()).is_some();
            if !(over_stop || over_slow) || !can_progress() {
                NONE
            } else if over_stop {
                STOP
            } else {
                SLOW
            }
        };
        let before = self.stall.swap(state, Ordering::AcqRel);
        if state < before {
            let _bg = self.bg.lock();
            self.bg_done.notify_all();
        }
    }

    /// Called by the commit leader before it writes a group of `bytes`.
    pub fn throttle(&self, bytes: usize) -> Result<()> {
        match self.stall.load(Ordering::Acquire) {
            NONE => Ok(()),
            SLOW => {
                Counters::add(&self.counters.slowdowns, 1);
                let rate = self.opts.slowdown_write_rate.max(1);
                let owed = {
                    let mut debt = self.stall_debt.lock();
                    *debt += (bytes as u64).saturating_mul(1_000_000_000) / rate;
                    if *debt < MIN_SLEEP.as_nanos() as u64 {
                        return Ok(());
                    }
                    std::mem::take(&mut *debt)
                };
                let owed = Duration::from_nanos(owed).min(Duration::from_secs(1));
                std::thread::sleep(owed);
                Counters::add(&self.counters.stall_micros, owed.as_micros() as u64);
                Ok(())
            }
            _ => self.wait_while_stopped(),
        }
    }

    fn wait_while_stopped(&self) -> Result<()> {
        Counters::add(&self.counters.stops, 1);
        let start = Instant::now();
        let mut bg = self.bg.lock();
        let result = loop {
            if self.stall.load(Ordering::Acquire) != STOP {
                break Ok(());
            }
            if let Err(e) = self.check_waitable(&bg) {
                break Err(e);
            }
            // A timeout guards against a missed wake-up; the state is re-checked anyway.
            self.bg_done.wait_for(&mut bg, Duration::from_millis(100));
        };
        Counters::add(
            &self.counters.stall_micros,
            start.elapsed().as_micros() as u64,
        );
        result
    }
}
