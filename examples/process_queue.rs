//! A bounded queue between two processes: seed 001's `multiprocessing.Queue(10)` program.
//!
//! The Python original:
//!
//! ```python
//! from multiprocessing import Process, Queue
//!
//! def producer(queue):
//!     queue.put("a")
//!     time.sleep(2)
//!
//! def consumer(queue):
//!     time.sleep(2)
//!     print(queue.get())
//!
//! if __name__ == "__main__":
//!     queue = Queue(10)
//!     my_producer = Process(target=producer, args=(queue,))
//!     my_consumer = Process(target=consumer, args=(queue,))
//!     my_producer.start(); my_consumer.start()
//!     my_producer.join(); my_consumer.join()
//! # a
//! ```
//!
//! The seed shows this right after a global variable that two processes cannot share: a plain
//! `queue.Queue` cannot cross processes either, `multiprocessing.Queue` can. Here the queue is a
//! [`ShmQueue`] bounded to 10 items, and it travels to each child in its arguments (as its
//! segment's name; the child opens the same shared memory). The consumer's pause is not needed
//! for correctness (`get` blocks until the item is there); it is kept, shorter, to follow the
//! original.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example process_queue
//! cargo run -p conveyor --no-default-features --features shm,process --example process_queue -- --quick
//! ```
//!
//! The original's 2-second pauses are 200 ms here, and 20 ms with `--quick`.

use std::time::Duration;

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;

/// `queue.put("a")`, then a pause.
fn producer((queue, pause): (ShmQueue<String>, Duration)) -> Result<(), String> {
    queue
        .put("a".to_string())
        .map_err(|e| format!("put: {e}"))?;
    std::thread::sleep(pause);
    Ok(())
}

/// A pause, then `print(queue.get())`.
fn consumer((queue, pause): (ShmQueue<String>, Duration)) -> Result<(), String> {
    std::thread::sleep(pause);
    let item = queue.get().map_err(|e| format!("get: {e}"))?;
    println!("{item}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(producer), entry!(consumer)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let pause = Duration::from_millis(if quick { 20 } else { 200 });

    let queue: ShmQueue<String> = ShmQueue::builder().max_items(10).create()?; // Queue(10)
    assert_eq!(queue.capacity(), Some(10));
    let my_producer = Process::new("producer", (&queue, pause)).start()?;
    let my_consumer = Process::new("consumer", (&queue, pause)).start()?;
    let (p, c) = (my_producer.join()?, my_consumer.join()?);
    if !(p.success() && c.success()) {
        return Err(format!("producer: {p}, consumer: {c}").into());
    }
    Ok(())
}
