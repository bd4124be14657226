//! Seed 002's thread pool: `ThreadPoolExecutor().submit` does not block, and a pool keeps a
//! fixed number of threads so that none is created per task.
//!
//! The Python original:
//!
//! ```python
//! from concurrent.futures import ThreadPoolExecutor, as_completed
//! import time
//!
//! def download(page):
//!     time.sleep(0.5)          # waiting on the network
//!     return f"page {page}: {len(str(page)) * 100} bytes"
//!
//! with ThreadPoolExecutor(max_workers=3) as pool:
//!     futures = [pool.submit(download, page) for page in range(1, 6)]
//!     print("submitted 5 downloads; submit did not block")
//!     for f in as_completed(futures):
//!         print("done:", f.result())
//!     for line in pool.map(download, [10, 20, 30]):
//!         print("in order:", line)
//! ```
//!
//! ```text
//! cargo run --release --example thread_pool
//! cargo run --release --example thread_pool -- --quick
//! ```
//!
//! `--quick` turns the half-second downloads into 20 ms ones.

use std::time::{Duration, Instant};

use conveyor::pool::{as_completed, ThreadPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let wait = if quick {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(500)
    };
    let download = move |page: u32| {
        std::thread::sleep(wait); // waiting on the network
        format!("page {page}: {} bytes", page.to_string().len() * 100)
    };

    let t0 = Instant::now();
    let pool = ThreadPool::builder()
        .workers(3)
        .thread_name_prefix("downloader")
        .build()?;
    let futures = (1..=5)
        .map(|page| pool.submit(move || download(page)))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "submitted 5 downloads in {:?}; submit did not block (done so far: {})",
        t0.elapsed(),
        futures.iter().filter(|f| f.done()).count()
    );
    for f in as_completed(&futures) {
        println!("done after {:>6.0?}: {}", t0.elapsed(), f.result()?);
    }
    for line in pool.map(download, [10, 20, 30]) {
        println!("in order: {}", line?);
    }
    // three threads, five downloads: two rounds, not five
    println!("all done in {:?} with 3 threads", t0.elapsed());
    Ok(())
}
