//! `export --arrow FILE`: a state (now, `--at-version`, `--as-of`), every retained version
//! (`--history`) or the change feed (`--changes --since V`) as one Arrow IPC file, with the
//! store's version and what was exported in the schema metadata.

use crate::data::AtArgs;
use crate::error::{io_at, CliError, Result};
use crate::fmt;
use crate::progress::Bar;
use crate::Ctx;
use chronokv::{Db, RecordBatch, Version};
use clap::Args;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const ROWS: usize = 8192;

#[derive(Args)]
pub struct ExportArgs {
    /// The Arrow IPC file to write.
    #[arg(long, value_name = "FILE")]
    arrow: PathBuf,
    /// Only keys starting with this prefix.
    #[arg(long, value_parser = fmt::bytes_arg)]
    prefix: Option<fmt::BytesArg>,
    /// Every retained version of every key (key order, newest first within a key),
    /// deletes included, instead of one state.
    #[arg(long, conflicts_with_all = ["changes", "at_version", "as_of"])]
    history: bool,
    /// The change feed: every put and delete since --since, in version order.
    #[arg(long, requires = "since", conflicts_with_all = ["at_version", "as_of"])]
    changes: bool,
    /// With --changes: the first version to export (5 or v5).
    #[arg(long, value_name = "V", value_parser = fmt::parse_version, requires = "changes")]
    since: Option<u64>,
    #[command(flatten)]
    at: AtArgs,
}

/// What an export holds: its rows, the store version they are as of, and metadata.
struct Source {
    batches: Box<dyn Iterator<Item = chronokv::Result<RecordBatch>>>,
    version: Version,
    kind: &'static str,
    meta: Vec<(&'static str, String)>,
}

fn prefixed(prefix: &Option<Vec<u8>>, key: &[u8]) -> bool {
    prefix.as_ref().is_none_or(|p| key.starts_with(p))
}

fn source(db: &Db, args: &ExportArgs) -> Result<Source> {
    let prefix = args.prefix.as_ref().map(|p| p.0.clone());
    if args.history {
        let scan = match &prefix {
            Some(p) => db.history_scan(prefix_range(p))?,
            None => db.history_scan::<&[u8], _>(..)?,
        };
        let version = scan.version();
        let rows = scan.map(|r| r.map(|(key, h)| h.into_change(key)));
        return Ok(Source {
            batches: Box::new(chronokv::change_batches(rows, ROWS)),
            version,
            kind: "history",
            meta: Vec::new(),
        });
    }
    if args.changes {
        let since = Version(args.since.unwrap_or(0));
        let feed = db.changes(since..)?;
        let version = feed.last_version();
        let rows = feed.filter(move |r| r.as_ref().map_or(true, |c| prefixed(&prefix, &c.key)));
        return Ok(Source {
            batches: Box::new(chronokv::change_batches(rows, ROWS)),
            version,
            kind: "changes",
            meta: vec![("chronokv.since", since.get().to_string())],
        });
    }
    let snapshot = args.at.snapshot(db)?;
    let version = snapshot.version();
    let iter = match &prefix {
        Some(p) => snapshot.scan_arrow(prefix_range(p), ROWS),
        None => snapshot.scan_arrow::<&[u8], _>(.., ROWS),
    };
    // The batches read through the snapshot's view, which holds its runs; the snapshot
    // itself (the registration that keeps its versions) must live as long.
    let held = std::sync::Arc::new(snapshot);
    let batches = iter.inspect(move |_| {
        let _ = &held;
    });
    Ok(Source {
        batches: Box::new(batches),
        version,
        kind: "state",
        meta: Vec::new(),
    })
}

/// The keys starting with `p`, as a range (the successor of the prefix bounds it).
fn prefix_range(p: &[u8]) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    use std::ops::Bound;
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return (Bound::Included(p.to_vec()), Bound::Excluded(end));
        }
    }
    (Bound::Included(p.to_vec()), Bound::Unbounded)
}

fn write_file(tmp: &Path, source: Source, prefix: Option<&[u8]>) -> Result<u64> {
    let mut meta: HashMap<String, String> = HashMap::new();
    meta.insert("chronokv.version".into(), source.version.get().to_string());
    meta.insert("chronokv.export".into(), source.kind.into());
    if let Some(p) = prefix {
        meta.insert("chronokv.prefix".into(), fmt::escape(p));
    }
    for (k, v) in source.meta {
        meta.insert(k.into(), v);
    }
    let schema = chronokv::export_schema_with(meta);
    let file = std::fs::File::create(tmp).map_err(io_at(tmp))?;
    let mut writer =
        arrow_ipc::writer::FileWriter::try_new(std::io::BufWriter::new(file), &schema)?;
    let bar = Bar::spinner("exporting");
    let mut rows = 0u64;
    for batch in source.batches {
        let batch = batch?.with_schema(schema.clone())?;
        rows += batch.num_rows() as u64;
        bar.inc(batch.num_rows() as u64);
        writer.write(&batch)?;
    }
    writer.finish()?;
    let file = writer
        .into_inner()?
        .into_inner()
        .map_err(|e| CliError::msg(format!("{}: {}", tmp.display(), e.error())))?;
    file.sync_all().map_err(io_at(tmp))?;
    Ok(rows)
}

pub fn export(ctx: &Ctx, out: &mut dyn Write, args: &ExportArgs) -> Result<()> {
    let path = &args.arrow;
    let db = ctx.open_read_only()?;
    let source = source(&db, args)?;
    let (version, kind) = (source.version, source.kind);
    let tmp = path.with_extension("tmp-export");
    let rows = match write_file(&tmp, source, args.prefix.as_ref().map(|p| &p.0[..])) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(io_at(path))?;
    db.close()?;
    let columns: Vec<String> = chronokv::export_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if ctx.json {
        let v = json!({"file": path.display().to_string(), "rows": rows, "version": version.get(),
            "export": kind, "columns": columns});
        writeln!(out, "{v}")?;
    } else {
        let what = match kind {
            "history" => format!("{rows} retained versions up to {version}"),
            "changes" => format!("{rows} changes up to {version}"),
            _ => format!("{rows} live keys as of {version}"),
        };
        writeln!(
            out,
            "exported {what} to {} (columns {})",
            path.display(),
            columns.join(", ")
        )?;
    }
    Ok(())
}
