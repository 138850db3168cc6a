//! Process counters from `/proc/self` (Linux). Both are process-wide, which is why the
//! runner runs each engine in its own child process.

/// Peak resident set size (`VmHWM`) in bytes, if `/proc/self/status` has it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    proc_field(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// Current anonymous and file-backed resident bytes (`RssAnon`, `RssFile`; shared memory
/// is neither), if `/proc/self/status` has them.
pub fn rss_parts_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let anon = proc_field(&status, "RssAnon:")?;
    let file = proc_field(&status, "RssFile:")?;
    Some((anon * 1024, file * 1024))
}

/// Resets the peak RSS (`VmHWM`) to the current RSS, so the next [`peak_rss_bytes`] is the
/// peak since now (Linux: writing 5 to `/proc/self/clear_refs`). False if it could not.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peaks of anonymous and file-backed RSS, sampled every few milliseconds on a thread
/// of its own: the kernel keeps a peak of the total only, and a footprint made of mapped
/// file pages (page cache the process can drop) differs from one of allocated memory.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    peaks: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling every `every`.
    pub fn start(every: std::time::Duration) -> RssSampler {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new((0, 0)));
        let (s, p) = (stop.clone(), peaks.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let (Some((anon, file)), Ok(mut peaks)) = (rss_parts_bytes(), p.lock()) {
                    peaks.0 = peaks.0.max(anon);
                    peaks.1 = peaks.1.max(file);
                }
                std::thread::sleep(every);
            }
        });
        RssSampler {
            stop,
            peaks,
            thread: Some(thread),
        }
    }

    /// The anonymous and file-backed peaks since the start or the last call; restarts them.
    pub fn take_peaks(&self) -> (u64, u64) {
        let now = rss_parts_bytes().unwrap_or_default();
        self.peaks.lock().map_or(now, |mut p| {
            let taken = (p.0.max(now.0), p.1.max(now.1));
            *p = (0, 0);
            taken
        })
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bytes this process caused to be sent to the storage layer (`write_bytes` of
/// `/proc/self/io`): WAL, flushes and compactions alike, counted when pages are dirtied.
pub fn io_write_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    proc_field(&io, "write_bytes:")
}

/// The first number after `name` on its line.
pub fn proc_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        let status = "Name:\tx\nVmHWM:\t  12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(proc_field(status, "VmHWM:"), Some(12345));
        assert_eq!(
            proc_field("write_bytes: 4096\n", "write_bytes:"),
            Some(4096)
        );
        assert_eq!(proc_field(status, "Missing:"), None);
    }

    #[test]
    fn the_sampler_sees_a_resident_allocation() {
        let sampler = RssSampler::start(std::time::Duration::from_millis(1));
        let before = sampler.take_peaks();
        let mut big = vec![0u8; 64 << 20];
        for i in (0..big.len()).step_by(4096) {
            big[i] = 1; // touch every page: resident
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (anon, _) = sampler.take_peaks();
        std::hint::black_box(&big);
        assert!(anon >= before.0 + (60 << 20), "{anon} after {before:?}");
    }
}
