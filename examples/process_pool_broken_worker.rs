//! A task kills its own worker process (SIGKILL, as the out-of-memory killer would) in the
//! middle of its work. Python's `ProcessPoolExecutor` then marks the whole pool broken and
//! every pending future raises `BrokenProcessPool`; conveyor fails that one task's future, with
//! an error naming the dead worker, starts a replacement, and every other task completes.
//!
//! ```text
//! cargo run --release --example process_pool_broken_worker
//! ```

use conveyor::pool::{as_completed, task, ProcessPool};

fn square(x: u64) -> u64 {
    x * x
}

/// Dies mid-task, from a signal no code can catch.
fn killed_mid_task(x: u64) -> u64 {
    // SAFETY: kill and getpid have no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children =
        conveyor::pool::init(&[task!(square).into(), task!(killed_mid_task).into()], &[]);
    let pool = ProcessPool::new(2)?;
    println!("workers: {:?}", pool.worker_pids());

    let mut futures = Vec::new();
    for x in 0..10u64 {
        let task = if x == 4 {
            task!(killed_mid_task)
        } else {
            task!(square)
        };
        futures.push(pool.submit(task, x)?);
    }
    let mut ok = 0;
    for f in as_completed(&futures) {
        match f.result() {
            Ok(v) => {
                ok += 1;
                println!("result: {v}");
            }
            Err(e) => println!("failed: {e}"),
        }
    }
    println!("{ok} of {} tasks completed", futures.len());
    let after = pool.submit(task!(square), 12)?.result()?;
    println!("the pool goes on: 12 * 12 = {after}");
    // the replacement starts in the background (a few milliseconds)
    println!("workers now: {:?}", pool.worker_pids());
    Ok(())
}
