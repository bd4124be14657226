//! An eater killed mid-item, and its hot dog eaten by another: a `JoinableRedisQueue` keeps
//! an item pending until `task_done`, and delivers it again to a live consumer once its
//! visibility timeout runs out (at least once: an item may be delivered twice, never lost).
//!
//! The parent puts five hot dogs. The eater "sicong" (a child process) takes one, says so,
//! and is killed with SIGKILL before it can call `task_done`. The eater "jianlin" (another
//! child) eats the other four and then, after the visibility timeout, sicong's.
//!
//! ```text
//! cargo run -p conveyor --features redis --example redis_redelivery
//! cargo run -p conveyor --features redis --example redis_redelivery -- --quick
//! ```

use std::time::{Duration, Instant};

use conveyor::process::{self as process, entry, Process};
use conveyor::redis::{Builder, JoinableRedisQueue, RedisQueue, Target};
use conveyor::{Channel, Joinable};

fn open(url: &str, name: &str, visibility: Duration) -> JoinableRedisQueue<String> {
    Builder::new(url, name)
        .visibility_timeout(visibility)
        .poll_interval(Duration::from_millis(20))
        .open_joinable()
        .expect("open the queue")
}

/// Takes one hot dog, reports it on the `notes` queue, then chews forever (until killed).
fn slow_eater((url, name, notes, visibility): (String, String, String, Duration)) {
    let q = open(&url, &name, visibility);
    let hotdog = q.get().expect("get");
    println!("sicong takes {hotdog} ... and chokes");
    let notes: RedisQueue<String> = RedisQueue::open(&url, &notes).expect("notes");
    notes.put(hotdog).expect("note");
    loop {
        std::thread::park();
    }
}

/// Eats until the queue is shut down.
fn eater((url, name, visibility): (String, String, Duration)) {
    let q = open(&url, &name, visibility);
    loop {
        match q.get() {
            Ok(hotdog) => {
                println!("jianlin ate {hotdog}");
                q.task_done().expect("task_done");
            }
            Err(e) if e.is_closed() => return,
            Err(e) => panic!("jianlin: {e}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(slow_eater), entry!(eater)]);
    let quick = std::env::args().any(|a| a == "--quick");
    let visibility = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    let Some(server) = Target::from_env()? else {
        eprintln!("no Redis server: set CONVEYOR_REDIS_URL or install redis-server");
        std::process::exit(2);
    };
    let url = server.url();
    let name = format!("redelivery-{}", std::process::id());
    let notes_name = format!("{name}-notes");
    let q = open(&url, &name, visibility);
    let notes: RedisQueue<String> = RedisQueue::open(&url, &notes_name)?;
    for i in 0..5 {
        q.put(format!("hot dog {i}"))?;
    }

    let sicong = Process::new(
        "slow_eater",
        (url.as_str(), name.as_str(), notes_name.as_str(), visibility),
    )
    .name("sicong")
    .start()?;
    let choked_on = notes.get_timeout(Duration::from_secs(30))?;
    sicong.kill()?;
    sicong.join()?;
    let killed_at = Instant::now();
    println!("sicong was killed holding {choked_on}");

    let jianlin = Process::new("eater", (url.as_str(), name.as_str(), visibility))
        .name("jianlin")
        .start()?;
    q.join()?;
    println!(
        "every hot dog was eaten, {choked_on} too, {:.1} s after sicong died (visibility timeout {:?})",
        killed_at.elapsed().as_secs_f64(),
        visibility
    );
    q.shutdown(false)?;
    jianlin.join()?;
    q.destroy()?;
    notes.destroy()?;
    Ok(())
}
