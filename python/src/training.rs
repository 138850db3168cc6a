//! The training-data iterator: a key range of one snapshot as Arrow batches in an order
//! fixed by a seed. The rows are read in key order in windows of `window` rows (the
//! memory bound); each window is permuted with a ChaCha8 generator seeded once, then cut
//! into batches. The same snapshot version, range, sizes and seed give the same batches on
//! every run, on every machine: the rows at a version never change, their key order is
//! total, and ChaCha8 and the shuffle are value-stable. A window as large as the range
//! shuffles it fully; a smaller one mixes rows only within their window.

use arrow_array::{RecordBatch, UInt32Array};
use arrow_select::take::take_record_batch;
use chronokv::{ArrowBatches, Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;

/// Shuffled batches of one snapshot's range.
pub struct Shuffled {
    windows: ArrowBatches,
    rng: ChaCha8Rng,
    batch_rows: usize,
    ready: VecDeque<RecordBatch>,
}

impl Shuffled {
    /// `windows` must yield batches of the window size (the last may be shorter).
    pub fn new(windows: ArrowBatches, seed: u64, batch_rows: usize) -> Self {
        Shuffled {
            windows,
            rng: ChaCha8Rng::seed_from_u64(seed),
            batch_rows: batch_rows.max(1),
            ready: VecDeque::new(),
        }
    }

    fn shuffle(&mut self, window: &RecordBatch) -> Result<RecordBatch> {
        let rows = u32::try_from(window.num_rows()).map_err(|_| {
            Error::InvalidArgument("a shuffle window holds at most 2^32 rows".into())
        })?;
        let mut order: Vec<u32> = (0..rows).collect();
        order.shuffle(&mut self.rng);
        take_record_batch(window, &UInt32Array::from(order))
            .map_err(|e| Error::InvalidArgument(format!("arrow take: {e}")))
    }
}

impl Iterator for Shuffled {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() {
            let window = match self.windows.next()? {
                Ok(window) => window,
                Err(e) => return Some(Err(e)),
            };
            let shuffled = match self.shuffle(&window) {
                Ok(shuffled) => shuffled,
                Err(e) => return Some(Err(e)),
            };
            // Slices share the shuffled window's buffers.
            let mut offset = 0;
            while offset < shuffled.num_rows() {
                let len = self.batch_rows.min(shuffled.num_rows() - offset);
                self.ready.push_back(shuffled.slice(offset, len));
                offset += len;
            }
        }
        self.ready.pop_front().map(Ok)
    }
}
