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
//! written back by each update: the same read-modify-write race. The number is written in
//! place, at offset 0, as a fixed-width, zero-padded decimal: the file is never truncated, so
//! a reader never finds it empty (which would read as a reset to 0). Without the lock, what
//! goes wrong is lost updates, as in the original. The lock is conveyor's
//! [`RLock`], a robust process-shared lock; it travels to each child as its name. As in the
//! original, the lock is taken around each whole loop, and (being re-entrant) once more around
//! each update. An update here takes microseconds, not the Manager's round trip, so the two
//! children wait at a start line (two small [`ShmQueue`]s) and begin their loops together;
//! otherwise the first could finish before the second has started.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example process_lock
//! cargo run -p conveyor --no-default-features --features shm,process --example process_lock -- --quick
//! ```
//!
//! `--quick` runs 200 updates per process instead of 1000.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::{RLock, ShmQueue};
use conveyor::Channel;

/// Bytes of the number in the file: a sign and 19 digits, enough for any `i64`.
const WIDTH: usize = 20;

fn open(path: &Path) -> std::io::Result<File> {
    // no truncate: the number is overwritten in place, never removed first
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read(file: &File) -> i64 {
    let mut buf = [0u8; WIDTH];
    file.read_exact_at(&mut buf, 0).expect("read the number");
    std::str::from_utf8(&buf)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("the file holds a number")
}

fn write(file: &File, n: i64) {
    let text = format!("{n:+0w$}", w = WIDTH);
    file.write_all_at(text.as_bytes(), 0)
        .expect("write the number");
}

fn update(file: &File, delta: i64) {
    let n = read(file);
    std::thread::yield_now(); // widen the window between the read and the write
    write(file, n + delta);
}

/// The start line: each child says it is ready and waits for the go.
#[derive(serde::Serialize, serde::Deserialize)]
struct Start {
    ready: ShmQueue<()>,
    go: ShmQueue<()>,
}

/// Adds `delta` `times` times, under the lock if one is given.
fn task((path, delta, times, lock, start): (PathBuf, i64, u32, Option<RLock>, Start)) {
    let file = open(&path).expect("open the number's file");
    start.ready.put(()).expect("say ready");
    start.go.get().expect("wait for the go");
    let _whole = lock.as_ref().map(|l| l.acquire().expect("lock"));
    for _ in 0..times {
        let _inner = lock.as_ref().map(|l| l.acquire().expect("re-entrant lock"));
        update(&file, delta);
    }
}

fn run(path: &Path, times: u32, lock: Option<&RLock>) -> Result<i64, Box<dyn std::error::Error>> {
    let file = open(path)?;
    write(&file, 0);
    let start = Start {
        ready: ShmQueue::new()?,
        go: ShmQueue::new()?,
    };
    let a = Process::new("task", (path, -1i64, times, lock, &start)).start()?;
    let b = Process::new("task", (path, 1i64, times, lock, &start)).start()?;
    for _ in 0..2 {
        start.ready.get()?;
    }
    for _ in 0..2 {
        start.go.put(())?;
    }
    let (a, b) = (a.join()?, b.join()?);
    assert!(a.success() && b.success(), "a task failed: {a}, {b}");
    Ok(read(&file))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(task)]);
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
