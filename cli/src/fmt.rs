//! Text formatting shared by the subcommands: byte strings (escaped so they round-trip),
//! times, aligned tables.

use std::fmt::Write as _;
use std::io::{self, Write};

/// Renders bytes as text that [`unescape`] turns back into the same bytes: valid UTF-8 is
/// kept except control characters and `\`, which (like every byte of invalid UTF-8) become
/// `\xNN`; a backslash becomes `\\`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// The bytes a command-line or input text stands for: UTF-8, with `\xNN` for any byte and
/// `\\` for a backslash (the escapes [`escape`] writes).
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let hex = s
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        format!("bad escape at byte {i} of {s:?}: \\x needs two hex digits")
                    })?;
                out.push(hex);
                i += 4;
            }
            _ => {
                return Err(format!(
                    "bad escape at byte {i} of {s:?}: use \\\\ for a backslash or \\xNN for a byte"
                ))
            }
        }
    }
    Ok(out)
}

/// A byte-string command-line argument (a key, a value, a bound), given as escaped text.
#[derive(Clone, Debug)]
pub struct BytesArg(pub Vec<u8>);

/// The clap value parser of [`BytesArg`].
pub fn bytes_arg(s: &str) -> Result<BytesArg, String> {
    unescape(s).map(BytesArg)
}

/// Microseconds since the Unix epoch as an RFC 3339 UTC time with microseconds (the
/// calendar is `jiff`'s, as for parsing; a time past jiff's range, year 9999, is printed as
/// the number of microseconds).
pub fn time_micros(micros: u64) -> String {
    i64::try_from(micros)
        .ok()
        .and_then(|m| jiff::Timestamp::from_microsecond(m).ok())
        .map_or_else(
            || format!("{micros} µs after the Unix epoch"),
            |t| t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        )
}

/// The forms `--as-of` takes, for error messages and help.
pub const TIME_FORMS: &str = "RFC 3339 with an offset (2024-05-01T12:00:00Z, \
    2024-05-01T14:00:00.5+02:00), a date (2024-05-01, midnight UTC) or Unix seconds \
    (1714564800)";

/// Parses a time into microseconds since the Unix epoch: RFC 3339 with any offset (as
/// printed by [`time_micros`], or `+02:00`), a plain date (midnight UTC), or Unix seconds.
/// Parsing is `jiff`'s, so impossible dates (`2026-02-31`) are refused, not rolled over.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = |why: String| format!("{s:?} is not a time ({why}); use {TIME_FORMS}");
    let ts: jiff::Timestamp = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().map_err(|e| bad(format!("{e}")))?;
        jiff::Timestamp::from_second(secs).map_err(|e| bad(e.to_string()))?
    } else if s.contains(['T', 't', ' ']) {
        s.parse().map_err(|e: jiff::Error| bad(e.to_string()))?
    } else {
        let date: jiff::civil::Date = s.parse().map_err(|e: jiff::Error| bad(e.to_string()))?;
        date.to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| bad(e.to_string()))?
            .timestamp()
    };
    u64::try_from(ts.as_microsecond()).map_err(|_| format!("{s:?} is before 1970"))
}

/// Parses a version: `5` or `v5` (as the output prints it).
pub fn parse_version(s: &str) -> Result<u64, String> {
    let digits = s.strip_prefix('v').unwrap_or(s);
    digits
        .parse()
        .map_err(|_| format!("{s:?} is not a version like 5 or v5"))
}

/// Parses a duration: a number with a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `24h`, `7d`),
/// or `none` (zero: no history window).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration like 90s, 15m, 24h, 7d or none");
    if s == "none" {
        return Ok(std::time::Duration::ZERO);
    }
    let unit = s.chars().last().ok_or_else(bad)?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(secs))
}

/// A plain table: a header row and rows, columns padded to their widest cell.
pub struct Table {
    headers: Vec<String>,
    /// Columns aligned to the right (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns named `headers`; a name starting with `>` is right-aligned (the `>` is dropped).
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers
                .iter()
                .map(|h| h.strip_prefix('>').unwrap_or(h).to_string())
                .collect(),
            right: headers.iter().map(|h| h.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn print(&self, out: &mut dyn Write, indent: &str) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
            let mut s = String::from(indent);
            for (i, c) in cells.enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                let pad = w.saturating_sub(c.chars().count());
                if i > 0 {
                    s.push_str("  ");
                }
                if self.right.get(i).copied().unwrap_or(false) {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            s.trim_end().to_string()
        };
        writeln!(
            out,
            "{}",
            line(&mut self.headers.iter().map(String::as_str))
        )?;
        for row in &self.rows {
            writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
        }
        Ok(())
    }
}

/// `1 run`, `2 runs`: `n` with the singular or the plural.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// [`count`] for nouns whose plural adds an `s`.
pub fn plural(n: impl Into<u64>, what: &str) -> String {
    count(n, what, &format!("{what}s"))
}

/// `a .. b` for a key range.
pub fn key_range(min: &[u8], max: &[u8]) -> String {
    format!("{} .. {}", escape(min), escape(max))
}

/// A ratio with two decimals, or `-` when undefined.
pub fn ratio(r: f64) -> String {
    if r == 0.0 || !r.is_finite() {
        "-".to_string()
    } else {
        format!("{r:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_every_byte_string() {
        let cases: Vec<Vec<u8>> = vec![
            b"plain".to_vec(),
            b"back\\slash".to_vec(),
            vec![0, 1, 0x7f, 0x80, 0xff, b'\n'],
            "caf\u{e9} \u{1F600}".as_bytes().to_vec(),
            vec![0xe2, 0x82], // a cut UTF-8 sequence
            (0..=255).collect(),
        ];
        for c in cases {
            let s = escape(&c);
            assert_eq!(unescape(&s).unwrap(), c, "{s}");
        }
        assert_eq!(escape(b"a\x00b\\"), "a\\x00b\\\\");
        assert_eq!(escape("café".as_bytes()), "café");
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
        assert!(unescape("tail\\").is_err());
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            time_micros(1_700_000_000_123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(
            time_micros(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn times_parse_back_and_durations_have_units() {
        for micros in [
            0,
            1_700_000_000_123_456,
            951_782_400_000_000,
            4_102_444_799_999_999,
        ] {
            assert_eq!(parse_time(&time_micros(micros)), Ok(micros));
        }
        for (text, micros) in [
            ("2023-11-14T22:13:20Z", 1_700_000_000_000_000),
            ("2023-11-14T22:13:20.5Z", 1_700_000_000_500_000),
            ("2023-11-15T00:13:20+02:00", 1_700_000_000_000_000),
            ("2023-11-14T17:13:20.25-05:00", 1_700_000_000_250_000),
            ("2023-11-14", 1_699_920_000_000_000),
            ("2000-02-29", 951_782_400_000_000),
            ("1700000000", 1_700_000_000_000_000),
        ] {
            assert_eq!(parse_time(text), Ok(micros), "{text}");
        }
        for bad in [
            "2026-02-31",
            "2023-02-29",
            "2023-11-14T22:13:20",
            "2023-13-01T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "1969-12-31",
            "x",
            "",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let err = parse_time("2026-02-31").unwrap_err();
        assert!(err.contains("Unix seconds"), "{err}");
        assert_eq!(parse_version("v5"), Ok(5));
        assert_eq!(parse_version("5"), Ok(5));
        assert!(parse_version("v").is_err() && parse_version("x5").is_err());
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 7 * 86_400);
        assert!(parse_duration("none").unwrap().is_zero());
        assert!(parse_duration("7").is_err() && parse_duration("h").is_err());
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["name", ">size"]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["long".into(), "1000".into()]);
        let mut out = Vec::new();
        t.print(&mut out, "").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name  size\na        1\nlong  1000\n"
        );
    }
}
