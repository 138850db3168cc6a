//! The tree: what the manifest recorded (its writer and the state its edits built), the
//! read view that readers take, and the file-number counter. Flushes and compactions
//! change it: append an edit under [`Tree::lock`], then swap the view while still holding
//! it, so the view never runs ahead of or behind the manifest for longer than one swap.

use crate::error::{Error, Result};
use crate::invariants::{invariant, view_problem};
use crate::lock_order::{Guard, Level, OrderedMutex, OrderedRwLock};
use crate::manifest::{ManifestWriter, TreeState};
use crate::view::View;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The manifest writer and the tree it has recorded.
pub struct Recorded {
    pub manifest: Manifest,
    pub state: TreeState,
}

/// The live manifest: open for appending, or, for a read-only store, only the file the
/// state was read from (a read-only store appends nothing).
pub enum Manifest {
    Writer(ManifestWriter),
    ReadOnly { path: PathBuf, number: u64 },
}

impl Manifest {
    /// The writer; `Error::ReadOnly` for a read-only store (whose edits are refused before
    /// they get here, by `Health::check_writable`).
    pub fn writer(&mut self) -> Result<&mut ManifestWriter> {
        match self {
            Manifest::Writer(w) => Ok(w),
            Manifest::ReadOnly { .. } => Err(Error::ReadOnly),
        }
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        match self {
            Manifest::Writer(w) => w.path(),
            Manifest::ReadOnly { path, .. } => path,
        }
    }

    /// The manifest's file number.
    pub fn number(&self) -> u64 {
        match self {
            Manifest::Writer(w) => w.number(),
            Manifest::ReadOnly { number, .. } => *number,
        }
    }
}

pub struct Tree {
    recorded: OrderedMutex<Recorded>,
    view: OrderedRwLock<Arc<View>>,
    /// The next unused file number (WAL segments, runs and manifests share it).
    next_file: AtomicU64,
}

impl Tree {
    pub fn new(recorded: Recorded, view: View, next_file: u64) -> Tree {
        Tree {
            recorded: OrderedMutex::new(Level::Tree, recorded),
            view: OrderedRwLock::new(Level::View, Arc::new(view)),
            next_file: AtomicU64::new(next_file),
        }
    }

    /// The manifest and its state; held across an edit and the view swap that follows it.
    pub fn lock(&self) -> Guard<'_, Recorded> {
        self.recorded.lock()
    }

    /// The view readers use now.
    pub fn current_view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    /// Replaces the view with `next(current)`, which changes only memtables (sealing one).
    /// Readers holding the old view keep it.
    pub fn swap_memtables(&self, next: impl FnOnce(&View) -> View) {
        let mut view = self.view.write();
        let swapped = next(&view);
        *view = Arc::new(swapped);
    }

    /// Replaces the view with `next(current)` after an edit of `recorded` (whose lock the
    /// caller holds) added or removed runs. `leveled`: levels below 0 must stay disjoint.
    pub fn swap_runs(&self, recorded: &Recorded, leveled: bool, next: impl FnOnce(&View) -> View) {
        let mut view = self.view.write();
        let swapped = next(&view);
        invariant!(
            view_problem(&swapped, &recorded.state, leveled).is_none(),
            "after a view swap: {}",
            view_problem(&swapped, &recorded.state, leveled).unwrap_or_default()
        );
        *view = Arc::new(swapped);
    }

    pub fn alloc_file_number(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::SeqCst)
    }

    /// The next number [`Tree::alloc_file_number`] would hand out.
    pub fn next_file_number(&self) -> u64 {
        self.next_file.load(Ordering::SeqCst)
    }
}
