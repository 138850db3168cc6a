//! `chronokv-harness crash [--seeds N] [--first-seed S] [--ops N] [--stride K]`
//!
//! Runs the simulated power-loss stage: N seeded workloads of `--ops` operations, every
//! K-th crash point of each reopened in three modes and checked against the oracle. Prints
//! one line per seed, every violation with the seed that reproduces it, the figures, and a
//! last line `N passed, N failed` (crash states). Exits 1 if anything failed.

use chronokv_harness::crash::{run_seed, Report};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("crash") {
        eprintln!(
            "usage: chronokv-harness crash [--seeds N] [--first-seed S] [--ops N] [--stride K]"
        );
        std::process::exit(2);
    }
    let parsed = (|| -> Result<(u64, u64, u64, u64), String> {
        Ok((
            arg(&args, "--seeds", 4)?,
            arg(&args, "--first-seed", 1)?,
            arg(&args, "--ops", 500)?,
            arg(&args, "--stride", 1)?,
        ))
    })();
    let (seeds, first, ops, stride) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chronokv-harness: {e}");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let mut total = Report::default();
    for seed in first..first + seeds {
        let t = Instant::now();
        let r = run_seed(seed, ops as usize, stride as usize);
        println!(
            "seed {seed}: {} crash points, {} checked, {} states, {} violations, {:.1} s",
            r.points,
            r.points_checked,
            r.states,
            r.violations.len(),
            t.elapsed().as_secs_f64()
        );
        for v in &r.violations {
            println!("  VIOLATION {v}");
        }
        total.merge(r);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "crash stage: {} workloads x {} ops, crash states tried {}, crash points covered {}/{} ({:.0}%), violations {}, {:.1} s ({:.2} ms per state)",
        total.workloads,
        ops,
        total.states,
        total.points_checked,
        total.points,
        100.0 * total.points_checked as f64 / total.points.max(1) as f64,
        total.violations.len(),
        secs,
        1000.0 * secs / total.states.max(1) as f64,
    );
    let failed = total.violations.len() as u64;
    println!(
        "{} passed, {} failed",
        total.states.saturating_sub(failed),
        failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
