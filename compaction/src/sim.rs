//! An I/O-free compaction simulator: runs a [`Strategy`] against a modelled write workload
//! and reports write and space amplification.
//!
//! # Model
//!
//! * **Key space.** `keys` slots `0..N`, uniform. A run is modelled by a half-open slot range
//!   `[lo, hi)` and two key counts, spread uniformly over the range: `fresh` keys (written
//!   for the first time, so no other run holds them) and `dup` keys (overwrites of keys that
//!   already exist, at uniformly random slots). `size = round(fresh + dup) * entry_bytes`.
//! * **Workload.** `N` fill writes (each a new key, in random order) followed by
//!   `N * overwrite_fraction` overwrites of uniformly random existing keys. The memtable is
//!   flushed every `flush_bytes / entry_bytes` writes. A flush of `w` writes, `f` of them
//!   fill and `o = w - f` overwrites, holds `f + N * (1 - (1 - 1/N)^o)` distinct keys (only
//!   the newest version of a key is kept: no snapshots). Its key range is `[lo, hi)` with
//!   `lo` and `N - hi` drawn as the minimum of `w` uniform samples (exponential
//!   approximation), so with many writes per flush the range is nearly the whole space.
//! * **Merge estimate.** The inputs' range boundaries cut the hull into intervals. In an
//!   interval of length `L`, let `F` be the sum of the covering runs' fresh densities (fresh
//!   keys are disjoint across runs, so they add; capped at 1) and `d_i` their dup densities
//!   (independent uniform samples). The merged interval holds
//!   `L * (1 - (1 - F) * prod(1 - d_i))` distinct keys, of which `L * F` count as fresh in the
//!   output. The output is cut into runs of `target_run_size` bytes, each again uniform over
//!   its range. A trivial move writes nothing.
//! * **Loop.** After every flush the strategy is asked for tasks, and each is applied with
//!   [`crate::apply`], until it returns `None` (the tree has settled). Nothing runs
//!   concurrently, so `busy` is always empty.
//!
//! # Limits
//!
//! Treating an output's non-fresh keys as independent of other runs' fresh keys slightly
//! over-counts duplicates; flattening densities inside each output run loses skew; there are
//! no deletes, no snapshots pinning old versions, no key-order locality, no stalls and no
//! timing. Results are for comparing strategies, not for predicting absolute numbers.
//!
//! Deterministic for a seed: the only randomness is a small xorshift generator.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::apply::apply;
use crate::types::{Levels, RunInfo, Strategy, Task, TaskKind};
use chronokv_snapshot::Version;

/// The workload to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of distinct keys (slots in the key space).
    pub keys: u64,
    /// Overwrites after the fill, as a fraction of `keys` (0.5 = 50%).
    pub overwrite_fraction: f64,
    /// Memtable size: bytes of writes per flush.
    pub flush_bytes: u64,
    /// Bytes per entry (key + value + overhead).
    pub entry_bytes: u64,
    /// PRNG seed.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            keys: 1_000_000,
            overwrite_fraction: 0.5,
            flush_bytes: 64 << 20,
            entry_bytes: 116,
            seed: 1,
        }
    }
}

/// What a simulation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// The strategy's name.
    pub strategy: &'static str,
    /// Bytes the user wrote (writes * entry_bytes).
    pub user_bytes: u64,
    /// Bytes written by flushes.
    pub flush_bytes: u64,
    /// Bytes written by merge tasks.
    pub compaction_bytes: u64,
    /// Number of flushes.
    pub flushes: u64,
    /// Number of merge tasks.
    pub merges: u64,
    /// Number of trivial moves.
    pub trivial_moves: u64,
    /// Per level: (run count, bytes), at the end.
    pub levels: Vec<(usize, u64)>,
    /// Bytes of live data (distinct keys * entry_bytes).
    pub live_bytes: u64,
    /// True if some settle loop hit the task limit (the strategy did not converge).
    pub did_not_settle: bool,
    /// The final tree.
    pub tree: Levels,
}

impl SimReport {
    /// (flush + compaction bytes) / user bytes; 0 when nothing was written.
    pub fn write_amplification(&self) -> f64 {
        ratio(
            self.flush_bytes.saturating_add(self.compaction_bytes),
            self.user_bytes,
        )
    }

    /// Bytes in the tree / live bytes; 0 when nothing is live.
    pub fn space_amplification(&self) -> f64 {
        let total = self.levels.iter().map(|&(_, b)| b).sum::<u64>();
        ratio(total, self.live_bytes)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "strategy            {}", self.strategy)?;
        writeln!(
            f,
            "user bytes          {} ({:.1} MiB)",
            self.user_bytes,
            mib(self.user_bytes)
        )?;
        writeln!(
            f,
            "flush bytes         {} ({:.1} MiB) in {} flushes",
            self.flush_bytes,
            mib(self.flush_bytes),
            self.flushes
        )?;
        writeln!(
            f,
            "compaction bytes    {} ({:.1} MiB) in {} merges, {} trivial moves",
            self.compaction_bytes,
            mib(self.compaction_bytes),
            self.merges,
            self.trivial_moves
        )?;
        writeln!(f, "write amplification {:.2}", self.write_amplification())?;
        writeln!(
            f,
            "space amplification {:.2} (tree bytes / live bytes {:.1} MiB)",
            self.space_amplification(),
            mib(self.live_bytes)
        )?;
        for (level, &(runs, bytes)) in self.levels.iter().enumerate() {
            writeln!(f, "L{level}: {runs:>4} runs {:>10.1} MiB", mib(bytes))?;
        }
        if self.did_not_settle {
            writeln!(f, "warning: the strategy did not settle after some flush")?;
        }
        Ok(())
    }
}

/// Tasks per settle loop before the simulator gives up on the strategy converging.
const SETTLE_LIMIT: usize = 100_000;

/// xorshift64*: tiny, deterministic, good enough for a model.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// The model of one run: slots `[lo, hi)` and key counts spread uniformly over them.
#[derive(Debug, Clone, Copy)]
struct ModelRun {
    lo: u64,
    hi: u64,
    fresh: f64,
    dup: f64,
}

impl ModelRun {
    fn len(&self) -> f64 {
        self.hi.saturating_sub(self.lo).max(1) as f64
    }
}

/// One piece of a merge: slots `[lo, hi)` with `keys` distinct keys, `fresh` of them fresh.
#[derive(Debug, Clone, Copy)]
struct Piece {
    lo: u64,
    hi: u64,
    keys: f64,
    fresh: f64,
}

struct Sim<'a> {
    strategy: &'a dyn Strategy,
    cfg: SimConfig,
    entry: u64,
    tree: Levels,
    models: HashMap<u64, ModelRun>,
    next_id: u64,
    next_version: u64,
    report: SimReport,
}

/// Run the workload in `cfg` against `strategy` and report what it cost.
pub fn simulate(strategy: &dyn Strategy, cfg: &SimConfig) -> SimReport {
    let entry = cfg.entry_bytes.max(1);
    let mut sim = Sim {
        strategy,
        cfg: cfg.clone(),
        entry,
        tree: Levels::default(),
        models: HashMap::new(),
        next_id: 1,
        next_version: 1,
        report: SimReport {
            strategy: strategy.name(),
            user_bytes: 0,
            flush_bytes: 0,
            compaction_bytes: 0,
            flushes: 0,
            merges: 0,
            trivial_moves: 0,
            levels: Vec::new(),
            live_bytes: 0,
            did_not_settle: false,
            tree: Levels::default(),
        },
    };
    sim.run();
    sim.finish()
}

impl Sim<'_> {
    fn run(&mut self) {
        let n = self.cfg.keys;
        if n == 0 {
            return;
        }
        let overwrites = (n as f64 * self.cfg.overwrite_fraction.max(0.0)).round() as u64;
        let total = n.saturating_add(overwrites);
        let per_flush = (self.cfg.flush_bytes / self.entry).max(1);
        let mut rng = Rng::new(self.cfg.seed);
        let mut written = 0u64;
        while written < total {
            let batch = per_flush.min(total - written);
            let fresh = batch.min(n.saturating_sub(written));
            self.flush(&mut rng, batch, fresh);
            written += batch;
            self.settle();
        }
        self.report.user_bytes = total.saturating_mul(self.entry);
        self.report.live_bytes = n.saturating_mul(self.entry);
    }

    fn flush(&mut self, rng: &mut Rng, writes: u64, fresh: u64) {
        let n = self.cfg.keys as f64;
        let over = (writes - fresh) as f64;
        let dup = n * -(over * (-1.0 / n).ln_1p()).exp_m1();
        // lo and N - hi: minimum of `writes` uniform slots, ~ Exp(writes / N).
        let edge = |rng: &mut Rng| (-rng.unit().ln() * n / (writes as f64 + 1.0)) as u64;
        let lo = edge(rng).min(self.cfg.keys - 1);
        let hi = self.cfg.keys.saturating_sub(edge(rng)).max(lo + 1);
        let span = (hi - lo) as f64;
        let fresh = (fresh as f64).min(span);
        let model = ModelRun {
            lo,
            hi,
            fresh,
            dup: dup.min(span - fresh),
        };
        let first = self.next_version;
        self.next_version += writes;
        let run = self.make_run(model, first, self.next_version - 1);
        self.report.flushes += 1;
        self.report.flush_bytes += run.size;
        if self.tree.levels.is_empty() {
            self.tree.levels.push(Vec::new());
        }
        if let Some(l0) = self.tree.levels.first_mut() {
            l0.insert(0, run);
        }
    }

    fn make_run(&mut self, model: ModelRun, min_version: u64, max_version: u64) -> RunInfo {
        let id = self.next_id;
        self.next_id += 1;
        self.models.insert(id, model);
        let entries = (model.fresh + model.dup).round() as u64;
        RunInfo {
            id,
            size: entries.saturating_mul(self.entry),
            min_key: model.lo.to_be_bytes().to_vec(),
            max_key: (model.hi - 1).to_be_bytes().to_vec(),
            min_version: Version(min_version),
            max_version: Version(max_version),
            entries,
            tombstones: 0,
        }
    }

    fn settle(&mut self) {
        let busy = HashSet::new();
        for _ in 0..SETTLE_LIMIT {
            let Some(task) = self.strategy.pick(&self.tree, &busy) else {
                return;
            };
            self.execute(&task);
        }
        self.report.did_not_settle = true;
    }

    fn execute(&mut self, task: &Task) {
        if task.kind == TaskKind::TrivialMove {
            self.report.trivial_moves += 1;
            self.tree = apply(&self.tree, task, Vec::new());
            return;
        }
        let inputs: Vec<&RunInfo> = task
            .inputs
            .iter()
            .filter_map(|&(l, id)| self.tree.level(l).iter().find(|r| r.id == id))
            .collect();
        let min_v = inputs.iter().map(|r| r.min_version.0).min().unwrap_or(0);
        let max_v = inputs.iter().map(|r| r.max_version.0).max().unwrap_or(0);
        let models: Vec<ModelRun> = inputs
            .iter()
            .filter_map(|r| self.models.get(&r.id).copied())
            .collect();
        let input_ids: Vec<u64> = inputs.iter().map(|r| r.id).collect();
        let pieces = merge_pieces(&models);
        let target_keys = (task.target_run_size as f64 / self.entry as f64).max(1.0);
        let outputs: Vec<RunInfo> = split(&pieces, target_keys)
            .into_iter()
            .map(|m| self.make_run(m, min_v, max_v))
            .collect();
        for id in input_ids {
            self.models.remove(&id);
        }
        self.report.merges += 1;
        self.report.compaction_bytes += outputs.iter().map(|r| r.size).sum::<u64>();
        self.tree = apply(&self.tree, task, outputs);
    }

    fn finish(mut self) -> SimReport {
        self.report.levels = (0..self.tree.levels.len())
            .map(|l| (self.tree.level(l).len(), self.tree.level_bytes(l)))
            .collect();
        self.report.tree = self.tree;
        self.report
    }
}

/// The merged key counts of `runs`, interval by interval (see the module docs).
fn merge_pieces(runs: &[ModelRun]) -> Vec<Piece> {
    let mut cuts: Vec<u64> = runs.iter().flat_map(|r| [r.lo, r.hi]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .filter_map(|w| {
            let (lo, hi) = (*w.first()?, *w.get(1)?);
            let len = (hi - lo) as f64;
            let covering = runs.iter().filter(|r| r.lo <= lo && hi <= r.hi);
            let (fresh, keep) = covering.fold((0.0f64, 1.0f64), |(f, p), r| {
                (
                    f + r.fresh / r.len(),
                    p * (1.0 - (r.dup / r.len()).min(1.0)),
                )
            });
            let fresh = fresh.min(1.0);
            let keys = len * (1.0 - (1.0 - fresh) * keep);
            (keys > 0.0).then_some(Piece {
                lo,
                hi,
                keys,
                fresh: len * fresh,
            })
        })
        .collect()
}

/// Cut merged pieces into output runs of about `target_keys` keys each.
fn split(pieces: &[Piece], target_keys: f64) -> Vec<ModelRun> {
    let mut out = Vec::new();
    let mut cur: Option<ModelRun> = None;
    for piece in pieces {
        let mut p = *piece;
        while p.keys > 0.0 && p.lo < p.hi {
            let have = cur.map_or(0.0, |c| c.fresh + c.dup);
            let room = target_keys - have;
            let (take, rest) = if p.keys <= room {
                (p, None)
            } else {
                let span = (p.hi - p.lo) as f64;
                let cut = p.lo + ((span * room / p.keys).ceil() as u64).clamp(1, p.hi - p.lo);
                let frac = (cut - p.lo) as f64 / span;
                let take = Piece {
                    lo: p.lo,
                    hi: cut,
                    keys: p.keys * frac,
                    fresh: p.fresh * frac,
                };
                let rest = Piece {
                    lo: cut,
                    hi: p.hi,
                    keys: p.keys - take.keys,
                    fresh: p.fresh - take.fresh,
                };
                (take, Some(rest))
            };
            let c = cur.get_or_insert(ModelRun {
                lo: take.lo,
                hi: take.lo,
                fresh: 0.0,
                dup: 0.0,
            });
            c.hi = take.hi;
            c.fresh += take.fresh;
            c.dup += take.keys - take.fresh;
            match rest {
                Some(r) => {
                    out.extend(cur.take());
                    p = r;
                }
                None => break,
            }
        }
    }
    out.extend(cur);
    out.retain(|r| r.fresh + r.dup >= 0.5);
    out
}
