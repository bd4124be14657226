//! An item whose `Deserialize` fails or panics is consumed, and the queue goes on: the get
//! returns `GetError::Codec` or unwinds, the lock is free, the ring stays consistent, and
//! other threads and processes keep using the queue.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use conveyor_core::{Channel, GetError};
use conveyor_process::{init_test, Process};
use conveyor_shm::ShmQueue;
use serde::{Deserialize, Deserializer, Serialize};

/// Decodes fine except for two values: `PANIC` panics, `REFUSE` is a decode error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
struct Touchy(u32);

const PANIC: u32 = 13;
const REFUSE: u32 = 7;
/// Its decode SIGKILLs the decoding process (as a panic under `panic = "abort"` would end it),
/// while that process holds the get mutex.
const KILL: u32 = 4_000_000_000;

impl<'de> Deserialize<'de> for Touchy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v == PANIC {
            panic!("Touchy refuses to decode {v}");
        }
        if v == KILL {
            // SAFETY: kill and getpid have no memory-safety preconditions; the process ends.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
        if v == REFUSE {
            return Err(serde::de::Error::custom("Touchy will not be seven"));
        }
        Ok(Touchy(v))
    }
}

fn quiet_panics() {
    // The panics below are expected: keep the test output readable.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string();
        if !msg.contains("Touchy refuses") {
            eprintln!("{msg}");
        }
    }));
}

#[test]
fn a_failing_or_panicking_decode_consumes_the_record_and_the_queue_goes_on() {
    quiet_panics();
    let q: ShmQueue<Touchy> = ShmQueue::builder().ring_bytes(4096).create().unwrap();
    for v in [1, PANIC, 2, REFUSE, 3] {
        q.put(Touchy(v)).unwrap();
    }
    assert_eq!(q.get().unwrap(), Touchy(1));
    let panicked = catch_unwind(AssertUnwindSafe(|| q.get()));
    assert!(panicked.is_err(), "the decode should have panicked");
    assert_eq!(q.len(), 3, "the panicking record was not consumed");
    assert_eq!(q.get().unwrap(), Touchy(2));
    match q.get() {
        Err(GetError::Codec(e)) => assert!(e.to_string().contains("postcard"), "{e}"),
        other => panic!("expected a codec error, got {other:?}"),
    }
    assert_eq!(q.get().unwrap(), Touchy(3));
    assert!(q.try_get().unwrap_err().is_empty());
    // Both locks are free and the ring consistent: puts and gets (also a timed one) work.
    for v in 100..2000 {
        q.put(Touchy(v)).unwrap();
        assert_eq!(q.get_timeout(Duration::from_secs(10)).unwrap(), Touchy(v));
    }
    // Raw access agrees: nothing left behind.
    assert!(q.try_get_bytes().unwrap_err().is_empty());
}

#[test]
fn poisoned_items_among_threads() {
    quiet_panics();
    let per: u32 = if std::env::var_os("CI").is_some() {
        2_000
    } else {
        20_000
    };
    let q: ShmQueue<Touchy> = ShmQueue::builder().ring_bytes(1024).create().unwrap();
    let start = Arc::new(Barrier::new(4));
    // Producer p sends p * 1_000_000 + i, and every 10th item one of the two poison values.
    let producers: Vec<_> = (1..=2u32)
        .map(|p| {
            let q = q.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..per {
                    let v = match i % 10 {
                        3 => PANIC,
                        8 => REFUSE,
                        _ => p * 1_000_000 + i,
                    };
                    q.put(Touchy(v)).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let (mut got, mut panics, mut errors) = (Vec::new(), 0u32, 0u32);
                loop {
                    match catch_unwind(AssertUnwindSafe(|| q.get())) {
                        Err(_) => panics += 1,
                        Ok(Ok(v)) => got.push(v),
                        Ok(Err(GetError::Codec(_))) => errors += 1,
                        Ok(Err(e)) if e.is_closed() => break,
                        Ok(Err(e)) => panic!("unexpected error {e}"),
                    }
                }
                (got, panics, errors)
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.shutdown(false).unwrap();
    let (mut all, mut panics, mut errors) = (Vec::new(), 0, 0);
    for c in consumers {
        let (got, p, e) = c.join().unwrap();
        all.extend(got);
        panics += p;
        errors += e;
    }
    assert_eq!(
        panics,
        2 * per / 10,
        "every panicking item is consumed once"
    );
    assert_eq!(errors, 2 * per / 10, "every refused item is consumed once");
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "an item was delivered twice");
    let expected = 2 * (per - 2 * per / 10);
    assert_eq!(all.len() as u32, expected, "items were lost");
}

/// Takes one item: it panics while decoding, so this process dies of it.
fn poisoned_consumer(q: ShmQueue<Touchy>) -> i32 {
    quiet_panics();
    let _ = q.get();
    0
}

/// Takes `n` items and reports their sum.
fn healthy_consumer((q, n, sums): (ShmQueue<Touchy>, u32, ShmQueue<u64>)) {
    let mut sum = 0u64;
    for _ in 0..n {
        sum += q.get().unwrap().0 as u64;
    }
    sums.put(sum).unwrap();
}

#[test]
fn a_process_dying_of_a_decode_panic_leaves_the_queue_usable() {
    init_test!(poisoned_consumer, healthy_consumer);
    let q: ShmQueue<Touchy> = ShmQueue::builder().ring_bytes(4096).create().unwrap();
    let sums: ShmQueue<u64> = ShmQueue::new().unwrap();
    q.put(Touchy(PANIC)).unwrap();
    let child = Process::new("poisoned_consumer", &q).start().unwrap();
    let status = child
        .join_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("the poisoned consumer did not finish");
    assert!(!status.success(), "the decode panic should end the child");
    assert!(q.is_empty(), "the poisoned record stayed in the queue");
    assert_eq!(q.recoveries(), 0, "no lock was held when the child died");
    let n = 5_000u32;
    let healthy = Process::new("healthy_consumer", (&q, n, &sums))
        .start()
        .unwrap();
    // Values from 100 on: neither poison value.
    for v in 100..100 + n {
        q.put(Touchy(v)).unwrap();
    }
    assert_eq!(
        sums.get_timeout(Duration::from_secs(30)).unwrap(),
        (100..100 + n as u64).sum::<u64>()
    );
    assert!(healthy.join().unwrap().success());
}

/// Takes one item: its decode SIGKILLs this process mid-decode, under the get mutex.
fn killed_consumer(q: ShmQueue<Touchy>) -> i32 {
    let _ = q.get();
    0
}

#[test]
fn a_process_killed_mid_decode_loses_only_that_record_and_the_queue_recovers() {
    init_test!(killed_consumer, healthy_consumer);
    let q: ShmQueue<Touchy> = ShmQueue::builder().ring_bytes(4096).create().unwrap();
    let sums: ShmQueue<u64> = ShmQueue::new().unwrap();
    let n = 50u32;
    q.put(Touchy(KILL)).unwrap();
    for v in 100..100 + n {
        q.put(Touchy(v)).unwrap();
    }
    let child = Process::new("killed_consumer", &q).start().unwrap();
    let status = child
        .join_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("the killed consumer did not finish");
    assert!(!status.success(), "the decode should have killed the child");
    assert_eq!(
        q.recoveries(),
        0,
        "nobody has taken the dead child's lock yet"
    );
    // Another process takes the rest: it recovers the get mutex, the record being decoded
    // is skipped (the documented loss of the one message a killed get was taking), and
    // every later item arrives, in order and once.
    let healthy = Process::new("healthy_consumer", (&q, n, &sums))
        .start()
        .unwrap();
    assert_eq!(
        sums.get_timeout(Duration::from_secs(30)).unwrap(),
        (100..100 + n as u64).sum::<u64>()
    );
    let status = healthy
        .join_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("the healthy consumer did not finish");
    assert!(status.success());
    assert_eq!(
        q.recoveries(),
        1,
        "the dead child's get mutex was recovered once"
    );
    assert!(
        q.is_empty(),
        "the killed record or another stayed in the queue"
    );
    // This process gets on with the queue too.
    q.put(Touchy(1)).unwrap();
    assert_eq!(q.try_get().unwrap(), Touchy(1));
}
