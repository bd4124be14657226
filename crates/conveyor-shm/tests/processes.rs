//! ShmQueue, JoinableShmQueue and the locks across real processes (children started with
//! conveyor-process, which re-executes this test binary).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conveyor_core::{Channel, Joinable};
use conveyor_process::{init_test, Process};
use conveyor_shm::{JoinableShmQueue, Lock, ShmQueue};

fn quick() -> bool {
    std::env::var_os("CI").is_some()
}

fn produce((q, id, n): (ShmQueue<(u32, u32)>, u32, u32)) {
    for i in 0..n {
        q.put((id, i)).unwrap();
    }
}

type Items = ShmQueue<(u32, u32)>;
type Results = ShmQueue<Vec<(u32, u32)>>;

fn consume((q, results): (Items, Results)) {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(v) => got.push(v),
            Err(e) if e.is_closed() => break,
            Err(e) => panic!("get failed: {e}"),
        }
    }
    results.put(got).unwrap();
}

#[test]
fn four_producer_and_four_consumer_processes() {
    init_test!(produce, consume);
    let per: u32 = if quick() { 5_000 } else { 50_000 };
    let q: ShmQueue<(u32, u32)> = ShmQueue::builder().ring_bytes(16 * 1024).create().unwrap();
    let results: ShmQueue<Vec<(u32, u32)>> = ShmQueue::new().unwrap();
    let consumers: Vec<_> = (0..4)
        .map(|_| Process::new("consume", (&q, &results)).start().unwrap())
        .collect();
    let producers: Vec<_> = (0..4u32)
        .map(|id| Process::new("produce", (&q, id, per)).start().unwrap())
        .collect();
    for p in producers {
        assert!(p.join().unwrap().success());
    }
    q.shutdown(false).unwrap();
    for c in consumers {
        assert!(c.join().unwrap().success());
    }
    let mut all = Vec::new();
    for _ in 0..4 {
        let got = results.get_timeout(Duration::from_secs(30)).unwrap();
        let mut last: HashMap<u32, u32> = HashMap::new();
        for &(p, i) in &got {
            if let Some(&prev) = last.get(&p) {
                assert!(i > prev, "producer {p}: {i} arrived after {prev}");
            }
            last.insert(p, i);
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<_> = (0..4).flat_map(|p| (0..per).map(move |i| (p, i))).collect();
    assert_eq!(all.len(), expected.len(), "lost or duplicated items");
    assert!(all == expected, "the items delivered are not the items put");
}

fn blocked_getter((q, ready): (ShmQueue<u32>, ShmQueue<()>)) -> i32 {
    ready.put(()).unwrap();
    match q.get() {
        Err(e) if e.is_closed() => 0,
        other => {
            eprintln!("expected Closed, got {other:?}");
            1
        }
    }
}

#[test]
fn shutdown_wakes_getters_in_other_processes() {
    init_test!(blocked_getter);
    let q: ShmQueue<u32> = ShmQueue::new().unwrap();
    let ready: ShmQueue<()> = ShmQueue::new().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            Process::new("blocked_getter", (&q, &ready))
                .start()
                .unwrap()
        })
        .collect();
    for _ in 0..3 {
        ready.get_timeout(Duration::from_secs(30)).unwrap();
    }
    q.shutdown(false).unwrap();
    for c in children {
        let status = c.join_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(status.map(|s| s.code()), Some(0));
    }
}

fn hold_queue_lock((q, ready): (ShmQueue<u32>, ShmQueue<()>)) {
    q.__hold_lock_for_tests(|| {
        ready.put(()).unwrap();
        loop {
            std::thread::park();
        }
    });
}

/// A queue holding the item 1, and a child process that holds both of its mutexes (and
/// parks for good) by the time this returns.
fn queue_held_by_a_child() -> (ShmQueue<u32>, conveyor_process::Child) {
    let q: ShmQueue<u32> = ShmQueue::new().unwrap();
    let ready: ShmQueue<()> = ShmQueue::new().unwrap();
    q.put(1).unwrap();
    let child = Process::new("hold_queue_lock", (&q, &ready))
        .start()
        .unwrap();
    ready.get_timeout(Duration::from_secs(30)).unwrap();
    (q, child)
}

#[test]
fn a_process_killed_holding_the_queue_lock_does_not_block_the_others() {
    init_test!(hold_queue_lock);
    let (q, child) = queue_held_by_a_child();
    // the child holds the queue's lock and never lets go; kill it there
    child.kill().unwrap();
    child.join().unwrap();
    assert_eq!(
        q.recoveries(),
        0,
        "nobody has taken the dead child's locks yet"
    );
    // The calls that never wait for a mutex go through at once: the dead holder's mutexes
    // are recovered on the first try, not after a wait (no clock is needed to tell).
    assert_eq!(q.try_get().unwrap(), 1);
    q.try_put(2).unwrap();
    assert_eq!(
        q.recoveries(),
        2,
        "the get and the put mutex, each recovered once"
    );
    // And the blocking calls go on as before.
    q.put(3).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
}

#[test]
fn puts_and_gets_with_a_deadline_give_up_on_a_lock_held_by_a_live_peer() {
    init_test!(hold_queue_lock);
    let (q, child) = queue_held_by_a_child();
    // The child holds both of the queue's mutexes and stays alive: every call with a
    // deadline must come back by itself, with the item, instead of waiting for the lock.
    let t0 = Instant::now();
    let e = q.try_put(7).unwrap_err();
    assert!(e.is_full(), "{e}");
    // It gives up by itself (after a bounded wait for the mutex), far sooner than this.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(e.into_inner(), 7);
    let t0 = Instant::now();
    let e = q.put_timeout(8, Duration::from_millis(200)).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert!(q.try_get().unwrap_err().is_empty());
    let e = q.get_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    // Once the holder is gone the queue goes on, with nothing lost or added.
    child.kill().unwrap();
    child.join().unwrap();
    q.put_timeout(2, Duration::from_secs(5)).unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 1);
    assert_eq!(q.get_timeout(Duration::from_secs(5)).unwrap(), 2);
    assert!(q.try_get().unwrap_err().is_empty());
}

fn hotdog_maker((q, name): (JoinableShmQueue<String>, String)) {
    for i in 0..5 {
        q.put(format!("{name}'s hot dog {i}")).unwrap();
    }
}

fn hotdog_eater(q: JoinableShmQueue<String>) {
    loop {
        match q.get() {
            Ok(_) => q.task_done().unwrap(),
            Err(e) if e.is_closed() => return,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn joinable_across_processes() {
    init_test!(hotdog_maker, hotdog_eater);
    let q: JoinableShmQueue<String> = JoinableShmQueue::new().unwrap();
    let eaters: Vec<_> = (0..2)
        .map(|_| {
            Process::new("hotdog_eater", &q)
                .daemon(true)
                .start()
                .unwrap()
        })
        .collect();
    let makers: Vec<_> = ["jerry", "monkey", "owen"]
        .iter()
        .map(|n| Process::new("hotdog_maker", (&q, *n)).start().unwrap())
        .collect();
    for m in makers {
        assert!(m.join().unwrap().success());
    }
    assert!(
        q.join_timeout(Duration::from_secs(30)),
        "eaters did not finish"
    );
    assert_eq!(q.unfinished(), 0);
    q.shutdown(false).unwrap();
    for e in eaters {
        assert!(e.join().unwrap().success());
    }
}

/// A counter the test processes share: an `i64` in a small file, read and written back by
/// separate calls. An increment is a read, a yield to the scheduler and a write, so two
/// processes incrementing at once lose updates unless a lock makes each increment whole.
/// The file is removed when the parent's handle is dropped.
struct Counter {
    path: std::path::PathBuf,
    file: std::fs::File,
    owner: bool,
}

impl Counter {
    /// Creates the counter at 0, under a name of this process and `test`.
    fn create(test: &str) -> Counter {
        let path = std::env::temp_dir().join(format!(
            "conveyor-shm-test-{}-{test}-counter",
            std::process::id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let c = Counter {
            path,
            file,
            owner: true,
        };
        c.write(0);
        c
    }

    /// Opens the counter a parent created (in a child).
    fn open(path: std::path::PathBuf) -> Counter {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        Counter {
            path,
            file,
            owner: false,
        }
    }

    fn read(&self) -> i64 {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, 0).unwrap();
        i64::from_le_bytes(b)
    }

    fn write(&self, v: i64) {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&v.to_le_bytes(), 0).unwrap();
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Children counting at once: each says it is ready and waits for the go, so that their loops
/// overlap instead of the first finishing before the last has started.
type StartLine = (ShmQueue<()>, ShmQueue<()>);

fn wait_at_start((ready, go): &StartLine) {
    ready.put(()).unwrap();
    go.get_timeout(Duration::from_secs(60)).unwrap();
}

/// Starts `children` processes running `entry` with `(args, start line)`, lets them go
/// together, and waits for them to end.
fn count_in_processes<A: serde::Serialize>(entry: &str, children: usize, args: A) {
    let start: StartLine = (ShmQueue::new().unwrap(), ShmQueue::new().unwrap());
    let procs: Vec<_> = (0..children)
        .map(|_| Process::new(entry, (&args, &start)).start().unwrap())
        .collect();
    for _ in 0..children {
        start.0.get_timeout(Duration::from_secs(60)).unwrap();
    }
    for _ in 0..children {
        start.1.put(()).unwrap();
    }
    for p in procs {
        let status = p.join().unwrap();
        assert!(status.success(), "a counting child {status}");
    }
}

fn count_with_lock(((lock, path, n), start): ((Lock, std::path::PathBuf, u32), StartLine)) {
    let counter = Counter::open(path);
    wait_at_start(&start);
    for _ in 0..n {
        let _g = lock.acquire().unwrap();
        let v = counter.read();
        std::thread::yield_now(); // let another process in between the read and the write
        counter.write(v + 1);
    }
}

#[test]
fn lock_serialises_processes() {
    init_test!(count_with_lock);
    let lock = Lock::new().unwrap();
    let counter = Counter::create("lock");
    let children = 4;
    let n: u32 = if quick() { 500 } else { 5000 };
    count_in_processes("count_with_lock", children, (&lock, &counter.path, n));
    assert_eq!(
        counter.read(),
        children as i64 * n as i64,
        "increments were lost"
    );
}

fn die_holding_lock((lock, ready): (Lock, ShmQueue<()>)) {
    let _g = lock.acquire().unwrap();
    ready.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_lock_whose_holder_died_is_recovered_and_the_next_owner_told() {
    init_test!(die_holding_lock);
    let lock = Lock::new().unwrap();
    let ready: ShmQueue<()> = ShmQueue::new().unwrap();
    let child = Process::new("die_holding_lock", (&lock, &ready))
        .start()
        .unwrap();
    ready.get_timeout(Duration::from_secs(30)).unwrap();
    assert!(lock.try_acquire().unwrap().is_none());
    child.kill().unwrap();
    child.join().unwrap();
    let g = lock
        .acquire_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap();
    assert!(g.previous_owner_died());
    drop(g);
    assert!(!lock.acquire().unwrap().previous_owner_died());
    assert_eq!(lock.recoveries(), 1);
}

fn create_and_die((name, ready): (String, ShmQueue<()>)) {
    let q: ShmQueue<u32> = ShmQueue::create(&name).unwrap();
    q.put(1).unwrap();
    ready.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn segments_of_killed_processes_are_listed_as_leaked_and_removed() {
    init_test!(create_and_die);
    let name = format!("leak-{}", std::process::id());
    let ready: ShmQueue<()> = ShmQueue::new().unwrap();
    let child = Process::new("create_and_die", (&name, &ready))
        .start()
        .unwrap();
    ready.get_timeout(Duration::from_secs(30)).unwrap();
    let info = conveyor_shm::list_segments()
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .expect("the child's segment is listed");
    assert_eq!(info.kind, conveyor_shm::SegmentKind::Queue);
    assert!(!info.leaked, "its creator is alive");
    assert_eq!(info.creator_pid, Some(child.pid()));
    child.kill().unwrap();
    child.join().unwrap();
    let info = conveyor_shm::list_segments()
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .expect("still there after the kill");
    assert!(info.leaked, "no user is alive");
    // our own live queue is not leaked and is not removed
    let removed = conveyor_shm::remove_leaked().unwrap();
    assert!(removed.contains(&name));
    assert!(!removed.iter().any(|n| n == ready.name()));
    assert!(ShmQueue::<u32>::open(&name).is_err());
    assert!(ShmQueue::<()>::open(ready.name()).is_ok());
}

fn open_put_exit((q, v): (ShmQueue<u32>, u32)) {
    q.put(v).unwrap();
}

#[test]
fn the_last_handle_unlinks_even_if_the_creator_left_first() {
    init_test!(open_put_exit);
    let q: ShmQueue<u32> = ShmQueue::new().unwrap();
    let name = q.name().to_string();
    let other: ShmQueue<u32> = ShmQueue::open(&name).unwrap();
    let child = Process::new("open_put_exit", (&q, 5u32)).start().unwrap();
    assert!(child.join().unwrap().success());
    drop(q); // the creator's handle goes; another is still open
    assert_eq!(other.get().unwrap(), 5);
    let p = conveyor_shm::shm_dir().join(format!("{}{name}", conveyor_shm::FILE_PREFIX));
    assert!(p.exists());
    drop(other);
    assert!(!p.exists());
}

fn count_with_rlock(
    ((lock, path, n), start): ((conveyor_shm::RLock, std::path::PathBuf, u32), StartLine),
) {
    let counter = Counter::open(path);
    wait_at_start(&start);
    for _ in 0..n {
        let outer = lock.acquire().unwrap();
        let inner = lock.acquire().unwrap(); // re-entrant in the same thread
        assert!(!outer.previous_owner_died() && !inner.previous_owner_died());
        let v = counter.read();
        drop(inner); // the outer guard still holds the lock: no one may come in now
        std::thread::yield_now();
        counter.write(v + 1);
        drop(outer);
    }
}

#[test]
fn rlock_is_reentrant_and_serialises_processes() {
    init_test!(count_with_rlock);
    let lock = conveyor_shm::RLock::new().unwrap();
    let counter = Counter::create("rlock");
    let children = 4;
    let n: u32 = if quick() { 500 } else { 5000 };
    count_in_processes("count_with_rlock", children, (&lock, &counter.path, n));
    assert_eq!(
        counter.read(),
        children as i64 * n as i64,
        "increments were lost"
    );
    // the parent can take it too once the children are done
    assert!(!lock.try_acquire().unwrap().unwrap().previous_owner_died());
}

fn produce_and_close((q, id, n): (Items, u32, u32)) {
    for i in 0..n {
        q.put((id, i)).unwrap();
    }
    // Python's idiom: this process will put no more. Other producers go on.
    q.close();
}

/// Issue 12's idiom: two producer processes of 100 items each, each calling `close()` when it
/// is done. Every item arrives (before, the first `close` refused the other producer's puts),
/// and the queue stays open for the consumer.
#[test]
fn two_producer_processes_that_close_deliver_every_item() {
    init_test!(produce_and_close);
    let q: Items = ShmQueue::new().unwrap();
    let producers: Vec<_> = (0..2u32)
        .map(|id| {
            Process::new("produce_and_close", (&q, id, 100u32))
                .start()
                .unwrap()
        })
        .collect();
    let mut got: Vec<_> = (0..200)
        .map(|_| q.get_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    for p in producers {
        assert!(p.join().unwrap().success());
    }
    got.sort_unstable();
    let expected: Vec<_> = (0..2).flat_map(|p| (0..100).map(move |i| (p, i))).collect();
    assert_eq!(got, expected);
    assert!(!q.is_shutdown());
    assert!(q.try_get().unwrap_err().is_empty());
}

type Ready = ShmQueue<u32>;
type Go = ShmQueue<()>;

fn produce_from_the_start_line((q, ready, go, id, n): (Items, Ready, Go, u32, u32)) {
    // The first put makes this handle a producer; then wait until every producer has one.
    q.put((id, 0)).unwrap();
    ready.put(id).unwrap();
    go.get().unwrap();
    for i in 1..n {
        q.put((id, i)).unwrap();
    }
    q.close();
}

/// The same idiom on a queue built with `auto_shutdown`: the consumer's loop ends with
/// `Closed` after the 200th item, once both producers have closed. The producers wait at a
/// start line after their first put, since a producer counts from its first put (see
/// `ShmQueueBuilder::auto_shutdown`).
#[test]
fn auto_shutdown_ends_the_consumer_once_both_producer_processes_closed() {
    init_test!(produce_from_the_start_line);
    let q: Items = ShmQueue::builder().auto_shutdown().create().unwrap();
    let ready: Ready = ShmQueue::new().unwrap();
    let go: Go = ShmQueue::new().unwrap();
    let producers: Vec<_> = (0..2u32)
        .map(|id| {
            Process::new("produce_from_the_start_line", (&q, &ready, &go, id, 100u32))
                .start()
                .unwrap()
        })
        .collect();
    for _ in 0..2 {
        ready.get_timeout(Duration::from_secs(30)).unwrap();
    }
    for _ in 0..2 {
        go.put(()).unwrap();
    }
    let mut got = Vec::new();
    let end = loop {
        match q.get_timeout(Duration::from_secs(30)) {
            Ok(v) => got.push(v),
            Err(e) => break e,
        }
    };
    assert!(end.is_closed(), "the consumer's loop ended with {end}");
    assert_eq!(got.len(), 200);
    for p in producers {
        assert!(p.join().unwrap().success());
    }
    got.sort_unstable();
    let expected: Vec<_> = (0..2).flat_map(|p| (0..100).map(move |i| (p, i))).collect();
    assert_eq!(got, expected);
}

fn put_then_park((q, ready): (Items, Go)) {
    q.put((9, 0)).unwrap();
    ready.put(()).unwrap();
    loop {
        std::thread::park();
    }
}

/// A producer process killed (SIGKILL) with its handle open counts as gone: the consumer,
/// waiting on the empty queue, drains what it put and then gets `Closed`, even before the
/// killed child is waited for (a zombie is gone too).
#[test]
fn auto_shutdown_after_a_producer_process_is_killed() {
    init_test!(put_then_park);
    let q: Items = ShmQueue::builder().auto_shutdown().create().unwrap();
    let ready: Go = ShmQueue::new().unwrap();
    let child = Process::new("put_then_park", (&q, &ready)).start().unwrap();
    ready.get_timeout(Duration::from_secs(30)).unwrap();
    assert!(!q.is_shutdown());
    child.kill().unwrap();
    assert_eq!(q.get_timeout(Duration::from_secs(30)).unwrap(), (9, 0));
    let e = q.get_timeout(Duration::from_secs(30)).unwrap_err();
    assert!(e.is_closed(), "expected Closed, got {e}");
    child.join().unwrap();
}

fn join_then_report((q, ready): (JoinableShmQueue<u32>, Go)) -> i32 {
    ready.put(()).unwrap();
    // Items are left and nobody takes them: only shutdown(true) can release this join.
    if !q.join_timeout(Duration::from_secs(30)) {
        eprintln!("join was not released");
        return 1;
    }
    match q.try_get() {
        Err(e) if e.is_closed() => 0,
        other => {
            eprintln!("expected Closed, got {other:?}");
            2
        }
    }
}

/// `shutdown(true)` in one process discards what is left for every process: a `join` blocked
/// in a child returns (the discarded items count as done), and the child's gets fail with
/// `Closed` at once.
#[test]
fn shutdown_immediate_releases_a_join_in_another_process() {
    init_test!(join_then_report);
    let q: JoinableShmQueue<u32> = JoinableShmQueue::new().unwrap();
    let ready: Go = ShmQueue::new().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    let child = Process::new("join_then_report", (&q, &ready))
        .start()
        .unwrap();
    ready.get_timeout(Duration::from_secs(30)).unwrap();
    q.shutdown(true).unwrap();
    let status = child.join_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(status.map(|s| s.code()), Some(0));
    assert_eq!(q.unfinished(), 0);
}
