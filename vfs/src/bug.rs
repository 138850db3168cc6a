//! Planted bugs (RELIABILITY.md G6, "testing the tester"), compiled in only by a build with
//! `CHRONOKV_PLANT_BUGS=1` in its environment (`--cfg chronokv_bugs`, set by `build.rs`).
//!
//! Each planted bug is a small `if chronokv_vfs::bug!("name") { ... }` at the real code site
//! (in `wal`, `runs` and `engine`); the reliability harness's `bugs` stage runs the stage that
//! should catch each one and expects it to fail. One build carries every bug; the
//! environment variable `CHRONOKV_BUG` selects at most one of them for the whole process
//! (read once). In a build without the cfg, [`planted`] is a constant `false`, so every
//! site's branch is dead code the compiler removes.

#[cfg(chronokv_bugs)]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(chronokv_bugs)]
use std::sync::OnceLock;

/// True in a build that plants bugs.
pub const PLANTED: bool = cfg!(chronokv_bugs);

/// The hook behind [`crate::bug!`]: whether the planted bug `name` takes effect here.
#[inline(always)]
pub fn planted(name: &str) -> bool {
    #[cfg(chronokv_bugs)]
    return active(name);
    #[cfg(not(chronokv_bugs))]
    {
        let _ = name;
        false
    }
}

/// The environment variable that selects the planted bug.
pub const ENV: &str = "CHRONOKV_BUG";

#[cfg(chronokv_bugs)]
static SELECTED: OnceLock<Option<String>> = OnceLock::new();
#[cfg(chronokv_bugs)]
static FIRED: AtomicU64 = AtomicU64::new(0);

/// The planted bug `CHRONOKV_BUG` selects, if any (read on the first call); always `None`
/// in a build that plants none.
#[cfg(not(chronokv_bugs))]
pub fn selected() -> Option<&'static str> {
    None
}

/// The planted bug `CHRONOKV_BUG` selects, if any (read on the first call).
#[cfg(chronokv_bugs)]
pub fn selected() -> Option<&'static str> {
    SELECTED
        .get_or_init(|| std::env::var(ENV).ok().filter(|s| !s.is_empty()))
        .as_deref()
}

/// True when `name` is the selected bug; counts how often a selected bug took effect.
#[cfg(chronokv_bugs)]
fn active(name: &str) -> bool {
    let on = selected() == Some(name);
    if on {
        FIRED.fetch_add(1, Ordering::Relaxed);
    }
    on
}

/// How many times the selected bug's site was reached (and the bug took effect) so far.
pub fn fired() -> u64 {
    #[cfg(not(chronokv_bugs))]
    return 0;
    #[cfg(chronokv_bugs)]
    FIRED.load(Ordering::Relaxed)
}
