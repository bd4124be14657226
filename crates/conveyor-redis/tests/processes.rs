//! Real child processes (conveyor-process) sharing a queue through nothing but its URL and
//! name: several producers that each close their handle, and a consumer killed mid-item whose
//! item another consumer then gets.

mod common;

use std::time::Duration;

use conveyor_process::{init_test, Process};
use conveyor_redis::{Builder, Channel, Joinable, JoinableRedisQueue, RedisQueue};

const LONG: Duration = Duration::from_secs(30);
const VISIBILITY: Duration = Duration::from_millis(300);

fn produce((url, name, who, n): (String, String, u32, u32)) {
    let q: JoinableRedisQueue<(u32, u32)> = JoinableRedisQueue::open(&url, &name).unwrap();
    for i in 0..n {
        q.put((who, i)).unwrap();
    }
    // Python's idiom: each producer closes its own handle when done; the others go on
    q.close().unwrap();
}

/// Takes one item, reports that it holds it, then works on it forever (until killed).
fn stuck_consumer((url, name, notes): (String, String, String)) {
    let q = Builder::new(&url, &name)
        .visibility_timeout(VISIBILITY)
        .open_joinable::<String>()
        .unwrap();
    let item = q.get().unwrap();
    let notes: RedisQueue<String> = RedisQueue::open(&url, &notes).unwrap();
    notes.put(format!("holding {item}")).unwrap();
    loop {
        std::thread::park();
    }
}

/// Puts one item into a self-shutting queue, reports it, then hangs (until killed).
fn doomed_producer((url, name, notes): (String, String, String)) {
    let q = Builder::new(&url, &name)
        .shutdown_when_producers_done()
        .producer_lease(Duration::from_millis(300))
        .open::<u32>()
        .unwrap();
    q.put(7).unwrap();
    let notes: RedisQueue<String> = RedisQueue::open(&url, &notes).unwrap();
    notes.put("put".into()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_killed_producer_counts_as_gone_once_its_lease_runs_out() {
    init_test!(produce, stuck_consumer, doomed_producer);
    with_server!("killed_producer", |url, name| {
        let notes_name = format!("{name}-notes");
        let q = Builder::new(&url, &name)
            .shutdown_when_producers_done()
            .producer_lease(Duration::from_millis(300))
            .poll_interval(Duration::from_millis(20))
            .open::<u32>()
            .unwrap();
        let notes: RedisQueue<String> = RedisQueue::open(&url, &notes_name).unwrap();
        let child = Process::new("doomed_producer", (url.clone(), name.clone(), notes_name))
            .start()
            .unwrap();
        assert_eq!(notes.get_timeout(LONG).unwrap(), "put");
        assert_eq!(q.get_timeout(LONG).unwrap(), 7);
        child.kill().unwrap();
        child
            .join_timeout(LONG)
            .unwrap()
            .expect("killed child is reaped");
        assert!(q.get_timeout(LONG).unwrap_err().is_closed());
        q.destroy().unwrap();
        notes.destroy().unwrap();
    });
}

#[test]
fn producers_in_processes_each_close_and_everything_arrives() {
    init_test!(produce, stuck_consumer, doomed_producer);
    with_server!("producer_processes", |url, name| {
        let q: JoinableRedisQueue<(u32, u32)> = JoinableRedisQueue::open(&url, &name).unwrap();
        let children: Vec<_> = (0..2u32)
            .map(|who| {
                Process::new("produce", (url.clone(), name.clone(), who, 100u32))
                    .start()
                    .unwrap()
            })
            .collect();
        let mut got = Vec::new();
        for _ in 0..200 {
            got.push(q.get_timeout(LONG).unwrap());
            q.task_done().unwrap();
        }
        for child in children {
            let status = child.join_timeout(LONG).unwrap().expect("producer hangs");
            assert!(status.success(), "{status}");
        }
        got.sort_unstable();
        let want: Vec<(u32, u32)> = (0..2).flat_map(|w| (0..100).map(move |i| (w, i))).collect();
        assert_eq!(got, want);
        assert!(q.join_timeout(LONG).unwrap());
        q.destroy().unwrap();
    });
}

#[test]
fn an_item_held_by_a_killed_consumer_goes_to_another() {
    init_test!(produce, stuck_consumer, doomed_producer);
    with_server!("killed_consumer", |url, name| {
        let notes_name = format!("{name}-notes");
        let q = Builder::new(&url, &name)
            .visibility_timeout(VISIBILITY)
            .poll_interval(Duration::from_millis(20))
            .open_joinable::<String>()
            .unwrap();
        let notes: RedisQueue<String> = RedisQueue::open(&url, &notes_name).unwrap();
        q.put("hot dog 0".into()).unwrap();
        let child = Process::new("stuck_consumer", (url.clone(), name.clone(), notes_name))
            .start()
            .unwrap();
        assert_eq!(notes.get_timeout(LONG).unwrap(), "holding hot dog 0");
        child.kill().unwrap();
        child
            .join_timeout(LONG)
            .unwrap()
            .expect("killed child is reaped");
        assert_eq!(q.get_timeout(LONG).unwrap(), "hot dog 0");
        q.task_done().unwrap();
        assert!(q.join_timeout(LONG).unwrap());
        q.destroy().unwrap();
        notes.destroy().unwrap();
    });
}
