//! The commit queue: writers wait in line, and the writer at the front becomes the leader
//! of every request queued behind it (up to a byte budget), runs the group's work once and
//! hands each writer its result (LevelDB's `writers_` deque).
//!
//! The queue knows nothing of the WAL or the memtable: the leader's work is a closure
//! (`commit::commit_group`), so the queue can live in the shared state beside what that
//! work changes without depending on it. Only one leader runs at a time, so groups are
//! applied, and their versions published, in queue order.

use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use bytes::Bytes;
use chronokv_snapshot::{Conflict, ConflictTracker, ReadSet, Version};
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A group never grows past this many encoded bytes (unless its leader alone is larger).
const GROUP_BYTES: usize = 4 << 20;

/// How long the leader of a synced group waits for the writers of the previous group to
/// queue again (see [`CommitQueue::submit`]): a few of their round trips, well under one
/// fdatasync of a fast device.
const GATHER_WAIT: Duration = Duration::from_micros(50);

/// One writer's request: a validated batch, whether it must be fsynced before it is
/// acknowledged, and for a transaction the check its commit must pass.
pub struct Request {
    pub batch: WriteBatch,
    pub sync: bool,
    pub check: Option<TxnCheck>,
}

/// What a transaction's commit must validate: nothing it read (serializable) or wrote
/// (snapshot isolation) was written by a commit newer than `start`.
pub struct TxnCheck {
    pub start: Version,
    pub reads: Option<ReadSet>,
    pub writes: Vec<Bytes>,
}

impl TxnCheck {
    /// `Error::Conflict` if a commit newer than `start` wrote what this check covers.
    pub fn validate(&self, tracker: &ConflictTracker) -> Result<()> {
        let checked = match &self.reads {
            Some(reads) => tracker.check_reads(self.start, reads),
            None => tracker.check_writes(self.start, &self.writes),
        };
        checked.map_err(|c| conflict_error(self.start, c))
    }
}

fn conflict_error(start: Version, c: Conflict) -> Error {
    let reason = match c {
        Conflict::Key { key, version } => format!(
            "key {} was written at {version}, after this transaction's snapshot at {start}",
            crate::error::show_key(&key)
        ),
        Conflict::Forgotten { forgotten } => format!(
            "this transaction's snapshot at {start} is older than the conflict tracker's \
             memory (commits up to {forgotten} were dropped to stay within \
             Options::transaction_conflict_memory)"
        ),
    };
    Error::Conflict { reason }
}

/// A queued request, the outcome the leader's work gives it, and the place its writer
/// waits for the result. The leader's work sees the request through `Deref`.
pub struct Slot {
    request: Request,
    /// Set by the leader's work, read by the leader once the work is over.
    outcome: Mutex<Option<Result<Version>>>,
    /// What the writer returns, handed over under the queue's lock.
    result: Mutex<Option<Result<Version>>>,
}

impl std::ops::Deref for Slot {
    type Target = Request;
    fn deref(&self) -> &Request {
        &self.request
    }
}

impl Slot {
    fn new(request: Request) -> Slot {
        Slot {
            request,
            outcome: Mutex::new(None),
            result: Mutex::new(None),
        }
    }

    /// Records this request's outcome (the leader's work calls it once per request).
    pub fn set_outcome(&self, outcome: Result<Version>) {
        *self.outcome.lock() = Some(outcome);
    }

    /// The version of the request's last entry, once the work gave it one.
    pub fn committed(&self) -> Option<Version> {
        match &*self.outcome.lock() {
            Some(Ok(v)) => Some(*v),
            _ => None,
        }
    }

    /// What the writer gets once the group's `work` returned `outcome`; `leads` says
    /// whether this request led the group.
    fn finish(&self, outcome: &Result<()>, leads: bool) -> Result<Version> {
        match outcome {
            Ok(()) => self.outcome.lock().take().unwrap_or(Err(Error::Closed)),
            // Followers learn that the store stopped; a closed store is just closed.
            Err(e) if leads || matches!(e, Error::Closed) => Err(clone_for_leader(e)),
            Err(e) => Err(Error::Poisoned {
                reason: e.to_string(),
            }),
        }
    }
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<Arc<Slot>>,
    leader_active: bool,
    /// Requests in the last group.
    last_group: usize,
    /// A leader waits on `CommitQueue::arrived` for writers to queue.
    gathering: bool,
}

/// The queue of writers waiting to commit.
#[derive(Default)]
pub struct CommitQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
    /// Signalled when a writer queues while a leader gathers.
    arrived: Condvar,
}

/// The leader's work for one group: given the requests in queue order and their encoded
/// bytes, records each request's outcome ([`Slot::set_outcome`]), or fails the whole group.
pub type GroupWork<'a> = dyn FnMut(&[&Slot], usize) -> Result<()> + 'a;

impl CommitQueue {
    /// Queues `request` and waits until it is applied, leading the group whose turn it is
    /// when this writer reaches the front. Returns the version of the batch's last entry.
    ///
    /// A writer that finds no one queued and no leader at work leads a group of its own
    /// at once: its slot stays on its stack and nothing is allocated for the hand-off
    /// (the usual case of a single writing thread). Writers that arrive meanwhile queue
    /// and wait for it as for any leader.
    ///
    /// The leader of a synced group first waits, up to [`GATHER_WAIT`], until as many
    /// requests are queued as the last group had. Without it, writers that sync split
    /// into alternating groups: those that queued during a sync form the next group, and
    /// the one released just before leads a group of its own, so four threads shared
    /// each fsync by two on average (`docs/benchmarks.md`, "Synced writes and group
    /// commit"). A lone writer's last group is itself, so it never waits.
    pub fn submit(&self, request: Request, work: &mut GroupWork<'_>) -> Result<Version> {
        let mut q = self.state.lock();
        let gather = request.sync && q.last_group > 1;
        if q.queue.is_empty() && !q.leader_active && !gather {
            q.leader_active = true;
            q.last_group = 1;
            drop(q);
            let me = Slot::new(request);
            let bytes = me.batch.encoded_len();
            let outcome = work(&[&me], bytes);
            let mut q = self.state.lock();
            q.leader_active = false;
            if !q.queue.is_empty() {
                self.wake.notify_all();
            }
            drop(q);
            return me.finish(&outcome, true);
        }
        let me = Arc::new(Slot::new(request));
        q.queue.push_back(me.clone());
        if q.gathering {
            self.arrived.notify_one();
        }
        loop {
            if let Some(r) = me.result.lock().take() {
                return r;
            }
            let at_front = q.queue.front().is_some_and(|f| Arc::ptr_eq(f, &me));
            if at_front && !q.leader_active {
                break;
            }
            self.wake.wait(&mut q);
        }
        q.leader_active = true;
        if me.sync {
            self.gather(&mut q);
        }
        let mut group = Vec::new();
        let mut bytes = 0;
        while let Some(next) = q.queue.front() {
            let len = next.request.batch.encoded_len();
            if !group.is_empty() && bytes + len > GROUP_BYTES {
                break;
            }
            bytes += len;
            group.extend(q.queue.pop_front());
        }
        q.last_group = group.len();
        drop(q);

        let slots: Vec<&Slot> = group.iter().map(|s| &**s).collect();
        let outcome = work(&slots, bytes);
        let mut q = self.state.lock();
        for (i, slot) in group.iter().enumerate() {
            let r = slot.finish(&outcome, i == 0);
            *slot.result.lock() = Some(r);
        }
        q.leader_active = false;
        self.wake.notify_all();
        drop(q);
        let mine = me.result.lock().take();
        mine.unwrap_or(Err(Error::Closed))
    }

    /// Waits, up to [`GATHER_WAIT`], until as many requests are queued as the last group
    /// had (see [`CommitQueue::submit`]).
    fn gather(&self, q: &mut parking_lot::MutexGuard<'_, QueueState>) {
        let deadline = Instant::now() + GATHER_WAIT;
        q.gathering = true;
        while q.queue.len() < q.last_group {
            if self.arrived.wait_until(q, deadline).timed_out() {
                break;
            }
        }
        q.gathering = false;
    }
}

/// The leader keeps the original error's kind where it can.
fn clone_for_leader(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::Corruption {
            file,
            offset,
            reason,
        } => Error::Corruption {
            file: file.clone(),
            offset: *offset,
            reason: reason.clone(),
        },
        Error::Poisoned { reason } => Error::Poisoned {
            reason: reason.clone(),
        },
        Error::Closed => Error::Closed,
        other => Error::Poisoned {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    fn request(entries: usize) -> Request {
        request_with(entries, false)
    }

    fn request_with(entries: usize, sync: bool) -> Request {
        let mut batch = WriteBatch::new();
        for i in 0..entries {
            batch.put(i.to_le_bytes(), b"v");
        }
        Request {
            batch,
            sync,
            check: None,
        }
    }

    /// Writers on several threads, alone or queued: one group's work at a time, and every
    /// writer gets the version its group's work gave it.
    #[test]
    fn every_writer_gets_its_own_outcome_and_works_never_overlap() {
        writers_on_four_threads(|_, _| false);
    }

    /// The same with synced requests, whose leaders gather the last group's writers
    /// first, mixed with buffered ones.
    #[test]
    fn gathering_synced_groups_keeps_every_outcome_its_own() {
        writers_on_four_threads(|t, i| (t + i) % 4 != 0);
    }

    /// A synced writer left alone after a larger group waits at most `GATHER_WAIT` for
    /// writers that do not come, then commits alone, and the next one leads at once.
    #[test]
    fn a_lone_synced_writer_after_a_group_commits_alone() {
        let queue = CommitQueue::default();
        queue.state.lock().last_group = 3;
        let mut sizes = Vec::new();
        for _ in 0..2 {
            let v = queue.submit(request_with(1, true), &mut |group, _| {
                sizes.push(group.len());
                group[0].set_outcome(Ok(Version(1)));
                Ok(())
            });
            assert_eq!(v.unwrap(), Version(1));
        }
        assert_eq!(sizes, vec![1, 1]);
        assert_eq!(queue.state.lock().last_group, 1);
    }

    fn writers_on_four_threads(sync: fn(usize, usize) -> bool) {
        let queue = CommitQueue::default();
        let last = AtomicU64::new(0);
        let working = AtomicBool::new(false);
        let results: Vec<Vec<(usize, Version)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let (queue, last, working) = (&queue, &last, &working);
                    s.spawn(move || {
                        (0..300)
                            .map(|i| {
                                let entries = 1 + (t + i) % 3;
                                let v = queue
                                    .submit(request_with(entries, sync(t, i)), &mut |group, _| {
                                        assert!(!working.swap(true, Ordering::SeqCst));
                                        // Let the others queue behind this group.
                                        std::thread::yield_now();
                                        for slot in group {
                                            let n = slot.batch.len() as u64;
                                            let v = last.fetch_add(n, Ordering::SeqCst) + n;
                                            slot.set_outcome(Ok(Version(v)));
                                        }
                                        working.store(false, Ordering::SeqCst);
                                        Ok(())
                                    })
                                    .expect("commit");
                                (entries, v)
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // The versions handed out tile 1..=last exactly: each writer got its own range.
        let mut ranges: Vec<(u64, u64)> = results
            .iter()
            .flatten()
            .map(|&(n, v)| (v.0 + 1 - n as u64, v.0))
            .collect();
        ranges.sort_unstable();
        let mut next = 1;
        for (first, end) in ranges {
            assert_eq!(first, next);
            next = end + 1;
        }
        assert_eq!(next - 1, last.load(Ordering::SeqCst));
    }

    /// A failed group's work fails its writer; a work that forgets an outcome reports the
    /// store closed; the queue stays usable.
    #[test]
    fn a_failed_work_fails_the_writer_and_the_queue_goes_on() {
        let queue = CommitQueue::default();
        let failed = queue.submit(request(1), &mut |_, _| {
            Err(Error::Poisoned {
                reason: "disk".into(),
            })
        });
        assert!(matches!(failed, Err(Error::Poisoned { reason }) if reason == "disk"));
        let forgotten = queue.submit(request(1), &mut |_, _| Ok(()));
        assert!(matches!(forgotten, Err(Error::Closed)));
        let ok = queue.submit(request(2), &mut |group, bytes| {
            assert_eq!(bytes, group[0].batch.encoded_len());
            group[0].set_outcome(Ok(Version(7)));
            Ok(())
        });
        assert_eq!(ok.unwrap(), Version(7));
    }
}
