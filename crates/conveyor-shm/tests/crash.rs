//! The SIGKILL crash test: producer and consumer processes are killed at random instants while
//! they work on one queue, and replaced. Then every invariant is checked:
//!
//! - survivors go on: the queue's lock can be taken again after every kill (a lock the dead
//!   left held would block for good; live peers hold it only briefly, but on a loaded machine
//!   getting it past them takes more than a second now and then, so the limit is generous),
//!   and after `close` every surviving process drains and exits cleanly;
//! - no torn message: each message carries a checksum that consumers verify (a mismatch makes
//!   the consumer exit with code 42, which fails the test);
//! - every message whose `put` returned `Ok` (producers record an acknowledgement in a file
//!   right after) is delivered exactly once, except at most one per killed consumer (a get
//!   killed after taking its message loses it, as documented);
//! - no message is delivered twice, and each consumer sees each producer's messages in order;
//! - the segment and its out-of-line files are gone once the last handle is dropped.
//!
//! `CONVEYOR_CRASH_KILLS` sets the number of kills (default 200; 20 when `CI` is set).

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conveyor_core::Channel;
use conveyor_process::{init_test, Child, ExitStatus, Process};
use conveyor_shm::ShmQueue;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How long the queue's lock may stay out of reach after a kill before the test fails: a lock
/// the dead left held never comes back, so this only has to be long enough for the live
/// workers contending for it on a loaded machine.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

#[derive(Serialize, Deserialize)]
struct Msg {
    producer: u32,
    seq: u64,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    sum: u64,
}

fn checksum(producer: u32, seq: u64, payload: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in producer
        .to_le_bytes()
        .iter()
        .chain(seq.to_le_bytes().iter())
        .chain(payload)
    {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn crash_producer((q, id, dir): (ShmQueue<Msg>, u32, String)) -> i32 {
    let mut ack = OpenOptions::new()
        .append(true)
        .create(true)
        .open(Path::new(&dir).join(format!("ack-{id}")))
        .unwrap();
    for seq in 0u64.. {
        // mostly small messages, now and then one that travels out of line
        let len = if seq % 101 == 50 {
            40_000
        } else {
            (seq * 7 % 300) as usize
        };
        let payload: Vec<u8> = (0..len).map(|i| (i as u64 ^ seq) as u8).collect();
        let sum = checksum(id, seq, &payload);
        match q.put(Msg {
            producer: id,
            seq,
            payload,
            sum,
        }) {
            Ok(()) => ack.write_all(&seq.to_le_bytes()).unwrap(),
            Err(e) if e.is_closed() => return 0,
            Err(e) => {
                eprintln!("producer {id}: put failed: {e}");
                return 2;
            }
        }
    }
    0
}

fn crash_consumer((q, id, dir): (ShmQueue<Msg>, u32, String)) -> i32 {
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(Path::new(&dir).join(format!("log-{id}")))
        .unwrap();
    loop {
        match q.get() {
            Ok(m) => {
                if checksum(m.producer, m.seq, &m.payload) != m.sum {
                    eprintln!("consumer {id}: torn message {}/{}", m.producer, m.seq);
                    return 42;
                }
                let mut rec = [0u8; 12];
                rec[..4].copy_from_slice(&m.producer.to_le_bytes());
                rec[4..].copy_from_slice(&m.seq.to_le_bytes());
                log.write_all(&rec).unwrap();
            }
            Err(e) if e.is_closed() => return 0,
            Err(e) => {
                eprintln!("consumer {id}: get failed: {e}");
                return 43;
            }
        }
    }
}

struct Worker {
    id: u32,
    child: Child,
}

fn start(entry: &str, q: &ShmQueue<Msg>, id: u32, dir: &Path) -> Worker {
    let child = Process::new(entry, (q, id, dir.to_string_lossy().into_owned()))
        .start()
        .unwrap();
    Worker { id, child }
}

fn read_records(path: &Path, size: usize) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_default();
    // a record cut by a kill mid-write would be incomplete: ignore it
    bytes.chunks_exact(size).map(|c| c.to_vec()).collect()
}

#[test]
fn sigkill_producers_and_consumers_at_random() {
    init_test!(crash_producer, crash_consumer);
    let kills: u32 = std::env::var("CONVEYOR_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var_os("CI").is_some() {
            20
        } else {
            200
        });
    let dir: PathBuf =
        std::env::temp_dir().join(format!("conveyor-shm-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let q: ShmQueue<Msg> = ShmQueue::builder().ring_bytes(64 * 1024).create().unwrap();
    let name = q.name().to_string();
    let mut next_id = 0u32;
    let mut producers: Vec<Worker> = Vec::new();
    let mut consumers: Vec<Worker> = Vec::new();
    for _ in 0..3 {
        producers.push(start("crash_producer", &q, next_id, &dir));
        next_id += 1;
        consumers.push(start("crash_consumer", &q, next_id, &dir));
        next_id += 1;
    }

    let mut rng = rand::thread_rng();
    let (mut producer_kills, mut consumer_kills) = (0u32, 0u32);
    let mut worst_recovery = Duration::ZERO;
    for _ in 0..kills {
        // let the victims run for a random while: the instant of the kill is the experiment
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..4000)));
        let kill_producer = rng.gen_bool(0.5);
        let pool = if kill_producer {
            &mut producers
        } else {
            &mut consumers
        };
        let victim = pool.swap_remove(rng.gen_range(0..pool.len()));
        victim.child.kill().unwrap();
        let status = victim.child.join().unwrap();
        assert_eq!(
            status,
            ExitStatus::Signaled(libc_sigkill()),
            "worker {} ended on its own before the kill",
            victim.id
        );
        // survivors go on: the lock the victim may have held can be taken again (on another
        // thread, so that a lock that stays taken fails the test instead of hanging it)
        let t0 = Instant::now();
        let (taken_tx, taken_rx) = mpsc::channel();
        let probe = q.clone();
        let prober = std::thread::spawn(move || {
            probe.__hold_lock_for_tests(|| ());
            let _ = taken_tx.send(());
        });
        if taken_rx.recv_timeout(RECOVERY_LIMIT).is_err() {
            panic!(
                "the queue's lock was still out of reach {RECOVERY_LIMIT:?} after worker {} \
                 was killed",
                victim.id
            );
        }
        prober.join().unwrap();
        worst_recovery = worst_recovery.max(t0.elapsed());
        let entry = if kill_producer {
            producer_kills += 1;
            "crash_producer"
        } else {
            consumer_kills += 1;
            "crash_consumer"
        };
        pool.push(start(entry, &q, next_id, &dir));
        next_id += 1;
    }
    q.shutdown(false).unwrap();
    let t0 = Instant::now();
    for w in producers.iter().chain(consumers.iter()) {
        let status = w.child.join_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(
            status,
            Some(ExitStatus::Exited(0)),
            "worker {} did not finish cleanly",
            w.id
        );
    }
    let drain = t0.elapsed();

    // exactly once, in order per producer per consumer
    let mut delivered: HashSet<(u32, u64)> = HashSet::new();
    let mut total = 0usize;
    for id in 0..next_id {
        let mut last: HashMap<u32, u64> = HashMap::new();
        for r in read_records(&dir.join(format!("log-{id}")), 12) {
            let p = u32::from_le_bytes(r[..4].try_into().unwrap());
            let s = u64::from_le_bytes(r[4..].try_into().unwrap());
            if let Some(&prev) = last.get(&p) {
                assert!(s > prev, "consumer {id}: producer {p}'s {s} after {prev}");
            }
            last.insert(p, s);
            assert!(delivered.insert((p, s)), "message {p}/{s} delivered twice");
            total += 1;
        }
    }
    let mut acked = 0usize;
    let mut missing = Vec::new();
    for id in 0..next_id {
        for r in read_records(&dir.join(format!("ack-{id}")), 8) {
            let s = u64::from_le_bytes(r[..].try_into().unwrap());
            acked += 1;
            if !delivered.contains(&(id, s)) {
                missing.push((id, s));
            }
        }
    }
    eprintln!(
        "crash test: {kills} kills ({producer_kills} producers, {consumer_kills} consumers), \
         {acked} acknowledged puts, {total} deliveries, {} lost to killed gets, \
         {} repairs of the queue after a death under its lock, longest wait for the lock after a kill \
         {worst_recovery:?}, drain after close {drain:?}",
        missing.len(),
        q.recoveries()
    );
    assert!(acked > 0 && total > 0, "nothing went through");
    assert!(
        missing.len() <= consumer_kills as usize,
        "{} acknowledged messages never delivered, more than the {consumer_kills} killed \
         consumers may lose: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    drop(q);
    let seg = conveyor_shm::shm_dir().join(format!("{}{name}", conveyor_shm::FILE_PREFIX));
    assert!(!seg.exists(), "segment left behind");
    let prefix = format!("{}{name}.", conveyor_shm::FILE_PREFIX);
    let leftovers = std::fs::read_dir(conveyor_shm::shm_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count();
    assert_eq!(leftovers, 0, "out-of-line files left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

fn libc_sigkill() -> i32 {
    9
}
