//! Time travel: snapshots, the retention horizon, key history and the change feed.
//!
//! # What compaction keeps, and why reads of the past are safe
//!
//! Every merge computes its [`GcRules`] in [`Inner::gc_rules`]: the live snapshots, the
//! retention bound `retain_from` (the *horizon*, lowered to the lowest history floor while a
//! history or change-feed read runs) and the per-key history depth. The rules are computed
//! *after* the merge picked its inputs, under the `readers` lock, and every snapshot is
//! registered under the same lock, reading the visible version inside it. So for any merge
//! and any snapshot at version `v`, one of two things holds:
//!
//! - the snapshot was registered first: the merge's rules contain `v`, and the merge keeps
//!   the newest version `<= v` of every key; or
//! - the rules came first: then either `v` was the visible version at registration, which
//!   is at least every version the merge's inputs hold, so `v` reads the newest version of
//!   each key, which every merge keeps; or `v` is an older version that was checked against
//!   the horizon, which only grows, so `v >=` the merge's `retain_from`, and a merge keeps
//!   every version `>= retain_from` plus the newest one below it.
//!
//! The horizon survives restarts: every compaction edit records the bound it used
//! (`history_horizon` in the manifest), and an open starts from the largest one recorded.
//!
//! # Versions and times
//!
//! The horizon comes from the store's history contract (stored in the manifest, owned by
//! [`RetentionState`]): the newest version committed at or before `now - window`, looked
//! up in the [`chronokv_snapshot::TimeIndex`]. Without retention it is one past
//! the visible version: only the present (and live snapshots) can be read, and a merge may
//! drop even the newest tombstone, since no change feed can ask for it.

use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::manifest::VersionEdit;
use crate::read::{is_empty_range, owned_bounds, prefix_bounds, range_iter, Iter};
use crate::retention::{Readers, Retention};
use bytes::Bytes;
use chronokv_compaction::{GcFilter, GcRules};
use chronokv_snapshot::merge::Merge;
use chronokv_snapshot::{Entry, Kind, Version};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch of `t` (0 before the epoch).
pub fn micros_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `SystemTime` of a commit time in microseconds.
pub fn time_of_micros(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

/// Which state to read (a snapshot) or restore to ([`crate::Db::restore_to`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The latest committed state.
    Latest,
    /// The state right after the commit of this version.
    Version(Version),
    /// The state with every commit made at or before this time.
    Time(SystemTime),
}

impl Inner {
    /// Records `contract` in the manifest (fsynced), then makes it the one the store runs
    /// by; returns the previous one. Under the tree lock, so it is ordered with every other
    /// manifest edit, and a manifest rotation snapshots the new contract.
    pub fn set_retention(&self, contract: Retention) -> Result<Retention> {
        let contract = Retention::new(contract.window, contract.versions_per_key);
        let mut tree = self.tree().lock();
        let edit = VersionEdit {
            retention: Some(contract),
            ..Default::default()
        };
        self.append_edit(&mut tree, &edit)?;
        let mut readers = self.readers();
        let previous = readers.retention.contract();
        readers.retention.set_contract(contract);
        Ok(previous)
    }

    /// Drops time marks that no read can need any more: those older than the retention
    /// window (all but the newest without one). Takes `readers`, so call it without
    /// `times` locked (lock order).
    pub fn prune_times(&self) {
        let cutoff = self
            .readers()
            .retention
            .time_cutoff(micros_of(SystemTime::now()));
        self.times().prune_before(cutoff);
    }

    /// Moves the horizon forward to what the retention window allows and returns it. Call
    /// with `readers` locked.
    fn advance_horizon(&self, readers: &mut Readers) -> Version {
        let visible = self.snapshot_version();
        let times = self.times();
        readers
            .retention
            .advance(micros_of(SystemTime::now()), visible, &times)
    }

    /// The oldest version a new snapshot can read now (the latest state is always readable).
    pub fn oldest_readable(&self) -> Version {
        let mut readers = self.readers();
        let horizon = self.advance_horizon(&mut readers);
        horizon.min(self.snapshot_version())
    }

    /// The store's history contract as recorded.
    pub fn retention(&self) -> Retention {
        self.readers().retention.contract()
    }

    /// What a merge that has picked its inputs must keep (see the module documentation).
    pub fn gc_rules(&self) -> GcRules {
        let mut readers = self.readers();
        self.advance_horizon(&mut readers);
        // Planted bug (G6): compaction forgets the live snapshots.
        let snapshots = if chronokv_vfs::bug!("gc-ignores-snapshots") {
            Vec::new()
        } else {
            readers.registry.snapshots()
        };
        readers.retention.gc_rules(&readers.registry, snapshots)
    }

    /// The error for a read as of `requested`, older than the oldest readable version.
    fn time_not_retained(&self, requested: SystemTime, oldest: Version) -> Error {
        let oldest_time = self
            .times()
            .time_of(oldest)
            .filter(|_| oldest.0 > 0)
            .map(time_of_micros);
        Error::TimeNotRetained {
            requested,
            oldest,
            oldest_time,
        }
    }

    /// Registers a snapshot of the state `at` asks for and returns its version.
    fn register_snapshot(&self, at: At) -> Result<Version> {
        let mut readers = self.readers();
        let visible = self.snapshot_version();
        let horizon = self.advance_horizon(&mut readers);
        let version = match at {
            At::Latest => visible,
            At::Version(v) if v > visible => {
                return Err(Error::InvalidArgument(format!(
                    "version {v} is not committed yet (the latest is {visible})"
                )))
            }
            At::Version(v) => v,
            At::Time(t) => {
                // Not in the `match` head: its guard would live through the arms, and the
                // error takes `times` again.
                let found = self.times().version_at(micros_of(t), visible);
                match found {
                    Some(v) if v >= horizon.min(visible) || readers.registry.has_snapshot(v) => v,
                    _ => return Err(self.time_not_retained(t, horizon.min(visible))),
                }
            }
        };
        if version < horizon.min(visible) && !readers.registry.has_snapshot(version) {
            return Err(Error::VersionNotRetained {
                requested: version,
                oldest: horizon.min(visible),
            });
        }
        readers.registry.add_snapshot(version);
        Ok(version)
    }

    /// Registers a history floor at the horizon (or at `from`, which must not be older) and
    /// returns it with the visible version.
    pub(crate) fn register_floor(
        self: &Arc<Self>,
        from: Option<Version>,
    ) -> Result<(Floor, Version)> {
        let mut readers = self.readers();
        let visible = self.snapshot_version();
        let horizon = self.advance_horizon(&mut readers);
        let at = from.unwrap_or(horizon);
        if at < horizon {
            return Err(Error::VersionNotRetained {
                requested: at,
                oldest: horizon.min(visible),
            });
        }
        readers.registry.add_floor(at);
        Ok((
            Floor {
                inner: self.clone(),
                at,
            },
            visible,
        ))
    }
}

/// Keeps every version `>= at` from compaction while a history read runs.
pub(crate) struct Floor {
    inner: Arc<Inner>,
    at: Version,
}

impl Floor {
    /// The oldest version kept.
    pub(crate) fn at(&self) -> Version {
        self.at
    }

    /// Moves the floor up to `to` (a reader done with the versions below it), so compaction
    /// may drop them. Never moves it down.
    pub(crate) fn advance(&mut self, to: Version) {
        if to <= self.at {
            return;
        }
        let mut readers = self.inner.readers();
        readers.registry.add_floor(to);
        readers.registry.remove_floor(self.at);
        self.at = to;
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.inner.readers().registry.remove_floor(self.at);
    }
}

/// A consistent, repeatable view of the database at one version. Reads through it see
/// exactly the commits up to [`Snapshot::version`], whatever is written, flushed or
/// compacted meanwhile: compaction keeps what a live snapshot reads, until it is dropped.
///
/// Cheap to hold, but every live snapshot keeps the versions it sees on disk, so drop it
/// when done. `Send + Sync`.
pub struct Snapshot {
    inner: Arc<Inner>,
    version: Version,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn new(inner: &Arc<Inner>, at: At) -> Result<Snapshot> {
        let version = inner.register_snapshot(at)?;
        Ok(Snapshot {
            inner: inner.clone(),
            version,
        })
    }

    /// The version this snapshot reads: every commit up to and including it is visible.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The commit time of [`Snapshot::version`], if the time index still covers it
    /// (`None` for version 0, the empty store, or a version older than the index).
    pub fn time(&self) -> Option<SystemTime> {
        self.inner
            .times()
            .time_of(self.version)
            .filter(|_| self.version.0 > 0)
            .map(time_of_micros)
    }

    /// The value of `key` at this snapshot, or `None` if it was absent or deleted.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.inner.current_view().get(key.as_ref(), self.version)
    }

    /// Every live `(key, value)` pair at this snapshot's version, in key order (reversible).
    pub fn iter(&self) -> Iter {
        self.scan::<&[u8], _>(..)
    }

    /// The live pairs of `range` at this snapshot, in key order (reversible).
    pub fn scan<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (lo, hi) = owned_bounds(&range);
        range_iter(self.inner.current_view(), self.version, lo, hi)
    }

    /// The live pairs whose keys start with `prefix`, at this snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        range_iter(self.inner.current_view(), self.version, lo, hi)
    }

    /// The visible entries of `range` (with their versions and commit times), for export.
    pub(crate) fn entries(
        &self,
        lo: Bound<Bytes>,
        hi: Bound<Bytes>,
    ) -> chronokv_snapshot::VisibleEntries<Error> {
        let view = self.inner.current_view();
        let sources = if is_empty_range(&lo, &hi) {
            Vec::new()
        } else {
            view.sources_at(&lo, &hi, Some(self.version))
        };
        chronokv_snapshot::VisibleEntries::new(sources, self.version)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.readers().registry.remove_snapshot(self.version);
    }
}

/// One retained version of a key, as [`crate::Db::history`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The commit version.
    pub version: Version,
    /// The commit time (millisecond resolution).
    pub time: SystemTime,
    /// The value written, or `None` for a delete.
    pub value: Option<Bytes>,
}

impl HistoryEntry {
    /// This version of `key` as a change-feed row (what exports of a key range's history
    /// write: one [`Change`] per version).
    pub fn into_change(self, key: Bytes) -> Change {
        Change {
            version: self.version,
            time: self.time,
            key,
            value: self.value,
        }
    }
}

/// One committed put or delete, as [`crate::Db::changes`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The commit version (a batch's entries have consecutive versions).
    pub version: Version,
    /// The commit time (millisecond resolution).
    pub time: SystemTime,
    /// The key.
    pub key: Bytes,
    /// The value written, or `None` for a delete.
    pub value: Option<Bytes>,
}

fn value_of(e: &Entry) -> Option<Bytes> {
    (e.kind == Kind::Put).then(|| e.value.clone())
}

/// Every retained version of `key`, newest first.
pub fn history(inner: &Arc<Inner>, key: &[u8]) -> Result<Vec<HistoryEntry>> {
    let (floor, visible) = inner.register_floor(None)?;
    let view = inner.current_view();
    let k = Bound::Included(Bytes::copy_from_slice(key));
    let versions = Merge::forward(view.sources(&k, &k)).filter(|r| match r {
        Ok(e) => e.version <= visible,
        Err(_) => true,
    });
    // The versions the rules keep, whether or not compaction has got round to dropping the
    // others yet: the answer does not depend on when compaction ran.
    let rules = inner.readers().retention.history_rules(floor.at);
    let mut out = Vec::new();
    for e in GcFilter::new(versions, &rules, true) {
        let e = e?;
        out.push(HistoryEntry {
            version: e.version,
            time: time_of_micros(e.time),
            value: value_of(&e),
        });
    }
    drop(floor);
    Ok(out)
}

/// Every retained version of every key in `lo..hi`: key order, newest version first within
/// a key, filtered by the same rules as [`history`]. Streams (one merge over the range);
/// the floor it holds keeps what it has not read yet.
pub struct HistoryScan {
    entries: GcFilter<Box<dyn Iterator<Item = Result<Entry>> + Send>>,
    visible: Version,
    _floor: Floor,
}

impl HistoryScan {
    /// The latest version when the scan began: it reads the history up to it.
    pub fn version(&self) -> Version {
        self.visible
    }
}

impl Iterator for HistoryScan {
    type Item = Result<(Bytes, HistoryEntry)>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.entries.next()?.map(|e| {
            let h = HistoryEntry {
                version: e.version,
                time: time_of_micros(e.time),
                value: value_of(&e),
            };
            (e.key, h)
        }))
    }
}

pub(crate) fn history_scan(
    inner: &Arc<Inner>,
    lo: Bound<Bytes>,
    hi: Bound<Bytes>,
) -> Result<HistoryScan> {
    let (floor, visible) = inner.register_floor(None)?;
    let view = inner.current_view();
    let sources = if is_empty_range(&lo, &hi) {
        Vec::new()
    } else {
        view.sources(&lo, &hi)
    };
    // The sources borrow nothing from the view but its runs, which they hold themselves;
    // the view goes with them.
    let versions = Merge::forward(sources).filter(move |r| match r {
        Ok(e) => e.version <= visible,
        Err(_) => true,
    });
    let versions: Box<dyn Iterator<Item = Result<Entry>> + Send> = Box::new(versions);
    let rules = inner.readers().retention.history_rules(floor.at);
    Ok(HistoryScan {
        entries: GcFilter::new(versions, &rules, true),
        visible,
        _floor: floor,
    })
}

pub(crate) fn change_of(e: Entry) -> Change {
    Change {
        version: e.version,
        time: time_of_micros(e.time),
        value: value_of(&e),
        key: e.key,
    }
}
