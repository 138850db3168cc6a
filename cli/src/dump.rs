//! `dump-run`, `dump-wal`, `dump-manifest`: print a file's structure and contents. Each
//! checks the file's checksums as it goes and stops at the first damage with one error line
//! naming the file and offset (after printing what came before it).

use crate::error::{io_at, CliError, Result};
use crate::fmt::{count, escape, key_range, plural, time_micros, Table};
use crate::Ctx;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use chronokv_engine::internals::{current_manifest, dump_manifest, RunDesc, VersionEdit};
use chronokv_runs::{BlockCache, RunReader};
use chronokv_vfs::{RealFs, Vfs};
use chronokv_wal::RecoveryMode;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// One cell of a run column, as text and as JSON. Generic over the column's Arrow type, so
/// columns added to the run format later print without changes here.
fn cell(col: &ArrayRef, name: &str, row: usize) -> (String, Value) {
    if col.is_null(row) {
        return ("null".into(), Value::Null);
    }
    macro_rules! int {
        ($t:ty) => {{
            let v = col.as_primitive::<$t>().value(row);
            (v.to_string(), json!(v))
        }};
    }
    match col.data_type() {
        DataType::Binary => {
            let s = escape(col.as_binary::<i32>().value(row));
            (s.clone(), json!(s))
        }
        DataType::LargeBinary => {
            let s = escape(col.as_binary::<i64>().value(row));
            (s.clone(), json!(s))
        }
        DataType::Utf8 => {
            let s = escape(col.as_string::<i32>().value(row).as_bytes());
            (s.clone(), json!(s))
        }
        DataType::UInt8 if name == "kind" => {
            let v = col.as_primitive::<UInt8Type>().value(row);
            let s = match v {
                0 => "delete".to_string(),
                1 => "put".to_string(),
                n => format!("kind {n}"),
            };
            (s.clone(), json!(s))
        }
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => col
                    .as_primitive::<arrow_array::types::TimestampSecondType>()
                    .value(row),
                TimeUnit::Millisecond => col
                    .as_primitive::<arrow_array::types::TimestampMillisecondType>()
                    .value(row),
                TimeUnit::Microsecond => col
                    .as_primitive::<arrow_array::types::TimestampMicrosecondType>()
                    .value(row),
                TimeUnit::Nanosecond => col
                    .as_primitive::<arrow_array::types::TimestampNanosecondType>()
                    .value(row),
            };
            let micros = match unit {
                TimeUnit::Second => raw.saturating_mul(1_000_000),
                TimeUnit::Millisecond => raw.saturating_mul(1_000),
                TimeUnit::Microsecond => raw,
                TimeUnit::Nanosecond => raw / 1_000,
            };
            let text = u64::try_from(micros).map_or_else(|_| raw.to_string(), time_micros);
            (text, json!(raw))
        }
        other => (format!("<{other}>"), json!(format!("<{other}>"))),
    }
}

pub fn run(ctx: &Ctx, out: &mut dyn Write, path: &Path, limit: Option<usize>) -> Result<()> {
    let reader = RunReader::open(&RealFs, path, 0, BlockCache::new(0))?;
    let meta = reader.meta().clone();
    let layout = reader.layout();
    let bytes = RealFs.map(path).map_err(io_at(path))?;
    let file = std::fs::File::open(path).map_err(io_at(path))?;
    let mut arrow = arrow_ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None)
        .map_err(|e| {
            CliError::msg(format!(
                "corrupt run file {}: the Arrow footer does not decode: {e}",
                path.display()
            ))
        })?;
    let schema = arrow.schema();
    let mut columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    columns.retain(|c| !c.is_empty());
    let mut metadata: Vec<String> = schema
        .metadata()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    metadata.sort();

    // Entries, block by block; a block whose checksum fails stops the dump.
    let mut damage = None;
    let mut rows_json = Vec::new();
    let mut blocks_text: Vec<(usize, Table)> = Vec::new();
    let mut left = limit.unwrap_or(usize::MAX);
    for (i, b) in layout.blocks.iter().enumerate() {
        if left == 0 {
            break;
        }
        let end = b.offset + u64::from(b.meta_len) + b.body_len;
        let region = usize::try_from(b.offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| bytes.bytes().get(s..e));
        if region.map(crc32fast::hash) != Some(b.crc) {
            damage = Some(format!(
                "corrupt run file {} at offset {}: block {i} checksum mismatch",
                path.display(),
                b.offset
            ));
            break;
        }
        arrow.set_index(i).map_err(CliError::from)?;
        let batch = match arrow.next() {
            Some(Ok(batch)) => batch,
            Some(Err(e)) => {
                damage = Some(format!(
                    "corrupt run file {} at offset {}: block {i} does not decode: {e}",
                    path.display(),
                    b.offset
                ));
                break;
            }
            None => {
                damage = Some(format!(
                    "corrupt run file {}: the Arrow footer lists fewer blocks than the index ({i})",
                    path.display()
                ));
                break;
            }
        };
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut t = Table::new(&names);
        for row in 0..batch.num_rows().min(left) {
            let mut text = Vec::new();
            let mut obj = serde_json::Map::new();
            for (c, col) in batch.columns().iter().enumerate() {
                let (s, v) = cell(col, names[c], row);
                text.push(s);
                obj.insert(names[c].to_string(), v);
            }
            t.row(text);
            obj.insert("block".into(), json!(i));
            rows_json.push(Value::Object(obj));
        }
        left = left.saturating_sub(batch.num_rows());
        blocks_text.push((i, t));
    }

    if ctx.json {
        let v = json!({
            "file": file_name(path),
            "size": meta.file_size,
            "entries": meta.entry_count,
            "tombstones": meta.tombstone_count,
            "compression": layout.codec,
            "format": layout.format,
            "filter": json!({
                "kind": layout.filter.kind, "probes": layout.filter.probes,
                "bytes": layout.filter.bytes,
            }),
            "min_version": meta.min_version.get(),
            "max_version": meta.max_version.get(),
            "min_key": escape(&meta.min_key),
            "max_key": escape(&meta.max_key),
            "columns": schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect::<Vec<_>>(),
            "blocks": layout.blocks.iter().map(|b| json!({
                "offset": b.offset, "meta_len": b.meta_len, "body_len": b.body_len,
                "rows": b.rows, "crc": format!("{:08x}", b.crc),
                "min_version": b.min_version, "max_version": b.max_version,
                "first_key": escape(&b.first_key), "last_key": escape(&b.last_key),
            })).collect::<Vec<_>>(),
            "entries_shown": rows_json,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(out, "run         {}", file_name(path))?;
        writeln!(out, "size        {} bytes", meta.file_size)?;
        writeln!(
            out,
            "entries     {} ({})",
            meta.entry_count,
            plural(meta.tombstone_count, "tombstone")
        )?;
        writeln!(
            out,
            "blocks      {} (compression {})",
            meta.block_count, layout.codec
        )?;
        writeln!(
            out,
            "filter      {} bloom, {} probes, {} bytes (run format {})",
            layout.filter.kind, layout.filter.probes, layout.filter.bytes, layout.format
        )?;
        writeln!(
            out,
            "versions    {}..{}",
            meta.min_version, meta.max_version
        )?;
        writeln!(
            out,
            "keys        {}",
            key_range(&meta.min_key, &meta.max_key)
        )?;
        writeln!(out, "columns     {}", columns.join(", "))?;
        writeln!(out, "metadata    {}", metadata.join(", "))?;
        writeln!(out)?;
        writeln!(out, "block index")?;
        let mut t = Table::new(&[
            ">block", ">offset", ">meta", ">body", ">rows", "crc", "versions", "keys",
        ]);
        for (i, b) in layout.blocks.iter().enumerate() {
            t.row(vec![
                i.to_string(),
                b.offset.to_string(),
                b.meta_len.to_string(),
                b.body_len.to_string(),
                b.rows.to_string(),
                format!("{:08x}", b.crc),
                format!("v{}..v{}", b.min_version, b.max_version),
                key_range(&b.first_key, &b.last_key),
            ]);
        }
        t.print(out, "  ")?;
        for (i, t) in &blocks_text {
            writeln!(out)?;
            writeln!(out, "block {i}")?;
            t.print(out, "  ")?;
        }
    }
    match damage {
        Some(d) => Err(CliError::msg(d)),
        None => Ok(()),
    }
}

pub fn wal(ctx: &Ctx, out: &mut dyn Write, path: &Path, log_number: Option<u64>) -> Result<()> {
    let name = file_name(path);
    let n = match log_number.or_else(|| chronokv_wal::parse_segment_file_name(&name)) {
        Some(n) => n,
        None => {
            return Err(CliError::msg(format!(
                "{name} is not named like a WAL segment (000007.wal): pass --log-number"
            )))
        }
    };
    let size = std::fs::metadata(path).map_err(io_at(path))?.len();
    // PointInTime: every valid record before the first damage, and the damage itself.
    let contents = chronokv_wal::read_segment(&RealFs, path, n, true, RecoveryMode::PointInTime)?;
    let records = &contents.records;
    let entry_json = |rec: &chronokv_wal::Record| -> Vec<Value> {
        rec.entries()
            .enumerate()
            .filter_map(|(j, e)| e.ok().map(|e| (j, e)))
            .map(|(j, (kind, k, v))| {
                json!({
                    "version": rec.first_version.get() + j as u64,
                    "kind": if kind.as_u8() == 1 { "put" } else { "delete" },
                    "key": escape(k),
                    "value": escape(v),
                })
            })
            .collect()
    };
    if ctx.json {
        let v = json!({
            "file": name,
            "log_number": n,
            "size": size,
            "records": records.iter().map(|r| json!({
                "offset": r.offset,
                "first_version": r.first_version.get(),
                "count": r.count,
                "commit_micros": r.commit_micros,
                "commit_time": time_micros(r.commit_micros),
                "durable_offset": r.durable_offset(),
                "entries": entry_json(r),
            })).collect::<Vec<_>>(),
            "damage": contents.damage.as_ref().map(|d| json!({"offset": d.offset, "reason": d.reason})),
            "preallocated_from": contents.preallocated,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
    } else {
        writeln!(out, "segment     {name} (log {n}, {size} bytes)")?;
        let entries: u64 = records.iter().map(|r| u64::from(r.count)).sum();
        match (records.first(), records.last()) {
            (Some(a), Some(b)) if entries > 0 => writeln!(
                out,
                "records     {} ({}, {}..{})",
                records.len(),
                count(entries, "entry", "entries"),
                a.first_version,
                b.last_version()
            )?,
            _ => writeln!(out, "records     {}", records.len())?,
        }
        if let Some(at) = contents.preallocated {
            writeln!(
                out,
                "zeros       from offset {at} (preallocated space past the last frame)"
            )?;
        }
        for rec in records {
            writeln!(out)?;
            let versions = if rec.count == 0 {
                "no entries".to_string()
            } else if rec.count == 1 {
                format!("{} (1 entry)", rec.first_version)
            } else {
                format!(
                    "{}..{} ({} entries)",
                    rec.first_version,
                    rec.last_version(),
                    rec.count
                )
            };
            writeln!(
                out,
                "@{}  {versions}  committed {}  durable_offset {}",
                rec.offset,
                time_micros(rec.commit_micros),
                rec.durable_offset()
            )?;
            for e in entry_json(rec) {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                let version = e["version"].as_u64().unwrap_or_default();
                if s("kind") == "put" {
                    writeln!(out, "  v{version}  put     {} = {}", s("key"), s("value"))?;
                } else {
                    writeln!(out, "  v{version}  delete  {}", s("key"))?;
                }
            }
        }
    }
    match contents.damage {
        Some(d) => Err(CliError::msg(format!(
            "corruption in {} at offset {}: {} (the {} records before it are shown; recovery \
             treats this as a torn tail only in the newest segment and only if no later frame \
             was synced)",
            path.display(),
            d.offset,
            d.reason,
            records.len()
        ))),
        None => Ok(()),
    }
}

fn run_desc(d: &RunDesc) -> String {
    format!(
        "L{} {:06}.arrow  {} bytes, {} entries, {}..{}, keys {}",
        d.level,
        d.file_number,
        d.file_size,
        d.entry_count,
        d.min_version,
        d.max_version,
        key_range(&d.min_key, &d.max_key)
    )
}

fn edit_json(e: &VersionEdit) -> Value {
    let desc = |d: &RunDesc| {
        json!({
            "level": d.level, "file_number": d.file_number, "file_size": d.file_size,
            "entry_count": d.entry_count, "min_version": d.min_version.get(),
            "max_version": d.max_version.get(), "min_key": escape(&d.min_key),
            "max_key": escape(&d.max_key),
        })
    };
    json!({
        "next_file_number": e.next_file_number,
        "flushed_version": e.flushed_version.map(|v| v.get()),
        "min_log_number": e.min_log_number,
        "time_marks": e.time_marks.iter().map(|(v, t)| json!({"version": v.get(), "micros": t})).collect::<Vec<_>>(),
        "times_pruned_below": e.times_pruned_below.map(|v| v.get()),
        "history_horizon": e.history_horizon.map(|v| v.get()),
        "retention": e.retention.map(|r| json!({
            "window_micros": r.window.map(|d| d.as_micros() as u64),
            "versions_per_key": r.versions_per_key,
        })),
        "add_run": e.added.iter().map(desc).collect::<Vec<_>>(),
        "delete_run": e.deleted.iter().map(|(l, n)| json!({"level": l, "file_number": n})).collect::<Vec<_>>(),
    })
}

pub fn manifest(ctx: &Ctx, out: &mut dyn Write, file: Option<&Path>) -> Result<()> {
    let path = match file {
        Some(f) => f.to_path_buf(),
        None => {
            let db = ctx.db_path()?;
            current_manifest(&RealFs, db)?.ok_or_else(|| {
                CliError::msg(format!(
                    "{} holds no chronokv store (no CURRENT file)",
                    db.display()
                ))
            })?
        }
    };
    let dump = dump_manifest(&RealFs, &path)?;
    let size = std::fs::metadata(&path).map_err(io_at(&path))?.len();
    let state = &dump.state;
    if ctx.json {
        let mut tree = edit_json(&state.snapshot_edit());
        tree["time_marks"] = json!(state
            .times
            .marks()
            .iter()
            .map(|(v, t)| json!({"version": v.get(), "micros": t}))
            .collect::<Vec<_>>());
        tree["times_pruned"] = json!(state.times.is_pruned());
        let v = json!({
            "file": file_name(&path),
            "size": size,
            "edits": dump.frames.iter().map(|f| {
                let mut e = edit_json(&f.edit);
                e["offset"] = json!(f.offset);
                e["len"] = json!(f.len);
                e
            }).collect::<Vec<_>>(),
            "torn_tail": dump.torn_tail.as_ref().map(|(o, r)| json!({"offset": o, "reason": r})),
            "tree": tree,
        });
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "manifest    {} ({}, {size} bytes)",
        file_name(&path),
        plural(dump.frames.len() as u64, "edit")
    )?;
    for (i, f) in dump.frames.iter().enumerate() {
        writeln!(out)?;
        let what = if i == 0 { ", snapshot" } else { "" };
        writeln!(out, "edit {i} @{} ({} bytes{what})", f.offset, f.len)?;
        let e = &f.edit;
        if let Some(n) = e.next_file_number {
            writeln!(out, "  {:<19}{n}", "next_file_number")?;
        }
        if let Some(v) = e.flushed_version {
            writeln!(out, "  {:<19}{v}", "flushed_version")?;
        }
        if let Some(n) = e.min_log_number {
            writeln!(out, "  {:<19}{n}", "min_log_number")?;
        }
        for (l, n) in &e.deleted {
            writeln!(out, "  {:<19}L{l} {n:06}.arrow", "delete_run")?;
        }
        for d in &e.added {
            writeln!(out, "  {:<19}{}", "add_run", run_desc(d))?;
        }
        if !e.time_marks.is_empty() {
            writeln!(out, "  {:<19}{}", "time_marks", marks(&e.time_marks))?;
        }
        if let Some(v) = e.times_pruned_below {
            writeln!(out, "  {:<19}{v}", "times_pruned_below")?;
        }
        if let Some(v) = e.history_horizon {
            writeln!(out, "  {:<19}{v}", "history_horizon")?;
        }
        if let Some(r) = e.retention {
            writeln!(out, "  {:<19}{r}", "retention")?;
        }
    }
    if let Some((o, r)) = &dump.torn_tail {
        writeln!(out)?;
        writeln!(
            out,
            "torn tail @{o}: {r} (an append cut short by a crash; recovery ignores it)"
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "tree: flushed_version {}, next_file_number {}, min_log_number {}, {}",
        state.flushed_version,
        state.next_file_number,
        state.min_log_number,
        plural(state.runs.len() as u64, "run")
    )?;
    for d in state.runs.values() {
        writeln!(out, "  {}", run_desc(d))?;
    }
    writeln!(
        out,
        "  history_horizon {}; time index {}{}",
        state.history_horizon,
        marks(state.times.marks()),
        if state.times.is_pruned() {
            " (pruned)"
        } else {
            ""
        }
    )?;
    match state.retention {
        Some(r) => writeln!(out, "  retention {r}")?,
        None => writeln!(out, "  retention not recorded (a format-1 manifest)")?,
    }
    Ok(())
}

/// `3 marks: v1 at T .. v30 at T` (the first and last; JSON has them all).
fn marks(m: &[(chronokv::Version, u64)]) -> String {
    match (m.first(), m.last()) {
        (Some(a), Some(_)) if m.len() == 1 => format!("1 mark: {} at {}", a.0, time_micros(a.1)),
        (Some(a), Some(b)) => format!(
            "{}: {} at {} .. {} at {}",
            plural(m.len() as u64, "mark"),
            a.0,
            time_micros(a.1),
            b.0,
            time_micros(b.1)
        ),
        _ => "no marks".to_string(),
    }
}
