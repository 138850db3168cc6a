//! Engine iterators behind Python iterators: items are pulled in chunks, each chunk with
//! the GIL released, so a scan costs one GIL round trip per chunk rather than per item and
//! holds at most one chunk in memory.

use chronokv::{Error, Result};
use std::collections::VecDeque;

/// The most items one chunk holds.
pub const CHUNK_ITEMS: usize = 256;
/// The most key and value bytes one chunk holds (a chunk ends after the item that reaches it).
pub const CHUNK_BYTES: usize = 1 << 20;

/// An engine iterator and the chunk read ahead of it. After an error, the items read
/// before it are yielded first, then the error, then nothing.
pub struct Chunked<I, T> {
    source: Option<I>,
    ready: VecDeque<T>,
    failed: Option<Error>,
}

impl<I, T> Chunked<I, T>
where
    I: Iterator<Item = Result<T>>,
{
    pub fn new(source: I) -> Self {
        Chunked {
            source: Some(source),
            ready: VecDeque::new(),
            failed: None,
        }
    }

    /// True when the next item must be read from the source first.
    pub fn needs_fill(&self) -> bool {
        self.ready.is_empty() && self.failed.is_none() && self.source.is_some()
    }

    /// Reads the next chunk; `size` gives an item's bytes. Call with the GIL released.
    pub fn fill(&mut self, size: impl Fn(&T) -> usize) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let mut bytes = 0;
        while self.ready.len() < CHUNK_ITEMS && bytes < CHUNK_BYTES {
            match source.next() {
                Some(Ok(item)) => {
                    bytes += size(&item);
                    self.ready.push_back(item);
                }
                Some(Err(e)) => {
                    self.failed = Some(e);
                    self.source = None;
                    return;
                }
                None => {
                    // Dropping the source lets go of the runs it holds open.
                    self.source = None;
                    return;
                }
            }
        }
    }

    /// The next item, the error that ended the source, or `None` at the end.
    pub fn take(&mut self) -> Option<Result<T>> {
        if let Some(item) = self.ready.pop_front() {
            return Some(Ok(item));
        }
        self.failed.take().map(Err)
    }
}
