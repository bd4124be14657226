//! Processes do not share variables: the first example of seed 001, with real child processes.
//!
//! The Python original:
//!
//! ```python
//! def producer(a):
//!     a += 1
//!     time.sleep(2)
//! def consumer(a):
//!     time.sleep(2)
//!     print(a)
//!
//! if __name__ == "__main__":
//!     a = 1
//!     my_producer = Process(target=producer, args=(a,))
//!     my_consumer = Process(target=consumer, args=(a,))
//!     my_producer.start(); my_consumer.start()
//!     my_producer.join(); my_consumer.join()
//! ```
//!
//! prints `1`: each child received its own copy of `a`, and the producer's `+= 1` changed only
//! that copy. Here each child is this same program, re-executed by `conveyor_process` at the
//! entry point registered by name, with `a` (and the pause) encoded in its arguments.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features process --example process_hello
//! cargo run -p conveyor --no-default-features --features process --example process_hello -- --quick
//! ```
//!
//! `--quick` replaces the original's two-second pauses with 20 ms ones. A child does not see
//! the parent's command line: the pause travels in its arguments.

use std::time::Duration;

use conveyor::process::{self as process, entry, Process};

/// The producer's copy of `a` goes up by one; nobody else sees it.
fn producer((mut a, pause): (i64, Duration)) {
    a += 1;
    println!(
        "[{}] producer: my copy of a is now {a}",
        process::current_name().unwrap_or("?")
    );
    std::thread::sleep(pause);
}

/// The consumer prints its own copy of `a`: still 1.
fn consumer((a, pause): (i64, Duration)) {
    std::thread::sleep(pause);
    println!(
        "[{}] consumer: a = {a}",
        process::current_name().unwrap_or("?")
    );
}

fn main() -> Result<(), process::Error> {
    // First thing: in a child this runs `producer` or `consumer` and exits.
    let _children = process::init(&[entry!(producer), entry!(consumer)]);

    let quick = std::env::args().any(|a| a == "--quick");
    let pause = if quick {
        Duration::from_millis(20)
    } else {
        Duration::from_secs(2)
    };

    let a: i64 = 1;
    let my_producer = Process::new("producer", (a, pause))
        .name("producer")
        .start()?;
    let my_consumer = Process::new("consumer", (a, pause))
        .name("consumer")
        .start()?;
    println!(
        "started producer (pid {}) and consumer (pid {})",
        my_producer.pid(),
        my_consumer.pid()
    );
    let p = my_producer.join()?;
    let c = my_consumer.join()?;
    println!("producer {p}; consumer {c}");
    println!("parent: a = {a} (the children's changes stayed in the children)");
    assert!(p.success() && c.success());
    Ok(())
}
