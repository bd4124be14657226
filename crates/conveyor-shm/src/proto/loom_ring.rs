//! Model checks of the ring's index and commit protocol under concurrency: the real
//! [`Proto`] code over loom's atomics (for the shared words) and loom's cells (for the record
//! bytes, one cell per 8-byte unit), with the put and get mutexes modelled by loom mutexes.
//!
//! Producers and consumers hold different mutexes and talk only through the tail, head and
//! their caches, so loom explores every interleaving of a put with a get (and of two puts
//! around the put mutex), and every value a load may return under the memory model. The
//! checks: every item put is got exactly once, whole (a consumer reading bytes a producer
//! wrote without a happens-before edge is a data race loom reports; a stale read would show as
//! wrong bytes), in FIFO order (per producer with two), and the task count is right. The ring
//! is 64 bytes (8 units) with records of 2 and 3 units, so the models wrap around, fill the
//! ring (puts retry) and write pad records. Gets go through both the copying `Proto::get` and
//! `Proto::get_with` (the typed get's in-place path, `taking` journal included); a ring
//! bounded by `max_items`, a close after the last put, and `shutdown(true)` racing a consumer
//! (each record taken by exactly one of them, the task count back at zero) are modelled too.
//!
//! `RUSTFLAGS="--cfg loom" cargo test -p conveyor-shm --release --lib loom`

use std::sync::atomic::Ordering;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, AtomicU64};
use loom::sync::{Arc, Mutex};

use super::model_common::{copy_encoder, model_proto, unit_pieces};
use super::*;

impl Word for AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU64::store(self, value, order)
    }
}

impl Word for AtomicU32 {
    fn load(&self, order: Ordering) -> u64 {
        AtomicU32::load(self, order) as u64
    }
    fn store(&self, value: u64, order: Ordering) {
        AtomicU32::store(self, value as u32, order)
    }
}

/// The ring's bytes: one loom cell per unit, so loom checks who may touch which unit when.
struct LBytes(Vec<UnsafeCell<[u8; 8]>>);

impl LBytes {
    fn write_units(&self, off: u64, src: &[u8]) {
        for (at, r) in unit_pieces(off, src.len()) {
            let n = r.len();
            // SAFETY: loom checks the access; the pointer is to this cell's array.
            self.0[at / 8]
                .with_mut(|u| unsafe { (&mut *u)[at % 8..at % 8 + n].copy_from_slice(&src[r]) });
        }
    }

    fn read_units(&self, off: u64, dst: &mut [u8]) {
        for (at, r) in unit_pieces(off, dst.len()) {
            let n = r.len();
            // SAFETY: loom checks the access; the pointer is to this cell's array.
            self.0[at / 8].with(|u| unsafe { dst[r].copy_from_slice(&(&*u)[at % 8..at % 8 + n]) });
        }
    }
}

// SAFETY: (RingBytes) the Vec bounds-checks every unit; `read` writes `len` bytes to `dst`,
// which the caller guarantees valid.
unsafe impl RingBytes for LBytes {
    unsafe fn write(&self, off: u64, src: &[u8]) {
        self.write_units(off, src);
    }
    unsafe fn read(&self, off: u64, dst: *mut u8, len: usize) {
        // SAFETY: `dst` is valid for `len` bytes of writes (the caller's contract).
        let dst = unsafe { std::slice::from_raw_parts_mut(dst, len) };
        self.read_units(off, dst);
    }
    unsafe fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut buf = vec![0u8; len];
        self.read_units(off, &mut buf);
        f(&buf)
    }
    unsafe fn fill<R>(&self, off: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // Hands over the free space as it is, and writes all of it back: loom then checks
        // the producer owns every unit the encoder was lent, not only the ones it used.
        let mut buf = vec![0u8; len];
        self.read_units(off, &mut buf);
        let r = f(&mut buf);
        self.write_units(off, &buf);
        r
    }
}

const CAP_UNITS: u64 = 8;

struct Shared {
    words: [AtomicU64; 9],
    closed: AtomicU32,
    bytes: LBytes,
    put_lock: Mutex<()>,
    get_lock: Mutex<()>,
    max_items: u64,
}

impl Shared {
    fn new() -> Shared {
        Shared::bounded(0)
    }

    /// A ring that holds at most `max_items` records (0: no bound).
    fn bounded(max_items: u64) -> Shared {
        Shared {
            max_items,
            words: std::array::from_fn(|_| AtomicU64::new(0)),
            closed: AtomicU32::new(0),
            bytes: LBytes((0..CAP_UNITS).map(|_| UnsafeCell::new([0; 8])).collect()),
            put_lock: Mutex::new(()),
            get_lock: Mutex::new(()),
        }
    }

    fn proto(&self) -> Proto<'_, AtomicU64, AtomicU32, LBytes> {
        model_proto(
            &self.words,
            &self.closed,
            &self.bytes,
            CAP_UNITS,
            self.max_items,
        )
    }

    /// Puts `payload` under the put mutex, retrying while the ring is full; in place or not.
    fn put(&self, payload: &[u8], in_place: bool) {
        assert!(self.offer(payload, in_place), "closed");
    }

    /// `put`, or `false` if the queue is closed.
    fn offer(&self, payload: &[u8], in_place: bool) -> bool {
        loop {
            let done = {
                let _g = self.put_lock.lock().unwrap();
                let p = self.proto();
                if in_place {
                    let r = p
                        .put_in_place(KIND_DATA, copy_encoder(payload))
                        .unwrap()
                        .unwrap();
                    match r {
                        PutInPlace::Done => Some(true),
                        PutInPlace::Closed => Some(false),
                        PutInPlace::NoRoom => None,
                    }
                } else {
                    match p.put(payload, KIND_DATA).unwrap() {
                        PutOutcome::Done => Some(true),
                        PutOutcome::Closed => Some(false),
                        PutOutcome::Full => None,
                    }
                }
            };
            if let Some(done) = done {
                return done;
            }
            loom::thread::yield_now();
        }
    }

    /// Closes the queue under the put mutex, as the queue does.
    fn close(&self) {
        let _g = self.put_lock.lock().unwrap();
        self.proto().close();
    }

    /// Takes one record under the get mutex, retrying while the ring is empty; `None` once
    /// it is closed and drained. `in_place`: through `get_with`, the typed get's path (the
    /// decoder reads the record where it lies, with the `taking` journal set meanwhile).
    fn take(&self, in_place: bool) -> Option<Vec<u8>> {
        if !in_place {
            return self.take_copy();
        }
        loop {
            let got = {
                let _g = self.get_lock.lock().unwrap();
                match self
                    .proto()
                    .get_with(|kind, bytes| (kind, bytes.to_vec()))
                    .unwrap()
                {
                    GetWith::Got((kind, v)) => {
                        assert_eq!(kind, KIND_DATA);
                        Some(Some(v))
                    }
                    GetWith::Empty => None,
                    GetWith::Closed => Some(None),
                }
            };
            if let Some(v) = got {
                return v;
            }
            loom::thread::yield_now();
        }
    }

    /// `take` through the copying `Proto::get`.
    fn take_copy(&self) -> Option<Vec<u8>> {
        loop {
            let got = {
                let _g = self.get_lock.lock().unwrap();
                let mut out = Vec::new();
                match self.proto().get(&mut out).unwrap() {
                    GetOutcome::Got(kind) => {
                        assert_eq!(kind, KIND_DATA);
                        Some(Some(out))
                    }
                    GetOutcome::Empty => None,
                    GetOutcome::Closed => Some(None),
                }
            };
            if let Some(v) = got {
                return v;
            }
            loom::thread::yield_now();
        }
    }

    /// Takes one record under the get mutex, retrying while the ring is empty.
    fn get(&self) -> Vec<u8> {
        self.take_copy().expect("never closed")
    }

    /// Marks one task done under the put mutex, as `task_done` does.
    fn task_done(&self) {
        let _g = self.put_lock.lock().unwrap();
        assert!(
            self.proto().task_done().is_some(),
            "task_done with none left"
        );
    }

    /// `shutdown(true)` as `RawQueue::shutdown` and `discard_left` do it: close under the put
    /// mutex, then take the records left one at a time under the get mutex and count each
    /// done under the put mutex, never holding both. Returns the records discarded.
    fn shutdown_immediate(&self) -> Vec<Vec<u8>> {
        self.close();
        let mut discarded = Vec::new();
        loop {
            let got = {
                let _g = self.get_lock.lock().unwrap();
                self.proto().get_with(|_, bytes| bytes.to_vec()).unwrap()
            };
            match got {
                GetWith::Got(v) => {
                    let _g = self.put_lock.lock().unwrap();
                    // None would mean every task was already done; here none was.
                    assert!(self.proto().task_done().is_some());
                    discarded.push(v);
                }
                GetWith::Empty | GetWith::Closed => return discarded,
            }
        }
    }
}

/// Payload `i` of producer `p`: 1 or 9 bytes (records of 2 or 3 units), all telling.
fn payload(p: u8, i: u8, long: bool) -> Vec<u8> {
    let n = if long { 9 } else { 1 };
    (0..n).map(|k| p << 6 | i << 3 | k).collect()
}

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    b.check(f);
}

/// One producer and one consumer, FIFO with wrap-around: records of 3, 3, 2, 3 units
/// through the 8-unit ring (the third put needs the first get's room, the fourth wraps behind
/// a pad record), put `i` in place where `put_in_place(i)`, got through `get_with` (the
/// typed get's path) where `get_in_place(i)`. Checks every record, the task count, and that
/// both gets find the ring empty after.
fn one_producer_one_consumer_with_wrap(
    put_in_place: fn(usize) -> bool,
    get_in_place: fn(usize) -> bool,
) {
    let sizes = [true, true, false, true];
    model(4, move || {
        let s = Arc::new(Shared::new());
        let producer = {
            let s = s.clone();
            loom::thread::spawn(move || {
                for (i, &long) in sizes.iter().enumerate() {
                    s.put(&payload(1, i as u8, long), put_in_place(i));
                }
            })
        };
        for (i, &long) in sizes.iter().enumerate() {
            assert_eq!(
                s.take(get_in_place(i)),
                Some(payload(1, i as u8, long)),
                "item {i}: wrong, torn or out of order"
            );
        }
        producer.join().unwrap();
        assert_eq!(s.words[2].load(Ordering::SeqCst), sizes.len() as u64);
        let _g = s.get_lock.lock().unwrap();
        assert_eq!(s.proto().get(&mut Vec::new()).unwrap(), GetOutcome::Empty);
        assert!(matches!(
            s.proto().get_with(|_, _| ()).unwrap(),
            GetWith::Empty
        ));
    });
}

#[test]
fn loom_ring_one_producer_one_consumer_fifo_with_wrap() {
    one_producer_one_consumer_with_wrap(|i| i % 2 == 1, |_| false);
}

#[test]
fn loom_ring_two_producers_one_consumer() {
    model(3, || {
        let s = Arc::new(Shared::new());
        let producers: Vec<_> = (1..=2u8)
            .map(|p| {
                let s = s.clone();
                loom::thread::spawn(move || {
                    for i in 0..2u8 {
                        s.put(&payload(p, i, p == 1), p == 2);
                    }
                })
            })
            .collect();
        let mut next = [0u8; 3];
        for _ in 0..4 {
            let v = s.get();
            let p = v[0] >> 6;
            let i = (v[0] >> 3) & 7;
            assert!(p == 1 || p == 2, "a foreign record {v:?}");
            assert_eq!(
                i, next[p as usize],
                "producer {p}: out of order, lost or duplicated"
            );
            assert_eq!(v, payload(p, i, p == 1), "a torn record");
            next[p as usize] += 1;
        }
        for h in producers {
            h.join().unwrap();
        }
        assert_eq!(s.words[2].load(Ordering::SeqCst), 4);
    });
}

#[test]
fn loom_ring_typed_get_in_place_fifo_with_wrap() {
    // As the first model, with the consumer taking every other record through `get_with`
    // (the production typed get's path): the in-place read must be as race-free as the copy.
    one_producer_one_consumer_with_wrap(|i| i % 2 == 0, |i| i % 2 == 0);
}

#[test]
fn loom_ring_max_items_and_close() {
    // A ring bounded to one record: a put waits for the get even with room in the ring, the
    // bound is never exceeded, and a close after the last put lets the consumer drain
    // everything before it sees `Closed`; a put after the close fails.
    model(3, || {
        let s = Arc::new(Shared::bounded(1));
        let producer = {
            let s = s.clone();
            loom::thread::spawn(move || {
                for i in 0..3u8 {
                    s.put(&payload(1, i, false), i == 1);
                    let (head, tail) = (
                        s.words[6].load(Ordering::SeqCst),
                        s.words[0].load(Ordering::SeqCst),
                    );
                    assert!(count(head, tail) <= 1, "more records than max_items");
                }
                s.close();
                assert!(!s.offer(&payload(1, 7, false), false), "a put after close");
            })
        };
        for i in 0..3u8 {
            assert_eq!(s.take(i != 1), Some(payload(1, i, false)), "item {i}");
        }
        assert_eq!(s.take(true), None, "closed and drained");
        assert_eq!(s.take(false), None, "closed and drained");
        producer.join().unwrap();
    });
}

#[test]
fn loom_ring_shutdown_immediate_races_a_consumer() {
    // Two records, then `shutdown(true)` racing a consumer that marks what it takes done:
    // every record is taken once, by one of them, whole; the consumer then sees `Closed`; a
    // put after the shutdown fails; and the task count ends at zero, so `join` returns.
    model(2, || {
        let s = Arc::new(Shared::new());
        s.put(&payload(1, 0, false), false);
        s.put(&payload(1, 1, true), true);
        let consumer = {
            let s = s.clone();
            loom::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(v) = s.take(true) {
                    s.task_done();
                    got.push(v);
                }
                got
            })
        };
        let mut all = s.shutdown_immediate();
        assert!(
            !s.offer(&payload(1, 2, false), false),
            "a put after shutdown"
        );
        all.extend(consumer.join().unwrap());
        all.sort();
        let mut expected = vec![payload(1, 0, false), payload(1, 1, true)];
        expected.sort();
        assert_eq!(all, expected, "a record lost, duplicated or torn");
        assert_eq!(
            s.words[2].load(Ordering::SeqCst),
            0,
            "tasks left unfinished"
        );
    });
}
