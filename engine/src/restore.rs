//! Restore to a version: new commits that make the present equal a past state, like Delta
//! Lake's `RESTORE TABLE .. TO VERSION AS OF`. The history in between stays readable: a
//! restore only adds versions.
//!
//! It merges a scan of the past (a snapshot at the target) with a scan of the present in
//! key order and writes, for each key whose value differs, a put of the past value, and for
//! each key that exists now but did not then, a delete. The differences are committed as
//! serializable transactions, one per key range, each at most
//! [`RestoreOptions::max_batch_bytes`] of writes, in key order:
//!
//! - A restore whose writes fit one batch is one atomic commit: readers see the present
//!   before it or the past state after it, nothing in between.
//! - A larger one commits key range after key range. Each commit is atomic, so a reader
//!   between two of them sees the keys below the boundary restored and the keys above it
//!   as they were; a reader of the store after the last commit sees exactly the past state.
//!
//! Each range's transaction tracks the present keys it read, so a concurrent commit to a
//! key of that range makes it conflict; it is then redone from a fresh present (up to
//! [`RestoreOptions::max_retries`] times, then [`crate::Error::Conflict`]). So when a
//! range's commit succeeds, that range equals the past at that moment.
//! Memory: the past and present scans, and the range's writes twice (collected, then
//! buffered in the transaction).

use crate::error::{Error, Result};
use crate::history::{At, Snapshot};
use crate::inner::Inner;
use crate::txn::{self, Isolation, TransactionOptions};
use bytes::Bytes;
use chronokv_snapshot::Version;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;

/// How [`crate::Db::restore_to_with`] commits.
#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    /// The most bytes (encoded as a batch) one commit of the restore writes. A restore
    /// whose writes fit is atomic. Default 64 MiB; capped at [`crate::WriteBatch::MAX_BYTES`].
    pub max_batch_bytes: usize,
    /// How often a range whose transaction conflicted with a concurrent commit is redone.
    pub max_retries: usize,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            max_batch_bytes: 64 << 20,
            max_retries: 16,
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreReport {
    /// The version of the restore's last commit, or the latest version if nothing differed.
    pub version: Version,
    /// The version restored to (the past state the present now equals).
    pub restored: Version,
    /// Commits made (0 if the present already equalled the past).
    pub commits: usize,
    /// Keys set back to their past value.
    pub puts: u64,
    /// Keys deleted because they did not exist then.
    pub deletes: u64,
    /// Key ranges redone because a concurrent commit conflicted with them.
    pub retries: usize,
}

type Difference = (Bytes, Option<Bytes>);

/// The next key where the past and the present differ, with its past value (`None`:
/// delete); `Ok(None)` when both scans ran out.
fn next_difference<A, B>(
    past: &mut Peekable<A>,
    present: &mut Peekable<B>,
) -> Result<Option<Difference>>
where
    A: Iterator<Item = Result<(Bytes, Bytes)>>,
    B: Iterator<Item = Result<(Bytes, Bytes)>>,
{
    loop {
        let order = match (past.peek(), present.peek()) {
            (None, None) => return Ok(None),
            (Some(Err(_)), _) | (_, Some(Err(_))) => {
                let err = match (past.next(), present.next()) {
                    (Some(Err(e)), _) | (_, Some(Err(e))) => e,
                    _ => Error::InvalidArgument("restore: a scan error vanished".into()),
                };
                return Err(err);
            }
            (Some(Ok((a, _))), Some(Ok((b, _)))) => a.cmp(b),
            (Some(Ok(_)), None) => std::cmp::Ordering::Less,
            (None, Some(Ok(_))) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let (k, v) = past.next().expect("peeked")?;
                return Ok(Some((k, Some(v))));
            }
            std::cmp::Ordering::Greater => {
                let (k, _) = present.next().expect("peeked")?;
                return Ok(Some((k, None)));
            }
            std::cmp::Ordering::Equal => {
                let (k, then) = past.next().expect("peeked")?;
                let (_, now) = present.next().expect("peeked")?;
                if then != now {
                    return Ok(Some((k, Some(then))));
                }
            }
        }
    }
}

/// One range's writes: the differences from `lo` on, up to the byte budget.
struct Chunk {
    writes: Vec<Difference>,
    /// True when the scans ran out: nothing after this range differs.
    last: bool,
}

/// The differences between `past` and `present` (scans from the same key on), until their
/// encoded size reaches `max`. Reading `present` one pair past the last difference (a
/// peek) makes a transaction's scan record the whole range the chunk covers.
fn collect_chunk<A, B>(past: A, present: B, max: usize) -> Result<Chunk>
where
    A: Iterator<Item = Result<(Bytes, Bytes)>>,
    B: Iterator<Item = Result<(Bytes, Bytes)>>,
{
    let mut past = past.peekable();
    let mut now = present.peekable();
    let mut writes = Vec::new();
    let mut bytes = 0usize;
    while let Some((k, v)) = next_difference(&mut past, &mut now)? {
        bytes += chronokv_wal::entry_encoded_len(k.len(), v.as_ref().map_or(0, Bytes::len));
        writes.push((k, v));
        if bytes >= max {
            return Ok(Chunk {
                writes,
                last: false,
            });
        }
    }
    Ok(Chunk { writes, last: true })
}

/// Commits one range's differences from `lo` in a serializable transaction; returns the
/// chunk it wrote and the commit's version.
fn restore_chunk(
    inner: &Arc<Inner>,
    past: &Snapshot,
    lo: &Bound<Bytes>,
    opts: RestoreOptions,
) -> Result<(Chunk, Version)> {
    let mut tx = txn::begin(
        inner,
        TransactionOptions {
            isolation: Isolation::Serializable,
            max_write_bytes: Some(crate::WriteBatch::MAX_BYTES),
            ..TransactionOptions::default()
        },
    );
    // The present is the transaction's snapshot, read through the transaction so its read
    // set holds the range: a concurrent commit there makes the commit conflict.
    let range = (lo.clone(), Bound::<Bytes>::Unbounded);
    let chunk = collect_chunk(
        past.scan(range.clone()),
        tx.scan(range),
        opts.max_batch_bytes,
    )?;
    for (k, v) in &chunk.writes {
        match v {
            Some(v) => tx.put(k, v)?,
            None => tx.delete(k)?,
        }
    }
    let version = tx.commit()?;
    Ok((chunk, version))
}

/// Restores the present to the state `at` names (see the module documentation).
pub(crate) fn restore_to(
    inner: &Arc<Inner>,
    at: At,
    opts: RestoreOptions,
) -> Result<RestoreReport> {
    let past = Snapshot::new(inner, at)?;
    let opts = RestoreOptions {
        max_batch_bytes: opts
            .max_batch_bytes
            .clamp(1, crate::WriteBatch::MAX_BYTES / 2),
        ..opts
    };
    let mut report = RestoreReport {
        version: inner.snapshot_version(),
        restored: past.version(),
        commits: 0,
        puts: 0,
        deletes: 0,
        retries: 0,
    };
    let mut lo = Bound::Unbounded;
    loop {
        let mut attempt = 0;
        let (chunk, version) = loop {
            match restore_chunk(inner, &past, &lo, opts) {
                Err(Error::Conflict { .. }) if attempt < opts.max_retries => {
                    attempt += 1;
                    report.retries += 1;
                }
                other => break other?,
            }
        };
        if !chunk.writes.is_empty() {
            report.commits += 1;
            report.version = version;
        }
        for (_, v) in &chunk.writes {
            if v.is_some() {
                report.puts += 1;
            } else {
                report.deletes += 1;
            }
        }
        match chunk.writes.last() {
            Some((k, _)) if !chunk.last => lo = Bound::Excluded(k.clone()),
            _ => break,
        }
    }
    if report.commits == 0 {
        report.version = inner.snapshot_version();
    }
    Ok(report)
}
