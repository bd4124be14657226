//! A live sensor stream between threads: seed 000's EEG plot, in a terminal.
//!
//! In the Python original a function `tt(f)` sleeps one millisecond, makes a random sample and
//! hands it to a callback `f`; the callback `ttt` appends it to a list shared with a plotting
//! thread, which keeps a sliding window of the last 100 samples and redraws a matplotlib chart.
//! The tutorial then swaps the shared list for a `multiprocessing.Queue` so that the consumer can
//! live in another process.
//!
//! Here the callback puts each sample into a [`Queue`] (with `try_put`, so a slow consumer can
//! never stall the sampler: a sample that finds the queue full is counted as dropped), and a
//! consumer thread takes samples out, keeps the last [`WINDOW`] in a `VecDeque`, and redraws an
//! ASCII chart in place with ANSI escape codes, about 30 times a second. The signal is a
//! simulated EEG: a 10 Hz alpha rhythm, a weaker 22 Hz beta rhythm, a slow drift and noise.
//! When the time is up or Ctrl-C is pressed, the sampler stops and closes the queue; the
//! consumer drains what is left and prints a summary, including how long samples waited in the
//! queue.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features thread --example sensor_stream_threads
//! cargo run -p conveyor --no-default-features --features thread --example sensor_stream_threads -- --seconds 30
//! cargo run -p conveyor --no-default-features --features thread --example sensor_stream_threads -- --quick
//! ```
//!
//! - `--seconds N`: run for N seconds (default 10), or until Ctrl-C.
//! - `--quick`: a one-second run (unless `--seconds` says otherwise) that draws nothing live and
//!   prints the summary and the last window once, for scripts and CI.
//!
//! The live chart needs a terminal at least 110 columns wide; when standard output is not a
//! terminal, one status line per second is printed instead.

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conveyor::thread::Queue;

/// Samples in the sliding window (the Python original's `EEG_LENGTH`).
const WINDOW: usize = 100;
/// Time between two samples.
const PERIOD: Duration = Duration::from_millis(1);
/// Samples the queue holds before the callback starts dropping: one second's worth.
const QUEUE_CAPACITY: usize = 1000;
/// Time between two redraws of the live chart (about 30 frames a second).
const FRAME: Duration = Duration::from_millis(33);
/// Rows of the chart.
const ROWS: usize = 15;
/// The chart's vertical range, in microvolts either side of zero.
const Y_RANGE: f64 = 60.0;

/// One sample, stamped when the callback received it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    taken_at: Instant,
}

/// The command line.
struct Options {
    seconds: f64,
    quick: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut seconds = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                let s: f64 = value
                    .parse()
                    .map_err(|_| format!("--seconds needs a number, not {value:?}"))?;
                if !(s > 0.0 && s.is_finite()) {
                    return Err(format!("--seconds must be positive, not {value}"));
                }
                seconds = Some(s);
            }
            "--help" | "-h" => {
                return Err("usage: sensor_stream_threads [--seconds N] [--quick]".into())
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    let default = if quick { 1.0 } else { 10.0 };
    Ok(Options {
        seconds: seconds.unwrap_or(default),
        quick,
    })
}

/// A small xorshift generator for the signal's noise.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x2545_F491_4F6C_DD1D, |d| d.as_nanos() as u64);
        Random(nanos | 1)
    }

    /// A number in `[-1, 1)`.
    fn next_signed(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

/// The simulated EEG at `t` seconds, in microvolts.
fn eeg(t: f64, rng: &mut Random) -> f64 {
    let alpha = 22.0 * (TAU * 10.0 * t).sin();
    let beta = 7.0 * (TAU * 22.0 * t + 1.0).sin();
    let drift = 6.0 * (TAU * 0.3 * t).sin();
    alpha + beta + drift + 8.0 * rng.next_signed()
}

/// What the sampler did.
struct SamplerReport {
    produced: u64,
    elapsed: Duration,
    /// The furthest the sampler fell behind its schedule.
    worst_lag: Duration,
}

/// Calls `callback` with a new sample every millisecond until `run_for` has passed or `stop` is
/// set (Python's `tt(f)`). It keeps to a fixed schedule, so a late tick is caught up at once
/// instead of pushing every later sample back.
fn sample_every_millisecond(
    run_for: Duration,
    stop: &AtomicBool,
    mut callback: impl FnMut(Sample),
) -> SamplerReport {
    let mut rng = Random::seeded();
    let start = Instant::now();
    let mut produced = 0u64;
    let mut worst_lag = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let due = PERIOD * produced as u32;
        let now = start.elapsed();
        if due >= run_for {
            // Let the last sample's millisecond run out, so the rate comes out right.
            thread::sleep(due.saturating_sub(now));
            break;
        }
        if due > now {
            thread::sleep(due - now);
        } else {
            worst_lag = worst_lag.max(now - due);
        }
        let t = due.as_secs_f64();
        callback(Sample {
            value: eeg(t, &mut rng),
            taken_at: Instant::now(),
        });
        produced += 1;
    }
    SamplerReport {
        produced,
        elapsed: start.elapsed(),
        worst_lag,
    }
}

/// What the consumer saw.
struct ConsumerReport {
    received: u64,
    frames: u64,
    /// The most samples waiting in the queue when the consumer looked.
    max_backlog: usize,
    /// Mean and worst time from the callback to the consumer.
    mean_delay: Duration,
    max_delay: Duration,
    window: VecDeque<f64>,
}

/// How the consumer shows the stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Display {
    /// Redraw the chart in place (a terminal).
    Live,
    /// One status line per second (output is not a terminal).
    Lines,
    /// Nothing until the end (`--quick`).
    Quiet,
}

/// Renders the window as a chart, one column per sample, newest on the right.
fn render(window: &VecDeque<f64>, out: &mut String, line_end: &str) {
    let row_of = |v: f64| -> usize {
        let v = v.clamp(-Y_RANGE, Y_RANGE);
        (((Y_RANGE - v) / (2.0 * Y_RANGE)) * (ROWS - 1) as f64).round() as usize
    };
    let mut grid = vec![vec![' '; WINDOW]; ROWS];
    let zero = row_of(0.0);
    for cell in grid[zero].iter_mut() {
        *cell = '-';
    }
    let mut previous: Option<usize> = None;
    for (col, &v) in window.iter().enumerate() {
        let row = row_of(v);
        // A vertical stroke from the previous point keeps the trace continuous.
        if let Some(prev) = previous {
            let (lo, hi) = if prev < row { (prev, row) } else { (row, prev) };
            for line in grid.iter_mut().take(hi).skip(lo + 1) {
                line[col] = '|';
            }
        }
        grid[row][col] = '*';
        previous = Some(row);
    }
    for (r, line) in grid.iter().enumerate() {
        let label = if r == 0 {
            format!("{:>+4.0} uV ", Y_RANGE)
        } else if r == zero {
            "   0 uV ".to_owned()
        } else if r == ROWS - 1 {
            format!("{:>+4.0} uV ", -Y_RANGE)
        } else {
            "        ".to_owned()
        };
        let _ = write!(out, "{label}|");
        out.extend(line.iter());
        let _ = write!(out, "{line_end}");
    }
    let _ = write!(
        out,
        "        +{:-<width$}{line_end}        last {WINDOW} samples ({} ms), newest on the right{line_end}",
        "",
        WINDOW as u128 * PERIOD.as_millis(),
        width = WINDOW
    );
}

/// Takes samples until the queue is closed and drained, keeping the last [`WINDOW`] and showing
/// them (Python's `proc2`).
fn plot_window(queue: Queue<Sample>, display: Display, started: Instant) -> ConsumerReport {
    let mut window = VecDeque::with_capacity(WINDOW + 1);
    let mut received = 0u64;
    let mut frames = 0u64;
    let mut max_backlog = 0;
    let mut total_delay = Duration::ZERO;
    let mut max_delay = Duration::ZERO;
    let mut last_show = started;
    let mut frame = String::new();
    let stdout = std::io::stdout();

    // `get` blocks while the queue is empty and returns `Closed` once the sampler is done and
    // everything it put has been taken.
    while let Ok(sample) = queue.get() {
        let delay = sample.taken_at.elapsed();
        total_delay += delay;
        max_delay = max_delay.max(delay);
        received += 1;
        max_backlog = max_backlog.max(queue.len());
        window.push_back(sample.value);
        if window.len() > WINDOW {
            window.pop_front();
        }

        match display {
            Display::Live if window.len() == WINDOW && last_show.elapsed() >= FRAME => {
                last_show = Instant::now();
                frames += 1;
                frame.clear();
                // Cursor home, then overwrite the previous frame line by line.
                frame.push_str("\x1b[H");
                let _ = write!(
                    frame,
                    "simulated EEG through a conveyor Queue | t = {:5.1} s | samples {received:>6} \
                     | waiting {:>4} | Ctrl-C to stop\x1b[K\n\x1b[K\n",
                    started.elapsed().as_secs_f64(),
                    queue.len()
                );
                render(&window, &mut frame, "\x1b[K\n");
                let mut out = stdout.lock();
                let _ = out.write_all(frame.as_bytes());
                let _ = out.flush();
            }
            Display::Lines if last_show.elapsed() >= Duration::from_secs(1) => {
                last_show = Instant::now();
                let mean = window.iter().sum::<f64>() / window.len() as f64;
                println!(
                    "t = {:5.1} s: {received} samples taken, {} waiting, window mean {mean:+.1} uV",
                    started.elapsed().as_secs_f64(),
                    queue.len()
                );
            }
            _ => {}
        }
    }
    ConsumerReport {
        received,
        frames,
        max_backlog,
        mean_delay: total_delay / (received.max(1) as u32),
        max_delay,
        window,
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let display = if options.quick {
        Display::Quiet
    } else if std::io::stdout().is_terminal() {
        Display::Live
    } else {
        Display::Lines
    };

    // Ctrl-C stops the sampler; everything after that is an orderly shutdown.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            eprintln!("Ctrl-C will not stop the run early: {e}");
        }
    }

    let queue = Queue::bounded(QUEUE_CAPACITY);
    let started = Instant::now();
    if display == Display::Live {
        // Clear the screen and hide the cursor while drawing.
        print!("\x1b[2J\x1b[?25l");
    } else {
        println!(
            "sampling a simulated EEG every {} ms for {} s through a Queue of {QUEUE_CAPACITY}",
            PERIOD.as_millis(),
            options.seconds
        );
    }

    // The consumer thread (Python's `proc2`).
    let consumer = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("plot".into())
            .spawn(move || plot_window(queue, display, started))
            .expect("could not start the consumer thread")
    };

    // The callback (Python's `ttt`): hand the sample over without ever blocking the sampler.
    let mut dropped = 0u64;
    let on_sample = |sample: Sample| {
        if queue.try_put(sample).is_err() {
            dropped += 1;
        }
    };
    let sampler =
        sample_every_millisecond(Duration::from_secs_f64(options.seconds), &stop, on_sample);
    // No more samples: the consumer drains what is left and then sees Closed.
    queue.shutdown(false);
    let consumer = consumer.join().expect("the consumer thread panicked");

    if display == Display::Live {
        print!("\x1b[?25h");
    }
    if display != Display::Live {
        // Show the last window once, without escape codes.
        let mut chart = String::new();
        render(&consumer.window, &mut chart, "\n");
        print!("{chart}");
    }
    let seconds = sampler.elapsed.as_secs_f64();
    println!(
        "\n{}: {} samples in {seconds:.2} s ({:.0} per second), {} taken by the consumer, \
         {dropped} dropped",
        if stop.load(Ordering::Relaxed) {
            "stopped by Ctrl-C"
        } else {
            "done"
        },
        sampler.produced,
        sampler.produced as f64 / seconds,
        consumer.received
    );
    println!(
        "queue: at most {} samples waiting; delay from callback to consumer: mean {:.1} us, \
         worst {:.1} us",
        consumer.max_backlog,
        consumer.mean_delay.as_secs_f64() * 1e6,
        consumer.max_delay.as_secs_f64() * 1e6
    );
    println!(
        "sampler: worst lag behind its 1 ms schedule {:.2} ms; {} chart frames drawn",
        sampler.worst_lag.as_secs_f64() * 1e3,
        consumer.frames
    );
    if consumer.received + dropped != sampler.produced {
        eprintln!("samples went missing: this is a bug");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
