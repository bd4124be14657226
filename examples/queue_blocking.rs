//! A bounded queue between processes that blocks: seed 003's `Queue(3)`.
//!
//! The Python original:
//!
//! ```python
//! q = Queue(3)
//! q.put(1); q.put(2); q.put(3)
//! print(q.get())   # 1
//! q.put(4)         # full again: a further put would block until someone takes an item
//! print(q.get()); print(q.get()); print(q.get())
//! print(q.get())   # empty: blocks until someone puts an item
//! q.get(block=True, timeout=2)   # raises queue.Empty after 2 s
//! q.put("123", block=False)      # raises queue.Full when full
//! q.put("123", block=True, timeout=2)   # still no room after 2 s: raises queue.Full
//! ```
//!
//! Here a child process plays "someone": the parent's blocked `put` returns when the child
//! takes an item, and the parent's blocked `get` returns when the child puts one. Then the
//! non-blocking and timeout forms fail with `Empty` and `Timeout` errors for a get, and `Full`
//! and `Timeout` errors for a put on the full queue, which hand the refused item back.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example queue_blocking
//! cargo run -p conveyor --no-default-features --features shm,process --example queue_blocking -- --quick
//! ```
//!
//! `--quick` shortens the child's pauses and the 2-second timeouts to a tenth.

use std::time::{Duration, Instant};

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::ShmQueue;
use conveyor::Channel;

/// Someone else: takes one item after a pause, then puts one after another pause.
fn someone((q, pause): (ShmQueue<String>, Duration)) {
    std::thread::sleep(pause);
    let item = q.get().expect("get");
    println!("    [child] took {item}");
    std::thread::sleep(pause);
    println!("    [child] puts \"from the child\"");
    q.put("from the child".to_string()).expect("put");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(someone)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    let pause = Duration::from_millis(1000) / scale;
    let timeout = Duration::from_secs(2) / scale;

    let q: ShmQueue<String> = ShmQueue::builder().max_items(3).create()?;
    for i in 1..=3 {
        q.put(i.to_string())?;
    }
    println!(
        "put 1, 2, 3: len {} of {:?}, full: {}",
        q.len(),
        q.capacity(),
        q.is_full()
    );
    println!("get -> {}", q.get()?);
    q.put("4".to_string())?;
    println!("put 4: full again");

    let child = Process::new("someone", (&q, pause)).start()?;
    let t0 = Instant::now();
    q.put("5".to_string())?;
    println!(
        "put 5 blocked {:?} until the child took an item",
        t0.elapsed()
    );

    for _ in 0..3 {
        println!("get -> {}", q.get()?);
    }
    let t0 = Instant::now();
    println!(
        "get -> {} (blocked {:?} while empty)",
        q.get()?,
        t0.elapsed()
    );
    assert!(child.join()?.success());

    let t0 = Instant::now();
    let e = q.get_timeout(timeout).unwrap_err();
    println!(
        "get(timeout={timeout:?}) -> error after {:?}: {e}",
        t0.elapsed()
    );
    assert!(e.is_timeout());
    let e = q.try_get().unwrap_err();
    println!("get_nowait() -> {e}");
    assert!(e.is_empty());

    for i in 0..3 {
        q.try_put(format!("filler {i}"))?;
    }
    let e = q.try_put("123".to_string()).unwrap_err();
    println!("put_nowait(\"123\") -> {e}");
    assert!(e.is_full());
    println!("the refused item comes back: {:?}", e.into_inner());

    let t0 = Instant::now();
    let e = q.put_timeout("123".to_string(), timeout).unwrap_err();
    println!(
        "put(\"123\", timeout={timeout:?}) -> error after {:?}: {e}",
        t0.elapsed()
    );
    assert!(e.is_timeout());
    println!("the refused item comes back: {:?}", e.into_inner());
    Ok(())
}
