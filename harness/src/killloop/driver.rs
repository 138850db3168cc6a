//! The driver (`chronokv-harness killloop`): spawn, kill -9, reopen, check, repeat.
//!
//! Per cycle:
//! 1. spawn a stress process on the loop's database, with each writer's next counter;
//! 2. after a seeded delay, uniform over 20-500 ms (5-5.5 s every 25th cycle), kill it with
//!    SIGKILL and reap it (a stress process that exits by itself has failed: its stderr is
//!    reported); meanwhile, and until the kill, a follower thread opens the database
//!    read-only and refreshes it over and over, checking each view ([`super::follower`];
//!    it runs inside the wait, so the cycle takes no longer, but for its last view);
//! 3. read its status file: where the kill landed;
//! 4. with `keep_images`, keep the crash image (hard links to the run files, copies of the
//!    rest), so a failure leaves the directory exactly as the kill left it (costs ~30 ms a
//!    cycle here, so it is off by default);
//! 5. reopen the database (open must succeed: **O**), scan it and check it against the
//!    acknowledgement logs ([`Oracle`]); every 25th cycle also `Db::verify` (every checksum);
//! 6. when the kill landed in a checkpoint, and every 10th cycle, open every complete
//!    checkpoint (one with CURRENT) the stress process left and check that each value in it
//!    is one an operation wrote under that key, and that it is no newer than the database;
//! 7. close; the next cycle continues on the same database.
//!
//! Every failure prints the seed and cycle (and, with `keep_images`, keeps the crash image as
//! `failed-cycle-N/`). The seed fixes every operation and every kill delay; thread timing
//! varies, so a rerun reaches a similar, not identical, state.

use super::follower;
use super::oracle::{value_is_genuine, Oracle};
use super::status::{self, Category};
use super::stress::StressArgs;
use super::{decode_acks, options, Layout, THREADS};
use crate::Rng;
use chronokv::vfs::RealFs;
use chronokv::{Db, Options};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to run the loop.
#[derive(Debug, Clone)]
pub struct Config {
    /// The loop's directory (created if missing; it must not hold a database yet).
    pub dir: PathBuf,
    pub seed: u64,
    pub cycles: u64,
    /// Stop starting cycles after this long.
    pub max_time: Option<Duration>,
    /// The program that runs a stress process and the arguments before `stress ...`.
    pub program: PathBuf,
    pub program_args: Vec<String>,
    /// Print a progress line every this many cycles (0: never).
    pub progress_every: u64,
    /// Keep each cycle's crash image until the next, and a failed cycle's for good.
    pub keep_images: bool,
}

/// Figures of a run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    pub cycles: u64,
    pub passed: u64,
    pub failed: u64,
    /// Kills by where they landed, in [`Category::ALL`] order (a kill may count in several).
    pub kills: [u64; Category::ALL.len()],
    /// Kills before the stress process wrote its status file.
    pub kills_before_start: u64,
    /// Kills while only commits (and reads) were running.
    pub kills_elsewhere: u64,
    /// Operations started per category over all cycles, as the stress processes counted.
    pub started_ops: [u64; Category::ALL.len()],
    pub acked: u64,
    pub acked_sync: u64,
    pub in_flight_present: u64,
    pub in_flight_absent: u64,
    pub in_flight_undecided: u64,
    pub lost: u64,
    pub resurrected: u64,
    pub partial: u64,
    pub holes: u64,
    pub failed_opens: u64,
    pub stress_failures: u64,
    pub checkpoints_checked: u64,
    pub verifies: u64,
    /// Views the concurrent follower checked: fresh read-only opens, and refreshes.
    pub follower_opens: u64,
    pub follower_refreshes: u64,
    pub final_version: u64,
    pub final_keys: u64,
    pub db_bytes: u64,
    pub elapsed: Duration,
    /// Time spent waiting for the kills, reopening and checking the database, and checking
    /// checkpoints.
    pub time_running: Duration,
    pub time_checking: Duration,
    pub time_checkpoints: Duration,
    /// Every failure, with seed and cycle.
    pub failures: Vec<String>,
}

/// The kill delay of `cycle`.
pub fn kill_delay(seed: u64, cycle: u64) -> Duration {
    let mut rng = Rng::new(
        seed.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ cycle.wrapping_mul(0x94D0_49BB_1331_11EB),
    );
    let ms = if (cycle + 1).is_multiple_of(25) {
        5000 + rng.below(501)
    } else {
        20 + rng.below(481)
    };
    Duration::from_millis(ms)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_dir_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Copies the database directory as the kill left it: run files (never written again once
/// named, and only deleted by recovery) as hard links, everything else (manifests, WAL
/// segments, CURRENT, temporary files) as copies. The lock file is left out.
fn keep_image(db: &Path, image: &Path) -> io::Result<()> {
    remove_dir_if_exists(image)?;
    fs::create_dir_all(image)?;
    for entry in fs::read_dir(db)? {
        let entry = entry?;
        let name = entry.file_name();
        let s = name.to_string_lossy();
        if s == "LOCK" {
            continue;
        }
        let (from, to) = (entry.path(), image.join(&name));
        if s.ends_with(".arrow") && fs::hard_link(&from, &to).is_ok() {
            continue;
        }
        fs::copy(&from, &to)?;
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn scan(db: &Db) -> chronokv::Result<Pairs> {
    db.scan::<&[u8], _>(..)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect()
}

/// Opens a checkpoint the stress process completed and checks its contents; returns the
/// problems found.
fn check_checkpoint(seed: u64, dir: &Path, db_version: u64) -> Vec<String> {
    let opts = Options {
        create_if_missing: false,
        ..options(Arc::new(RealFs), 0)
    };
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let db = match Db::open(dir, opts) {
        Ok(db) => db,
        Err(e) => return vec![format!("O: checkpoint {name} does not open: {e}")],
    };
    let mut problems = Vec::new();
    let v = db.latest_version().get();
    if v > db_version {
        problems.push(format!(
            "checkpoint {name} holds v{v}, newer than the database's v{db_version}"
        ));
    }
    match scan(&db) {
        Err(e) => problems.push(format!("O: checkpoint {name}: scan failed: {e}")),
        Ok(pairs) => {
            let bad = pairs
                .iter()
                .filter(|(k, v)| !value_is_genuine(seed, k, v))
                .count();
            if bad > 0 {
                problems.push(format!(
                    "checkpoint {name}: {bad} of {} values were never written under their key",
                    pairs.len()
                ));
            }
        }
    }
    if let Err(e) = db.close() {
        problems.push(format!("checkpoint {name}: close failed: {e}"));
    }
    problems
}

/// Every writer's acknowledgement log as it is now (a missing log is empty).
fn read_acks(layout: &Layout) -> io::Result<Vec<Vec<(u64, u64)>>> {
    let mut acks = Vec::with_capacity(THREADS);
    for t in 0..THREADS {
        let bytes = match fs::read(layout.acks(t)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        acks.push(decode_acks(&bytes));
    }
    Ok(acks)
}

/// Waits for `child` until `deadline`: its exit status if it exited first.
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(25)));
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
    }
}

/// What one cycle found.
struct Cycle {
    problems: Vec<String>,
    /// The database cannot be used any more (it did not open).
    fatal: bool,
    where_: String,
}

/// Runs the loop, printing progress and failures through `out`.
pub fn run(cfg: &Config, out: &mut dyn FnMut(&str)) -> io::Result<Report> {
    let start = Instant::now();
    let layout = Layout::new(&cfg.dir);
    if layout.db().exists() {
        return Err(io::Error::other(format!(
            "{} already holds a database; the loop starts from an empty one",
            layout.db().display()
        )));
    }
    fs::create_dir_all(&cfg.dir)?;
    let mut oracle = Oracle::new(cfg.seed);
    let mut report = Report {
        seed: cfg.seed,
        ..Report::default()
    };
    for cycle in 0..cfg.cycles {
        if cfg.max_time.is_some_and(|m| start.elapsed() >= m) {
            out(&format!(
                "time limit reached after {cycle} cycles ({:.0} s)",
                start.elapsed().as_secs_f64()
            ));
            break;
        }
        let delay = kill_delay(cfg.seed, cycle);
        let c = run_cycle(cfg, &layout, &mut oracle, &mut report, cycle, delay)?;
        report.cycles += 1;
        if c.problems.is_empty() {
            report.passed += 1;
        } else {
            report.failed += 1;
            let kept = cfg.dir.join(format!("failed-cycle-{cycle}"));
            let kept_ok = cfg.keep_images && fs::rename(layout.image(), &kept).is_ok();
            for p in &c.problems {
                let line = format!(
                    "FAIL seed {} cycle {cycle} (killed after {} ms, in {}): {p}",
                    cfg.seed,
                    delay.as_millis(),
                    c.where_
                );
                out(&line);
                report.failures.push(line);
            }
            out(&format!(
                "  reproduce: chronokv-harness killloop --seed {} --cycles {} --dir <new dir> \
                 (same operations and kill delays; thread timing differs){}",
                cfg.seed,
                cycle + 1,
                if kept_ok {
                    format!("; the crash image is kept in {}", kept.display())
                } else if cfg.keep_images {
                    String::new()
                } else {
                    "; --keep-images keeps the crash image".to_string()
                }
            ));
            if c.fatal {
                out("the database does not open: stopping");
                break;
            }
        }
        if cfg.progress_every > 0 && (cycle + 1) % cfg.progress_every == 0 {
            let kills: Vec<String> = Category::ALL
                .iter()
                .map(|cat| format!("{} {}", cat.name(), report.kills[*cat as usize]))
                .collect();
            out(&format!(
                "cycle {}: {:.0} s, v{}, {} keys, {} acked; kills: {}; failed {}",
                cycle + 1,
                start.elapsed().as_secs_f64(),
                oracle.version(),
                oracle.keys(),
                report.acked,
                kills.join(", "),
                report.failed
            ));
        }
    }
    let _ = remove_dir_if_exists(&layout.image());
    report.final_version = oracle.version();
    report.final_keys = oracle.keys() as u64;
    report.db_bytes = dir_bytes(&layout.db());
    report.elapsed = start.elapsed();
    Ok(report)
}

fn run_cycle(
    cfg: &Config,
    layout: &Layout,
    oracle: &mut Oracle,
    report: &mut Report,
    cycle: u64,
    delay: Duration,
) -> io::Result<Cycle> {
    let mut c = Cycle {
        problems: Vec::new(),
        fatal: false,
        where_: String::new(),
    };
    // 1. A clean slate for the stress process's files, then spawn it.
    remove_if_exists(&layout.status())?;
    for t in 0..THREADS {
        remove_if_exists(&layout.acks(t))?;
    }
    remove_dir_if_exists(&layout.checkpoints())?;
    fs::create_dir_all(layout.checkpoints())?;
    let args = StressArgs {
        dir: cfg.dir.clone(),
        seed: cfg.seed,
        cycle,
        first: oracle.next_counters().to_vec(),
        max_secs: 120,
    };
    let mut child = Command::new(&cfg.program)
        .args(&cfg.program_args)
        .arg("stress")
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(layout.stderr())?)
        .spawn()?;

    // 2. Kill it after the delay (unless it died first), a follower reading meanwhile.
    let started = Instant::now();
    let deadline = Instant::now() + delay;
    let stop = AtomicBool::new(false);
    let current_acks = || read_acks(layout).unwrap_or_default();
    let expected: &Oracle = oracle;
    let (exited, followed) = std::thread::scope(|s| {
        let follower = s.spawn(|| follower::follow(&layout.db(), expected, &current_acks, &stop));
        let exited = wait_until(&mut child, deadline);
        let killed = match exited {
            Ok(None) => child.kill().and_then(|()| child.wait()).map(|_| None),
            other => other,
        };
        // The follower stops at its next step: an open in progress ends, unchecked.
        stop.store(true, Ordering::Release);
        (killed, follower.join())
    });
    let followed = followed.map_err(|_| io::Error::other("the follower thread panicked"))?;
    report.follower_opens += followed.opens;
    report.follower_refreshes += followed.refreshes;
    c.problems.extend(followed.violations);
    match exited? {
        None => {}
        Some(st) => {
            report.stress_failures += 1;
            let stderr = fs::read_to_string(layout.stderr()).unwrap_or_default();
            c.problems.push(format!(
                "the stress process exited by itself ({st}) before the kill: {}",
                stderr.trim()
            ));
        }
    }

    report.time_running += started.elapsed();
    let checking = Instant::now();

    // 3. Where the kill landed.
    let snap = status::read(&layout.status());
    for cat in &snap.active {
        report.kills[*cat as usize] += 1;
    }
    for (total, n) in report.started_ops.iter_mut().zip(snap.started_ops) {
        *total += n;
    }
    c.where_ = if !snap.started {
        report.kills_before_start += 1;
        "startup".into()
    } else if snap.active.is_empty() {
        report.kills_elsewhere += 1;
        "commits only".into()
    } else {
        let names: Vec<&str> = snap.active.iter().map(|c| c.name()).collect();
        names.join(" + ")
    };
    if let Some(v0) = snap.opened_at {
        if v0 != oracle.version() {
            c.problems.push(format!(
                "the stress process recovered v{v0}, but the last check left v{}",
                oracle.version()
            ));
        }
    }

    // 4. The crash image, then the acknowledgement logs.
    if cfg.keep_images {
        keep_image(&layout.db(), &layout.image())?;
    }
    let acks = read_acks(layout)?;

    // 5. Reopen and check.
    let db = match Db::open(layout.db(), options(Arc::new(RealFs), 0)) {
        Ok(db) => db,
        Err(e) => {
            report.failed_opens += 1;
            c.problems.push(format!("O: open failed: {e}"));
            c.fatal = true;
            return Ok(c);
        }
    };
    let latest = db.latest_version().get();
    match scan(&db) {
        Err(e) => {
            c.problems.push(format!("O: scan failed: {e}"));
            c.fatal = true;
            return Ok(c);
        }
        Ok(pairs) => {
            let check = oracle.check_cycle(&acks, pairs, latest);
            report.acked += check.acked;
            report.acked_sync += check.acked_sync;
            report.in_flight_present += check.in_flight_present;
            report.in_flight_absent += check.in_flight_absent;
            report.in_flight_undecided += check.in_flight_undecided;
            report.lost += check.lost;
            report.resurrected += check.resurrected;
            report.partial += check.partial;
            report.holes += check.holes;
            c.problems.extend(check.violations);
        }
    }
    if (cycle + 1).is_multiple_of(25) {
        report.verifies += 1;
        match db.verify() {
            Ok(v) if v.is_ok() => {}
            Ok(v) => {
                for p in &v.problems {
                    c.problems.push(format!("O: verify: {p}"));
                }
            }
            Err(e) => c.problems.push(format!("O: verify failed: {e}")),
        }
    }
    if let Err(e) = db.close() {
        c.problems
            .push(format!("close after the check failed: {e}"));
    }

    report.time_checking += checking.elapsed();
    let checkpoints = Instant::now();

    // 6. Checkpoints: complete ones must open and hold only genuine values.
    let mut dirs: Vec<PathBuf> = fs::read_dir(layout.checkpoints())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("cp-") && !name.ends_with(".deleting")
        })
        .collect();
    dirs.sort();
    let check_checkpoints =
        snap.active.contains(&Category::Checkpoint) || (cycle + 1).is_multiple_of(10);
    for dir in dirs.into_iter().filter(|_| check_checkpoints) {
        if dir.join("CURRENT").exists() {
            report.checkpoints_checked += 1;
            let problems = check_checkpoint(cfg.seed, &dir, latest);
            report.failed_opens += problems
                .iter()
                .filter(|p| p.contains("does not open"))
                .count() as u64;
            c.problems.extend(problems);
        }
    }
    report.time_checkpoints += checkpoints.elapsed();
    Ok(c)
}
