//! `chronokv-bench`: runs the workloads on each engine and reports them side by side.
//!
//! Each engine runs in a child process of its own (this binary re-executed with the hidden
//! `--child ENGINE`), so its peak RSS and I/O counters are its own. The child prints one
//! line per result (`EngineReport::to_lines`); the parent prints the markdown table and
//! writes `results.md`, `results.csv`, `engines.csv` and `chart.svg` into `--out`.

use chronokv_bench::report::{self, EngineReport};
use chronokv_bench::workload::{self, Settings, Workload};
use chronokv_bench::BenchResult;
use clap::Parser;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Parser, Debug, Clone)]
#[command(about = "db_bench- and YCSB-style workloads on chronokv, RocksDB and fjall")]
struct Args {
    /// Keys in the table.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Operations of the read, overwrite and mixed workloads (default: --keys).
    #[arg(long)]
    ops: Option<u64>,
    /// Value bytes (keys are 16 bytes).
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Synced puts per thread in fillsync1 and fillsync4.
    #[arg(long, default_value_t = 2_000)]
    sync_ops: u64,
    /// Engines, comma-separated (rocksdb and fjall need the `peers` feature).
    #[arg(long, value_delimiter = ',', default_value = "chronokv")]
    engines: Vec<String>,
    /// Workloads, comma-separated, or `all`.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    workloads: Vec<String>,
    /// Where databases (one fresh directory per engine and workload) and reports go.
    #[arg(long, default_value = "bench-data")]
    out: PathBuf,
    /// Internal: run one engine and print its results as report lines.
    #[arg(long, hide = true)]
    child: Option<String>,
}

impl Args {
    fn settings(&self) -> Settings {
        Settings {
            keys: self.keys,
            ops: self.ops.unwrap_or(self.keys),
            value_size: self.value_size,
            sync_ops: self.sync_ops,
        }
    }

    fn workloads(&self) -> BenchResult<Vec<Workload>> {
        if self.workloads.iter().any(|w| w == "all") {
            return Ok(workload::ALL.to_vec());
        }
        self.workloads
            .iter()
            .map(|w| Workload::parse(w).ok_or_else(|| format!("unknown workload {w}").into()))
            .collect()
    }
}

fn main() {
    let args = Args::parse();
    let result = match &args.child {
        Some(engine) => child(&args, engine),
        None => parent(&args),
    };
    if let Err(e) = result {
        eprintln!("chronokv-bench: {e}");
        std::process::exit(1);
    }
}

/// Runs every workload on `engine`, printing each result line as soon as it is measured.
fn child(args: &Args, engine: &str) -> BenchResult<()> {
    let settings = args.settings();
    let stdout = std::io::stdout();
    let sampler = chronokv_bench::sys::RssSampler::start(std::time::Duration::from_millis(5));
    let (mut peak, mut parts) = (0u64, (0u64, 0u64));
    for w in args.workloads()? {
        chronokv_bench::sys::reset_peak_rss();
        let dir = args.out.join(engine).join(w.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
        let (outcome, amp) = workload::run(engine, &dir, w, &settings)?;
        let w_peak = chronokv_bench::sys::peak_rss_bytes().unwrap_or_default();
        let (anon, file) = sampler.take_peaks();
        (peak, parts) = (peak.max(w_peak), (parts.0.max(anon), parts.1.max(file)));
        let mib = |b: u64| b >> 20;
        eprintln!(
            "  {engine:>8} {:<16} {:>10} {} ({} ops in {:.2} s; peak RSS {} MiB, anon {}, file {})",
            w.name(),
            report::human(outcome.rate()),
            w.unit(),
            outcome.ops,
            outcome.seconds,
            mib(w_peak),
            mib(anon),
            mib(file),
        );
        let r = EngineReport {
            engine: engine.to_string(),
            outcomes: vec![outcome],
            amp,
            peak_rss: None,
            peak_rss_parts: None,
        };
        let mut lock = stdout.lock();
        lock.write_all(r.to_lines().as_bytes())?;
        lock.flush()?;
        std::fs::remove_dir_all(&dir)?;
    }
    // The per-workload peaks' maximum: each workload reset the kernel's peak.
    let r = EngineReport {
        peak_rss: Some(peak.max(chronokv_bench::sys::peak_rss_bytes().unwrap_or_default())),
        peak_rss_parts: Some(parts),
        ..EngineReport::default()
    };
    std::io::stdout().write_all(r.to_lines().as_bytes())?;
    Ok(())
}

/// Runs one child per engine and writes the reports.
fn parent(args: &Args) -> BenchResult<()> {
    args.workloads()?; // reject bad names before starting anything
    let available = chronokv_bench::engine::available();
    if let Some(e) = args
        .engines
        .iter()
        .find(|e| !available.contains(&e.as_str()))
    {
        return Err(format!(
            "engine {e} is not in this build (available: {}; rocksdb and fjall need \
             cargo run --release -p chronokv-bench --features peers)",
            available.join(", ")
        )
        .into());
    }
    std::fs::create_dir_all(&args.out)?;
    let exe = std::env::current_exe()?;
    let mut reports = Vec::new();
    for engine in &args.engines {
        eprintln!("== {engine}");
        let output = Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .arg("--child")
            .arg(engine)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let report = EngineReport::from_lines(engine, &text)?;
        if !output.status.success() {
            eprintln!(
                "chronokv-bench: {engine} failed ({}); keeping its {} results",
                output.status,
                report.outcomes.len()
            );
        }
        reports.push(report);
    }
    let table = report::markdown(&reports);
    println!("{table}");
    let write = |name: &str, text: String| std::fs::write(args.out.join(name), text);
    write("results.md", table)?;
    write("results.csv", report::results_csv(&reports))?;
    write("engines.csv", report::engines_csv(&reports))?;
    write("chart.svg", report::svg(&reports))?;
    eprintln!(
        "wrote results.md, results.csv, engines.csv and chart.svg in {}",
        args.out.display()
    );
    Ok(())
}
