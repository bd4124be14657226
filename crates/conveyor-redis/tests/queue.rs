//! RedisQueue and JoinableRedisQueue against a real Redis server (see `common` for which).

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use conveyor_redis::{
    Builder, Channel, Error, Joinable, JoinableRedisQueue, LocalServerOptions, QueueInfo,
    RedisQueue,
};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn put_get_in_order_and_try_get_on_empty() {
    with_server!("put_get_in_order", |url, name| {
        let q: RedisQueue<String> = RedisQueue::open(&url, &name).unwrap();
        assert!(q.try_get().unwrap_err().is_empty());
        for i in 0..10 {
            q.put(format!("item {i}")).unwrap();
        }
        assert_eq!(q.len().unwrap(), 10);
        assert_eq!(q.capacity().unwrap(), None);
        assert!(!q.is_full().unwrap());
        // another handle, as another process would open it
        let other: RedisQueue<String> = RedisQueue::open(&url, &name).unwrap();
        for i in 0..10 {
            assert_eq!(other.get().unwrap(), format!("item {i}"));
        }
        assert!(q.is_empty().unwrap());
        assert!(other
            .get_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_timeout());
        q.destroy().unwrap();
    });
}

#[test]
fn bounded_put_full_timeout_and_blocking() {
    with_server!("bounded_put", |url, name| {
        let q: RedisQueue<u32> = RedisQueue::bounded(&url, &name, 2).unwrap();
        assert_eq!(q.capacity().unwrap(), Some(2));
        q.put(1).unwrap();
        q.try_put(2).unwrap();
        assert!(q.is_full().unwrap());
        let e = q.try_put(3).unwrap_err();
        assert!(e.is_full(), "{e}");
        assert_eq!(e.into_inner(), 3);
        let start = Instant::now();
        let e = q.put_timeout(3, Duration::from_millis(100)).unwrap_err();
        assert!(e.is_timeout(), "{e}");
        assert!(start.elapsed() >= Duration::from_millis(100));

        // a blocked put goes through once a get makes room
        let (tx, rx) = mpsc::channel();
        let producer = q.clone();
        let t = std::thread::spawn(move || {
            tx.send("blocking").unwrap();
            producer.put(3).unwrap();
            tx.send("put").unwrap();
        });
        assert_eq!(rx.recv_timeout(LONG).unwrap(), "blocking");
        assert_eq!(q.get().unwrap(), 1);
        assert_eq!(rx.recv_timeout(LONG).unwrap(), "put");
        t.join().unwrap();
        assert_eq!(q.get().unwrap(), 2);
        assert_eq!(q.get().unwrap(), 3);

        let e = RedisQueue::<u32>::bounded(&url, &name, 5).unwrap_err();
        assert!(
            matches!(
                e,
                Error::MaxsizeMismatch {
                    existing: 2,
                    requested: 5,
                    ..
                }
            ),
            "{e}"
        );
        q.destroy().unwrap();
    });
}

#[test]
fn blocked_get_wakes_on_put_from_another_handle() {
    with_server!("blocked_get_wakes", |url, name| {
        let q: RedisQueue<u64> = RedisQueue::open(&url, &name).unwrap();
        let consumer: RedisQueue<u64> = RedisQueue::open(&url, &name).unwrap();
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            tx.send(()).unwrap();
            consumer.get_timeout(LONG)
        });
        rx.recv_timeout(LONG).unwrap();
        q.put(42).unwrap();
        assert_eq!(t.join().unwrap().unwrap(), 42);
        q.destroy().unwrap();
    });
}

#[test]
fn shutdown_drains_then_closes_everywhere() {
    with_server!("shutdown_drains", |url, name| {
        let q: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        let waiter: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let first = waiter.get_timeout(LONG);
            tx.send(()).unwrap();
            let second = waiter.get_timeout(LONG);
            (first, second)
        });
        q.put(7).unwrap();
        rx.recv_timeout(LONG).unwrap();
        // the waiter is (or soon is) blocked on an empty queue: a shutdown wakes it
        q.shutdown(false).unwrap();
        let (first, second) = t.join().unwrap();
        assert_eq!(first.unwrap(), 7);
        assert!(second.unwrap_err().is_closed());

        let other: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        assert!(other.put(8).unwrap_err().is_closed());
        assert!(other.is_shutdown().unwrap());
        q.destroy().unwrap();
    });
}

#[test]
fn shutdown_without_immediate_lets_gets_drain() {
    with_server!("shutdown_then_drain", |url, name| {
        let q: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        for i in 0..3 {
            q.put(i).unwrap();
        }
        q.shutdown(false).unwrap();
        assert!(q.put(9).unwrap_err().is_closed());
        let consumer: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        assert_eq!(consumer.get().unwrap(), 0);
        assert_eq!(consumer.try_get().unwrap(), 1);
        assert_eq!(consumer.get_timeout(LONG).unwrap(), 2);
        assert!(consumer.get().unwrap_err().is_closed());
        assert!(consumer.try_get().unwrap_err().is_closed());
        q.destroy().unwrap();
    });
}

#[test]
fn shutdown_immediate_discards_and_releases_join() {
    with_server!("shutdown_immediate", |url, name| {
        let q: JoinableRedisQueue<u32> = JoinableRedisQueue::open(&url, &name).unwrap();
        for i in 0..5 {
            q.put(i).unwrap();
        }
        // one item taken and not done: join still waits for it after the shutdown
        let worker: JoinableRedisQueue<u32> = JoinableRedisQueue::open(&url, &name).unwrap();
        assert_eq!(worker.get().unwrap(), 0);
        assert_eq!(q.try_shutdown(true).unwrap(), 4);
        assert!(worker.get().unwrap_err().is_closed());
        assert!(q.put(5).unwrap_err().is_closed());
        assert!(!q.join_timeout(Duration::from_millis(50)).unwrap());
        worker.task_done().unwrap();
        assert!(q.join_timeout(LONG).unwrap());
        q.destroy().unwrap();
    });
}

#[test]
fn close_stops_this_handle_only() {
    with_server!("close_this_handle", |url, name| {
        let a: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        let b: RedisQueue<u32> = RedisQueue::open(&url, &name).unwrap();
        let a2 = a.clone();
        a.close().unwrap();
        a.close().unwrap();
        assert!(a.put(1).unwrap_err().is_closed());
        a2.put(2).unwrap();
        b.put(3).unwrap();
        // gets through a closed handle still work: close is about puts
        assert_eq!(a.get().unwrap(), 2);
        assert_eq!(a.get().unwrap(), 3);
        a.destroy().unwrap();
    });
}

#[test]
fn task_done_and_join() {
    with_server!("task_done_join", |url, name| {
        let q: JoinableRedisQueue<String> = JoinableRedisQueue::open(&url, &name).unwrap();
        assert!(
            q.join_timeout(Duration::ZERO).unwrap(),
            "nothing put: join returns at once"
        );
        assert!(matches!(
            q.task_done().unwrap_err(),
            conveyor_redis::TaskDoneError::TooManyCalls
        ));
        for i in 0..3 {
            q.put(format!("hot dog {i}")).unwrap();
        }
        let eater: JoinableRedisQueue<String> = JoinableRedisQueue::open(&url, &name).unwrap();
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            for _ in 0..3 {
                let hotdog = eater.get_timeout(LONG).unwrap();
                // join must not return before this task_done
                tx.send(hotdog).unwrap();
                eater.task_done().unwrap();
            }
            eater
        });
        q.join().unwrap();
        let eaten: Vec<String> = rx.try_iter().collect();
        assert_eq!(
            eaten.len(),
            3,
            "join returned before every task_done: {eaten:?}"
        );
        let eater = t.join().unwrap();
        assert!(matches!(
            eater.task_done().unwrap_err(),
            conveyor_redis::TaskDoneError::TooManyCalls
        ));
        q.destroy().unwrap();
    });
}

#[test]
fn unacknowledged_item_is_redelivered_after_the_visibility_timeout() {
    with_server!("redelivery", |url, name| {
        let open = || {
            Builder::new(&url, &name)
                .visibility_timeout(Duration::from_millis(200))
                .poll_interval(Duration::from_millis(20))
                .open_joinable::<String>()
                .unwrap()
        };
        let q = open();
        q.put("the only hot dog".into()).unwrap();
        let dying = open();
        // The clock starts before the delivery: the visibility timeout runs from the delivery
        // on the server, so a start taken after the get (and the drop and the open that follow
        // it, slow on a loaded machine) would see the redelivery come "early".
        let start = Instant::now();
        assert_eq!(dying.get().unwrap(), "the only hot dog");
        // dropped without task_done, as a consumer that dies
        drop(dying);
        let survivor = open();
        assert_eq!(survivor.get_timeout(LONG).unwrap(), "the only hot dog");
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "redelivered too early"
        );
        assert!(!q.join_timeout(Duration::ZERO).unwrap());
        survivor.task_done().unwrap();
        assert!(q.join_timeout(LONG).unwrap());
        assert!(q.dead_letters().unwrap().is_empty());
        q.destroy().unwrap();
    });
}

#[test]
fn poison_item_goes_to_the_dead_letters() {
    with_server!("dead_letter", |url, name| {
        let open = || {
            Builder::new(&url, &name)
                .visibility_timeout(Duration::from_millis(30))
                .max_deliveries(3)
                .poll_interval(Duration::from_millis(10))
                .open_joinable::<u32>()
                .unwrap()
        };
        let q = open();
        q.put(666).unwrap();
        // three consumers in turn take the poison item and die with it
        for _ in 0..3 {
            let victim = open();
            assert_eq!(victim.get_timeout(LONG).unwrap(), 666);
        }
        q.put(1).unwrap();
        let survivor = open();
        assert_eq!(survivor.get_timeout(LONG).unwrap(), 1);
        survivor.task_done().unwrap();
        assert!(survivor
            .get_timeout(Duration::from_millis(200))
            .unwrap_err()
            .is_timeout());
        let dead = q.dead_letters().unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(*dead[0].item.as_ref().unwrap(), 666);
        assert_eq!(dead[0].deliveries, 3);
        assert!(
            q.join_timeout(LONG).unwrap(),
            "a dead letter counts as done"
        );
        q.destroy().unwrap();
    });
}

#[test]
fn many_producers_and_consumers_lose_and_duplicate_nothing() {
    with_server!("many_to_many", |url, name| {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 150;
        let q: JoinableRedisQueue<u64> = JoinableRedisQueue::bounded(&url, &name, 50).unwrap();
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let q: JoinableRedisQueue<u64> = JoinableRedisQueue::open(&url, &name).unwrap();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        q.put(p * 1000 + i).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let q: JoinableRedisQueue<u64> = JoinableRedisQueue::open(&url, &name).unwrap();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match q.get_timeout(LONG) {
                            Ok(v) => {
                                got.push(v);
                                q.task_done().unwrap();
                            }
                            Err(e) if e.is_closed() => return got,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.join().unwrap();
        q.shutdown(false).unwrap();
        let mut all: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_unstable();
        let want: Vec<u64> = (0..PRODUCERS)
            .flat_map(|p| (0..EACH).map(move |i| p * 1000 + i))
            .collect();
        assert_eq!(all, want);
        q.destroy().unwrap();
    });
}

#[test]
fn put_batch_puts_everything_in_order() {
    with_server!("put_batch", |url, name| {
        let q: RedisQueue<u32> = RedisQueue::bounded(&url, &name, 100).unwrap();
        let consumer = q.clone();
        let t = std::thread::spawn(move || {
            (0..1000)
                .map(|_| consumer.get_timeout(LONG).unwrap())
                .collect::<Vec<_>>()
        });
        // more than the bound: the batch goes in as room appears
        q.put_batch((0..1000).collect()).unwrap();
        assert_eq!(t.join().unwrap(), (0..1000).collect::<Vec<_>>());
        q.shutdown(false).unwrap();
        let e = q.put_batch(vec![1, 2]).unwrap_err();
        assert!(e.is_closed());
        assert_eq!(e.into_inner(), vec![1, 2]);
        q.destroy().unwrap();
    });
}

#[test]
fn undecodable_item_is_a_codec_error() {
    with_server!("codec_error", |url, name| {
        let writer: RedisQueue<String> = RedisQueue::open(&url, &name).unwrap();
        writer.put("not a number".into()).unwrap();
        let reader: RedisQueue<u64> = RedisQueue::open(&url, &name).unwrap();
        let e = reader.get().unwrap_err();
        assert!(e.is_codec(), "{e}");
        writer.destroy().unwrap();
    });
}

/// A server of this test's own, when it needs one it may restart or give a password; outside
/// CI without redis-server it says why it skips.
#[test]
fn url_with_password_and_a_wrong_one() {
    let Some(server) = common::own_server(
        "url_with_password",
        LocalServerOptions {
            password: Some("s3cret".into()),
            persistent: false,
        },
    ) else {
        return;
    };
    let name = common::name("password");
    let url = server.url();
    assert!(url.contains(":s3cret@"));
    let q: RedisQueue<u8> = RedisQueue::open(&url, &name).unwrap();
    q.put(1).unwrap();
    assert_eq!(q.get().unwrap(), 1);

    let wrong = format!("redis://default:nope@127.0.0.1:{}/", server.port());
    let e = Builder::new(&wrong, &name)
        .reconnect_for(Duration::from_millis(200))
        .open::<u8>()
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Connect { .. }), "{msg}");
    assert!(msg.contains("password"), "{msg}");
    assert!(
        !msg.contains("nope"),
        "the password leaks into the message: {msg}"
    );
}

#[test]
fn server_restart_without_persistence_is_a_clear_error() {
    let Some(mut server) = common::own_server("restart_volatile", LocalServerOptions::default())
    else {
        return;
    };
    let name = common::name("restart-volatile");
    let q: JoinableRedisQueue<u32> = Builder::new(server.url(), &name)
        .reconnect_for(Duration::from_secs(10))
        .open_joinable()
        .unwrap();
    q.put(1).unwrap();
    server.restart().unwrap();
    let e = q.put(2).unwrap_err();
    let source = match &e {
        conveyor_redis::PutError::Io { source, .. } => source,
        other => panic!("expected an I/O error, got {other}"),
    };
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{source}");
    assert!(source.to_string().contains("is gone"), "{source}");
    let e = q.get().unwrap_err();
    assert!(e.is_io(), "{e}");
    assert!(e.to_string().contains("is gone"), "{e}");
    // not "some tasks outstanding", nor "all done": the queue is gone, and join says so
    let e = q.join_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(e.is_lost(), "{e:?}");
    assert!(q.join().unwrap_err().is_lost());
}

#[test]
fn server_restart_with_persistence_keeps_acknowledged_puts() {
    let Some(mut server) = common::own_server(
        "restart_persistent",
        LocalServerOptions {
            password: None,
            persistent: true,
        },
    ) else {
        return;
    };
    let name = common::name("restart-persistent");
    let q: RedisQueue<u32> = RedisQueue::open(&server.url(), &name).unwrap();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    server.restart().unwrap();
    // the first call after the restart reconnects (the put retries itself)
    q.put(5).unwrap();
    let got: Vec<u32> = (0..6).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn server_down_is_an_error_after_the_reconnect_budget() {
    let Some(mut server) = common::own_server("server_down", LocalServerOptions::default()) else {
        return;
    };
    let name = common::name("server-down");
    let q: RedisQueue<u32> = Builder::new(server.url(), &name)
        .reconnect_for(Duration::from_millis(300))
        .open()
        .unwrap();
    server.stop();
    let start = Instant::now();
    let e = q.put(1).unwrap_err();
    assert!(e.is_io(), "{e}");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "gave up without retrying"
    );
    assert_eq!(e.into_inner(), 1);
}

#[test]
fn a_self_shutting_queue_closes_when_its_producers_are_done() {
    with_server!("auto_shutdown", |url, name| {
        let open = || {
            Builder::new(&url, &name)
                .shutdown_when_producers_done()
                .open::<u32>()
                .unwrap()
        };
        let consumer = open();
        // no producer yet: an empty queue is not a finished one
        assert!(consumer
            .get_timeout(Duration::from_millis(150))
            .unwrap_err()
            .is_timeout());
        let a = open();
        let b = open();
        a.put(1).unwrap();
        b.put(2).unwrap();
        a.close().unwrap();
        assert!(!consumer.is_shutdown().unwrap(), "b has not closed yet");
        assert_eq!(consumer.get().unwrap(), 1);
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let second = consumer.get_timeout(LONG);
            tx.send(()).unwrap();
            let third = consumer.get_timeout(LONG);
            (second, third)
        });
        rx.recv_timeout(LONG).unwrap();
        drop(b); // a producer that goes without closing counts as closed
        let (second, third) = t.join().unwrap();
        assert_eq!(second.unwrap(), 2);
        assert!(third.unwrap_err().is_closed());
        let late = open();
        assert!(late.put(3).unwrap_err().is_closed());
        late.destroy().unwrap();
    });
}

#[test]
fn timeouts_beyond_the_clock_wait_as_long_as_needed() {
    with_server!("huge_timeouts", |url, name| {
        let q: JoinableRedisQueue<u32> = JoinableRedisQueue::open(&url, &name).unwrap();
        q.put_timeout(1, Duration::MAX).unwrap();
        assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 1);
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::MAX).unwrap());
        q.destroy().unwrap();
    });
}

/// A get takes an entry without deleting it (it reads with NOACK); the take script, which a get runs once per poll
/// interval and a `try_get` every time, trims what is done, so the stream does not grow with
/// every item ever put. Meanwhile `len` counts only what is not yet delivered.
#[test]
fn done_entries_are_trimmed_from_the_stream() {
    with_server!("trimmed", |url, name| {
        let q: RedisQueue<u32> = Builder::new(&url, &name)
            .poll_interval(Duration::from_secs(60))
            .open()
            .unwrap();
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let xlen = |conn: &mut redis::Connection| -> usize {
            redis::cmd("XLEN").arg(q.stream_key()).query(conn).unwrap()
        };
        for i in 0..50 {
            q.put(i).unwrap();
        }
        // the first get runs the take script, the others read the stream directly
        for i in 0..40 {
            assert_eq!(q.get().unwrap(), i);
        }
        assert_eq!(q.len().unwrap(), 10, "len counts what is not yet delivered");
        assert_eq!(xlen(&mut conn), 50, "the direct gets deleted nothing");
        // it trims before it takes: below the last delivered entry (39), which stays
        assert_eq!(q.try_get().unwrap(), 40);
        assert_eq!(xlen(&mut conn), 11, "not trimmed");
        for i in 41..50 {
            assert_eq!(q.get().unwrap(), i);
        }
        assert!(q.try_get().unwrap_err().is_empty());
        assert_eq!(xlen(&mut conn), 1, "not trimmed");
        assert_eq!(q.len().unwrap(), 0);
        q.destroy().unwrap();
    });
}
