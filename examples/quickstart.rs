//! The main job: open a store in a local folder, write, reopen, read, travel back in time,
//! and say what happened.
//!
//! `cargo run --release --example quickstart [DIR] [N]` (defaults: `./quickstart-data`,
//! 1,000,000 keys). The folder is wiped first so every run starts from nothing.

use chronokv::{Db, Options, WriteBatch};
use std::time::{Duration, Instant, SystemTime};

/// Keeps an hour of history, so the store can be read as it was at any moment of the run.
fn options() -> Options {
    Options {
        history_retention: Some(Duration::from_secs(3600)),
        ..Options::default()
    }
}

fn show(v: Option<chronokv::Bytes>) -> String {
    v.map_or("(absent)".into(), |b| {
        format!("{:?}", String::from_utf8_lossy(&b))
    })
}
mod common;
use common::key;

fn value(i: u64) -> Vec<u8> {
    let mut v = format!("value-{i:010}-").into_bytes();
    v.resize(100, b'.');
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "quickstart-data".into());
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    if std::path::Path::new(&dir).exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    println!("chronokv quickstart: {n} keys (16 B) with 100 B values in {dir}/");

    let db = Db::open(&dir, options())?;
    let start = Instant::now();
    for i in 0..n {
        db.put(key(i), value(i))?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  wrote {n} puts in {secs:.2} s ({:.0} puts/s, WAL on, buffered)",
        n as f64 / secs
    );

    let mut batch = WriteBatch::new();
    batch
        .put("demo:greeting", "hello, chronokv")
        .put("demo:empty", "")
        .delete(key(0));
    let v = db.write(batch)?;
    println!(
        "  committed an atomic batch of 3 entries at version {}",
        v.get()
    );
    db.close()?;
    println!("  closed the store");

    let start = Instant::now();
    let db = Db::open(&dir, options())?;
    println!(
        "  reopened in {:.2} s (WAL replayed and flushed to a run)",
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let mut found = 0u64;
    for i in 0..n {
        if let Some(v) = db.get(key(i))? {
            assert_eq!(v, value(i), "key {i} read back a wrong value");
            found += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  read {n} keys back in {secs:.2} s ({:.0} gets/s): {found} found, key 0 deleted",
        n as f64 / secs
    );
    assert_eq!(
        found,
        n - 1,
        "every acknowledged write must survive the reopen"
    );

    let start = Instant::now();
    let scanned = db.scan::<&[u8], _>(..).count();
    println!(
        "  scanned {scanned} live keys in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let greeting = db.get("demo:greeting")?.unwrap_or_default();
    println!(
        "  demo:greeting = {:?}, demo:empty = {:?}",
        String::from_utf8_lossy(&greeting),
        db.get("demo:empty")?
    );
    let on_disk: u64 = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  {} MiB on disk; latest version {}",
        on_disk >> 20,
        db.latest_version().get()
    );

    // Time travel: every commit has a version and a commit time (millisecond resolution).
    let pause = || std::thread::sleep(Duration::from_millis(3));
    let red = db.put("demo:color", "red")?;
    pause();
    let while_red = SystemTime::now();
    pause();
    let blue = db.put("demo:color", "blue")?;
    let deleted = db.delete("demo:color")?;
    let now = db.snapshot();
    println!(
        "time travel on demo:color (red at v{}, blue at v{}, deleted at v{}):",
        red.get(),
        blue.get(),
        deleted.get()
    );
    let label = |s: String| format!("{s:<28}");
    println!("  {}{}", label("now:".into()), show(now.get("demo:color")?));
    let at_blue = db.snapshot_at(blue)?;
    println!(
        "  {}{}",
        label(format!("as of version {}:", blue.get())),
        show(at_blue.get("demo:color")?)
    );
    let then = db.snapshot_as_of(while_red)?;
    println!(
        "  {}{} (resolves to version {})",
        label("as of a moment while red:".into()),
        show(then.get("demo:color")?),
        then.version().get()
    );
    println!("  history, newest first:");
    let history = db.history("demo:color")?;
    let first = history.last().map_or(SystemTime::UNIX_EPOCH, |h| h.time);
    for h in history {
        let ms = h.time.duration_since(first)?.as_millis();
        println!("    v{} at +{ms} ms: {}", h.version.get(), show(h.value));
    }
    let feed = db.changes(red..)?.collect::<Result<Vec<_>, _>>()?;
    println!("  change feed since v{}: {} changes", red.get(), feed.len());
    db.close()?;
    Ok(())
}
