//! The names of the files in a database directory.
//!
//! ```text
//! LOCK              held while a Db is open
//! CURRENT           names the live manifest ("MANIFEST-000004\n"), replaced atomically
//! MANIFEST-000004   the log of version edits
//! 000005.wal        a WAL segment (one per memtable)
//! 000006.arrow      a run file (an Arrow IPC file)
//! *.tmp             a file being written; never referenced, removed at open
//! ```
//! WAL segments, runs and manifests share one counter of file numbers, persisted in the
//! manifest, so a number is never reused across restarts.

use crate::error::{Error, Result};
use chronokv_vfs::{DirLock, Vfs};
use std::io;
use std::path::{Path, PathBuf};

pub const LOCK: &str = "LOCK";

/// Takes the `LOCK` file of `dir`: `Error::Locked` if another holder (a `Db`, a backup
/// engine, a verification) has it.
pub fn lock_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn DirLock>> {
    let path = dir.join(LOCK);
    vfs.lock(&path).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock => Error::Locked { path: path.clone() },
        _ => Error::io(&path, e),
    })
}

/// `path` with `.tmp` appended: where a file is written before it is renamed into place.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Replaces (or creates) the file at `path` in `dir` with `bytes`, atomically and durably:
/// written to [`tmp_path`], synced, renamed over `path`, and `dir` synced. A crash leaves
/// the old file or the new one, and perhaps the temporary file.
pub fn replace_durably(vfs: &dyn Vfs, dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = vfs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    vfs.rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))
}

/// The file naming the live manifest.
pub const CURRENT: &str = "CURRENT";
const MANIFEST_PREFIX: &str = "MANIFEST-";
const RUN_SUFFIX: &str = ".arrow";

/// A file chronokv recognises in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `MANIFEST-n`.
    Manifest(u64),
    /// A WAL segment `n.wal`.
    Wal(u64),
    /// A run file `n.arrow`.
    Run(u64),
    /// A temporary file left by an interrupted write (`*.tmp`).
    Temp,
}

/// The file name of manifest `n`.
pub fn manifest_name(n: u64) -> String {
    format!("{MANIFEST_PREFIX}{n:06}")
}

/// The path of run `n` in `dir`.
pub fn run_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}{RUN_SUFFIX}"))
}

/// The path of WAL segment `n` in `dir`.
pub fn wal_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(chronokv_wal::segment_file_name(n))
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The WAL segments among `kinds` that recovery replays (numbered `min_log` or above),
/// ascending. Recovery and `verify` both use it, so they agree on which segments count.
pub fn live_wal_numbers<'a>(
    kinds: impl IntoIterator<Item = &'a FileKind>,
    min_log: u64,
) -> Vec<u64> {
    let mut wal: Vec<u64> = kinds
        .into_iter()
        .filter_map(|k| match k {
            FileKind::Wal(n) if *n >= min_log => Some(*n),
            _ => None,
        })
        .collect();
    wal.sort_unstable();
    wal
}

/// Classifies a directory entry; `None` for files that are not chronokv's.
pub fn classify(name: &str) -> Option<FileKind> {
    if name.ends_with(".tmp") {
        return Some(FileKind::Temp);
    }
    if let Some(n) = name.strip_prefix(MANIFEST_PREFIX).and_then(number) {
        return Some(FileKind::Manifest(n));
    }
    if let Some(n) = name.strip_suffix(RUN_SUFFIX).and_then(number) {
        return Some(FileKind::Run(n));
    }
    chronokv_wal::parse_segment_file_name(name).map(FileKind::Wal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(classify(&manifest_name(4)), Some(FileKind::Manifest(4)));
        let run = run_path(Path::new("/d"), 12);
        assert_eq!(
            classify(run.file_name().unwrap().to_str().unwrap()),
            Some(FileKind::Run(12))
        );
        let wal = wal_path(Path::new("/d"), 7);
        assert_eq!(
            classify(wal.file_name().unwrap().to_str().unwrap()),
            Some(FileKind::Wal(7))
        );
        assert_eq!(classify("000001.arrow.tmp"), Some(FileKind::Temp));
        assert_eq!(classify("notes.txt"), None);
        assert_eq!(classify("MANIFEST-x1"), None);
    }
}
