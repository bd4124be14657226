//! A live sensor stream between two processes: seed 000's EEG plot, fed through a
//! shared-memory queue, drawn in the terminal.
//!
//! In the second half of the Python original a callback puts a random sample into a
//! `multiprocessing.Queue` every few milliseconds, and a plotting *process* takes them out,
//! keeps the last 200 and redraws a matplotlib chart:
//!
//! ```python
//! def ttt(x):
//!     q.put(x)
//!
//! def proc2(q):
//!     data = []
//!     while True:
//!         data.append(q.get())
//!         if len(data) > 200:
//!             plt.plot(np.linspace(0, 2, len(data)), data)
//!             data = data[1:]
//!             plt.pause(0.00000001)
//!
//! if __name__ == "__main__":
//!     t = Process(target=proc2, args=(q,))
//!     t.start()
//!     tt(ttt)
//! ```
//!
//! Here the parent samples a simulated EEG (a 10 Hz alpha rhythm, a weaker 22 Hz beta rhythm,
//! a slow drift and noise) every millisecond and puts each sample into a [`ShmQueue`]; a child
//! process takes them out, keeps a sliding window of the last [`WINDOW`] samples and redraws an
//! ASCII chart in place about 30 times a second. When the time is up (or on Ctrl-C) the parent
//! closes the queue; the child drains it, prints a summary (samples, how long they waited in
//! the queue) and exits. Ctrl-C reaches every process of the terminal's foreground group, the
//! child included, so the child ignores SIGINT and leaves it to the parent to stop the stream.
//! If the child fails anyway, the parent prints how it ended and exits with an error.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example sensor_stream_processes
//! cargo run -p conveyor --no-default-features --features shm,process --example sensor_stream_processes -- --seconds 30
//! cargo run -p conveyor --no-default-features --features shm,process --example sensor_stream_processes -- --quick
//! ```
//!
//! - `--seconds N`: sample for N seconds (default 10).
//! - `--quick`: one second, no live drawing; the summary and the last window are printed
//!   once, for scripts and CI.

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;
use serde::{Deserialize, Serialize};

/// Samples in the sliding window (the Python process version keeps 200).
const WINDOW: usize = 200;
/// Time between two samples.
const PERIOD: Duration = Duration::from_millis(1);
/// Time between two redraws.
const FRAME: Duration = Duration::from_millis(33);
/// Rows of the chart.
const ROWS: usize = 15;
/// The chart's vertical range, in microvolts either side of zero.
const Y_RANGE: f64 = 60.0;

/// One sample, stamped (wall clock, microseconds) when it was taken: the clock both processes
/// share.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Sample {
    value: f64,
    taken_at_us: u64,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A small xorshift generator for the noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

fn eeg(t: f64, noise: &mut Noise) -> f64 {
    30.0 * (TAU * 10.0 * t).sin()
        + 12.0 * (TAU * 22.0 * t + 1.0).sin()
        + 10.0 * (TAU * 0.3 * t).sin()
        + 16.0 * noise.next()
}

/// Columns of the chart: the window is averaged down to this width.
const COLUMNS: usize = 100;

/// Renders the window as a chart of `ROWS` lines and at most `COLUMNS` columns.
fn chart(window: &VecDeque<f64>) -> String {
    let step = window.len().div_ceil(COLUMNS).max(1);
    let values: Vec<f64> = window
        .iter()
        .copied()
        .collect::<Vec<_>>()
        .chunks(step)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let mut grid = vec![vec![' '; values.len()]; ROWS];
    for (x, v) in values.iter().enumerate() {
        let clamped = v.clamp(-Y_RANGE, Y_RANGE);
        let row = ((Y_RANGE - clamped) / (2.0 * Y_RANGE) * (ROWS - 1) as f64).round() as usize;
        grid[row.min(ROWS - 1)][x] = '*';
    }
    let mut out = String::new();
    for (i, row) in grid.iter().enumerate() {
        let label = Y_RANGE - i as f64 * 2.0 * Y_RANGE / (ROWS - 1) as f64;
        let _ = writeln!(out, "{label:>6.0} |{}", row.iter().collect::<String>());
    }
    out
}

/// The plotting process: Python's `proc2`.
fn plotter((q, live): (ShmQueue<Sample>, bool)) {
    // Ctrl-C is the parent's to handle: it closes the queue, and this process drains it.
    // SAFETY: SIG_IGN runs no code on delivery (no handler that would have to be
    // async-signal-safe); the call only changes this process's disposition of SIGINT, which
    // nothing else in this child sets.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut window: VecDeque<f64> = VecDeque::with_capacity(WINDOW + 1);
    let (mut count, mut total_wait_us, mut worst_wait_us) = (0u64, 0u64, 0u64);
    let mut last_frame = Instant::now();
    let mut out = std::io::stdout();
    if live {
        print!("\x1b[2J");
    }
    while let Ok(s) = q.get() {
        let wait = now_us().saturating_sub(s.taken_at_us);
        total_wait_us += wait;
        worst_wait_us = worst_wait_us.max(wait);
        count += 1;
        window.push_back(s.value);
        if window.len() > WINDOW {
            window.pop_front();
        }
        if live && last_frame.elapsed() >= FRAME && window.len() == WINDOW {
            last_frame = Instant::now();
            let _ = writeln!(
                out,
                "\x1b[H{}samples {count:>7}   last {:>6.1} uV   queue wait avg {:>5} us\x1b[K",
                chart(&window),
                s.value,
                total_wait_us / count
            );
            let _ = out.flush();
        }
    }
    if !live {
        print!("{}", chart(&window));
    }
    println!(
        "plotter: {count} samples, queue wait avg {} us, worst {} us",
        total_wait_us / count.max(1),
        worst_wait_us
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(plotter)]);
    let mut seconds = 10.0;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seconds needs a number")?
            }
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if quick {
        seconds = 1.0;
    }
    let live = !quick && std::io::stdout().is_terminal();

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))?;
    }

    let q: ShmQueue<Sample> = ShmQueue::new()?;
    let child = Process::new("plotter", (&q, live))
        .name("plotter")
        .start()?;

    // the sampler: Python's tt(ttt), one sample per millisecond
    let start = Instant::now();
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    let mut sent = 0u64;
    let mut next = start;
    while start.elapsed().as_secs_f64() < seconds && !stop.load(Ordering::SeqCst) {
        let t = start.elapsed().as_secs_f64();
        q.put(Sample {
            value: eeg(t, &mut noise),
            taken_at_us: now_us(),
        })?;
        sent += 1;
        next += PERIOD;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    q.shutdown(false)?;
    let status = child.join()?;
    println!(
        "sampler: {sent} samples in {:.1} s; plotter {status}",
        start.elapsed().as_secs_f64()
    );
    if !status.success() {
        return Err(format!("the plotter did not finish: {status}").into());
    }
    Ok(())
}
