//! The stress process (`chronokv-harness stress`), run and killed by the driver.
//!
//! It opens the database through [`TracingFs`], then runs four writers and a checkpoint
//! thread until it is killed. Writer `t` issues operations `first[t]`, `first[t] + 1`, ...
//! ([`super::op`]) and, after each returns, appends `(counter, version)` to its
//! acknowledgement log with one `write(2)`. The checkpoint thread sleeps 20-120 ms, takes a
//! checkpoint into a new directory `cp-CYCLE-N` and deletes the previous one. Any error is fatal: the
//! process prints it and exits with status 3 (the driver reports it); if nobody kills it
//! within `max_secs` it exits with status 4, and if its parent (the driver) goes away, with
//! status 5.

use super::status::{Category, Status};
use super::tracefs::{self, TracingFs};
use super::{apply, encode_ack, op, options, Layout, THREADS};
use crate::Rng;
use chronokv::vfs::RealFs;
use chronokv::Db;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the driver passes to a stress process.
#[derive(Debug, Clone)]
pub struct StressArgs {
    /// The loop's directory (see [`Layout`]).
    pub dir: PathBuf,
    pub seed: u64,
    pub cycle: u64,
    /// Per writer, the counter of its first operation.
    pub first: Vec<u64>,
    /// Exit (status 4) if still running after this long.
    pub max_secs: u64,
}

impl StressArgs {
    /// The command-line arguments that [`StressArgs::parse`] reads back.
    pub fn to_args(&self) -> Vec<String> {
        let first: Vec<String> = self.first.iter().map(u64::to_string).collect();
        vec![
            "--dir".into(),
            self.dir.display().to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--cycle".into(),
            self.cycle.to_string(),
            "--first".into(),
            first.join(","),
            "--max-secs".into(),
            self.max_secs.to_string(),
        ]
    }

    pub fn parse(args: &[String]) -> Result<StressArgs, String> {
        let get = |name: &str| -> Result<&str, String> {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .map(String::as_str)
                .ok_or_else(|| format!("stress needs {name}"))
        };
        let num = |name: &str| -> Result<u64, String> {
            get(name)?
                .parse()
                .map_err(|_| format!("{name} needs a number"))
        };
        let first = get("--first")?
            .split(',')
            .map(|s| s.parse::<u64>().map_err(|_| "bad --first".to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if first.len() != THREADS {
            return Err(format!("--first needs {THREADS} counters"));
        }
        Ok(StressArgs {
            dir: PathBuf::from(get("--dir")?),
            seed: num("--seed")?,
            cycle: num("--cycle")?,
            first,
            max_secs: num("--max-secs")?,
        })
    }
}

fn die(what: &str) -> ! {
    eprintln!("stress: {what}");
    std::process::exit(3);
}

/// Runs until killed; never returns.
pub fn run(args: &StressArgs) -> ! {
    let layout = Layout::new(&args.dir);
    let status = match Status::create(&layout.status()) {
        Ok(s) => Arc::new(s),
        Err(e) => die(&format!("status file: {e}")),
    };
    let db_dir = layout.db();
    let vfs = Arc::new(TracingFs::new(Arc::new(RealFs), &db_dir, status.clone()));
    status.enter(Category::Open);
    let db = match Db::open(&db_dir, options(vfs, 2)) {
        Ok(db) => db,
        Err(e) => die(&format!("open: {e}")),
    };
    status.opened(db.latest_version().get());
    status.leave(Category::Open);

    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, layout) = (&db, &layout);
            let first = args.first[t];
            let seed = args.seed;
            std::thread::Builder::new()
                .name(format!("writer-{t}"))
                .spawn_scoped(s, move || writer(db, layout, seed, t, first))
                .unwrap_or_else(|e| die(&format!("spawn: {e}")));
        }
        let (db, status, layout) = (&db, &status, &layout);
        std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn_scoped(s, move || checkpointer(db, status, layout, args))
            .unwrap_or_else(|e| die(&format!("spawn: {e}")));
        // Until killed; a stress process whose driver is gone (reparented) stops by itself.
        let parent = std::os::unix::process::parent_id();
        let deadline = Instant::now() + Duration::from_secs(args.max_secs);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if std::os::unix::process::parent_id() != parent {
                eprintln!("stress: the driver is gone");
                std::process::exit(5);
            }
            if Instant::now() >= deadline {
                eprintln!("stress: not killed within {} s", args.max_secs);
                std::process::exit(4);
            }
        }
    })
}

fn writer(db: &Db, layout: &Layout, seed: u64, t: usize, first: u64) {
    let path = layout.acks(t);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    for c in first.. {
        let o = op(seed, t, c);
        tracefs::begin_call();
        let done = apply(db, &o);
        tracefs::end_call();
        match done {
            // std's File is unbuffered: one write(2) per record, after the ack.
            Ok(v) => log
                .write_all(&encode_ack(c, v.get()))
                .unwrap_or_else(|e| die(&format!("{}: {e}", path.display()))),
            Err(e) => die(&format!("writer {t} op {c}: {e}")),
        }
    }
}

fn checkpointer(db: &Db, status: &Status, layout: &Layout, args: &StressArgs) {
    let mut rng = Rng::new(args.seed ^ args.cycle.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut previous: Option<PathBuf> = None;
    for n in 0.. {
        std::thread::sleep(Duration::from_millis(20 + rng.below(100)));
        let dir = layout.checkpoints().join(format!("cp-{}-{n}", args.cycle));
        tracefs::begin_call();
        status.enter(Category::Checkpoint);
        let made = db.checkpoint(&dir);
        status.leave(Category::Checkpoint);
        tracefs::end_call();
        if let Err(e) = made {
            die(&format!("checkpoint {}: {e}", dir.display()));
        }
        if let Some(old) = previous.replace(dir) {
            remove_checkpoint(&old);
        }
    }
}

/// Deletes a checkpoint: first renamed away from its `cp-` name (atomically), so a kill
/// in the middle of the deletion leaves no half-deleted directory the driver would check.
fn remove_checkpoint(dir: &Path) {
    let mut trash = dir.as_os_str().to_owned();
    trash.push(".deleting");
    let trash = PathBuf::from(trash);
    let removed = std::fs::rename(dir, &trash).and_then(|()| std::fs::remove_dir_all(&trash));
    if let Err(e) = removed {
        die(&format!("removing {}: {e}", dir.display()));
    }
}
