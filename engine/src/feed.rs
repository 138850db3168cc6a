//! The change feed as a stream: [`ChangeFeed`] (a range of versions) and [`Subscription`]
//! (from a version on, waiting for commits as they happen).
//!
//! Runs are sorted by key, not by version, so there is no cheap version-ordered merge of
//! them. The feed reads in *version windows* instead: it registers a history floor at its
//! cursor (so compaction keeps every version it has not read yet), merges the sources
//! whose versions overlap `[cursor, cursor + W)`, keeps only the entries whose version
//! falls in the window, sorts them by version, yields them, and moves the floor and the
//! cursor to the window's end. Every entry has its own version, so a window holds at most
//! `W` changes; it also holds at most [`FeedOptions::window_bytes`] of keys and values:
//! when a window grows past that, its newest entries are let go and the window ends before
//! them (a single change larger than the budget is still yielded, alone).
//!
//! The cost is one pass over the overlapping runs per window: roughly `changes / W` scans
//! of the part of the store whose versions overlap the range.

use crate::error::Result;
use crate::history::{change_of, Change, Floor};
use crate::inner::Inner;
use crate::writer::Wait;
use chronokv_snapshot::merge::Merge;
use chronokv_snapshot::Version;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much a change feed or a subscription reads at once.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// The most versions (so changes) one window covers. Default 65,536.
    pub window_versions: u64,
    /// The most key and value bytes (plus 64 per change) one window holds. Default 16 MiB.
    pub window_bytes: usize,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            window_versions: 65_536,
            window_bytes: 16 << 20,
        }
    }
}

impl FeedOptions {
    fn normalized(self) -> FeedOptions {
        FeedOptions {
            window_versions: self.window_versions.max(1),
            window_bytes: self.window_bytes.max(1),
        }
    }
}

/// The most a feed held in memory at once, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedPeak {
    /// Changes held at once (at most [`FeedOptions::window_versions`]).
    pub changes: usize,
    /// Their bytes as [`FeedOptions::window_bytes`] counts them.
    pub bytes: usize,
}

/// What a window counts for one change: its key and value, plus a fixed overhead.
fn cost(c: &Change) -> usize {
    c.key.len() + c.value.as_ref().map_or(0, |v| v.len()) + 64
}

/// A change ordered by version alone (versions are unique), for the window's max-heap.
struct ByVersion(Change);

impl PartialEq for ByVersion {
    fn eq(&self, other: &Self) -> bool {
        self.0.version == other.0.version
    }
}
impl Eq for ByVersion {}
impl PartialOrd for ByVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.version.cmp(&other.0.version)
    }
}

/// Reads the changes with versions in `[from, end)` within the byte budget. Returns them in
/// version order with the end the window really covers (`<= end`). The caller holds a
/// floor `<= from`.
fn read_window(
    inner: &Inner,
    from: u64,
    end: u64,
    opts: FeedOptions,
    peak: &mut FeedPeak,
) -> Result<(Vec<Change>, u64)> {
    let mut end = end;
    let mut heap = BinaryHeap::new();
    let mut bytes = 0usize;
    let view = inner.current_view();
    for e in Merge::forward(view.version_sources(Version(from), Version(end - 1))) {
        let e = e?;
        if e.version.0 < from || e.version.0 >= end {
            continue;
        }
        let c = change_of(e);
        bytes += cost(&c);
        heap.push(ByVersion(c));
        peak.changes = peak.changes.max(heap.len());
        peak.bytes = peak.bytes.max(bytes);
        // Over budget: give up the newest changes; the window now ends before them.
        while bytes > opts.window_bytes && heap.len() > 1 {
            let ByVersion(dropped) = heap.pop().expect("the heap holds two or more");
            bytes -= cost(&dropped);
            end = dropped.version.0;
        }
    }
    Ok((
        heap.into_sorted_vec().into_iter().map(|b| b.0).collect(),
        end,
    ))
}

/// Where a feed or subscription reads next after a window that ended at `end`: `end`, or,
/// after an empty window, the next version any source may hold (capped at `limit`).
/// Versions can be sparse (history below the horizon compacted away, or a damaged
/// manifest's claims), and stepping a window at a time through an empty range of 2^60
/// versions would never end.
fn next_cursor(inner: &Inner, empty: bool, end: u64, limit: u64) -> u64 {
    if empty {
        next_held_version(inner, end).min(limit).max(end)
    } else {
        end
    }
}

/// The smallest version at or after `from` that the current view's sources may hold (a
/// run's range says where its versions lie; a memtable is taken to hold `from` on), or
/// `u64::MAX` when none holds any.
fn next_held_version(inner: &Inner, from: u64) -> u64 {
    let view = inner.current_view();
    let in_memtables = view
        .memtables()
        .any(|m| !m.is_empty() && m.max_version().0 >= from);
    if in_memtables {
        return from;
    }
    view.runs()
        .map(|(_, r)| r.reader.meta())
        .filter(|m| m.max_version.0 >= from)
        .map(|m| m.min_version.0.max(from))
        .min()
        .unwrap_or(u64::MAX)
}

/// The changes of a range of versions, in version order, read window by window (see the
/// module documentation). Made by [`crate::Db::changes`]. An error is yielded once and
/// ends the feed.
pub struct ChangeFeed {
    inner: Arc<Inner>,
    floor: Floor,
    /// The next version to read.
    cursor: u64,
    /// One past the last version to yield.
    until: u64,
    buffer: VecDeque<Change>,
    opts: FeedOptions,
    peak: FeedPeak,
    done: bool,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("cursor", &self.cursor)
            .field("until", &self.until)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

fn start_of(range: &impl RangeBounds<Version>) -> Option<Version> {
    match range.start_bound() {
        Bound::Included(v) => Some(*v),
        Bound::Excluded(v) => Some(Version(v.0.saturating_add(1))),
        Bound::Unbounded => None,
    }
}

pub(crate) fn changes(
    inner: &Arc<Inner>,
    range: impl RangeBounds<Version>,
    opts: FeedOptions,
) -> Result<ChangeFeed> {
    let (floor, visible) = inner.register_floor(start_of(&range))?;
    let until = match range.end_bound() {
        Bound::Included(v) => v.0.saturating_add(1),
        Bound::Excluded(v) => v.0,
        Bound::Unbounded => u64::MAX,
    }
    .min(visible.0.saturating_add(1));
    Ok(ChangeFeed {
        inner: inner.clone(),
        cursor: floor.at().0,
        floor,
        until,
        buffer: VecDeque::new(),
        opts: opts.normalized(),
        peak: FeedPeak::default(),
        done: false,
    })
}

impl ChangeFeed {
    /// The next version this feed reads: after a stop, `changes(feed.cursor()..)` resumes
    /// with what it has not yielded.
    pub fn cursor(&self) -> Version {
        self.buffer
            .front()
            .map_or(Version(self.cursor), |c| c.version)
    }

    /// The most the feed has held in memory at once so far.
    pub fn peak(&self) -> FeedPeak {
        self.peak
    }

    /// The last version the feed reads: its range's end, or the latest version when it
    /// was made.
    pub fn last_version(&self) -> Version {
        Version(self.until.saturating_sub(1))
    }

    fn fill(&mut self) -> Result<()> {
        while self.buffer.is_empty() && self.cursor < self.until {
            let end = self
                .cursor
                .saturating_add(self.opts.window_versions)
                .min(self.until);
            let (window, end) =
                read_window(&self.inner, self.cursor, end, self.opts, &mut self.peak)?;
            self.cursor = next_cursor(&self.inner, window.is_empty(), end, self.until);
            self.buffer.extend(window);
            let end = self.cursor;
            // What is buffered is in memory: compaction may drop it on disk.
            self.floor.advance(Version(end));
        }
        Ok(())
    }
}

impl Iterator for ChangeFeed {
    type Item = Result<Change>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Err(e) = self.fill() {
            self.done = true;
            return Some(Err(e));
        }
        let next = self.buffer.pop_front();
        self.done = next.is_none();
        next.map(Ok)
    }
}

/// What [`Subscription::recv_timeout`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The next change.
    Change(Change),
    /// Nothing was committed before the timeout; call again.
    Timeout,
    /// The subscription ended: the store closed, or an error was returned before.
    Ended,
}

/// Every change from a version on, as it is committed (by any thread), in version order,
/// each once. Made by [`crate::Db::subscribe`]; blocks in `next` until the next commit.
///
/// Ends (`None`) when the store closes. Ends with [`crate::Error::VersionNotRetained`] if the
/// store has a retention window and the subscription's cursor fell behind it (the consumer
/// lagged more than the window, so what it has not read may be gone). Without a window a
/// subscription keeps what it has not read yet, as a live snapshot keeps its version: drop
/// it when done.
pub struct Subscription {
    inner: Arc<Inner>,
    /// Held between windows only while the store has no retention window.
    floor: Option<Floor>,
    cursor: u64,
    buffer: VecDeque<Change>,
    opts: FeedOptions,
    peak: FeedPeak,
    done: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("cursor", &self.cursor)
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

pub(crate) fn subscribe(
    inner: &Arc<Inner>,
    from: Version,
    opts: FeedOptions,
) -> Result<Subscription> {
    let (floor, _) = inner.register_floor(Some(from))?;
    let mut sub = Subscription {
        inner: inner.clone(),
        cursor: from.0,
        floor: Some(floor),
        buffer: VecDeque::new(),
        opts: opts.normalized(),
        peak: FeedPeak::default(),
        done: false,
    };
    sub.release_floor_if_windowed();
    Ok(sub)
}

impl Subscription {
    /// The next version this subscription yields: store it to resume with
    /// `subscribe(cursor)` after a restart.
    pub fn cursor(&self) -> Version {
        self.buffer
            .front()
            .map_or(Version(self.cursor), |c| c.version)
    }

    /// The most the subscription has held in memory at once so far.
    pub fn peak(&self) -> FeedPeak {
        self.peak
    }

    /// Like `next`, but waits at most `timeout` for a commit.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Received> {
        let deadline = Instant::now().checked_add(timeout);
        match self.recv(Some(deadline.unwrap_or_else(far_future))) {
            Some(Ok(Some(c))) => Ok(Received::Change(c)),
            Some(Ok(None)) => Ok(Received::Timeout),
            Some(Err(e)) => Err(e),
            None => Ok(Received::Ended),
        }
    }

    /// With a retention window, the window keeps what the subscription needs as long as it
    /// keeps up; a floor would pin the history of a consumer that stopped reading.
    fn release_floor_if_windowed(&mut self) {
        if self.inner.retention().window.is_some() {
            self.floor = None;
        }
    }

    /// `None`: ended. `Some(Ok(None))`: timed out.
    fn recv(&mut self, deadline: Option<Instant>) -> Option<Result<Option<Change>>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(c) = self.buffer.pop_front() {
                return Some(Ok(Some(c)));
            }
            let writer = self.inner.writer();
            let closed = || self.inner.check_open().is_err();
            match writer.wait_for(Version(self.cursor), &closed, deadline) {
                Wait::Ready => {}
                Wait::Timeout => return Some(Ok(None)),
                Wait::Closed => {
                    self.done = true;
                    return None;
                }
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    /// Reads the next window of committed versions into the buffer.
    fn fill(&mut self) -> Result<()> {
        let mut floor = match self.floor.take() {
            Some(f) => f,
            // Refused with `VersionNotRetained` when the cursor fell behind the window.
            None => self.inner.register_floor(Some(Version(self.cursor)))?.0,
        };
        let visible = self.inner.snapshot_version().0;
        let end = self
            .cursor
            .saturating_add(self.opts.window_versions)
            .min(visible.saturating_add(1));
        if self.cursor < end {
            let (window, end) =
                read_window(&self.inner, self.cursor, end, self.opts, &mut self.peak)?;
            self.cursor = next_cursor(&self.inner, window.is_empty(), end, visible + 1);
            self.buffer.extend(window);
            floor.advance(Version(self.cursor));
        }
        self.floor = Some(floor);
        self.release_floor_if_windowed();
        Ok(())
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

impl Iterator for Subscription {
    type Item = Result<Change>;

    /// Blocks until the next change is committed; `None` once the store closed.
    fn next(&mut self) -> Option<Self::Item> {
        match self.recv(None)? {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
