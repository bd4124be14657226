//! A manager reached over TCP: the server listens on a TCP port, and a client in another
//! process connects to it by address and authkey, as Python's
//! `BaseManager(address=("", 50000), authkey=b"abc")` with `connect()` does.
//!
//! The server could as well be the standalone binary on another machine:
//!
//! ```text
//! conveyor-manager serve --listen tcp:0.0.0.0:50000 --authkey-file key.txt
//! ```
//!
//! Here it runs in this process, on a free port of 127.0.0.1; a worker process reads its job
//! from a namespace, sends results through a queue, and adds to a counter.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features manager,process --example manager_remote
//! ```

use conveyor::manager::{Address, Manager, ManagerConnection, ManagerError};
use conveyor::process::{self as process, entry, Process};
use conveyor::{Channel, Joinable};

/// The remote worker: knows only the server's address and the key.
fn worker((address, authkey): (Address, Vec<u8>)) -> Result<(), ManagerError> {
    let client = ManagerConnection::connect(&address, &authkey)?;
    let config = client.namespace("config")?;
    let upto: u64 = config.get("upto")?.unwrap_or(0);
    let results = client.queue::<(u64, u64)>("results", Some(16))?;
    let done = client.value("done", &0u64)?;
    for n in 1..=upto {
        results
            .put((n, n * n))
            .map_err(|e| ManagerError::Io(std::io::Error::other(e)))?;
        done.fetch_add(1)?;
    }
    results
        .shutdown(false)
        .map_err(|e| ManagerError::Io(e.into()))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _children = process::init(&[entry!(worker)]);
    let authkey = b"abc".to_vec();
    let m = Manager::builder()
        .address("tcp:127.0.0.1:0".parse()?)
        .authkey(authkey.clone())
        .start()?;
    println!("manager listening on {}", m.address());

    m.namespace("config")?.set("upto", &5u64)?;
    let results = m.queue::<(u64, u64)>("results", Some(16))?;
    let child = Process::new("worker", (m.address().clone(), authkey)).start()?;

    // Gets drain what the worker put, then end with Closed once it closes the queue.
    while let Ok((n, square)) = results.get() {
        println!("worker says {n}^2 = {square}");
        results.task_done()?;
    }
    child.join()?;
    println!("done: {}", m.value("done", &0u64)?.get()?);
    Ok(())
}
