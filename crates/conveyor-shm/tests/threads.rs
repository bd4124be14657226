//! ShmQueue within one process: the Channel contract, with threads as producers and consumers.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use conveyor_core::{Channel, Joinable};
use conveyor_shm::{JoinableShmQueue, ShmError, ShmQueue};

fn small<T: serde::Serialize + serde::de::DeserializeOwned>(ring: usize) -> ShmQueue<T> {
    ShmQueue::builder().ring_bytes(ring).create().unwrap()
}

#[test]
fn fifo_put_get() {
    let q: ShmQueue<u64> = small(4096);
    for i in 0..100 {
        q.put(i).unwrap();
    }
    assert_eq!(q.len(), 100);
    for i in 0..100 {
        assert_eq!(q.get().unwrap(), i);
    }
    assert!(q.is_empty());
    assert!(q.try_get().unwrap_err().is_empty());
}

#[test]
fn wraps_around_many_times() {
    let q: ShmQueue<String> = small(512);
    for i in 0..10_000u32 {
        let s = "x".repeat((i % 37) as usize) + &i.to_string();
        q.put(s.clone()).unwrap();
        assert_eq!(q.get().unwrap(), s);
    }
}

#[test]
fn max_items_bounds_the_queue() {
    let q: ShmQueue<u8> = ShmQueue::builder()
        .max_items(3)
        .ring_bytes(4096)
        .create()
        .unwrap();
    assert_eq!(q.capacity(), Some(3));
    for i in 0..3 {
        q.try_put(i).unwrap();
    }
    assert!(q.is_full());
    let e = q.try_put(9).unwrap_err();
    assert!(e.is_full());
    assert_eq!(e.into_inner(), 9);
    let t0 = Instant::now();
    let e = q.put_timeout(9, Duration::from_millis(50)).unwrap_err();
    assert!(e.is_timeout());
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(q.get().unwrap(), 0);
    q.try_put(3).unwrap();
}

#[test]
fn full_by_bytes_then_room_again() {
    let q: ShmQueue<Vec<u8>> = small(1024);
    let mut n = 0;
    while q.try_put(vec![1; 100]).is_ok() {
        n += 1;
        assert!(n < 100, "the ring never filled");
    }
    assert!(n >= 5);
    q.get().unwrap();
    q.try_put(vec![2; 100]).unwrap();
}

#[test]
fn get_timeout_times_out() {
    let q: ShmQueue<u8> = small(4096);
    let t0 = Instant::now();
    assert!(q
        .get_timeout(Duration::from_millis(30))
        .unwrap_err()
        .is_timeout());
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

#[test]
fn blocked_get_wakes_on_put() {
    let q: ShmQueue<u32> = small(4096).with_spin(Duration::ZERO);
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.get().unwrap());
    q.put(7).unwrap();
    assert_eq!(t.join().unwrap(), 7);
}

#[test]
fn blocked_put_wakes_on_get() {
    let q: ShmQueue<u32> = ShmQueue::builder()
        .max_items(1)
        .ring_bytes(4096)
        .spin(Duration::ZERO)
        .create()
        .unwrap();
    q.put(1).unwrap();
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.put(2));
    assert_eq!(q.get().unwrap(), 1);
    t.join().unwrap().unwrap();
    assert_eq!(q.get().unwrap(), 2);
}

#[test]
fn shutdown_wakes_blocked_getters_and_drains() {
    let q: ShmQueue<u32> = small(4096);
    let barrier = Arc::new(Barrier::new(3));
    let getters: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                q.get()
            })
        })
        .collect();
    barrier.wait();
    q.shutdown(false).unwrap();
    for g in getters {
        assert!(g.join().unwrap().unwrap_err().is_closed());
    }
    // items put before the shutdown are still delivered
    let q: ShmQueue<u32> = small(4096);
    q.put(1).unwrap();
    q.shutdown(false).unwrap();
    assert!(q.put(2).unwrap_err().is_closed());
    assert_eq!(q.get().unwrap(), 1);
    assert!(q.get().unwrap_err().is_closed());
    assert!(q.try_get().unwrap_err().is_closed());
}

#[test]
fn shutdown_wakes_blocked_putters() {
    let q: ShmQueue<u32> = ShmQueue::builder()
        .max_items(1)
        .ring_bytes(4096)
        .create()
        .unwrap();
    q.put(0).unwrap();
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.put(1));
    // the putter is blocked or about to be; the shutdown must release it either way
    q.shutdown(false).unwrap();
    let e = t.join().unwrap().unwrap_err();
    assert!(e.is_closed());
    assert_eq!(e.into_inner(), 1);
}

#[test]
fn mpmc_threads_no_loss_no_duplicate_per_producer_order() {
    let per = if std::env::var_os("CI").is_some() {
        2_000
    } else {
        20_000
    };
    let q: ShmQueue<(u32, u32)> = small(8192);
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..per {
                    q.put((p, i)).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = q.get() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.shutdown(false).unwrap();
    let mut all = Vec::new();
    for c in consumers {
        let got = c.join().unwrap();
        let mut last: HashMap<u32, u32> = HashMap::new();
        for &(p, i) in &got {
            if let Some(&prev) = last.get(&p) {
                assert!(i > prev, "producer {p}: {i} after {prev}");
            }
            last.insert(p, i);
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<_> = (0..4).flat_map(|p| (0..per).map(move |i| (p, i))).collect();
    assert_eq!(all, expected);
}

#[test]
fn bytes_roundtrip_and_out_of_line() {
    let q: ShmQueue<Vec<u8>> = small(4096);
    q.put_bytes(b"raw").unwrap();
    assert_eq!(q.get_bytes().unwrap(), b"raw");
    // larger than half the ring: out of line
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    q.put_bytes(&big).unwrap();
    q.put_bytes(b"after").unwrap();
    assert_eq!(q.get_bytes().unwrap(), big);
    assert_eq!(q.get_bytes().unwrap(), b"after");
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Blob(#[serde(with = "serde_bytes")] Vec<u8>);

#[test]
fn a_large_try_put_on_a_full_queue_is_refused_and_comes_back() {
    let q: ShmQueue<Blob> = ShmQueue::builder()
        .ring_bytes(4096)
        .max_items(1)
        .create()
        .unwrap();
    assert!(q.inline_max() < 10_000);
    q.put(Blob(vec![1])).unwrap();
    let e = q.try_put(Blob(vec![7; 10_000])).unwrap_err();
    assert!(e.is_full(), "{e}");
    assert_eq!(e.into_inner().0.len(), 10_000);
    assert_eq!(q.get().unwrap(), Blob(vec![1]));
    q.try_put(Blob(vec![7; 10_000])).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q.get().unwrap(), Blob(vec![7; 10_000]));
    assert!(q.try_get().unwrap_err().is_empty());
}

#[test]
fn one_mib_messages_through_a_default_queue() {
    let q: ShmQueue<Blob> = ShmQueue::new().unwrap();
    let q2 = q.clone();
    let n = 20;
    let t = std::thread::spawn(move || {
        for i in 0..n {
            q2.put(Blob(vec![i as u8; 1 << 20])).unwrap();
        }
    });
    for i in 0..n {
        let b = q.get().unwrap();
        assert_eq!(b.0.len(), 1 << 20);
        assert!(b.0.iter().all(|&x| x == i as u8));
    }
    t.join().unwrap();
}

#[test]
fn open_by_name_shares_the_queue() {
    let name = format!("t-open-{}", std::process::id());
    let a: ShmQueue<String> = ShmQueue::create(&name).unwrap();
    let b: ShmQueue<String> = ShmQueue::open(&name).unwrap();
    assert!(matches!(
        ShmQueue::<String>::create(&name),
        Err(ShmError::AlreadyExists(_))
    ));
    a.put("hi".into()).unwrap();
    assert_eq!(b.get().unwrap(), "hi");
}

#[test]
fn joinable_task_accounting() {
    let q: JoinableShmQueue<u32> = JoinableShmQueue::new().unwrap();
    q.join();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.unfinished(), 5);
    let q2 = q.clone();
    let worker = std::thread::spawn(move || {
        for _ in 0..5 {
            q2.get().unwrap();
            q2.task_done().unwrap();
        }
    });
    q.join();
    worker.join().unwrap();
    assert_eq!(q.unfinished(), 0);
    assert!(matches!(
        q.task_done(),
        Err(conveyor_core::TaskDoneError::TooManyCalls)
    ));
}

#[test]
fn unlink_removes_the_name_but_open_handles_keep_working() {
    let q: ShmQueue<u32> = ShmQueue::builder().ring_bytes(4096).create().unwrap();
    let name = q.name().to_string();
    q.unlink().unwrap();
    assert!(matches!(
        ShmQueue::<u32>::open(&name),
        Err(ShmError::NotFound(_))
    ));
    q.put(3).unwrap();
    assert_eq!(q.get().unwrap(), 3);
}

#[test]
fn put_ref_and_try_forms_of_raw_bytes() {
    let q: ShmQueue<String> = ShmQueue::builder()
        .max_items(1)
        .ring_bytes(4096)
        .create()
        .unwrap();
    let s = "kept by the caller".to_string();
    q.put_ref(&s).unwrap();
    assert!(q.try_put_ref(&s).unwrap_err().is_full());
    assert!(q
        .put_ref_timeout(&s, Duration::from_millis(10))
        .unwrap_err()
        .is_timeout());
    assert_eq!(q.get().unwrap(), s);
    assert!(q.try_get_bytes().unwrap_err().is_empty());
    assert!(q
        .get_bytes_timeout(Duration::from_millis(10))
        .unwrap_err()
        .is_timeout());
    q.try_put_bytes(b"\x02hi").unwrap();
    assert_eq!(q.get().unwrap(), "hi");
}

#[test]
fn close_is_per_handle() {
    let q: ShmQueue<u32> = small(4096);
    let producer = q.clone();
    let other_mapping: ShmQueue<u32> = ShmQueue::open(q.name()).unwrap();
    producer.put(1).unwrap();
    producer.close();
    producer.close(); // twice is a no-op
    assert!(producer.is_closed());
    assert!(!producer.is_shutdown());
    let e = producer.put(2).unwrap_err();
    assert!(e.is_closed());
    assert_eq!(e.into_inner(), 2);
    assert!(producer.try_put(2).unwrap_err().is_closed());
    assert!(producer.put_bytes(b"x").unwrap_err().is_closed());
    // Other handles (a clone of the closed one, another mapping) still put; gets go on.
    assert!(!q.is_closed());
    q.put(3).unwrap();
    producer.clone().put(4).unwrap();
    other_mapping.put(5).unwrap();
    let got: Vec<u32> = (0..4).map(|_| producer.get().unwrap()).collect();
    assert_eq!(got, [1, 3, 4, 5]);
    // Without auto_shutdown, closing every producer leaves the queue open.
    assert!(producer.try_get().unwrap_err().is_empty());
}

#[test]
fn shutdown_immediate_discards_counts_done_and_wakes_everyone() {
    let q: JoinableShmQueue<Vec<u8>> =
        JoinableShmQueue::with_options(ShmQueue::builder().ring_bytes(4096).max_items(3)).unwrap();
    let big = vec![7u8; 10_000]; // out of line: its file must go too
    q.put(vec![1]).unwrap();
    q.put(big.clone()).unwrap();
    q.put(vec![3]).unwrap();
    assert_eq!(q.get().unwrap(), vec![1]);
    q.put(vec![4]).unwrap();
    let putter = {
        let q = q.clone();
        std::thread::spawn(move || q.put(vec![5]).map_err(|e| (e.is_closed(), e.into_inner())))
    };
    let joiner = {
        let q = q.clone();
        std::thread::spawn(move || q.join_timeout(Duration::from_secs(30)))
    };
    q.shutdown(true).unwrap();
    assert_eq!(putter.join().unwrap(), Err((true, vec![5])));
    assert!(q.is_shutdown());
    assert!(q.is_empty(), "the items left were not discarded");
    assert_eq!(q.unfinished(), 1, "only the item taken is outstanding");
    assert!(q.get().unwrap_err().is_closed());
    assert!(q.try_get().unwrap_err().is_closed());
    q.task_done().unwrap();
    assert!(joiner.join().unwrap(), "join was not released");
    assert!(q.task_done().is_err());
    let dir = conveyor_shm::shm_dir();
    let prefix = format!("conveyor-{}.", q.name());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "out-of-line files left: {left:?}");
}

#[test]
fn shutdown_immediate_with_items_marked_done_early_keeps_the_count_at_zero() {
    let q: JoinableShmQueue<u32> = JoinableShmQueue::new().unwrap();
    q.put(1).unwrap();
    q.put(2).unwrap();
    q.task_done().unwrap();
    q.task_done().unwrap();
    q.shutdown(true).unwrap();
    assert_eq!(q.unfinished(), 0);
    assert!(q.task_done().is_err());
    assert!(q.join_timeout(Duration::from_secs(30)));
}

#[test]
fn auto_shutdown_once_every_producer_handle_closed_or_dropped() {
    let q: ShmQueue<u32> = ShmQueue::builder()
        .ring_bytes(4096)
        .auto_shutdown()
        .create()
        .unwrap();
    // A consumer blocked on the empty queue before anyone has put.
    let consumer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                match q.get() {
                    Ok(v) => got.push(v),
                    Err(e) => {
                        assert!(e.is_closed(), "{e}");
                        return got;
                    }
                }
            }
        })
    };
    // Nobody has put yet: the queue stays open even though no producer is left.
    let idle = q.clone();
    idle.close();
    assert!(!q.is_shutdown());
    let a = q.clone();
    let b: ShmQueue<u32> = ShmQueue::open(q.name()).unwrap(); // another mapping
    let c = q.clone();
    a.put(1).unwrap();
    b.put(2).unwrap();
    c.put(3).unwrap();
    a.close();
    drop(b); // gone without closing: counts as closed
    assert!(!q.is_shutdown(), "a producer is still open");
    c.put(4).unwrap();
    c.close();
    assert!(q.is_shutdown());
    let mut got = consumer.join().unwrap();
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4]);
}

#[test]
fn auto_shutdown_off_by_default_keeps_the_queue_open() {
    let q: ShmQueue<u32> = small(4096);
    let p = q.clone();
    p.put(1).unwrap();
    drop(p);
    assert_eq!(q.get().unwrap(), 1);
    assert!(!q.is_shutdown());
    assert!(q.try_get().unwrap_err().is_empty());
}
