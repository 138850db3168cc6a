//! The status file: what the stress process was doing when it was killed.
//!
//! The stress process keeps, per [`Category`], how many operations of that kind are in
//! progress right now and how many have started since it was spawned. Every change rewrites
//! the whole record (256 bytes, one `pwrite` at offset 0, so it never straddles a page) under
//! a mutex. A `pwrite` lands in the page cache, which a kill -9 keeps, so after the kill the
//! driver reads exactly the last record written: a category with a non-zero count is where
//! the kill landed. (The few microseconds between an operation's step and its record are the
//! method's blind spot.)

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

/// The kinds of work a kill can land in. A kill can land in several at once (a flush's
/// manifest edit is a flush and a manifest write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// The stress process's `Db::open` (recovery after the previous kill).
    Open,
    /// The flusher thread, from creating the run file of a memtable to deleting the
    /// memtable's WAL segment (run written, synced, renamed; manifest edit; WAL removal).
    Flush,
    /// A compaction thread, from creating its first output run (or, for a trivial move, from
    /// writing its manifest edit) until the edit that installs the result is fsynced.
    Compaction,
    /// The database's manifest: an appended edit until its fsync returns, or a new manifest
    /// (rotation, or the snapshot written at open) from its creation until CURRENT names it
    /// durably (rename and directory fsync).
    Manifest,
    /// WAL rotation: from the fsync of the full segment until the new segment's directory
    /// entry is durable.
    WalRotation,
    /// A `Db::checkpoint` call (flush, links, manifest and CURRENT of the copy).
    Checkpoint,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Open,
        Category::Flush,
        Category::Compaction,
        Category::Manifest,
        Category::WalRotation,
        Category::Checkpoint,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Open => "open (recovery)",
            Category::Flush => "flush",
            Category::Compaction => "compaction",
            Category::Manifest => "manifest write",
            Category::WalRotation => "WAL rotation",
            Category::Checkpoint => "checkpoint",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const N: usize = Category::ALL.len();
const MAGIC: u64 = 0x504f_4f4c_4c49_4b43; // "CKILLOOP", little-endian
/// Bytes of a record.
pub const LEN: usize = 256;
const ACTIVE: usize = 8;
const STARTED: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    pid: u64,
    /// 1 + the version the stress process's `Db::open` recovered; 0 before it returned.
    opened: u64,
    active: [u64; N],
    started: [u64; N],
}

impl Record {
    fn encode(&self) -> [u8; LEN] {
        let mut slots = [0u64; LEN / 8];
        slots[0] = MAGIC;
        slots[1] = self.pid;
        slots[2] = self.opened;
        slots[ACTIVE..ACTIVE + N].copy_from_slice(&self.active);
        slots[STARTED..STARTED + N].copy_from_slice(&self.started);
        let mut out = [0u8; LEN];
        for (chunk, slot) in out.chunks_exact_mut(8).zip(slots) {
            chunk.copy_from_slice(&slot.to_le_bytes());
        }
        out
    }
}

/// The stress process's side: the status file, kept up to date.
#[derive(Debug)]
pub struct Status {
    file: File,
    record: Mutex<Record>,
}

impl Status {
    /// Opens (creating or truncating) the status file and writes a first record.
    pub fn create(path: &Path) -> io::Result<Status> {
        let file = File::create(path)?;
        let status = Status {
            file,
            record: Mutex::new(Record {
                pid: u64::from(std::process::id()),
                ..Record::default()
            }),
        };
        status.update(|_| {})?;
        Ok(status)
    }

    fn update(&self, change: impl FnOnce(&mut Record)) -> io::Result<()> {
        let mut r = self.record.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut r);
        self.file.write_all_at(&r.encode(), 0)
    }

    /// An operation of `cat` starts. A failure to record it is not worth stopping for: the
    /// kill would merely be misfiled, so it is ignored.
    pub fn enter(&self, cat: Category) {
        let _ = self.update(|r| {
            r.active[cat.index()] += 1;
            r.started[cat.index()] += 1;
        });
    }

    /// An operation of `cat` has finished.
    pub fn leave(&self, cat: Category) {
        let _ = self.update(|r| {
            r.active[cat.index()] = r.active[cat.index()].saturating_sub(1);
        });
    }

    /// `Db::open` returned, having recovered up to `version`.
    pub fn opened(&self, version: u64) {
        let _ = self.update(|r| r.opened = version + 1);
    }
}

/// What the driver reads from the status file after a kill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// False when the stress process was killed before it wrote its first record.
    pub started: bool,
    /// The version its `Db::open` recovered, once it returned.
    pub opened_at: Option<u64>,
    /// Categories with an operation in progress at the kill.
    pub active: Vec<Category>,
    /// Operations started per category, in [`Category::ALL`] order.
    pub started_ops: [u64; N],
}

/// Reads the status file the stress process left (a missing or short file, or one without
/// the magic, reads as "not started").
pub fn read(path: &Path) -> Snapshot {
    let Ok(bytes) = std::fs::read(path) else {
        return Snapshot::default();
    };
    if bytes.len() < LEN {
        return Snapshot::default();
    }
    let slot = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
    if slot(0) != MAGIC {
        return Snapshot::default();
    }
    let mut snap = Snapshot {
        started: true,
        opened_at: slot(2).checked_sub(1),
        ..Snapshot::default()
    };
    for cat in Category::ALL {
        if slot(ACTIVE + cat.index()) > 0 {
            snap.active.push(cat);
        }
        snap.started_ops[cat.index()] = slot(STARTED + cat.index());
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_record_is_what_the_driver_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("status");
        assert!(!read(&path).started);
        let s = Status::create(&path).unwrap();
        assert_eq!(
            read(&path),
            Snapshot {
                started: true,
                ..Snapshot::default()
            }
        );
        s.enter(Category::Open);
        s.opened(41);
        s.leave(Category::Open);
        s.enter(Category::Flush);
        s.enter(Category::Manifest);
        s.enter(Category::Manifest);
        s.leave(Category::Manifest);
        let snap = read(&path);
        assert_eq!(snap.opened_at, Some(41));
        assert_eq!(snap.active, vec![Category::Flush, Category::Manifest]);
        assert_eq!(snap.started_ops, [1, 1, 0, 2, 0, 0]);
    }
}
