//! The run loop: pick the cases, calibrate each, then interleave repetitions so that every
//! transport of a workload is measured side by side, and take medians.
//!
//! For each workload: one calibration run per transport sets its message count (so each run
//! takes about [`Options::target`]); then `for rep in reps { for transport in transports { run }}`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::stats::median;
use crate::transport::{Transport, TransportInfo};
use crate::workload::{round_count, Sample, Workload};

/// How to run the harness.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each transport briefly: one repetition, small fixed counts, no calibration.
    pub quick: bool,
    /// Substrings: a term matching a transport's name, scope or family keeps that transport,
    /// a term matching a workload id keeps that workload (case-insensitive). Empty keeps
    /// everything.
    pub filters: Vec<String>,
    /// Repetitions per case (interleaved).
    pub reps: usize,
    /// About how long one run should take after calibration.
    pub target: Duration,
}

impl Options {
    /// The full run: 5 repetitions of about 0.2 s each.
    pub fn full() -> Self {
        Options {
            quick: false,
            filters: Vec::new(),
            reps: 5,
            target: Duration::from_millis(200),
        }
    }

    /// The smoke run: every transport once, briefly.
    pub fn quick() -> Self {
        Options {
            quick: true,
            filters: Vec::new(),
            reps: 1,
            target: Duration::from_millis(20),
        }
    }
}

/// What became of one (workload, transport) pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    /// Measured.
    Ok,
    /// The transport does not do this workload (a pipe with 4 producers).
    NotApplicable(String),
    /// The transport cannot run on this machine (no `python3`).
    Unavailable(String),
    /// A run failed; the message says how.
    Failed(String),
}

/// The medians over the repetitions of one case.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Summary {
    /// Throughput medians.
    Throughput {
        /// Messages per second.
        msgs_per_s: f64,
        /// Payload megabytes (10^6 B) per second.
        mb_per_s: f64,
    },
    /// Latency medians (of the per-run median and p99).
    Latency {
        /// Median round trip, ns.
        median_ns: f64,
        /// 99th percentile round trip, ns.
        p99_ns: f64,
    },
}

impl Summary {
    /// The headline figure, larger is better: messages/s, or round trips/s for latency.
    pub fn score(&self) -> f64 {
        match *self {
            Summary::Throughput { msgs_per_s, .. } => msgs_per_s,
            Summary::Latency { median_ns, .. } => 1e9 / median_ns.max(1e-9),
        }
    }

    /// The medians of `samples`; `None` if there is none.
    pub fn of(samples: &[Sample]) -> Option<Summary> {
        let first = samples.first()?;
        Some(match first {
            Sample::Throughput { .. } => {
                let r: Vec<f64> = samples.iter().filter_map(Sample::msgs_per_s).collect();
                let m: Vec<f64> = samples.iter().filter_map(Sample::mb_per_s).collect();
                Summary::Throughput {
                    msgs_per_s: median(&r)?,
                    mb_per_s: median(&m)?,
                }
            }
            Sample::Latency { .. } => {
                let pick = |f: fn(&Sample) -> Option<f64>| -> Vec<f64> {
                    samples.iter().filter_map(f).collect()
                };
                Summary::Latency {
                    median_ns: median(&pick(|s| match s {
                        Sample::Latency { median_ns, .. } => Some(*median_ns),
                        _ => None,
                    }))?,
                    p99_ns: median(&pick(|s| match s {
                        Sample::Latency { p99_ns, .. } => Some(*p99_ns),
                        _ => None,
                    }))?,
                }
            }
        })
    }
}

/// One (workload, transport) pair and what was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The workload.
    pub workload: Workload,
    /// The transport.
    pub transport: TransportInfo,
    /// Measured, skipped, or failed.
    #[serde(flatten)]
    pub status: Status,
    /// The messages (or round trips) per run after calibration.
    pub count: usize,
    /// Every repetition's sample.
    pub samples: Vec<Sample>,
    /// Their medians.
    pub summary: Option<Summary>,
}

/// The transports and workloads a run covers.
pub type Selection = (Vec<Arc<dyn Transport>>, Vec<Workload>);

/// Keeps the transports and workloads that `filters` pick; an error names a term that matched
/// nothing, with the names it could have matched.
pub fn select(
    transports: &[Arc<dyn Transport>],
    workloads: &[Workload],
    filters: &[String],
) -> Result<Selection, String> {
    let terms: Vec<String> = filters
        .iter()
        .flat_map(|f| f.split(','))
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    // A transport matches on its name, its scope (`threads`, `processes`) or its family
    // (`conveyor`, `rust peer`, `python`).
    let t_match = |t: &Arc<dyn Transport>, term: &str| {
        let i = t.info();
        format!("{} {} {}", i.name, i.scope, i.family)
            .to_lowercase()
            .contains(term)
    };
    let w_match = |w: &Workload, term: &str| w.id().to_lowercase().contains(term);
    let mut t_terms = Vec::new();
    let mut w_terms = Vec::new();
    for term in &terms {
        let in_t = transports.iter().any(|t| t_match(t, term));
        let in_w = workloads.iter().any(|w| w_match(w, term));
        if in_t {
            t_terms.push(term.clone());
        }
        if in_w {
            w_terms.push(term.clone());
        }
        if !in_t && !in_w {
            let tn: Vec<&str> = transports.iter().map(|t| t.info().name.as_str()).collect();
            let wn: Vec<String> = workloads.iter().map(Workload::id).collect();
            return Err(format!(
                "--filter {term:?} matches no transport and no workload\n  transports: {}\n  workloads: {}",
                tn.join(", "),
                wn.join(", ")
            ));
        }
    }
    let ts = transports
        .iter()
        .filter(|t| t_terms.is_empty() || t_terms.iter().any(|term| t_match(t, term)))
        .cloned()
        .collect();
    let ws = workloads
        .iter()
        .filter(|w| w_terms.is_empty() || w_terms.iter().any(|term| w_match(w, term)))
        .copied()
        .collect();
    Ok((ts, ws))
}

/// The count for a quick run, and for the calibration run of a full one.
pub fn initial_count(workload: &Workload) -> usize {
    match *workload {
        Workload::PingPong { .. } => 200,
        Workload::Joinable { .. } => 2000,
        Workload::PoolSubmit { submitters } => 2048 * submitters.max(1),
        // Python's ProcessPoolExecutor.map takes about 0.2 ms a task: the quick run keeps it short
        Workload::PoolMap => 10_000,
        Workload::Throughput { size, .. } => match size {
            s if s <= 64 => 2000,
            s if s <= 4096 => 1000,
            _ => 32,
        },
    }
}

/// The count that makes a run last about `target`, from a calibration sample.
pub fn calibrated_count(workload: &Workload, sample: &Sample, target: Duration) -> usize {
    if *workload == Workload::PoolMap {
        // the workload is defined by its length, whatever it costs
        return crate::pool::MAP_TASKS;
    }
    let secs = sample.seconds().max(1e-6);
    let rate = sample.count() as f64 / secs;
    let want = (rate * target.as_secs_f64()) as usize;
    // At least the calibration's own count (it was fast enough), at most enough to keep
    // memory and time sane; always a multiple of the workload's granule.
    let lo = initial_count(workload).min(sample.count() as usize).max(1);
    let hi = 5_000_000;
    round_count(want.clamp(lo, hi), workload.granule())
}

/// Reports progress on stderr: a line updated in place on a terminal, plain lines otherwise.
#[derive(Debug)]
pub struct Progress {
    tty: bool,
    started: Instant,
}

impl Progress {
    /// Progress on stderr.
    pub fn new() -> Self {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// A transient status (overwritten on a terminal, not printed otherwise).
    pub fn status(&self, text: &str) {
        if self.tty {
            let mut e = std::io::stderr().lock();
            let _ = write!(
                e,
                "\r\x1b[2K[{:>5.1}s] {text}",
                self.started.elapsed().as_secs_f64()
            );
            let _ = e.flush();
        }
    }

    /// A line that stays.
    pub fn line(&self, text: &str) {
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[2K");
        }
        let _ = writeln!(e, "[{:>5.1}s] {text}", self.started.elapsed().as_secs_f64());
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs every workload over every transport that supports it, as `opts` says.
pub fn run_all(
    transports: &[Arc<dyn Transport>],
    workloads: &[Workload],
    opts: &Options,
    progress: &Progress,
) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        let mut cases: Vec<(Arc<dyn Transport>, CaseResult)> = Vec::new();
        for t in transports.iter().filter(|t| t.is_pool() == w.is_pool()) {
            let status = match (t.supports(w), t.available()) {
                (Err(why), _) => Status::NotApplicable(why),
                (Ok(()), Err(why)) => Status::Unavailable(why),
                (Ok(()), Ok(())) => Status::Ok,
            };
            cases.push((
                t.clone(),
                CaseResult {
                    workload: *w,
                    transport: t.info().clone(),
                    status,
                    count: initial_count(w),
                    samples: Vec::new(),
                    summary: None,
                },
            ));
        }
        let head = format!("({}/{}) {}", wi + 1, workloads.len(), w.id());
        let t0 = Instant::now();
        if !opts.quick {
            for (t, case) in cases.iter_mut().filter(|(_, c)| c.status == Status::Ok) {
                progress.status(&format!("{head}: calibrating {}", t.info().name));
                match t.run(w, case.count) {
                    Ok(s) => case.count = calibrated_count(w, &s, opts.target),
                    Err(e) => case.status = Status::Failed(e.0),
                }
            }
        }
        for rep in 0..opts.reps.max(1) {
            for (t, case) in cases.iter_mut().filter(|(_, c)| c.status == Status::Ok) {
                progress.status(&format!(
                    "{head}: rep {}/{} {}",
                    rep + 1,
                    opts.reps.max(1),
                    t.info().name
                ));
                match t.run(w, case.count) {
                    Ok(s) => case.samples.push(s),
                    Err(e) => {
                        progress.line(&format!("{head}: {} failed: {e}", t.info().name));
                        case.status = Status::Failed(e.0);
                    }
                }
            }
        }
        let ran = cases.iter().filter(|(_, c)| c.status == Status::Ok).count();
        progress.line(&format!(
            "{head}: {ran} transports in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        for (_, mut case) in cases {
            if case.status == Status::Ok {
                case.summary = Summary::of(&case.samples);
            }
            results.push(case);
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{CrossbeamChannel, FlumeChannel};
    use crate::transport::{Family, InProcess, Scope};

    fn two() -> Vec<Arc<dyn Transport>> {
        vec![
            Arc::new(InProcess::queue(
                TransportInfo::new("crossbeam-channel", Scope::Thread, Family::RustPeer, None),
                CrossbeamChannel::bounded,
            )),
            Arc::new(InProcess::queue(
                TransportInfo::new("flume", Scope::Thread, Family::RustPeer, None),
                FlumeChannel::bounded,
            )),
        ]
    }

    #[test]
    fn filters_pick_transports_and_workloads() {
        let ws = Workload::all();
        let (t, w) = select(&two(), &ws, &["flume".into()]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(w.len(), ws.len());
        let (t, w) = select(&two(), &ws, &["pingpong,CROSSBEAM".into()]).unwrap();
        assert_eq!((t.len(), w.len()), (1, 1));
        let (t, _) = select(&two(), &ws, &["threads".into()]).unwrap();
        assert_eq!(t.len(), 2);
        let err = select(&two(), &ws, &["nothing-like-it".into()])
            .err()
            .unwrap();
        assert!(err.contains("flume") && err.contains("pingpong-8B"));
    }

    #[test]
    fn a_quick_run_measures_or_explains_every_case() {
        let ws = vec![
            Workload::PingPong { size: 8 },
            Workload::Joinable { size: 8 },
            Workload::Throughput {
                producers: 4,
                consumers: 4,
                size: 64,
            },
        ];
        let results = run_all(&two(), &ws, &Options::quick(), &Progress::new());
        assert_eq!(results.len(), 6);
        for r in &results {
            match r.workload {
                Workload::Joinable { .. } => {
                    assert!(matches!(r.status, Status::NotApplicable(_)))
                }
                _ => {
                    assert_eq!(r.status, Status::Ok, "{r:?}");
                    assert!(r.summary.unwrap().score() > 0.0);
                }
            }
        }
    }

    #[test]
    fn calibration_aims_at_the_target() {
        let w = Workload::Throughput {
            producers: 4,
            consumers: 4,
            size: 8,
        };
        let s = Sample::Throughput {
            messages: 2000,
            size: 8,
            elapsed_ns: 1_000_000,
        };
        // 2 M msgs/s for 0.1 s
        assert_eq!(
            calibrated_count(&w, &s, Duration::from_millis(100)),
            200_000
        );
        let slow = Sample::Throughput {
            messages: 2000,
            size: 8,
            elapsed_ns: 10_000_000_000,
        };
        assert_eq!(
            calibrated_count(&w, &slow, Duration::from_millis(100)),
            2000
        );
    }

    #[test]
    fn summary_takes_medians() {
        let s = |ns| Sample::Throughput {
            messages: 1000,
            size: 1000,
            elapsed_ns: ns,
        };
        let sum = Summary::of(&[s(1_000_000), s(2_000_000), s(4_000_000)]).unwrap();
        let Summary::Throughput {
            msgs_per_s,
            mb_per_s,
        } = sum
        else {
            panic!()
        };
        assert!((msgs_per_s - 500_000.0).abs() < 1e-6);
        assert!((mb_per_s - 500.0).abs() < 1e-6);
    }
}
