//! CPU-bound tasks across worker processes with a `ProcessPool` (Python's
//! `ProcessPoolExecutor` and `multiprocessing.Pool`), and the speed-up over running them one
//! after another.
//!
//! The Python original:
//!
//! ```python
//! from concurrent.futures import ProcessPoolExecutor
//!
//! def count_primes(bounds):
//!     lo, hi = bounds
//!     return sum(1 for n in range(lo, hi) if n > 1 and all(n % d for d in range(2, int(n**0.5) + 1)))
//!
//! if __name__ == "__main__":
//!     ranges = [(i * 200_000, (i + 1) * 200_000) for i in range(8)]
//!     with ProcessPoolExecutor() as pool:
//!         print(sum(pool.map(count_primes, ranges)))
//! ```
//!
//! ```text
//! cargo run --release --example process_pool
//! cargo run --release --example process_pool -- --quick
//! ```

use std::time::Instant;

use conveyor::pool::{task, ProcessPool};

fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo..hi)
        .filter(|&n| n > 1 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // first: in a worker process this runs the worker and never returns
    let _children = conveyor::pool::init(&[task!(count_primes).into()], &[]);
    let quick = std::env::args().any(|a| a == "--quick");
    let span: u64 = if quick { 20_000 } else { 400_000 };
    let ranges: Vec<(u64, u64)> = (0..8).map(|i| (i * span, (i + 1) * span)).collect();

    let t0 = Instant::now();
    let one_by_one: u64 = ranges.iter().map(|&r| count_primes(r)).sum();
    let serial = t0.elapsed();

    let pool = ProcessPool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))?;
    let t0 = Instant::now();
    // one range per task (chunksize 1): eight tasks for the workers to share
    let pooled: u64 = pool
        .map_chunked(task!(count_primes), ranges.clone(), 1)
        .sum::<Result<u64, _>>()?;
    let parallel = t0.elapsed();
    assert_eq!(pooled, one_by_one);

    println!("{pooled} primes below {}", 8 * span);
    println!("one after another: {serial:?}");
    println!(
        "{} worker processes: {parallel:?} ({:.2}x)",
        pool.workers(),
        serial.as_secs_f64() / parallel.as_secs_f64()
    );
    Ok(())
}
