//! The data a strategy sees and returns: [`RunInfo`], [`Levels`], [`Task`], and the
//! [`Strategy`] trait.
//!
//! Key ranges are inclusive on both ends (`min_key..=max_key`) and compared as bytes. Nothing
//! here validates its input: a run with `min_key > max_key`, an empty key, a zero size or
//! overlapping runs in level 1+ are all accepted, and every function in this crate returns
//! *some* answer for them without panicking.

use chronokv_snapshot::Version;
use std::collections::HashSet;

/// What a strategy sees of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// Unique run id (the engine's file number).
    pub id: u64,
    /// Size in bytes.
    pub size: u64,
    /// Smallest user key in the run (inclusive).
    pub min_key: Vec<u8>,
    /// Largest user key in the run (inclusive).
    pub max_key: Vec<u8>,
    /// Smallest entry version in the run.
    pub min_version: Version,
    /// Largest entry version in the run.
    pub max_version: Version,
    /// Number of entries (all versions, tombstones included).
    pub entries: u64,
    /// Number of tombstones among `entries`.
    pub tombstones: u64,
}

impl RunInfo {
    /// The run's key range.
    pub fn range(&self) -> KeyRange<'_> {
        KeyRange {
            min: &self.min_key,
            max: &self.max_key,
        }
    }
}

/// An inclusive key range `min..=max`, borrowed from runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange<'a> {
    /// Smallest key (inclusive).
    pub min: &'a [u8],
    /// Largest key (inclusive).
    pub max: &'a [u8],
}

impl<'a> KeyRange<'a> {
    /// True if the two inclusive ranges share at least one key.
    pub fn overlaps(&self, other: &KeyRange<'_>) -> bool {
        self.min <= other.max && other.min <= self.max
    }

    /// The smallest range covering both.
    pub fn hull(&self, other: &KeyRange<'a>) -> KeyRange<'a> {
        KeyRange {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// The hull of all the runs' ranges, or `None` for no runs.
    pub fn of_runs<'r, I>(runs: I) -> Option<KeyRange<'r>>
    where
        I: IntoIterator<Item = &'r RunInfo>,
    {
        runs.into_iter()
            .map(RunInfo::range)
            .reduce(|a, b| a.hull(&b))
    }
}

/// The tree.
///
/// `levels[0]` is level 0: newest run first, runs may overlap. For a leveled tree each
/// `levels[i]` with `i >= 1` is sorted by `min_key` and its runs do not overlap. For a tiered
/// tree every level is a list of sorted runs, newest first. Missing trailing levels are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Levels {
    /// The levels, level 0 first.
    pub levels: Vec<Vec<RunInfo>>,
}

impl Levels {
    /// The runs of `level` (empty for a level past the end).
    pub fn level(&self, level: usize) -> &[RunInfo] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Total bytes in `level` (saturating).
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.level(level)
            .iter()
            .fold(0u64, |acc, r| acc.saturating_add(r.size))
    }

    /// Total bytes in the tree (saturating).
    pub fn total_bytes(&self) -> u64 {
        (0..self.levels.len()).fold(0u64, |acc, l| acc.saturating_add(self.level_bytes(l)))
    }

    /// Number of runs in the tree.
    pub fn run_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// True if no level holds a run.
    pub fn is_empty(&self) -> bool {
        self.levels.iter().all(Vec::is_empty)
    }
}

/// How a task produces its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskKind {
    /// Read the inputs, merge them, write new runs.
    Merge,
    /// Move the input runs to `output_level` unchanged; no bytes are written.
    TrivialMove,
}

/// One compaction to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Merge or trivial move.
    pub kind: TaskKind,
    /// The input runs as `(level, run id)`, in the order they appear in the tree (level 0
    /// newest first, then deeper levels).
    pub inputs: Vec<(usize, u64)>,
    /// The level the outputs go to.
    pub output_level: usize,
    /// Split the merge output into runs of about this many bytes (`u64::MAX`: one run).
    pub target_run_size: u64,
    /// No data older than the output (below `output_level`, or older runs of the same level
    /// for an intra-level merge) overlaps the inputs' key range, so tombstones and shadowed
    /// versions no snapshot needs may be dropped.
    pub bottommost: bool,
    /// The runs of the level below `output_level` that overlap the inputs' key range, in key
    /// order (empty when there is none, for a tiered task and for a trivial move). The
    /// executor cuts outputs at their boundaries, so that an output later pushed down
    /// rewrites only the runs its own keys need (see [`crate::exec`]).
    pub grandparents: Vec<Grandparent>,
    /// Cut an output before its size plus the bytes of the `grandparents` it overlaps would
    /// pass this (`u64::MAX`: no bound), so that no later compaction of one output into the
    /// level below rewrites more than about this many bytes.
    pub max_grandparent_overlap: u64,
}

/// What the executor needs of a run in the level below a task's output level: its key
/// range and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grandparent {
    /// Smallest user key (inclusive).
    pub min_key: Vec<u8>,
    /// Largest user key (inclusive).
    pub max_key: Vec<u8>,
    /// Size in bytes.
    pub size: u64,
}

impl Grandparent {
    /// The bounds of `run`.
    pub fn of(run: &RunInfo) -> Self {
        Grandparent {
            min_key: run.min_key.clone(),
            max_key: run.max_key.clone(),
            size: run.size,
        }
    }
}

/// The runs of `level` overlapping `range`, in key order, as [`Grandparent`]s (`range`
/// `None`: none). `level` must hold disjoint runs sorted by key (leveled levels >= 1).
pub(crate) fn grandparents_of(
    levels: &Levels,
    level: usize,
    range: Option<KeyRange<'_>>,
) -> Vec<Grandparent> {
    let Some(range) = range else {
        return Vec::new();
    };
    levels
        .level(level)
        .iter()
        .filter(|r| r.range().overlaps(&range))
        .map(Grandparent::of)
        .collect()
}

/// A compaction policy: a pure function from the tree to the next task.
pub trait Strategy: Send + Sync + std::fmt::Debug {
    /// A short name ("leveled", "tiered").
    fn name(&self) -> &'static str;
    /// A task for the tree, or None. Runs whose ids are in `busy` are being compacted already
    /// and must not be picked.
    fn pick(&self, levels: &Levels, busy: &HashSet<u64>) -> Option<Task>;
    /// Bytes this strategy still wants to rewrite before the tree is in shape ("compaction
    /// debt"); the engine slows and then stops writes when it grows too large.
    fn pending_bytes(&self, levels: &Levels) -> u64;
    /// A manual compaction of every run whose keys overlap `range` (`None`: the whole tree),
    /// or None when there is nothing to do. The input set is closed under overlap (see
    /// [`manual_inputs`]), so the output can go to the chosen level without breaking the
    /// tree's ordering. It ignores busy runs: the caller waits until none of the inputs is
    /// busy and asks again.
    fn manual(&self, levels: &Levels, range: Option<KeyRange<'_>>) -> Option<Task>;
}

/// True if no two runs of `runs` overlap.
pub(crate) fn pairwise_disjoint(runs: &[RunInfo]) -> bool {
    let mut sorted: Vec<&RunInfo> = runs.iter().collect();
    sorted.sort_by(|a, b| a.min_key.cmp(&b.min_key));
    sorted.windows(2).all(|w| w[0].max_key < w[1].min_key)
}

/// The runs a manual compaction of `range` must take, as `(level, id)` in tree order.
///
/// Start from every run overlapping `range`, then grow to a fixpoint: in a level whose runs
/// overlap each other (level 0, a tiered level) take the whole age window from the newest to
/// the oldest overlapping run, so the merged output can take the window's place without
/// reordering versions of a key; in a level of disjoint runs take the runs overlapping the
/// hull of everything taken so far. The result's hull then overlaps no run left out.
pub fn manual_inputs(levels: &Levels, range: Option<KeyRange<'_>>) -> Vec<(usize, u64)> {
    let (mut lo, mut hi): (Vec<u8>, Option<Vec<u8>>) = match range {
        Some(r) => (r.min.to_vec(), Some(r.max.to_vec())),
        None => (Vec::new(), None),
    };
    let mut taken: Vec<Vec<bool>> = levels.levels.iter().map(|l| vec![false; l.len()]).collect();
    loop {
        let mut grew = false;
        let hits = |r: &RunInfo, lo: &[u8], hi: &Option<Vec<u8>>| {
            r.max_key.as_slice() >= lo && hi.as_ref().is_none_or(|h| r.min_key <= *h)
        };
        for (level, runs) in levels.levels.iter().enumerate() {
            let overlapping: Vec<usize> = (0..runs.len())
                .filter(|&i| hits(&runs[i], &lo, &hi))
                .collect();
            let chosen: Vec<usize> = match (overlapping.first(), overlapping.last()) {
                (Some(&first), Some(&last)) if level == 0 || !pairwise_disjoint(runs) => {
                    (first..=last).collect()
                }
                _ => overlapping,
            };
            for i in chosen {
                if !taken[level][i] {
                    taken[level][i] = true;
                    grew = true;
                    let r = &runs[i];
                    if r.min_key < lo {
                        lo = r.min_key.clone();
                    }
                    if let Some(h) = &hi {
                        if r.max_key > *h {
                            hi = Some(r.max_key.clone());
                        }
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
    levels
        .levels
        .iter()
        .enumerate()
        .flat_map(|(level, runs)| {
            runs.iter()
                .zip(&taken[level])
                .filter(|(_, t)| **t)
                .map(move |(r, _)| (level, r.id))
        })
        .collect()
}

/// True if no run older than a task's output overlaps `range`: nothing in a level below
/// `output_level`, and nothing in `output_level` itself that is not an input and comes after
/// (is older than) `older_than_index` (pass `None` when the output level is sorted by key
/// rather than by age).
pub(crate) fn is_bottommost(
    levels: &Levels,
    range: Option<KeyRange<'_>>,
    inputs: &[(usize, u64)],
    output_level: usize,
    older_than_index: Option<usize>,
) -> bool {
    let Some(range) = range else { return true };
    let is_input = |level: usize, id: u64| inputs.iter().any(|&(l, i)| l == level && i == id);
    let same_level_older = older_than_index.is_some_and(|start| {
        levels
            .level(output_level)
            .iter()
            .enumerate()
            .any(|(pos, r)| {
                pos > start && !is_input(output_level, r.id) && r.range().overlaps(&range)
            })
    });
    let below = (output_level + 1..levels.levels.len()).any(|l| {
        levels
            .level(l)
            .iter()
            .any(|r| !is_input(l, r.id) && r.range().overlaps(&range))
    });
    !same_level_older && !below
}
