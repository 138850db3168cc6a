//! Commit times and the version <-> time index used for "as of time" reads.
//!
//! A commit time is microseconds since the Unix epoch, rounded down to a whole millisecond,
//! and never smaller than the previous commit's (the engine takes the maximum of the clock
//! and the last commit time, so a clock stepping back cannot reorder history). Rounding to
//! milliseconds bounds the index: it holds one *mark* per millisecond in which something
//! was committed, not one per commit, and it is still exact, because every version of one
//! millisecond has the same time.
//!
//! A mark `(v, t)` says: versions from `v` up to the next mark's version minus one were
//! committed at `t`. Marks have strictly increasing versions and times.

use crate::Version;

/// Rounds a time in microseconds down to a whole millisecond.
pub fn to_commit_time(micros: u64) -> u64 {
    micros - micros % 1000
}

/// The version <-> commit-time index. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    marks: Vec<(Version, u64)>,
    /// True once marks were dropped from the front: versions before the first mark then
    /// have unknown times.
    pruned: bool,
}

/// Why marks could not form an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMarks(pub String);

impl TimeIndex {
    /// An empty index of a store with no commits.
    pub fn new() -> Self {
        TimeIndex::default()
    }

    /// Rebuilds an index from persisted marks (`pruned`: the first mark is not the first
    /// commit's). Marks must have strictly increasing versions (all `>= 1`) and times.
    pub fn from_marks(marks: Vec<(Version, u64)>, pruned: bool) -> Result<Self, BadMarks> {
        let mut index = TimeIndex {
            marks: Vec::with_capacity(marks.len()),
            pruned,
        };
        for (v, t) in marks {
            index.push(v, t)?;
        }
        Ok(index)
    }

    fn push(&mut self, v: Version, t: u64) -> Result<(), BadMarks> {
        if v.0 == 0 {
            return Err(BadMarks("a mark at version 0".into()));
        }
        if let Some(&(lv, lt)) = self.marks.last() {
            if v <= lv || t <= lt {
                return Err(BadMarks(format!(
                    "mark ({v}, {t}) does not follow ({lv}, {lt})"
                )));
            }
        }
        self.marks.push((v, t));
        Ok(())
    }

    /// Records that version `first` (and those after it, until the next mark) was committed
    /// at `time`. A time equal to the last mark's adds nothing. Marks that do not follow the
    /// last one (an older version or time) are refused with an error.
    pub fn record(&mut self, first: Version, time: u64) -> Result<(), BadMarks> {
        match self.marks.last() {
            Some(&(lv, lt)) if time == lt && first > lv => Ok(()),
            _ => self.push(first, time),
        }
    }

    /// Merges marks that continue this index (as replayed from a manifest edit or a WAL
    /// record): marks at or below the last recorded version are skipped, as is a mark
    /// repeating the last time.
    pub fn extend(&mut self, marks: &[(Version, u64)]) -> Result<(), BadMarks> {
        for &(v, t) in marks {
            if self.marks.last().is_some_and(|&(lv, _)| v <= lv) {
                continue;
            }
            self.record(v, t)?;
        }
        Ok(())
    }

    /// Every mark, oldest first.
    pub fn marks(&self) -> &[(Version, u64)] {
        &self.marks
    }

    /// True if marks were dropped from the front.
    pub fn is_pruned(&self) -> bool {
        self.pruned
    }

    /// The marks whose versions lie in `after < v <= upto`, plus the mark covering
    /// `after + 1` if it starts earlier (so the slice alone tells the time of every version
    /// in the interval).
    pub fn marks_covering(&self, after: Version, upto: Version) -> &[(Version, u64)] {
        let start = self
            .marks
            .partition_point(|&(v, _)| v <= after)
            .saturating_sub(1);
        let end = self.marks.partition_point(|&(v, _)| v <= upto);
        &self.marks[start.min(end)..end]
    }

    /// The commit time of version `v`, if the index covers it.
    pub fn time_of(&self, v: Version) -> Option<u64> {
        let i = self.marks.partition_point(|&(m, _)| m <= v);
        (i > 0).then(|| self.marks[i - 1].1)
    }

    /// The newest version committed at or before `time`, given that `latest` is the newest
    /// committed version. `None` if that version is older than what the index covers.
    pub fn version_at(&self, time: u64, latest: Version) -> Option<Version> {
        if self.marks.is_empty() {
            // Nothing is dated: only an empty store can answer (with its empty state).
            return (latest.0 == 0).then_some(Version(0));
        }
        let i = self.marks.partition_point(|&(_, t)| t <= time);
        if i == self.marks.len() {
            return Some(latest);
        }
        let first_later = self.marks[i].0;
        if i == 0 && (self.pruned || first_later.0 > 1) {
            // Versions before the first mark have unknown times (or the store's history
            // before it was not indexed).
            return None;
        }
        Some(Version(first_later.0 - 1))
    }

    /// The oldest time the index can resolve: the first mark's, if any.
    pub fn oldest_time(&self) -> Option<u64> {
        self.marks.first().map(|&(_, t)| t)
    }

    /// Drops marks no longer needed to resolve times `>= cutoff`: every mark before the
    /// newest one at or before `cutoff`. The last mark always stays (it tells the time of
    /// the newest commit).
    pub fn prune_before(&mut self, cutoff: u64) {
        let keep_from = self
            .marks
            .partition_point(|&(_, t)| t <= cutoff)
            .saturating_sub(1);
        if keep_from > 0 {
            self.marks.drain(..keep_from);
            self.pruned = true;
        }
    }

    /// Drops marks covering only versions below `v` (keeping the one that covers `v`) and
    /// marks the index as pruned: times before its first mark are unknown from now on.
    pub fn prune_below_version(&mut self, v: Version) {
        let keep_from = self
            .marks
            .partition_point(|&(m, _)| m <= v)
            .saturating_sub(1);
        self.marks.drain(..keep_from);
        self.pruned = true;
    }

    /// The first mark's version if the index was pruned (what a manifest records).
    pub fn pruned_below(&self) -> Option<Version> {
        if self.pruned {
            self.marks.first().map(|&(v, _)| v)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(marks: &[(u64, u64)]) -> TimeIndex {
        TimeIndex::from_marks(marks.iter().map(|&(v, t)| (Version(v), t)).collect(), false).unwrap()
    }

    #[test]
    fn commit_times_round_down_to_milliseconds() {
        assert_eq!(to_commit_time(1_700_000_123_456), 1_700_000_123_000);
        assert_eq!(to_commit_time(999), 0);
    }

    #[test]
    fn resolves_versions_and_times_exactly() {
        // v1..=3 at 1000, v4..=9 at 3000, v10.. at 7000; latest v12.
        let ix = index(&[(1, 1000), (4, 3000), (10, 7000)]);
        let latest = Version(12);
        assert_eq!(ix.version_at(999, latest), Some(Version(0)));
        assert_eq!(ix.version_at(1000, latest), Some(Version(3)));
        assert_eq!(ix.version_at(2999, latest), Some(Version(3)));
        assert_eq!(ix.version_at(3000, latest), Some(Version(9)));
        assert_eq!(ix.version_at(7000, latest), Some(latest));
        assert_eq!(ix.version_at(u64::MAX, latest), Some(latest));
        assert_eq!(ix.time_of(Version(0)), None);
        assert_eq!(ix.time_of(Version(3)), Some(1000));
        assert_eq!(ix.time_of(Version(4)), Some(3000));
        assert_eq!(ix.time_of(Version(100)), Some(7000));
    }

    #[test]
    fn an_empty_index_dates_nothing_but_the_empty_store() {
        let ix = TimeIndex::new();
        assert_eq!(ix.version_at(5, Version(0)), Some(Version(0)));
        assert_eq!(
            ix.version_at(5, Version(7)),
            None,
            "never a silently newer answer"
        );
    }

    #[test]
    fn record_adds_a_mark_only_when_time_moves() {
        let mut ix = TimeIndex::new();
        ix.record(Version(1), 5000).unwrap();
        ix.record(Version(3), 5000).unwrap();
        ix.record(Version(4), 6000).unwrap();
        assert_eq!(ix.marks(), &[(Version(1), 5000), (Version(4), 6000)]);
        assert!(ix.record(Version(5), 4000).is_err(), "time went back");
        assert!(ix.record(Version(4), 7000).is_err(), "version went back");
        assert!(TimeIndex::from_marks(vec![(Version(0), 1)], false).is_err());
    }

    #[test]
    fn pruning_keeps_what_resolves_later_times() {
        let mut ix = index(&[(1, 1000), (4, 3000), (10, 7000)]);
        ix.prune_before(3500);
        assert_eq!(ix.marks(), &[(Version(4), 3000), (Version(10), 7000)]);
        assert!(ix.is_pruned());
        assert_eq!(ix.version_at(3500, Version(12)), Some(Version(9)));
        assert_eq!(
            ix.version_at(2999, Version(12)),
            None,
            "older than the index"
        );
        ix.prune_before(u64::MAX);
        assert_eq!(ix.marks(), &[(Version(10), 7000)], "the last mark stays");
        let mut ix = index(&[(1, 1000), (4, 3000), (10, 7000)]);
        ix.prune_below_version(Version(9));
        assert_eq!(ix.marks()[0], (Version(4), 3000));
    }

    #[test]
    fn marks_covering_an_interval() {
        let ix = index(&[(1, 1000), (4, 3000), (10, 7000)]);
        assert_eq!(
            ix.marks_covering(Version(5), Version(12)),
            &[(Version(4), 3000), (Version(10), 7000)]
        );
        assert_eq!(
            ix.marks_covering(Version(0), Version(3)),
            &[(Version(1), 1000)]
        );
        assert_eq!(
            ix.marks_covering(Version(3), Version(9)),
            &[(Version(1), 1000), (Version(4), 3000)]
        );
        let mut other = index(&[(1, 1000)]);
        other
            .extend(ix.marks_covering(Version(3), Version(12)))
            .unwrap();
        assert_eq!(other, ix);
    }
}
