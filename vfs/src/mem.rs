//! [`MemFs`]: an in-memory file system that knows what was synced.
//!
//! File data (inodes) and directory entries are tracked separately, as on a real file
//! system: a file's `sync` makes its bytes durable, a directory's `sync_dir` makes its
//! entries durable. [`MemFs::crash_clone`] returns the state a power loss would leave:
//! only synced directory entries, each file cut to its synced length. Files are append-only
//! (chronokv never rewrites a byte), so "synced" is a length. A file's size may run ahead
//! of its bytes ([`WritableFile::set_size`]): past them it reads as zeros, and the size
//! survives a power loss once synced.
//!
//! For the crash harness, [`MemFs::record_crash_points`] makes every mutating call (create,
//! write, sync, rename, remove, directory sync) first record a cheap *crash point*: the
//! lengths of every file and the namespace at that moment (file data is append-only and never
//! freed, so lengths suffice). [`MemFs::crash_image`] later rebuilds the file system a power
//! loss at that point would leave, in one of several [`CrashMode`]s (see `crash.rs`).

use crate::{DirLock, MappedFile, Vfs, WritableFile};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Default, Clone)]
struct Inode {
    /// The bytes written (appended).
    data: Vec<u8>,
    synced_len: usize,
    /// The size `set_size` gave the file (0 if never set); past `data` it reads as zeros.
    size: usize,
    /// `size` at the last sync: what a power loss keeps.
    synced_size: usize,
}

impl Inode {
    /// The file's length as a reader sees it.
    fn visible_len(&self) -> usize {
        self.data.len().max(self.size)
    }

    /// The file's bytes as a reader sees them: the data, then zeros up to the size.
    fn contents(&self) -> Vec<u8> {
        let mut bytes = self.data.clone();
        bytes.resize(self.visible_len(), 0);
        bytes
    }

    /// Turns the zeros past the data into data (test helpers that edit a file in place).
    fn materialize(&mut self) {
        let len = self.visible_len();
        self.data.resize(len, 0);
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    inodes: HashMap<u64, Inode>,
    /// The namespace as the running process sees it.
    live: BTreeMap<PathBuf, u64>,
    /// The namespace as it would survive a power loss.
    durable: BTreeMap<PathBuf, u64>,
    /// Namespace changes not yet made durable by a directory sync, oldest first (a journaled
    /// file system persists a prefix of them).
    meta_log: Vec<MetaOp>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    next_inode: u64,
    file_syncs: u64,
    dir_syncs: u64,
    /// Mutating calls so far.
    mutations: u64,
    /// Crash points recorded so far, when recording is on.
    points: Option<Vec<crate::crash::CrashPoint>>,
}

/// One namespace change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf, u64),
}

impl MetaOp {
    fn dir(&self) -> Option<&Path> {
        match self {
            MetaOp::Link(p, _) | MetaOp::Unlink(p) | MetaOp::Rename(_, p, _) => p.parent(),
        }
    }

    pub(crate) fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            MetaOp::Link(p, id) => {
                names.insert(p.clone(), *id);
            }
            MetaOp::Unlink(p) => {
                names.remove(p);
            }
            MetaOp::Rename(from, to, id) => {
                names.remove(from);
                names.insert(to.clone(), *id);
            }
        }
    }
}

/// Counters of sync calls, so tests can prove that syncs happen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncCounts {
    /// Calls to [`WritableFile::sync`].
    pub file_syncs: u64,
    /// Calls to [`Vfs::sync_dir`].
    pub dir_syncs: u64,
}

/// An in-memory [`Vfs`] for tests; cheap to clone (clones share state).
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    state: Arc<Mutex<State>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

impl MemFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state a power loss right now would leave behind: synced directory entries only,
    /// every file cut to its last synced length. The clone shares nothing with `self`.
    pub fn crash_clone(&self) -> MemFs {
        let s = self.state.lock();
        let mut inodes = HashMap::new();
        for id in s.durable.values() {
            if let Some(inode) = s.inodes.get(id) {
                let mut data = inode.data.clone();
                data.truncate(inode.synced_len);
                if data.len() < inode.synced_size {
                    data.resize(inode.synced_size, 0);
                }
                let synced_len = data.len();
                inodes.insert(
                    *id,
                    Inode {
                        data,
                        synced_len,
                        ..Inode::default()
                    },
                );
            }
        }
        let state = State {
            inodes,
            live: s.durable.clone(),
            durable: s.durable.clone(),
            dirs: s.dirs.clone(),
            next_inode: s.next_inode,
            ..State::default()
        };
        MemFs::from_state(state)
    }

    pub(crate) fn from_state(state: State) -> MemFs {
        MemFs {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// From now on, every mutating call records a crash point first (see the module
    /// documentation). Points are numbered from 0 in call order.
    pub fn record_crash_points(&self) {
        let mut s = self.state.lock();
        if s.points.is_none() {
            s.points = Some(Vec::new());
        }
    }

    /// Crash points recorded so far.
    pub fn crash_points(&self) -> usize {
        self.state.lock().points.as_ref().map_or(0, Vec::len)
    }

    /// Mutating calls so far (recorded or not).
    pub fn mutations(&self) -> u64 {
        self.state.lock().mutations
    }

    /// The file system a power loss at crash point `point` would leave, in `mode`; None if
    /// no such point was recorded.
    pub fn crash_image(&self, point: usize, mode: crate::CrashMode) -> Option<MemFs> {
        let s = self.state.lock();
        let p = s.points.as_ref()?.get(point)?;
        Some(MemFs::from_state(crate::crash::image(p, &s, mode)))
    }

    /// How many file and directory syncs were issued so far.
    pub fn sync_counts(&self) -> SyncCounts {
        let s = self.state.lock();
        SyncCounts {
            file_syncs: s.file_syncs,
            dir_syncs: s.dir_syncs,
        }
    }

    /// Overwrites one byte of a file in place (live and durable): a test helper that
    /// simulates bit rot.
    pub fn corrupt_byte(&self, path: &Path, offset: usize, xor: u8) -> io::Result<()> {
        let mut s = self.state.lock();
        let id = *s.live.get(path).ok_or_else(|| not_found(path))?;
        let inode = s.inodes.get_mut(&id).ok_or_else(|| not_found(path))?;
        inode.materialize();
        let byte = inode.data.get_mut(offset).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "offset past the end of the file",
            )
        })?;
        *byte ^= xor;
        Ok(())
    }

    /// Cuts a file to `len` bytes (live and durable): a test helper that simulates a torn
    /// or truncated file.
    pub fn truncate(&self, path: &Path, len: usize) -> io::Result<()> {
        let mut s = self.state.lock();
        let id = *s.live.get(path).ok_or_else(|| not_found(path))?;
        let inode = s.inodes.get_mut(&id).ok_or_else(|| not_found(path))?;
        inode.materialize();
        inode.data.truncate(len);
        inode.synced_len = inode.synced_len.min(len);
        inode.size = inode.data.len();
        inode.synced_size = inode.synced_size.min(len);
        Ok(())
    }
}

#[derive(Debug)]
struct MemWritable {
    state: Arc<Mutex<State>>,
    inode: u64,
    len: u64,
}

impl WritableFile for MemWritable {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        s.mutate();
        let inode = s.inodes.get_mut(&self.inode).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "file was removed while open")
        })?;
        // At the append position: past it the data is only ever zeros a test helper
        // materialized, so writing there keeps the data append-only.
        let at = self.len as usize;
        inode.data.truncate(at);
        inode.data.extend_from_slice(buf);
        self.len += buf.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut s = self.state.lock();
        s.mutate();
        s.file_syncs += 1;
        if let Some(inode) = s.inodes.get_mut(&self.inode) {
            inode.synced_len = inode.data.len();
            inode.synced_size = inode.size;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn set_size(&mut self, size: u64) -> io::Result<()> {
        crate::check_size(size, self.len)?;
        let mut s = self.state.lock();
        s.mutate();
        let inode = s.inodes.get_mut(&self.inode).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "file was removed while open")
        })?;
        inode.size = size as usize;
        Ok(())
    }
}

#[derive(Debug)]
struct MemMap(Vec<u8>);

impl MappedFile for MemMap {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Debug)]
struct MemLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
}

impl DirLock for MemLock {}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.state.lock().locks.remove(&self.path);
    }
}

impl State {
    /// Bytes of inode `id` (all ever written; crash points record how many counted).
    pub(crate) fn data(&self, id: u64) -> &[u8] {
        self.inodes.get(&id).map_or(&[], |i| i.data.as_slice())
    }

    pub(crate) fn snapshot_point(&self) -> crate::crash::CrashPoint {
        crate::crash::CrashPoint {
            lens: self
                .inodes
                .iter()
                .map(|(id, i)| {
                    let lens = crate::crash::Lens {
                        written: i.data.len(),
                        synced: i.synced_len,
                        size: i.size,
                        synced_size: i.synced_size,
                    };
                    (*id, lens)
                })
                .collect(),
            durable: self.durable.clone(),
            meta_log: self.meta_log.clone(),
            dirs: self.dirs.clone(),
            next_inode: self.next_inode,
        }
    }

    /// Counts a mutating call and records a crash point before it, when recording.
    fn mutate(&mut self) {
        self.mutations += 1;
        if self.points.is_some() {
            let p = self.snapshot_point();
            if let Some(points) = self.points.as_mut() {
                points.push(p);
            }
        }
    }

    pub(crate) fn rebuild(
        inodes: HashMap<u64, (Vec<u8>, usize)>,
        names: BTreeMap<PathBuf, u64>,
        dirs: BTreeSet<PathBuf>,
        next_inode: u64,
    ) -> State {
        State {
            inodes: inodes
                .into_iter()
                .map(|(id, (data, synced_len))| {
                    let inode = Inode {
                        data,
                        synced_len,
                        ..Inode::default()
                    };
                    (id, inode)
                })
                .collect(),
            live: names.clone(),
            durable: names,
            dirs,
            next_inode,
            ..State::default()
        }
    }

    fn inode_of(&self, path: &Path) -> io::Result<&Inode> {
        let id = self.live.get(path).ok_or_else(|| not_found(path))?;
        self.inodes.get(id).ok_or_else(|| not_found(path))
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() && !self.dirs.contains(p) => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", p.display()),
            )),
            _ => Ok(()),
        }
    }
}

impl Vfs for MemFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        for ancestor in dir.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                s.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut s = self.state.lock();
        s.check_parent(path)?;
        s.mutate();
        let id = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(id, Inode::default());
        s.live.insert(path.to_path_buf(), id);
        s.meta_log.push(MetaOp::Link(path.to_path_buf(), id));
        Ok(Box::new(MemWritable {
            state: self.state.clone(),
            inode: id,
            len: 0,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        Ok(self.state.lock().inode_of(path)?.contents())
    }

    fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        let data = self.state.lock().inode_of(path)?.contents();
        Ok(Arc::new(MemMap(data)))
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(self.state.lock().inode_of(path)?.visible_len() as u64)
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.state.lock();
        s.live.contains_key(path) || s.dirs.contains(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_parent(to)?;
        let id = *s.live.get(from).ok_or_else(|| not_found(from))?;
        s.mutate();
        s.live.remove(from);
        s.live.insert(to.to_path_buf(), id);
        s.meta_log
            .push(MetaOp::Rename(from.to_path_buf(), to.to_path_buf(), id));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        if !s.live.contains_key(path) {
            return Err(not_found(path));
        }
        s.mutate();
        s.live.remove(path);
        s.meta_log.push(MetaOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.lock();
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let mut names = Vec::new();
        for path in s.live.keys().chain(s.dirs.iter()) {
            if path.parent() == Some(dir) {
                if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.mutate();
        s.dir_syncs += 1;
        s.meta_log.retain(|op| op.dir() != Some(dir));
        s.durable.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<(PathBuf, u64)> = s
            .live
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        s.durable.extend(entries);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let mut s = self.state.lock();
        if !s.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another handle", path.display()),
            ));
        }
        Ok(Box::new(MemLock {
            state: self.state.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_parent(to)?;
        let id = *s.live.get(from).ok_or_else(|| not_found(from))?;
        if s.live.contains_key(to) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: file exists", to.display()),
            ));
        }
        s.mutate();
        s.live.insert(to.to_path_buf(), id);
        s.meta_log.push(MetaOp::Link(to.to_path_buf(), id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (MemFs, PathBuf) {
        let fs = MemFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        (fs, dir)
    }

    #[test]
    fn crash_keeps_only_synced_bytes_and_entries() {
        let (fs, dir) = setup();
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        f.write_all(b"durable").unwrap();
        f.sync().unwrap();
        f.write_all(b" lost").unwrap();
        // The entry is not durable until the directory is synced.
        assert!(!fs.crash_clone().exists(&a));
        fs.sync_dir(&dir).unwrap();
        let after = fs.crash_clone();
        assert_eq!(after.read(&a).unwrap(), b"durable");
        assert_eq!(fs.read(&a).unwrap(), b"durable lost");
    }

    /// A preallocated file reads as its bytes then zeros; appends overwrite the zeros; a
    /// crash keeps the size as of the last sync, and a size below the bytes written is
    /// refused.
    #[test]
    fn set_size_preallocates_zeros_that_appends_overwrite() {
        let (fs, dir) = setup();
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        fs.sync_dir(&dir).unwrap();
        f.write_all(b"head").unwrap();
        f.set_size(10).unwrap();
        assert_eq!(f.len(), 4, "the append position does not move");
        assert_eq!(fs.read(&a).unwrap(), b"head\0\0\0\0\0\0");
        assert_eq!(fs.file_size(&a).unwrap(), 10);
        assert_eq!(
            fs.crash_clone().read(&a).unwrap(),
            b"",
            "nothing synced yet"
        );
        f.sync().unwrap();
        f.write_all(b"er").unwrap();
        assert_eq!(fs.read(&a).unwrap(), b"header\0\0\0\0");
        assert_eq!(fs.crash_clone().read(&a).unwrap(), b"head\0\0\0\0\0\0");
        assert!(f.set_size(5).is_err());
        f.set_size(6).unwrap();
        assert_eq!(fs.read(&a).unwrap(), b"header");
        // The shrink is durable only once synced.
        assert_eq!(fs.crash_clone().read(&a).unwrap(), b"head\0\0\0\0\0\0");
        f.sync().unwrap();
        assert_eq!(fs.crash_clone().read(&a).unwrap(), b"header");
    }

    #[test]
    fn unsynced_rename_and_remove_roll_back_on_crash() {
        let (fs, dir) = setup();
        let (a, b) = (dir.join("a"), dir.join("b"));
        let mut f = fs.create(&a).unwrap();
        f.write_all(b"x").unwrap();
        f.sync().unwrap();
        fs.sync_dir(&dir).unwrap();
        fs.rename(&a, &b).unwrap();
        let crashed = fs.crash_clone();
        assert!(crashed.exists(&a) && !crashed.exists(&b));
        fs.sync_dir(&dir).unwrap();
        fs.remove_file(&b).unwrap();
        assert!(fs.crash_clone().exists(&b));
        assert!(!fs.exists(&b));
        assert_eq!(
            fs.sync_counts(),
            SyncCounts {
                file_syncs: 1,
                dir_syncs: 2
            }
        );
    }

    #[test]
    fn locks_are_exclusive_until_dropped() {
        let (fs, dir) = setup();
        let l = fs.lock(&dir.join("LOCK")).unwrap();
        assert!(fs.lock(&dir.join("LOCK")).is_err());
        drop(l);
        assert!(fs.lock(&dir.join("LOCK")).is_ok());
    }

    #[test]
    fn a_link_shares_bytes_survives_removal_of_the_original_and_needs_a_dir_sync() {
        let (fs, dir) = setup();
        let other = PathBuf::from("/copy");
        fs.create_dir_all(&other).unwrap();
        let (a, b) = (dir.join("a"), other.join("b"));
        let mut f = fs.create(&a).unwrap();
        f.write_all(b"run bytes").unwrap();
        f.sync().unwrap();
        fs.sync_dir(&dir).unwrap();
        fs.link(&a, &b).unwrap();
        assert_eq!(
            fs.link(&a, &b).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(!fs.crash_clone().exists(&b), "not durable before sync_dir");
        fs.sync_dir(&other).unwrap();
        fs.remove_file(&a).unwrap();
        fs.sync_dir(&dir).unwrap();
        let after = fs.crash_clone();
        assert!(!after.exists(&a));
        assert_eq!(after.read(&b).unwrap(), b"run bytes");
        assert!(fs.link(&a, &other.join("c")).is_err(), "source is gone");
    }

    #[test]
    fn create_in_missing_directory_fails() {
        let fs = MemFs::new();
        assert!(fs.create(Path::new("/nope/file")).is_err());
    }
}
