//! Turning results into rows with ratios, and rows into the terminal table, report.md and
//! results.json.
//!
//! Every ratio is a speed-up, larger is better: for throughput `ours / theirs` in messages/s,
//! for latency `theirs / ours` in median round-trip time. "vs python" compares a transport with
//! its Python original (`queue.Queue` for a thread queue, `multiprocessing.Queue` for a process
//! queue, ...); "vs best peer" with the fastest Rust peer of the same scope in the same workload.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::run::{CaseResult, Status, Summary};
use crate::transport::{Family, Scope};
use crate::workload::Workload;

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The workload's id.
    pub workload: String,
    /// The transport's name.
    pub transport: String,
    /// Threads or processes.
    pub scope: Scope,
    /// Ours, peer or Python.
    pub family: Family,
    /// Measured, skipped or failed, with the reason.
    #[serde(flatten)]
    pub status: Status,
    /// The medians, when measured.
    pub summary: Option<Summary>,
    /// The Python original compared with, when it was measured.
    pub python_original: Option<String>,
    /// Speed-up over the Python original.
    pub vs_python: Option<f64>,
    /// The fastest Rust peer of the same scope, when one was measured.
    pub best_peer: Option<String>,
    /// Speed-up over it.
    pub vs_best_peer: Option<f64>,
}

/// The rows of one workload, in the order the transports were given.
pub fn rows_for(workload: &Workload, results: &[CaseResult]) -> Vec<Row> {
    let here: Vec<&CaseResult> = results.iter().filter(|r| r.workload == *workload).collect();
    let score = |r: &CaseResult| r.summary.map(|s| s.score());
    here.iter()
        .map(|r| {
            let py = r.transport.python_original.as_ref().and_then(|name| {
                here.iter()
                    .find(|o| &o.transport.name == name)
                    .and_then(|o| score(o).map(|s| (name.clone(), s)))
            });
            let best = here
                .iter()
                .filter(|o| {
                    o.transport.family == Family::RustPeer && o.transport.scope == r.transport.scope
                })
                .filter_map(|o| score(o).map(|s| (o.transport.name.clone(), s)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let mine = score(r);
            let ratio = |other: Option<(String, f64)>| match (mine, other) {
                (Some(m), Some((_, o))) if o > 0.0 => Some(m / o),
                _ => None,
            };
            Row {
                workload: workload.id(),
                transport: r.transport.name.clone(),
                scope: r.transport.scope,
                family: r.transport.family,
                status: r.status.clone(),
                summary: r.summary,
                python_original: py.as_ref().map(|p| p.0.clone()),
                vs_python: if r.transport.family == Family::Python {
                    None
                } else {
                    ratio(py.clone())
                },
                best_peer: best.as_ref().map(|b| b.0.clone()),
                vs_best_peer: ratio(best),
            }
        })
        .collect()
}

/// `12.3 M`, `456 k`, `789`.
pub fn si(v: f64) -> String {
    let (d, unit) = if v >= 1e9 {
        (1e9, " G")
    } else if v >= 1e6 {
        (1e6, " M")
    } else if v >= 1e3 {
        (1e3, " k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    if x >= 100.0 {
        format!("{x:.0}{unit}")
    } else if x >= 10.0 {
        format!("{x:.1}{unit}")
    } else {
        format!("{x:.2}{unit}")
    }
}

/// MB/s: one decimal below 1000, then `12.3 k` (thousands of MB/s).
pub fn mb(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.1}")
    } else {
        si(v)
    }
}

/// What the figures mean, for the foot of the table and the head of report.md.
pub const NOTES: &str = "figures are medians of interleaved repetitions measured side by side \
in this run; ratios are speed-ups (larger is better) over the Python original and over the \
fastest Rust peer of the same scope. MB/s counts payload bytes delivered: between threads a \
payload is handed over by reference, as Python's queue.Queue does, so it is not copied; \
between processes it is encoded and copied.";

/// `850 ns`, `1.25 µs`, `3.4 ms`.
pub fn duration_ns(ns: f64) -> String {
    let three = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else if x >= 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    };
    if ns >= 1e6 {
        format!("{} ms", three(ns / 1e6))
    } else if ns >= 1e3 {
        format!("{} µs", three(ns / 1e3))
    } else {
        format!("{ns:.0} ns")
    }
}

/// `12.3x`, `0.87x`, or `—`.
pub fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}x"),
        Some(r) if r >= 10.0 => format!("{r:.1}x"),
        Some(r) => format!("{r:.2}x"),
        None => "—".to_string(),
    }
}

fn figures(w: &Workload, row: &Row) -> [String; 2] {
    match row.summary {
        // a pool's tasks carry no payload: the second column is the time per task
        Some(Summary::Throughput { msgs_per_s, .. }) if w.is_pool() => {
            [si(msgs_per_s), duration_ns(1e9 / msgs_per_s.max(1e-9))]
        }
        Some(Summary::Throughput {
            msgs_per_s,
            mb_per_s,
        }) => [si(msgs_per_s), mb(mb_per_s)],
        Some(Summary::Latency { median_ns, p99_ns }) => {
            [duration_ns(median_ns), duration_ns(p99_ns)]
        }
        None => [String::new(), String::new()],
    }
}

fn status_note(s: &Status) -> Option<String> {
    match s {
        Status::Ok => None,
        Status::NotApplicable(why) => Some(format!("n/a: {why}")),
        Status::Unavailable(why) => Some(format!("skipped: {why}")),
        Status::Failed(why) => Some(format!("FAILED: {why}")),
    }
}

fn headers(w: &Workload) -> [&'static str; 2] {
    if w.is_latency() {
        ["median", "p99"]
    } else if w.is_pool() {
        ["tasks/s", "per task"]
    } else {
        ["msgs/s", "MB/s"]
    }
}

/// The terminal table: one block per workload; rows that were not measured say why.
pub fn terminal_table(workloads: &[Workload], results: &[CaseResult]) -> String {
    let mut out = String::new();
    for w in workloads {
        let rows = rows_for(w, results);
        if rows.is_empty() {
            continue;
        }
        let name_w = rows
            .iter()
            .map(|r| r.transport.chars().count())
            .max()
            .unwrap_or(9)
            .max(9);
        let [h1, h2] = headers(w);
        let _ = writeln!(out, "\n{} (bound {})", w.title(), w.capacity());
        let _ = writeln!(
            out,
            "  {:<name_w$}  {:<9}  {:>9}  {:>9}  {:>9}  {:>12}",
            "transport", "scope", h1, h2, "vs python", "vs best peer"
        );
        for r in &rows {
            match status_note(&r.status) {
                None => {
                    let [a, b] = figures(w, r);
                    let _ = writeln!(
                        out,
                        "  {:<name_w$}  {:<9}  {:>9}  {:>9}  {:>9}  {:>12}",
                        r.transport,
                        r.scope.to_string(),
                        a,
                        b,
                        ratio(r.vs_python),
                        ratio(r.vs_best_peer)
                    );
                }
                Some(note) => {
                    let _ = writeln!(
                        out,
                        "  {:<name_w$}  {:<9}  {}",
                        r.transport,
                        r.scope.to_string(),
                        truncate(&note, 90)
                    );
                }
            }
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= n {
        one_line
    } else {
        let mut t: String = one_line.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// report.md: the machine, how it was run, a table per workload, and the charts.
pub fn markdown(
    machine: &Machine,
    command: &str,
    workloads: &[Workload],
    results: &[CaseResult],
    charts: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# conveyor-bench report\n");
    let _ = writeln!(out, "- machine: {}", machine.one_line());
    let _ = writeln!(out, "- date: {}", machine.date);
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(out, "- {NOTES}");
    for w in workloads {
        let rows = rows_for(w, results);
        if rows.is_empty() {
            continue;
        }
        let [h1, h2] = headers(w);
        let _ = writeln!(out, "\n## {} (bound {})\n", w.title(), w.capacity());
        let _ = writeln!(
            out,
            "| transport | scope | {h1} | {h2} | vs python | vs best peer |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|");
        for r in &rows {
            match status_note(&r.status) {
                None => {
                    let [a, b] = figures(w, r);
                    let _ = writeln!(
                        out,
                        "| {} | {} | {a} | {b} | {} | {} |",
                        r.transport,
                        r.scope,
                        ratio(r.vs_python),
                        ratio(r.vs_best_peer)
                    );
                }
                Some(note) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | | | |",
                        r.transport,
                        r.scope,
                        truncate(&note, 120).replace('|', "/")
                    );
                }
            }
        }
    }
    if !charts.is_empty() {
        let _ = writeln!(out, "\n## Charts\n");
        for c in charts {
            let _ = writeln!(out, "![{c}]({c})");
        }
    }
    out
}

/// results.json: the machine, the options, every sample and every row with its ratios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultsFile {
    /// The machine.
    pub machine: Machine,
    /// The command line.
    pub command: String,
    /// Repetitions per case.
    pub reps: usize,
    /// Every case with its samples.
    pub cases: Vec<CaseResult>,
    /// The table rows with ratios.
    pub rows: Vec<Row>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportInfo;

    fn case(name: &str, family: Family, py: Option<&str>, rate: Option<f64>) -> CaseResult {
        CaseResult {
            workload: Workload::PingPong { size: 8 },
            transport: TransportInfo::new(name, Scope::Thread, family, py),
            status: if rate.is_some() {
                Status::Ok
            } else {
                Status::Unavailable("python3 not found".into())
            },
            count: 10,
            samples: Vec::new(),
            summary: rate.map(|r| Summary::Latency {
                median_ns: 1e9 / r,
                p99_ns: 2e9 / r,
            }),
        }
    }

    #[test]
    fn ratios_are_speedups_over_python_and_the_best_peer() {
        let results = vec![
            case("ours", Family::Conveyor, Some("py"), Some(4e6)),
            case("peer a", Family::RustPeer, Some("py"), Some(1e6)),
            case("peer b", Family::RustPeer, Some("py"), Some(2e6)),
            case("py", Family::Python, None, Some(1e5)),
        ];
        let rows = rows_for(&Workload::PingPong { size: 8 }, &results);
        assert!((rows[0].vs_python.unwrap() - 40.0).abs() < 1e-9);
        assert!((rows[0].vs_best_peer.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(rows[0].best_peer.as_deref(), Some("peer b"));
        assert_eq!(rows[3].vs_python, None);
        let table = terminal_table(&[Workload::PingPong { size: 8 }], &results);
        assert!(table.contains("40.0x"), "{table}");
        assert!(table.contains("250 ns"), "{table}");
    }

    #[test]
    fn missing_python_leaves_ratio_blank_and_says_why() {
        let results = vec![
            case("ours", Family::Conveyor, Some("py"), Some(4e6)),
            case("py", Family::Python, None, None),
        ];
        let rows = rows_for(&Workload::PingPong { size: 8 }, &results);
        assert_eq!(rows[0].vs_python, None);
        let md = markdown(
            &Machine::detect(None),
            "cargo xtask bench",
            &[Workload::PingPong { size: 8 }],
            &results,
            &[],
        );
        assert!(md.contains("skipped: python3 not found"), "{md}");
        assert!(md.contains("cores"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(si(12_345_678.0), "12.3 M");
        assert_eq!(si(456_000.0), "456 k");
        assert_eq!(si(7.5), "7.50");
        assert_eq!(duration_ns(850.0), "850 ns");
        assert_eq!(duration_ns(1250.0), "1.25 µs");
        assert_eq!(ratio(Some(0.5)), "0.50x");
        assert_eq!(ratio(None), "—");
        assert_eq!(mb(512.25), "512.2");
        assert_eq!(mb(865_099.1), "865 k");
    }
}
