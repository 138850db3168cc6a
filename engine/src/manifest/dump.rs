//! Reading a manifest edit by edit, for inspection tools (`chronokv dump-manifest`) and
//! verification. Applies the same rules as [`super::read`]: a damaged final frame is a torn
//! tail (reported, not an error), damage followed by a valid frame is corruption.

use super::{walk, TreeState, VersionEdit};
use crate::error::Result;
use chronokv_vfs::Vfs;
use std::path::Path;

/// One frame of a manifest: where it starts, its payload length and the edit it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFrame {
    /// File offset of the frame (its CRC).
    pub offset: u64,
    /// Payload bytes.
    pub len: u32,
    /// The decoded edit.
    pub edit: VersionEdit,
}

/// A manifest read edit by edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDump {
    /// The frames, in file order.
    pub frames: Vec<ManifestFrame>,
    /// Where a torn final append starts and why it was rejected (ignored by recovery).
    pub torn_tail: Option<(u64, String)>,
    /// The tree the edits build.
    pub state: TreeState,
}

/// Reads every edit of the manifest at `path`. Errors: I/O, a bad magic, damage followed by
/// a valid frame, or a payload that does not decode (`Error::Corruption` with the offset).
pub fn dump(vfs: &dyn Vfs, path: &Path) -> Result<ManifestDump> {
    let mut frames = Vec::new();
    let mut state = TreeState::default();
    let torn_tail = walk(vfs, path, |offset, payload, edit| {
        state.replay(&edit, path, payload.start as u64)?;
        frames.push(ManifestFrame {
            offset,
            len: payload.len() as u32,
            edit,
        });
        Ok(())
    })?;
    Ok(ManifestDump {
        frames,
        torn_tail,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{read, ManifestWriter, RunDesc};
    use chronokv_snapshot::{TimeIndex, Version};
    use chronokv_vfs::MemFs;
    use std::path::PathBuf;

    #[test]
    fn dump_lists_every_edit_and_agrees_with_read() {
        let fs = MemFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        let state = TreeState {
            next_file_number: 2,
            ..Default::default()
        };
        let mut w = ManifestWriter::create(&fs, &dir, 1, &state, &TimeIndex::new()).unwrap();
        let run = RunDesc {
            level: 0,
            file_number: 2,
            file_size: 10,
            entry_count: 1,
            min_version: Version(1),
            max_version: Version(1),
            min_key: b"a".to_vec(),
            max_key: b"b".to_vec(),
        };
        w.append(&VersionEdit {
            added: vec![run],
            flushed_version: Some(Version(1)),
            time_marks: vec![(Version(1), 5000)],
            ..Default::default()
        })
        .unwrap();
        let path = w.path().to_path_buf();
        let d = dump(&fs, &path).unwrap();
        assert_eq!(d.frames.len(), 2);
        assert_eq!(d.frames[0].offset, 8);
        assert_eq!(d.frames[0].edit, state.snapshot_edit());
        assert_eq!(d.state, read(&fs, &path).unwrap());
        assert_eq!(d.state.times.marks(), &[(Version(1), 5000)]);
        assert!(d.torn_tail.is_none());

        // A torn final frame is reported, not an error.
        let len = fs.file_size(&path).unwrap() as usize;
        fs.truncate(&path, len - 3).unwrap();
        let d = dump(&fs, &path).unwrap();
        assert_eq!(d.frames.len(), 1);
        assert_eq!(
            d.torn_tail.as_ref().map(|t| t.0),
            Some(d.frames[0].offset + 8 + u64::from(d.frames[0].len))
        );
    }
}
