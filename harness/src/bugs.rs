//! Testing the tester (RELIABILITY.md, G6): bugs planted in the engine, each of which a
//! stage of this harness must catch.
//!
//! Every bug in [`BUGS`] is a small `if chronokv_vfs::bug!("name")` at the real code site in
//! `wal`, `runs` or `engine`, compiled in only by a build with `CHRONOKV_PLANT_BUGS=1` (see
//! `vfs/build.rs` and `vfs/src/bug.rs`). One build holds them all; the environment variable `CHRONOKV_BUG`
//! selects one for a whole process, so the runner ([`run`]) starts this very binary
//! (`std::env::current_exe()`) once per bug with the variable set and the arguments of a short
//! stage that should catch it, and expects that child to fail. It tries a bug's stages in
//! order and stops at the first that catches it. Each stage also runs once without a bug
//! (the control), which must pass, or a detection would mean nothing.
//!
//! A child reports how often the selected bug took effect (`planted bug NAME took effect N
//! times` on stderr): a bug that never took effect was not tested, and counts as missed.

use crate::parallel::in_order;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A child still running after this long is killed and counts as failed to finish: every
/// stage here takes well under a minute, so it hung.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// A stage run: the `chronokv-harness` arguments. Short settings with fixed seeds, each
/// chosen as the shortest that catches its bugs on every run here (see docs/reliability.md).
pub type Stage = &'static [&'static str];

/// G1: every crash point of one 300-step workload, plus the snapshot and after-close checks.
pub const CRASH: Stage = &[
    "crash",
    "--seeds",
    "1",
    "--first-seed",
    "1",
    "--ops",
    "300",
    "--stride",
    "1",
];
/// G1 on 4 more workloads, for a bug whose window is a single call of a rare event.
pub const CRASH_MORE: Stage = &[
    "crash",
    "--seeds",
    "4",
    "--first-seed",
    "2",
    "--ops",
    "300",
    "--stride",
    "1",
];
/// G2: EIO and ENOSPC at every 3rd mutating call of one 200-step workload.
pub const FAULTS: Stage = &[
    "faults",
    "--seeds",
    "1",
    "--first-seed",
    "1",
    "--ops",
    "200",
    "--stride",
    "3",
];
/// G7: 2 seeds of 10,000 transfers with 10 power losses each.
pub const BANK: Stage = &[
    "bank",
    "--seeds",
    "2",
    "--first-seed",
    "1",
    "--ops",
    "10000",
    "--crashes",
    "10",
];
/// Bit rot in synced WAL segments and runs (the G6 extension in `rot`).
pub const ROT: Stage = &[
    "rot",
    "--seeds",
    "2",
    "--first-seed",
    "1",
    "--ops",
    "500",
    "--flips",
    "30",
];
/// Crashes and faults during recovery itself, from every 50th crash point of one workload.
pub const RECOVERY: Stage = &[
    "recovery",
    "--seeds",
    "1",
    "--first-seed",
    "1",
    "--ops",
    "300",
    "--stride",
    "50",
];

/// One planted bug.
#[derive(Debug, Clone, Copy)]
pub struct PlantedBug {
    /// The `CHRONOKV_BUG` value.
    pub name: &'static str,
    /// Where it is planted.
    pub site: &'static str,
    /// What it does wrong.
    pub what: &'static str,
    /// The stages expected to catch it, tried in order.
    pub stages: &'static [Stage],
}

/// Every planted bug, with the stages expected to catch it.
pub const BUGS: &[PlantedBug] = &[
    PlantedBug {
        name: "commit-skips-wal-sync",
        site: "engine/src/commit.rs commit_group",
        what: "a Durability::Sync commit is acknowledged without the WAL fsync",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "rotate-skips-wal-sync",
        site: "engine/src/inner.rs seal_memtable",
        what: "WAL segment n+1 is started without syncing segment n",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "close-skips-wal-sync",
        site: "engine/src/db.rs shutdown",
        what: "close does not sync the last WAL segment (buffered, acknowledged writes lost)",
        stages: &[CRASH, CRASH_MORE],
    },
    PlantedBug {
        name: "wal-create-skips-dir-sync",
        site: "wal/src/writer.rs SegmentWriter::create",
        what: "no directory sync after creating a WAL segment",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "wal-fsync-retry",
        site: "wal/src/writer.rs SegmentWriter::sync",
        what: "a failed WAL fsync is retried, and the writer carries on if the retry succeeds",
        stages: &[FAULTS],
    },
    PlantedBug {
        name: "wal-midlog-truncate",
        site: "wal/src/reader.rs durable_frame_after",
        what: "damage before data a later frame records as synced is taken for a torn tail",
        stages: &[ROT],
    },
    PlantedBug {
        name: "run-skips-fsync",
        site: "runs/src/writer.rs RunWriter::finish",
        what: "a run is renamed into place (and named by the manifest) without an fsync",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "run-skips-dir-sync",
        site: "runs/src/writer.rs RunWriter::finish",
        what: "no directory sync after renaming a run into place",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "run-skips-block-crc",
        site: "runs/src/block.rs decode",
        what: "run blocks are decoded without checking their CRC",
        stages: &[ROT],
    },
    PlantedBug {
        name: "manifest-skips-dir-sync",
        site: "engine/src/manifest/mod.rs ManifestWriter::create",
        what: "CURRENT names a new manifest whose directory entry was not synced",
        stages: &[CRASH, CRASH_MORE],
    },
    PlantedBug {
        name: "current-skips-fsync",
        site: "engine/src/manifest/mod.rs ManifestWriter::create",
        what: "CURRENT.tmp is renamed over CURRENT without an fsync of its contents",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "manifest-unlinks-old-early",
        site: "engine/src/inner.rs append_edit_unchecked",
        what: "manifest rotation deletes the old manifest before CURRENT names the new one",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "manifest-append-skips-fsync",
        site: "engine/src/manifest/mod.rs ManifestWriter::append",
        what: "a manifest edit is acted on (WAL deleted, runs dropped) before it is durable",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "manifest-failure-not-poisoned",
        site: "engine/src/inner.rs append_edit",
        what: "a failed manifest append does not stop the engine (G2's first finding, undone)",
        stages: &[FAULTS],
    },
    PlantedBug {
        name: "flush-unlinks-wal-early",
        site: "engine/src/inner.rs flush_memtable",
        what: "a flush deletes its WAL segment before the manifest edit that makes it obsolete",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "flush-retries-after-error",
        site: "engine/src/inner.rs flusher_loop",
        what: "a failed flush (run write, fsync, rename) is retried instead of stopping the engine",
        stages: &[FAULTS],
    },
    PlantedBug {
        name: "txn-skips-validation",
        site: "engine/src/commit.rs commit_group",
        what: "transactions commit without their conflict check",
        stages: &[BANK],
    },
    PlantedBug {
        name: "gc-ignores-snapshots",
        site: "engine/src/history.rs gc_rules",
        what: "compaction drops versions that live snapshots read",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "recovery-reuses-versions",
        site: "engine/src/recovery.rs open",
        what: "recovery forgets the replayed WAL's versions: they are invisible, then reused",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "checkpoint-skips-flush",
        site: "engine/src/db.rs checkpoint",
        what: "a checkpoint leaves out the commits still in memtables",
        stages: &[CRASH],
    },
    PlantedBug {
        name: "recovery-keeps-torn-tail",
        site: "engine/src/recovery.rs open",
        what: "recovery starts a new WAL segment with the torn tail still in the older one",
        stages: &[RECOVERY],
    },
    PlantedBug {
        name: "recovery-unlinks-wal-early",
        site: "engine/src/recovery.rs open",
        what: "recovery deletes the replayed WAL before the run holding its entries is durable",
        stages: &[RECOVERY],
    },
];

/// What one child run of a stage showed.
#[derive(Debug, Clone, Default)]
pub struct StageRun {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The `failed` count of the stage's last line `N passed, N failed`, if it got there.
    pub failed: Option<u64>,
    /// How often the selected bug took effect, as the child reported it.
    pub fired: Option<u64>,
    /// The first violation the stage printed, if any (or the last line of stderr).
    pub first_violation: Option<String>,
    /// Killed after [`CHILD_TIMEOUT`].
    pub timed_out: bool,
    pub secs: f64,
}

impl StageRun {
    /// The stage finished and failed: a non-zero exit (violations, a panic, an abort). A
    /// stage that hung is not a detection: it is a failure of its own, to look into.
    pub fn failed(&self) -> bool {
        !self.timed_out && self.code != Some(0)
    }

    /// The stage finished and passed.
    pub fn passed(&self) -> bool {
        !self.timed_out && self.code == Some(0)
    }

    /// The violation count as printed: the stage's `failed` figure, or how it died.
    pub fn violations(&self) -> String {
        match (self.failed, self.code) {
            _ if self.timed_out => {
                format!("none: killed after {} s (hung)", CHILD_TIMEOUT.as_secs())
            }
            (Some(n), _) => n.to_string(),
            (None, Some(c)) => format!("no summary (exit {c})"),
            (None, None) => "no summary (killed by a signal)".to_string(),
        }
    }
}

/// Reads a child's pipe to the end in a thread (so neither pipe can fill up and block it).
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// The stage's arguments as one string, for the report.
pub fn describe(stage: Stage) -> String {
    stage.join(" ")
}

/// Runs `exe` with `stage`'s arguments, with `CHRONOKV_BUG` set to `bug` (or unset).
pub fn run_stage(exe: &Path, stage: Stage, bug: Option<&str>) -> io::Result<StageRun> {
    let mut cmd = Command::new(exe);
    cmd.args(stage);
    match bug {
        Some(b) => cmd.env("CHRONOKV_BUG", b),
        None => cmd.env_remove("CHRONOKV_BUG"),
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > CHILD_TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = start.elapsed().as_secs_f64();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let failed = stdout.lines().rev().find_map(|l| {
        let (_, rest) = l.split_once(" passed, ")?;
        rest.strip_suffix(" failed")?.parse().ok()
    });
    let fired = stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("planted bug ")?;
        let (_, n) = rest.split_once(" took effect ")?;
        n.strip_suffix(" times")?.parse().ok()
    });
    let first_violation = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("VIOLATION"))
        .map(|l| l.trim().to_string())
        .or_else(|| {
            stderr
                .lines()
                .rfind(|l| !l.starts_with("planted bug ") && !l.trim().is_empty())
                .map(str::to_string)
        });
    Ok(StageRun {
        code: status.code(),
        failed,
        fired,
        first_violation,
        timed_out,
        secs,
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}...")
}

/// Child stages run at once: each is single-threaded but for the engine's background
/// threads, and the CI machine has 2 cores (one at a time took 9.5 minutes there).
pub const CONCURRENT_CHILDREN: usize = 2;

/// A bug's stages tried in order until one catches it: the runs that did not, and the one
/// that did.
struct BugRuns {
    tried: Vec<(Stage, StageRun)>,
    caught: Option<(Stage, StageRun)>,
}

fn try_bug(exe: &Path, bug: &PlantedBug) -> io::Result<BugRuns> {
    let mut tried = Vec::new();
    for &stage in bug.stages {
        let r = run_stage(exe, stage, Some(bug.name))?;
        if r.failed() && r.fired.unwrap_or(0) > 0 {
            return Ok(BugRuns {
                tried,
                caught: Some((stage, r)),
            });
        }
        tried.push((stage, r));
    }
    Ok(BugRuns {
        tried,
        caught: None,
    })
}

/// Prints a control's line; true if it passed.
fn report_control(stage: Stage, r: &StageRun) -> bool {
    if r.passed() {
        println!(
            "control `{}` (no bug): passed, 0 violations, {:.1} s",
            describe(stage),
            r.secs
        );
        return true;
    }
    println!(
        "control `{}` (no bug): FAILED: {} violations, {:.1} s",
        describe(stage),
        r.violations(),
        r.secs
    );
    if let Some(v) = &r.first_violation {
        println!("    first: {}", shorten(v, 200));
    }
    false
}

/// Prints a bug's lines; true if a stage caught it.
fn report_bug(bug: &PlantedBug, runs: &BugRuns) -> bool {
    // A stage that did not catch the bug is reported even when a later one did.
    for (stage, r) in &runs.tried {
        let why = match r.fired {
            _ if r.timed_out => "the stage hung",
            Some(0) | None => "the bug never took effect",
            Some(_) if !r.failed() => "the stage passed",
            Some(_) => "the stage failed",
        };
        println!(
            "bug {}: not caught by `{}` ({why}): {} violations, took effect {} times, {:.1} s",
            bug.name,
            describe(stage),
            r.violations(),
            r.fired.unwrap_or(0),
            r.secs
        );
    }
    let Some((stage, r)) = &runs.caught else {
        println!("bug {}: MISSED by every stage", bug.name);
        return false;
    };
    println!(
        "bug {}: DETECTED by `{}`: {} violations (the bug took effect {} times), {:.1} s",
        bug.name,
        describe(stage),
        r.violations(),
        r.fired.unwrap_or(0),
        r.secs
    );
    if let Some(v) = &r.first_violation {
        println!("    first: {}", shorten(v, 200));
    }
    true
}

/// Runs every stage the selected bugs use once without a bug (the controls, unless
/// `controls` is false), then the planted bugs (all, or `only`) against their stages,
/// [`CONCURRENT_CHILDREN`] children at a time. Prints a line per control and per bug, and
/// `N passed, N failed` (passed: bugs detected; failed: bugs missed plus failed controls).
/// Returns the failed count.
pub fn run(exe: &Path, only: Option<&str>, controls: bool) -> io::Result<u64> {
    let bugs: Vec<&PlantedBug> = BUGS
        .iter()
        .filter(|b| only.is_none_or(|o| o == b.name))
        .collect();
    if bugs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no planted bug named {:?}", only.unwrap_or_default()),
        ));
    }
    let start = Instant::now();
    let mut stages: Vec<Stage> = Vec::new();
    if controls {
        for bug in &bugs {
            for &s in bug.stages {
                if !stages.contains(&s) {
                    stages.push(s);
                }
            }
        }
    }
    let mut first_error = None;
    let (mut controls_run, mut control_failures) = (0u64, 0u64);
    in_order(
        &stages,
        CONCURRENT_CHILDREN,
        |&stage| run_stage(exe, stage, None),
        |&stage, r| match r {
            Ok(r) => {
                controls_run += 1;
                if !report_control(stage, &r) {
                    control_failures += 1;
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        },
    );
    let (mut detected, mut missed) = (0u64, 0u64);
    in_order(
        &bugs,
        CONCURRENT_CHILDREN,
        |bug| try_bug(exe, bug),
        |bug, runs| match runs {
            Ok(runs) if report_bug(bug, &runs) => detected += 1,
            Ok(_) => missed += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        },
    );
    if let Some(e) = first_error {
        return Err(e);
    }
    println!(
        "bugs stage: {} planted bugs, {} detected, {} missed; {} controls, {} failed; {:.1} s",
        bugs.len(),
        detected,
        missed,
        controls_run,
        control_failures,
        start.elapsed().as_secs_f64()
    );
    let failed = missed + control_failures;
    println!("{detected} passed, {failed} failed");
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_names_are_unique_and_each_has_a_stage() {
        for (i, b) in BUGS.iter().enumerate() {
            assert!(!b.stages.is_empty(), "{}", b.name);
            assert!(
                BUGS[..i].iter().all(|o| o.name != b.name),
                "{} twice",
                b.name
            );
        }
        assert!(BUGS.len() >= 10);
    }

    #[test]
    fn every_bug_is_planted_at_its_site() {
        // The site's file holds `bug!("name")`: a renamed site would never take effect.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for b in BUGS {
            let file = b.site.split_whitespace().next().unwrap();
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            assert!(
                text.contains(&format!("bug!(\"{}\")", b.name)),
                "{} is not planted in {file}",
                b.name
            );
        }
    }
}
