//! Model-based and metamorphic testing (G4): one seeded operation log, run on many engine
//! configurations, every read checked against a versioned oracle, and the configurations'
//! results compared with each other.
//!
//! # The operation log
//!
//! [`op_log`] draws, per seed, puts, deletes and batches (25% of them `Durability::Sync`,
//! values from empty to 70 KiB), point reads, forward, backward, mixed-direction and
//! limited scans, prefix scans, iterators held open across later operations, snapshots
//! taken and read later, `snapshot_at(v)` and `snapshot_as_of(now)` reads, `history`,
//! `changes`, `oldest_readable_version`, flushes, range compactions, `sync_wal`,
//! `wait_for_compactions`, `verify`, clean reopens and crash-reopens. Operations that need a
//! version or a live snapshot carry a random number that is mapped onto what exists when
//! they run.
//!
//! # The oracle
//!
//! [`Model`] keeps every version of every key (`BTreeMap<key, Vec<(version, Option<value>)>>`)
//! and the commit log, so it answers reads at any version, `history` and `changes`. What the
//! engine may forget depends on the configuration's [`Class`]: with the whole history
//! retained every old state is readable; without retention `snapshot_at` accepts only the
//! latest version and live snapshots' versions, `history` shows what the garbage-collection
//! rules keep (the newest version, or the newest N with `history_versions_per_key`), and
//! `changes` starts at the horizon (one past the latest version). The model computes the
//! exact answer for each class (`docs/time-travel.md`, `compaction/src/gc.rs`).
//!
//! # Crash-reopens
//!
//! A crash-reopen takes `MemFs::crash_clone()` (synced data and directory entries only)
//! while the database is open, with background work in flight, drops the database, and
//! opens the image. The recovered version `v` must lie between the last durable commit
//! (acknowledged as `Sync`, or followed by a completed flush, compaction, `sync_wal` or clean
//! reopen) and the last acknowledged one, at a commit boundary, and the contents (and, with
//! history retained, the change feed) must equal the model at `v`. Buffered commits after the
//! last durable one may or may not survive, depending on the configuration (WAL rotations
//! sync segments), so the harness then commits the lost ones again, in order, with their
//! durability: they must get back their original versions, and from there on every
//! configuration is in the same state again, so the metamorphic comparison continues.
//!
//! # Metamorphic comparison
//!
//! Every result is recorded per configuration and hashed into two digests: one over the
//! results every configuration must agree on, one over all results (compared within a
//! [`Class`]). After a seed ran on every configuration the digests are compared; a mismatch
//! prints the first operation whose results differ, with both results.

use crate::Rng;
use chronokv::vfs::{MemFs, Vfs};
use chronokv::{
    Bytes, CompactionStyle, Compression, Db, Durability, Error, Iter, Leveled, Options, Snapshot,
    Tiered, Version, WriteBatch,
};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where every case keeps its database.
const DIR: &str = "/db";

/// What a configuration promises about old versions, which decides the expected answer of
/// reads of the past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `history_retention` of a day: every version stays readable.
    AllHistory,
    /// No retention: only the present and live snapshots.
    NoHistory,
    /// No retention, `history_versions_per_key = N`.
    NewestPerKey(usize),
}

/// One engine configuration.
#[derive(Clone)]
pub struct Config {
    pub name: &'static str,
    pub class: Class,
    options: fn(Arc<dyn Vfs>) -> Options,
}

impl Config {
    pub fn options(&self, fs: &MemFs) -> Options {
        (self.options)(Arc::new(fs.clone()))
    }
}

const DAY: Duration = Duration::from_secs(86_400);

fn base(vfs: Arc<dyn Vfs>) -> Options {
    Options {
        vfs,
        memtable_size: 1 << 10,
        block_size: 256,
        block_cache_bytes: 1 << 20,
        compaction_threads: 1,
        max_manifest_bytes: 16 << 10,
        ..Options::default()
    }
}

fn aggressive_leveled() -> CompactionStyle {
    CompactionStyle::Leveled(Leveled {
        l0_trigger: 2,
        size_ratio: 4,
        base_level_bytes: 4 << 10,
        target_run_size: 2 << 10,
        max_levels: 5,
    })
}

/// Tiered merging as few as 2 similar runs. One output run per merge (the default target):
/// with a finite `target_run_size` tiered compaction never settles, a known bug
/// (`compaction/tests/sim.rs`, `tiered_with_a_finite_target_run_size_settles`).
fn aggressive_tiered() -> CompactionStyle {
    CompactionStyle::Tiered(Tiered {
        min_merge: 2,
        max_merge: 4,
        size_ratio_percent: 200,
        target_run_size: u64::MAX,
    })
}

/// The configurations every op log runs on.
pub fn configs() -> Vec<Config> {
    vec![
        Config {
            name: "tiny-memtable",
            class: Class::AllHistory,
            options: |vfs| Options {
                memtable_size: 256,
                block_size: 128,
                compaction: aggressive_leveled(),
                history_retention: Some(DAY),
                ..base(vfs)
            },
        },
        Config {
            name: "large-memtable",
            class: Class::AllHistory,
            options: |vfs| Options {
                memtable_size: 4 << 20,
                block_size: 4 << 10,
                history_retention: Some(DAY),
                ..base(vfs)
            },
        },
        Config {
            name: "leveled-aggressive",
            class: Class::NoHistory,
            options: |vfs| Options {
                compaction: CompactionStyle::Leveled(Leveled {
                    l0_trigger: 2,
                    size_ratio: 2,
                    base_level_bytes: 2 << 10,
                    target_run_size: 512,
                    max_levels: 6,
                }),
                compaction_threads: 2,
                ..base(vfs)
            },
        },
        Config {
            name: "tiered",
            class: Class::NoHistory,
            options: |vfs| Options {
                compaction: aggressive_tiered(),
                ..base(vfs)
            },
        },
        Config {
            name: "zstd",
            class: Class::AllHistory,
            options: |vfs| Options {
                memtable_size: 2 << 10,
                compression: Compression::Zstd { level: 1 },
                deep_compression: Compression::Zstd { level: 3 },
                compaction: aggressive_leveled(),
                history_retention: Some(DAY),
                ..base(vfs)
            },
        },
        Config {
            name: "tiny-blocks",
            class: Class::NoHistory,
            options: |vfs| Options {
                memtable_size: 2 << 10,
                block_size: 32,
                block_cache_bytes: 4 << 10,
                compaction: aggressive_leveled(),
                ..base(vfs)
            },
        },
        Config {
            name: "large-blocks",
            class: Class::AllHistory,
            options: |vfs| Options {
                memtable_size: 16 << 10,
                block_size: 64 << 10,
                compaction: aggressive_tiered(),
                history_retention: Some(DAY),
                ..base(vfs)
            },
        },
        Config {
            name: "bloom-useless",
            class: Class::NoHistory,
            options: |vfs| Options {
                // No option turns bloom filters off; a 99.9% false-positive rate makes every
                // lookup go past them.
                bloom_fp_rate: 0.999,
                compaction: aggressive_leveled(),
                compaction_threads: 2,
                ..base(vfs)
            },
        },
        Config {
            name: "bloom-tight",
            class: Class::AllHistory,
            options: |vfs| Options {
                bloom_fp_rate: 1e-6,
                memtable_size: 512,
                compaction: aggressive_tiered(),
                history_retention: Some(DAY),
                ..base(vfs)
            },
        },
        Config {
            name: "manifest-rotation",
            class: Class::AllHistory,
            options: |vfs| Options {
                memtable_size: 512,
                max_manifest_bytes: 256,
                compaction: aggressive_leveled(),
                history_retention: Some(DAY),
                ..base(vfs)
            },
        },
        Config {
            name: "per-key-history",
            class: Class::NewestPerKey(3),
            options: |vfs| Options {
                history_versions_per_key: Some(3),
                compaction: aggressive_tiered(),
                ..base(vfs)
            },
        },
        Config {
            name: "no-background-compaction",
            class: Class::NoHistory,
            options: |vfs| Options {
                memtable_size: 512,
                max_immutable_memtables: 1,
                compaction_threads: 0,
                compaction: aggressive_leveled(),
                ..base(vfs)
            },
        },
    ]
}

// ---------------------------------------------------------------------------------------
// The operation log.

/// How a scan is consumed.
#[derive(Debug, Clone, Copy)]
pub enum Walk {
    /// `next` up to `limit` times.
    Forward(usize),
    /// `next_back` up to `limit` times.
    Backward(usize),
    /// `next` or `next_back` by the bits of the pattern, until the ends meet.
    Mixed(u64),
}

/// A key range.
#[derive(Debug, Clone)]
pub struct Range {
    pub lo: Bound<Bytes>,
    pub hi: Bound<Bytes>,
}

/// A read through a snapshot.
#[derive(Debug, Clone)]
pub enum Read {
    Get(Bytes),
    Scan(Range, Walk),
}

/// One operation. `pick` fields are mapped onto what exists when the operation runs.
#[derive(Debug, Clone)]
pub enum Op {
    Write {
        changes: Vec<(Bytes, Option<Bytes>)>,
        /// A one-entry write through `put` / `delete` rather than a batch.
        single: bool,
        sync: bool,
    },
    Get(Bytes),
    Scan(Range, Walk),
    Prefix(Bytes, bool),
    TakeSnapshot,
    DropSnapshot(u64),
    SnapshotRead(u64, Read),
    SnapshotAt(u64, Read),
    SnapshotAsOfNow(Read),
    History(Bytes),
    /// `changes(a..b)` (kind 0), `changes(a..)` (1), `changes(..)` (2); `a` picked from
    /// `0..=latest`, `b = a + span`.
    Changes {
        pick: u64,
        span: u64,
        kind: u8,
    },
    OldestReadable,
    IterOpen(Range, bool),
    IterNext(u64, usize),
    Flush,
    Compact(Option<Bytes>, Option<Bytes>),
    SyncWal,
    WaitForCompactions,
    Verify,
    /// `Db::checkpoint` into a new directory, opened and read there.
    Checkpoint,
    Reopen,
    /// A clean reopen with the options of another configuration of the same class (picked
    /// among them), until the next reopen: the tree one configuration built is read, written
    /// and compacted by another (compaction style, block size, compression, memtable size).
    ReopenAs(u64),
    CrashReopen,
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Write { .. } => "write",
            Op::Get(_) => "get",
            Op::Scan(..) => "scan",
            Op::Prefix(..) => "prefix",
            Op::TakeSnapshot => "take-snapshot",
            Op::DropSnapshot(_) => "drop-snapshot",
            Op::SnapshotRead(..) => "snapshot-read",
            Op::SnapshotAt(..) => "snapshot-at",
            Op::SnapshotAsOfNow(_) => "snapshot-as-of-now",
            Op::History(_) => "history",
            Op::Changes { .. } => "changes",
            Op::OldestReadable => "oldest-readable",
            Op::IterOpen(..) => "iter-open",
            Op::IterNext(..) => "iter-next",
            Op::Flush => "flush",
            Op::Compact(..) => "compact",
            Op::SyncWal => "sync-wal",
            Op::WaitForCompactions => "wait-for-compactions",
            Op::Verify => "verify",
            Op::Checkpoint => "checkpoint",
            Op::Reopen => "reopen",
            Op::ReopenAs(_) => "reopen-as",
            Op::CrashReopen => "crash-reopen",
        }
    }
}

/// 48 two-byte keys over three one-byte prefixes, and a few edge cases: the empty key,
/// `0xff` keys (no prefix successor), a 300-byte key, a key just past a prefix.
fn key(rng: &mut Rng) -> Bytes {
    if rng.chance(93) {
        let i = rng.below(48) as u8;
        return Bytes::from(vec![b'a' + i / 16, b'a' + i % 16]);
    }
    match rng.below(5) {
        0 => Bytes::new(),
        1 => Bytes::from_static(&[0xff]),
        2 => Bytes::from_static(&[0xff, 0xff]),
        3 => {
            let mut k = b"c".to_vec();
            k.resize(300, b'x');
            Bytes::from(k)
        }
        _ => Bytes::from_static(&[b'b', 0]),
    }
}

/// A scan bound: a key of the pool, or a one-byte key between the pool's prefixes.
fn bound(rng: &mut Rng) -> Bound<Bytes> {
    let k = if rng.chance(25) {
        Bytes::from(vec![b'a' + rng.below(4) as u8])
    } else {
        key(rng)
    };
    match rng.below(5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(k),
        _ => Bound::Excluded(k),
    }
}

fn range(rng: &mut Rng) -> Range {
    Range {
        lo: bound(rng),
        hi: bound(rng),
    }
}

fn walk(rng: &mut Rng) -> Walk {
    let limit = if rng.chance(25) {
        1 + rng.below(5) as usize
    } else {
        usize::MAX
    };
    match rng.below(5) {
        0 | 1 => Walk::Forward(limit),
        2 | 3 => Walk::Backward(limit),
        _ => Walk::Mixed(rng.next_u64()),
    }
}

fn value(rng: &mut Rng) -> Bytes {
    let roll = rng.below(1000);
    let len = if roll < 700 {
        rng.below(17)
    } else if roll < 970 {
        17 + rng.below(300)
    } else if roll < 997 {
        1000 + rng.below(4000)
    } else {
        // Past the 64 KiB boundary of 16-bit length fields.
        65_000 + rng.below(6000)
    } as usize;
    let seed = rng.next_u64();
    let step = (seed >> 8) as u8 | 1;
    Bytes::from(
        (0..len)
            .map(|i| (seed as u8).wrapping_add((i as u8).wrapping_mul(step)))
            .collect::<Vec<u8>>(),
    )
}

fn read(rng: &mut Rng) -> Read {
    if rng.chance(60) {
        Read::Get(key(rng))
    } else {
        Read::Scan(range(rng), walk(rng))
    }
}

/// The seeded op log of `n` operations (see the module documentation for the mix).
pub fn op_log(seed: u64, n: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed ^ 0x4D4F_4445_4C00_0000);
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        let r = rng.below(1000);
        let op = match r {
            0..=299 => Op::Write {
                changes: vec![(key(&mut rng), Some(value(&mut rng)))],
                single: true,
                sync: rng.chance(25),
            },
            300..=304 => Op::Checkpoint,
            305..=384 => Op::Write {
                changes: vec![(key(&mut rng), None)],
                single: true,
                sync: rng.chance(25),
            },
            385..=464 => {
                let n = if rng.chance(5) { 0 } else { 1 + rng.below(6) };
                let changes = (0..n)
                    .map(|_| {
                        let k = key(&mut rng);
                        let v = if rng.chance(25) {
                            None
                        } else {
                            Some(value(&mut rng))
                        };
                        (k, v)
                    })
                    .collect();
                Op::Write {
                    changes,
                    single: false,
                    sync: rng.chance(25),
                }
            }
            465..=609 => Op::Get(key(&mut rng)),
            610..=614 => Op::ReopenAs(rng.next_u64()),
            615..=684 => Op::Scan(range(&mut rng), walk(&mut rng)),
            685..=714 => {
                let p = match rng.below(6) {
                    0 => Bytes::new(),
                    1 => Bytes::from_static(&[0xff]),
                    2 => {
                        let i = rng.below(48) as u8;
                        Bytes::from(vec![b'a' + i / 16, b'a' + i % 16])
                    }
                    _ => Bytes::from(vec![b'a' + rng.below(4) as u8]),
                };
                Op::Prefix(p, rng.chance(50))
            }
            715..=739 => Op::TakeSnapshot,
            740..=749 => Op::DropSnapshot(rng.next_u64()),
            750..=799 => Op::SnapshotRead(rng.next_u64(), read(&mut rng)),
            800..=839 => Op::SnapshotAt(rng.next_u64(), read(&mut rng)),
            840..=847 => Op::SnapshotAsOfNow(read(&mut rng)),
            848..=877 => Op::History(key(&mut rng)),
            878..=892 => Op::Changes {
                pick: rng.next_u64(),
                span: rng.below(60),
                kind: rng.below(3) as u8,
            },
            893..=897 => Op::OldestReadable,
            898..=912 => Op::IterOpen(range(&mut rng), rng.chance(40)),
            913..=937 => Op::IterNext(rng.next_u64(), 1 + rng.below(8) as usize),
            938..=957 => Op::Flush,
            958..=965 => {
                let end = |rng: &mut Rng| rng.chance(70).then(|| key(rng));
                let lo = end(&mut rng);
                let hi = end(&mut rng);
                Op::Compact(lo, hi)
            }
            966..=970 => Op::SyncWal,
            971..=973 => Op::WaitForCompactions,
            974..=976 => Op::Verify,
            977..=990 => Op::Reopen,
            _ => Op::CrashReopen,
        };
        ops.push(op);
    }
    ops
}

// ---------------------------------------------------------------------------------------
// The oracle.

/// One commit: the version of its last entry, its durability, its changes in order.
#[derive(Debug, Clone)]
struct Commit {
    last: u64,
    sync: bool,
    changes: Vec<(Bytes, Option<Bytes>)>,
}

impl Commit {
    fn first(&self) -> u64 {
        self.last + 1 - self.changes.len() as u64
    }
}

/// The versioned oracle: every version of every key, and the commit log.
#[derive(Debug, Default)]
pub struct Model {
    versions: BTreeMap<Bytes, Vec<(u64, Option<Bytes>)>>,
    log: Vec<Commit>,
    latest: u64,
    /// Every commit up to this version is durable.
    durable: u64,
}

fn in_range(k: &[u8], r: &Range) -> bool {
    let lo_ok = match &r.lo {
        Bound::Unbounded => true,
        Bound::Included(b) => k >= &b[..],
        Bound::Excluded(b) => k > &b[..],
    };
    let hi_ok = match &r.hi {
        Bound::Unbounded => true,
        Bound::Included(b) => k <= &b[..],
        Bound::Excluded(b) => k < &b[..],
    };
    lo_ok && hi_ok
}

impl Model {
    fn commit(&mut self, changes: &[(Bytes, Option<Bytes>)], sync: bool) {
        if changes.is_empty() {
            return;
        }
        for (k, v) in changes {
            self.latest += 1;
            self.versions
                .entry(k.clone())
                .or_default()
                .push((self.latest, v.clone()));
        }
        self.log.push(Commit {
            last: self.latest,
            sync,
            changes: changes.to_vec(),
        });
        if sync {
            self.durable = self.latest;
        }
    }

    fn value_at(&self, k: &[u8], v: u64) -> Option<Bytes> {
        self.versions
            .get(k)?
            .iter()
            .rev()
            .find(|(ver, _)| *ver <= v)
            .and_then(|(_, val)| val.clone())
    }

    fn scan_at(&self, r: &Range, v: u64) -> Vec<(Bytes, Bytes)> {
        self.versions
            .keys()
            .filter(|k| in_range(k, r))
            .filter_map(|k| self.value_at(k, v).map(|val| (k.clone(), val)))
            .collect()
    }

    /// What `history(k)` returns: the versions the GC rules keep with no snapshots, the
    /// retention bound `retain_from` and `keep_newest` (`compaction/src/gc.rs`, bottommost).
    fn history(&self, k: &[u8], retain_from: u64, keep_newest: usize) -> Vec<(u64, Option<Bytes>)> {
        #[derive(PartialEq)]
        enum Stripe {
            Retained(u64),
            Below,
        }
        let mut out = Vec::new();
        let mut pending = Vec::new();
        let mut last: Option<Stripe> = None;
        let Some(versions) = self.versions.get(k) else {
            return out;
        };
        for (rank, (v, val)) in versions.iter().rev().enumerate() {
            let stripe = if *v >= retain_from {
                Stripe::Retained(*v)
            } else {
                Stripe::Below
            };
            let kept_for_rank = keep_newest > 1 && rank < keep_newest;
            let shadowed = last.as_ref() == Some(&stripe) && !kept_for_rank;
            last = Some(stripe);
            if shadowed {
                continue;
            }
            let retained = *v >= retain_from || kept_for_rank;
            match val {
                None if !retained => pending.push((*v, None)),
                None => out.push((*v, None)),
                Some(x) => {
                    out.append(&mut pending);
                    out.push((*v, Some(x.clone())));
                }
            }
        }
        out
    }

    /// Every change with a version in `lo..hi`, in version order.
    fn changes(&self, lo: u64, hi: u64) -> Vec<(u64, Bytes, Option<Bytes>)> {
        let mut out = Vec::new();
        for c in &self.log {
            if c.last < lo {
                continue;
            }
            for (i, (k, v)) in c.changes.iter().enumerate() {
                let ver = c.first() + i as u64;
                if ver >= lo && ver < hi {
                    out.push((ver, k.clone(), v.clone()));
                }
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Results.

/// The result of one operation, as recorded and compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Res {
    Unit,
    Version(u64),
    Value(Option<Bytes>),
    Pairs(Vec<(Bytes, Bytes)>),
    History(Vec<(u64, Option<Bytes>)>),
    Changes(Vec<(u64, Bytes, Option<Bytes>)>),
    /// A snapshot's version and the read through it.
    At(u64, Box<Res>),
    NotRetained {
        requested: u64,
        oldest: u64,
    },
    InvalidArgument,
    /// Any other error: never expected.
    Error(String),
}

fn show_bytes(b: &[u8]) -> String {
    if b.len() <= 16 {
        format!("\"{}\"", b.escape_ascii())
    } else {
        let mut h = DefaultHasher::new();
        b.hash(&mut h);
        format!(
            "\"{}\"..({} B, hash {:08x})",
            b[..8].escape_ascii(),
            b.len(),
            h.finish() as u32
        )
    }
}

fn show_opt(v: &Option<Bytes>) -> String {
    v.as_ref()
        .map_or("(deleted)".to_string(), |b| show_bytes(b))
}

impl std::fmt::Display for Res {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Res::Unit => write!(f, "ok"),
            Res::Version(v) => write!(f, "v{v}"),
            Res::Value(v) => write!(f, "{}", show_opt(v)),
            Res::Pairs(p) => {
                let items: Vec<String> = p
                    .iter()
                    .map(|(k, v)| format!("{}={}", show_bytes(k), show_bytes(v)))
                    .collect();
                write!(f, "[{}]", items.join(", "))
            }
            Res::History(h) => {
                let items: Vec<String> = h
                    .iter()
                    .map(|(v, x)| format!("v{v}:{}", show_opt(x)))
                    .collect();
                write!(f, "history [{}]", items.join(", "))
            }
            Res::Changes(c) => {
                let items: Vec<String> = c
                    .iter()
                    .map(|(v, k, x)| format!("v{v}:{}={}", show_bytes(k), show_opt(x)))
                    .collect();
                write!(f, "changes [{}]", items.join(", "))
            }
            Res::At(v, r) => write!(f, "at v{v}: {r}"),
            Res::NotRetained { requested, oldest } => {
                write!(
                    f,
                    "VersionNotRetained {{ requested: {requested}, oldest: {oldest} }}"
                )
            }
            Res::InvalidArgument => write!(f, "InvalidArgument"),
            Res::Error(e) => write!(f, "error: {e}"),
        }
    }
}

fn res_err(e: &Error) -> Res {
    match e {
        Error::VersionNotRetained { requested, oldest } => Res::NotRetained {
            requested: requested.0,
            oldest: oldest.0,
        },
        Error::InvalidArgument(_) => Res::InvalidArgument,
        e => Res::Error(e.to_string()),
    }
}

/// The order of the `i`-th step of a walk: `Some(true)` from the front, `Some(false)` from the
/// back, `None` to stop.
fn walk_step(w: Walk, i: usize) -> Option<bool> {
    match w {
        Walk::Forward(limit) | Walk::Backward(limit) if i >= limit => None,
        Walk::Forward(_) => Some(true),
        Walk::Backward(_) => Some(false),
        Walk::Mixed(p) => Some((p >> (i % 64)) & 1 == 0),
    }
}

/// No database here holds more than about 60 keys: a scan that yields more is broken.
const MAX_ITEMS: usize = 10_000;

fn walk_iter(mut it: Iter, w: Walk) -> Res {
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(front) = walk_step(w, i) {
        if out.len() > MAX_ITEMS {
            return Res::Error(format!("iteration yielded more than {MAX_ITEMS} pairs"));
        }
        let next = if front { it.next() } else { it.next_back() };
        match next {
            None => break,
            Some(Ok(p)) => out.push(p),
            Some(Err(e)) => return Res::Error(format!("iteration: {e}")),
        }
        i += 1;
    }
    Res::Pairs(out)
}

fn walk_list(list: Vec<(Bytes, Bytes)>, w: Walk) -> Res {
    let mut list: VecDeque<_> = list.into();
    let mut out = Vec::new();
    let mut i = 0usize;
    while let Some(front) = walk_step(w, i) {
        let next = if front {
            list.pop_front()
        } else {
            list.pop_back()
        };
        match next {
            None => break,
            Some(p) => out.push(p),
        }
        i += 1;
    }
    Res::Pairs(out)
}

fn scan_of(db_or_snap: Iter, model: Vec<(Bytes, Bytes)>, w: Walk) -> (Res, Res) {
    (walk_iter(db_or_snap, w), walk_list(model, w))
}

fn changes_res(r: Result<chronokv::ChangeFeed, Error>) -> Res {
    r.and_then(|feed| feed.collect::<Result<Vec<_>, _>>())
        .map_or_else(
            |e| res_err(&e),
            |c| {
                Res::Changes(
                    c.into_iter()
                        .map(|c| (c.version.0, c.key, c.value))
                        .collect(),
                )
            },
        )
}

/// A read through a snapshot.
fn snapshot_read(s: &Snapshot, read: &Read) -> Res {
    match read {
        Read::Get(k) => s.get(k).map_or_else(|e| res_err(&e), Res::Value),
        Read::Scan(r, w) => walk_iter(s.scan(bounds(r)), *w),
    }
}

fn bounds(r: &Range) -> (Bound<Bytes>, Bound<Bytes>) {
    (r.lo.clone(), r.hi.clone())
}

// ---------------------------------------------------------------------------------------
// Running a case.

/// One divergence: the case, the operation and both results.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub seed: u64,
    pub op_index: usize,
    pub config: &'static str,
    pub what: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} op {} config {}: {}",
            self.seed, self.op_index, self.config, self.what
        )
    }
}

/// What the engine did in one configuration (its own counters, summed over every open).
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineFigures {
    pub flushes: u64,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub versions_dropped: u64,
    pub tombstones_dropped: u64,
    /// Crash-reopens whose recovered version was below the last acknowledged one.
    pub crashes_losing_commits: u64,
}

impl EngineFigures {
    fn add(&mut self, o: &EngineFigures) {
        self.flushes += o.flushes;
        self.compactions += o.compactions;
        self.trivial_moves += o.trivial_moves;
        self.versions_dropped += o.versions_dropped;
        self.tombstones_dropped += o.tombstones_dropped;
        self.crashes_losing_commits += o.crashes_losing_commits;
    }
}

/// Figures of one or more cases.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub seeds: u64,
    /// Seed x configuration.
    pub cases: u64,
    pub failed_cases: u64,
    pub ops: u64,
    pub reads_checked: u64,
    pub writes: u64,
    /// Clean reopens (close, open).
    pub reopens: u64,
    pub crash_reopens: u64,
    /// Checkpoints made, opened and read.
    pub checkpoints: u64,
    /// Commits lost at a crash (never durable) and committed again.
    pub commits_replayed: u64,
    pub engine: EngineFigures,
    /// The engine's figures per configuration, in configuration order.
    pub per_config: Vec<(&'static str, EngineFigures)>,
    pub divergences: Vec<Divergence>,
}

impl Report {
    pub fn merge(&mut self, o: Report) {
        self.seeds += o.seeds;
        self.cases += o.cases;
        self.failed_cases += o.failed_cases;
        self.ops += o.ops;
        self.reads_checked += o.reads_checked;
        self.writes += o.writes;
        self.reopens += o.reopens;
        self.crash_reopens += o.crash_reopens;
        self.checkpoints += o.checkpoints;
        self.commits_replayed += o.commits_replayed;
        self.engine.add(&o.engine);
        for (name, f) in o.per_config {
            match self.per_config.iter_mut().find(|(n, _)| *n == name) {
                Some((_, mine)) => mine.add(&f),
                None => self.per_config.push((name, f)),
            }
        }
        self.divergences.extend(o.divergences);
    }
}

/// An iterator held open across operations, with what it must still yield.
struct Held {
    it: Iter,
    expect: VecDeque<(Bytes, Bytes)>,
    reverse: bool,
}

/// One op log on one configuration.
struct Case<'a> {
    seed: u64,
    cfg: &'a Config,
    /// Every configuration (for `ReopenAs`).
    all: &'a [Config],
    /// The configuration `ReopenAs` switched to, until the next reopen.
    reopened_as: Option<&'a Config>,
    fs: MemFs,
    db: Option<Db>,
    snaps: Vec<Snapshot>,
    held: Vec<Held>,
    model: Model,
    report: Report,
    /// Per operation: the result, and whether it depends on the configuration's class.
    results: Vec<(Res, bool)>,
}

/// The outcome of one operation: what the engine returned, what the oracle expects, and
/// whether the answer depends on the configuration's class.
struct Outcome {
    got: Res,
    expect: Res,
    class_dependent: bool,
}

impl Outcome {
    fn same(got: Res, expect: Res) -> Outcome {
        Outcome {
            got,
            expect,
            class_dependent: false,
        }
    }

    fn unit() -> Outcome {
        Outcome::same(Res::Unit, Res::Unit)
    }

    fn of_unit(r: Result<(), Error>) -> Outcome {
        Outcome::same(r.map_or_else(|e| res_err(&e), |()| Res::Unit), Res::Unit)
    }
}

impl Case<'_> {
    fn open(&self) -> Result<Db, Error> {
        let cfg = self.reopened_as.unwrap_or(self.cfg);
        Db::open(Path::new(DIR), cfg.options(&self.fs))
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("the database is open")
    }

    /// The retention bound `history` applies, and the per-key depth.
    fn history_rules(&self) -> (u64, usize) {
        match self.cfg.class {
            Class::AllHistory => (0, 0),
            Class::NoHistory => (u64::MAX, 0),
            Class::NewestPerKey(n) => (u64::MAX, n),
        }
    }

    /// Adds the engine's counters to the report (before a close or crash).
    fn collect_stats(&mut self) {
        if let Some(db) = &self.db {
            let s = db.stats();
            let e = &mut self.report.engine;
            e.flushes += s.flushes;
            e.compactions += s.compactions;
            e.trivial_moves += s.trivial_moves;
            e.versions_dropped += s.versions_dropped;
            e.tombstones_dropped += s.tombstones_dropped;
        }
    }

    /// Drops snapshots and iterators: they do not survive the database.
    fn drop_readers(&mut self) {
        self.snaps.clear();
        self.held.clear();
    }

    fn write(&self, changes: &[(Bytes, Option<Bytes>)], single: bool, sync: bool) -> Res {
        let db = self.db();
        let durability = if sync {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        let r = match (single, changes) {
            (true, [(k, Some(v))]) if !sync => db.put(k, v),
            (true, [(k, None)]) if !sync => db.delete(k),
            _ => {
                let mut b = WriteBatch::new();
                for (k, v) in changes {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    };
                }
                db.write_with(b, durability)
            }
        };
        r.map_or_else(|e| res_err(&e), |v| Res::Version(v.0))
    }

    /// What the model answers for a read at `v`.
    fn model_read(&self, v: u64, read: &Read) -> Res {
        match read {
            Read::Get(k) => Res::Value(self.model.value_at(k, v)),
            Read::Scan(r, w) => walk_list(self.model.scan_at(r, v), *w),
        }
    }

    fn run_op(&mut self, op: &Op) -> Outcome {
        let latest = self.model.latest;
        match op {
            Op::Write {
                changes,
                single,
                sync,
            } => {
                self.report.writes += 1;
                let got = self.write(changes, *single, *sync);
                self.model.commit(changes, *sync);
                Outcome::same(got, Res::Version(self.model.latest))
            }
            Op::Get(k) => {
                self.report.reads_checked += 1;
                let got = self.db().get(k).map_or_else(|e| res_err(&e), Res::Value);
                Outcome::same(got, Res::Value(self.model.value_at(k, latest)))
            }
            Op::Scan(r, w) => {
                self.report.reads_checked += 1;
                let (got, expect) =
                    scan_of(self.db().scan(bounds(r)), self.model.scan_at(r, latest), *w);
                Outcome::same(got, expect)
            }
            Op::Prefix(p, reverse) => {
                self.report.reads_checked += 1;
                let expect: Vec<_> = self
                    .model
                    .scan_at(
                        &Range {
                            lo: Bound::Unbounded,
                            hi: Bound::Unbounded,
                        },
                        latest,
                    )
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(p))
                    .collect();
                let w = if *reverse {
                    Walk::Backward(usize::MAX)
                } else {
                    Walk::Forward(usize::MAX)
                };
                let (got, expect) = scan_of(self.db().prefix(p), expect, w);
                Outcome::same(got, expect)
            }
            Op::TakeSnapshot => {
                if self.snaps.len() >= 4 {
                    self.snaps.remove(0);
                }
                let s = self.db().snapshot();
                let got = Res::Version(s.version().0);
                self.snaps.push(s);
                Outcome::same(got, Res::Version(latest))
            }
            Op::DropSnapshot(pick) => {
                if !self.snaps.is_empty() {
                    let i = (*pick % self.snaps.len() as u64) as usize;
                    self.snaps.remove(i);
                }
                Outcome::unit()
            }
            Op::SnapshotRead(pick, read) => {
                if self.snaps.is_empty() {
                    return Outcome::unit();
                }
                self.report.reads_checked += 1;
                let s = &self.snaps[(*pick % self.snaps.len() as u64) as usize];
                let v = s.version().0;
                Outcome::same(snapshot_read(s, read), self.model_read(v, read))
            }
            Op::SnapshotAt(pick, read) => {
                self.report.reads_checked += 1;
                let v = *pick % (latest + 2);
                let live = self.snaps.iter().any(|s| s.version().0 == v);
                let retained = matches!(self.cfg.class, Class::AllHistory) || v == latest || live;
                let expect_ok = v <= latest && retained;
                let class_dependent = v < latest && !live;
                let got = match self.db().snapshot_at(Version(v)) {
                    Ok(s) => Res::At(s.version().0, Box::new(snapshot_read(&s, read))),
                    Err(e) => res_err(&e),
                };
                let expect = if v > latest {
                    Res::InvalidArgument
                } else if expect_ok {
                    Res::At(v, Box::new(self.model_read(v, read)))
                } else {
                    Res::NotRetained {
                        requested: v,
                        oldest: latest,
                    }
                };
                Outcome {
                    got,
                    expect,
                    class_dependent,
                }
            }
            Op::SnapshotAsOfNow(read) => {
                self.report.reads_checked += 1;
                let got = match self.db().snapshot_as_of(SystemTime::now()) {
                    Ok(s) => Res::At(s.version().0, Box::new(snapshot_read(&s, read))),
                    Err(e) => res_err(&e),
                };
                Outcome::same(
                    got,
                    Res::At(latest, Box::new(self.model_read(latest, read))),
                )
            }
            Op::History(k) => {
                self.report.reads_checked += 1;
                let got = self.db().history(k).map_or_else(
                    |e| res_err(&e),
                    |h| Res::History(h.into_iter().map(|e| (e.version.0, e.value)).collect()),
                );
                let (retain_from, keep) = self.history_rules();
                Outcome {
                    got,
                    expect: Res::History(self.model.history(k, retain_from, keep)),
                    class_dependent: true,
                }
            }
            Op::Changes { pick, span, kind } => {
                self.report.reads_checked += 1;
                let a = *pick % (latest + 1);
                let b = a + span;
                let db = self.db();
                let r = match kind {
                    0 => db.changes(Version(a)..Version(b)),
                    1 => db.changes(Version(a)..),
                    _ => db.changes(..),
                };
                let got = changes_res(r);
                let all = matches!(self.cfg.class, Class::AllHistory);
                let expect = match kind {
                    // No retention: the horizon is past the latest version.
                    2 if !all => Res::Changes(Vec::new()),
                    2 => Res::Changes(self.model.changes(0, u64::MAX)),
                    _ if !all => Res::NotRetained {
                        requested: a,
                        oldest: latest,
                    },
                    0 => Res::Changes(self.model.changes(a, b)),
                    _ => Res::Changes(self.model.changes(a, u64::MAX)),
                };
                Outcome {
                    got,
                    expect,
                    class_dependent: true,
                }
            }
            Op::OldestReadable => {
                let got = Res::Version(self.db().oldest_readable_version().0);
                let expect = match self.cfg.class {
                    Class::AllHistory => Res::Version(0),
                    _ => Res::Version(latest),
                };
                Outcome {
                    got,
                    expect,
                    class_dependent: true,
                }
            }
            Op::IterOpen(r, reverse) => {
                if self.held.len() >= 2 {
                    self.held.remove(0);
                }
                let it = self.db().scan(bounds(r));
                self.held.push(Held {
                    it,
                    expect: self.model.scan_at(r, latest).into(),
                    reverse: *reverse,
                });
                Outcome::unit()
            }
            Op::IterNext(pick, n) => {
                if self.held.is_empty() {
                    return Outcome::unit();
                }
                self.report.reads_checked += 1;
                let i = (*pick % self.held.len() as u64) as usize;
                let h = &mut self.held[i];
                let w = if h.reverse {
                    Walk::Backward(*n)
                } else {
                    Walk::Forward(*n)
                };
                let mut got = Vec::new();
                let mut err = None;
                for _ in 0..*n {
                    let next = if h.reverse {
                        h.it.next_back()
                    } else {
                        h.it.next()
                    };
                    match next {
                        None => break,
                        Some(Ok(p)) => got.push(p),
                        Some(Err(e)) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                let expect = walk_list(h.expect.iter().cloned().collect(), w);
                let taken = got.len().min(h.expect.len());
                for _ in 0..taken {
                    if h.reverse {
                        h.expect.pop_back();
                    } else {
                        h.expect.pop_front();
                    }
                }
                let got = match err {
                    Some(e) => Res::Error(format!("iteration: {e}")),
                    None => Res::Pairs(got),
                };
                Outcome::same(got, expect)
            }
            Op::Flush => {
                let r = self.db().flush();
                if r.is_ok() {
                    self.model.durable = latest;
                }
                Outcome::of_unit(r)
            }
            Op::Compact(lo, hi) => {
                let b = |k: &Option<Bytes>| k.clone().map_or(Bound::Unbounded, Bound::Included);
                let r = self.db().compact_range((b(lo), b(hi)));
                if r.is_ok() {
                    self.model.durable = latest;
                }
                Outcome::of_unit(r)
            }
            Op::SyncWal => {
                let r = self.db().sync_wal();
                if r.is_ok() {
                    self.model.durable = latest;
                }
                Outcome::of_unit(r)
            }
            Op::WaitForCompactions => Outcome::of_unit(self.db().wait_for_compactions()),
            Op::Verify => {
                let got = match self.db().verify() {
                    Ok(r) if r.problems.is_empty() => Res::Unit,
                    Ok(r) => Res::Error(format!("verify: {:?}", r.problems)),
                    Err(e) => res_err(&e),
                };
                Outcome::same(got, Res::Unit)
            }
            Op::Checkpoint => self.checkpoint(),
            Op::Reopen | Op::ReopenAs(_) => {
                self.report.reopens += 1;
                self.reopened_as = match op {
                    Op::ReopenAs(pick) => {
                        let same: Vec<&Config> = self
                            .all
                            .iter()
                            .filter(|c| c.class == self.cfg.class)
                            .collect();
                        Some(same[(*pick % same.len() as u64) as usize])
                    }
                    _ => None,
                };
                self.drop_readers();
                self.collect_stats();
                let closed = self.db.take().expect("open").close();
                if let Err(e) = closed {
                    return Outcome::same(Res::Error(format!("close: {e}")), Res::Unit);
                }
                self.model.durable = latest;
                match self.open() {
                    Ok(db) => {
                        let v = db.latest_version().0;
                        self.db = Some(db);
                        Outcome::same(Res::Version(v), Res::Version(latest))
                    }
                    Err(e) => Outcome::same(Res::Error(format!("open: {e}")), Res::Unit),
                }
            }
            Op::CrashReopen => self.crash_reopen(),
        }
    }

    /// Checkpoints into a fresh directory, opens the checkpoint with the same options and
    /// reads it: it must hold exactly the latest state (and, with history retained, the whole
    /// change feed).
    fn checkpoint(&mut self) -> Outcome {
        self.report.checkpoints += 1;
        let dir = format!("/checkpoint-{}", self.report.checkpoints);
        let latest = self.model.latest;
        let info = match self.db().checkpoint(&dir) {
            Ok(info) => info,
            Err(e) => return Outcome::same(Res::Error(format!("checkpoint: {e}")), Res::Unit),
        };
        self.model.durable = latest;
        if info.version.0 != latest {
            return Outcome::same(
                Res::Error(format!("checkpoint holds v{}", info.version)),
                Res::Error(format!("checkpoint holds v{latest}")),
            );
        }
        let db = match Db::open(&dir, self.cfg.options(&self.fs)) {
            Ok(db) => db,
            Err(e) => return Outcome::same(Res::Error(format!("open checkpoint: {e}")), Res::Unit),
        };
        let all = Range {
            lo: Bound::Unbounded,
            hi: Bound::Unbounded,
        };
        let (got, expect) = scan_of(
            db.scan(bounds(&all)),
            self.model.scan_at(&all, latest),
            Walk::Forward(usize::MAX),
        );
        if got != expect {
            return Outcome::same(
                Res::Error(format!("checkpoint contents: {got}")),
                Res::Error(format!("checkpoint contents: {expect}")),
            );
        }
        if matches!(self.cfg.class, Class::AllHistory) {
            let got = changes_res(db.changes(..));
            let expect = Res::Changes(self.model.changes(0, u64::MAX));
            if got != expect {
                return Outcome::same(
                    Res::Error(format!("checkpoint change feed: {got}")),
                    Res::Error(format!("checkpoint change feed: {expect}")),
                );
            }
        }
        Outcome::of_unit(db.close())
    }

    /// See the module documentation: recover from a synced-only image, check the state at
    /// the recovered version, then commit the lost commits again.
    fn crash_reopen(&mut self) -> Outcome {
        self.report.crash_reopens += 1;
        self.drop_readers();
        self.collect_stats();
        let image = self.fs.crash_clone();
        drop(self.db.take());
        self.reopened_as = None;
        self.fs = image;
        let db = match self.open() {
            Ok(db) => db,
            Err(e) => {
                return Outcome::same(Res::Error(format!("open after crash: {e}")), Res::Unit)
            }
        };
        let v = db.latest_version().0;
        self.db = Some(db);
        let (floor, ceiling) = (self.model.durable, self.model.latest);
        if std::env::var_os("CHRONOKV_MODEL_TRACE").is_some() {
            eprintln!("  crash: durable v{floor}, recovered v{v}, acknowledged v{ceiling}");
        }
        if v < floor || v > ceiling {
            return Outcome::same(
                Res::Error(format!(
                    "recovered v{v}, outside [v{floor} durable, v{ceiling} acknowledged]"
                )),
                Res::Unit,
            );
        }
        if v != 0 && !self.model.log.iter().any(|c| c.last == v) {
            return Outcome::same(
                Res::Error(format!("recovered v{v} is inside a batch")),
                Res::Unit,
            );
        }
        let all = Range {
            lo: Bound::Unbounded,
            hi: Bound::Unbounded,
        };
        let (got, expect) = scan_of(
            self.db().scan(bounds(&all)),
            self.model.scan_at(&all, v),
            Walk::Forward(usize::MAX),
        );
        if got != expect {
            return Outcome::same(
                Res::Error(format!("contents after recovery at v{v}: {got}")),
                Res::Error(format!("contents after recovery at v{v}: {expect}")),
            );
        }
        if matches!(self.cfg.class, Class::AllHistory) {
            let got = changes_res(self.db().changes(..));
            let expect = Res::Changes(self.model.changes(0, v + 1));
            if got != expect {
                return Outcome::same(
                    Res::Error(format!("change feed after recovery at v{v}: {got}")),
                    Res::Error(format!("change feed after recovery at v{v}: {expect}")),
                );
            }
        }
        // Everything recovered is durable; commit the lost commits again.
        self.model.durable = v;
        let lost: Vec<Commit> = self
            .model
            .log
            .iter()
            .filter(|c| c.last > v)
            .cloned()
            .collect();
        if !lost.is_empty() {
            self.report.engine.crashes_losing_commits += 1;
        }
        for c in lost {
            self.report.commits_replayed += 1;
            let got = self.write(&c.changes, false, c.sync);
            if got != Res::Version(c.last) {
                return Outcome::same(
                    Res::Error(format!("replayed commit of v{}: {got}", c.last)),
                    Res::Version(c.last),
                );
            }
            if c.sync {
                self.model.durable = c.last;
            }
        }
        Outcome::unit()
    }

    /// Runs the op log; stops at the first divergence from the oracle.
    fn run(&mut self, ops: &[Op]) -> Option<Divergence> {
        match self.open() {
            Ok(db) => self.db = Some(db),
            Err(e) => {
                return Some(Divergence {
                    seed: self.seed,
                    op_index: 0,
                    config: self.cfg.name,
                    what: format!("first open failed: {e}"),
                })
            }
        }
        let trace = std::env::var_os("CHRONOKV_MODEL_TRACE").is_some();
        for (i, op) in ops.iter().enumerate() {
            self.report.ops += 1;
            if trace {
                eprintln!(
                    "seed {} {} op {i}: {}",
                    self.seed,
                    self.cfg.name,
                    short_op(op)
                );
            }
            let o = self.run_op(op);
            if o.got != o.expect {
                return Some(Divergence {
                    seed: self.seed,
                    op_index: i,
                    config: self.cfg.name,
                    what: format!(
                        "{} {}\n    engine: {}\n    oracle: {}",
                        op.name(),
                        short_op(op),
                        o.got,
                        o.expect
                    ),
                });
            }
            self.results.push((o.got, o.class_dependent));
        }
        self.drop_readers();
        self.collect_stats();
        if let Some(db) = self.db.take() {
            if let Err(e) = db.close() {
                return Some(Divergence {
                    seed: self.seed,
                    op_index: ops.len(),
                    config: self.cfg.name,
                    what: format!("final close failed: {e}"),
                });
            }
        }
        None
    }
}

/// The operation without its values (which can be 70 KiB).
fn short_op(op: &Op) -> String {
    match op {
        Op::Write {
            changes,
            single,
            sync,
        } => {
            let items: Vec<String> = changes
                .iter()
                .map(|(k, v)| format!("{}={}", show_bytes(k), show_opt(v)))
                .collect();
            format!("[{}] single={single} sync={sync}", items.join(", "))
        }
        other => {
            let s = format!("{other:?}");
            if s.len() > 400 {
                format!("{}...", &s[..400])
            } else {
                s
            }
        }
    }
}

/// The results of one case and their digests.
struct Recorded {
    cfg: Config,
    results: Vec<(Res, bool)>,
    /// Over the results every configuration must agree on.
    common: u64,
    /// Over all results (compared within a class).
    all: u64,
}

fn digests(results: &[(Res, bool)]) -> (u64, u64) {
    let mut common = DefaultHasher::new();
    let mut all = DefaultHasher::new();
    for (i, (r, dep)) in results.iter().enumerate() {
        (i, r).hash(&mut all);
        if !dep {
            (i, r).hash(&mut common);
        }
    }
    (common.finish(), all.finish())
}

/// Runs one seed's op log on every configuration, checks each against the oracle and the
/// configurations against each other.
pub fn run_seed(seed: u64, ops: usize, configs: &[Config]) -> Report {
    let log = op_log(seed, ops);
    let mut report = Report {
        seeds: 1,
        ..Report::default()
    };
    let mut recorded: Vec<Recorded> = Vec::new();
    for cfg in configs {
        let mut case = Case {
            seed,
            cfg,
            all: configs,
            reopened_as: None,
            fs: MemFs::new(),
            db: None,
            snaps: Vec::new(),
            held: Vec::new(),
            model: Model::default(),
            report: Report::default(),
            results: Vec::with_capacity(ops),
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case.run(&log)));
        let divergence = match outcome {
            Ok(d) => d,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Some(Divergence {
                    seed,
                    op_index: case.results.len(),
                    config: cfg.name,
                    what: format!("panic: {msg}"),
                })
            }
        };
        report.cases += 1;
        let mut r = std::mem::take(&mut case.report);
        r.per_config = vec![(cfg.name, r.engine)];
        match divergence {
            Some(d) => {
                r.failed_cases += 1;
                r.divergences.push(d);
            }
            None => {
                let (common, all) = digests(&case.results);
                recorded.push(Recorded {
                    cfg: cfg.clone(),
                    results: std::mem::take(&mut case.results),
                    common,
                    all,
                });
            }
        }
        report.merge(r);
    }
    // The metamorphic check: every configuration that matched the oracle must also match the
    // others (all of them on class-independent results, its class on all results).
    for i in 1..recorded.len() {
        let c = &recorded[i];
        let same_class = recorded[..i].iter().find(|o| o.cfg.class == c.cfg.class);
        let mismatch = if c.common != recorded[0].common {
            Some((&recorded[0], false))
        } else {
            same_class.filter(|o| o.all != c.all).map(|o| (o, true))
        };
        if let Some((o, whole)) = mismatch {
            let at = (0..c.results.len().min(o.results.len()))
                .find(|&j| {
                    let (a, ad) = &c.results[j];
                    let (b, _) = &o.results[j];
                    (whole || !ad) && a != b
                })
                .unwrap_or(c.results.len().min(o.results.len()));
            let show = |r: &Recorded| {
                r.results
                    .get(at)
                    .map_or("(none)".into(), |x| x.0.to_string())
            };
            report.failed_cases += 1;
            report.divergences.push(Divergence {
                seed,
                op_index: at,
                config: c.cfg.name,
                what: format!(
                    "results differ from config {}: {} {}\n    {}: {}\n    {}: {}",
                    o.cfg.name,
                    log.get(at).map_or("end", Op::name),
                    log.get(at).map(short_op).unwrap_or_default(),
                    c.cfg.name,
                    show(c),
                    o.cfg.name,
                    show(o)
                ),
            });
        }
    }
    report
}
