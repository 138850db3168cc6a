//! Planted bugs (RELIABILITY.md G6, "testing the tester"): builds with the `bug-injection`
//! feature only. Never compiled into a normal build.
//!
//! Each planted bug is a small `if chronokv_vfs::bug!("name") { ... }` at the real code site
//! (in `wal`, `runs` and `engine`); the reliability harness's `bugs` stage runs the stage that
//! should catch each one and expects it to fail. One build carries every bug; the
//! environment variable `CHRONOKV_BUG` selects at most one of them for the whole process
//! (read once). The [`crate::bug!`] macro is the literal `false` in a crate built without
//! its own `bug-injection` feature, so the bug's branch is dead code there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that selects the planted bug.
pub const ENV: &str = "CHRONOKV_BUG";

static SELECTED: OnceLock<Option<String>> = OnceLock::new();
static FIRED: AtomicU64 = AtomicU64::new(0);

/// The planted bug `CHRONOKV_BUG` selects, if any (read on the first call).
pub fn selected() -> Option<&'static str> {
    SELECTED
        .get_or_init(|| std::env::var(ENV).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// True when `name` is the selected bug; counts how often a selected bug took effect.
pub fn active(name: &str) -> bool {
    let on = selected() == Some(name);
    if on {
        FIRED.fetch_add(1, Ordering::Relaxed);
    }
    on
}

/// How many times the selected bug's site was reached (and the bug took effect) so far.
pub fn fired() -> u64 {
    FIRED.load(Ordering::Relaxed)
}
