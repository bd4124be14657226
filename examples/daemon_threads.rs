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
//! The pauses are the original's 3 and 2 seconds. `--quick` shortens `t2`'s to 100 ms and
//! leaves the daemon's at 3 seconds: the program ends when `t2` is done either way, and the
//! daemon, still asleep then, is cut off.

use std::thread;
use std::time::Duration;

fn task1(pause: Duration) {
    println!("child 1 is running");
    thread::sleep(pause);
    println!("child 1 is over"); // never printed: main returns first
}

fn task2(pause: Duration) {
    println!("child 2 is running");
    thread::sleep(pause);
    println!("child 2 is over");
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let pause1 = Duration::from_secs(3);
    let pause2 = Duration::from_millis(if quick { 100 } else { 2000 });

    // t1.daemon = True: a thread nobody joins; it is cut off when main returns.
    let _t1 = thread::spawn(move || task1(pause1));
    // t2 is not a daemon: main joins it before returning, as Python's exit does.
    let t2 = thread::spawn(move || task2(pause2));
    println!("main Game Over");
    t2.join().expect("t2 panicked");
    // main returns here: the process exits and t1, still asleep, stops with it.
}
