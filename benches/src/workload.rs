//! The workloads, in the style of db_bench and YCSB, and how one run of a workload on one
//! engine is measured.
//!
//! Every workload starts on a fresh, empty directory. Read and mixed workloads first
//! *preload* all `keys` in a random order (batches of 1000) and *settle* (flush, wait for
//! compaction) before the clock starts, so they measure a quiet tree. Counts:
//!
//! | workload | measured operations |
//! |---|---|
//! | `fillseq`, `fillrandom` | `keys` single puts, in key order / a random permutation |
//! | `overwrite` | `ops` puts of random existing keys |
//! | `readrandom`, `readmissing` | `ops` gets of random present / never-written keys |
//! | `seekrandom` | `ops / 4` seeks to a random present key, each reading 10 pairs |
//! | `scan` | three full scans; the unit is pairs read |
//! | `fillsync1`, `fillsync4` | `sync_ops` synced puts per thread, 1 or 4 threads |
//! | `readwhilewriting` | `ops` gets by one reader while one writer overwrites; reader ops/s |
//! | `ycsb-a` .. `ycsb-f` | `ops` operations (`ycsb-e`: `ops / 10`), keys chosen zipfian |
//!
//! YCSB mixes (core workloads A-F): A 50% read / 50% update; B 95% read / 5% update;
//! C 100% read; D 95% read of recent keys / 5% insert; E 95% scan of 1-100 pairs / 5%
//! insert; F 50% read / 50% read-modify-write.

use crate::engine::{self, BenchResult, Durability, Engine, EngineConfig};
use crate::keys::{key, missing_key, Rng, Values};
use crate::zipf::{Latest, ScrambledZipfian};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Puts in ascending key order.
    FillSeq,
    /// Puts in random order (a permutation of the keys).
    FillRandom,
    /// Random puts over existing keys.
    Overwrite,
    /// Random gets of present keys.
    ReadRandom,
    /// Random gets of keys never written.
    ReadMissing,
    /// Seek to a random key and read 10 pairs.
    SeekRandom,
    /// Full scans.
    Scan,
    /// Synced puts from 1 thread.
    FillSync1,
    /// Synced puts from 4 threads.
    FillSync4,
    /// One reader and one writer at once; the reader's rate counts.
    ReadWhileWriting,
    /// A YCSB core workload, `'a'..='f'`.
    Ycsb(char),
}

/// Every workload, in run order.
pub const ALL: [Workload; 16] = [
    Workload::FillSeq,
    Workload::FillRandom,
    Workload::Overwrite,
    Workload::ReadRandom,
    Workload::ReadMissing,
    Workload::SeekRandom,
    Workload::Scan,
    Workload::FillSync1,
    Workload::FillSync4,
    Workload::ReadWhileWriting,
    Workload::Ycsb('a'),
    Workload::Ycsb('b'),
    Workload::Ycsb('c'),
    Workload::Ycsb('d'),
    Workload::Ycsb('e'),
    Workload::Ycsb('f'),
];

impl Workload {
    /// The workload's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadMissing => "readmissing",
            Workload::SeekRandom => "seekrandom",
            Workload::Scan => "scan",
            Workload::FillSync1 => "fillsync1",
            Workload::FillSync4 => "fillsync4",
            Workload::ReadWhileWriting => "readwhilewriting",
            Workload::Ycsb('a') => "ycsb-a",
            Workload::Ycsb('b') => "ycsb-b",
            Workload::Ycsb('c') => "ycsb-c",
            Workload::Ycsb('d') => "ycsb-d",
            Workload::Ycsb('e') => "ycsb-e",
            Workload::Ycsb(_) => "ycsb-f",
        }
    }

    /// The workload called `name`.
    pub fn parse(name: &str) -> Option<Workload> {
        ALL.into_iter().find(|w| w.name() == name)
    }

    /// What one counted operation is.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::Scan => "pairs/s",
            Workload::SeekRandom => "seeks/s",
            _ => "ops/s",
        }
    }

    fn preloads(self) -> bool {
        !matches!(
            self,
            Workload::FillSeq | Workload::FillRandom | Workload::FillSync1 | Workload::FillSync4
        )
    }

    fn durability(self) -> Durability {
        match self {
            Workload::FillSync1 | Workload::FillSync4 => Durability::Sync,
            _ => Durability::Buffered,
        }
    }

    fn seed(self) -> u64 {
        let h = self
            .name()
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        crate::zipf::fnv1a64(h)
    }
}

/// Sizes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Keys in the table (fills write this many; others preload this many).
    pub keys: u64,
    /// Operations of the read, overwrite and mixed workloads.
    pub ops: u64,
    /// Value bytes.
    pub value_size: usize,
    /// Synced puts per thread in `fillsync1` and `fillsync4`.
    pub sync_ops: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            keys: 1_000_000,
            ops: 1_000_000,
            value_size: 100,
            sync_ops: 2_000,
        }
    }
}

/// What one workload run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The workload.
    pub workload: Workload,
    /// Operations counted (see [`Workload::unit`]).
    pub ops: u64,
    /// Seconds they took.
    pub seconds: f64,
    /// Reads that found their key (pairs read, for seeks and scans).
    pub found: u64,
}

impl Outcome {
    /// Operations per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Space and write cost measured after `fillrandom` settled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amplification {
    /// Key and value bytes the workload wrote.
    pub user_bytes: u64,
    /// Bytes of all the engine's files after settling.
    pub disk_bytes: u64,
    /// Table bytes written by flushes and compactions, from the engine's own counters.
    pub table_bytes_written: Option<u64>,
    /// Bytes the process sent to storage (`/proc/self/io`), WAL included.
    pub io_bytes_written: Option<u64>,
}

impl Amplification {
    /// Engine-counted write amplification (table bytes / user bytes), WAL excluded.
    pub fn write_amp(&self) -> Option<f64> {
        self.table_bytes_written
            .map(|b| b as f64 / self.user_bytes as f64)
    }

    /// Process-I/O write amplification (all bytes written / user bytes), WAL included.
    pub fn io_write_amp(&self) -> Option<f64> {
        self.io_bytes_written
            .map(|b| b as f64 / self.user_bytes as f64)
    }

    /// Bytes on disk / user bytes.
    pub fn space_amp(&self) -> f64 {
        self.disk_bytes as f64 / self.user_bytes as f64
    }
}

/// Runs `workload` on a new `engine` database in `dir` (which must not exist yet), then
/// closes it. Returns the outcome and, for `fillrandom`, the amplification.
///
/// # Errors
/// Any engine error, or an I/O error reading the directory.
pub fn run(
    engine_name: &str,
    dir: &Path,
    workload: Workload,
    s: &Settings,
) -> BenchResult<(Outcome, Option<Amplification>)> {
    let config = EngineConfig {
        durability: workload.durability(),
        ..EngineConfig::default()
    };
    let io_before = crate::sys::io_write_bytes();
    let db = engine::open(engine_name, dir, config)?;
    let values = Values::new(s.value_size, 0x5eed);
    if workload.preloads() {
        preload(db.as_ref(), s, &values)?;
    }
    let mut rng = Rng::new(workload.seed());
    let start = Instant::now();
    let (ops, found, own_seconds) = measure(db.as_ref(), workload, s, &values, &mut rng)?;
    let seconds = own_seconds.unwrap_or_else(|| start.elapsed().as_secs_f64());
    let outcome = Outcome {
        workload,
        ops,
        seconds,
        found,
    };
    let amp = if workload == Workload::FillRandom {
        db.settle()?;
        let io_after = crate::sys::io_write_bytes();
        Some(Amplification {
            user_bytes: s.keys * (crate::keys::KEY_LEN + s.value_size) as u64,
            disk_bytes: engine::dir_bytes(dir)?,
            table_bytes_written: db.table_bytes_written(),
            io_bytes_written: io_before.zip(io_after).map(|(a, b)| b.saturating_sub(a)),
        })
    } else {
        None
    };
    db.close()?;
    Ok((outcome, amp))
}

/// Writes every key in a random order, in batches, then settles.
pub fn preload(db: &dyn Engine, s: &Settings, values: &Values) -> BenchResult<()> {
    let mut rng = Rng::new(0x10ad);
    let order = rng.permutation(s.keys);
    for chunk in order.chunks(1000) {
        let keys: Vec<_> = chunk.iter().map(|&i| key(i)).collect();
        let pairs: Vec<(&[u8], &[u8])> = keys
            .iter()
            .map(|k| (&k[..], values.next(&mut rng)))
            .collect();
        db.put_batch(&pairs)?;
    }
    db.settle()
}

/// Runs the timed part; returns (operations, found, and the seconds when the workload
/// timed only part of itself: `readwhilewriting` times its reader). Never inlined, so a
/// profiler can collect this part alone (`valgrind --toggle-collect=*workload*measure*`).
#[inline(never)]
fn measure(
    db: &dyn Engine,
    workload: Workload,
    s: &Settings,
    values: &Values,
    rng: &mut Rng,
) -> BenchResult<(u64, u64, Option<f64>)> {
    if workload == Workload::ReadWhileWriting {
        return read_while_writing(db, s, values, rng);
    }
    let n = s.keys;
    let (ops, found) = match workload {
        Workload::FillSeq => {
            for i in 0..n {
                db.put(&key(i), values.next(rng))?;
            }
            (n, 0)
        }
        Workload::FillRandom => {
            for i in rng.clone().permutation(n) {
                db.put(&key(i), values.next(rng))?;
            }
            (n, 0)
        }
        Workload::Overwrite => {
            for _ in 0..s.ops {
                db.put(&key(rng.below(n)), values.next(rng))?;
            }
            (s.ops, 0)
        }
        Workload::ReadRandom | Workload::ReadMissing => {
            let mut found = 0;
            for _ in 0..s.ops {
                let i = rng.below(n);
                let k = if workload == Workload::ReadRandom {
                    key(i)
                } else {
                    missing_key(i)
                };
                found += u64::from(db.get(&k)?.is_some());
            }
            (s.ops, found)
        }
        Workload::SeekRandom => {
            let seeks = s.ops.div_ceil(4);
            let mut read = 0;
            for _ in 0..seeks {
                read += db.seek_next(&key(rng.below(n)), 10)? as u64;
            }
            (seeks, read)
        }
        Workload::Scan => {
            let mut read = 0;
            for _ in 0..3 {
                read += db.scan_all()?;
            }
            (read, read)
        }
        Workload::FillSync1 => fill_threads(db, 1, s.sync_ops, values, rng)?,
        Workload::FillSync4 => fill_threads(db, 4, s.sync_ops, values, rng)?,
        Workload::ReadWhileWriting => unreachable!("handled above"),
        Workload::Ycsb(mix) => ycsb(db, mix, s, values, rng)?,
    };
    Ok((ops, found, None))
}

/// `threads` writers, each putting `per_thread` random keys of its own.
fn fill_threads(
    db: &dyn Engine,
    threads: u64,
    per_thread: u64,
    values: &Values,
    rng: &mut Rng,
) -> BenchResult<(u64, u64)> {
    let seeds: Vec<u64> = (0..threads).map(|_| rng.next_u64()).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = seeds
            .iter()
            .enumerate()
            .map(|(t, &seed)| {
                scope.spawn(move || -> BenchResult<()> {
                    let mut rng = Rng::new(seed);
                    for i in rng.clone().permutation(per_thread) {
                        db.put(&key(t as u64 * per_thread + i), values.next(&mut rng))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "writer thread panicked")??;
        }
        Ok((threads * per_thread, 0))
    })
}

fn read_while_writing(
    db: &dyn Engine,
    s: &Settings,
    values: &Values,
    rng: &mut Rng,
) -> BenchResult<(u64, u64, Option<f64>)> {
    let stop = AtomicBool::new(false);
    let mut writer_rng = Rng::new(rng.next_u64());
    let n = s.keys;
    let (found, seconds) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> BenchResult<()> {
            while !stop.load(Ordering::Relaxed) {
                db.put(&key(writer_rng.below(n)), values.next(&mut writer_rng))?;
            }
            Ok(())
        });
        let start = Instant::now();
        let mut found = 0;
        let mut result = Ok(());
        for _ in 0..s.ops {
            match db.get(&key(rng.below(n))) {
                Ok(v) => found += u64::from(v.is_some()),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        writer.join().map_err(|_| "writer thread panicked")??;
        result.map(|()| (found, seconds))
    })?;
    Ok((s.ops, found, Some(seconds)))
}

fn ycsb(
    db: &dyn Engine,
    mix: char,
    s: &Settings,
    values: &Values,
    rng: &mut Rng,
) -> BenchResult<(u64, u64)> {
    let n = s.keys;
    let zipf = ScrambledZipfian::new(n);
    let latest = Latest::new(n);
    let mut count = n; // keys 0..count exist; inserts append
    let ops = if mix == 'e' {
        s.ops.div_ceil(10)
    } else {
        s.ops
    };
    let mut found = 0;
    for _ in 0..ops {
        let p = rng.below(100);
        match (mix, p) {
            ('a', 0..=49) | ('b', 0..=94) | ('c', _) => {
                found += u64::from(db.get(&key(zipf.next(rng)))?.is_some());
            }
            ('a' | 'b', _) => db.put(&key(zipf.next(rng)), values.next(rng))?,
            ('d', 0..=94) => {
                found += u64::from(db.get(&key(latest.next(rng, count)))?.is_some());
            }
            ('e', 0..=94) => {
                let len = 1 + rng.below(100) as usize;
                found += db.seek_next(&key(zipf.next(rng)), len)? as u64;
            }
            ('d' | 'e', _) => {
                db.put(&key(count), values.next(rng))?;
                count += 1;
            }
            ('f', 0..=49) => found += u64::from(db.get(&key(zipf.next(rng)))?.is_some()),
            ('f', _) => {
                let k = key(zipf.next(rng));
                found += u64::from(db.get(&k)?.is_some());
                db.put(&k, values.next(rng))?;
            }
            _ => return Err(format!("unknown YCSB mix {mix}").into()),
        }
    }
    Ok((ops, found))
}
