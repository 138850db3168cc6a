//! [`RealFs`]: the operating system's file system.

use crate::{DirLock, MappedFile, RandomAccessFile, Vfs, WritableFile};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// The real file system: `std::fs` for I/O, `pread` for positional reads and `memmap2`
/// for maps.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

#[derive(Debug)]
struct RealWritable {
    file: File,
    len: u64,
    /// The size changed since the last sync: the next one must be an fsync, because
    /// fdatasync need not persist a size that no written byte depends on (a shrink).
    resized: bool,
}

impl WritableFile for RealWritable {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.resized {
            self.file.sync_all()?;
            self.resized = false;
            return Ok(());
        }
        self.file.sync_data()
    }

    fn len(&self) -> u64 {
        self.len
    }

    /// `ftruncate(2)`: a larger size makes a sparse tail (no blocks are reserved; they are
    /// allocated as appends fill them, one metadata change per 4 KiB block rather than a
    /// size change per append).
    fn set_size(&mut self, size: u64) -> io::Result<()> {
        crate::check_size(size, self.len)?;
        self.file.set_len(size)?;
        self.resized = true;
        Ok(())
    }
}

#[derive(Debug)]
enum RealMap {
    Mapped(memmap2::Mmap),
    // A zero-length file cannot be mapped on every platform.
    Empty,
}

impl MappedFile for RealMap {
    fn bytes(&self) -> &[u8] {
        match self {
            RealMap::Mapped(m) => m,
            RealMap::Empty => &[],
        }
    }
}

#[derive(Debug)]
struct RealReader {
    file: File,
    len: u64,
}

impl RandomAccessFile for RealReader {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    /// Reads into the new buffer's spare capacity with `pread(2)`: no zero-fill first (a
    /// block miss would otherwise clear 8 KiB only to overwrite it).
    fn read_vec_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::fd::AsRawFd;
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        let mut done = 0usize;
        while done < len {
            // `buf.len() == done`: the spare capacity starts where the next byte goes.
            let spare = buf.spare_capacity_mut();
            let at = offset
                .checked_add(done as u64)
                .and_then(|a| libc::off_t::try_from(a).ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
            // SAFETY: the pointer and length describe `spare`, writable memory owned by
            // `buf`; pread writes at most that many bytes and reads nothing from it.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                    at,
                )
            };
            match n {
                n if n > 0 => {
                    done += n as usize;
                    // SAFETY: pread initialised the first `done` bytes (this call's `n`
                    // after the earlier ones).
                    unsafe { buf.set_len(done) };
                }
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ends before {len} bytes at {offset}"),
                    ))
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(buf)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct RealLock {
    _file: File,
}

impl DirLock for RealLock {}

impl Vfs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(RealWritable {
            file,
            len: 0,
            resized: false,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Arc<dyn MappedFile>> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Arc::new(RealMap::Empty));
        }
        // SAFETY: chronokv maps only immutable files (runs are written once under a
        // temporary name and renamed); nothing in the process writes to them afterwards.
        // A file changed behind our back by another program is outside the contract.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Arc::new(RealMap::Mapped(map)))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Arc::new(RealReader { file, len }))
    }

    fn file_size(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another process or handle", path.display()),
            )),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_map_rename_list_lock() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let a = dir.path().join("a.tmp");
        let mut f = fs.create(&a).unwrap();
        f.write_all(b"hello").unwrap();
        f.sync().unwrap();
        assert_eq!(f.len(), 5);
        drop(f);
        let b = dir.path().join("b");
        fs.rename(&a, &b).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(fs.map(&b).unwrap().bytes(), b"hello");
        let r = fs.open_read(&b).unwrap();
        assert_eq!(r.len(), 5);
        let mut buf = [0u8; 3];
        r.read_exact_at(1, &mut buf).unwrap();
        assert_eq!(&buf, b"ell");
        let eof = r.read_exact_at(3, &mut buf).unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(r.read_vec_at(1, 4).unwrap(), b"ello");
        assert_eq!(r.read_vec_at(0, 0).unwrap(), b"");
        let eof = r.read_vec_at(2, 4).unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fs.list(dir.path()).unwrap(), vec!["b".to_string()]);
        let lock_path = dir.path().join("LOCK");
        let held = fs.lock(&lock_path).unwrap();
        let err = fs.lock(&lock_path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        fs.lock(&lock_path).unwrap();
    }

    #[test]
    fn link_gives_a_second_name_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut f = RealFs.create(&a).unwrap();
        f.write_all(b"immutable").unwrap();
        f.sync().unwrap();
        RealFs.link(&a, &b).unwrap();
        assert!(RealFs.link(&a, &b).is_err(), "target exists");
        RealFs.remove_file(&a).unwrap();
        assert_eq!(RealFs.read(&b).unwrap(), b"immutable");
    }

    /// `set_size` extends the file with zeros without moving the append position, and cuts
    /// it back to what was written; below that it is refused.
    #[test]
    fn set_size_preallocates_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = RealFs.create(&path).unwrap();
        f.write_all(b"abc").unwrap();
        f.set_size(4096).unwrap();
        f.write_all(b"de").unwrap();
        f.sync().unwrap();
        let bytes = RealFs.read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(&bytes[..5], b"abcde");
        assert!(bytes[5..].iter().all(|&b| b == 0));
        assert!(f.set_size(4).is_err());
        f.set_size(f.len()).unwrap();
        f.sync().unwrap();
        assert_eq!(RealFs.read(&path).unwrap(), b"abcde");
    }

    #[test]
    fn empty_file_maps_to_empty_slice() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty");
        drop(RealFs.create(&p).unwrap());
        assert!(RealFs.map(&p).unwrap().bytes().is_empty());
    }
}
