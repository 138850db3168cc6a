//! `chronokv-harness crash|faults [--seeds N] [--first-seed S] [--ops N] [--stride K]
//!   [--threads T]`
//! `chronokv-harness bank [--seeds N] [--first-seed S] [--ops TRANSFERS] [--crashes N]`
//! `chronokv-harness killloop --dir D [--cycles N] [--seed S] [--minutes M] [--progress K]
//!   [--keep-images]`
//! `chronokv-harness model [--seeds N] [--first-seed S] [--ops N] [--threads T]`
//! `chronokv-harness recovery [--seeds N] [--first-seed S] [--ops N] [--stride K]
//!   [--threads T]`
//! `chronokv-harness rot [--seeds N] [--first-seed S] [--ops N] [--flips K] [--threads T]`
//! `chronokv-harness bugs [--only NAME] [--no-controls] [--list]` (a build that plants bugs)
//!
//! - `crash`: the simulated power-loss stage (G1): N seeded workloads of `--ops`
//!   operations, every K-th crash point of each reopened in three modes and checked against
//!   the oracle.
//! - `faults`: the I/O-error stage (G2): the same workloads, with EIO and ENOSPC injected at
//!   every K-th mutating call, once and forever, each run checked for panics, acks after a
//!   failure, fail-stop, and reopened twice.
//! - `bank`: the transaction stage (G7): per seed, `--ops` transfers between 16 accounts as
//!   serializable transactions on 4 threads, with `--crashes` simulated power losses, each
//!   recovered store checked (the total, the synced acknowledged transfers) and carried on.
//! - `killloop`: the real kill -9 loop (G3): N cycles of spawning a stress process (this
//!   binary's hidden `stress` subcommand) on a database in `D/db`, killing it with SIGKILL
//!   after 20-500 ms (5-5.5 s every 25th cycle), reopening and checking the database against
//!   the writers' acknowledgement logs; stops early after M minutes. D must not hold a
//!   database yet; it is left in place. `--keep-images` keeps each crash image until the
//!   next cycle, and a failed cycle's as `D/failed-cycle-N`.
//! - `model`: model-based and metamorphic testing (G4): N seeded op logs of `--ops`
//!   operations, each run on every configuration of `chronokv_harness::model::configs`
//!   (seeds spread over T threads), every result checked against the versioned oracle and
//!   the configurations' results compared with each other.
//! - `recovery`: per seed, the crash stage's workload; every K-th crash point's image is
//!   recovered cleanly, then with a crash at every mutating call of that recovery (three
//!   modes) and with EIO and ENOSPC at every one (once and forever); every outcome must end
//!   at the clean recovery's version with the log's contents.
//! - `rot`: per seed, the crash stage's workload run to the end and closed, then `--flips`
//!   images per WAL segment and run, each with one byte changed, reopened and scanned: the
//!   damage must be reported as corruption or leave correct contents.
//! - `bugs`: the planted-bug stage (G6), in a build with `CHRONOKV_PLANT_BUGS=1`: runs
//!   this binary once per planted bug with `CHRONOKV_BUG` set and the arguments of the short
//!   stage that must catch it, expecting it to fail, then every such stage once without a
//!   bug, expecting it to pass. `--list` prints the bugs.
//!
//! `crash`, `faults`, `recovery`, `rot` and `model` spread their seeds over `--threads`
//! threads (2 by default: the CI machine's cores; each seed's workload is single-threaded
//! but for the engine's own background threads); the per-seed lines still come in seed
//! order. A panic in one seed's run can be counted against another that ran at the same
//! time (the panic hook is process-wide): the stage fails either way.
//!
//! Prints one line per seed (`model`: per failed seed, and every 50 seeds), every violation
//! with the seed that reproduces it, the figures, and a last line `N passed, N failed`
//! (crash states, fault runs, checks, model cases, images, cycles or detected bugs). Exits 1
//! if anything failed. In a build that plants bugs, with `CHRONOKV_BUG` set, also prints to
//! stderr how often the selected bug took effect.

use std::time::Instant;

const USAGE: &str = "usage: chronokv-harness crash|faults|bank|rot|recovery [--seeds N] [--first-seed S] [--ops N] [--stride K] [--crashes N] [--flips K] [--threads T]
       chronokv-harness model [--seeds N] [--first-seed S] [--ops N] [--threads T]
       chronokv-harness killloop --dir D [--cycles N] [--seed S] [--minutes M] [--progress K] [--keep-images]
       chronokv-harness bugs [--only NAME] [--no-controls] [--list]";

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

/// Runs `run` for every seed of `p` on `p.threads` threads and hands each result, with its
/// seconds, to `report` in seed order (a seed that finishes early waits for those before
/// it), so the output reads as the serial loop's did.
fn each_seed<R: Send>(
    p: &Params,
    run: impl Fn(u64) -> R + Sync,
    mut report: impl FnMut(u64, R, f64),
) {
    let seeds: Vec<u64> = (p.first..p.first + p.seeds).collect();
    chronokv_harness::parallel::in_order(
        &seeds,
        p.threads as usize,
        |&seed| {
            let t = Instant::now();
            let r = run(seed);
            (r, t.elapsed().as_secs_f64())
        },
        |&seed, (r, secs)| report(seed, r, secs),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stage = args.first().map(String::as_str);
    if stage == Some("bugs") {
        let failed = bugs(&args);
        report_planted_bug();
        std::process::exit(i32::from(failed > 0));
    }
    let (default_ops, default_stride) = match stage {
        Some("crash") => (500, 1),
        Some("faults") => (200, 1),
        Some("model") => (450, 1),
        Some("bank") => (50_000, 1),
        Some("rot") => (500, 1),
        Some("recovery") => (500, 50),
        Some("stress") => {
            use chronokv_harness::killloop::stress::{run, StressArgs};
            match StressArgs::parse(&args[1..]) {
                Ok(a) => run(&a),
                Err(e) => {
                    eprintln!("chronokv-harness: {e}");
                    std::process::exit(2);
                }
            }
        }
        Some("killloop") => {
            let failed = killloop(&args).unwrap_or_else(|e| {
                eprintln!("chronokv-harness: {e}\n{USAGE}");
                std::process::exit(2);
            });
            std::process::exit(i32::from(failed > 0));
        }
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
    let extra = |name: &str, default: u64| match arg(&args, name, default) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("chronokv-harness: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let failed = match stage {
        Some("crash") => crash(&p),
        Some("bank") => bank(&p, extra("--crashes", 10)),
        Some("rot") => rot(&p, extra("--flips", 20)),
        Some("faults") => faults(&p),
        Some("recovery") => recovery(&p),
        _ => model(&p),
    };
    report_planted_bug();
    if failed > 0 {
        std::process::exit(1);
    }
}

/// In a build that plants bugs, with a bug selected: how often it took effect (the `bugs`
/// runner reads this from stderr; a bug that never took effect was not tested).
fn report_planted_bug() {
    if let Some(name) = chronokv_vfs::bug::selected() {
        eprintln!(
            "planted bug {name} took effect {} times",
            chronokv_vfs::bug::fired()
        );
    }
}

fn bugs(args: &[String]) -> u64 {
    use chronokv_harness::bugs::{describe, run, BUGS};
    if args.iter().any(|a| a == "--list") {
        for b in BUGS {
            let stages: Vec<String> = b.stages.iter().map(|s| describe(s)).collect();
            println!("{}\t{}\t{}\t{}", b.name, b.site, b.what, stages.join(" | "));
        }
        return 0;
    }
    if !chronokv_vfs::bug::PLANTED {
        eprintln!(
            "chronokv-harness bugs: this binary has no planted bugs; build it with \
             `CHRONOKV_PLANT_BUGS=1 cargo build --release -p chronokv-harness`"
        );
        std::process::exit(2);
    }
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|i| match args.get(i + 1) {
            Some(name) => name.as_str(),
            None => {
                eprintln!("chronokv-harness: --only needs a bug name\n{USAGE}");
                std::process::exit(2);
            }
        });
    let controls = !args.iter().any(|a| a == "--no-controls");
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("chronokv-harness bugs: cannot find this binary: {e}");
            std::process::exit(2);
        }
    };
    match run(&exe, only, controls) {
        Ok(failed) => failed,
        Err(e) => {
            eprintln!("chronokv-harness bugs: {e}");
            std::process::exit(2);
        }
    }
}

fn recovery(p: &Params) -> u64 {
    use chronokv_harness::recovery::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    each_seed(
        p,
        |seed| run_seed(seed, p.ops as usize, p.stride as usize),
        |seed, r, secs| {
            println!(
                "seed {seed}: {} base images, {} recovery calls, {} crash states, {} faulted recoveries ({} faults fired: {} opens failed cleanly, {} survived), {} violations, {:.1} s",
                r.images,
                r.recovery_calls,
                r.crash_states,
                r.fault_runs,
                r.injected,
                r.opens_failed,
                r.opens_survived,
                r.violations.len(),
                secs
            );
            for v in &r.violations {
                println!("  VIOLATION {v}");
            }
            total.merge(r);
        },
    );
    println!(
        "recovery stage: {} seeds, {} base images, {} recovery calls, {} crash states, {} faulted recoveries, {} faults fired, {} reopens after them, {} panics, violations {}, {:.1} s",
        p.seeds,
        total.images,
        total.recovery_calls,
        total.crash_states,
        total.fault_runs,
        total.injected,
        total.reopens,
        total.panics,
        total.violations.len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "{} passed, {} failed",
        total.checks - total.failed_checks,
        total.failed_checks
    );
    total.failed_checks
}

fn rot(p: &Params, flips: u64) -> u64 {
    use chronokv_harness::rot::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    each_seed(
        p,
        |seed| run_seed(seed, p.ops as usize, flips as usize),
        |seed, r, secs| {
            println!(
                "seed {seed}: {} files damaged, {} images: {} detected as corruption, {} intact, {} violations, {:.1} s",
                r.files,
                r.images,
                r.detected,
                r.intact,
                r.violations.len(),
                secs
            );
            for v in &r.violations {
                println!("  VIOLATION {v}");
            }
            total.merge(r);
        },
    );
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rot stage: {} workloads x {} ops, {} WAL segments and runs damaged, {} images x 1 changed byte: {} detected as corruption ({} of {} in runs), {} intact, violations {}, {:.1} s",
        total.workloads,
        p.ops,
        total.files,
        total.images,
        total.detected,
        total.run_detected,
        total.run_images,
        total.intact,
        total.violations.len(),
        secs,
    );
    let failed = total.violations.len() as u64;
    println!(
        "{} passed, {} failed",
        total.images.saturating_sub(failed),
        failed
    );
    failed
}

fn crash(p: &Params) -> u64 {
    use chronokv_harness::crash::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    each_seed(
        p,
        |seed| run_seed(seed, p.ops as usize, p.stride as usize),
        |seed, r, secs| {
            println!(
                "seed {seed}: {} crash points, {} checked, {} states, {} checkpoints ({} checked in images), {} violations, {:.1} s",
                r.points,
                r.points_checked,
                r.states,
                r.checkpoints,
                r.checkpoint_checks,
                r.violations.len(),
                secs
            );
            for v in &r.violations {
                println!("  VIOLATION {v}");
            }
            total.merge(r);
        },
    );
    let secs = start.elapsed().as_secs_f64();
    println!(
        "crash stage: {} workloads x {} ops, crash states tried {}, crash points covered {}/{} ({:.0}%), checkpoints {} (checked {} times in crash images), violations {}, {:.1} s ({:.2} ms per state)",
        total.workloads,
        p.ops,
        total.states,
        total.points_checked,
        total.points,
        100.0 * total.points_checked as f64 / total.points.max(1) as f64,
        total.checkpoints,
        total.checkpoint_checks,
        total.violations.len(),
        secs,
        1000.0 * secs / total.states.max(1) as f64,
    );
    let failed = total.violations.len() as u64;
    println!(
        "{} passed, {} failed",
        (total.states + total.checkpoint_checks).saturating_sub(failed),
        failed
    );
    failed
}

fn faults(p: &Params) -> u64 {
    use chronokv_harness::faults::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    each_seed(
        p,
        |seed| run_seed(seed, p.ops as usize, p.stride as usize),
        |seed, r, secs| {
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
                secs
            );
            for v in &r.violations {
                println!("  VIOLATION {v}");
            }
            total.merge(r);
        },
    );
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

fn bank(p: &Params, crashes: u64) -> u64 {
    use chronokv_harness::bank::{run_seed, Report};
    let start = Instant::now();
    let mut total = Report::default();
    for seed in p.first..p.first + p.seeds {
        let t = Instant::now();
        let r = run_seed(seed, p.ops, crashes);
        println!(
            "seed {seed}: {} transfers ({} synced), {} conflicts retried, {} audits, {} power losses recovered, {} violations, {:.1} s",
            r.transfers,
            r.synced_acks,
            r.conflicts,
            r.audits,
            r.recoveries,
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
        "bank stage: {} seeds, {} transfers ({:.0}/s), {} conflicts ({:.2}% of commits), {} audits all balanced: {}, {} recoveries, violations {}, {:.1} s",
        p.seeds,
        total.transfers,
        total.transfers as f64 / secs,
        total.conflicts,
        100.0 * total.conflicts as f64 / (total.transfers + total.conflicts).max(1) as f64,
        total.audits,
        total.violations.is_empty(),
        total.recoveries,
        total.violations.len(),
        secs,
    );
    // One check per audit, per recovery and per seed's end state.
    let checks = total.audits + total.recoveries + p.seeds;
    let failed = total.violations.len() as u64;
    println!(
        "{} passed, {} failed",
        checks.saturating_sub(failed),
        failed
    );
    failed
}

fn model(p: &Params) -> u64 {
    use chronokv_harness::model::{configs, run_seed, Report};
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
    let mut total = Report::default();
    each_seed(
        p,
        |seed| run_seed(seed, p.ops as usize, &configs),
        |seed, r, secs| {
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
                    secs,
                    total.seeds + 1,
                    p.seeds,
                    start.elapsed().as_secs_f64()
                );
            }
            for d in &r.divergences {
                println!("  DIVERGENCE {d}");
            }
            total.merge(r);
        },
    );
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

fn killloop(args: &[String]) -> Result<u64, String> {
    use chronokv_harness::killloop::driver::{run, Config};
    use chronokv_harness::killloop::status::Category;
    let dir = match args.iter().position(|a| a == "--dir") {
        Some(i) => args.get(i + 1).ok_or("--dir needs a path")?,
        None => return Err("killloop needs --dir".into()),
    };
    let minutes = match args.iter().position(|a| a == "--minutes") {
        None => None,
        Some(i) => Some(
            args.get(i + 1)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|m| *m > 0.0)
                .ok_or("--minutes needs a positive number")?,
        ),
    };
    let cfg = Config {
        dir: dir.into(),
        seed: arg(args, "--seed", 1)?,
        cycles: arg(args, "--cycles", 1000)?,
        max_time: minutes.map(|m| std::time::Duration::from_secs_f64(m * 60.0)),
        program: std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
        program_args: Vec::new(),
        progress_every: arg(args, "--progress", 100)?,
        keep_images: args.iter().any(|a| a == "--keep-images"),
    };
    let r = run(&cfg, &mut |line| println!("{line}")).map_err(|e| e.to_string())?;
    let secs = r.elapsed.as_secs_f64();
    println!(
        "killloop: seed {}, {} cycles in {:.1} s ({:.0} ms per cycle); database at the end: v{}, {} keys, {:.1} MB",
        r.seed,
        r.cycles,
        secs,
        1000.0 * secs / r.cycles.max(1) as f64,
        r.final_version,
        r.final_keys,
        r.db_bytes as f64 / 1e6,
    );
    println!(
        "time: {:.1} s until the kills, {:.1} s reopening and checking, {:.1} s checking checkpoints, {:.1} s other (spawning, cleaning up)",
        r.time_running.as_secs_f64(),
        r.time_checking.as_secs_f64(),
        r.time_checkpoints.as_secs_f64(),
        (r.elapsed - r.time_running - r.time_checking - r.time_checkpoints).as_secs_f64()
    );
    let kills: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("{} {}", c.name(), r.kills[*c as usize]))
        .collect();
    println!(
        "kills by where they landed: {}; commits only {}; before the status file {}",
        kills.join(", "),
        r.kills_elsewhere,
        r.kills_before_start
    );
    let started: Vec<String> = Category::ALL
        .iter()
        .map(|c| format!("{} {}", c.name(), r.started_ops[*c as usize]))
        .collect();
    println!("operations started, all cycles: {}", started.join(", "));
    println!(
        "writes acknowledged {} ({} sync, {} buffered); in flight at a kill: {} found, {} not found, {} undecidable",
        r.acked,
        r.acked_sync,
        r.acked - r.acked_sync,
        r.in_flight_present,
        r.in_flight_absent,
        r.in_flight_undecided
    );
    println!(
        "lost acknowledged writes {}, holes {}, partial batches {}, resurrected keys {}, failed opens {}, stress processes that died {}, checkpoints opened {}, full verifies {}, follower views checked {} ({} read-only opens, {} refreshes)",
        r.lost,
        r.holes,
        r.partial,
        r.resurrected,
        r.failed_opens,
        r.stress_failures,
        r.checkpoints_checked,
        r.verifies,
        r.follower_opens + r.follower_refreshes,
        r.follower_opens,
        r.follower_refreshes
    );
    let goal_cats = [
        Category::Flush,
        Category::Compaction,
        Category::Manifest,
        Category::WalRotation,
        Category::Checkpoint,
    ];
    let short: Vec<&str> = goal_cats
        .iter()
        .filter(|c| r.kills[**c as usize] < 25)
        .map(|c| c.name())
        .collect();
    println!(
        "goal (RELIABILITY.md G3): >=1,000 cycles in <=12 min: {}; >=25 kills in each of flush, compaction, manifest write, WAL rotation, checkpoint: {}",
        if r.cycles >= 1000 && secs <= 720.0 {
            "met"
        } else {
            "not met"
        },
        if short.is_empty() {
            "met".to_string()
        } else {
            format!("not met ({})", short.join(", "))
        }
    );
    println!("{} passed, {} failed", r.passed, r.failed);
    Ok(r.failed)
}
