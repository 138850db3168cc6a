//! The MVCC core of chronokv: what a version is, how versioned entries are ordered, and how
//! many sorted sources become one consistent view.
//!
//! - [`Version`]: a commit's sequence number. Versions grow by one per committed entry.
//! - [`Kind`]: put or delete (a tombstone). Persisted: the discriminants never change.
//! - [`Entry`]: one versioned entry `(key, version, kind, value)`.
//! - Internal order ([`internal_cmp`]): user key ascending (bytewise), then version
//!   descending, so the newest version of a key comes first.
//! - [`merge`]: a k-way merge of sorted sources in internal order, either direction.
//! - [`visible`]: the visibility rule (newest version `<=` the snapshot wins; tombstones hide
//!   the key) and [`Scan`], the double-ended iterator the public `scan` returns.
//! - [`time`]: commit times and the version <-> time index ([`TimeIndex`]).
//! - [`registry`]: the live snapshots and history readers that version GC must respect.
//! - [`conflict`]: optimistic transactions' conflict detection ([`ConflictTracker`]).

#![warn(missing_docs)]

pub mod conflict;
mod entry;
pub mod merge;
pub mod registry;
pub mod time;
pub mod visible;

pub use bytes::Bytes;
pub use conflict::{Conflict, ConflictTracker, KeyRange, ReadSet};
pub use entry::{internal_cmp, Entry, Kind, Version};
pub use registry::Registry;
pub use time::{to_commit_time, TimeIndex};
pub use visible::{Scan, SourceFactory, VisibleEntries};

/// A sorted source of entries: ascending internal order from the front, descending from the
/// back. Errors end the source.
pub type Source<E> = Box<dyn DoubleEndedIterator<Item = Result<Entry, E>> + Send>;
