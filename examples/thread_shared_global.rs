//! Threads of one process share its memory: seed 003's global `x` changed by a thread.
//!
//! The Python original:
//!
//! ```python
//! import time, os
//! from threading import Thread
//!
//! x = 100
//!
//! def task():
//!     global x
//!     x = 10
//!     print("thread", os.getpid())   # the same pid as the main thread
//!
//! t = Thread(target=task)
//! t.start()
//! time.sleep(3)                      # the main thread waits for the child thread
//! print(x)                           # 10
//! print("main thread", os.getpid())
//! ```
//!
//! The thread's write is seen by the main thread, and both print the same process id: threads
//! are paths of execution inside one process, where processes would each have their own `x`
//! (`process_hello` shows that). In Rust a global that threads change is a `static` of a type
//! that can be shared safely, here an atomic integer; and the main thread waits for the thread
//! by joining it, a real signal, instead of sleeping three seconds and hoping.
//!
//! ```text
//! cargo run -p conveyor --example thread_shared_global
//! ```

use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;

/// `x = 100`, shared by every thread of the process.
static X: AtomicI32 = AtomicI32::new(100);

fn task() {
    X.store(10, Ordering::SeqCst); // global x; x = 10
    println!("thread {}", std::process::id());
}

fn main() {
    let t = thread::spawn(task);
    t.join().expect("the thread panicked"); // in place of time.sleep(3)
    let x = X.load(Ordering::SeqCst);
    println!("{x}");
    println!("main thread {}", std::process::id());
    assert_eq!(x, 10, "the thread's write is visible to the main thread");
}
