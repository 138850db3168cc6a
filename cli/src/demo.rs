//! `chronokv demo`: builds a sample store and walks through what chronokv does.

use crate::error::{CliError, Result};
use crate::fmt::{count, escape, plural};
use crate::Ctx;
use chronokv::{Db, Options, Version, WriteBatch};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

const USERS: u32 = 2000;
const PLANS: [&str; 3] = ["free", "pro", "team"];
const RETENTION: Duration = Duration::from_secs(24 * 3600);

fn user(i: u32) -> (String, String) {
    (
        format!("user:{i:04}"),
        format!(
            "{{\"name\":\"user {i}\",\"plan\":\"{}\"}}",
            PLANS[(i % 3) as usize]
        ),
    )
}

/// Removes a previous demo store; refuses to remove anything that is not one.
fn reset(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let empty = path
        .read_dir()
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !empty && !path.join("CURRENT").exists() {
        return Err(CliError::msg(format!(
            "refusing to replace {}: it exists and is not a chronokv store",
            path.display()
        )));
    }
    std::fs::remove_dir_all(path).map_err(crate::error::io_at(path))?;
    Ok(())
}

pub fn demo(ctx: &Ctx, out: &mut dyn Write, path: &Path) -> Result<()> {
    reset(path)?;
    let db = Db::open(
        path,
        Options {
            // Small memtables, so that a small demo already has several runs and compacts.
            memtable_size: 64 << 10,
            // Keep a day of history, so step 5 can travel back even after compaction.
            history_retention: Some(RETENTION),
            ..Options::default()
        },
    )?;
    writeln!(
        out,
        "chronokv demo: a sample store in {} (recreated at each run)",
        path.display()
    )?;

    writeln!(out, "\n== 1. writes: {USERS} users in batches of 100")?;
    let mut first = None;
    for start in (1..=USERS).step_by(100) {
        let mut batch = WriteBatch::new();
        for i in start..start + 100 {
            let (k, v) = user(i);
            batch.put(k, v);
        }
        let v = db.write(batch)?;
        first.get_or_insert(v.get() - 99);
    }
    writeln!(
        out,
        "put user:0001 .. user:{USERS:04}  -> versions v{}..{}",
        first.unwrap_or(1),
        db.latest_version()
    )?;
    let loaded = db.latest_version();
    // Commit times have millisecond resolution: step past the last load commit's
    // millisecond so the moment recorded below falls between the load and the updates.
    std::thread::sleep(Duration::from_millis(2));
    let after_load = SystemTime::now();
    std::thread::sleep(Duration::from_millis(2));

    writeln!(out, "\n== 2. updates and deletes")?;
    let v = db.put("user:0042", "{\"name\":\"Ada\",\"plan\":\"team\"}")?;
    let ada = v;
    writeln!(
        out,
        "put user:0042 = {{\"name\":\"Ada\",\"plan\":\"team\"}}  -> {v}"
    )?;
    for i in (5..=USERS).step_by(10) {
        db.delete(user(i).0)?;
    }
    writeln!(
        out,
        "delete user:0005, user:0015, ... ({} keys)  -> up to {}",
        USERS / 10,
        db.latest_version()
    )?;

    writeln!(out, "\n== 3. an atomic batch: all of it or none of it")?;
    let mut batch = WriteBatch::new();
    batch
        .put(
            "order:1001",
            "{\"user\":\"user:0042\",\"item\":\"widget\",\"qty\":2}",
        )
        .put("stock:widget", "98")
        .delete("cart:user:0042");
    let v = db.write(batch)?;
    writeln!(
        out,
        "put order:1001, put stock:widget = 98, delete cart:user:0042  -> v{}..{v}",
        v.get() - 2
    )?;

    writeln!(out, "\n== 4. reads")?;
    for key in ["user:0042", "user:0005", "stock:widget"] {
        match db.get(key)? {
            Some(value) => writeln!(out, "get {key}  = {}", escape(&value))?,
            None => writeln!(out, "get {key}  = (not found: deleted)")?,
        }
    }
    writeln!(out, "scan --prefix user:000 (deleted keys are skipped):")?;
    for pair in db.prefix("user:000") {
        let (k, v) = pair?;
        writeln!(out, "  {}  {}", escape(&k), escape(&v))?;
    }

    time_travel(out, &db, loaded, ada, after_load)?;

    writeln!(out, "\n== 6. flush and compact")?;
    db.flush()?;
    let shape = |db: &Db| {
        let mut parts = Vec::new();
        for (i, l) in db.stats().levels.iter().enumerate() {
            if l.runs > 0 {
                parts.push(format!(
                    "L{i}: {} ({} bytes)",
                    plural(l.runs as u64, "run"),
                    l.bytes
                ));
            }
        }
        parts.join(", ")
    };
    writeln!(
        out,
        "flushed: {} (memtables are written as level-0 runs; background compaction merges them)",
        shape(&db)
    )?;
    db.compact_range::<&[u8], _>(..)?;
    db.wait_for_compactions()?;
    let stats = db.stats();
    writeln!(
        out,
        "compact_range(..): {}; dropped {} and {}",
        shape(&db),
        plural(stats.versions_dropped, "overwritten or deleted version"),
        plural(stats.tombstones_dropped, "tombstone")
    )?;
    writeln!(
        out,
        "history is retained for a day, so the past survives compaction: as of {loaded}, user:0042 = {}",
        shown(db.snapshot_at(loaded)?.get("user:0042")?.as_deref())
    )?;

    writeln!(out, "\n== 7. verify (every block, the manifest, the WAL)")?;
    let report = db.verify()?;
    writeln!(
        out,
        "read {}, {}, {}: {}",
        plural(report.runs as u64, "run"),
        plural(report.blocks, "block"),
        count(report.entries, "entry", "entries"),
        if report.is_ok() {
            "no problems".to_string()
        } else {
            format!("{} problems", report.problems.len())
        }
    )?;

    writeln!(out, "\n== 8. inspect")?;
    crate::inspect::inspect(ctx, out, &db, true)?;
    db.close()?;

    let p = path.display();
    writeln!(out, "\nTry next:")?;
    for cmd in [
        format!("chronokv --db {p} scan --prefix order:"),
        format!("chronokv --db {p} history user:0042"),
        format!(
            "chronokv --db {p} get user:0042 --at-version v{}",
            loaded.get()
        ),
        format!("chronokv --db {p} retention show"),
        format!("chronokv --db {p} inspect --json"),
        format!("chronokv --db {p} dump-manifest"),
        format!("chronokv --db {p} verify"),
        format!("chronokv --db {p} backup create {p}-backups"),
    ] {
        writeln!(out, "  {cmd}")?;
    }
    Ok(())
}

/// Step 5: the same store read as it was, one key's versions and the change feed.
fn time_travel(
    out: &mut dyn Write,
    db: &Db,
    loaded: Version,
    ada: Version,
    after_load: SystemTime,
) -> Result<()> {
    writeln!(
        out,
        "\n== 5. time travel: every commit is a version with a time"
    )?;
    let now = db.get("user:0042")?;
    writeln!(
        out,
        "now:                  user:0042 = {}",
        shown(now.as_deref())
    )?;
    let then = db.snapshot_at(loaded)?;
    writeln!(
        out,
        "as of {loaded}:          user:0042 = {}, user:0005 = {}",
        shown(then.get("user:0042")?.as_deref()),
        shown(then.get("user:0005")?.as_deref())
    )?;
    let moment = db.snapshot_as_of(after_load)?;
    writeln!(
        out,
        "as of a moment between the load and the updates: resolves to {}, user:0005 = {}",
        moment.version(),
        shown(moment.get("user:0005")?.as_deref())
    )?;
    writeln!(out, "history user:0042 (newest first):")?;
    let start = db.history("user:0001")?.last().map(|h| h.time);
    for h in db.history("user:0042")? {
        let offset = start
            .and_then(|s| h.time.duration_since(s).ok())
            .map_or(0, |d| d.as_millis());
        writeln!(
            out,
            "  {}  +{offset} ms  {}",
            h.version,
            shown(h.value.as_deref())
        )?;
    }
    let changes = db.changes(ada..)?.collect::<chronokv::Result<Vec<_>>>()?;
    let deletes = changes.iter().filter(|c| c.value.is_none()).count();
    writeln!(
        out,
        "change feed since {ada}: {} ({} puts, {deletes} deletes); the first three:",
        plural(changes.len() as u64, "change"),
        changes.len() - deletes
    )?;
    for c in changes.iter().take(3) {
        writeln!(
            out,
            "  {}  {}  {}",
            c.version,
            escape(&c.key),
            shown(c.value.as_deref())
        )?;
    }
    Ok(())
}

/// A value, or how a missing one reads in the demo.
fn shown(value: Option<&[u8]>) -> String {
    value.map_or_else(|| "(absent)".to_string(), escape)
}
