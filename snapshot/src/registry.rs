//! The readers that version garbage collection must respect.
//!
//! - A *snapshot* at version `s` reads the newest version `<= s` of every key: merges must
//!   keep that version.
//! - A *floor* at version `f` (held while reading a key's history or a change feed) needs
//!   every version `>= f`: merges must keep all of them.
//!
//! The engine registers and reads both under one lock together with the version it hands
//! out, so a merge either sees a reader in its rules or started before the reader's version
//! existed (see the engine's `history` module).

use crate::Version;
use std::collections::BTreeMap;

/// A multiset of live snapshot versions and of history floors.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    snapshots: BTreeMap<Version, usize>,
    floors: BTreeMap<Version, usize>,
}

fn add(map: &mut BTreeMap<Version, usize>, v: Version) {
    *map.entry(v).or_insert(0) += 1;
}

fn remove(map: &mut BTreeMap<Version, usize>, v: Version) {
    if let Some(n) = map.get_mut(&v) {
        *n -= 1;
        if *n == 0 {
            map.remove(&v);
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers a snapshot at `v` (one more holder if it exists).
    pub fn add_snapshot(&mut self, v: Version) {
        add(&mut self.snapshots, v);
    }

    /// Releases one holder of the snapshot at `v`.
    pub fn remove_snapshot(&mut self, v: Version) {
        remove(&mut self.snapshots, v);
    }

    /// Registers a floor at `v`: every version `>= v` must be kept.
    pub fn add_floor(&mut self, v: Version) {
        add(&mut self.floors, v);
    }

    /// Releases one holder of the floor at `v`.
    pub fn remove_floor(&mut self, v: Version) {
        remove(&mut self.floors, v);
    }

    /// True if a snapshot at exactly `v` is live.
    pub fn has_snapshot(&self, v: Version) -> bool {
        self.snapshots.contains_key(&v)
    }

    /// The live snapshot versions, ascending, without duplicates.
    pub fn snapshots(&self) -> Vec<Version> {
        self.snapshots.keys().copied().collect()
    }

    /// The lowest floor, if any.
    pub fn lowest_floor(&self) -> Option<Version> {
        self.floors.keys().next().copied()
    }

    /// The number of live snapshots (counting holders).
    pub fn snapshot_count(&self) -> usize {
        self.snapshots.values().sum()
    }

    /// The oldest live snapshot, if any.
    pub fn oldest_snapshot(&self) -> Option<Version> {
        self.snapshots.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_holders() {
        let mut r = Registry::new();
        r.add_snapshot(Version(5));
        r.add_snapshot(Version(5));
        r.add_snapshot(Version(3));
        r.remove_snapshot(Version(5));
        assert_eq!(r.snapshots(), vec![Version(3), Version(5)]);
        r.remove_snapshot(Version(5));
        r.remove_snapshot(Version(9)); // unknown: ignored
        assert_eq!(r.snapshots(), vec![Version(3)]);
        assert_eq!(r.snapshot_count(), 1);
        assert!(r.has_snapshot(Version(3)) && !r.has_snapshot(Version(5)));
        r.add_floor(Version(7));
        r.add_floor(Version(4));
        assert_eq!(r.lowest_floor(), Some(Version(4)));
        r.remove_floor(Version(4));
        assert_eq!(r.lowest_floor(), Some(Version(7)));
    }
}
