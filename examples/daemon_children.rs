//! Daemon children end with their parent; other children are joined: the daemon consumers of
//! seed 003 without the queue.
//!
//! In the Python original the two hot-dog eaters are `daemon = True` processes that loop
//! forever; the main process joins the makers and, when it ends, the daemons end with it. Here a
//! `boss` process plays that main process: it starts a daemon `ticker` that would run forever and
//! a plain `worker` that it joins, then returns. This program (the boss's parent) then watches
//! the ticker disappear, without ever signalling it: as the boss ends it terminates its daemons
//! (Python's exit handler does the same), and a daemon whose parent dies any other way is
//! killed by the kernel.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features process --example daemon_children
//! ```
//!
//! The boss tells its parent the ticker's pid over a socket it received in its arguments (a
//! connection handed to a child, as `conveyor-pipe`'s connections are).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use conveyor::process::{self as process, entry, Process};
use serde::{Deserialize, Serialize};

/// A socket end that travels to a child as an inherited descriptor.
#[derive(Serialize, Deserialize)]
struct End(#[serde(with = "conveyor::core::handoff::fd")] UnixStream);

/// A daemon that would tick forever.
fn ticker(every: Duration) {
    for n in 1.. {
        println!("  ticker: tick {n}");
        std::thread::sleep(every);
    }
}

/// A plain child with a finite job.
fn worker(rounds: u32) -> i32 {
    let mut total: u64 = 0;
    for r in 1..=rounds {
        total += (1..=100_000u64).map(|i| i % (r as u64 + 1)).sum::<u64>();
        std::thread::sleep(Duration::from_millis(60));
        println!("  worker: round {r} of {rounds}");
    }
    println!("  worker: done, total {total}");
    0
}

/// Plays Python's main process: starts a daemon and a worker, joins the worker, ends.
fn boss(End(mut parent): End) -> Result<(), process::Error> {
    let ticker = Process::new("ticker", Duration::from_millis(50))
        .name("ticker")
        .daemon(true)
        .start()?;
    let worker = Process::new("worker", 5u32).name("worker").start()?;
    writeln!(parent, "{}", ticker.pid()).expect("the parent is listening");
    let status = worker.join()?;
    println!("  boss: worker {status}; returning, and my daemon ticker ends with me");
    Ok(())
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // the state follows the command name in parentheses
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(ticker), entry!(worker), entry!(boss)]);

    let (mine, theirs) = UnixStream::pair()?;
    let boss = Process::new("boss", End(theirs)).name("boss").start()?;
    let mut line = String::new();
    BufReader::new(&mine).read_line(&mut line)?;
    let ticker_pid: u32 = line.trim().parse()?;
    println!(
        "main: boss is pid {}, its daemon ticker pid {ticker_pid}",
        boss.pid()
    );

    let status = boss.join()?;
    println!("main: boss {status}");
    let since = Instant::now();
    while !ended(ticker_pid) {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the daemon outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "main: the daemon ticker ended {:.1} ms after the boss, without a word from main",
        since.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
