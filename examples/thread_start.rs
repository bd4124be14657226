//! Two ways to start a thread: seed 003's `Thread(target=task)` and a `Thread` subclass with
//! its own `run()`.
//!
//! The Python original:
//!
//! ```python
//! from threading import Thread
//!
//! # way one: make a Thread with a target function
//! def task():
//!     print("child thread is running")
//!
//! t = Thread(target=task)
//! t.start()
//! # the order is not fixed; starting a thread is usually much faster than the main
//! # thread's next step
//! print("main thread is running")
//!
//! # way two: a class of one's own that inherits from Thread
//! class MyThread(Thread):
//!     def run(self):
//!         print("child thread is running")
//!
//! t = MyThread()
//! t.start()
//! print("main thread is running")
//! ```
//!
//! Way one is [`std::thread::spawn`] with the function. Way two is a type of one's own with a
//! `run` method: Rust has no inheritance, so `Thread` here is a small trait whose provided
//! `start` spawns a thread that calls the type's `run`, which is what `threading.Thread.start`
//! does. The thread takes the value with it (`self` moves into the thread), so the type's
//! fields are the thread's own state, as a subclass's attributes are.
//!
//! Python joins every thread that is not a daemon before the program ends; a Rust program ends
//! when `main` returns, whatever its other threads are doing (see `daemon_threads`), so this
//! example joins its threads, which Python does for it.
//!
//! ```text
//! cargo run -p conveyor --example thread_start
//! ```

use std::thread::{self, JoinHandle};

/// Python's `threading.Thread` as a trait: implement `run`, call `start`.
trait Thread: Sized + Send + 'static {
    /// The thread's work (Python's `Thread.run`).
    fn run(self);

    /// Starts a thread that runs [`run`](Thread::run) (Python's `Thread.start`).
    fn start(self) -> JoinHandle<()> {
        thread::spawn(move || self.run())
    }
}

/// Way one's target.
fn task() {
    println!("child thread is running");
}

/// Way two: `class MyThread(Thread)`.
struct MyThread;

impl Thread for MyThread {
    fn run(self) {
        println!("child thread is running");
    }
}

fn main() {
    // Way one: Thread(target=task)
    let t = thread::spawn(task);
    // the order of the two lines is not fixed
    println!("main thread is running");
    t.join().expect("the thread panicked");

    // Way two: MyThread().start()
    let t = MyThread.start();
    println!("main thread is running");
    t.join().expect("the thread panicked");
}
