//! Where a random fill's bytes go: N single puts of 16-byte keys and 100-byte values in a
//! scattered (random-permutation) order with default options, then `flush` and
//! `wait_for_compactions`, printing the engine's byte counters, the process's own I/O
//! (`/proc/self/io`), the settled tree's runs per level and the fill time.
//!
//! `cargo run --release --example fill_probe [N] [MEMTABLE_MIB] [DIR]`
//! (defaults: 10,000,000 keys, the default 64 MiB memtable, `./fill-probe-data`, wiped
//! first and left behind for a read-cost check; delete it afterwards).
//!
//! The figures in `docs/benchmarks.md` ("Write amplification: grandparent-bounded outputs")
//! come from this probe.

use chronokv::{Db, Options};
use std::time::Instant;

mod common;
use common::{key, value};

/// `(rchar, wchar, write_bytes)` of this process from `/proc/self/io`, or zeros where the
/// file is missing (not Linux).
fn process_io() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("rchar:"), field("wchar:"), field("write_bytes:"))
}

fn main() -> Result<(), chronokv::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(10_000_000, |a| a.parse().expect("N"));
    let memtable_mib: Option<usize> = args.next().map(|a| a.parse().expect("MEMTABLE_MIB"));
    let dir = args.next().unwrap_or_else(|| "fill-probe-data".into());
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = Options::default();
    if let Some(mib) = memtable_mib {
        options.memtable_size = mib << 20;
    }
    let db = Db::open(&dir, options)?;
    let io_before = process_io();
    let start = Instant::now();
    for i in 0..n {
        db.put(key(i), value(i, 0))?;
    }
    let fill = start.elapsed().as_secs_f64();
    db.flush()?;
    db.wait_for_compactions()?;
    let settled = start.elapsed().as_secs_f64();
    let io_after = process_io();
    report(&db, n, fill, settled, io_before, io_after);
    db.close()
}

fn report(
    db: &Db,
    n: u64,
    fill: f64,
    settled: f64,
    before: (u64, u64, u64),
    after: (u64, u64, u64),
) {
    let s = db.stats();
    let user = s.user_bytes_written.max(1) as f64;
    let per_user = |b: u64| b as f64 / user;
    let mib = |b: u64| b as f64 / 1048576.0;
    println!("keys                      {n}");
    println!("fill seconds              {fill:.1} (settled after {settled:.1})");
    println!(
        "user_bytes_written        {} ({:.1} MiB)",
        s.user_bytes_written,
        mib(s.user_bytes_written)
    );
    println!(
        "wal_bytes_written         {} ({:.2} / user byte)",
        s.wal_bytes_written,
        per_user(s.wal_bytes_written)
    );
    println!(
        "flush_bytes_written       {} ({:.2} / user byte) in {} flushes",
        s.flush_bytes_written,
        per_user(s.flush_bytes_written),
        s.flushes
    );
    println!(
        "compaction_bytes_written  {} ({:.2} / user byte) in {} compactions, {} trivial moves",
        s.compaction_bytes_written,
        per_user(s.compaction_bytes_written),
        s.compactions,
        s.trivial_moves
    );
    println!(
        "compaction_bytes_read     {} ({:.2} / user byte)",
        s.compaction_bytes_read,
        per_user(s.compaction_bytes_read)
    );
    let engine = s.flush_bytes_written + s.compaction_bytes_written;
    println!(
        "engine write amp          {:.2} (flush + compaction) / user byte",
        per_user(engine)
    );
    println!(
        "process wchar             {:.2} / user byte (write_bytes {:.2})",
        per_user(after.1 - before.1),
        per_user(after.2 - before.2)
    );
    println!(
        "process rchar             {:.2} / user byte",
        per_user(after.0 - before.0)
    );
    for (i, l) in s.levels.iter().enumerate().filter(|(_, l)| l.runs > 0) {
        println!("L{i}: {:>4} runs {:>10.1} MiB", l.runs, mib(l.bytes));
    }
}
