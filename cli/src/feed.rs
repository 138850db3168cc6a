//! The change feed and restores: `changes --since V [--follow]`, `restore-to`.

use crate::data::AtArgs;
use crate::error::{CliError, Result};
use crate::fmt::{self, escape};
use crate::Ctx;
use chronokv::{At, Change, Received, Version};
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
    /// stdout closes, or until --limit changes were printed. The store admits one writing
    /// process at a time, so this follows the commits of the process holding it (this one).
    /// Writes: with --follow the store is opened for writing (without it, read-only).
    #[arg(long)]
    follow: bool,
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
    // A read-only handle sees the commits made before it opened, and no later ones.
    let db = if args.follow {
        ctx.open(false)?
    } else {
        ctx.open_read_only()?
    };
    let limit = args.limit.unwrap_or(u64::MAX);
    let since = Version(args.since);
    let mut printed = 0u64;
    if args.follow {
        let mut sub = db.subscribe(since)?;
        while printed < limit {
            // A bounded wait, so the loop notices a closed stdout between commits.
            match sub.recv_timeout(Duration::from_millis(500))? {
                Received::Change(c) => {
                    print_change(ctx, out, &c)?;
                    printed += 1;
                    out.flush()?;
                }
                Received::Timeout => out.flush()?,
                Received::Ended => break,
            }
        }
    } else {
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
