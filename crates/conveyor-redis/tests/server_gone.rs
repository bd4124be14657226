//! Honest answers when Redis is unreachable: once the queue's server is stopped (SIGKILL, on a
//! redis-server of the test's own), every call says so, within the reconnect budget, instead of
//! answering `0`, "every task done", or only logging.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use conveyor_core::Unavailable;
use conveyor_redis::{Builder, Channel, Error, Joinable, LocalServerOptions, QueueInfo};

/// The reconnect budget of the handles: each call on the stopped server gives up after it.
const BUDGET: Duration = Duration::from_millis(300);
/// How long a call may take before the test says it hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// Asserts a call failed as unreachable, naming the call and the queue, with the crate's
/// `Error` as its source and advice in its message.
fn says_unreachable<T: std::fmt::Debug>(what: &str, r: Result<T, Unavailable>) {
    let e = match r {
        Ok(v) => panic!("{what} on a stopped Redis answered {v:?}, as if all were well"),
        Err(e) => e,
    };
    assert!(e.is_unreachable(), "{what}: {e:?}");
    assert_eq!(e.operation(), what, "{e}");
    assert!(e.channel().starts_with("Redis queue `test-"), "{e}");
    assert!(
        e.to_string().contains("check that the server is running"),
        "{e}"
    );
    assert!(
        e.source_ref().downcast_ref::<Error>().is_some(),
        "the crate's error is the source: {e:?}"
    );
}

#[test]
fn a_stopped_server_is_reported_by_every_call() {
    let Some(mut server) = common::own_server("stopped", LocalServerOptions::default()) else {
        return;
    };
    let name = common::name("stopped");
    let open = || {
        Builder::new(server.url(), &name)
            .maxsize(4)
            .reconnect_for(BUDGET)
            .shutdown_when_producers_done()
            .open_joinable::<u32>()
            .unwrap()
    };
    let (producer, consumer) = (open(), open());
    producer.put(1).unwrap();
    producer.put(2).unwrap();
    assert_eq!(consumer.get().unwrap(), 1); // taken, not yet done
    assert_eq!(consumer.len().unwrap(), 1);
    assert!(!consumer.join_timeout(Duration::ZERO).unwrap());
    server.stop();

    says_unreachable("len", consumer.len());
    says_unreachable("is_empty", consumer.is_empty());
    says_unreachable("is_full", consumer.is_full());
    // fixed when the queue was made, so known without the server
    assert_eq!(consumer.capacity().unwrap(), Some(4));
    says_unreachable(
        "join_timeout",
        consumer.join_timeout(Duration::from_millis(10)),
    );
    // join must fail, not wait forever nor return as if done
    let (tx, rx) = mpsc::channel();
    let joiner = consumer.clone();
    std::thread::spawn(move || tx.send(joiner.join()).unwrap());
    let start = Instant::now();
    says_unreachable("join", rx.recv_timeout(PATIENCE).expect("join hung"));
    assert!(start.elapsed() < PATIENCE);
    says_unreachable("shutdown", consumer.shutdown(false));
    match consumer.task_done().unwrap_err() {
        conveyor_core::TaskDoneError::Unavailable(e) => says_unreachable::<()>("task_done", Err(e)),
        other => panic!("task_done: expected Unavailable, got {other:?}"),
    }
    let e = consumer.get_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(e.is_io() && !e.is_timeout() && !e.is_closed(), "{e:?}");
    let e = producer.put(3).unwrap_err();
    assert!(e.is_io(), "{e:?}");
    assert_eq!(e.into_inner(), 3);
    // A producer of a self-shutting queue must tell the server it is done: that fails, and
    // says so; the handle is closed all the same.
    says_unreachable("close", producer.close());
    assert!(producer.put(4).unwrap_err().is_closed());
    assert_eq!(
        producer.close().map_err(|e| e.to_string()),
        Ok(()),
        "closing twice"
    );
}
