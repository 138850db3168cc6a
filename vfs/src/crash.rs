//! Simulated power loss for [`crate::MemFs`]: crash points and the images they leave.
//!
//! A [`CrashPoint`] is the file system's shape just before one mutating call: each file's
//! written and synced length, the live and durable namespaces, and the namespace changes not
//! yet made durable. Because files are append-only and their bytes are never freed, the
//! bytes themselves are read from the file system when an image is built.
//!
//! What survives, by [`CrashMode`]:
//!
//! - `SyncedOnly`: durable directory entries only; every file cut to its synced length.
//! - `RandomPages`: the durable entries plus a random subset of the pending namespace changes
//!   (applied in order; nothing but a directory sync orders two of them, and a rename is
//!   one change, so it stays atomic); of every file's unsynced tail, a
//!   random subset of its 4 KiB pages, the missing ones before the last kept page read as
//!   zeros (pages reach the disk in any order).
//! - `TornWrite`: the synced state, except that each file keeps a random number of whole
//!   512-byte sectors of its unsynced tail followed by one sector of zeros or garbage.
//!
//! A file's size set by `set_size` survives as of its last sync; in `RandomPages` mode an
//! unsynced size change survives or not at random (a journaled file system commits
//! metadata on its own schedule). Past the bytes kept, a file reads as zeros up to it.

use crate::mem::{MetaOp, State};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// The shape of the file system just before a mutating call.
#[derive(Debug, Clone)]
pub(crate) struct CrashPoint {
    /// Per inode: its lengths.
    pub(crate) lens: HashMap<u64, Lens>,
    pub(crate) durable: BTreeMap<PathBuf, u64>,
    pub(crate) meta_log: Vec<MetaOp>,
    pub(crate) dirs: BTreeSet<PathBuf>,
    pub(crate) next_inode: u64,
}

/// One file's lengths at a crash point.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lens {
    /// Bytes written.
    pub(crate) written: usize,
    /// Bytes synced.
    pub(crate) synced: usize,
    /// The size `set_size` gave it (0 if never set).
    pub(crate) size: usize,
    /// That size as of the last sync.
    pub(crate) synced_size: usize,
}

/// Which unsynced state a simulated power loss keeps. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only what was synced.
    SyncedOnly,
    /// A random subset of unsynced pages and of unsynced namespace changes.
    RandomPages {
        /// Chooses the subset.
        seed: u64,
    },
    /// A torn last write: whole sectors, then one sector of zeros or garbage.
    TornWrite {
        /// Chooses where the write tears and what the torn sector holds.
        seed: u64,
    },
}

const PAGE: usize = 4096;
const SECTOR: usize = 512;

/// splitmix64: small, seedable, good enough to pick pages.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Builds the state a power loss at `p` leaves, reading file bytes from `now`.
pub(crate) fn image(p: &CrashPoint, now: &State, mode: CrashMode) -> State {
    let (names, mut rng) = match mode {
        CrashMode::SyncedOnly => (p.durable.clone(), None),
        CrashMode::RandomPages { seed } | CrashMode::TornWrite { seed } => {
            let mut rng = Rng(seed);
            let mut names = p.durable.clone();
            if matches!(mode, CrashMode::RandomPages { .. }) {
                // Any subset: without a directory sync between them, nothing orders two
                // namespace changes (a rename stays atomic: it is one change).
                for op in &p.meta_log {
                    if rng.next() & 1 == 1 {
                        op.apply(&mut names);
                    }
                }
            }
            (names, Some(rng))
        }
    };
    let mut inodes = HashMap::new();
    for &id in names.values() {
        let lens = p.lens.get(&id).copied().unwrap_or_default();
        let (written, synced) = (lens.written, lens.synced);
        let all = now.data(id);
        let written = written.min(all.len());
        let synced = synced.min(written);
        let mut data = all[..synced].to_vec();
        let tail = &all[synced..written];
        match (mode, rng.as_mut()) {
            (CrashMode::RandomPages { .. }, Some(rng)) => {
                let pages = tail.len().div_ceil(PAGE);
                let kept: Vec<bool> = (0..pages).map(|_| rng.next() & 1 == 1).collect();
                if let Some(last) = kept.iter().rposition(|&k| k) {
                    for (i, &k) in kept.iter().enumerate().take(last + 1) {
                        let page = &tail[i * PAGE..((i + 1) * PAGE).min(tail.len())];
                        if k {
                            data.extend_from_slice(page);
                        } else {
                            data.resize(data.len() + page.len(), 0);
                        }
                    }
                }
            }
            (CrashMode::TornWrite { .. }, Some(rng)) if !tail.is_empty() => {
                let sectors = tail.len().div_ceil(SECTOR);
                let whole = rng.below(sectors);
                let keep = (whole * SECTOR).min(tail.len());
                data.extend_from_slice(&tail[..keep]);
                let torn = (tail.len() - keep).min(SECTOR);
                let garbage = rng.next() & 1 == 1;
                for _ in 0..torn {
                    data.push(if garbage { rng.next() as u8 } else { 0 });
                }
            }
            _ => {}
        }
        // Drawn only for a file whose size changed since its last sync, so images of
        // files that never had one stay as they were.
        let unsynced_size_kept = match rng.as_mut() {
            Some(rng) if matches!(mode, CrashMode::RandomPages { .. }) => {
                lens.size != lens.synced_size && rng.next() & 1 == 1
            }
            _ => false,
        };
        let size = if unsynced_size_kept {
            lens.size
        } else {
            lens.synced_size
        };
        if data.len() < size {
            data.resize(size, 0);
        }
        let synced_len = data.len();
        inodes.insert(id, (data, synced_len));
    }
    State::rebuild(inodes, names, p.dirs.clone(), p.next_inode)
}

#[cfg(test)]
mod tests {
    use crate::{CrashMode, MemFs, Vfs, WritableFile};
    use std::path::Path;

    fn setup() -> (MemFs, Box<dyn WritableFile>) {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.record_crash_points();
        let mut f = fs.create(Path::new("/d/a")).unwrap();
        f.write_all(&[1u8; 100]).unwrap();
        f.sync().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_all(&[2u8; 3 * 4096]).unwrap();
        fs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
        (fs, f)
    }

    #[test]
    fn points_are_recorded_before_each_mutating_call() {
        let (fs, _f) = setup();
        // create, write, sync, sync_dir, write, rename.
        assert_eq!(fs.crash_points(), 6);
        assert_eq!(fs.mutations(), 6);
        // Before the create: nothing exists.
        let img = fs.crash_image(0, CrashMode::SyncedOnly).unwrap();
        assert!(!img.exists(Path::new("/d/a")));
        // Before the rename: /d/a durable with its 100 synced bytes.
        let img = fs.crash_image(5, CrashMode::SyncedOnly).unwrap();
        assert_eq!(img.read(Path::new("/d/a")).unwrap(), vec![1u8; 100]);
        assert!(fs.crash_image(6, CrashMode::SyncedOnly).is_none());
    }

    #[test]
    fn random_pages_keep_renames_atomic_and_zero_missing_pages() {
        let (fs, _f) = setup();
        let mut saw = [false; 2];
        for seed in 0..64 {
            // A crash after the rename was issued (point recorded before a later call):
            // use the final state by recording one more call.
            let g = fs.clone();
            let _ = g.sync_dir(Path::new("/nowhere"));
            let last = g.crash_points() - 1;
            let img = g
                .crash_image(last, CrashMode::RandomPages { seed })
                .unwrap();
            let (a, b) = (Path::new("/d/a"), Path::new("/d/b"));
            assert!(img.exists(a) != img.exists(b), "rename is atomic");
            saw[usize::from(img.exists(b))] = true;
            let data = img.read(if img.exists(a) { a } else { b }).unwrap();
            assert_eq!(&data[..100], &[1u8; 100][..]);
            assert!(data[100..].iter().all(|&x| x == 2 || x == 0));
            assert!(data.len() <= 100 + 3 * 4096);
        }
        assert_eq!(saw, [true, true], "both sides of the rename occur");
    }

    /// An image keeps a file's synced size (zeros past its bytes); in `RandomPages` mode an
    /// unsynced size change survives in some images and not in others.
    #[test]
    fn images_keep_the_synced_size_and_sometimes_an_unsynced_one() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.record_crash_points();
        let mut f = fs.create(Path::new("/d/a")).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.write_all(&[1u8; 100]).unwrap();
        f.set_size(8192).unwrap();
        f.sync().unwrap();
        f.set_size(100).unwrap();
        let _ = fs.sync_dir(Path::new("/nowhere"));
        let last = fs.crash_points() - 1;
        let img = fs.crash_image(last, CrashMode::SyncedOnly).unwrap();
        let data = img.read(Path::new("/d/a")).unwrap();
        assert_eq!(data.len(), 8192);
        assert!(data[..100].iter().all(|&x| x == 1) && data[100..].iter().all(|&x| x == 0));
        let mut lens = std::collections::BTreeSet::new();
        for seed in 0..32 {
            let img = fs
                .crash_image(last, CrashMode::RandomPages { seed })
                .unwrap();
            lens.insert(img.read(Path::new("/d/a")).unwrap().len());
        }
        assert_eq!(lens.into_iter().collect::<Vec<_>>(), vec![100, 8192]);
    }

    #[test]
    fn torn_writes_end_in_one_bad_sector() {
        let (fs, _f) = setup();
        for seed in 0..32 {
            let img = fs.crash_image(5, CrashMode::TornWrite { seed }).unwrap();
            let data = img.read(Path::new("/d/a")).unwrap();
            assert_eq!(&data[..100], &[1u8; 100][..]);
            let extra = data.len() - 100;
            assert!(extra % 512 == 0 && extra <= 3 * 4096, "{extra}");
        }
    }
}
