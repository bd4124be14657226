//! A cook and an eater in two processes, over a shared-memory queue: seed 003's producer and
//! consumer.
//!
//! The Python original:
//!
//! ```python
//! def task1(q):
//!     for i in range(10):
//!         time.sleep(random.randint(0, 2))
//!         print("cooking dish %s" % i)
//!         q.put("dish %s" % i)
//!
//! def task2(q):
//!     for i in range(10):
//!         rose = q.get()
//!         print(rose, "being eaten")
//!         time.sleep(random.randint(0, 2))
//!         print(rose, "eaten")
//!
//! if __name__ == '__main__':
//!     q = Queue()
//!     p1 = Process(target=task1, args=(q,))
//!     p2 = Process(target=task2, args=(q,))
//!     p1.start(); p2.start()
//! ```
//!
//! The tutorial then notes the flaw: the eater has to know how many dishes will come, or it
//! waits forever once the cook is done. Here the cook [shuts the queue down](Channel::shutdown)
//! when done, and the eater simply loops until `get` says `Closed`: it can eat any number of
//! dishes and still stop.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example process_producer_consumer
//! cargo run -p conveyor --no-default-features --features shm,process --example process_producer_consumer -- --quick
//! ```
//!
//! `--quick` turns the pauses of 0 to 2 seconds into 0 to 20 milliseconds.

use std::time::Duration;

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;

/// A pause of 0, 1 or 2 units, like `random.randint(0, 2)`.
fn pause(unit: Duration, salt: u64) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let r = (nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 3;
    std::thread::sleep(unit * r as u32);
}

/// Cooks ten dishes, then shuts the queue down: no more dishes will come.
fn cook((q, unit): (ShmQueue<String>, Duration)) {
    for i in 0..10u64 {
        pause(unit, i);
        println!("cooking dish {i}");
        q.put(format!("dish {i}"))
            .expect("the queue was closed under the cook");
    }
    q.shutdown(false).expect("shut the queue down");
}

/// Eats until the cook is done and every dish is eaten.
fn eater((q, unit): (ShmQueue<String>, Duration)) {
    let mut eaten = 0u64;
    while let Ok(dish) = q.get() {
        println!("{dish} being eaten");
        pause(unit, eaten + 100);
        println!("{dish} eaten");
        eaten += 1;
    }
    println!("the cook is done: {eaten} dishes eaten");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(cook), entry!(eater)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let unit = if quick {
        Duration::from_millis(10)
    } else {
        Duration::from_secs(1)
    };

    let q: ShmQueue<String> = ShmQueue::new()?;
    let p1 = Process::new("cook", (&q, unit)).name("cook").start()?;
    let p2 = Process::new("eater", (&q, unit)).name("eater").start()?;
    let (s1, s2) = (p1.join()?, p2.join()?);
    assert!(s1.success() && s2.success(), "cook: {s1}, eater: {s2}");
    Ok(())
}
