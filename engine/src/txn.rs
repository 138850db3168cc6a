//! Optimistic transactions.
//!
//! A [`Transaction`] reads a [`Snapshot`] taken when it began, overlaid with its own
//! buffered writes, and commits those writes as one batch through the group commit. The
//! commit leader validates it first (see `commit`): under [`Isolation::Serializable`] no key
//! it read, and no key inside a range its scans covered, may have been written after its
//! snapshot; under [`Isolation::Snapshot`] only the keys it writes are checked (first
//! committer wins). A refused commit is `Error::Conflict` and applies nothing.
//!
//! Why serializable: every committed read-write transaction read exactly the state at its
//! commit point (nothing it read changed in between), so the commit order is a serial
//! order; a read-only transaction reads a prefix of that order. Writes that no transaction
//! read (blind writes) never conflict.
//!
//! # Beginning
//!
//! The commit leader records written keys only while some read-write transaction is open
//! (plain writes pay nothing otherwise). A transaction that begins while a group committed
//! without recording is still being published would miss that group's keys, so `begin`
//! waits until the newest unrecorded version is visible: at most one group commit.

use crate::batch::total_problem;
use crate::commit;
use crate::error::{Error, Result};
use crate::history::{At, Snapshot};
use crate::inner::Inner;
use crate::options::Durability;
use crate::queue::TxnCheck;
use crate::read::{is_empty_range, owned_bounds, prefix_bounds, Iter};
use crate::WriteBatch;
use bytes::Bytes;
use chronokv_snapshot::{KeyRange, ReadSet, Version};
use chronokv_wal::entry_encoded_len;
use parking_lot::Mutex;
use std::collections::btree_map::{self, BTreeMap};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// How much a transaction is isolated from concurrent commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Isolation {
    /// The outcome equals running the committed transactions one at a time, in commit
    /// order. Reads (point reads and the ranges scans covered) are tracked and validated.
    /// Prevents lost updates, write skew and the read-only anomaly.
    #[default]
    Serializable,
    /// Snapshot isolation: reads are consistent, and a commit fails only if a key it writes
    /// was written concurrently. Reads are not tracked (cheaper); write skew is possible.
    Snapshot,
}

/// How [`Db::begin_with`] opens a transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransactionOptions {
    /// Default [`Isolation::Serializable`].
    pub isolation: Isolation,
    /// A read-only transaction refuses writes, tracks nothing and always commits.
    pub read_only: bool,
    /// The durability of the commit (default: `Options::durability`).
    pub durability: Option<Durability>,
    /// The most bytes the buffered writes may take, encoded as a batch (default and cap:
    /// [`WriteBatch::MAX_BYTES`]). A write past it fails with `InvalidArgument` and is not
    /// buffered; the transaction stays usable.
    pub max_write_bytes: Option<usize>,
}

/// An optimistic transaction: reads see the database as of [`Transaction::version`] plus
/// this transaction's own writes; writes are buffered and applied atomically by
/// [`Transaction::commit`], or discarded by [`Transaction::rollback`] or drop.
///
/// Like a snapshot, an open transaction keeps the versions it reads from compaction; keep
/// transactions short. Its read set and write buffer are held in memory.
pub struct Transaction {
    inner: Arc<Inner>,
    snapshot: Snapshot,
    options: TransactionOptions,
    writes: BTreeMap<Bytes, Option<Bytes>>,
    /// `writes` encoded as a batch, in bytes; bounded by `max_write_bytes`.
    write_bytes: usize,
    /// Tracked only for serializable read-write transactions.
    reads: Mutex<ReadSet>,
    /// Registered in the conflict tracker until it finishes.
    open: bool,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("version", &self.snapshot.version())
            .field("options", &self.options)
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn begin(inner: &Arc<Inner>, options: TransactionOptions) -> Transaction {
    let new = |snapshot, open| Transaction {
        inner: inner.clone(),
        snapshot,
        options,
        writes: BTreeMap::new(),
        write_bytes: 0,
        reads: Mutex::new(ReadSet::new()),
        open,
    };
    if options.read_only {
        let snapshot =
            Snapshot::new(inner, At::Latest).expect("the latest version is always readable");
        return new(snapshot, false);
    }
    let mut txns = inner.txns().lock();
    while !txns.can_begin_at(inner.snapshot_version()) {
        inner.txns().wait_to_begin(&mut txns);
    }
    let snapshot = Snapshot::new(inner, At::Latest).expect("the latest version is always readable");
    txns.begin(snapshot.version());
    drop(txns);
    new(snapshot, true)
}

impl Transaction {
    /// The version this transaction reads at (its snapshot).
    pub fn version(&self) -> Version {
        self.snapshot.version()
    }

    /// True for a transaction opened with `read_only`.
    pub fn is_read_only(&self) -> bool {
        self.options.read_only
    }

    fn tracks_reads(&self) -> bool {
        !self.options.read_only && self.options.isolation == Isolation::Serializable
    }

    /// The value of `key`: this transaction's own write if it made one, else the value at
    /// its snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let key = key.as_ref();
        if let Some(own) = self.writes.get(key) {
            return Ok(own.clone());
        }
        if self.tracks_reads() {
            self.reads.lock().add_key(Bytes::copy_from_slice(key));
        }
        self.snapshot.get(key)
    }

    /// The live pairs of `range`, this transaction's writes included, in key order
    /// (reversible). A serializable transaction's read set gets the part of the range the
    /// iterator actually went through.
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> TransactionIter<'_> {
        let (lo, hi) = owned_bounds(&range);
        self.iter(lo, hi)
    }

    /// The live pairs whose keys start with `prefix`, this transaction's writes included.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> TransactionIter<'_> {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        self.iter(lo, hi)
    }

    fn iter(&self, lo: Bound<Bytes>, hi: Bound<Bytes>) -> TransactionIter<'_> {
        let nothing = Bytes::new();
        let own = if is_empty_range(&lo, &hi) {
            // An inverted range would make `BTreeMap::range` panic: ask for `[] .. []`.
            self.writes
                .range::<Bytes, _>((Bound::Included(&nothing), Bound::Excluded(&nothing)))
        } else {
            self.writes.range::<Bytes, _>((lo.as_ref(), hi.as_ref()))
        };
        TransactionIter {
            stored: self.snapshot.scan((lo.clone(), hi.clone())),
            own,
            stored_front: None,
            stored_back: None,
            own_front: None,
            own_back: None,
            reads: self.tracks_reads().then(|| ScanReads {
                set: &self.reads,
                lo,
                hi,
                front: None,
                back: None,
                whole: false,
            }),
            finished: false,
        }
    }

    /// Buffers `key = value` (an empty value is a value). Visible to this transaction's
    /// reads at once, to others after commit.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.buffer(key.as_ref(), Some(value.as_ref()))
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        self.buffer(key.as_ref(), None)
    }

    fn buffer(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if self.options.read_only {
            return Err(Error::InvalidArgument(
                "a read-only transaction cannot write".into(),
            ));
        }
        let value_len = value.map_or(0, <[u8]>::len);
        crate::batch::check_sizes(key.len(), value_len)?;
        // Overwriting a buffered key replaces its entry, so only the difference counts.
        let replaced = self.writes.get(key).map_or(0, |old| {
            entry_encoded_len(key.len(), old.as_ref().map_or(0, Bytes::len))
        });
        let kept = self.write_bytes - replaced;
        let added = entry_encoded_len(key.len(), value_len);
        total_problem("transaction", kept, added, self.max_write_bytes())
            .map_err(Error::InvalidArgument)?;
        self.writes.insert(
            Bytes::copy_from_slice(key),
            value.map(Bytes::copy_from_slice),
        );
        self.write_bytes = kept + added;
        Ok(())
    }

    fn max_write_bytes(&self) -> usize {
        self.options
            .max_write_bytes
            .map_or(WriteBatch::MAX_BYTES, |max| max.min(WriteBatch::MAX_BYTES))
    }

    /// Applies the buffered writes atomically, as one batch with consecutive versions, and
    /// returns the version of its last entry (for a transaction that wrote nothing, its
    /// snapshot version). Fails with [`Error::Conflict`] (retryable) if a concurrent commit
    /// broke this transaction's isolation; nothing is applied then.
    pub fn commit(mut self) -> Result<Version> {
        let result = self.commit_writes();
        self.finish();
        result
    }

    fn commit_writes(&mut self) -> Result<Version> {
        if self.writes.is_empty() {
            return Ok(self.version());
        }
        let writes = std::mem::take(&mut self.writes);
        self.write_bytes = 0;
        // The buffer was bounded by the same limit as it grew, so every entry fits.
        let mut batch = WriteBatch::with_max_bytes(self.max_write_bytes());
        for (key, value) in &writes {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            };
        }
        let serializable = self.options.isolation == Isolation::Serializable;
        let check = TxnCheck {
            start: self.version(),
            reads: serializable.then(|| std::mem::take(&mut *self.reads.lock())),
            writes: if serializable {
                Vec::new()
            } else {
                writes.into_keys().collect()
            },
        };
        let durability = self
            .options
            .durability
            .unwrap_or(self.inner.opts().durability);
        commit::commit(&self.inner, batch, durability, Some(check))
    }

    /// Discards the buffered writes (as dropping the transaction does).
    pub fn rollback(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::take(&mut self.open) {
            self.inner.txns().lock().finish(self.snapshot.version());
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What a serializable transaction's scan has read so far: `lo..=front` from the front,
/// `back..hi` from the back, or the whole range once it ran out.
struct ScanReads<'t> {
    set: &'t Mutex<ReadSet>,
    lo: Bound<Bytes>,
    hi: Bound<Bytes>,
    front: Option<usize>,
    back: Option<usize>,
    whole: bool,
}

impl ScanReads<'_> {
    fn read_front(&mut self, key: &Bytes) {
        let range = KeyRange {
            lo: self.lo.clone(),
            hi: Bound::Included(key.clone()),
        };
        Self::update(self.set, &mut self.front, range);
    }

    fn read_back(&mut self, key: &Bytes) {
        let range = KeyRange {
            lo: Bound::Included(key.clone()),
            hi: self.hi.clone(),
        };
        Self::update(self.set, &mut self.back, range);
    }

    fn read_all(&mut self) {
        if !std::mem::replace(&mut self.whole, true) {
            let range = KeyRange {
                lo: self.lo.clone(),
                hi: self.hi.clone(),
            };
            Self::update(self.set, &mut self.front, range);
        }
    }

    fn update(set: &Mutex<ReadSet>, slot: &mut Option<usize>, range: KeyRange) {
        let mut set = set.lock();
        match *slot {
            Some(i) => set.set_range(i, range),
            None => *slot = Some(set.add_range(range)),
        }
    }
}

/// A transaction's scan: its snapshot's pairs merged with its own writes (which win, and
/// whose deletes hide keys). Double-ended; an error is yielded once and ends it.
pub struct TransactionIter<'t> {
    stored: Iter,
    own: btree_map::Range<'t, Bytes, Option<Bytes>>,
    stored_front: Option<(Bytes, Bytes)>,
    stored_back: Option<(Bytes, Bytes)>,
    own_front: Option<(&'t Bytes, &'t Option<Bytes>)>,
    own_back: Option<(&'t Bytes, &'t Option<Bytes>)>,
    reads: Option<ScanReads<'t>>,
    finished: bool,
}

/// Which end of the range a step takes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Front,
    Back,
}

impl TransactionIter<'_> {
    fn step(&mut self, end: End) -> Option<Result<(Bytes, Bytes)>> {
        if self.finished {
            return None;
        }
        loop {
            if let Err(e) = self.fill(end) {
                self.finished = true;
                if let Some(r) = &mut self.reads {
                    r.read_all();
                }
                return Some(Err(e));
            }
            let (stored, own) = match end {
                End::Front => (&mut self.stored_front, &mut self.own_front),
                End::Back => (&mut self.stored_back, &mut self.own_back),
            };
            // The next key from this end: the smaller one going forward, the larger back.
            let take_own = match (stored.as_ref(), own.as_ref()) {
                (None, None) => {
                    self.finished = true;
                    if let Some(r) = &mut self.reads {
                        r.read_all();
                    }
                    return None;
                }
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some((s, _)), Some((o, _))) => {
                    if *o == s {
                        *stored = None; // shadowed by this transaction's write
                        true
                    } else {
                        (end == End::Front) == (*o < s)
                    }
                }
            };
            let pair = if take_own {
                let (key, value) = own.take().expect("chosen above");
                if let Some(r) = &mut self.reads {
                    Self::note(r, end, key);
                }
                match value {
                    Some(v) => (key.clone(), v.clone()),
                    None => continue, // deleted by this transaction
                }
            } else {
                let pair = stored.take().expect("chosen above");
                if let Some(r) = &mut self.reads {
                    Self::note(r, end, &pair.0);
                }
                pair
            };
            return Some(Ok(pair));
        }
    }

    fn note(reads: &mut ScanReads<'_>, end: End, key: &Bytes) {
        match end {
            End::Front => reads.read_front(key),
            End::Back => reads.read_back(key),
        }
    }

    /// Refills this end's lookahead from both sources. A source whose own end ran dry
    /// hands over what the other end holds (the last element left).
    fn fill(&mut self, end: End) -> Result<()> {
        match end {
            End::Front => {
                if self.stored_front.is_none() {
                    self.stored_front = match self.stored.next() {
                        Some(pair) => Some(pair?),
                        None => self.stored_back.take(),
                    };
                }
                if self.own_front.is_none() {
                    self.own_front = self.own.next().or_else(|| self.own_back.take());
                }
            }
            End::Back => {
                if self.stored_back.is_none() {
                    self.stored_back = match self.stored.next_back() {
                        Some(pair) => Some(pair?),
                        None => self.stored_front.take(),
                    };
                }
                if self.own_back.is_none() {
                    self.own_back = self.own.next_back().or_else(|| self.own_front.take());
                }
            }
        }
        Ok(())
    }
}

impl Iterator for TransactionIter<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step(End::Front)
    }
}

impl DoubleEndedIterator for TransactionIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(End::Back)
    }
}
