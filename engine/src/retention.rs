//! The store's history contract and the horizon derived from it.
//!
//! The contract ([`Retention`]: a time window and a per-key version depth) is stored in the
//! manifest (tag 9, `docs/format/manifest.md`), not taken from `Options` at every open: a
//! program that opens the store without naming retention must not let compaction or
//! time-index pruning drop history the owner meant to keep. [`resolve_open`] decides what an
//! open records; [`RetentionState`] owns the contract and the horizon while the store runs,
//! and everything that needs either (compaction rules, time-index pruning, reads of the
//! past) asks it. Nothing reads retention from `Options` after open.

use crate::error::{Error, Result};
use crate::options::Options;
use chronokv_compaction::GcRules;
use chronokv_snapshot::{Registry, TimeIndex, Version};
use std::fmt;
use std::time::Duration;

/// A store's history contract: what compaction and the time index keep. Stored in the
/// manifest; read it with `Db::history_retention`, change it with
/// `Db::set_history_retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Every version committed within this long stays readable (`snapshot_as_of`,
    /// `snapshot_at`, `changes`). `None`: no window, only the present and live snapshots.
    /// Kept in whole microseconds; a zero window is `None`.
    pub window: Option<Duration>,
    /// Each key's newest this many versions are kept whatever their age, and `history`
    /// shows them (0: none beyond the window).
    pub versions_per_key: usize,
}

impl Retention {
    /// The contract with `window` normalised as stored: whole microseconds (rounded up, so
    /// a non-zero window never becomes "none"), a zero window as `None`.
    pub fn new(window: Option<Duration>, versions_per_key: usize) -> Retention {
        Retention {
            window: normalize_window(window),
            versions_per_key,
        }
    }

    /// Does this contract keep at least what `other` keeps (in both respects)?
    pub fn covers(&self, other: &Retention) -> bool {
        window_len(self.window) >= window_len(other.window)
            && self.versions_per_key >= other.versions_per_key
    }

    /// The window in microseconds as the manifest stores it (0: none).
    pub(crate) fn window_micros(&self) -> u64 {
        self.window
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// The contract as the manifest stores it (window in µs, 0 for none).
    pub(crate) fn from_stored(window_micros: u64, versions_per_key: u64) -> Retention {
        Retention {
            window: (window_micros > 0).then(|| Duration::from_micros(window_micros)),
            // A count past the address space keeps everything, as the largest one would.
            versions_per_key: usize::try_from(versions_per_key).unwrap_or(usize::MAX),
        }
    }
}

/// `7d, 3 versions per key`; `no history window, 0 versions per key`.
impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.window {
            Some(d) => write!(f, "window {}", format_duration(d))?,
            None => write!(f, "no window")?,
        }
        write!(f, ", {} versions per key", self.versions_per_key)
    }
}

/// A duration in the largest unit that divides it (`7d`, `90m`, `1500ms`), as the CLI
/// parses them back.
pub fn format_duration(d: Duration) -> String {
    let micros = d.as_micros();
    for (unit, name) in [
        (86_400_000_000u128, "d"),
        (3_600_000_000, "h"),
        (60_000_000, "m"),
        (1_000_000, "s"),
        (1_000, "ms"),
    ] {
        if micros >= unit && micros.is_multiple_of(unit) {
            return format!("{}{name}", micros / unit);
        }
    }
    format!("{micros}us")
}

fn normalize_window(window: Option<Duration>) -> Option<Duration> {
    let d = window.filter(|d| !d.is_zero())?;
    let micros = d.as_micros().max(1);
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    let exact = Duration::from_micros(micros);
    // Round a sub-microsecond remainder up: never store less than was asked for.
    Some(if exact < d {
        Duration::from_micros(micros.saturating_add(1))
    } else {
        exact
    })
}

fn window_len(window: Option<Duration>) -> Duration {
    window.unwrap_or(Duration::ZERO)
}

/// What an open records as the store's contract. `stored` is the manifest's (`None` for a
/// new store or one written before the contract was stored: such a store records what this
/// open names, as a new store does). A field `opts` leaves unnamed keeps the stored value; a
/// named one that keeps more is recorded (growing never loses data); one that keeps less is
/// refused, since shrinking drops history for good and must be asked for explicitly.
pub(crate) fn resolve_open(stored: Option<Retention>, opts: &Options) -> Result<Retention> {
    let base = stored.unwrap_or_default();
    let window = match opts.history_retention {
        None => base.window,
        Some(w) => normalize_window(Some(w)),
    };
    let versions_per_key = opts
        .history_versions_per_key
        .unwrap_or(base.versions_per_key);
    let asked = Retention {
        window,
        versions_per_key,
    };
    if let Some(stored) = stored {
        if window_len(window) < window_len(stored.window) {
            return Err(shrink_refused(
                "history_retention",
                &describe_window(window),
                &describe_window(stored.window),
            ));
        }
        if versions_per_key < stored.versions_per_key {
            return Err(shrink_refused(
                "history_versions_per_key",
                &versions_per_key.to_string(),
                &stored.versions_per_key.to_string(),
            ));
        }
    }
    Ok(asked)
}

fn describe_window(w: Option<Duration>) -> String {
    w.map_or_else(|| "none".to_string(), format_duration)
}

fn shrink_refused(field: &str, asked: &str, stored: &str) -> Error {
    Error::InvalidArgument(format!(
        "Options::{field} {asked} is shorter than the store's recorded {stored}: an open never \
         drops history; leave it unset to use the recorded value, or shrink it explicitly \
         with Db::set_history_retention"
    ))
}

/// Live snapshots and history floors, and the retention contract with its horizon. Guarded
/// by `Inner::readers`.
#[derive(Debug, Default)]
pub struct Readers {
    pub registry: Registry,
    /// The history contract and the horizon: reads of versions below the horizon are
    /// refused (unless a live snapshot holds the version).
    pub retention: RetentionState,
}

/// The stored contract and the horizon it moves, while the store runs. Guarded by
/// `Inner::readers`, under which snapshots register and merges compute their rules (see
/// `history`'s module documentation for why that makes reads of the past safe).
#[derive(Debug, Default)]
pub(crate) struct RetentionState {
    contract: Retention,
    /// Reads of versions below this are refused (unless a live snapshot holds the version).
    /// Only grows, also across restarts (the manifest's `history_horizon`).
    horizon: Version,
}

impl RetentionState {
    pub fn new(contract: Retention, horizon: Version) -> RetentionState {
        RetentionState { contract, horizon }
    }

    pub fn contract(&self) -> Retention {
        self.contract
    }

    /// Replaces the contract (after its manifest edit is durable). The horizon never moves
    /// back: a longer window keeps more from now on, it cannot bring back what is gone.
    pub fn set_contract(&mut self, contract: Retention) {
        self.contract = contract;
    }

    /// Time marks committed before this (µs) are older than the window at `now_micros`:
    /// no read can need them, except the one covering the cutoff, which the index keeps.
    pub fn time_cutoff(&self, now_micros: u64) -> u64 {
        match self.contract.window {
            Some(d) => now_micros.saturating_sub(micros(d)),
            None => u64::MAX,
        }
    }

    /// Moves the horizon forward to what the window allows at `now_micros` and returns it.
    /// Without a window it is one past `visible`: only the present can be read.
    pub fn advance(&mut self, now_micros: u64, visible: Version, times: &TimeIndex) -> Version {
        let allowed = match self.contract.window {
            None => Some(Version(visible.0 + 1)),
            Some(_) => times.version_at(self.time_cutoff(now_micros), visible),
        };
        if let Some(v) = allowed {
            self.horizon = self.horizon.max(v);
        }
        self.horizon
    }

    /// What a merge must keep, given the horizon (call [`RetentionState::advance`] first)
    /// and the live readers.
    pub fn gc_rules(&self, registry: &Registry, snapshots: Vec<Version>) -> GcRules {
        let retain_from = registry
            .lowest_floor()
            .map_or(self.horizon, |f| f.min(self.horizon));
        GcRules {
            snapshots,
            retain_from: Some(retain_from),
            keep_newest: self.contract.versions_per_key,
        }
    }

    /// The rules `history` applies to its answer, read from `floor` on: the same as a
    /// merge's, so the answer does not depend on how far compaction has got.
    pub fn history_rules(&self, floor: Version) -> GcRules {
        GcRules {
            snapshots: Vec::new(),
            retain_from: Some(floor),
            keep_newest: self.contract.versions_per_key,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn opts(window: Option<Duration>, versions: Option<usize>) -> Options {
        Options {
            history_retention: window,
            history_versions_per_key: versions,
            ..Options::default()
        }
    }

    #[test]
    fn a_new_store_records_what_the_open_names_and_defaults_to_none() {
        assert_eq!(
            resolve_open(None, &opts(None, None)).unwrap(),
            Retention::default()
        );
        assert_eq!(
            resolve_open(None, &opts(Some(DAY), Some(3))).unwrap(),
            Retention::new(Some(DAY), 3)
        );
    }

    #[test]
    fn unnamed_fields_keep_the_stored_values_and_growth_is_recorded() {
        let stored = Retention::new(Some(DAY), 2);
        assert_eq!(
            resolve_open(Some(stored), &opts(None, None)).unwrap(),
            stored
        );
        assert_eq!(
            resolve_open(Some(stored), &opts(None, Some(5))).unwrap(),
            Retention::new(Some(DAY), 5)
        );
        assert_eq!(
            resolve_open(Some(stored), &opts(Some(2 * DAY), None)).unwrap(),
            Retention::new(Some(2 * DAY), 2)
        );
    }

    #[test]
    fn shrinking_on_open_is_refused_naming_both_values() {
        let stored = Retention::new(Some(7 * DAY), 2);
        let err = resolve_open(Some(stored), &opts(Some(DAY), None)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidArgument(_)), "{msg}");
        assert!(msg.contains("1d") && msg.contains("7d"), "{msg}");
        assert!(msg.contains("set_history_retention"), "{msg}");
        let err = resolve_open(Some(stored), &opts(Some(Duration::ZERO), None)).unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
        let err = resolve_open(Some(stored), &opts(None, Some(1))).unwrap_err();
        assert!(
            err.to_string().contains("history_versions_per_key 1"),
            "{err}"
        );
    }

    #[test]
    fn windows_are_whole_microseconds_and_zero_is_none() {
        assert_eq!(Retention::new(Some(Duration::ZERO), 0).window, None);
        assert_eq!(
            Retention::new(Some(Duration::from_nanos(1)), 0).window,
            Some(Duration::from_micros(1))
        );
        assert_eq!(
            Retention::new(Some(Duration::from_nanos(2_500)), 0).window,
            Some(Duration::from_micros(3))
        );
        let r = Retention::new(Some(DAY), 4);
        assert_eq!(Retention::from_stored(r.window_micros(), 4), r);
        assert_eq!(Retention::from_stored(0, 0), Retention::default());
    }

    #[test]
    fn covers_compares_both_fields() {
        let a = Retention::new(Some(DAY), 2);
        assert!(a.covers(&a));
        assert!(a.covers(&Retention::default()));
        assert!(!a.covers(&Retention::new(Some(DAY), 3)));
        assert!(!a.covers(&Retention::new(Some(2 * DAY), 0)));
        assert!(!Retention::default().covers(&a));
    }

    #[test]
    fn the_horizon_follows_the_window_and_never_moves_back() {
        let times = TimeIndex::from_marks(
            vec![(Version(1), 1_000_000), (Version(5), 2_000_000)],
            false,
        )
        .unwrap();
        let mut st =
            RetentionState::new(Retention::new(Some(Duration::from_secs(1)), 0), Version(0));
        // At t = 2.5 s the window starts at 1.5 s: the state after v4 is the oldest readable.
        assert_eq!(st.advance(2_500_000, Version(6), &times), Version(4));
        st.set_contract(Retention::new(Some(DAY), 0));
        assert_eq!(st.advance(2_500_000, Version(6), &times), Version(4));
        st.set_contract(Retention::default());
        assert_eq!(st.advance(2_500_000, Version(6), &times), Version(7));
        assert_eq!(st.time_cutoff(5), u64::MAX);
    }

    #[test]
    fn durations_print_in_their_largest_exact_unit() {
        assert_eq!(format_duration(7 * DAY), "7d");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_micros(3)), "3us");
    }
}
