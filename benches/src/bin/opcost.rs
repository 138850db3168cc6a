//! `opcost`: a deterministic per-operation driver for instruction and cache-miss profiles.
//!
//! Loads `--keys` keys exactly as the runner's read workloads do (random order, batches of
//! 1000, then flush and wait for compactions), then runs `--ops` operations of one kind in
//! [`measured`], which is never inlined so that
//! `valgrind --tool=callgrind --toggle-collect='*opcost*measured*'` collects it alone. With
//! tools that cannot toggle (cachegrind), run once with `--ops 0` and once with `--ops M`
//! and divide the difference by M: everything outside `measured` is the same in both.
//!
//! Unless `--cold`, one full scan before the measured part loads every block into the
//! cache, so a measured read pays no block decode.
//!
//! Operations: `get` (a present key), `miss` (a never-written key), `seek` (seek to a
//! present key, read 10 pairs), `scan` (one full scan per op; divide by the pairs printed),
//! `put` (overwrite of a random present key). Keys are chosen by a seeded splitmix64, so
//! two runs with the same flags do the same work.
//!
//! The driver counts the heap allocations (and bytes requested) made while `measured` runs,
//! by every thread, with a counting global allocator, and prints them per operation.

use chronokv_bench::engines::chronokv::Chronokv;
use chronokv_bench::keys::{key, missing_key, Rng, Values};
use chronokv_bench::workload::{preload, Settings};
use chronokv_bench::{BenchResult, Engine, EngineConfig};
use clap::{Parser, ValueEnum};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting allocations (`alloc` and growing `realloc`) and the
/// bytes they requested.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        ALLOC_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            ALLOC_BYTES.fetch_add((new_size - layout.size()) as u64, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is `GlobalAlloc::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Op {
    Get,
    Miss,
    Seek,
    Scan,
    Put,
}

#[derive(Parser, Debug)]
#[command(about = "Load a store, then run M operations of one kind (for callgrind/cachegrind)")]
struct Args {
    /// Keys loaded before the measured part.
    #[arg(long, default_value_t = 200_000)]
    keys: u64,
    /// Operations measured (0: load only, the baseline to subtract).
    #[arg(long, default_value_t = 10_000)]
    ops: u64,
    /// The operation.
    #[arg(long, value_enum)]
    op: Op,
    /// Memtable bytes in MiB. 13 MiB at 200k keys leaves the tree the runner's 1M keys and
    /// 64 MiB memtables leave: three overlapping level-0 runs and an empty memtable.
    #[arg(long, default_value_t = 13)]
    memtable_mib: u64,
    /// Skip the warm-up scan before the measured part. With it (the default) every block
    /// is in the block cache, so the figures are the hot path; at the default sizes the
    /// whole tree fits in the 64 MiB cache.
    #[arg(long)]
    cold: bool,
    /// Database directory (created fresh; removed at the end).
    #[arg(long, default_value = "opcost-db")]
    dir: PathBuf,
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("opcost: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> BenchResult<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let config = EngineConfig {
        memtable_bytes: args.memtable_mib << 20,
        ..EngineConfig::default()
    };
    let db = Chronokv::open(&args.dir, config)?;
    let settings = Settings {
        keys: args.keys,
        ops: args.ops,
        ..Settings::default()
    };
    let values = Values::new(settings.value_size, 0x5eed);
    preload(&db, &settings, &values)?;
    if !args.cold {
        db.scan_all()?;
    }
    let levels: Vec<usize> = db.db().stats().levels.iter().map(|l| l.runs).collect();
    let (allocs, bytes) = (
        ALLOCS.load(Ordering::Relaxed),
        ALLOC_BYTES.load(Ordering::Relaxed),
    );
    let (ops, items) = measured(&db, args.op, args.keys, args.ops, &values)?;
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs;
    let bytes = ALLOC_BYTES.load(Ordering::Relaxed) - bytes;
    let per = |n: u64| n as f64 / ops.max(1) as f64;
    println!(
        "op={:?} keys={} ops={ops} items={items} runs_per_level={levels:?} \
         allocs_per_op={:.2} alloc_bytes_per_op={:.1}",
        args.op,
        args.keys,
        per(allocs),
        per(bytes)
    );
    Box::new(db).close()?;
    std::fs::remove_dir_all(&args.dir)?;
    Ok(())
}

/// The measured part: returns (operations, items they found or read).
#[inline(never)]
fn measured(
    db: &dyn Engine,
    op: Op,
    keys: u64,
    ops: u64,
    values: &Values,
) -> BenchResult<(u64, u64)> {
    let mut rng = Rng::new(0x000b_c057);
    let mut items = 0u64;
    for _ in 0..ops {
        items += match op {
            Op::Get => u64::from(db.get(&key(rng.below(keys)))?.is_some()),
            Op::Miss => u64::from(db.get(&missing_key(rng.below(keys)))?.is_some()),
            Op::Seek => db.seek_next(&key(rng.below(keys)), 10)? as u64,
            Op::Scan => db.scan_all()?,
            Op::Put => {
                let k = key(rng.below(keys));
                db.put(&k, values.next(&mut rng))?;
                1
            }
        };
    }
    Ok((ops, items))
}
