//! A daemon thread and a plain one: seed 003's `t1.daemon = True`, and what Rust has instead.
//!
//! The Python original:
//!
//! ```python
//! import time
//! from threading import Thread
//!
//! def task1():
//!     print("child 1 is running")
//!     time.sleep(3)
//!     print("child 1 is over")
//!
//! def task2():
//!     print("child 2 is running")
//!     time.sleep(2)
//!     print("child 2 is over")
//!
//! t1 = Thread(target=task1)
//! t2 = Thread(target=task2)
//! t1.daemon = True
//! t1.start()
//! t2.start()
//! print("main Game Over")
//! ```
//!
//! It prints "child 1 is running", "child 2 is running", "main Game Over", then, two seconds
//! later, "child 2 is over", and ends: at exit Python waits for every thread that is not a
//! daemon (`t2`), and a daemon thread (`t1`) is stopped where it is, so "child 1 is over" never
//! appears.
//!
//! **Rust has no daemon flag on threads.** When `main` returns the process exits, and every
//! other thread stops wherever it is, without unwinding (no destructors run in it): every Rust
//! thread behaves like a Python daemon thread. A thread that Python would wait for (not a
//! daemon) is one that `main` joins before it returns. So the equivalent of the program is:
//! spawn both, join only `t2` at the end of `main` (what Python's exit does for it), and let
//! `t1` be cut off when `main` returns. As with Python's daemon threads, a thread left to be cut
//! off must hold nothing that has to be finished or cleaned up (a half-written file, a lock
//! another process waits on); for work that must end cleanly, tell the thread to stop (a closed
//! queue, a flag) and join it. (Daemon *processes* exist: see `daemon_children`.)
//!
//! ```text
//! cargo run -p conveyor --example daemon_threads
//! cargo run -p conveyor --example daemon_threads -- --quick
//! ```
//!
//! The original's pauses of 3 and 2 seconds are 600 and 400 ms here, and 150 and 100 ms with
//! `--quick`.

use std::thread;
use std::time::Duration;

fn task1(unit: Duration) {
    println!("child 1 is running");
    thread::sleep(unit * 3);
    println!("child 1 is over"); // never printed: main returns first
}

fn task2(unit: Duration) {
    println!("child 2 is running");
    thread::sleep(unit * 2);
    println!("child 2 is over");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let unit = Duration::from_millis(if quick { 50 } else { 200 });

    // t1.daemon = True: a thread nobody joins; it is cut off when main returns.
    let _t1 = thread::spawn(move || task1(unit));
    // t2 is not a daemon: main joins it before returning, as Python's exit does.
    let t2 = thread::spawn(move || task2(unit));
    println!("main Game Over");
    t2.join().expect("t2 panicked");
    // main returns here: the process exits and t1, still asleep, stops with it.
}
