//! A slow decode in one consumer does not hold up the others past their deadlines: a get with
//! a deadline waits for the get mutex only until then, and a record over 64 KiB is decoded
//! after the mutex is released.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use conveyor_core::{Channel, GetError};
use conveyor_shm::ShmQueue;
use serde::{Deserialize, Deserializer, Serialize};

/// A decode gate: a decoder that reaches it says so and waits until the test opens it.
struct Gate {
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Gate {
    const fn new() -> Self {
        Gate {
            state: Mutex::new((false, false)),
            cv: Condvar::new(),
        }
    }
    /// Called by the decoder: marks it entered, waits for `open`.
    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap();
        }
    }
    /// Waits until a decoder has reached the gate.
    fn wait_entered(&self) {
        let s = self.state.lock().unwrap();
        let (s, t) = self
            .cv
            .wait_timeout_while(s, Duration::from_secs(60), |s| !s.0)
            .unwrap();
        assert!(!t.timed_out() && s.0, "the slow decode never started");
    }
    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

/// One gate per test (the tests run in parallel in this process).
static GATES: [Gate; 2] = [Gate::new(), Gate::new()];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Wire {
    /// Index into `GATES` of the gate the decode stops at, if any.
    gate: Option<u8>,
    data: Vec<u8>,
}

/// Decodes as `Wire`, stopping at its gate first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Item(Wire);

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        if let Some(g) = w.gate {
            GATES[g as usize].pass();
        }
        Ok(Item(w))
    }
}

fn item(gate: Option<u8>, len: usize, fill: u8) -> Item {
    Item(Wire {
        gate,
        data: vec![fill; len],
    })
}

/// Consumer A takes a record whose decode stops at gate `g` (`slow_len` bytes), from a fresh
/// queue of `ring_bytes` that holds a 16-byte record after it; while A is decoding, `during`
/// runs with the queue and that next record. Then the gate opens and A must have got its
/// record. Returns the queue and the next record, for the checks after.
fn while_a_consumer_decodes_slowly(
    g: u8,
    ring_bytes: usize,
    slow_len: usize,
    during: impl FnOnce(&ShmQueue<Item>, &Item),
) -> (ShmQueue<Item>, Item) {
    let gate = &GATES[g as usize];
    let q: ShmQueue<Item> = ShmQueue::builder().ring_bytes(ring_bytes).create().unwrap();
    let slow = item(Some(g), slow_len, 2 * g + 1);
    let next = item(None, 16, 2 * g + 2);
    q.put(slow.clone()).unwrap();
    q.put(next.clone()).unwrap();
    let a = {
        let q = q.clone();
        std::thread::spawn(move || q.get())
    };
    gate.wait_entered();
    during(&q, &next);
    gate.open();
    assert_eq!(a.join().unwrap().unwrap(), slow);
    (q, next)
}

#[test]
fn try_get_and_get_timeout_return_while_another_consumer_decodes_slowly_in_place() {
    let (q, next) = while_a_consumer_decodes_slowly(0, 4096, 16, |q, _| {
        // Consumer A holds the get mutex in its decode. Another consumer's gets with deadlines
        // return on time; a thread does them so that a regression fails instead of hanging.
        let (tx, rx) = mpsc::channel();
        let b = {
            let q = q.clone();
            std::thread::spawn(move || {
                tx.send(q.try_get()).unwrap();
                tx.send(q.get_timeout(Duration::from_millis(50))).unwrap();
            })
        };
        let limit = Duration::from_secs(60);
        match rx
            .recv_timeout(limit)
            .expect("try_get waited for the slow decode")
        {
            Err(e) => assert!(e.is_empty(), "try_get: {e}"),
            Ok(v) => panic!("try_get took {v:?} from under a decode"),
        }
        match rx
            .recv_timeout(limit)
            .expect("get_timeout waited for the slow decode")
        {
            Err(GetError::Timeout) => {}
            other => panic!("get_timeout: expected a timeout, got {other:?}"),
        }
        b.join().unwrap();
    });
    assert_eq!(q.try_get().unwrap(), next);
    assert!(q.try_get().unwrap_err().is_empty());
}

#[test]
fn a_record_over_64_kib_is_decoded_without_holding_the_get_mutex() {
    let (q, _) = while_a_consumer_decodes_slowly(1, 1 << 20, 100 * 1024, |q, next| {
        // A decodes the big record with the mutex released: another consumer takes the next.
        let (tx, rx) = mpsc::channel();
        let b = {
            let q = q.clone();
            std::thread::spawn(move || tx.send(q.get_timeout(Duration::from_secs(60))).unwrap())
        };
        let got = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the get waited for the big decode");
        assert_eq!(&got.unwrap(), next);
        b.join().unwrap();
    });
    assert!(q.try_get().unwrap_err().is_empty());
}
