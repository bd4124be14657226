//! Two processes changing one shared number, without and with a process lock: seed 004.
//!
//! The Python original keeps the number in a `Manager().dict()`; one process does
//! `dic["number"] -= 1` a thousand times, the other `+= 1` a thousand times. Each update is a
//! read followed by a write, so updates get lost and the result is -13, 5, 8 ... instead of 0,
//! until both loops run under `with lock:` for a `multiprocessing.RLock()`:
//!
//! ```python
//! def task_1():
//!     with lock:
//!         for i in range(1000):
//!             dic["number"] -= 1
//! ```
//!
//! Here the shared number lives in a file (one of seed 003's ways to communicate), read and
//! written back by each update: the same read-modify-write race. The lock is conveyor's
//! [`RLock`], a robust process-shared lock; it travels to each child as its name. As in the
//! original, the lock is taken around each whole loop, and (being re-entrant) once more around
//! each update.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example process_lock
//! cargo run -p conveyor --no-default-features --features shm,process --example process_lock -- --quick
//! ```
//!
//! `--quick` runs 200 updates per process instead of 1000.

use std::path::{Path, PathBuf};

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::RLock;

fn read(path: &Path) -> i64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn update(path: &Path, delta: i64) {
    let n = read(path);
    std::thread::yield_now(); // widen the window between the read and the write
    std::fs::write(path, (n + delta).to_string()).expect("write the number");
}

/// Adds `delta` `times` times, under the lock if one is given.
fn task((path, delta, times, lock): (PathBuf, i64, u32, Option<RLock>)) {
    let _whole = lock.as_ref().map(|l| l.acquire().expect("lock"));
    for _ in 0..times {
        let _inner = lock.as_ref().map(|l| l.acquire().expect("re-entrant lock"));
        update(&path, delta);
    }
}

fn run(path: &Path, times: u32, lock: Option<&RLock>) -> Result<i64, Box<dyn std::error::Error>> {
    std::fs::write(path, "0")?;
    let a = Process::new("task", (path, -1i64, times, lock)).start()?;
    let b = Process::new("task", (path, 1i64, times, lock)).start()?;
    assert!(a.join()?.success() && b.join()?.success());
    Ok(read(path))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    process::init(&[entry!(task)]);
    let times = if std::env::args().any(|a| a == "--quick") {
        200
    } else {
        1000
    };
    let path = std::env::temp_dir().join(format!("conveyor-number-{}", std::process::id()));

    for round in 1..=3 {
        println!(
            "without a lock, round {round}: number = {}",
            run(&path, times, None)?
        );
    }
    let lock = RLock::new()?;
    for round in 1..=3 {
        let n = run(&path, times, Some(&lock))?;
        println!("with an RLock, round {round}:  number = {n}");
        assert_eq!(n, 0, "the lock must make every update count");
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
