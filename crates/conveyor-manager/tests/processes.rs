//! Across real processes: a server in a child process, many clients in several processes, and
//! a client killed while it holds a lock.

use std::thread;
use std::time::Duration;

use conveyor_manager::{Endpoint, Manager};
use conveyor_process::{init_test, Process};

const PATIENCE: Duration = Duration::from_secs(60);

/// Seed 001's child: writes one entry of the shared dict.
fn add_data((endpoint, key, value): (Endpoint, String, i32)) -> Result<(), String> {
    let c = endpoint.connect().map_err(|e| e.to_string())?;
    let d = c
        .dict::<String, i32>("process_dict")
        .map_err(|e| e.to_string())?;
    d.set(&key, &value).map_err(|e| e.to_string())
}

#[test]
fn server_in_a_child_process_two_writers() {
    init_test!("add_data" => add_data);
    let m = Manager::builder().spawn().unwrap();
    assert!(m.child().is_some());
    let d = m.dict::<String, i32>("process_dict").unwrap();
    let a = Process::new("add_data", (m.endpoint(), "Darr_en1", 22))
        .start()
        .unwrap();
    let b = Process::new("add_data", (m.endpoint(), "Darr_en2", 44))
        .start()
        .unwrap();
    assert!(a.join().unwrap().success());
    assert!(b.join().unwrap().success());
    let mut all = d.snapshot().unwrap();
    all.sort();
    assert_eq!(
        all,
        vec![("Darr_en1".to_string(), 22), ("Darr_en2".to_string(), 44)]
    );
    let endpoint = m.endpoint();
    drop(m);
    // The guard shut the server process down (and joined it).
    assert!(endpoint.connect().is_err());
}

/// `spawn` needs nothing registered by the user: the crate registers its server's entry point
/// at link time, and the test's bare `init_test!()` is where the child branches off into it.
#[test]
fn a_spawned_server_needs_no_registration() {
    init_test!();
    let m = Manager::builder().spawn().unwrap();
    let child = m.child().expect("the server runs in a child process");
    assert_ne!(child.pid(), std::process::id());
    assert_eq!(child.entry(), "conveyor-manager-server");
    let counter = m.value::<i64>("counter", &0).unwrap();
    counter.set(&41).unwrap();
    let again = m.connect().unwrap().value::<i64>("counter", &0).unwrap();
    assert_eq!(again.get().unwrap(), 41);
    let endpoint = m.endpoint();
    drop(m);
    assert!(
        endpoint.connect().is_err(),
        "the guard shut the server process down"
    );
}

/// Seed 001 as Python writes it: the proxy itself travels to the child.
fn add_with_proxy(
    (p_dict, key, value): (conveyor_manager::DictProxy<String, i32>, String, i32),
) -> Result<(), String> {
    p_dict.set(&key, &value).map_err(|e| e.to_string())
}

#[test]
fn proxies_travel_to_child_processes() {
    init_test!("add_with_proxy" => add_with_proxy);
    let m = Manager::start().unwrap();
    let d = m.dict::<String, i32>("d").unwrap();
    let children: Vec<_> = [("a", 1), ("b", 2)]
        .into_iter()
        .map(|(k, v)| {
            Process::new("add_with_proxy", (d.clone(), k, v))
                .start()
                .unwrap()
        })
        .collect();
    for c in children {
        let status = c.join().unwrap();
        assert!(status.success(), "{status}");
    }
    let mut all = d.snapshot().unwrap();
    all.sort();
    assert_eq!(all, vec![("a".to_string(), 1), ("b".to_string(), 2)]);
}

/// One process of the load test: `threads` clients, each doing `n` atomic increments.
fn incrementer((endpoint, threads, n): (Endpoint, u32, u32)) -> Result<(), String> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let endpoint = endpoint.clone();
            thread::spawn(move || -> Result<(), String> {
                let c = endpoint.connect().map_err(|e| e.to_string())?;
                let counter = c.value("counter", &0u64).map_err(|e| e.to_string())?;
                for _ in 0..n {
                    counter.fetch_add(1).map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| "a client thread panicked".to_string())??;
    }
    Ok(())
}

#[test]
fn load_64_clients_in_4_processes_end_exact() {
    init_test!("incrementer" => incrementer);
    // A full run by hand: 10 000 increments per client (640 000 in all); fewer in CI.
    let n: u32 = if std::env::var_os("CI").is_some() {
        300
    } else {
        10_000
    };
    let m = Manager::start().unwrap();
    let counter = m.value("counter", &0u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Process::new("incrementer", (m.endpoint(), 16u32, n))
                .start()
                .unwrap()
        })
        .collect();
    for c in children {
        let status = c.join().unwrap();
        assert!(status.success(), "{status}");
    }
    assert_eq!(counter.get().unwrap(), 64 * u64::from(n));
}

/// Takes the lock, says so, and waits to be killed.
fn hold_lock(endpoint: Endpoint) -> Result<(), String> {
    let c = endpoint.connect().map_err(|e| e.to_string())?;
    let lock = c.lock("l").map_err(|e| e.to_string())?;
    let held = c.event("held").map_err(|e| e.to_string())?;
    let never = c.event("never").map_err(|e| e.to_string())?;
    let _guard = lock.acquire().map_err(|e| e.to_string())?;
    held.set().map_err(|e| e.to_string())?;
    never.wait().map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn killed_process_holding_a_lock_has_it_released() {
    init_test!("hold_lock" => hold_lock);
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let held = m.event("held").unwrap();
    let child = Process::new("hold_lock", m.endpoint()).start().unwrap();
    assert!(held.wait_timeout(PATIENCE).unwrap());
    assert!(lock.try_acquire().unwrap().is_none());
    child.kill().unwrap();
    child.join().unwrap();
    let g = lock.acquire_timeout(PATIENCE).unwrap();
    assert!(g.is_some(), "the dead holder's lock was not released");
    // and everyone else is still served
    m.ping().unwrap();
}
