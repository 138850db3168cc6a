//! Progress bars for long operations: drawn on stderr only when it is a terminal, so piped
//! or captured runs stay quiet.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub struct Bar(Option<ProgressBar>);

fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

impl Bar {
    /// A bar over `total` bytes.
    pub fn bytes(msg: &str, total: u64) -> Bar {
        Self::with(msg, total, "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
    }

    /// A bar over `total` items.
    pub fn count(msg: &str, total: u64) -> Bar {
        Self::with(msg, total, "{msg} [{bar:30}] {pos}/{len} ({eta})")
    }

    /// A spinner for work of unknown size, counting items.
    pub fn spinner(msg: &str) -> Bar {
        if !enabled() {
            return Bar(None);
        }
        let pb = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} {elapsed}") {
            pb.set_style(style);
        }
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        Bar(Some(pb))
    }

    fn with(msg: &str, total: u64, template: &str) -> Bar {
        if !enabled() {
            return Bar(None);
        }
        let pb = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(msg.to_string());
        Bar(Some(pb))
    }

    /// Sets the position (and the length, which may grow).
    pub fn set(&self, done: u64, total: u64) {
        if let Some(pb) = &self.0 {
            if pb.length() != Some(total) {
                pb.set_length(total);
            }
            pb.set_position(done);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(pb) = &self.0 {
            pb.inc(n);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}
