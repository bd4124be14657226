//! Seed 004's race on a shared dict entry, and two ways to fix it.
//!
//! The Python original: two processes share `dic = Manager().dict()` with `dic["number"] = 0`;
//! one does `dic["number"] -= 1` a thousand times, the other `dic["number"] += 1` a thousand
//! times. Each `-=` is a get and then a set, two round trips to the server, so the processes
//! overwrite each other's updates and the result is -13, 5, 8... With an `RLock` held around
//! each loop it is always 0.
//!
//! This program runs the same two processes three ways and prints each final value:
//!
//! 1. **racy**: `get` then `set`, as Python's `dic["number"] -= 1` does (usually not 0);
//! 2. **with an RLock**: the whole loop under a shared `RLock`, as the seed fixes it (0);
//! 3. **atomic**: [`DictProxy::fetch_add`](conveyor::manager::DictProxy::fetch_add), applied by
//!    the server under its own lock in one round trip, with no lock to take (0).
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features manager,process --example manager_counter_race
//! ```

use conveyor::manager::{self, DictProxy, Manager, ManagerError, RLockProxy};
use conveyor::process::{self as process, entry, Process};

const TIMES: i64 = 1000;
const KEY: &str = "number";

/// One of the two processes: `TIMES` updates of `delta` on `dic["number"]`, the chosen way.
/// The dict and the lock are proxies, passed in the arguments as Python passes them.
fn task(
    (dic, lock, way, delta): (DictProxy<String, i64>, RLockProxy, String, i64),
) -> Result<(), ManagerError> {
    let key = KEY.to_string();
    match way.as_str() {
        "racy" => {
            for _ in 0..TIMES {
                let n = dic.get(&key)?.unwrap_or(0);
                dic.set(&key, &(n + delta))?;
            }
        }
        "rlock" => {
            let _held = lock.acquire()?; // `with lock:`
            for _ in 0..TIMES {
                let n = dic.get(&key)?.unwrap_or(0);
                dic.set(&key, &(n + delta))?;
            }
        }
        _ => {
            for _ in 0..TIMES {
                dic.fetch_add(&key, delta)?;
            }
        }
    }
    Ok(())
}

fn run(m: &manager::ManagerGuard, way: &str) -> Result<i64, Box<dyn std::error::Error>> {
    let dic = m.dict::<String, i64>("dic")?;
    let lock = m.rlock("lock")?;
    dic.set(&KEY.to_string(), &0)?;
    let minus = Process::new("task", (&dic, &lock, way, -1i64)).start()?;
    let plus = Process::new("task", (&dic, &lock, way, 1i64)).start()?;
    for child in [minus, plus] {
        let status = child.join()?;
        if !status.success() {
            return Err(format!("a {way} task failed: {status}").into());
        }
    }
    Ok(dic.get(&KEY.to_string())?.unwrap_or(0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(task)]);
    let m = Manager::builder().spawn()?;
    println!("two processes, {TIMES} decrements and {TIMES} increments of dic[\"{KEY}\"]:");
    let racy = run(&m, "racy")?;
    println!("  racy get + set:          {racy:>6}   (updates lost when the processes interleave)");
    let locked = run(&m, "rlock")?;
    println!("  get + set under an RLock: {locked:>5}");
    let atomic = run(&m, "atomic")?;
    println!("  atomic fetch_add:        {atomic:>6}");
    assert_eq!(locked, 0);
    assert_eq!(atomic, 0);
    Ok(())
}
