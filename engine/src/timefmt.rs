//! RFC 3339 text of a `SystemTime`, for error messages (no date-time dependency in the
//! engine for one formatter).

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as RFC 3339 in UTC: `2026-02-28T13:05:09Z`, with `.mmm` or `.uuuuuu` when the
/// time has a fraction of a second (sub-microsecond digits are cut).
pub fn rfc3339(t: SystemTime) -> String {
    let micros: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i128,
        Err(e) => -(e.duration().as_micros() as i128),
    };
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400) as i64;
    let of_day = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let fraction = match frac {
        0 => String::new(),
        f if f % 1000 == 0 => format!(".{:03}", f / 1000),
        f => format!(".{f:06}"),
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{fraction}Z")
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants_print_as_rfc3339_utc() {
        let at = |micros: u64| rfc3339(UNIX_EPOCH + Duration::from_micros(micros));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(1_700_000_000_500_000), "2023-11-14T22:13:20.500Z");
        assert_eq!(at(1_700_000_000_000_007), "2023-11-14T22:13:20.000007Z");
        // A leap day, and the day after the end of February in a century leap year.
        assert_eq!(at(951_782_400_000_000), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_800_000_000), "2000-03-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31T23:59:59Z"
        );
    }
}
