//! Ten buyer threads and a global ticket count under one lock: seed 002's `Lock` example.
//!
//! The Python original:
//!
//! ```python
//! from threading import Thread, Lock
//! import time
//!
//! n = 100   # 100 cinema tickets in all
//!
//! def task():
//!     global n
//!     mutex.acquire()     # lock
//!     temp = n            # copy to a temporary
//!     time.sleep(0.5)     # sleep half a second
//!     n = temp - 1        # one ticket fewer
//!     print("purchase succeeded, %d cinema tickets left" % n)
//!     mutex.release()     # unlock
//!
//! if __name__ == '__main__':
//!     mutex = Lock()
//!     list = []
//!     for i in range(10):
//!         th = Thread(target=task)
//!         list.append(th)
//!         th.start()
//!     for th in list:
//!         th.join()
//! ```
//!
//! It prints 99, 98, ... down to 90: each buyer reads, pauses and writes back while holding the
//! lock, so no buyer overwrites another's sale. In Rust the lock and the data it guards are one
//! value: the global is a `static Mutex<u32>`, and `lock()` (Python's `acquire()`) returns a
//! guard through which the count is read and written; the lock is released when the guard goes
//! out of scope (Python's `release()`), even if the buyer panics. What goes wrong without the
//! lock is shown by `ticket_lock`. Seed 003 ends with the same program (`num = 10`, ten threads
//! that each take one under a `Lock` with a 0.1 s pause, then `print(num)`, which prints 0);
//! this example stands for it too: after joining the buyers, `main` checks that exactly ten
//! tickets were sold.
//!
//! ```text
//! cargo run -p conveyor --example ticket_buyers
//! cargo run -p conveyor --example ticket_buyers -- --quick
//! ```
//!
//! The half-second pause is 50 ms here (the ten buyers take half a second in all), and 5 ms
//! with `--quick`.

use std::sync::Mutex;
use std::thread;
use std::time::Duration;

/// `n = 100`: the tickets left, and the lock that guards them.
static N: Mutex<u32> = Mutex::new(100);

/// One buyer: one ticket, bought under the lock.
fn task(pause: Duration) {
    // mutex.acquire(): a buyer that panicked while holding the lock leaves the count as it
    // was, so take it anyway rather than fail every later buyer.
    let mut n = N.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let temp = *n;
    thread::sleep(pause);
    *n = temp - 1;
    println!("purchase succeeded, {} cinema tickets left", *n);
    // mutex.release(): the guard `n` is dropped here
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let pause = Duration::from_millis(if quick { 5 } else { 50 });

    let mut list = Vec::new();
    for _ in 0..10 {
        let th = thread::spawn(move || task(pause));
        list.push(th);
    }
    for th in list {
        th.join().expect("a buyer panicked");
    }
    let left = *N.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    assert_eq!(left, 90, "ten buyers, ten tickets sold");
}
