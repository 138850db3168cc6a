//! Running a stage's independent jobs (seeds, planted-bug children) on a few threads while
//! reporting them in their serial order, so the output reads as a one-thread run's would.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs `job` for every item on `workers` threads (at least one) and hands each result to
/// `report` in item order, as soon as it and every item before it are done.
pub fn in_order<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    job: impl Fn(&T) -> R + Sync,
    mut report: impl FnMut(&T, R),
) {
    let next = AtomicUsize::new(0);
    let (done, results) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..workers.max(1) {
            let (done, next, job) = (done.clone(), &next, &job);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if done.send((i, job(item))).is_err() {
                    break;
                }
            });
        }
        drop(done);
        let mut waiting = BTreeMap::new();
        let mut want = 0;
        for (i, r) in results {
            waiting.insert(i, r);
            while let Some(r) = waiting.remove(&want) {
                report(&items[want], r);
                want += 1;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_item_order_whatever_finishes_first() {
        // Early items take longest, so later ones finish first on the other threads.
        let items: Vec<u64> = (0..12).collect();
        let mut seen = Vec::new();
        in_order(
            &items,
            3,
            |&i| {
                std::thread::sleep(std::time::Duration::from_millis(2 * (12 - i)));
                i * i
            },
            |&i, r| seen.push((i, r)),
        );
        let want: Vec<(u64, u64)> = items.iter().map(|&i| (i, i * i)).collect();
        assert_eq!(seen, want);
    }
}
