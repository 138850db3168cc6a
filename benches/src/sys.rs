//! Process counters from `/proc/self` (Linux). Both are process-wide, which is why the
//! runner runs each engine in its own child process.

/// Peak resident set size (`VmHWM`) in bytes, if `/proc/self/status` has it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    proc_field(&status, "VmHWM:").map(|kib| kib * 1024)
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
}
