//! Seed 003's hot dogs over Redis: three makers and two eaters, each a separate process that
//! shares nothing with the others but the server's URL and the queue's name, with
//! `task_done`/`join` as in Python's `JoinableQueue`.
//!
//! The Python original (with `multiprocessing.JoinableQueue`):
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
//! ...
//!     q.join()
//!     print("the eaters are done")
//! ```
//!
//! Python's eaters loop forever, so they must be daemons killed at exit. Here the parent calls
//! `shutdown(false)` after `join`: each eater's next get returns `Closed`, so the eaters end
//! on their own and are joined like the makers. The processes could as well run on other
//! machines: only the URL would change.
//!
//! ```text
//! cargo run -p conveyor --features redis --example redis_workers             # a redis-server of its own
//! CONVEYOR_REDIS_URL=redis://host:6379/ cargo run -p conveyor --features redis --example redis_workers
//! cargo run -p conveyor --features redis --example redis_workers -- --quick  # 10-30 ms pauses
//! ```

use std::time::Duration;

use conveyor::process::{self as process, entry, Process};
use conveyor::redis::{JoinableRedisQueue, Target};
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

fn make_hotdog((name, url, queue, unit): (String, String, String, Duration)) {
    let q: JoinableRedisQueue<String> = JoinableRedisQueue::open(&url, &queue).expect("open");
    for i in 0..5u64 {
        pause(unit, i + name.len() as u64 * 7);
        println!("{name} made hot dog {i}");
        q.put(format!("{name}'s hot dog {i}")).expect("put");
    }
    q.close().expect("close"); // this maker puts no more; the others go on
}

fn eat_hotdog((name, url, queue, unit): (String, String, String, Duration)) {
    let q: JoinableRedisQueue<String> = JoinableRedisQueue::open(&url, &queue).expect("open");
    let mut n = 0u64;
    loop {
        match q.get() {
            Ok(hotdog) => {
                pause(unit, n + name.len() as u64 * 13);
                println!("{name} ate {hotdog}");
                q.task_done().expect("task_done");
                n += 1;
            }
            Err(e) if e.is_closed() => break,
            Err(e) => panic!("{name}: {e}"),
        }
    }
    println!("{name} is full ({n} hot dogs)");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(make_hotdog), entry!(eat_hotdog)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let unit = if quick {
        Duration::from_millis(10)
    } else {
        Duration::from_secs(1)
    };
    let Some(server) = Target::from_env()? else {
        eprintln!("no Redis server: set CONVEYOR_REDIS_URL or install redis-server");
        std::process::exit(2);
    };
    let url = server.url();
    let name = format!("hotdogs-{}", std::process::id());
    let q: JoinableRedisQueue<String> = JoinableRedisQueue::open(&url, &name)?;

    let start = |entry: &str, who: &str| {
        Process::new(entry, (who, url.as_str(), name.as_str(), unit))
            .name(who)
            .start()
    };
    let makers = ["jerry", "monkey", "owen"]
        .into_iter()
        .map(|who| start("make_hotdog", who))
        .collect::<Result<Vec<_>, _>>()?;
    let eaters = ["sicong", "jianlin"]
        .into_iter()
        .map(|who| start("eat_hotdog", who))
        .collect::<Result<Vec<_>, _>>()?;

    for (maker, ordinal) in makers.iter().zip(["first", "second", "third"]) {
        let status = maker.join()?;
        assert!(status.success(), "{}: {status}", maker.name());
        println!("{ordinal} maker done");
    }
    q.join()?;
    println!("the eaters are done");
    q.shutdown(false)?; // their next get returns Closed
    for eater in &eaters {
        let status = eater.join()?;
        assert!(status.success(), "{}: {status}", eater.name());
    }
    q.destroy()?;
    Ok(())
}
