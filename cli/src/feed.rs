//! The change feed and restores: `changes --since V [--follow]`, `restore-to`.

use crate::data::AtArgs;
use crate::error::{CliError, Result};
use crate::fmt::{self, escape};
use crate::Ctx;
use chronokv::{At, Change, Version};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Args)]
pub struct ChangesArgs {
    /// The first version to print (5 or v5): a version within the retained history, or
    /// the next one to be committed (with --follow).
    #[arg(long, value_name = "V", value_parser = fmt::parse_version)]
    since: u64,
    /// Stop before this version (default: the latest when the command starts).
    #[arg(long, value_name = "V", value_parser = fmt::parse_version, conflicts_with = "follow")]
    until: Option<u64>,
    /// Keep waiting for new commits and print them as they are made, until Ctrl-C, until
    /// stdout closes, or until --limit changes were printed. Writes nothing: the store is
    /// opened read-only and refreshed every --interval-ms (Db::refresh), so this follows
    /// the process that has it open for writing. A follower that falls behind the store's
    /// history window fails (the versions it had not printed are no longer retained).
    #[arg(long)]
    follow: bool,
    /// With --follow: how long to wait between refreshes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200, requires = "follow")]
    interval_ms: u64,
    /// Print at most this many changes.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One change as a line: tab-separated, or a JSON object with `--json` (JSON lines, so a
/// follower can stream them).
fn print_change(ctx: &Ctx, out: &mut dyn Write, c: &Change) -> Result<()> {
    let time = fmt::time_micros(micros(c.time));
    if ctx.json {
        let line = json!({
            "version": c.version.get(),
            "time": time,
            "kind": if c.value.is_some() { "put" } else { "delete" },
            "key": escape(&c.key),
            "value": c.value.as_ref().map(|v| escape(v)),
        });
        writeln!(out, "{line}")?;
    } else {
        let (kind, value) = match &c.value {
            Some(v) => ("put", escape(v)),
            None => ("delete", String::new()),
        };
        writeln!(
            out,
            "{}\t{time}\t{kind}\t{}\t{value}",
            c.version,
            escape(&c.key)
        )?;
    }
    Ok(())
}

pub fn changes(ctx: &Ctx, out: &mut dyn Write, args: &ChangesArgs) -> Result<()> {
    let mut db = ctx.open_read_only()?;
    let limit = args.limit.unwrap_or(u64::MAX);
    let since = Version(args.since);
    if args.follow {
        let interval = Duration::from_millis(args.interval_ms);
        follow(ctx, out, &mut db, since, limit, interval)?;
    } else {
        // A read-only handle sees the commits made before it opened, and no later ones.
        let latest = db.latest_version();
        if since.0 > latest.0 + 1 {
            return Err(CliError::msg(format!(
                "changes: {since} is not committed yet (the latest is {latest}); --follow waits for it"
            )));
        }
        let feed = match args.until {
            Some(u) => db.changes(since..Version(u))?,
            None => db.changes(since..)?,
        };
        for c in feed.take(usize::try_from(limit).unwrap_or(usize::MAX)) {
            print_change(ctx, out, &c?)?;
        }
    }
    db.close()?;
    Ok(())
}

/// Prints every change from `since` on as the read-only `db` comes to see it: the changes
/// up to its latest version, then a wait and a refresh, until `limit` were printed. A
/// refresh swaps in a whole later state (never half a batch), so the versions printed are
/// consecutive. A `since` beyond the latest version is waited for.
fn follow(
    ctx: &Ctx,
    out: &mut dyn Write,
    db: &mut chronokv::Db,
    since: Version,
    limit: u64,
    interval: Duration,
) -> Result<()> {
    let mut next = since.0;
    let mut printed = 0u64;
    while printed < limit {
        let latest = db.latest_version();
        if next <= latest.0 {
            let feed = db.changes(Version(next)..=latest)?;
            for c in feed.take(usize::try_from(limit - printed).unwrap_or(usize::MAX)) {
                print_change(ctx, out, &c?)?;
                printed += 1;
            }
            next = latest.0 + 1;
        }
        // Flushing between refreshes also notices a closed stdout.
        out.flush()?;
        if printed < limit {
            std::thread::sleep(interval);
            db.refresh()?;
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    at: AtArgs,
}

pub fn restore_to(ctx: &Ctx, out: &mut dyn Write, args: &RestoreArgs) -> Result<()> {
    let at = match args.at.at() {
        At::Latest => {
            return Err(CliError::msg(
                "restore-to needs the state to restore: pass --at-version V or --as-of TIME",
            ))
        }
        at => at,
    };
    let db = ctx.open(false)?;
    let report = db.restore_to_with(at, chronokv::RestoreOptions::default())?;
    db.close()?;
    if ctx.json {
        let v = json!({
            "restored": report.restored.get(),
            "version": report.version.get(),
            "commits": report.commits,
            "puts": report.puts,
            "deletes": report.deletes,
        });
        writeln!(out, "{v}")?;
    } else if report.commits == 0 {
        writeln!(
            out,
            "the present already equals {}; nothing written (latest {})",
            report.restored, report.version
        )?;
    } else {
        writeln!(
            out,
            "restored to {}: {} and {} in {}; latest {}",
            report.restored,
            fmt::plural(report.puts, "put"),
            fmt::plural(report.deletes, "delete"),
            fmt::plural(report.commits as u64, "commit"),
            report.version
        )?;
    }
    Ok(())
}
