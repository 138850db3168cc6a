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

/// A group never grows past this many encoded bytes (unless its leader alone is larger).
const GROUP_BYTES: usize = 4 << 20;

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

/// A queued request and the place its writer waits for the outcome. The leader's work
/// sees the request through `Deref`.
pub struct Slot {
    request: Request,
    result: Mutex<Option<Result<Version>>>,
}

impl std::ops::Deref for Slot {
    type Target = Request;
    fn deref(&self) -> &Request {
        &self.request
    }
}

#[derive(Default)]
struct QueueState {
    queue: VecDeque<Arc<Slot>>,
    leader_active: bool,
}

/// The queue of writers waiting to commit.
#[derive(Default)]
pub struct CommitQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

/// The leader's work for one group: given the requests in queue order and their encoded
/// bytes, each request's outcome in the same order, or one error for the whole group.
pub type GroupWork<'a> = dyn FnMut(&[Arc<Slot>], usize) -> Result<Vec<Result<Version>>> + 'a;

impl CommitQueue {
    /// Queues `request` and waits until it is applied, leading the group whose turn it is
    /// when this writer reaches the front. Returns the version of the batch's last entry.
    pub fn submit(&self, request: Request, work: &mut GroupWork<'_>) -> Result<Version> {
        let me = Arc::new(Slot {
            request,
            result: Mutex::new(None),
        });
        let mut q = self.state.lock();
        q.queue.push_back(me.clone());
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
        drop(q);

        let outcome = work(&group, bytes);
        let mut q = self.state.lock();
        let mut outcome = outcome.map(Vec::into_iter);
        for (i, slot) in group.iter().enumerate() {
            let r = match &mut outcome {
                Ok(results) => results.next().unwrap_or(Err(Error::Closed)),
                // Followers learn that the store stopped; a closed store is just closed.
                Err(e) if i == 0 || matches!(e, Error::Closed) => Err(clone_for_leader(e)),
                Err(e) => Err(Error::Poisoned {
                    reason: e.to_string(),
                }),
            };
            *slot.result.lock() = Some(r);
        }
        q.leader_active = false;
        self.wake.notify_all();
        drop(q);
        let mine = me.result.lock().take();
        mine.unwrap_or(Err(Error::Closed))
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
