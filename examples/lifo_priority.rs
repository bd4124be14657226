//! The `queue` module's three queues side by side: seed 004's FIFO, LIFO and priority examples.
//!
//! The Python original puts 1, 2, 3 into a `queue.Queue` and gets them back as 1, 2, 3; into a
//! `queue.LifoQueue` and gets 3, 2, 1; and puts `[10, "A"]`, `[50, "B"]`, `[30, "C"]` into a
//! `queue.PriorityQueue` and gets them smallest priority first: A, C, B. It then walks through
//! the method table (`qsize`, `empty`, `full`, `put_nowait`, `get(timeout=...)`) and the
//! `task_done`/`join` pair. This example does the same with [`Queue`], [`LifoQueue`] and
//! [`PriorityQueue`], where a `(priority, name)` tuple orders like Python's list.
//!
//! Two differences from Python show up on purpose: among equal priorities conveyor's
//! `PriorityQueue` keeps insertion order (Python's heap does not promise it), and a failed
//! `try_put` hands the item back instead of raising `Full`.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features thread --example lifo_priority
//! ```
//!
//! `--quick` is accepted and changes nothing: the example runs in milliseconds.

use std::thread;
use std::time::Duration;

use conveyor::thread::{LifoQueue, PriorityQueue, Queue};

fn fifo() {
    println!("--- Queue: first in, first out ---");
    let q = Queue::unbounded(); // queue.Queue(); a maxsize would be Queue::bounded(n)
    q.put(1).expect("an open queue takes items");
    q.put(2).expect("an open queue takes items");
    q.put(3).expect("an open queue takes items");
    while let Ok(item) = q.try_get() {
        println!("{item}");
    }
}

fn lifo() {
    println!("--- LifoQueue: last in, first out ---");
    let q = LifoQueue::unbounded();
    q.put(1).expect("an open queue takes items");
    q.put(2).expect("an open queue takes items");
    q.put(3).expect("an open queue takes items");
    while let Ok(item) = q.try_get() {
        println!("{item}");
    }
}

fn priority() {
    println!("--- PriorityQueue: smallest priority first ---");
    let q = PriorityQueue::unbounded();
    q.put((10, "A")).expect("an open queue takes items"); // [priority, data]
    q.put((50, "B")).expect("an open queue takes items");
    q.put((30, "C")).expect("an open queue takes items");
    while let Ok((priority, name)) = q.try_get() {
        println!("[{priority}, {name:?}]");
    }

    println!("--- PriorityQueue: equal priorities leave in the order they came ---");
    // Ordered by priority only, so "first", "second" and "third" compare equal.
    #[derive(Debug, PartialEq, Eq)]
    struct Job {
        priority: u8,
        name: &'static str,
    }
    impl Ord for Job {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.priority.cmp(&other.priority)
        }
    }
    impl PartialOrd for Job {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    let q = PriorityQueue::unbounded();
    for (priority, name) in [(5, "first"), (1, "urgent"), (5, "second"), (5, "third")] {
        q.put(Job { priority, name })
            .expect("an open queue takes items");
    }
    while let Ok(job) = q.try_get() {
        println!("priority {} {}", job.priority, job.name);
    }
}

fn method_table() {
    println!("--- the method table on a Queue(maxsize=2) ---");
    let q = Queue::bounded(2);
    println!(
        "qsize() = {}, empty() = {}, full() = {}, maxsize = {:?}",
        q.len(),
        q.is_empty(),
        q.is_full(),
        q.capacity()
    );
    q.put("a").expect("there is room");
    q.put("b").expect("there is room");
    println!(
        "after two puts: qsize() = {}, empty() = {}, full() = {}",
        q.len(),
        q.is_empty(),
        q.is_full()
    );
    match q.try_put("c") {
        Ok(()) => println!("put_nowait(\"c\") succeeded"),
        Err(e) => println!(
            "put_nowait({:?}): full = {}, the item comes back: {:?}",
            "c",
            e.is_full(),
            e.into_inner()
        ),
    }
    match q.put_timeout("c", Duration::from_millis(50)) {
        Ok(()) => println!("put(\"c\", timeout=0.05) succeeded"),
        Err(e) => println!("put(\"c\", timeout=0.05): timed out = {}", e.is_timeout()),
    }
    println!("get_nowait() = {:?}", q.try_get().ok());
    println!("get_nowait() = {:?}", q.try_get().ok());
    match q.try_get() {
        Ok(item) => println!("get_nowait() = {item:?}"),
        Err(e) => println!("get_nowait() on an empty queue: empty = {}", e.is_empty()),
    }
    match q.get_timeout(Duration::from_millis(50)) {
        Ok(item) => println!("get(timeout=0.05) = {item:?}"),
        Err(e) => println!("get(timeout=0.05): timed out = {}", e.is_timeout()),
    }
}

fn task_done_and_join() {
    println!("--- task_done and join: Ken puts a rose, Jack takes it ---");
    let q = Queue::unbounded();
    let jack = {
        let q = q.clone();
        thread::spawn(move || {
            let rose: &str = q.get().expect("Ken puts a rose before anyone closes");
            println!("Jack get {rose}");
            // Marks the item as handled; this is what releases Ken's join().
            q.task_done()
                .expect("one item was put, so one task_done is allowed");
        })
    };
    println!("Ken put rose");
    q.put("rose").expect("an open queue takes items");
    q.join(); // until every item put has been marked done
    println!("Ken sees the rose was handled (join returned)");
    jack.join().expect("Jack panicked");
    let extra = q.task_done();
    println!(
        "one task_done too many is an error: {}",
        extra.map_or_else(|e| e.to_string(), |()| "no error".into())
    );
}

fn main() {
    fifo();
    lifo();
    priority();
    method_table();
    task_done_and_join();
}
