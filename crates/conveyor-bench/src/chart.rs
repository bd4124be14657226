//! SVG charts drawn with plotters: throughput by transport for each payload size, and
//! round-trip latency by transport. Bars are horizontal, on a log scale (the figures span five
//! orders of magnitude), coloured by family: conveyor, Rust peer, Python.

use std::path::Path;

use plotters::prelude::*;

use crate::run::{CaseResult, Summary};
use crate::transport::Family;
use crate::workload::{size_id, size_label, Workload, SIZES};

const CONVEYOR: RGBColor = RGBColor(31, 119, 180);
const PEER: RGBColor = RGBColor(90, 160, 90);
const PYTHON: RGBColor = RGBColor(230, 140, 30);

fn color(f: Family) -> RGBColor {
    match f {
        Family::Conveyor => CONVEYOR,
        Family::RustPeer => PEER,
        Family::Python => PYTHON,
    }
}

fn lighter(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((u16::from(v) + 2 * 255) / 3) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// One bar group: a transport and up to two values.
struct Bars {
    name: String,
    family: Family,
    first: Option<f64>,
    second: Option<f64>,
}

/// Draws every chart into `dir`; returns the file names written.
pub fn draw_all(dir: &Path, results: &[CaseResult]) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for size in SIZES {
        let one = Workload::Throughput {
            producers: 1,
            consumers: 1,
            size,
        };
        let four = Workload::Throughput {
            producers: 4,
            consumers: 4,
            size,
        };
        let bars = collect(results, &one, &four, |s| match s {
            Summary::Throughput { msgs_per_s, .. } => msgs_per_s,
            Summary::Latency { .. } => 0.0,
        });
        if bars.is_empty() {
            continue;
        }
        let file = format!("throughput-{}.svg", size_id(size));
        draw(
            &dir.join(&file),
            &format!(
                "Throughput, {} messages (msgs/s, log scale; upper bar 1P/1C, lighter bar 4P/4C)",
                size_label(size)
            ),
            "messages per second",
            &bars,
        )?;
        written.push(file);
    }
    let ping = Workload::PingPong { size: 8 };
    let bars = collect(results, &ping, &ping, |s| match s {
        Summary::Latency { median_ns, .. } => median_ns / 1e3,
        Summary::Throughput { .. } => 0.0,
    });
    let bars: Vec<Bars> = bars
        .into_iter()
        .map(|mut b| {
            // the second bar is the p99
            b.second = results
                .iter()
                .find(|r| r.workload == ping && r.transport.name == b.name)
                .and_then(|r| match r.summary {
                    Some(Summary::Latency { p99_ns, .. }) => Some(p99_ns / 1e3),
                    _ => None,
                });
            b
        })
        .collect();
    if !bars.is_empty() {
        let file = "latency-pingpong.svg".to_string();
        draw(
            &dir.join(&file),
            "Ping-pong round trip, 8 B (µs, log scale, lower is better; upper bar median, lighter bar p99)",
            "microseconds per round trip",
            &bars,
        )?;
        written.push(file);
    }
    Ok(written)
}

fn collect(
    results: &[CaseResult],
    a: &Workload,
    b: &Workload,
    value: impl Fn(Summary) -> f64,
) -> Vec<Bars> {
    let mut out: Vec<Bars> = Vec::new();
    for r in results
        .iter()
        .filter(|r| r.workload == *a || r.workload == *b)
    {
        let v = r.summary.map(&value).filter(|v| *v > 0.0);
        let idx = match out.iter().position(|x| x.name == r.transport.name) {
            Some(i) => i,
            None => {
                out.push(Bars {
                    name: r.transport.name.clone(),
                    family: r.transport.family,
                    first: None,
                    second: None,
                });
                out.len() - 1
            }
        };
        if r.workload == *a {
            out[idx].first = v;
        } else {
            out[idx].second = v;
        }
    }
    out.retain(|b| b.first.is_some() || b.second.is_some());
    out
}

fn draw(path: &Path, title: &str, x_desc: &str, bars: &[Bars]) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("could not draw {}: {e}", path.display());
    let n = bars.len();
    let values = bars.iter().flat_map(|b| [b.first, b.second]).flatten();
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let lo = 10f64.powf(lo.log10().floor());
    // A decade of room right of the longest bar keeps the legend clear of the bars.
    let hi = 10f64.powf(hi.log10().ceil() + 1.0).max(lo * 100.0);
    let height = 120 + 34 * n as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(250)
        .build_cartesian_2d((lo..hi).log_scale(), -0.5f64..(n as f64 - 0.5))
        .map_err(|e| err(&e))?;
    let names: Vec<String> = bars.iter().map(|b| b.name.clone()).collect();
    let label = move |y: &f64| {
        let i = y.round();
        if (y - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        // the first transport is drawn at the top
        let idx = n as i64 - 1 - i as i64;
        usize::try_from(idx)
            .ok()
            .and_then(|k| names.get(k).cloned())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&label)
        .x_desc(x_desc)
        .x_label_formatter(&|x| crate::report::si(*x))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, b) in bars.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let c = color(b.family);
        if let Some(v) = b.first {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, y + 0.02), (v, y + 0.38)],
                    c.filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        if let Some(v) = b.second {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, y - 0.38), (v, y - 0.02)],
                    lighter(c).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
    }
    for (name, c) in [
        ("conveyor", CONVEYOR),
        ("Rust peer", PEER),
        ("Python original", PYTHON),
    ] {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Status;
    use crate::transport::{Scope, TransportInfo};

    #[test]
    fn draws_svg_files_with_every_transport() {
        let mk = |w: Workload, name: &str, family, summary| CaseResult {
            workload: w,
            transport: TransportInfo::new(name, Scope::Thread, family, None),
            status: Status::Ok,
            count: 1,
            samples: Vec::new(),
            summary: Some(summary),
        };
        let w1 = Workload::Throughput {
            producers: 1,
            consumers: 1,
            size: 8,
        };
        let tp = |r| Summary::Throughput {
            msgs_per_s: r,
            mb_per_s: r * 8e-6,
        };
        let results = vec![
            mk(w1, "conveyor Queue", Family::Conveyor, tp(2e7)),
            mk(w1, "flume", Family::RustPeer, tp(5e6)),
            mk(w1, "python queue.Queue", Family::Python, tp(3e5)),
            mk(
                Workload::PingPong { size: 8 },
                "flume",
                Family::RustPeer,
                Summary::Latency {
                    median_ns: 900.0,
                    p99_ns: 4000.0,
                },
            ),
        ];
        let dir = std::env::temp_dir().join(format!("conveyor-bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = draw_all(&dir, &results).unwrap();
        assert_eq!(files, vec!["throughput-8B.svg", "latency-pingpong.svg"]);
        let svg = std::fs::read_to_string(dir.join(&files[0])).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("python queue.Queue") && svg.contains("conveyor Queue"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
