//! `chronokv`: inspect and operate chronokv stores. See `chronokv --help` and README.md.
//!
//! Output goes to stdout (tables, or JSON with `--json`); progress bars and errors go to
//! stderr. An error is one line, `chronokv: <error>`, and a non-zero exit status (1; 2 for
//! a bad command line); a corrupt file is named with the byte offset of the damage.

mod admin;
mod data;
mod demo;
mod dump;
mod error;
mod export;
mod feed;
mod fmt;
mod inspect;
mod progress;
mod retention;

use chronokv::{Db, Options};
use clap::{Parser, Subcommand};
use error::{CliError, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "chronokv",
    version,
    about = "Inspect and operate chronokv stores",
    long_about = "Inspect and operate chronokv stores.\n\n\
        Keys and values are text: UTF-8, with \\xNN for any byte and \\\\ for a backslash \
        (the same escapes the output uses, so output can be fed back in).\n\n\
        Reading commands (get, scan, history, changes (also --follow), inspect, verify, \
        export, checkpoint, retention show, dump-*, backup create/list/verify) write nothing \
        to the store: they open \
        it read-only (Db::open_read_only), so they work while another process has it \
        open, and leave a closed store byte-for-byte unchanged. Commands that write say so \
        in their help (\"Writes:\"); they open the store as Db::open does (recovery, which \
        may flush the WAL and rewrite the manifest) and need it not to be open elsewhere."
)]
struct Cli {
    /// The database directory.
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Print tabular output as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// The history window (90s, 15m, 24h, 7d, or none), like Options::history_retention.
    /// Not needed to read: the store records its contract and every command keeps it.
    /// With a writing command, naming a longer one than recorded records it and a shorter
    /// one is refused (use `retention set --shrink`); reading commands record nothing.
    /// With `retention set`, the value to set.
    #[arg(long, global = true, value_name = "DURATION", value_parser = fmt::parse_duration)]
    history_retention: Option<std::time::Duration>,
    /// Keep every key's newest N versions (Options::history_versions_per_key); recorded
    /// like --history-retention.
    #[arg(long, global = true, value_name = "N")]
    history_versions: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the value of a key (now, or at a past version or time).
    Get {
        #[arg(value_parser = fmt::bytes_arg)]
        key: fmt::BytesArg,
        #[command(flatten)]
        at: data::AtArgs,
    },
    /// Set a key to a value. Writes: opens the store for writing, and creates it if
    /// missing (saying so on stderr).
    Put {
        #[arg(value_parser = fmt::bytes_arg)]
        key: fmt::BytesArg,
        #[arg(value_parser = fmt::bytes_arg)]
        value: fmt::BytesArg,
        /// Fsync the WAL before returning.
        #[arg(long)]
        sync: bool,
    },
    /// Delete a key. Writes: opens the store for writing.
    Delete {
        #[arg(value_parser = fmt::bytes_arg)]
        key: fmt::BytesArg,
        /// Fsync the WAL before returning.
        #[arg(long)]
        sync: bool,
    },
    /// List live keys and values in key order (now, or at a past version or time).
    Scan(data::ScanArgs),
    /// Every retained version of a key, newest first, with commit times.
    History {
        #[arg(value_parser = fmt::bytes_arg)]
        key: fmt::BytesArg,
    },
    /// Show the tree: levels, runs, sizes, entries and tombstones, key and version ranges,
    /// amplification.
    Inspect,
    /// Print a run file: properties, block index and entries (every column).
    DumpRun {
        file: PathBuf,
        /// Print at most this many entries (all by default).
        #[arg(long)]
        limit: Option<usize>,
        /// Print properties and the block index only.
        #[arg(long)]
        no_entries: bool,
    },
    /// Print a WAL segment: records with log number, versions, commit time and entries.
    DumpWal {
        file: PathBuf,
        /// The segment's log number, if the file name does not carry it (`000007.wal`).
        #[arg(long)]
        log_number: Option<u64>,
    },
    /// Print the manifest's version edits in order, and the tree they build.
    DumpManifest {
        /// A manifest file (default: the one the store's CURRENT names).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Check every checksum and every cross-reference of a store; lists every problem
    /// found. Writes nothing: works while another process has the store open, and falls
    /// back to reading the files directly when the store does not open (then under the
    /// store's LOCK, whose file it creates if missing).
    Verify,
    /// Compact the whole store (or a key range) now, then wait for background compaction.
    /// Writes: opens the store for writing.
    Compact {
        #[arg(long, value_parser = fmt::bytes_arg)]
        from: Option<fmt::BytesArg>,
        #[arg(long, value_parser = fmt::bytes_arg)]
        to: Option<fmt::BytesArg>,
    },
    /// Write a consistent, openable copy of the store into DIR (hard links where possible).
    /// Writes only DIR: the store is opened read-only.
    Checkpoint { dir: PathBuf },
    /// The store's history contract (window, versions per key): show it (read-only), or
    /// set it (writes).
    Retention {
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
    /// Incremental backups: create (reads the store read-only, writes only the backup
    /// directory), list, verify, restore, delete (these do not open the store).
    Backup {
        #[command(subcommand)]
        command: admin::BackupCommand,
    },
    /// Export as an Arrow IPC file (columns key, value, version, time, deleted): the live
    /// contents now or at --at-version/--as-of, every retained version (--history) or the
    /// change feed (--changes --since V); --prefix narrows any of them. The schema
    /// metadata holds the store version (chronokv.version) and the kind (chronokv.export).
    Export(export::ExportArgs),
    /// Print the change feed: every put and delete from --since on, in version order, one
    /// per line (version, time, put/delete, key, value; JSON lines with --json).
    Changes(feed::ChangesArgs),
    /// Make the present equal to a past state (--at-version V or --as-of TIME) with new
    /// commits: puts for keys that differ, deletes for keys that did not exist then. The
    /// history in between stays readable. One atomic commit when the writes fit 64 MiB;
    /// a larger restore commits key range after key range. Writes: opens the store for
    /// writing.
    RestoreTo(feed::RestoreArgs),
    /// Bulk-load key/value pairs from CSV or JSON lines, or generate them. Writes: opens
    /// the store for writing, and creates it if missing (saying so on stderr).
    Load(data::LoadArgs),
    /// Build a sample store (recreated at each run) and show writes, deletes, a batch, reads,
    /// compaction and inspect output. Writes: deletes and recreates PATH.
    Demo {
        /// Where to build it.
        #[arg(default_value = "chronokv-demo")]
        path: PathBuf,
    },
}

/// What the subcommands share: the parsed global options.
pub struct Ctx {
    db: Option<PathBuf>,
    pub json: bool,
    history_retention: Option<std::time::Duration>,
    history_versions: Option<usize>,
}

impl Ctx {
    /// The `--db` path, required by the command.
    pub fn db_path(&self) -> Result<&Path> {
        self.db
            .as_deref()
            .ok_or_else(|| CliError::msg("this command needs the store: pass --db PATH"))
    }

    /// Opens the store; `create` allows a new one.
    pub fn open(&self, create: bool) -> Result<Db> {
        self.open_with(self.options(create))
    }

    fn open_with(&self, opts: Options) -> Result<Db> {
        let path = self.db_path()?;
        let exists = has_store(path);
        if !opts.create_if_missing && !exists {
            return Err(no_store(path));
        }
        let db = Db::open(path, opts)?;
        if !exists {
            // A mistyped --db must not go unnoticed.
            eprintln!("created a new store at {}", path.display());
        }
        Ok(db)
    }

    /// Opens an existing store read-only (`Db::open_read_only`): no lock, nothing written,
    /// so it works on a store another process has open, and leaves a closed one unchanged.
    /// Retention flags are not recorded (the store's own contract applies).
    pub fn open_read_only(&self) -> Result<Db> {
        let path = self.db_path()?;
        if !has_store(path) {
            return Err(no_store(path));
        }
        Ok(Db::open_read_only(path, self.options(false))?)
    }

    /// The options stores are opened with: retention as `--history-retention` and
    /// `--history-versions` name it, or as the store records it.
    pub fn options(&self, create: bool) -> Options {
        Options {
            create_if_missing: create,
            history_retention: self.history_retention,
            history_versions_per_key: self.history_versions,
            ..Options::default()
        }
    }

    /// Opens an existing store with its recorded retention, whatever the flags name.
    pub fn open_as_stored(&self) -> Result<Db> {
        self.open_with(Options {
            history_retention: None,
            history_versions_per_key: None,
            ..self.options(false)
        })
    }

    /// The retention the flags name: (window, versions per key).
    pub fn named_retention(&self) -> (Option<std::time::Duration>, Option<usize>) {
        (self.history_retention, self.history_versions)
    }
}

/// True when `path` holds a store (its CURRENT file).
fn has_store(path: &Path) -> bool {
    path.join("CURRENT").exists()
}

fn no_store(path: &Path) -> CliError {
    CliError::msg(format!(
        "{} holds no chronokv store (no CURRENT file)",
        path.display()
    ))
}

fn run(cli: Cli, out: &mut dyn Write) -> Result<()> {
    let ctx = Ctx {
        db: cli.db,
        json: cli.json,
        history_retention: cli.history_retention,
        history_versions: cli.history_versions,
    };
    match cli.command {
        Command::Get { key, at } => data::get(&ctx, out, &key.0, &at),
        Command::History { key } => data::history(&ctx, out, &key.0),
        Command::Put { key, value, sync } => data::put(&ctx, out, &key.0, Some(&value.0), sync),
        Command::Delete { key, sync } => data::put(&ctx, out, &key.0, None, sync),
        Command::Scan(args) => data::scan(&ctx, out, &args),
        Command::Inspect => {
            let db = ctx.open_read_only()?;
            inspect::inspect(&ctx, out, &db, false)?;
            db.close()?;
            Ok(())
        }
        Command::DumpRun {
            file,
            limit,
            no_entries,
        } => dump::run(&ctx, out, &file, if no_entries { Some(0) } else { limit }),
        Command::DumpWal { file, log_number } => dump::wal(&ctx, out, &file, log_number),
        Command::DumpManifest { file } => dump::manifest(&ctx, out, file.as_deref()),
        Command::Verify => admin::verify(&ctx, out),
        Command::Compact { from, to } => {
            admin::compact(&ctx, out, from.map(|b| b.0), to.map(|b| b.0))
        }
        Command::Checkpoint { dir } => admin::checkpoint(&ctx, out, &dir),
        Command::Retention { command } => retention::retention(&ctx, out, command),
        Command::Backup { command } => admin::backup(&ctx, out, command),
        Command::Export(args) => export::export(&ctx, out, &args),
        Command::Changes(args) => feed::changes(&ctx, out, &args),
        Command::RestoreTo(args) => feed::restore_to(&ctx, out, &args),
        Command::Load(args) => data::load(&ctx, out, &args),
        Command::Demo { path } => demo::demo(&ctx, out, &path),
    }
}

fn main() {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("chronokv: internal error{at}: {msg}");
    }));
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Whatever the command printed goes out before the exit status (and an error line).
        let r = run(cli, &mut out);
        let flushed = out.flush().map_err(CliError::from);
        r.and(flushed)
    }));
    let code = match result {
        Ok(Ok(())) => 0,
        Ok(Err(CliError::BrokenPipe)) => 0,
        Ok(Err(CliError::Failed(code))) => code,
        Ok(Err(CliError::Message(m))) => {
            eprintln!("chronokv: {m}");
            1
        }
        Err(_) => 101,
    };
    std::process::exit(code);
}
