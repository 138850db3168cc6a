//! Measures write and space amplification of both compaction strategies on the same
//! workload: a random fill of N keys (16 B keys, 100 B values), then overwrites of a random
//! half of them, then waiting until compaction settles.
//!
//! `cargo run --release --example amplification [N] [MEMTABLE_MIB] [DIR]`
//! (defaults: 1,000,000 keys, 4 MiB memtables, `./amplification-data`, wiped first).
//! Small memtables make the tree deep enough for compaction to matter at this size; with
//! the default 64 MiB memtable a million keys are only three flushes.

use chronokv::{CompactionStyle, Db, Leveled, Options, Tiered};
use std::time::Instant;

mod common;
use common::{key, next, value};

fn measure(
    dir: &std::path::Path,
    style: CompactionStyle,
    n: u64,
    memtable: usize,
) -> Result<String, chronokv::Error> {
    let _ = std::fs::remove_dir_all(dir);
    let options = Options {
        compaction: style,
        memtable_size: memtable,
        ..Options::default()
    };
    let db = Db::open(dir, options)?;
    let start = Instant::now();
    let mut rng = 0x5EED;
    // Random fill: every key once, in a scattered order (the key function scatters).
    for i in 0..n {
        db.put(key(i), value(i, 0))?;
    }
    // Overwrite a random half (with repetition, as random overwrites do).
    for _ in 0..n / 2 {
        let i = next(&mut rng) % n;
        db.put(key(i), value(i, 1))?;
    }
    db.wait_for_compactions()?;
    let secs = start.elapsed().as_secs_f64();
    let stats = db.stats();
    let space = db.space_usage()?;
    let levels: Vec<String> = stats
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.runs > 0)
        .map(|(i, l)| format!("L{i}:{}/{:.1}MiB", l.runs, l.bytes as f64 / 1048576.0))
        .collect();
    let row = format!(
        "| {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.1} |",
        stats.strategy,
        stats.write_amplification(),
        space.space_amplification(),
        stats.user_bytes_written as f64 / 1048576.0,
        stats.flush_bytes_written as f64 / 1048576.0,
        stats.compaction_bytes_written as f64 / 1048576.0,
        stats.compactions,
        stats.trivial_moves,
        levels.join(" "),
        secs,
    );
    db.close()?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(row)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let mib: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "amplification-data".into()));
    println!(
        "{n} keys random fill + {} random overwrites, 16 B keys, 100 B values, {mib} MiB memtables\n",
        n / 2
    );
    println!("| strategy | write amp. | space amp. | user MiB | flush MiB | compaction MiB | merges | moves | runs per level | seconds |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let styles = [
        CompactionStyle::Leveled(Leveled::default()),
        CompactionStyle::Tiered(Tiered::default()),
    ];
    for style in styles {
        println!("{}", measure(&dir, style, n, mib << 20)?);
    }
    println!(
        "\nwrite amp. = (flush + compaction bytes written) / user key+value bytes (WAL excluded);"
    );
    println!("space amp. = run bytes on disk / live key+value bytes, after compaction settles.");
    Ok(())
}
