//! `compaction-sim`: run a compaction strategy against a modelled workload, without I/O.
//!
//! ```text
//! compaction-sim --strategy leveled|tiered --keys N --overwrite-fraction F \
//!                --flush-bytes B --entry-bytes E --seed S
//! ```
//!
//! Every flag is optional; the defaults are 1M keys, 50% overwrite, 64 MiB flushes,
//! 116-byte entries, seed 1, leveled. The strategies use their default settings.

use std::process::ExitCode;

use chronokv_compaction::sim::{simulate, SimConfig};
use chronokv_compaction::{Leveled, Strategy, Tiered};

const USAGE: &str = "usage: compaction-sim [--strategy leveled|tiered] [--keys N] \
[--overwrite-fraction F] [--flush-bytes B] [--entry-bytes E] [--seed S]";

fn parse(args: &[String]) -> Result<(Box<dyn Strategy>, SimConfig), String> {
    let mut cfg = SimConfig::default();
    let mut strategy: Box<dyn Strategy> = Box::new(Leveled::default());
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--strategy" => {
                strategy = match value.as_str() {
                    "leveled" => Box::new(Leveled::default()),
                    "tiered" => Box::new(Tiered::default()),
                    other => return Err(format!("unknown strategy {other}")),
                }
            }
            "--keys" => cfg.keys = value.parse().map_err(|e| bad(&e))?,
            "--overwrite-fraction" => {
                cfg.overwrite_fraction = value.parse().map_err(|e| bad(&e))?
            }
            "--flush-bytes" => cfg.flush_bytes = value.parse().map_err(|e| bad(&e))?,
            "--entry-bytes" => cfg.entry_bytes = value.parse().map_err(|e| bad(&e))?,
            "--seed" => cfg.seed = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((strategy, cfg))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match parse(&args) {
        Ok((strategy, cfg)) => {
            println!(
                "keys {} overwrite {} flush {} B entry {} B seed {}",
                cfg.keys, cfg.overwrite_fraction, cfg.flush_bytes, cfg.entry_bytes, cfg.seed
            );
            print!("{}", simulate(strategy.as_ref(), &cfg));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compaction-sim: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
