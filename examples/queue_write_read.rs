//! A writer and a reader process on one queue, with `full()`, `empty()` and a get with a
//! timeout: seed 002's `write_task` / `read_task`.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, Queue
//! import time
//!
//! def write_task(q):
//!     if not q.full():
//!         for i in range(5):
//!             message = "message" + str(i)
//!             q.put(message)
//!             print("written: %s" % message)
//!
//! def read_task(q):
//!     time.sleep(1)
//!     while not q.empty():
//!         print("read: %s" % q.get(True, 2))   # wait 2 s; raise if nothing comes
//!
//! if __name__ == '__main__':
//!     print("---parent process starts---")
//!     q = Queue()          # the parent makes the queue and passes it to the children
//!     pw = Process(target=write_task, args=(q,))
//!     pr = Process(target=read_task, args=(q,))
//!     pw.start()
//!     pr.start()
//!     print("---waiting for the children to end---")
//!     pw.join()
//!     pr.join()
//!     print("---parent process ends---")
//! ```
//!
//! `q.full()` and `q.empty()` are `ShmQueue::is_full` and `ShmQueue::is_empty` (plain `bool`s:
//! the shared segment always answers; through the `QueueInfo` trait they are `Result`s);
//! `q.get(True, 2)` is [`Channel::get_timeout`] with 2 seconds, which fails with a timeout
//! error (Python's `queue.Empty`) if nothing arrives in time. As in Python, the reader relies
//! on its one-second head start to find all five messages already written: `empty()` is only a
//! snapshot, and a reader that starts before the writer sees an empty queue and stops at once.
//! (conveyor's way to tell a reader that no more is coming is shown in
//! `process_producer_consumer`.)
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example queue_write_read
//! cargo run -p conveyor --no-default-features --features shm,process --example queue_write_read -- --quick
//! ```
//!
//! The reader's head start is 1 s, as in the original, or 100 ms with `--quick`.

use std::time::Duration;

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;

/// Writes five messages, if the queue has room.
fn write_task(q: ShmQueue<String>) -> Result<(), String> {
    if !q.is_full() {
        for i in 0..5 {
            let message = format!("message{i}");
            q.put(message.clone()).map_err(|e| format!("put: {e}"))?;
            println!("written: {message}");
        }
    }
    Ok(())
}

/// After a head start, reads until the queue is empty, waiting at most 2 s for each message.
fn read_task((q, head_start): (ShmQueue<String>, Duration)) -> Result<(), String> {
    std::thread::sleep(head_start);
    while !q.is_empty() {
        let message = q
            .get_timeout(Duration::from_secs(2))
            .map_err(|e| format!("get(True, 2): {e}"))?;
        println!("read: {message}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(write_task), entry!(read_task)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let head_start = Duration::from_millis(if quick { 100 } else { 1000 });

    println!("---parent process starts---");
    let q: ShmQueue<String> = ShmQueue::new()?; // unbounded, like Queue()
    let pw = Process::new("write_task", &q).start()?;
    let pr = Process::new("read_task", (&q, head_start)).start()?;
    println!("---waiting for the children to end---");
    let w = pw.join()?;
    let r = pr.join()?;
    if !(w.success() && r.success()) {
        return Err(format!("write_task: {w}, read_task: {r}").into());
    }
    println!("---parent process ends---");
    Ok(())
}
