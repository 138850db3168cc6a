//! `chronokv inspect`: the tree of an open store.

use crate::error::Result;
use crate::fmt::{count, escape, key_range, plural, ratio, Table};
use crate::Ctx;
use chronokv::Db;
use chronokv_engine::internals::{classify, current_manifest, FileKind};
use chronokv_vfs::{RealFs, Vfs};
use serde_json::json;
use std::io::Write;

/// Prints the tree of `db`. `writes_seen` says whether this process wrote to it (so that
/// write amplification means something: the engine counts from open).
pub fn inspect(ctx: &Ctx, out: &mut dyn Write, db: &Db, writes_seen: bool) -> Result<()> {
    let stats = db.stats();
    let runs = db.runs();
    let usage = db.space_usage()?;
    let dir = db.path();
    let manifest = current_manifest(&RealFs, dir)?
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut wal_segments = 0;
    for name in RealFs.list(dir).map_err(crate::error::io_at(dir))? {
        if matches!(classify(&name), Some(FileKind::Wal(_))) {
            wal_segments += 1;
        }
    }
    let write_amp = if writes_seen {
        ratio(stats.write_amplification())
    } else {
        "-".to_string()
    };
    let file_name = |r: &chronokv::RunInfo| {
        r.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if ctx.json {
        let v = json!({
            "path": dir.display().to_string(),
            "manifest": manifest,
            "strategy": stats.strategy,
            "latest_version": db.latest_version().get(),
            "levels": stats.levels.iter().enumerate().map(|(i, l)| json!({
                "level": i, "runs": l.runs, "bytes": l.bytes, "entries": l.entries,
                "tombstones": l.tombstones,
            })).collect::<Vec<_>>(),
            "runs": runs.iter().map(|r| json!({
                "level": r.level, "file": file_name(r), "bytes": r.file_size,
                "entries": r.entries, "tombstones": r.tombstones, "blocks": r.blocks,
                "min_version": r.min_version.get(), "max_version": r.max_version.get(),
                "min_key": escape(&r.min_key), "max_key": escape(&r.max_key),
            })).collect::<Vec<_>>(),
            "wal": {"segments": wal_segments, "bytes": usage.wal_bytes},
            "live": {"keys": usage.live_keys, "bytes": usage.live_bytes},
            "run_bytes": usage.run_bytes,
            "space_amplification": usage.space_amplification(),
            "estimated_space_amplification": stats.estimated_space_amplification(),
            "write_amplification": if writes_seen { json!(stats.write_amplification()) } else { json!(null) },
            "pending_compaction_bytes": stats.pending_compaction_bytes,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    let entries: u64 = runs.iter().map(|r| r.entries).sum();
    let tombstones: u64 = runs.iter().map(|r| r.tombstones).sum();
    writeln!(out, "store       {}", dir.display())?;
    writeln!(out, "manifest    {manifest}")?;
    writeln!(out, "strategy    {}", stats.strategy)?;
    writeln!(out, "latest      {}", db.latest_version())?;
    writeln!(
        out,
        "runs        {} ({} bytes, {}, {})",
        runs.len(),
        usage.run_bytes,
        count(entries, "entry", "entries"),
        plural(tombstones, "tombstone")
    )?;
    writeln!(
        out,
        "wal         {} ({} bytes)",
        plural(wal_segments as u64, "segment"),
        usage.wal_bytes
    )?;
    writeln!(
        out,
        "live        {} ({} bytes of keys and values)",
        plural(usage.live_keys, "key"),
        usage.live_bytes
    )?;
    writeln!(out)?;
    let mut levels = Table::new(&["level", ">runs", ">bytes", ">entries", ">tombstones"]);
    for (i, l) in stats.levels.iter().enumerate() {
        if l.runs > 0 {
            levels.row(vec![
                format!("L{i}"),
                l.runs.to_string(),
                l.bytes.to_string(),
                l.entries.to_string(),
                l.tombstones.to_string(),
            ]);
        }
    }
    if levels.is_empty() {
        writeln!(out, "no runs yet (everything is in the memtable and WAL)")?;
    } else {
        levels.print(out, "")?;
        writeln!(out)?;
        let mut t = Table::new(&[
            "level",
            "run",
            ">bytes",
            ">entries",
            ">tombstones",
            ">blocks",
            "versions",
            "keys",
        ]);
        for r in &runs {
            t.row(vec![
                format!("L{}", r.level),
                file_name(r),
                r.file_size.to_string(),
                r.entries.to_string(),
                r.tombstones.to_string(),
                r.blocks.to_string(),
                format!("{}..{}", r.min_version, r.max_version),
                key_range(&r.min_key, &r.max_key),
            ]);
        }
        t.print(out, "")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "space amplification  {} (run bytes / live bytes; estimated from level sizes: {})",
        ratio(usage.space_amplification()),
        ratio(stats.estimated_space_amplification())
    )?;
    if writes_seen {
        writeln!(
            out,
            "write amplification  {write_amp} (run bytes written by flushes and compactions / key and value bytes written)"
        )?;
    } else {
        writeln!(
            out,
            "write amplification  - (counted from open, and this command wrote nothing)"
        )?;
    }
    writeln!(
        out,
        "compaction debt      {} bytes",
        stats.pending_compaction_bytes
    )?;
    Ok(())
}
