//! `chronokv retention show|set`: the store's history contract, as its manifest records it.

use crate::error::{CliError, Result};
use crate::Ctx;
use chronokv::{Db, Retention};
use clap::Subcommand;
use serde_json::{json, Value};
use std::io::Write;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Print the recorded history contract and the oldest readable version.
    Show,
    /// Change the recorded contract: --history-retention DURATION (or none) and/or
    /// --history-versions N. Growing is always allowed; shrinking drops history for good at
    /// the next compaction and needs --shrink. Writes: opens the store for writing.
    Set {
        /// Confirm a change that keeps less history than recorded.
        #[arg(long)]
        shrink: bool,
    },
}

pub fn retention(ctx: &Ctx, out: &mut dyn Write, command: RetentionCommand) -> Result<()> {
    // Opened without naming retention: `set` must not grow (or refuse) at open time.
    let db = match command {
        RetentionCommand::Show => ctx.open_read_only()?,
        RetentionCommand::Set { .. } => ctx.open_as_stored()?,
    };
    let result = match command {
        RetentionCommand::Show => show(ctx, out, &db),
        RetentionCommand::Set { shrink } => set(ctx, out, &db, shrink),
    };
    db.close()?;
    result
}

fn describe(r: &Retention) -> (String, String) {
    let window = r
        .window
        .map_or_else(|| "none".to_string(), chronokv::format_duration);
    (window, r.versions_per_key.to_string())
}

fn contract_json(r: &Retention) -> Value {
    json!({
        "window": r.window.map(chronokv::format_duration),
        "window_micros": r.window.map(|d| d.as_micros() as u64),
        "versions_per_key": r.versions_per_key,
    })
}

fn show(ctx: &Ctx, out: &mut dyn Write, db: &Db) -> Result<()> {
    let r = db.history_retention();
    let oldest = db.oldest_readable_version();
    if ctx.json {
        let mut v = contract_json(&r);
        v["oldest_readable_version"] = json!(oldest.get());
        writeln!(out, "{v}")?;
        return Ok(());
    }
    let (window, versions) = describe(&r);
    writeln!(out, "history_retention  {window}")?;
    writeln!(out, "history_versions   {versions}")?;
    writeln!(out, "oldest_readable    {oldest}")?;
    Ok(())
}

fn set(ctx: &Ctx, out: &mut dyn Write, db: &Db, shrink: bool) -> Result<()> {
    let (window, versions) = ctx.named_retention();
    if window.is_none() && versions.is_none() {
        return Err(CliError::msg(
            "retention set: name --history-retention DURATION (or none) and/or \
             --history-versions N",
        ));
    }
    let old = db.history_retention();
    let new = Retention::new(
        window.map_or(old.window, Some),
        versions.unwrap_or(old.versions_per_key),
    );
    let (ow, ov) = describe(&old);
    let (nw, nv) = describe(&new);
    if !new.covers(&old) && !shrink {
        return Err(CliError::msg(format!(
            "retention set: this shrinks the history kept (window {ow} -> {nw}, versions per \
             key {ov} -> {nv}); versions outside it are dropped for good by the next \
             compaction. Pass --shrink to confirm"
        )));
    }
    if new != old {
        db.set_history_retention(new)?;
    }
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"changed": new != old, "before": contract_json(&old), "after": contract_json(&new)})
        )?;
    } else if new == old {
        writeln!(
            out,
            "history retention unchanged: window {nw}, {nv} versions per key"
        )?;
    } else {
        writeln!(
            out,
            "history retention changed: window {ow} -> {nw}, versions per key {ov} -> {nv}"
        )?;
    }
    Ok(())
}
