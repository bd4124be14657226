//! A producer thread and a consumer thread over one [`Queue`]: the threads example of seed 002.
//!
//! The Python original starts a `Producer` thread that puts the products 0 to 4 into a
//! `queue.Queue`, sleeping a random time after each, and a `Consumer` thread that takes five
//! products out; the main thread joins both. The consumer has to know in advance that exactly
//! five products are coming, because a Python queue cannot tell it that the producer is done.
//!
//! Here the producer calls [`Queue::shutdown`] (Python 3.13's) when it has finished, so the consumer simply takes
//! products until `get` answers `Closed`: it needs no count and no sentinel value, and it never
//! blocks forever.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features thread --example thread_producer_consumer
//! cargo run -p conveyor --no-default-features --features thread --example thread_producer_consumer -- --quick
//! ```
//!
//! `--quick` shortens the random pauses so the run takes a fraction of a second.

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conveyor::thread::Queue;

/// How many products the producer makes (the Python original makes five).
const PRODUCTS: u32 = 5;

/// A small xorshift generator, enough to make the pauses random (Python's `random.random()`).
struct Random(u64);

impl Random {
    /// A generator seeded from the clock, with `salt` so two threads get different sequences.
    fn seeded(salt: u64) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x2545_F491_4F6C_DD1D, |d| d.as_nanos() as u64);
        Random((nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    /// A number in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sleeps a random time below `max`, as the Python threads do with `time.sleep(random.random())`.
fn pause(rng: &mut Random, max: Duration) {
    thread::sleep(max.mul_f64(rng.next_f64()));
}

/// The producer thread's body (Python's `Producer.run`).
fn produce(queue: Queue<u32>, max_pause: Duration) {
    let name = thread::current().name().unwrap_or("?").to_owned();
    let mut rng = Random::seeded(1);
    for i in 0..PRODUCTS {
        println!("producer {name} puts product {i} into the queue");
        queue
            .put(i)
            .expect("nobody closes the queue before the producer does");
        pause(&mut rng, max_pause);
    }
    // Python 3.13's `queue.shutdown()`: tell every consumer that no more is coming.
    queue.shutdown(false);
    println!("producer {name} is done and closes the queue");
}

/// The consumer thread's body (Python's `Consumer.run`), which needs no product count.
fn consume(queue: Queue<u32>, max_pause: Duration) {
    let name = thread::current().name().unwrap_or("?").to_owned();
    let mut rng = Random::seeded(2);
    let mut taken = 0;
    // `get` blocks while the queue is empty; once it is closed and drained it returns `Closed`.
    while let Ok(val) = queue.get() {
        println!("consumer {name} takes product {val} out of the queue");
        taken += 1;
        pause(&mut rng, max_pause);
    }
    println!("consumer {name} is done: the queue is closed and empty after {taken} products");
}

fn main() {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    // Python pauses up to one second; a third of that keeps the run short but still interleaved.
    let max_pause = if quick {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(300)
    };

    println!("--- main thread starts ---");
    let queue = Queue::unbounded(); // queue = Queue()

    let producer = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("Producer".into())
            .spawn(move || produce(queue, max_pause))
            .expect("could not start the producer thread")
    };
    let consumer = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("Consumer".into())
            .spawn(move || consume(queue, max_pause))
            .expect("could not start the consumer thread")
    };

    producer.join().expect("the producer panicked");
    consumer.join().expect("the consumer panicked");
    assert!(queue.is_empty(), "the consumer drains every product");
    println!("--- main thread ends ---");
}
