//! ShmQueue within one process: the Channel contract, with threads as producers and consumers.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use conveyor_core::{Channel, Joinable, QueueInfo};
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
fn close_wakes_blocked_getters_and_drains() {
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
    q.close();
    for g in getters {
        assert!(g.join().unwrap().unwrap_err().is_closed());
    }
    // items put before close are still delivered
    let q: ShmQueue<u32> = small(4096);
    q.put(1).unwrap();
    q.close();
    assert!(q.put(2).unwrap_err().is_closed());
    assert_eq!(q.get().unwrap(), 1);
    assert!(q.get().unwrap_err().is_closed());
    assert!(q.try_get().unwrap_err().is_closed());
}

#[test]
fn close_wakes_blocked_putters() {
    let q: ShmQueue<u32> = ShmQueue::builder()
        .max_items(1)
        .ring_bytes(4096)
        .create()
        .unwrap();
    q.put(0).unwrap();
    let q2 = q.clone();
    let t = std::thread::spawn(move || q2.put(1));
    // the putter is blocked or about to be; close must release it either way
    q.close();
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
    q.close();
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
