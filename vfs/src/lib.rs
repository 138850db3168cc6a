//! The file-system seam of chronokv.
//!
//! Every file the engine touches (WAL segments, run files, the manifest, CURRENT, the lock
//! file) is created, read, renamed, synced and deleted through [`Vfs`]. Two implementations
//! ship here:
//!
//! - [`RealFs`]: the operating system's file system (`std::fs` plus `memmap2`).
//! - [`MemFs`]: an in-memory file system for tests. It keeps file data and directory entries
//!   apart and remembers what was synced, so the reliability harness can later simulate power
//!   loss (keep only synced state).
//! - [`FaultFs`]: wraps any `Vfs` and injects I/O errors (EIO, ENOSPC) into writes and syncs,
//!   or into the N-th mutating call, once or from then on.
//!
//! The trait is deliberately small: what a log-structured engine needs and nothing more.
//! Paths are plain `std::path::Path`s; a `Vfs` never interprets file names.
//!
//! Thread-safety: every implementation is `Send + Sync`; a [`WritableFile`] is owned by one
//! writer at a time.

#![warn(missing_docs)]

pub mod bug;
mod crash;
mod fault;
#[cfg(fuzzing)]
pub mod fuzzing;
mod mem;
mod real;

pub use crash::CrashMode;
pub use fault::{CallRecord, FaultFs, FaultKind, FaultMode, InjectedFailure, MutatingOp};
pub use mem::MemFs;
pub use real::RealFs;

/// The hook of one planted bug's site: true when the planted bug `$name` is selected
/// (`CHRONOKV_BUG=$name`) in a build that plants bugs (`CHRONOKV_PLANT_BUGS=1`, see
/// `build.rs`); in every other build a constant `false` the compiler removes with the
/// bug's branch. See [`bug`] and RELIABILITY.md G6.
#[macro_export]
macro_rules! bug {
    ($name:literal) => {
        $crate::bug::planted($name)
    };
}

/// Whether a checksum read from a file accepts the one computed over its bytes: equal, or,
/// in a fuzz build whose target bypasses checksums ([`fuzzing`]), always, so the fuzzer
/// reaches the decoders behind them. Every checksum comparison of the WAL, manifest, run
/// and backup decoders goes through here.
pub fn checksum_accepts(stored: u32, computed: u32) -> bool {
    #[cfg(fuzzing)]
    if fuzzing::checksums_skipped() {
        return true;
    }
    stored == computed
}

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file opened for appending. Writes go to the end; nothing is durable until
/// [`WritableFile::sync`] returns.
pub trait WritableFile: Send + Debug {
    /// Appends all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// The number of bytes written so far: where the next append goes. The file may be
    /// longer (see [`WritableFile::set_size`]).
    fn len(&self) -> u64;
    /// Sets the file's size without moving the append position ([`WritableFile::len`]):
    /// past the bytes written the file reads as zeros, and appends overwrite them. The WAL
    /// preallocates segments this way, so that a synced append need not make a new file
    /// size durable as well, and calls it with `len()` to drop what it did not use
    /// (`docs/format/wal.md`, "Preallocated segments"). A size below `len()` is refused.
    /// The new size is durable after the next [`WritableFile::sync`].
    ///
    /// The default does nothing, which is correct (the file only stays as long as what
    /// was written) where a file system cannot preallocate.
    fn set_size(&mut self, size: u64) -> io::Result<()> {
        let _ = size;
        Ok(())
    }
    /// True when nothing was written yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The refusal every [`WritableFile::set_size`] gives a size below the bytes written.
pub(crate) fn check_size(size: u64, written: u64) -> io::Result<()> {
    if size < written {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("size {size} is below the {written} bytes written"),
        ));
    }
    Ok(())
}

/// An immutable, fully readable view of a file's bytes (a memory map on a real file system).
///
/// The bytes must not change while the view lives: chronokv never modifies a file it maps.
pub trait MappedFile: Send + Sync + std::panic::RefUnwindSafe + Debug {
    /// The file's bytes.
    fn bytes(&self) -> &[u8];
}

/// An immutable file opened for reads at any offset (`pread` on a real file system).
///
/// Unlike a [`MappedFile`], reading through it leaves the bytes in the operating system's
/// page cache rather than in the process's resident set, so a reader that copies what it
/// needs into a bounded cache keeps the process's memory bounded however large the file.
pub trait RandomAccessFile: Send + Sync + std::panic::RefUnwindSafe + Debug {
    /// Fills `buf` with the bytes at `offset`; fails (`UnexpectedEof`) if the file ends
    /// first.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// `len` bytes at `offset` in a new buffer; fails (`UnexpectedEof`) if the file ends
    /// first. The default zero-fills a buffer and calls [`RandomAccessFile::read_exact_at`];
    /// a file system may read into the buffer's spare capacity instead.
    fn read_vec_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(buf)
    }
    /// The file's length in bytes when it was opened.
    fn len(&self) -> u64;
    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`RandomAccessFile`] served from a [`MappedFile`]: the default for file systems
/// without a positional read of their own (in-memory ones, wrappers).
#[derive(Debug)]
pub struct MappedReader(pub Arc<dyn MappedFile>);

impl RandomAccessFile for MappedReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.0.bytes();
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get(o..o.checked_add(buf.len())?))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} past the end ({} bytes)",
                        buf.len(),
                        bytes.len()
                    ),
                )
            })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.0.bytes().len() as u64
    }
}

/// A held exclusive lock on a directory; released on drop.
pub trait DirLock: Send + Sync + Debug {}

/// The file-system operations chronokv uses. See the crate documentation.
pub trait Vfs: Send + Sync + Debug {
    /// Creates the directory and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` (truncating an existing file) and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Reads a whole file into memory.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Maps a whole file read-only.
    fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>>;
    /// Opens an immutable file for positional reads. The default serves them from
    /// [`Vfs::map`]; [`RealFs`] reads with `pread`, so pages read stay out of the process's
    /// resident set.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(MappedReader(self.map(path)?)))
    }
    /// The length of a file in bytes.
    fn file_size(&self, path: &Path) -> io::Result<u64>;
    /// True when `path` names an existing file or directory.
    fn exists(&self, path: &Path) -> bool;
    /// Atomically replaces `to` with `from` (POSIX rename). Durable only after
    /// [`Vfs::sync_dir`] on the parent.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file. Durable only after [`Vfs::sync_dir`] on the parent.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries of a directory, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing). Fails with
    /// `io::ErrorKind::WouldBlock` when another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
    /// Gives the existing file `from` a second name `to` (a hard link): both names share the
    /// same bytes, and removing one leaves the other. Fails if `to` exists. Durable only
    /// after [`Vfs::sync_dir`] on `to`'s parent. The default reports
    /// `io::ErrorKind::Unsupported`; callers then copy the file instead.
    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this file system has no hard links",
        ))
    }
}
