//! The real kill -9 loop (RELIABILITY.md, G3).
//!
//! A *stress process* ([`stress`], `chronokv-harness stress`) opens a real on-disk database
//! with a tiny memtable, small runs, aggressive leveled compaction and a tiny manifest limit,
//! so flushes, compactions, manifest rotations and WAL rotations never stop; four writer
//! threads commit puts, deletes and batches (a quarter of them `Durability::Sync`) while a
//! fifth thread takes a checkpoint every few tens of milliseconds. The *driver*
//! ([`driver`], `chronokv-harness killloop`) spawns it, kills it with SIGKILL after a seeded
//! delay, reopens the database, checks it against what the writers had acknowledged, and
//! starts the next cycle on the same database.
//!
//! **Exact expectations.** Writer `t` owns the keys `t{t}/...` and numbers its operations
//! 1, 2, 3, ... across all cycles; operation `(t, c)` is a pure function of the seed, `t`
//! and `c` ([`op`]), and each value names the operation that wrote it. After an operation
//! returns, the writer appends `(c, version)` to its acknowledgement log with one
//! `write(2)`; a kill -9 keeps the page cache, so the log survives, and so does every
//! acknowledged write, `Sync` or `Buffered` ("acknowledged writes survive a crash of the
//! process"). A writer has at most one operation in flight, so per writer the recovered
//! state must be its acknowledged operations applied in order, plus at most the next one,
//! whole. See [`oracle`] for the checks.
//!
//! **Where the kill landed** is read from a status file the stress process keeps current
//! ([`status`]), fed by a `Vfs` wrapper that recognises the engine's work from the calls it
//! makes ([`tracefs`]); no engine change.

pub mod driver;
pub mod follower;
pub mod oracle;
pub mod status;
pub mod stress;
pub mod tracefs;

use crate::Rng;
use chronokv::vfs::Vfs;
use chronokv::{CompactionStyle, Db, Durability, Error, Leveled, Options, Version, WriteBatch};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writer threads in the stress process.
pub const THREADS: usize = 4;
/// Keys each writer overwrites and deletes over and over.
const HOT_KEYS: u64 = 400;

/// The engine configuration of the stress process (and of the driver's reopen): a 16 KiB
/// memtable, 1 KiB blocks, leveled compaction at 2 level-0 runs with 128 KiB output runs and
/// a 256 KiB base level, and a 4 KiB manifest limit.
pub fn options(vfs: Arc<dyn Vfs>, compaction_threads: usize) -> Options {
    Options {
        vfs,
        memtable_size: 16 << 10,
        block_size: 1 << 10,
        max_manifest_bytes: 4 << 10,
        compaction_threads,
        compaction: CompactionStyle::Leveled(Leveled {
            l0_trigger: 2,
            size_ratio: 4,
            base_level_bytes: 256 << 10,
            target_run_size: 128 << 10,
            max_levels: 5,
        }),
        ..Options::default()
    }
}

/// Where everything lives under the loop's directory.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    /// The database.
    pub fn db(&self) -> PathBuf {
        self.root.join("db")
    }

    /// The stress process's status file.
    pub fn status(&self) -> PathBuf {
        self.root.join("status")
    }

    /// Writer `t`'s acknowledgement log of the current cycle.
    pub fn acks(&self, t: usize) -> PathBuf {
        self.root.join(format!("acks-{t}.log"))
    }

    /// Where the stress process puts its checkpoints.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// The stress process's stderr.
    pub fn stderr(&self) -> PathBuf {
        self.root.join("stress.stderr")
    }

    /// The crash image of the current cycle: the database as the kill left it.
    pub fn image(&self) -> PathBuf {
        self.root.join("image")
    }
}

/// One key/value change: `None` deletes.
pub type Entry = (Vec<u8>, Option<Vec<u8>>);

/// How an operation is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Put,
    Delete,
    Batch,
}

/// Operation `counter` of writer `thread`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub thread: usize,
    pub counter: u64,
    pub kind: OpKind,
    /// Distinct keys, all of the writer's own key space.
    pub entries: Vec<Entry>,
    pub sync: bool,
}

fn hot_key(t: usize, i: u64) -> Vec<u8> {
    format!("t{t}/h{i:04}").into_bytes()
}

/// A key only operation `c` creates (its `j`-th entry).
fn fresh_key(t: usize, c: u64, j: usize) -> Vec<u8> {
    format!("t{t}/f{c:012}.{j}").into_bytes()
}

/// `t{t}/`: the prefix of writer `t`'s keys.
pub fn prefix(t: usize) -> Vec<u8> {
    format!("t{t}/").into_bytes()
}

/// The value entry `j` of operation `(t, c)` writes: `t.c.j|` then filler (usually under
/// 200 bytes, 1% of them 2-20 KiB so some commits span several pages).
fn value(rng: &mut Rng, t: usize, c: u64, j: usize) -> Vec<u8> {
    let mut v = format!("{t}.{c}.{j}|").into_bytes();
    let len = if rng.chance(1) {
        2048 + rng.below(18 << 10)
    } else {
        rng.below(200)
    };
    let fill = b'a' + rng.below(26) as u8;
    v.resize(v.len() + len as usize, fill);
    v
}

/// The operation that wrote `v` (writer, counter, entry), from its `t.c.j|` prefix.
pub fn value_origin(v: &[u8]) -> Option<(usize, u64, usize)> {
    let head = v.split(|&b| b == b'|').next()?;
    let s = std::str::from_utf8(head).ok()?;
    let mut parts = s.split('.');
    let t = parts.next()?.parse().ok()?;
    let c = parts.next()?.parse().ok()?;
    let j = parts.next()?.parse().ok()?;
    Some((t, c, j))
}

/// `t.c` of the operation that wrote `v`, for messages.
pub fn describe(v: Option<&[u8]>) -> String {
    match v {
        None => "nothing".into(),
        Some(v) => match value_origin(v) {
            Some((t, c, _)) => format!("the value of op {t}.{c}"),
            None => format!("an unknown value ({} bytes)", v.len()),
        },
    }
}

/// Operation `counter` of writer `thread` under `seed`: 55% single puts, 15% single deletes,
/// 30% batches of 2-8 distinct keys (always a put first, so a batch always changes
/// something; 70% puts after that). Keys are one of the writer's 400 hot keys, or (1% of
/// puts) a key only this operation writes, so the database keeps growing, or, for deletes
/// only (a fifth of single deletes, 5% of later batch entries), such a key of one of the
/// last 2,000 operations, which may not exist. 25% are `Sync`.
pub fn op(seed: u64, thread: usize, counter: u64) -> Op {
    let mut rng = Rng::new(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (thread as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ counter.wrapping_mul(0xA24B_AED4_963E_E407),
    );
    let (t, c) = (thread, counter);
    let roll = rng.below(100);
    let sync = rng.chance(25);
    let old_fresh = |rng: &mut Rng| {
        let back = 1 + rng.below(2000);
        fresh_key(t, c.saturating_sub(back), 0)
    };
    let (kind, entries) = if roll < 55 {
        let key = if rng.chance(1) {
            fresh_key(t, c, 0)
        } else {
            hot_key(t, rng.below(HOT_KEYS))
        };
        (OpKind::Put, vec![(key, Some(value(&mut rng, t, c, 0)))])
    } else if roll < 70 {
        let key = if rng.chance(20) {
            old_fresh(&mut rng)
        } else {
            hot_key(t, rng.below(HOT_KEYS))
        };
        (OpKind::Delete, vec![(key, None)])
    } else {
        let n = 2 + rng.below(7) as usize;
        let mut entries: Vec<Entry> = Vec::with_capacity(n);
        for _ in 0..n {
            let j = entries.len();
            let roll = rng.below(100);
            // Keys of older operations are only ever deleted (and never first).
            let (key, old) = if roll < 1 {
                (fresh_key(t, c, j), false)
            } else if roll < 6 && j > 0 {
                (old_fresh(&mut rng), true)
            } else {
                (hot_key(t, rng.below(HOT_KEYS)), false)
            };
            if entries.iter().any(|(k, _)| *k == key) {
                continue;
            }
            // The first entry is always a put, so the batch is visible whatever the state.
            let put = j == 0 || (!old && rng.chance(70));
            let v = put.then(|| value(&mut rng, t, c, j));
            entries.push((key, v));
        }
        (OpKind::Batch, entries)
    };
    Op {
        thread,
        counter,
        kind,
        entries,
        sync,
    }
}

/// Issues `op` and returns the version of its last entry.
pub fn apply(db: &Db, op: &Op) -> Result<Version, Error> {
    let durability = if op.sync {
        Durability::Sync
    } else {
        Durability::Buffered
    };
    match op.kind {
        OpKind::Put | OpKind::Delete if durability == Durability::Buffered => {
            let (k, v) = &op.entries[0];
            match v {
                Some(v) => db.put(k, v),
                None => db.delete(k),
            }
        }
        _ => {
            let mut batch = WriteBatch::new();
            for (k, v) in &op.entries {
                match v {
                    Some(v) => batch.put(k, v),
                    None => batch.delete(k),
                };
            }
            db.write_with(batch, durability)
        }
    }
}

/// Bytes of one acknowledgement record: the op counter and the version of its last entry,
/// both u64 little-endian.
pub const ACK_LEN: usize = 16;

pub fn encode_ack(counter: u64, version: u64) -> [u8; ACK_LEN] {
    let mut rec = [0u8; ACK_LEN];
    rec[..8].copy_from_slice(&counter.to_le_bytes());
    rec[8..].copy_from_slice(&version.to_le_bytes());
    rec
}

/// The whole records of an acknowledgement log (a torn last record is dropped: its op counts
/// as in flight).
pub fn decode_acks(bytes: &[u8]) -> Vec<(u64, u64)> {
    bytes
        .chunks_exact(ACK_LEN)
        .map(|r| {
            (
                u64::from_le_bytes(r[..8].try_into().unwrap()),
                u64::from_le_bytes(r[8..].try_into().unwrap()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_reproducible_and_well_formed() {
        let mut kinds = [0; 3];
        for c in 1..3000 {
            let o = op(7, 2, c);
            assert_eq!(o, op(7, 2, c));
            assert!(!o.entries.is_empty());
            kinds[o.kind as usize] += 1;
            if o.kind == OpKind::Batch {
                assert!(o.entries[0].1.is_some(), "a batch starts with a put");
            }
            let keys: std::collections::BTreeSet<_> = o.entries.iter().map(|e| &e.0).collect();
            assert_eq!(keys.len(), o.entries.len(), "distinct keys");
            for (j, (k, v)) in o.entries.iter().enumerate() {
                assert!(k.starts_with(&prefix(2)));
                if let Some(v) = v {
                    assert_eq!(value_origin(v), Some((2, c, j)));
                }
            }
        }
        assert!(kinds.iter().all(|&n| n > 300), "{kinds:?}");
        assert_ne!(op(7, 2, 5), op(8, 2, 5));
        assert_ne!(op(7, 1, 5).entries, op(7, 2, 5).entries);
    }

    #[test]
    fn acks_round_trip_and_a_torn_record_is_dropped() {
        let mut log = Vec::new();
        log.extend_from_slice(&encode_ack(5, 100));
        log.extend_from_slice(&encode_ack(6, 104));
        log.extend_from_slice(&encode_ack(7, 105)[..9]);
        assert_eq!(decode_acks(&log), vec![(5, 100), (6, 104)]);
    }
}
