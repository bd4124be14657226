//! Python's semantics across threads: every thread that calls through a proxy (the same one,
//! a clone, or another proxy of the same client) gets a connection of its own, so a call that
//! waits on one thread never stalls another, and locks belong to threads.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use conveyor_core::Channel;
use conveyor_manager::{BarrierProxy, LockProxy, Manager, ValueProxy};
use conveyor_process::{init_test, Process};

/// A generous bound for waits on another thread or process (the machine may be loaded).
const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until `ready` holds, asking the server again and again (each ask is a round trip,
/// so this waits on the server's state, not on a clock); panics after `PATIENCE`.
fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::yield_now();
    }
}

#[test]
fn a_call_waiting_on_one_thread_does_not_stall_another_threads_calls_on_the_same_proxies() {
    let m = Manager::start().unwrap();
    let q = m.queue::<String>("q", None).unwrap();
    let bar = m.barrier("b", 2).unwrap();
    let (tx, rx) = mpsc::channel();
    let (q2, bar2) = (q.clone(), bar.clone());
    let h = thread::spawn(move || {
        let passed = bar2.wait_timeout(PATIENCE).map_err(|e| e.to_string());
        let got = q2.get_timeout(PATIENCE).map_err(|e| e.to_string());
        tx.send((passed, got)).unwrap();
    });
    // Seen through another client: the thread is parked on the server, in the barrier.
    let observer = m.connect().unwrap();
    let seen: BarrierProxy = observer.open("b").unwrap();
    until("the thread waits in the barrier", || {
        seen.state().unwrap().waiting == 1
    });
    // This thread's calls on the same client and proxies go through meanwhile.
    q.put("hello".into()).unwrap();
    assert_eq!(q.qsize().unwrap(), 1);
    let state = seen.state().unwrap();
    assert_eq!((state.waiting, state.broken), (1, false), "{state:?}");
    // The same barrier proxy, from this thread, lets the other one through.
    assert!(bar.wait_timeout(PATIENCE).is_ok());
    let (passed, got) = rx.recv_timeout(PATIENCE).unwrap();
    assert!(passed.is_ok(), "{passed:?}");
    assert_eq!(got.unwrap(), "hello");
    h.join().unwrap();
}

#[test]
fn a_lock_held_by_one_thread_makes_another_wait() {
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let clone = lock.clone();
    let g = lock.acquire().unwrap();
    thread::scope(|s| {
        // Through the same proxy: not free, and no WouldDeadlock either.
        let tried = s.spawn(|| {
            lock.try_acquire()
                .map(|g| g.is_some())
                .map_err(|e| e.to_string())
        });
        assert_eq!(tried.join().unwrap(), Ok(false));
        // Through a clone: waits until this thread releases.
        let (tx, rx) = mpsc::channel();
        let waiter = s.spawn(move || {
            let got = clone.acquire_timeout(PATIENCE);
            let held = got.as_ref().map(|g| g.is_some()).map_err(|e| e.to_string());
            tx.send(held).unwrap();
            drop(got);
        });
        assert!(rx.try_recv().is_err(), "the lock was taken while held");
        drop(g);
        assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), Ok(true));
        waiter.join().unwrap();
    });
    assert!(!lock.is_locked().unwrap());
    // A guard releases through the connection that acquired it, wherever it is dropped.
    let g = lock.acquire().unwrap();
    thread::scope(|s| {
        s.spawn(move || g.release().unwrap()).join().unwrap();
    });
    assert!(!lock.is_locked().unwrap());
}

#[test]
fn an_rlock_nests_for_its_holder_only() {
    let m = Manager::start().unwrap();
    let r = m.rlock("r").unwrap();
    let outer = r.acquire().unwrap();
    let inner = r.try_acquire().unwrap().expect("the holder nests");
    assert_eq!(r.depth().unwrap(), 2);
    thread::scope(|s| {
        let other = s.spawn(|| {
            r.try_acquire()
                .map(|g| g.is_some())
                .map_err(|e| e.to_string())
        });
        assert_eq!(
            other.join().unwrap(),
            Ok(false),
            "another thread got a held RLock"
        );
    });
    drop(inner);
    drop(outer);
    thread::scope(|s| {
        let other = s.spawn(|| {
            let g = r.try_acquire().unwrap();
            g.is_some()
        });
        assert!(other.join().unwrap());
    });
    assert_eq!(r.depth().unwrap(), 0);
}

#[test]
fn a_threads_connection_closes_when_the_thread_ends() {
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    thread::scope(|s| {
        s.spawn(|| std::mem::forget(lock.acquire().unwrap()));
    });
    // The thread ended holding the lock: its connection closed and the server released it.
    let g = lock.acquire_timeout(PATIENCE).unwrap();
    assert!(g.is_some());
}

#[test]
fn two_clients_used_in_turn_on_one_thread_keep_their_own_connections() {
    let m = Manager::start().unwrap();
    let a = m.connect().unwrap();
    let b = a.connect_again().unwrap();
    let (la, lb) = (a.lock("l").unwrap(), b.lock("l").unwrap());
    let g = la.acquire().unwrap();
    // Each call switches the client this thread uses last: b's call goes on b's connection,
    // which does not hold the lock, and a's next call on a's, which does.
    assert!(lb.try_acquire().unwrap().is_none(), "b got a's lock");
    assert!(la.is_locked().unwrap());
    assert!(lb.try_acquire().unwrap().is_none(), "b got a's lock");
    drop(g);
    let g = lb
        .acquire_timeout(PATIENCE)
        .unwrap()
        .expect("free once a released it");
    drop(g);
    // A client dropped with a lock held closes its connection (the thread's memory of the
    // client it used last keeps nothing open), and the server releases the lock.
    std::mem::forget(la.acquire().unwrap());
    assert!(lb.try_acquire().unwrap().is_none());
    // The last call on this thread goes through a.
    assert!(la.is_locked().unwrap());
    drop(la);
    drop(a);
    let g = lb.acquire_timeout(PATIENCE).unwrap();
    assert!(g.is_some(), "the dropped client's lock was not released");
}

/// One process of the test below: `threads` threads share the proxies that travelled here
/// and add 1 to the value `n` times each with a read and a write under the lock (a lost
/// update without it).
fn locked_adder(
    (lock, value, threads, n): (LockProxy, ValueProxy<u64>, u32, u32),
) -> Result<(), String> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    for _ in 0..n {
                        let g = lock.acquire().map_err(|e| e.to_string())?;
                        let v = value.get().map_err(|e| e.to_string())?;
                        value.set(&(v + 1)).map_err(|e| e.to_string())?;
                        g.release().map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a thread panicked".to_string())?)
    })
}

#[test]
fn threads_of_several_processes_share_one_lock_proxy() {
    init_test!("locked_adder" => locked_adder);
    let n: u32 = if std::env::var_os("CI").is_some() {
        50
    } else {
        300
    };
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let value = m.value("v", &0u64).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Process::new("locked_adder", (lock.clone(), value.clone(), 3u32, n))
                .start()
                .unwrap()
        })
        .collect();
    for c in children {
        let status = c.join().unwrap();
        assert!(status.success(), "{status}");
    }
    assert_eq!(value.get().unwrap(), 2 * 3 * u64::from(n));
}

/// Notifies through `cond` (holding its lock each time) until `n` waiters were woken in all,
/// asking again while fewer wait; each ask is a round trip to the server.
fn notify_until_woken(cond: &conveyor_manager::ConditionProxy, n: u64, all: bool) {
    let mut woke = 0;
    until("enough threads wait on the condition", || {
        let g = cond.acquire().unwrap();
        woke += if all {
            g.notify_all().unwrap()
        } else {
            g.notify(n - woke).unwrap()
        };
        woke >= n
    });
    assert_eq!(woke, n);
}

#[test]
fn a_condition_wakes_as_many_waiters_as_notified_and_wait_releases_its_lock() {
    let m = Manager::start().unwrap();
    let cond = m.condition("c").unwrap();
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        for _ in 0..2 {
            let tx = tx.clone();
            let cond = &cond;
            s.spawn(move || {
                let mut g = cond.acquire().unwrap();
                let inner = cond.try_acquire().unwrap(); // nests: depth 2
                let nested = inner.is_some();
                let notified = g.wait_timeout(PATIENCE).map_err(|e| e.to_string());
                // The lock is held again, at the depth it had.
                let depth = cond.depth().unwrap();
                drop(inner);
                drop(g);
                tx.send((nested, notified, depth)).unwrap();
            });
        }
        // Waiting released the lock: this thread takes it while they wait.
        notify_until_woken(&cond, 1, false);
        let first = rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(first, (true, Ok(true), 2));
        assert!(rx.try_recv().is_err(), "a notify of one woke two");
        notify_until_woken(&cond, 1, true);
        let second = rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(second, (true, Ok(true), 2));
    });
    assert_eq!(cond.depth().unwrap(), 0);
}

#[test]
fn condition_wait_for_times_out_with_the_lock_held_and_ends_when_notified() {
    let m = Manager::start().unwrap();
    let cond = m.condition("c").unwrap();
    let flag = m.value("flag", &false).unwrap();
    let mut g = cond.acquire().unwrap();
    let asked = std::cell::Cell::new(0);
    let seen = g
        .wait_for(
            || {
                asked.set(asked.get() + 1);
                flag.get().unwrap()
            },
            Duration::from_millis(50),
        )
        .unwrap();
    assert!(!seen);
    assert!(
        asked.get() >= 2,
        "the predicate was asked {} times",
        asked.get()
    );
    assert_eq!(cond.depth().unwrap(), 1);
    // Another thread cannot take it meanwhile.
    thread::scope(|s| {
        s.spawn(|| {
            assert!(cond.try_acquire().unwrap().is_none());
        })
        .join()
        .unwrap();
    });
    drop(g);
    // A predicate set by another thread, which notifies.
    thread::scope(|s| {
        s.spawn(|| {
            notify_until_woken(&cond, 1, false);
        });
        let mut g = cond.acquire().unwrap();
        let first = g.wait_for(
            || {
                let now = flag.get().unwrap();
                flag.set(&true).unwrap();
                now
            },
            PATIENCE,
        );
        assert!(first.unwrap());
    });
}
