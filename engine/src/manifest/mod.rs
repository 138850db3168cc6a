//! The manifest: the durable record of which runs form the tree.
//!
//! A manifest file is the magic `CKVMANI2` (format version 2; `CKVMANI1` files, which
//! predate the stored history contract, are still read) followed by frames `crc32 u32 | len u32 |
//! payload`, each payload one [`VersionEdit`]; the CRC covers the length and the payload.
//! The first edit of a manifest is a full snapshot of the tree; later edits are deltas.
//! Every append is fsynced before the engine acts on it, so a damaged *last* frame is an
//! edit that never took effect (a torn tail) and is ignored, while damage followed by a valid
//! frame is corruption.
//!
//! `CURRENT` names the live manifest. A new manifest is made live by writing
//! `CURRENT.tmp`, fsyncing it, renaming it over `CURRENT` and fsyncing the directory; the old
//! manifest is deleted only after that. Layout: `docs/format/manifest.md`.

mod dump;
mod edit;

pub use dump::{dump, ManifestDump, ManifestFrame};
pub(crate) use edit::Reader;
pub use edit::{Format, RunDesc, VersionEdit};

use crate::error::{Error, Result};
use crate::files;
use chronokv_snapshot::{TimeIndex, Version};
use chronokv_vfs::{Vfs, WritableFile};
use chronokv_wal::envelope;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The magic every new manifest starts with (format version 2).
const MAGIC: &[u8; 8] = b"CKVMANI2";
/// Format version 1: no tag 9 (the history contract). Read, never written.
const MAGIC_V1: &[u8; 8] = b"CKVMANI1";
/// No edit comes near this; a larger length is damage, not an allocation request.
const MAX_EDIT: usize = 64 << 20;
/// A flushed version or file number at or past this is damage: no store commits 2^63
/// entries or creates 2^63 files, and the engine counts one past the latest version (which
/// must stay below `Version::MAX`, the "latest" sentinel) and past the highest file number.
/// Backup metadata is held to the same limit.
pub(crate) const LIMIT: u64 = 1 << 63;

/// The tree as the manifest describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeState {
    /// Live runs by file number (a higher number is a newer run).
    pub runs: BTreeMap<u64, RunDesc>,
    /// Every version up to this one is in the runs.
    pub flushed_version: Version,
    /// The next unused file number.
    pub next_file_number: u64,
    /// WAL segments below this number hold only flushed data.
    pub min_log_number: u64,
    /// The commit-time index of the flushed versions, as read from the manifest. Only
    /// [`read`] fills it (recovery then moves it into the live index); `apply` leaves it
    /// alone, so a running engine keeps one copy of the index, not two.
    pub times: TimeIndex,
    /// Reads below this version may miss versions compaction dropped (see
    /// `VersionEdit::history_horizon`).
    pub history_horizon: Version,
    /// The store's history contract (tag 9); `None` in a format-1 manifest, which predates
    /// it (the next open records one).
    pub retention: Option<crate::retention::Retention>,
}

impl TreeState {
    /// Applies one edit (numbers only grow; deletions before additions).
    pub fn apply(&mut self, edit: &VersionEdit) {
        if let Some(n) = edit.next_file_number {
            self.next_file_number = self.next_file_number.max(n);
        }
        if let Some(v) = edit.flushed_version {
            self.flushed_version = self.flushed_version.max(v);
        }
        if let Some(n) = edit.min_log_number {
            self.min_log_number = self.min_log_number.max(n);
        }
        if let Some(v) = edit.history_horizon {
            self.history_horizon = self.history_horizon.max(v);
        }
        // Replaced, not `max`: `Db::set_history_retention` may shrink it.
        if let Some(r) = edit.retention {
            self.retention = Some(r);
        }
        for (_, n) in &edit.deleted {
            self.runs.remove(n);
        }
        for r in &edit.added {
            self.runs.insert(r.file_number, r.clone());
        }
    }

    /// One edit that recreates this state from nothing.
    pub fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            next_file_number: Some(self.next_file_number),
            flushed_version: Some(self.flushed_version),
            min_log_number: Some(self.min_log_number),
            history_horizon: Some(self.history_horizon),
            retention: self.retention,
            added: self.runs.values().cloned().collect(),
            ..VersionEdit::default()
        }
    }
}

/// Decodes the manifest at `path` edit by edit, calling `on_edit(frame offset, payload byte
/// range, edit)` for each, in order. Returns where a torn final append starts and why it
/// was rejected, if there is one. A torn final append is normal after a crash (it never
/// took effect); damage followed by a valid frame, a bad magic or a payload that does not
/// decode is `Error::Corruption` with the offset.
fn walk(
    vfs: &dyn Vfs,
    path: &Path,
    mut on_edit: impl FnMut(u64, std::ops::Range<usize>, VersionEdit) -> Result<()>,
) -> Result<Option<(u64, String)>> {
    let bytes = vfs.read(path).map_err(|e| Error::io(path, e))?;
    let format = match bytes.get(..MAGIC.len()) {
        Some(m) if m == MAGIC.as_slice() => Format::V2,
        Some(m) if m == MAGIC_V1.as_slice() => Format::V1,
        _ => {
            return Err(Error::corruption(
                path,
                0,
                "not a chronokv manifest (bad magic)",
            ))
        }
    };
    let mut pos = MAGIC.len();
    while pos < bytes.len() {
        match envelope::check(&bytes, pos, MAX_EDIT) {
            Ok(payload) => {
                let edit = VersionEdit::decode_as(&bytes[payload.clone()], format).map_err(
                    |(at, why)| Error::corruption(path, (payload.start + at) as u64, why),
                )?;
                on_edit(pos as u64, payload.clone(), edit)?;
                pos = payload.end;
            }
            Err(why) => {
                if (pos + 1..bytes.len()).any(|p| envelope::check(&bytes, p, MAX_EDIT).is_ok()) {
                    return Err(Error::corruption(path, pos as u64, why));
                }
                return Ok(Some((pos as u64, why)));
            }
        }
    }
    Ok(None)
}

impl TreeState {
    /// Applies one edit read from the manifest at `path` (its payload at `offset`): the tree
    /// and the time index it carries.
    fn replay(&mut self, edit: &VersionEdit, path: &Path, offset: u64) -> Result<()> {
        self.apply(edit);
        let runs = edit
            .added
            .iter()
            .map(|r| ("run file number", r.file_number));
        for (what, n) in [
            ("flushed version", self.flushed_version.0),
            ("next file number", self.next_file_number),
        ]
        .into_iter()
        .chain(runs)
        {
            if n >= LIMIT {
                return Err(Error::corruption(
                    path,
                    offset,
                    format!("{what} {n} is past the 2^63 limit"),
                ));
            }
        }
        self.times
            .extend(&edit.time_marks)
            .map_err(|bad| Error::corruption(path, offset, bad.0))?;
        if let Some(v) = edit.times_pruned_below {
            self.times.prune_below_version(v);
        }
        Ok(())
    }
}

/// Reads a manifest file into the tree state it describes.
pub fn read(vfs: &dyn Vfs, path: &Path) -> Result<TreeState> {
    let mut state = TreeState::default();
    walk(vfs, path, |_, payload, edit| {
        state.replay(&edit, path, payload.start as u64)
    })?;
    Ok(state)
}

/// Reads CURRENT and returns the live manifest's path, or `None` for a new database.
pub fn current(vfs: &dyn Vfs, dir: &Path) -> Result<Option<PathBuf>> {
    let path = dir.join(files::CURRENT);
    if !vfs.exists(&path) {
        return Ok(None);
    }
    let bytes = vfs.read(&path).map_err(|e| Error::io(&path, e))?;
    let name = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .filter(|s| matches!(files::classify(s), Some(files::FileKind::Manifest(_))))
        .ok_or_else(|| Error::corruption(&path, 0, "CURRENT does not name a manifest"))?;
    Ok(Some(dir.join(name)))
}

/// The live manifest, open for appending edits.
#[derive(Debug)]
pub struct ManifestWriter {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    number: u64,
    /// The length of the snapshot the file starts with.
    base_len: u64,
}

/// Time marks per frame of a snapshot (16 MiB of marks, well below the frame limit).
const MARKS_PER_FRAME: usize = 1 << 20;

impl ManifestWriter {
    /// Writes a new manifest numbered `number` holding `state` and the time marks of
    /// `times` (those of flushed versions), makes it durable and points CURRENT at it
    /// (atomically). The caller deletes older manifests afterwards.
    pub fn create(
        vfs: &dyn Vfs,
        dir: &Path,
        number: u64,
        state: &TreeState,
        times: &TimeIndex,
    ) -> Result<Self> {
        let name = files::manifest_name(number);
        let path = dir.join(&name);
        let mut file = vfs.create(&path).map_err(|e| Error::io(&path, e))?;
        let mut buf = MAGIC.to_vec();
        let marks = times.marks_covering(Version(0), state.flushed_version);
        let mut chunks = marks.chunks(MARKS_PER_FRAME);
        let mut snapshot = state.snapshot_edit();
        snapshot.times_pruned_below = times.pruned_below();
        snapshot.time_marks = chunks.next().unwrap_or_default().to_vec();
        envelope::encode(&snapshot.encode(), &mut buf);
        for chunk in chunks {
            let more = VersionEdit {
                time_marks: chunk.to_vec(),
                ..VersionEdit::default()
            };
            envelope::encode(&more.encode(), &mut buf);
        }
        file.write_all(&buf).map_err(|e| Error::io(&path, e))?;
        file.sync().map_err(|e| Error::io(&path, e))?;
        // The manifest's directory entry must be durable before CURRENT names it.
        // Planted bug (G6): skip that directory sync.
        if !chronokv_vfs::bug!("manifest-skips-dir-sync") {
            vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = dir.join("CURRENT.tmp");
        let mut cur = vfs.create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        cur.write_all(format!("{name}\n").as_bytes())
            .map_err(|e| Error::io(&tmp, e))?;
        // Planted bug (G6): rename CURRENT.tmp without fsyncing its contents.
        if !chronokv_vfs::bug!("current-skips-fsync") {
            cur.sync().map_err(|e| Error::io(&tmp, e))?;
        }
        drop(cur);
        let current = dir.join(files::CURRENT);
        vfs.rename(&tmp, &current)
            .map_err(|e| Error::io(&current, e))?;
        vfs.sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        Ok(ManifestWriter {
            file,
            path,
            number,
            base_len: buf.len() as u64,
        })
    }

    /// Bytes appended since the snapshot the file starts with.
    pub fn delta_len(&self) -> u64 {
        self.file.len().saturating_sub(self.base_len)
    }

    /// The manifest's file number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one edit and fsyncs it.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        let mut buf = Vec::new();
        envelope::encode(&edit.encode(), &mut buf);
        self.file
            .write_all(&buf)
            .map_err(|e| Error::io(&self.path, e))?;
        // Planted bug (G6): act on an edit that is not durable.
        if chronokv_vfs::bug!("manifest-append-skips-fsync") {
            return Ok(());
        }
        self.file.sync().map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chronokv_vfs::MemFs;

    fn run(n: u64) -> RunDesc {
        RunDesc {
            level: 0,
            file_number: n,
            file_size: 10,
            entry_count: 1,
            min_version: Version(n),
            max_version: Version(n),
            min_key: vec![1],
            max_key: vec![2],
        }
    }

    fn setup() -> (MemFs, PathBuf, ManifestWriter, TreeState) {
        let fs = MemFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        let state = TreeState {
            next_file_number: 2,
            ..Default::default()
        };
        let mut w = ManifestWriter::create(&fs, &dir, 1, &state, &TimeIndex::new()).unwrap();
        w.append(&VersionEdit {
            added: vec![run(2)],
            flushed_version: Some(Version(5)),
            time_marks: vec![(Version(1), 1000), (Version(4), 2000)],
            ..Default::default()
        })
        .unwrap();
        w.append(&VersionEdit {
            added: vec![run(3)],
            deleted: vec![(0, 2)],
            ..Default::default()
        })
        .unwrap();
        (fs, dir, w, state)
    }

    #[test]
    fn edits_replay_to_the_same_state_and_survive_a_crash() {
        let (fs, dir, _w, _) = setup();
        let crashed = fs.crash_clone();
        let path = current(&crashed, &dir).unwrap().unwrap();
        let state = read(&crashed, &path).unwrap();
        assert_eq!(state.runs.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(state.flushed_version, Version(5));
        assert_eq!(state.next_file_number, 2);
        assert_eq!(
            state.times.marks(),
            &[(Version(1), 1000), (Version(4), 2000)]
        );
    }

    #[test]
    fn time_marks_and_pruning_survive_a_rotation() {
        let fs = MemFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        let state = TreeState {
            next_file_number: 2,
            flushed_version: Version(7),
            history_horizon: Version(3),
            ..Default::default()
        };
        let marks = vec![(Version(1), 1000), (Version(4), 2000), (Version(8), 3000)];
        let mut times = TimeIndex::from_marks(marks, false).unwrap();
        times.prune_below_version(Version(5));
        // Only marks of flushed versions (<= 7) are written; the pruning point travels.
        let mut w = ManifestWriter::create(&fs, &dir, 1, &state, &times).unwrap();
        w.append(&VersionEdit {
            time_marks: vec![(Version(8), 3000)],
            flushed_version: Some(Version(9)),
            history_horizon: Some(Version(2)),
            ..Default::default()
        })
        .unwrap();
        let back = read(&fs, &dir.join(files::manifest_name(1))).unwrap();
        assert_eq!(back.times, times);
        assert!(back.times.is_pruned());
        assert_eq!(back.history_horizon, Version(3), "the horizon only grows");
        assert_eq!(back.times.version_at(1500, Version(9)), None);
    }

    #[test]
    fn torn_last_edit_is_ignored_but_damage_before_a_valid_edit_is_corruption() {
        let (fs, dir, _w, _) = setup();
        let path = dir.join(files::manifest_name(1));
        let len = fs.file_size(&path).unwrap() as usize;
        for cut in MAGIC.len()..len {
            let f = fs.crash_clone();
            f.truncate(&path, cut).unwrap();
            let st = read(&f, &path).unwrap();
            assert!(st.runs.len() <= 1, "cut at {cut}");
        }
        // Flip a byte inside the second frame: the third frame is valid, so this is corruption.
        let f = fs.crash_clone();
        let first_len = MAGIC.len()
            + envelope::HEADER_LEN
            + TreeState {
                next_file_number: 2,
                ..Default::default()
            }
            .snapshot_edit()
            .encode()
            .len();
        f.corrupt_byte(&path, first_len + envelope::HEADER_LEN + 2, 0x40)
            .unwrap();
        let err = read(&f, &path).unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset, .. } if offset == first_len as u64),
            "{err}"
        );
    }

    #[test]
    fn versions_and_file_numbers_past_the_limit_are_corruption() {
        // A restored backup claiming v(2^64 - 1) made `changes` overflow `visible + 1`
        // (found by the backup_meta fuzz target); a next file number there overflowed
        // recovery's `+= 1`.
        for edit in [
            VersionEdit {
                flushed_version: Some(Version(u64::MAX)),
                ..Default::default()
            },
            VersionEdit {
                next_file_number: Some(LIMIT),
                ..Default::default()
            },
            VersionEdit {
                added: vec![run(u64::MAX)],
                ..Default::default()
            },
        ] {
            let (fs, dir, mut w, _) = setup();
            w.append(&edit).unwrap();
            let path = dir.join(files::manifest_name(1));
            let err = read(&fs, &path).unwrap_err();
            assert!(err.to_string().contains("2^63 limit"), "{err}");
        }
        let (fs, dir, mut w, _) = setup();
        w.append(&VersionEdit {
            flushed_version: Some(Version(LIMIT - 1)),
            next_file_number: Some(LIMIT - 1),
            ..Default::default()
        })
        .unwrap();
        read(&fs, &dir.join(files::manifest_name(1))).unwrap();
    }

    /// A manifest file of `magic` holding `edits`, one frame each.
    fn manifest_bytes(magic: &[u8; 8], edits: &[VersionEdit]) -> Vec<u8> {
        let mut buf = magic.to_vec();
        for e in edits {
            envelope::encode(&e.encode(), &mut buf);
        }
        buf
    }

    #[test]
    fn a_v1_manifest_reads_without_a_contract_and_rejects_tag_9() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/db")).unwrap();
        let path = PathBuf::from("/db/MANIFEST-000001");
        let plain = VersionEdit {
            next_file_number: Some(4),
            flushed_version: Some(Version(3)),
            added: vec![run(2)],
            ..Default::default()
        };
        let mut f = fs.create(&path).unwrap();
        f.write_all(&manifest_bytes(MAGIC_V1, std::slice::from_ref(&plain)))
            .unwrap();
        drop(f);
        let st = read(&fs, &path).unwrap();
        assert_eq!(st.retention, None);
        assert_eq!(st.flushed_version, Version(3));
        assert_eq!(st.runs.len(), 1);

        let with_contract = VersionEdit {
            retention: Some(crate::Retention::new(None, 2)),
            ..plain.clone()
        };
        let mut f = fs.create(&path).unwrap();
        f.write_all(&manifest_bytes(
            MAGIC_V1,
            std::slice::from_ref(&with_contract),
        ))
        .unwrap();
        drop(f);
        let err = read(&fs, &path).unwrap_err();
        assert!(
            err.to_string().contains("unknown version edit tag 9"),
            "{err}"
        );

        let mut f = fs.create(&path).unwrap();
        f.write_all(&manifest_bytes(MAGIC, &[with_contract]))
            .unwrap();
        drop(f);
        assert_eq!(
            read(&fs, &path).unwrap().retention,
            Some(crate::Retention::new(None, 2))
        );
    }

    #[test]
    fn the_contract_is_in_every_snapshot_and_a_later_edit_replaces_it() {
        let fs = MemFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        let long = crate::Retention::new(Some(std::time::Duration::from_secs(3600)), 4);
        let state = TreeState {
            next_file_number: 2,
            retention: Some(long),
            ..Default::default()
        };
        let mut w = ManifestWriter::create(&fs, &dir, 1, &state, &TimeIndex::new()).unwrap();
        let path = w.path().to_path_buf();
        let bytes = fs.read(&path).unwrap();
        assert_eq!(&bytes[..8], b"CKVMANI2");
        assert_eq!(read(&fs, &path).unwrap().retention, Some(long));
        // Shrinking is an explicit call: the later edit wins, it is not a `max`.
        let short = crate::Retention::new(None, 1);
        w.append(&VersionEdit {
            retention: Some(short),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(&fs, &path).unwrap().retention, Some(short));
    }

    #[test]
    fn bad_current_is_corruption() {
        let fs = MemFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        assert!(current(&fs, &dir).unwrap().is_none());
        let mut f = fs.create(&dir.join(files::CURRENT)).unwrap();
        f.write_all(b"garbage").unwrap();
        assert!(current(&fs, &dir).unwrap_err().is_corruption());
    }
}
