//! The cost of history: the same workload with every version retained and with none.
//!
//! Workload: N keys (16 B keys, 100 B values) filled in a scattered order, then overwritten
//! 5 times each (6 versions per key), then waiting until compaction settles; then 1M
//! random point reads of the latest values (each finds its key).
//!
//! `cargo run --release --example history_cost [N] [DIR]` (defaults: 1,000,000 keys,
//! `./history-cost-data`, wiped first). Prints one markdown row per setting: run bytes on
//! disk, space amplification (run bytes / live key+value bytes), write amplification,
//! versions kept on disk and point reads per second.

use chronokv::{Db, Options};
use std::time::{Duration, Instant};

mod common;
use common::{key, next, value};

fn measure(
    dir: &std::path::Path,
    name: &str,
    retention: Option<Duration>,
    n: u64,
) -> chronokv::Result<String> {
    let _ = std::fs::remove_dir_all(dir);
    let options = Options {
        history_retention: retention,
        memtable_size: 16 << 20,
        ..Options::default()
    };
    let db = Db::open(dir, options)?;
    let start = Instant::now();
    for round in 0..6u8 {
        for i in 0..n {
            db.put(key(i), value(i, round))?;
        }
    }
    db.wait_for_compactions()?;
    let write_secs = start.elapsed().as_secs_f64();
    let stats = db.stats();
    let space = db.space_usage()?;
    let entries: u64 = stats.levels.iter().map(|l| l.entries).sum();
    let reads = 1_000_000u64;
    let mut rng = 0xC0FFEE;
    let start = Instant::now();
    for _ in 0..reads {
        let i = next(&mut rng) % n;
        let v = db.get(key(i))?.expect("every key is live");
        assert_eq!(v[8], 5, "the latest value");
    }
    let read_secs = start.elapsed().as_secs_f64();
    Ok(format!(
        "| {name} | {:.1} | {:.2} | {:.2} | {} | {:.0} | {:.1} |",
        space.run_bytes as f64 / 1048576.0,
        space.space_amplification(),
        stats.write_amplification(),
        entries,
        reads as f64 / read_secs,
        write_secs,
    ))
}

fn main() -> chronokv::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "history-cost-data".into()));
    println!("{n} keys x 6 versions, 16 B keys, 100 B values");
    println!();
    println!("| retention | run MiB | space amp. | write amp. | entries on disk | point reads/s | write+settle s |");
    println!("|---|---|---|---|---|---|---|");
    println!("{}", measure(&dir, "none", None, n)?);
    println!(
        "{}",
        measure(
            &dir,
            "all versions (1 day)",
            Some(Duration::from_secs(86_400)),
            n
        )?
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
