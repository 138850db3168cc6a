//! Reports: what one engine measured ([`EngineReport`]), the line format a child process
//! sends it to the runner in, and the markdown table, CSV and SVG chart written from a set
//! of reports. All output is plain text built by hand; golden tests pin it.

use crate::workload::{Amplification, Outcome, Workload};
use std::fmt::Write as _;

/// Everything measured on one engine.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineReport {
    /// The engine's name.
    pub engine: String,
    /// One outcome per workload, in run order.
    pub outcomes: Vec<Outcome>,
    /// Amplification after `fillrandom`, if it ran.
    pub amp: Option<Amplification>,
    /// Peak RSS of the process that ran only this engine, in bytes.
    pub peak_rss: Option<u64>,
    /// Peaks of its anonymous and of its file-backed (mapped) RSS, sampled; each may come
    /// from a different moment than `peak_rss`.
    pub peak_rss_parts: Option<(u64, u64)>,
}

impl EngineReport {
    /// The outcome of `workload`, if it ran.
    pub fn outcome(&self, workload: Workload) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.workload == workload)
    }

    /// The tab-separated lines a child process prints for the runner.
    pub fn to_lines(&self) -> String {
        let mut out = String::new();
        for o in &self.outcomes {
            let _ = writeln!(
                out,
                "outcome\t{}\t{}\t{}\t{}",
                o.workload.name(),
                o.ops,
                o.seconds,
                o.found
            );
        }
        if let Some(a) = &self.amp {
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            let _ = writeln!(
                out,
                "amp\t{}\t{}\t{}\t{}",
                a.user_bytes,
                a.disk_bytes,
                opt(a.table_bytes_written),
                opt(a.io_bytes_written)
            );
        }
        if let Some(rss) = self.peak_rss {
            let _ = writeln!(out, "rss\t{rss}");
        }
        if let Some((anon, file)) = self.peak_rss_parts {
            let _ = writeln!(out, "rss_parts\t{anon}\t{file}");
        }
        out
    }

    /// Parses [`EngineReport::to_lines`] output; other lines are ignored.
    ///
    /// # Errors
    /// A recognised line with a bad field.
    pub fn from_lines(engine: &str, text: &str) -> Result<EngineReport, String> {
        let mut r = EngineReport {
            engine: engine.to_string(),
            ..EngineReport::default()
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let bad = || format!("bad report line {line:?}");
            let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
            let opt = |s: &str| if s == "-" { Ok(None) } else { num(s).map(Some) };
            match f.as_slice() {
                ["outcome", w, ops, secs, found] => r.outcomes.push(Outcome {
                    workload: Workload::parse(w).ok_or_else(bad)?,
                    ops: num(ops)?,
                    seconds: secs.parse().map_err(|_| bad())?,
                    found: num(found)?,
                }),
                ["amp", user, disk, table, io] => {
                    r.amp = Some(Amplification {
                        user_bytes: num(user)?,
                        disk_bytes: num(disk)?,
                        table_bytes_written: opt(table)?,
                        io_bytes_written: opt(io)?,
                    })
                }
                ["rss", rss] => r.peak_rss = Some(num(rss)?),
                ["rss_parts", anon, file] => r.peak_rss_parts = Some((num(anon)?, num(file)?)),
                _ => {}
            }
        }
        Ok(r)
    }
}

/// A rate in a short human form: `950`, `12.3k`, `4.02M`.
pub fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn ratio(a: Option<&Outcome>, b: Option<&Outcome>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.rate() > 0.0 => format!("{:.2}x", a.rate() / b.rate()),
        _ => "-".to_string(),
    }
}

/// The workloads that ran on any engine, in the canonical order.
fn workloads(reports: &[EngineReport]) -> Vec<Workload> {
    crate::workload::ALL
        .into_iter()
        .filter(|w| reports.iter().any(|r| r.outcome(*w).is_some()))
        .collect()
}

/// The throughput table (with chronokv / peer ratios when chronokv and peers ran) and the
/// amplification and memory table, in markdown.
pub fn markdown(reports: &[EngineReport]) -> String {
    let ours = reports.iter().find(|r| r.engine == "chronokv");
    let peers: Vec<&EngineReport> = reports.iter().filter(|r| r.engine != "chronokv").collect();
    let ratios = ours.is_some() && !peers.is_empty();
    let mut out = String::from("| workload | unit |");
    for r in reports {
        let _ = write!(out, " {} |", r.engine);
    }
    if ratios {
        for p in &peers {
            let _ = write!(out, " chronokv / {} |", p.engine);
        }
        if peers.len() > 1 {
            out.push_str(" chronokv / best peer |");
        }
    }
    out.push_str("\n|---|---|");
    let cols = reports.len()
        + if ratios {
            peers.len() + usize::from(peers.len() > 1)
        } else {
            0
        };
    out.push_str(&"---:|".repeat(cols));
    out.push('\n');
    for w in workloads(reports) {
        let _ = write!(out, "| {} | {} |", w.name(), w.unit());
        for r in reports {
            let cell = r.outcome(w).map_or("-".to_string(), |o| human(o.rate()));
            let _ = write!(out, " {cell} |");
        }
        if let (true, Some(ours)) = (ratios, ours) {
            let mine = ours.outcome(w);
            for p in &peers {
                let _ = write!(out, " {} |", ratio(mine, p.outcome(w)));
            }
            if peers.len() > 1 {
                let best = peers
                    .iter()
                    .filter_map(|p| p.outcome(w))
                    .max_by(|a, b| a.rate().total_cmp(&b.rate()));
                let _ = write!(out, " {} |", ratio(mine, best));
            }
        }
        out.push('\n');
    }
    out.push_str("\n| engine | write amp (engine counters) | write amp (process I/O, incl. WAL) | space amp | disk MiB | peak RSS MiB | peak anon / file RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n");
    let mib = |b: u64| format!("{:.1}", b as f64 / (1 << 20) as f64);
    let amp = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    for r in reports {
        let a = r.amp.as_ref();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.engine,
            amp(a.and_then(Amplification::write_amp)),
            amp(a.and_then(Amplification::io_write_amp)),
            amp(a.map(Amplification::space_amp)),
            a.map_or("-".to_string(), |a| mib(a.disk_bytes)),
            r.peak_rss.map_or("-".to_string(), mib),
            r.peak_rss_parts.map_or("-".to_string(), |(an, f)| format!(
                "{} / {}",
                mib(an),
                mib(f)
            )),
        );
    }
    out
}

/// Per-workload results as CSV.
pub fn results_csv(reports: &[EngineReport]) -> String {
    let mut out = String::from("engine,workload,unit,ops,seconds,ops_per_sec,found\n");
    for r in reports {
        for o in &r.outcomes {
            let _ = writeln!(
                out,
                "{},{},{},{},{:.6},{:.1},{}",
                r.engine,
                o.workload.name(),
                o.workload.unit(),
                o.ops,
                o.seconds,
                o.rate(),
                o.found
            );
        }
    }
    out
}

/// Per-engine amplification and memory as CSV (empty fields where unknown).
pub fn engines_csv(reports: &[EngineReport]) -> String {
    let mut out = String::from(
        "engine,user_bytes,disk_bytes,table_bytes_written,io_bytes_written,write_amp,io_write_amp,space_amp,peak_rss_bytes,peak_rss_anon_bytes,peak_rss_file_bytes\n",
    );
    let u = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for r in reports {
        let a = r.amp.as_ref();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            r.engine,
            u(a.map(|a| a.user_bytes)),
            u(a.map(|a| a.disk_bytes)),
            u(a.and_then(|a| a.table_bytes_written)),
            u(a.and_then(|a| a.io_bytes_written)),
            f(a.and_then(Amplification::write_amp)),
            f(a.and_then(Amplification::io_write_amp)),
            f(a.map(Amplification::space_amp)),
            u(r.peak_rss),
            u(r.peak_rss_parts.map(|p| p.0)),
            u(r.peak_rss_parts.map(|p| p.1)),
        );
    }
    out
}

const COLORS: [&str; 4] = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One horizontal grouped bar chart: per workload, one bar per engine, its length the
/// engine's throughput relative to the fastest engine on that workload, labelled with the
/// rate.
pub fn svg(reports: &[EngineReport]) -> String {
    const LEFT: f64 = 130.0;
    const BAR_W: f64 = 520.0;
    const BAR_H: f64 = 12.0;
    const TOP: f64 = 40.0;
    let ws = workloads(reports);
    let group_h = BAR_H * reports.len() as f64 + 8.0;
    let height = TOP + group_h * ws.len() as f64 + 10.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"10\">\n"
    );
    out.push_str("<text x=\"10\" y=\"14\" font-size=\"12\">Throughput relative to the fastest engine per workload (label: measured rate)</text>\n");
    for (e, r) in reports.iter().enumerate() {
        let x = 10.0 + 120.0 * e as f64;
        let color = COLORS[e % COLORS.len()];
        let _ = writeln!(
            out,
            "<rect x=\"{x:.0}\" y=\"22\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.0}\" y=\"31\">{}</text>",
            x + 14.0,
            escape(&r.engine)
        );
    }
    for (g, w) in ws.iter().enumerate() {
        let y0 = TOP + group_h * g as f64;
        let best = reports
            .iter()
            .filter_map(|r| r.outcome(*w).map(Outcome::rate))
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y0 + group_h / 2.0,
            escape(w.name())
        );
        for (e, r) in reports.iter().enumerate() {
            let Some(o) = r.outcome(*w) else { continue };
            let len = if best > 0.0 {
                BAR_W * o.rate() / best
            } else {
                0.0
            };
            let y = y0 + BAR_H * e as f64;
            let _ = writeln!(
                out,
                "<rect x=\"{LEFT:.0}\" y=\"{y:.0}\" width=\"{len:.1}\" height=\"{:.0}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.0}\">{} {}</text>",
                BAR_H - 2.0,
                COLORS[e % COLORS.len()],
                LEFT + len + 4.0,
                y + BAR_H - 3.0,
                human(o.rate()),
                w.unit()
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<EngineReport> {
        let o = |w, ops, seconds, found| Outcome {
            workload: w,
            ops,
            seconds,
            found,
        };
        vec![
            EngineReport {
                engine: "chronokv".into(),
                outcomes: vec![
                    o(Workload::FillRandom, 1000, 0.5, 0),
                    o(Workload::ReadRandom, 1000, 0.25, 1000),
                ],
                amp: Some(Amplification {
                    user_bytes: 116_000,
                    disk_bytes: 2 << 20,
                    table_bytes_written: Some(232_000),
                    io_bytes_written: None,
                }),
                peak_rss: Some(100 << 20),
                peak_rss_parts: Some((90 << 20, 10 << 20)),
            },
            EngineReport {
                engine: "rocksdb".into(),
                outcomes: vec![
                    o(Workload::FillRandom, 1000, 0.25, 0),
                    o(Workload::ReadRandom, 1000, 0.5, 1000),
                ],
                amp: None,
                peak_rss: None,
                peak_rss_parts: None,
            },
            EngineReport {
                engine: "fjall".into(),
                outcomes: vec![o(Workload::FillRandom, 1000, 1.0, 0)],
                amp: None,
                peak_rss: None,
                peak_rss_parts: None,
            },
        ]
    }

    #[test]
    fn markdown_golden() {
        let expected = "\
| workload | unit | chronokv | rocksdb | fjall | chronokv / rocksdb | chronokv / fjall | chronokv / best peer |
|---|---|---:|---:|---:|---:|---:|---:|
| fillrandom | ops/s | 2.0k | 4.0k | 1.0k | 0.50x | 2.00x | 0.50x |
| readrandom | ops/s | 4.0k | 2.0k | - | 2.00x | - | 2.00x |

| engine | write amp (engine counters) | write amp (process I/O, incl. WAL) | space amp | disk MiB | peak RSS MiB | peak anon / file RSS MiB |
|---|---:|---:|---:|---:|---:|---:|
| chronokv | 2.00 | - | 18.08 | 2.0 | 100.0 | 90.0 / 10.0 |
| rocksdb | - | - | - | - | - | - |
| fjall | - | - | - | - | - | - |
";
        assert_eq!(markdown(&sample()), expected);
    }

    #[test]
    fn csv_golden() {
        let r = sample();
        assert_eq!(
            results_csv(&r[..1]),
            "engine,workload,unit,ops,seconds,ops_per_sec,found\n\
             chronokv,fillrandom,ops/s,1000,0.500000,2000.0,0\n\
             chronokv,readrandom,ops/s,1000,0.250000,4000.0,1000\n"
        );
        assert_eq!(
            engines_csv(&r[..2]),
            "engine,user_bytes,disk_bytes,table_bytes_written,io_bytes_written,write_amp,io_write_amp,space_amp,peak_rss_bytes,peak_rss_anon_bytes,peak_rss_file_bytes\n\
             chronokv,116000,2097152,232000,,2.0000,,18.0789,104857600,94371840,10485760\n\
             rocksdb,,,,,,,,,,\n"
        );
    }

    #[test]
    fn svg_golden() {
        let r = sample();
        let expected = "\
<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"138\" font-family=\"sans-serif\" font-size=\"10\">
<text x=\"10\" y=\"14\" font-size=\"12\">Throughput relative to the fastest engine per workload (label: measured rate)</text>
<rect x=\"10\" y=\"22\" width=\"10\" height=\"10\" fill=\"#1b9e77\"/><text x=\"24\" y=\"31\">chronokv</text>
<rect x=\"130\" y=\"22\" width=\"10\" height=\"10\" fill=\"#d95f02\"/><text x=\"144\" y=\"31\">rocksdb</text>
<rect x=\"250\" y=\"22\" width=\"10\" height=\"10\" fill=\"#7570b3\"/><text x=\"264\" y=\"31\">fjall</text>
<text x=\"124\" y=\"62\" text-anchor=\"end\">fillrandom</text>
<rect x=\"130\" y=\"40\" width=\"260.0\" height=\"10\" fill=\"#1b9e77\"/><text x=\"394.0\" y=\"49\">2.0k ops/s</text>
<rect x=\"130\" y=\"52\" width=\"520.0\" height=\"10\" fill=\"#d95f02\"/><text x=\"654.0\" y=\"61\">4.0k ops/s</text>
<rect x=\"130\" y=\"64\" width=\"130.0\" height=\"10\" fill=\"#7570b3\"/><text x=\"264.0\" y=\"73\">1.0k ops/s</text>
<text x=\"124\" y=\"106\" text-anchor=\"end\">readrandom</text>
<rect x=\"130\" y=\"84\" width=\"520.0\" height=\"10\" fill=\"#1b9e77\"/><text x=\"654.0\" y=\"93\">4.0k ops/s</text>
<rect x=\"130\" y=\"96\" width=\"260.0\" height=\"10\" fill=\"#d95f02\"/><text x=\"394.0\" y=\"105\">2.0k ops/s</text>
</svg>
";
        assert_eq!(svg(&r), expected);
        assert_eq!(escape("a<b&\"c\">"), "a&lt;b&amp;&quot;c&quot;&gt;");
    }

    #[test]
    fn report_lines_round_trip() {
        for r in sample() {
            let back = EngineReport::from_lines(&r.engine, &r.to_lines()).expect("parse");
            assert_eq!(back, r);
        }
        assert!(EngineReport::from_lines("x", "outcome\tnope\t1\t1\t1\n").is_err());
        assert_eq!(human(950.0), "950");
        assert_eq!(human(12_345.0), "12.3k");
        assert_eq!(human(4_020_000.0), "4.02M");
    }
}
