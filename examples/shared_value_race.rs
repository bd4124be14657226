//! Seed 004's race on a shared number, on a shared-memory [`Value`]: one process adds 1 a
//! thousand times, another subtracts 1 a thousand times, and the result should be 0.
//!
//! In Python, `v.value += 1` on a `multiprocessing.Value('i', 0)` is a read and then a write,
//! each under the value's lock but not the two together, so updates get lost; the fix is
//! `with v.get_lock(): v.value += 1`. conveyor's `Value` behaves the same way, and adds what
//! Python lacks, an atomic `fetch_add` without any lock:
//!
//! - **racy**: `v.set(v.get()? + delta)`: the result is rarely 0;
//! - **with `get_lock()`**: the read and the write under one guard: always exactly 0;
//! - **with `fetch_add`**: one atomic instruction per update: always exactly 0, and fastest.
//!
//! The `Value` travels to each child as its name. The two children wait at a start line (two
//! small [`ShmQueue`]s) and begin together, since each loop takes well under a millisecond.
//!
//! ```text
//! cargo run --release --example shared_value_race
//! cargo run --release --example shared_value_race -- --quick
//! ```
//!
//! `--quick` runs 200 updates per process instead of 1000.

use std::time::Instant;

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::{ShmQueue, Value};
use conveyor::Channel;

/// How each update is made.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Way {
    /// A read, then a write: Python's `v.value += delta`.
    Racy,
    /// The read and the write under the value's lock.
    Locked,
    /// One atomic fetch-and-add.
    Atomic,
}

/// The start line: each child says it is ready and waits for the go.
#[derive(serde::Serialize, serde::Deserialize)]
struct Start {
    ready: ShmQueue<()>,
    go: ShmQueue<()>,
}

fn task((v, delta, times, way, start): (Value<i64>, i64, u32, Way, Start)) {
    start.ready.put(()).expect("say ready");
    start.go.get().expect("wait for the go");
    for _ in 0..times {
        match way {
            Way::Racy => {
                let n = v.get().expect("read the value");
                std::thread::yield_now(); // widen the window between the read and the write
                v.set(n + delta).expect("write the value");
            }
            Way::Locked => {
                let mut guard = v.get_lock().expect("take the value's lock");
                let n = guard.get();
                std::thread::yield_now(); // the same window, now harmless
                guard.set(n + delta);
            }
            Way::Atomic => {
                v.fetch_add(delta);
            }
        }
    }
}

fn run(times: u32, way: Way) -> Result<(i64, f64), Box<dyn std::error::Error>> {
    let v = Value::new(0i64)?;
    let start = Start {
        ready: ShmQueue::new()?,
        go: ShmQueue::new()?,
    };
    let a = Process::new("task", (&v, 1i64, times, way, &start)).start()?;
    let b = Process::new("task", (&v, -1i64, times, way, &start)).start()?;
    for _ in 0..2 {
        start.ready.get()?;
    }
    let t0 = Instant::now();
    for _ in 0..2 {
        start.go.put(())?;
    }
    let (a, b) = (a.join()?, b.join()?);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if !(a.success() && b.success()) {
        return Err(format!("a task failed: {a}, {b}").into());
    }
    Ok((v.get()?, ms))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(task)]);
    let times = if std::env::args().any(|a| a == "--quick") {
        200
    } else {
        1000
    };
    println!("{times} increments and {times} decrements of one shared Value<i64>:");
    for way in [Way::Racy, Way::Locked, Way::Atomic] {
        for round in 1..=3 {
            let (n, ms) = run(times, way)?;
            let label = match way {
                Way::Racy => "racy (get, then set)",
                Way::Locked => "with get_lock()",
                Way::Atomic => "with fetch_add",
            };
            println!("  {label:<22} round {round}: value = {n:>5}   ({ms:.2} ms)");
            if !matches!(way, Way::Racy) && n != 0 {
                return Err(format!("{label} must make every update count, got {n}").into());
            }
        }
    }
    Ok(())
}
