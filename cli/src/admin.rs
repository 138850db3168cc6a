//! Operations: verify, compact, checkpoint, backup.

use crate::error::{CliError, Result};
use crate::fmt::{count, plural, time_micros, Table};
use crate::progress::Bar;
use crate::Ctx;
use chronokv::backup::{BackupEngine, BackupInfo};
use chronokv::{Db, Options, VerifyReport};
use clap::Subcommand;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

fn report_json(r: &VerifyReport) -> Value {
    json!({
        "ok": r.is_ok(),
        "problems": r.problems.iter().map(|p| json!({
            "kind": p.kind.name(),
            "file": p.file.display().to_string(),
            "offset": p.offset,
            "detail": p.detail,
        })).collect::<Vec<_>>(),
        "manifest": r.manifest.as_ref().map(|p| p.display().to_string()),
        "manifest_edits": r.manifest_edits,
        "runs": r.runs,
        "run_bytes": r.run_bytes,
        "blocks": r.blocks,
        "entries": r.entries,
        "wal_segments": r.wal_segments,
        "wal_records": r.wal_records,
        "wal_bytes": r.wal_bytes,
        "unreferenced": r.unreferenced.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    })
}

/// Prints a report (`wal`: whether WAL segments were part of what was read).
fn print_report(out: &mut dyn Write, r: &VerifyReport, what: &str, wal: bool) -> Result<()> {
    let runs = format!(
        "{} ({} bytes, {}, {})",
        plural(r.runs as u64, "run"),
        r.run_bytes,
        plural(r.blocks, "block"),
        count(r.entries, "entry", "entries"),
    );
    if wal {
        writeln!(
            out,
            "read {what}: {runs}, {} ({} bytes, {})",
            plural(r.wal_segments as u64, "WAL segment"),
            r.wal_bytes,
            plural(r.wal_records, "record"),
        )?;
    } else {
        writeln!(out, "read {what}: {runs}")?;
    }
    if !r.unreferenced.is_empty() {
        writeln!(
            out,
            "{} not needed by the manifest (the next open removes them):",
            plural(r.unreferenced.len() as u64, "file")
        )?;
        for p in &r.unreferenced {
            writeln!(out, "  {}", p.display())?;
        }
    }
    if r.is_ok() {
        writeln!(out, "OK: no problems found")?;
    } else {
        writeln!(out, "{} found:", plural(r.problems.len() as u64, "problem"))?;
        for p in &r.problems {
            writeln!(out, "  {p}")?;
        }
    }
    Ok(())
}

/// Verifies through a read-only open, which takes no lock and writes nothing, so it works
/// while another process has the store open. A store that does not open (a damaged
/// manifest, a missing run) is examined file by file by `verify_dir`, which needs the
/// store's LOCK (so no writer has it open) and creates the LOCK file if it is missing.
fn verify_report(path: &Path, progress: chronokv::Progress<'_>) -> Result<VerifyReport> {
    match Db::open_read_only(path, Options::default()) {
        Ok(db) => {
            let report = db.verify_with_progress(progress)?;
            db.close()?;
            Ok(report)
        }
        Err(_) => Ok(chronokv::verify_dir_with_progress(
            path,
            &Options::default(),
            progress,
        )?),
    }
}

pub fn verify(ctx: &Ctx, out: &mut dyn Write) -> Result<()> {
    let path = ctx.db_path()?;
    let bar = Bar::bytes("verifying", 0);
    let report = verify_report(path, &mut |d, t| bar.set(d, t))?;
    bar.finish();
    if ctx.json {
        serde_json::to_writer_pretty(&mut *out, &report_json(&report))?;
        writeln!(out)?;
    } else {
        let manifest = report
            .manifest
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "no manifest".into());
        let what = format!(
            "{} ({}, {})",
            path.display(),
            manifest,
            plural(report.manifest_edits as u64, "edit")
        );
        print_report(out, &report, &what, true)?;
    }
    if report.is_ok() {
        Ok(())
    } else {
        Err(CliError::Failed(1))
    }
}

pub fn compact(
    ctx: &Ctx,
    out: &mut dyn Write,
    from: Option<Vec<u8>>,
    to: Option<Vec<u8>>,
) -> Result<()> {
    use std::ops::Bound;
    let db = ctx.open(false)?;
    let before = db.stats();
    let bar = Bar::spinner("compacting");
    let lo = from.map_or(Bound::Unbounded, Bound::Included);
    let hi = to.map_or(Bound::Unbounded, Bound::Included);
    db.compact_range::<Vec<u8>, _>((lo, hi))?;
    db.wait_for_compactions()?;
    bar.finish();
    let after = db.stats();
    db.close()?;
    let shape = |s: &chronokv::Stats| -> Vec<(usize, usize, u64)> {
        s.levels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.runs > 0)
            .map(|(i, l)| (i, l.runs, l.bytes))
            .collect()
    };
    if ctx.json {
        let levels = |s: &chronokv::Stats| {
            shape(s)
                .into_iter()
                .map(|(l, r, b)| json!({"level": l, "runs": r, "bytes": b}))
                .collect::<Vec<_>>()
        };
        let v = json!({
            "before": levels(&before),
            "after": levels(&after),
            "bytes_read": after.compaction_bytes_read,
            "bytes_written": after.compaction_bytes_written,
            "versions_dropped": after.versions_dropped,
            "tombstones_dropped": after.tombstones_dropped,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let fmt_shape = |s: &chronokv::Stats| {
        let parts: Vec<String> = shape(s)
            .into_iter()
            .map(|(l, r, b)| format!("L{l}: {} ({b} bytes)", plural(r as u64, "run")))
            .collect();
        if parts.is_empty() {
            "empty".to_string()
        } else {
            parts.join(", ")
        }
    };
    writeln!(out, "before  {}", fmt_shape(&before))?;
    writeln!(out, "after   {}", fmt_shape(&after))?;
    writeln!(
        out,
        "read {} bytes, wrote {} bytes, dropped {} and {}",
        after.compaction_bytes_read,
        after.compaction_bytes_written,
        plural(after.versions_dropped, "old version"),
        plural(after.tombstones_dropped, "tombstone")
    )?;
    Ok(())
}

pub fn checkpoint(ctx: &Ctx, out: &mut dyn Write, dir: &Path) -> Result<()> {
    let db = ctx.open_read_only()?;
    let info = db.checkpoint(dir)?;
    db.close()?;
    if ctx.json {
        let v = json!({
            "dir": info.dir.display().to_string(),
            "version": info.version.get(),
            "runs": info.runs,
            "linked": info.linked,
            "copied": info.copied,
            "bytes": info.bytes,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "checkpoint {}: every version up to {}, {} ({} bytes; {} hard-linked, {} copied)",
            info.dir.display(),
            info.version,
            plural(info.runs as u64, "run"),
            info.bytes,
            info.linked,
            info.copied
        )?;
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back up the store (--db) into BACKUP_DIR, copying only runs no earlier backup holds.
    /// Writes only BACKUP_DIR: the store is opened read-only.
    Create { backup_dir: PathBuf },
    /// List the backups in BACKUP_DIR.
    List { backup_dir: PathBuf },
    /// Check every checksum of one backup, or of all.
    Verify {
        backup_dir: PathBuf,
        id: Option<u64>,
    },
    /// Restore backup ID into TARGET (an empty or new directory). Writes: creates the store
    /// in TARGET (the backed-up store is not opened).
    Restore {
        backup_dir: PathBuf,
        id: u64,
        target: PathBuf,
    },
    /// Delete backup ID and the run copies no other backup holds. Writes: removes files
    /// from BACKUP_DIR (no store is opened).
    Delete { backup_dir: PathBuf, id: u64 },
}

fn info_json(i: &BackupInfo) -> Value {
    json!({
        "id": i.id,
        "created_micros": i.created_micros,
        "created": time_micros(i.created_micros),
        "version": i.version.get(),
        "runs": i.runs,
        "bytes": i.bytes,
        "copied_runs": i.copied_runs,
        "copied_bytes": i.copied_bytes,
    })
}

fn open_existing(dir: &Path) -> Result<BackupEngine> {
    if !dir.is_dir() {
        return Err(CliError::msg(format!(
            "{} is not a backup directory (it does not exist)",
            dir.display()
        )));
    }
    Ok(BackupEngine::open(dir)?)
}

pub fn backup(ctx: &Ctx, out: &mut dyn Write, cmd: BackupCommand) -> Result<()> {
    match cmd {
        BackupCommand::Create { backup_dir } => {
            // Read-only: no lock, nothing written to the store, so it backs up a store
            // another process is writing (the WAL records it sees become one more run).
            let db = ctx.open_read_only()?;
            let engine = BackupEngine::open(&backup_dir)?;
            let bar = Bar::bytes("backing up", 0);
            let info = engine.create_with_progress(&db, &mut |d, t| bar.set(d, t))?;
            bar.finish();
            db.close()?;
            if ctx.json {
                writeln!(out, "{}", info_json(&info))?;
            } else {
                let copied = if info.copied_runs == info.runs {
                    "copied all of them".to_string()
                } else {
                    format!(
                        "copied {} ({} bytes), the backup directory held the others",
                        info.copied_runs, info.copied_bytes
                    )
                };
                writeln!(
                    out,
                    "backup {}: every version up to {}, {} ({} bytes); {copied}",
                    info.id,
                    info.version,
                    plural(info.runs as u64, "run"),
                    info.bytes,
                )?;
            }
        }
        BackupCommand::List { backup_dir } => {
            let list = open_existing(&backup_dir)?.list()?;
            if ctx.json {
                let v: Vec<Value> = list.iter().map(info_json).collect();
                serde_json::to_writer_pretty(&mut *out, &v)?;
                writeln!(out)?;
            } else if list.is_empty() {
                writeln!(out, "no backups in {}", backup_dir.display())?;
            } else {
                let mut t = Table::new(&[
                    ">id",
                    "created",
                    "version",
                    ">runs",
                    ">bytes",
                    ">copied runs",
                    ">copied bytes",
                ]);
                for i in &list {
                    t.row(vec![
                        i.id.to_string(),
                        time_micros(i.created_micros),
                        i.version.to_string(),
                        i.runs.to_string(),
                        i.bytes.to_string(),
                        i.copied_runs.to_string(),
                        i.copied_bytes.to_string(),
                    ]);
                }
                t.print(out, "")?;
            }
        }
        BackupCommand::Verify { backup_dir, id } => {
            let engine = open_existing(&backup_dir)?;
            let ids: Vec<u64> = match id {
                Some(id) => vec![id],
                None => {
                    // Damaged metadata still has an id (its file name): verify reports it.
                    let mut ids: Vec<u64> = std::fs::read_dir(&backup_dir)
                        .map_err(crate::error::io_at(&backup_dir))?
                        .filter_map(|e| e.ok())
                        .filter_map(|e| {
                            e.file_name()
                                .to_str()
                                .and_then(|n| n.strip_prefix("BACKUP-"))
                                .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
                                .and_then(|d| d.parse().ok())
                        })
                        .collect();
                    ids.sort_unstable();
                    ids
                }
            };
            let mut all_ok = true;
            let mut reports = Vec::new();
            let none = ids.is_empty();
            for id in ids {
                let bar = Bar::bytes(&format!("verifying backup {id}"), 0);
                let r = engine.verify_with_progress(id, &mut |d, t| bar.set(d, t))?;
                bar.finish();
                all_ok &= r.is_ok();
                if ctx.json {
                    let mut v = report_json(&r);
                    v["id"] = json!(id);
                    reports.push(v);
                } else {
                    print_report(out, &r, &format!("backup {id}"), false)?;
                }
            }
            if ctx.json {
                serde_json::to_writer_pretty(&mut *out, &reports)?;
                writeln!(out)?;
            } else if none {
                writeln!(out, "no backups in {}", backup_dir.display())?;
            }
            if !all_ok {
                return Err(CliError::Failed(1));
            }
        }
        BackupCommand::Restore {
            backup_dir,
            id,
            target,
        } => {
            let engine = open_existing(&backup_dir)?;
            let bar = Bar::bytes("restoring", 0);
            let info = engine.restore_with_progress(id, &target, &mut |d, t| bar.set(d, t))?;
            bar.finish();
            if ctx.json {
                let mut v = info_json(&info);
                v["target"] = json!(target.display().to_string());
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "restored backup {} into {}: every version up to {}, {} ({} bytes)",
                    info.id,
                    target.display(),
                    info.version,
                    plural(info.runs as u64, "run"),
                    info.bytes
                )?;
            }
        }
        BackupCommand::Delete { backup_dir, id } => {
            let d = open_existing(&backup_dir)?.delete(id)?;
            if ctx.json {
                writeln!(
                    out,
                    "{}",
                    json!({"id": id, "removed_runs": d.removed_runs, "removed_bytes": d.removed_bytes})
                )?;
            } else {
                writeln!(
                    out,
                    "deleted backup {id}; removed {} no other backup holds ({} bytes)",
                    count(d.removed_runs as u64, "run copy", "run copies"),
                    d.removed_bytes
                )?;
            }
        }
    }
    Ok(())
}
