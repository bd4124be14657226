//! Three hot-dog makers and two eaters in five processes, with a joinable shared-memory queue:
//! seed 003's `JoinableQueue`.
//!
//! The Python original:
//!
//! ```python
//! def make_hotdog(name, q):
//!     for i in range(5):
//!         time.sleep(random.randint(1, 3))
//!         print("%s made hot dog %s" % (name, i))
//!         q.put("%s's hot dog %s" % (name, i))
//!
//! def eat_hotdog(name, q):
//!     while True:
//!         hotdog = q.get()
//!         time.sleep(random.randint(1, 3))
//!         print("%s ate %s" % (name, hotdog))
//!         q.task_done()
//!
//! if __name__ == '__main__':
//!     q = JoinableQueue()
//!     p1 = Process(target=make_hotdog, args=("jerry", q))
//!     p2 = Process(target=make_hotdog, args=("monkey", q))
//!     p3 = Process(target=make_hotdog, args=("owen", q))
//!     c1 = Process(target=eat_hotdog, args=("sicong", q)); c1.daemon = True
//!     c2 = Process(target=eat_hotdog, args=("jianlin", q)); c2.daemon = True
//!     p1.start(); p2.start(); p3.start(); c1.start(); c2.start()
//!     p1.join(); print("first maker done")
//!     p2.join(); print("second maker done")
//!     p3.join(); print("third maker done")
//!     q.join()
//!     print("the eaters are done")
//! ```
//!
//! The eaters loop forever, so they are daemons: they die with the main process, once `join`
//! has seen every hot dog marked done. Since they are killed, not dropped, the parent unlinks
//! the queue itself before it exits. [`JoinableShmQueue`] keeps the count of unfinished
//! tasks in the shared segment, so `task_done` in an eater process releases `join` in the
//! parent.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features shm,process --example hotdogs_joinable
//! cargo run -p conveyor --no-default-features --features shm,process --example hotdogs_joinable -- --quick
//! ```
//!
//! `--quick` turns the pauses of 1 to 3 seconds into 10 to 30 milliseconds.

use std::time::Duration;

use conveyor::process::{self as process, entry, Process};
use conveyor::shm::JoinableShmQueue;
use conveyor::{Channel, Joinable};

/// A pause of 1 to 3 units, like `random.randint(1, 3)`.
fn pause(unit: Duration, salt: u64) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let r = 1 + (nanos ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 3;
    std::thread::sleep(unit * r as u32);
}

fn make_hotdog((name, q, unit): (String, JoinableShmQueue<String>, Duration)) {
    for i in 0..5u64 {
        pause(unit, i + name.len() as u64 * 7);
        println!("{name} made hot dog {i}");
        q.put(format!("{name}'s hot dog {i}"))
            .expect("queue closed");
    }
}

fn eat_hotdog((name, q, unit): (String, JoinableShmQueue<String>, Duration)) {
    let mut n = 0u64;
    loop {
        let hotdog = q.get().expect("queue closed");
        pause(unit, n + name.len() as u64 * 13);
        println!("{name} ate {hotdog}");
        q.task_done().expect("more task_done calls than hot dogs");
        n += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(make_hotdog), entry!(eat_hotdog)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let unit = if quick {
        Duration::from_millis(10)
    } else {
        Duration::from_secs(1)
    };

    let q: JoinableShmQueue<String> = JoinableShmQueue::new()?;
    let makers = ["jerry", "monkey", "owen"]
        .into_iter()
        .map(|name| {
            Process::new("make_hotdog", (name, &q, unit))
                .name(name)
                .start()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for name in ["sicong", "jianlin"] {
        Process::new("eat_hotdog", (name, &q, unit))
            .name(name)
            .daemon(true)
            .start()?;
    }

    for (maker, ordinal) in makers.iter().zip(["first", "second", "third"]) {
        let status = maker.join()?;
        assert!(status.success(), "{}: {status}", maker.name());
        println!("{ordinal} maker done");
    }
    q.join();
    println!("the eaters are done");
    // The daemon eaters still hold the queue and are killed (SIGKILL) when this process ends,
    // so no handle of theirs will unlink it: remove its name now, or it stays in /dev/shm.
    q.unlink()?;
    Ok(())
}
