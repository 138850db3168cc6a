//! Reading and writing data: get, put, delete, scan, load.

use crate::error::{io_at, CliError, Result};
use crate::fmt::{self, escape};
use crate::progress::Bar;
use crate::Ctx;
use chronokv::{Db, Durability, WriteBatch};
use clap::Args;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Which state a read sees: the latest, or a past one.
#[derive(Args)]
pub struct AtArgs {
    /// Read the state right after this version's commit (5 or v5): a version within the
    /// store's retained history (`chronokv retention show`).
    #[arg(long, value_name = "V", conflicts_with = "as_of", value_parser = fmt::parse_version)]
    at_version: Option<u64>,
    /// Read the state as of this time: RFC 3339 with an offset (2024-05-01T12:00:00Z,
    /// 2024-05-01T14:00:00+02:00), a date (2024-05-01, midnight UTC) or Unix seconds
    /// (1714564800); within the store's retained history.
    #[arg(long, value_name = "TIME", value_parser = fmt::parse_time)]
    as_of: Option<u64>,
}

impl AtArgs {
    /// The state the flags name.
    pub fn at(&self) -> chronokv::At {
        match (self.at_version, self.as_of) {
            (Some(v), _) => chronokv::At::Version(chronokv::Version(v)),
            (None, Some(micros)) => {
                chronokv::At::Time(std::time::UNIX_EPOCH + std::time::Duration::from_micros(micros))
            }
            (None, None) => chronokv::At::Latest,
        }
    }

    pub fn snapshot(&self, db: &Db) -> Result<chronokv::Snapshot> {
        Ok(match self.at() {
            chronokv::At::Version(v) => db.snapshot_at(v)?,
            chronokv::At::Time(t) => db.snapshot_as_of(t)?,
            chronokv::At::Latest => db.snapshot(),
        })
    }
}

pub fn get(ctx: &Ctx, out: &mut dyn Write, key: &[u8], at: &AtArgs) -> Result<()> {
    let db = ctx.open_read_only()?;
    let snapshot = at.snapshot(&db)?;
    let value = snapshot.get(key)?;
    drop(snapshot);
    db.close()?;
    let Some(value) = value else {
        return Err(CliError::msg(format!("key {:?} not found", escape(key))));
    };
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"key": escape(key), "value": escape(&value)})
        )?;
    } else {
        writeln!(out, "{}", escape(&value))?;
    }
    Ok(())
}

/// `put` (with a value) or `delete` (without).
pub fn put(
    ctx: &Ctx,
    out: &mut dyn Write,
    key: &[u8],
    value: Option<&[u8]>,
    sync: bool,
) -> Result<()> {
    let db = ctx.open(value.is_some())?;
    let mut batch = WriteBatch::new();
    match value {
        Some(v) => batch.put(key, v),
        None => batch.delete(key),
    };
    let durability = if sync {
        Durability::Sync
    } else {
        Durability::Buffered
    };
    let version = db.write_with(batch, durability)?;
    db.close()?;
    if ctx.json {
        writeln!(out, "{}", json!({"version": version.get()}))?;
    } else {
        writeln!(out, "{version}")?;
    }
    Ok(())
}

#[derive(Args)]
pub struct ScanArgs {
    /// Start at this key (inclusive).
    #[arg(long, value_parser = fmt::bytes_arg)]
    from: Option<fmt::BytesArg>,
    /// Stop before this key (exclusive).
    #[arg(long, value_parser = fmt::bytes_arg)]
    to: Option<fmt::BytesArg>,
    /// Only keys starting with this prefix.
    #[arg(long, value_parser = fmt::bytes_arg, conflicts_with_all = ["from", "to"])]
    prefix: Option<fmt::BytesArg>,
    /// Print at most this many pairs.
    #[arg(long)]
    limit: Option<usize>,
    /// Descending key order (last key first).
    #[arg(long)]
    reverse: bool,
    #[command(flatten)]
    at: AtArgs,
}

pub fn scan(ctx: &Ctx, out: &mut dyn Write, args: &ScanArgs) -> Result<()> {
    use std::ops::Bound;
    let db = ctx.open_read_only()?;
    let snapshot = args.at.snapshot(&db)?;
    let iter = match &args.prefix {
        Some(p) => snapshot.prefix(&p.0),
        None => {
            let lo = args
                .from
                .as_ref()
                .map_or(Bound::Unbounded, |b| Bound::Included(&b.0));
            let hi = args
                .to
                .as_ref()
                .map_or(Bound::Unbounded, |b| Bound::Excluded(&b.0));
            snapshot.scan::<Vec<u8>, _>((lo, hi))
        }
    };
    let iter: Box<dyn Iterator<Item = chronokv::Result<_>>> = if args.reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    if ctx.json {
        write!(out, "[")?;
    }
    let mut n = 0;
    for pair in iter.take(limit) {
        let (k, v) = pair?;
        if ctx.json {
            let sep = if n == 0 { "" } else { "," };
            write!(
                out,
                "{sep}\n  {}",
                json!({"key": escape(&k), "value": escape(&v)})
            )?;
        } else {
            writeln!(out, "{}\t{}", escape(&k), escape(&v))?;
        }
        n += 1;
    }
    if ctx.json {
        writeln!(out, "{}]", if n == 0 { "" } else { "\n" })?;
    }
    drop(snapshot);
    db.close()?;
    Ok(())
}

pub fn history(ctx: &Ctx, out: &mut dyn Write, key: &[u8]) -> Result<()> {
    let db = ctx.open_read_only()?;
    let entries = db.history(key)?;
    db.close()?;
    let micros = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    };
    if ctx.json {
        let v: Vec<serde_json::Value> = entries
            .iter()
            .map(|h| {
                json!({
                    "version": h.version.get(),
                    "time": fmt::time_micros(micros(h.time)),
                    "value": h.value.as_ref().map(|v| escape(v)),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    if entries.is_empty() {
        writeln!(out, "no retained versions of {:?}", escape(key))?;
        return Ok(());
    }
    let mut t = crate::fmt::Table::new(&["version", "time", "value"]);
    for h in &entries {
        t.row(vec![
            h.version.to_string(),
            fmt::time_micros(micros(h.time)),
            h.value
                .as_ref()
                .map_or_else(|| "(deleted)".to_string(), |v| escape(v)),
        ]);
    }
    t.print(out, "")?;
    Ok(())
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct LoadSource {
    /// CSV with two columns, key and value (`-` for stdin; see --header).
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// JSON lines: {"key": "...", "value": "..."} (a null value deletes the key).
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// Generate N keys `key000000000000`, `key000000000001`, ...
    #[arg(long, value_name = "N")]
    generate: Option<u64>,
}

#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    source: LoadSource,
    /// Value size in bytes for --generate.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Entries per atomic batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// The CSV file's first line is a header: skip it.
    #[arg(long)]
    header: bool,
}

/// The splitmix64 finalizer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn open_input(path: &Path) -> Result<Box<dyn Read>> {
    if path == Path::new("-") {
        Ok(Box::new(std::io::stdin()))
    } else {
        Ok(Box::new(std::fs::File::open(path).map_err(io_at(path))?))
    }
}

struct Loader<'a> {
    db: &'a Db,
    batch: WriteBatch,
    in_batch: usize,
    batch_size: usize,
    puts: u64,
    deletes: u64,
    bar: Bar,
}

impl Loader<'_> {
    fn add(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(v) => {
                self.batch.put(key, v);
                self.puts += 1;
            }
            None => {
                self.batch.delete(key);
                self.deletes += 1;
            }
        }
        self.in_batch += 1;
        if self.in_batch >= self.batch_size {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_batch > 0 {
            self.db.write(std::mem::take(&mut self.batch))?;
            self.bar.inc(self.in_batch as u64);
            self.in_batch = 0;
        }
        Ok(())
    }
}

pub fn load(ctx: &Ctx, out: &mut dyn Write, args: &LoadArgs) -> Result<()> {
    let db = ctx.open(true)?;
    let src = &args.source;
    let bar = match src.generate {
        Some(n) => Bar::count("loading", n),
        None => Bar::spinner("loading"),
    };
    let mut l = Loader {
        db: &db,
        batch: WriteBatch::new(),
        in_batch: 0,
        batch_size: args.batch.max(1),
        puts: 0,
        deletes: 0,
        bar,
    };
    if let Some(n) = src.generate {
        let mut value = vec![0u8; args.value_size];
        for i in 0..n {
            let key = format!("key{i:012}");
            // Deterministic, not very compressible: a splitmix64 stream whose start is the
            // mixed index (so neighbouring keys' streams do not overlap).
            let mut x = mix64(i);
            for chunk in value.chunks_mut(8) {
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let z = mix64(x);
                for (b, v) in chunk.iter_mut().zip(z.to_le_bytes()) {
                    // Printable, so that scan output stays readable.
                    *b = b'a' + v % 26;
                }
            }
            l.add(key.as_bytes(), Some(&value))?;
        }
    } else if let Some(path) = &src.csv {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(args.header)
            .flexible(false)
            .from_reader(open_input(path)?);
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
            let line = rec.position().map_or(i as u64 + 1, |p| p.line());
            if rec.len() != 2 {
                return Err(CliError::msg(format!(
                    "{} line {line}: expected 2 fields (key,value), found {}",
                    path.display(),
                    rec.len()
                )));
            }
            let at = |e: String| CliError::msg(format!("{} line {line}: {e}", path.display()));
            let key = fmt::unescape(&rec[0]).map_err(at)?;
            let value = fmt::unescape(&rec[1]).map_err(at)?;
            l.add(&key, Some(&value))?;
        }
    } else if let Some(path) = &src.jsonl {
        let reader = BufReader::new(open_input(path)?);
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(io_at(path))?;
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let at = |e: String| CliError::msg(format!("{} line {n}: {e}", path.display()));
            let v: Value = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
            let key = v
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| at("expected an object with a string \"key\"".into()))?;
            let key = fmt::unescape(key).map_err(at)?;
            match v.get("value") {
                Some(Value::String(s)) => {
                    let value = fmt::unescape(s).map_err(at)?;
                    l.add(&key, Some(&value))?;
                }
                Some(Value::Null) => l.add(&key, None)?,
                _ => return Err(at("\"value\" must be a string, or null to delete".into())),
            }
        }
    }
    l.commit()?;
    l.bar.finish();
    let (puts, deletes) = (l.puts, l.deletes);
    let version = db.latest_version();
    db.close()?;
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"puts": puts, "deletes": deletes, "version": version.get()})
        )?;
    } else {
        writeln!(
            out,
            "loaded {puts} puts and {deletes} deletes; latest version {version}"
        )?;
    }
    Ok(())
}
