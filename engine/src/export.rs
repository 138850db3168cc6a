//! Arrow export: snapshots, key history and the change feed as Arrow record batches, so
//! analytics tools (pandas, polars, DuckDB) read the store without copying code.
//!
//! Every batch has the schema of [`export_schema`]: `key` (binary), `value` (binary, null
//! for a delete), `version` (uint64), `time` (timestamp, µs, UTC: the commit time) and
//! `deleted` (bool: the row is a delete; always false in a scan of a state). Files written
//! by `chronokv export` also carry the store's version in the schema metadata
//! ([`export_schema_with`]).

use crate::error::{Error, Result};
use crate::history::{Change, HistoryEntry, Snapshot};
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chronokv_snapshot::{Entry, VisibleEntries};
use std::collections::HashMap;
use std::ops::RangeBounds;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// The schema of every exported batch.
pub fn export_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("key", DataType::Binary, false),
                Field::new("value", DataType::Binary, true),
                Field::new("version", DataType::UInt64, false),
                Field::new(
                    "time",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    false,
                ),
                Field::new("deleted", DataType::Boolean, false),
            ]))
        })
        .clone()
}

/// [`export_schema`] with `metadata` (for example `chronokv.version`, the store's version
/// an export was taken at) in the schema, as export files carry it. Batches of
/// [`export_schema`] convert with `RecordBatch::with_schema`.
pub fn export_schema_with(metadata: HashMap<String, String>) -> SchemaRef {
    Arc::new(export_schema().as_ref().clone().with_metadata(metadata))
}

/// Builds one batch row by row.
struct Rows {
    keys: BinaryBuilder,
    values: BinaryBuilder,
    versions: UInt64Builder,
    times: TimestampMicrosecondBuilder,
    deleted: BooleanBuilder,
    len: usize,
}

impl Rows {
    fn new() -> Self {
        Rows {
            keys: BinaryBuilder::new(),
            values: BinaryBuilder::new(),
            versions: UInt64Builder::new(),
            times: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            deleted: BooleanBuilder::new(),
            len: 0,
        }
    }

    fn push(&mut self, key: &[u8], value: Option<&[u8]>, version: u64, micros: u64) {
        self.keys.append_value(key);
        self.values.append_option(value);
        self.versions.append_value(version);
        self.times
            .append_value(i64::try_from(micros).unwrap_or(i64::MAX));
        self.deleted.append_value(value.is_none());
        self.len += 1;
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.keys.finish()),
            Arc::new(self.values.finish()),
            Arc::new(self.versions.finish()),
            Arc::new(self.times.finish()),
            Arc::new(self.deleted.finish()),
        ];
        RecordBatch::try_new(export_schema(), cols)
            .map_err(|e| Error::InvalidArgument(format!("arrow export: {e}")))
    }
}

fn micros(t: SystemTime) -> u64 {
    crate::history::micros_of(t)
}

/// The visible pairs of a snapshot's key range as Arrow batches of at most `batch_rows`
/// rows. An error ends the iteration.
pub struct ArrowBatches {
    entries: VisibleEntries<Error>,
    batch_rows: usize,
    done: bool,
}

impl Iterator for ArrowBatches {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        next_batch(
            &mut self.entries,
            self.batch_rows,
            &mut self.done,
            |rows, e: Entry| rows.push(&e.key, Some(&e.value), e.version.0, e.time),
        )
    }
}

/// The next record batch of at most `batch_rows` rows taken from `source` by `push`; an
/// error is yielded once and sets `done`, as does the end of `source`. Serves every batch
/// iterator of this module.
fn next_batch<T>(
    source: &mut impl Iterator<Item = Result<T>>,
    batch_rows: usize,
    done: &mut bool,
    mut push: impl FnMut(&mut Rows, T),
) -> Option<Result<RecordBatch>> {
    if *done {
        return None;
    }
    let mut rows = Rows::new();
    while rows.len < batch_rows {
        match source.next() {
            Some(Ok(item)) => push(&mut rows, item),
            Some(Err(e)) => {
                *done = true;
                return Some(Err(e));
            }
            None => {
                *done = true;
                break;
            }
        }
    }
    (rows.len > 0).then(|| rows.finish())
}

impl Snapshot {
    /// The live pairs of `range` at this snapshot as Arrow record batches of at most
    /// `batch_rows` rows (columns key, value, version, time; see [`export_schema`]).
    pub fn scan_arrow<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        batch_rows: usize,
    ) -> ArrowBatches {
        let (lo, hi) = crate::read::owned_bounds(&range);
        ArrowBatches {
            entries: self.entries(lo, hi),
            batch_rows: batch_rows.max(1),
            done: false,
        }
    }
}

/// A key's history (as [`crate::Db::history`] returns it) as one batch.
pub fn history_batch(key: &[u8], history: &[HistoryEntry]) -> Result<RecordBatch> {
    let mut rows = Rows::new();
    for h in history {
        rows.push(key, h.value.as_deref(), h.version.0, micros(h.time));
    }
    rows.finish()
}

/// Changes (as [`crate::Db::changes`] returns them) as one batch, in version order.
pub fn changes_batch(changes: &[Change]) -> Result<RecordBatch> {
    let mut rows = Rows::new();
    for c in changes {
        rows.push(&c.key, c.value.as_deref(), c.version.0, micros(c.time));
    }
    rows.finish()
}

/// Changes (from [`crate::Db::changes`], a subscription, or history rows made into
/// changes) as Arrow batches of at most `batch_rows` rows, streamed. An error ends it.
pub struct ChangeBatches<I> {
    changes: I,
    batch_rows: usize,
    done: bool,
}

/// [`ChangeBatches`] over `changes`.
pub fn change_batches<I>(changes: I, batch_rows: usize) -> ChangeBatches<I>
where
    I: Iterator<Item = Result<Change>>,
{
    ChangeBatches {
        changes,
        batch_rows: batch_rows.max(1),
        done: false,
    }
}

impl<I> Iterator for ChangeBatches<I>
where
    I: Iterator<Item = Result<Change>>,
{
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        next_batch(
            &mut self.changes,
            self.batch_rows,
            &mut self.done,
            |rows, c: Change| rows.push(&c.key, c.value.as_deref(), c.version.0, micros(c.time)),
        )
    }
}
