//! One producer and one consumer, over the transport named on the command line: the rest of
//! the program is the same for all of them, because every transport implements `Channel`.
//!
//! ```text
//! cargo run --release --example compare_transports -- thread   [COUNT]
//! cargo run --release --example compare_transports -- shm      [COUNT]
//! cargo run --release --example compare_transports -- pipe     [COUNT]
//! cargo run --release --example compare_transports -- manager  [COUNT]
//! ```
//!
//! The swap is the one line in each arm of `main`'s `match` that builds the two ends. Here the
//! producer is a thread so that the example stays short; the shared-memory queue, the pipe and
//! the manager's queue carry the same items between processes when their ends are passed to a
//! child started with `conveyor::process` (see `cargo xtask bench`, which does exactly that).
//! Byte payloads go through `serde_bytes`, so the codec copies them in one piece.

use std::process::ExitCode;
use std::time::Instant;

use conveyor::Channel;
use serde::{Deserialize, Serialize};

/// What the producer sends: a reading with a small binary blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    value: f64,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

/// The whole program, written once over `Channel`: a producer thread puts `count` readings
/// into `tx` and closes it; the consumer takes from `rx` until it is closed and drained.
fn run<Tx, Rx>(name: &str, tx: Tx, rx: Rx, count: u32) -> Result<(), String>
where
    Tx: Channel<Reading> + Send + 'static,
    Rx: Channel<Reading>,
{
    let start = Instant::now();
    let producer = std::thread::spawn(move || -> Result<(), String> {
        for i in 0..count {
            let r = Reading {
                sensor: i % 8,
                value: f64::from(i) * 0.5,
                blob: vec![(i % 251) as u8; 64],
            };
            tx.put(r).map_err(|e| format!("put failed: {e}"))?;
        }
        tx.shutdown(false); // the consumer learns that the producer is done
        Ok(())
    });
    let (mut n, mut sum) = (0u32, 0.0f64);
    loop {
        match rx.get() {
            Ok(r) => {
                n += 1;
                sum += r.value;
            }
            Err(e) if e.is_closed() => break,
            Err(e) => return Err(format!("get failed: {e}")),
        }
    }
    producer
        .join()
        .map_err(|_| "the producer panicked".to_string())??;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:>8}: {n} readings (sum of values {sum}) in {:.1} ms, {:.0} readings/s",
        secs * 1e3,
        f64::from(n) / secs
    );
    if n != count {
        return Err(format!("expected {count} readings, got {n}"));
    }
    Ok(())
}

const CAPACITY: usize = 64;

#[cfg(not(all(feature = "shm", feature = "pipe", feature = "manager")))]
fn not_built(feature: &str) -> Result<(), String> {
    Err(format!(
        "the `{feature}` transport is not built into this example: \
         run it with `--features {feature}` (it is on by default)"
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().map(String::as_str).unwrap_or("");
    let count: u32 = match args.get(1).map(|c| c.parse()) {
        None => 100_000,
        Some(Ok(c)) => c,
        Some(Err(_)) => {
            eprintln!("COUNT must be a number, not {:?}", args[1]);
            return ExitCode::from(2);
        }
    };
    let result = match which {
        "thread" => {
            let q = conveyor::thread::Queue::bounded(CAPACITY); // <- the one line
            run(which, q.clone(), q, count)
        }
        "shm" => {
            #[cfg(feature = "shm")]
            {
                match conveyor::shm::ShmQueue::builder()
                    .max_items(CAPACITY)
                    .create()
                {
                    Ok(q) => run(which, q.clone(), q, count),
                    Err(e) => Err(format!("could not create the shared-memory queue: {e}")),
                }
            }
            #[cfg(not(feature = "shm"))]
            not_built("shm")
        }
        "pipe" => {
            #[cfg(feature = "pipe")]
            {
                match conveyor::pipe::pipe() {
                    Ok((a, b)) => run(which, a, b, count),
                    Err(e) => Err(format!("could not make a pipe: {e}")),
                }
            }
            #[cfg(not(feature = "pipe"))]
            not_built("pipe")
        }
        "manager" => {
            #[cfg(feature = "manager")]
            {
                let ends = conveyor::manager::Manager::start().and_then(|m| {
                    // Two connections: a blocked get holds its connection.
                    let tx = m.connect()?.queue::<Reading>("readings", Some(CAPACITY))?;
                    let rx = m.queue::<Reading>("readings", Some(CAPACITY))?;
                    Ok((m, tx, rx))
                });
                match ends {
                    Ok((_m, tx, rx)) => run(which, tx, rx, count),
                    Err(e) => Err(format!("could not start a manager: {e}")),
                }
            }
            #[cfg(not(feature = "manager"))]
            not_built("manager")
        }
        _ => {
            eprintln!("usage: compare_transports thread|shm|pipe|manager [COUNT]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{which}: {e}");
            ExitCode::FAILURE
        }
    }
}
