//! `chronokv-harness crash|faults [--seeds N] [--first-seed S] [--ops N] [--stride K]`
//! `chronokv-harness model [--seeds N] [--first-seed S] [--ops N] [--threads T]`
//!
//! - `crash`: the simulated power-loss stage (G1): N seeded workloads of `--ops`
//!   operations, every K-th crash point of each reopened in three modes and checked against
//!   the oracle.
//! - `faults`: the I/O-error stage (G2): the same workloads, with EIO and ENOSPC injected at
//!   every K-th mutating call, once and forever, each run checked for panics, acks after a
//!   failure, fail-stop, and reopened twice.
//! - `model`: model-based and metamorphic testing (G4): N seeded op logs of `--ops`
//!   operations, each run on every configuration of `chronokv_harness::model::configs`
//!   (seeds spread over T threads), every result checked against the versioned oracle and
//!   the configurations' results compared with each other.
//!
//! Prints one line per seed (`model`: per failed seed, and every 50 seeds), every violation
//! with the seed that reproduces it, the figures, and a last line `N passed, N failed`
//! (crash states, fault runs, or model cases: seed x configuration). Exits 1 if anything
//! failed.

use std::time::Instant;

const USAGE: &str =
    "usage: chronokv-harness crash|faults [--seeds N] [--first-seed S] [--ops N] [--stride K]
       chronokv-harness model [--seeds N] [--first-seed S] [--ops N] [--threads T]";

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

struct Params {
    seeds: u64,
    first: u64,
    ops: u64,
    stride: u64,
    threads: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stage = args.first().map(String::as_str);
    let (default_ops, default_stride) = match stage {
        Some("crash") => (500, 1),
        Some("faults") => (200, 1),
        Some("model") => (450, 1),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let parsed = (|| -> Result<Params, String> {
        Ok(Params {
            seeds: arg(&args, "--seeds", 4)?,
            first: arg(&args, "--first-seed", 1)?,
            ops: arg(&args, "--ops", default_ops)?,
            stride: arg(&args, "--stride", default_stride)?,
            threads: arg(&args, "--threads", 2)?,
        })
    })();
    let p = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("chronokv-harness: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let failed = match stage {
        Some("crash") => crash(&p),
        Some("faults") => faults(&p),
        _ => model(&p),
    };
    if failed > 0 {
        std::process::exit(1);
    }
}

fn crash(p: &Params) -> u64 {
    use chronokv_harness::crash::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    for seed in p.first..p.first + p.seeds {
        let t = Instant::now();
        let r = run_seed(seed, p.ops as usize, p.stride as usize);
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
        p.ops,
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
    failed
}

fn faults(p: &Params) -> u64 {
    use chronokv_harness::faults::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    for seed in p.first..p.first + p.seeds {
        let t = Instant::now();
        let r = run_seed(seed, p.ops as usize, p.stride as usize);
        println!(
            "seed {seed}: {} mutating calls, {} runs, {} faults injected ({} calls failed), {} acks after failure ({} racing a background failure, at most {} in a run), {} panics, {} failed reopens, {} failed runs, {:.1} s",
            r.calls,
            r.runs,
            r.injected,
            r.failed_calls,
            r.acks_after_failure,
            r.acks_racing_background,
            r.longest_race,
            r.panics,
            r.failed_reopens,
            r.failed_runs,
            t.elapsed().as_secs_f64()
        );
        for v in &r.violations {
            println!("  VIOLATION {v}");
        }
        total.merge(r);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "faults stage: {} workloads x {} ops, {} mutating calls, a fault at {} x {{EIO, ENOSPC}} x {{once, forever}}: {} runs, injected faults {} ({} calls failed), acks after failure {} (not counted: {} racing a background failure, at most {} in a run), panics {}, fail-stop missed {}, reopens {} (failed {}), violations {}, {:.1} s ({:.1} ms per run)",
        total.workloads,
        p.ops,
        total.calls,
        if p.stride == 1 {
            "every call".to_string()
        } else {
            format!("every {}th call", p.stride)
        },
        total.runs,
        total.injected,
        total.failed_calls,
        total.acks_after_failure,
        total.acks_racing_background,
        total.longest_race,
        total.panics,
        total.not_fail_stop,
        total.reopens,
        total.failed_reopens,
        total.violations.len(),
        secs,
        1000.0 * secs / total.runs.max(1) as f64,
    );
    let by_op: Vec<String> = total
        .by_op
        .iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    println!("faults injected by call: {}", by_op.join(", "));
    let failed = total.failed_runs;
    println!(
        "{} passed, {} failed",
        (total.runs + total.workloads).saturating_sub(failed),
        failed
    );
    failed
}

fn model(p: &Params) -> u64 {
    use chronokv_harness::model::{configs, run_seed, Report};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    let start = Instant::now();
    let configs = configs();
    let names: Vec<&str> = configs.iter().map(|c| c.name).collect();
    println!(
        "model stage: {} seeds x {} configurations ({}), {} ops per case, {} threads",
        p.seeds,
        configs.len(),
        names.join(", "),
        p.ops,
        p.threads
    );
    let next = AtomicU64::new(p.first);
    let end = p.first + p.seeds;
    let total = Mutex::new(Report::default());
    std::thread::scope(|s| {
        for _ in 0..p.threads.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= end {
                    break;
                }
                let t = Instant::now();
                let r = run_seed(seed, p.ops as usize, &configs);
                let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
                // One line per failed seed, and a progress line every 50 seeds.
                if !r.divergences.is_empty() || (total.seeds + 1) % 50 == 0 {
                    println!(
                        "seed {seed}: {} cases, {} ops, {} reopens, {} crash-reopens ({} commits replayed), {} divergences, {:.1} s; {} of {} seeds done, {:.0} s",
                        r.cases,
                        r.ops,
                        r.reopens,
                        r.crash_reopens,
                        r.commits_replayed,
                        r.divergences.len(),
                        t.elapsed().as_secs_f64(),
                        total.seeds + 1,
                        p.seeds,
                        start.elapsed().as_secs_f64()
                    );
                }
                for d in &r.divergences {
                    println!("  DIVERGENCE {d}");
                }
                total.merge(r);
            });
        }
    });
    let total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let secs = start.elapsed().as_secs_f64();
    println!("per configuration (engine counters summed over every open):");
    for (name, f) in &total.per_config {
        println!(
            "  {name:<26} flushes {:>7}, compactions {:>6}, trivial moves {:>6}, versions dropped {:>7}, tombstones dropped {:>6}, crashes that lost commits {:>4}",
            f.flushes,
            f.compactions,
            f.trivial_moves,
            f.versions_dropped,
            f.tombstones_dropped,
            f.crashes_losing_commits
        );
    }
    println!(
        "model stage: {} cases ({} seeds x {} configurations), {} ops ({} writes, {} reads checked), {} reopens ({} clean, {} crash-reopens; {} crashes lost commits, {} commits replayed), {} checkpoints opened, divergences {}, {:.1} s ({:.0} ops/s)",
        total.cases,
        total.seeds,
        configs.len(),
        total.ops,
        total.writes,
        total.reads_checked,
        total.reopens + total.crash_reopens,
        total.reopens,
        total.crash_reopens,
        total.engine.crashes_losing_commits,
        total.commits_replayed,
        total.checkpoints,
        total.divergences.len(),
        secs,
        total.ops as f64 / secs.max(1e-9),
    );
    let failed = total.failed_cases;
    println!(
        "{} passed, {} failed",
        total.cases.saturating_sub(failed),
        failed
    );
    failed
}
