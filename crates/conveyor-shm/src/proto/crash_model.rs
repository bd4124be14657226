//! The exhaustive crash model: the real [`Proto`] code over words and bytes that can "kill"
//! the operation in progress before any of its stores, as a SIGKILL would.
//!
//! For several scripted histories of puts (inline, encoded in place, of every length from
//! empty to half the ring, data and out-of-line records, with pads and wrap-around) and gets
//! over a 256-byte ring, every operation is run once for every store it makes, killed just
//! before that store (every store to a shared word, and every 8-byte unit of a record's
//! bytes, so a copy can stop half-way). The survivor then takes the dead side's mutex as
//! `EOWNERDEAD` would make it, runs [`Proto::repair`] (itself killed at each of its stores
//! and run again, as a survivor dying mid-repair would make the next one do), and checks:
//!
//! - every put that returned `Ok` is delivered exactly once, in order, whole, of its kind;
//! - a put killed before its journal was marked is invisible; one killed after it (its record
//!   complete) is delivered whole exactly once;
//! - a get killed before its publishing store leaves its record to the next get, unless it
//!   was decoding it in place (its journal names the record): then, as when it is killed
//!   after the store, it has taken it (the one documented loss);
//! - the task count matches the puts that took effect;
//! - no get reports corruption, and the ring keeps working afterwards (a further history
//!   with wrap-around runs and is checked).
//!
//! Run with the crate's other unit tests: `cargo test -p conveyor-shm --lib crash_model`.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::model_common::{copy_encoder, model_proto, unit_pieces};
use super::*;

thread_local! {
    /// Stores left before the kill; `None` while nothing is to be killed.
    static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
    /// Stores made since the budget was set.
    static STORES: Cell<u64> = const { Cell::new(0) };
    /// Set when a `GetInPlace`'s decoder starts: from then on a kill must lose its record.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// The panic payload of a kill.
struct Killed;

/// A store is about to happen: die here if the budget is spent.
fn store_point() {
    STORES.with(|s| s.set(s.get() + 1));
    BUDGET.with(|b| match b.get() {
        Some(0) => resume_unwind(Box::new(Killed)),
        Some(n) => b.set(Some(n - 1)),
        None => {}
    });
}

/// Runs `f`, killed before its `budget`-th store (0-based; `None`: never). `Ok` with the
/// result if it ran to the end, `Err(())` if it was killed; and the stores it made.
fn killable<R>(budget: Option<u64>, f: impl FnOnce() -> R) -> (Result<R, ()>, u64) {
    BUDGET.with(|b| b.set(budget));
    STORES.with(|s| s.set(0));
    let r = catch_unwind(AssertUnwindSafe(f));
    BUDGET.with(|b| b.set(None));
    let stores = STORES.with(|s| s.get());
    match r {
        Ok(r) => (Ok(r), stores),
        Err(payload) if payload.is::<Killed>() => (Err(()), stores),
        Err(payload) => resume_unwind(payload),
    }
}

/// A shared word whose stores are kill points.
#[derive(Default)]
struct KWord(AtomicU64);

impl Word for KWord {
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        store_point();
        self.0.store(value, order);
    }
}

/// Ring bytes whose writes are kill points, one per 8-byte unit touched.
struct KBytes(RefCell<Vec<u8>>);

impl KBytes {
    fn write_units(&self, off: u64, src: &[u8]) {
        for (at, r) in unit_pieces(off, src.len()) {
            store_point();
            self.0.borrow_mut()[at..at + r.len()].copy_from_slice(&src[r]);
        }
    }
}

// SAFETY: (RingBytes) every access is bounds-checked by the Vec (a contract breach would
// panic the test, not corrupt memory), and `read` writes `len` bytes to `dst`, which the
// caller guarantees valid.
unsafe impl RingBytes for KBytes {
    unsafe fn write(&self, off: u64, src: &[u8]) {
        self.write_units(off, src);
    }
    unsafe fn read(&self, off: u64, dst: *mut u8, len: usize) {
        let v = self.0.borrow();
        let src = &v[off as usize..off as usize + len];
        // SAFETY: `dst` is valid for `len` bytes (the caller's contract); `src` is a Vec.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, len) };
    }
    unsafe fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.0.borrow()[off as usize..off as usize + len])
    }
    unsafe fn fill<R>(&self, off: u64, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // The encoder writes into a copy; the copy reaches the ring unit by unit, so a kill
        // can leave an encoding half in place (past the tail, where nobody reads).
        let mut buf = self.0.borrow()[off as usize..off as usize + len].to_vec();
        let r = f(&mut buf);
        self.write_units(off, &buf);
        r
    }
}

const CAP: u64 = 256;

/// A whole queue's shared state.
struct State {
    words: [KWord; 9],
    closed: AtomicU32,
    bytes: KBytes,
}

impl State {
    fn new() -> State {
        State {
            words: Default::default(),
            closed: AtomicU32::new(0),
            bytes: KBytes(RefCell::new(vec![0xAA; CAP as usize])),
        }
    }

    fn snapshot(&self) -> State {
        State {
            words: std::array::from_fn(|i| {
                KWord(AtomicU64::new(self.words[i].0.load(Ordering::Relaxed)))
            }),
            closed: AtomicU32::new(self.closed.load(Ordering::Relaxed)),
            bytes: KBytes(RefCell::new(self.bytes.0.borrow().clone())),
        }
    }

    fn proto(&self) -> Proto<'_, KWord, AtomicU32, KBytes> {
        model_proto(&self.words, &self.closed, &self.bytes, CAP / 8, 0)
    }

    fn unfinished(&self) -> u64 {
        self.words[2].0.load(Ordering::Relaxed)
    }
}

/// One step of a history.
#[derive(Debug, Clone)]
enum Op {
    /// `Proto::put` of a record.
    Put(Vec<u8>, u32),
    /// `Proto::put_in_place` of a record (falling back to `put` when it has no room, as the
    /// queue does).
    PutInPlace(Vec<u8>),
    /// `Proto::get` (a copy).
    Get,
    /// `Proto::get_with` (the record handed over in place, as a typed get decodes it).
    GetInPlace,
}

/// What the queue must hold: the records committed and not yet taken, in order.
type Model = std::collections::VecDeque<(Vec<u8>, u32)>;

/// Runs `op` on `s` (killed before its `budget`-th store); updates `model` if it completed.
/// Returns whether it completed, its stores, and whether a put's journal got marked.
fn run(s: &State, op: &Op, budget: Option<u64>, model: &mut Model) -> (bool, u64) {
    let p = s.proto();
    DECODING.with(|d| d.set(false));
    let (r, stores) = killable(budget, || match op {
        Op::Put(payload, kind) => {
            let out = p.put(payload, *kind).expect("put reported corruption");
            (out == PutOutcome::Done).then(|| (payload.clone(), *kind))
        }
        Op::PutInPlace(payload) => {
            let out = p
                .put_in_place(KIND_DATA, copy_encoder(payload))
                .expect("put_in_place reported corruption")
                .unwrap();
            match out {
                PutInPlace::Done => Some((payload.clone(), KIND_DATA)),
                PutInPlace::NoRoom => {
                    let out = p.put(payload, KIND_DATA).expect("put reported corruption");
                    (out == PutOutcome::Done).then(|| (payload.clone(), KIND_DATA))
                }
                PutInPlace::Closed => unreachable!("never closed"),
            }
        }
        Op::Get => {
            let mut out = Vec::new();
            match p.get(&mut out).expect("get reported corruption") {
                GetOutcome::Got(kind) => Some((out, kind)),
                GetOutcome::Empty => None,
                GetOutcome::Closed => unreachable!("never closed"),
            }
        }
        Op::GetInPlace => {
            match p
                .get_with(|kind, bytes| {
                    // The decoder may kill its process (a panic under `panic = "abort"`, a
                    // signal): a kill point inside it, after which the record must be lost.
                    DECODING.with(|d| d.set(true));
                    store_point();
                    (bytes.to_vec(), kind)
                })
                .expect("get reported corruption")
            {
                GetWith::Got(rec) => Some(rec),
                GetWith::Empty => None,
                GetWith::Closed => unreachable!("never closed"),
            }
        }
    });
    match r {
        Ok(Some(rec)) => {
            match op {
                Op::Get | Op::GetInPlace => {
                    let want = model
                        .pop_front()
                        .expect("a get took a record from an empty queue");
                    assert_eq!(rec, want, "a get returned the wrong or a torn record");
                }
                _ => model.push_back(rec),
            }
            (true, stores)
        }
        Ok(None) => {
            if matches!(op, Op::Get | Op::GetInPlace) {
                assert!(
                    model.is_empty(),
                    "a get found the queue empty, model {model:?}"
                );
            }
            (true, stores)
        }
        Err(()) => (false, stores),
    }
}

/// Takes every record with `Proto::get`.
fn drain(s: &State) -> Vec<(Vec<u8>, u32)> {
    let p = s.proto();
    let mut got = Vec::new();
    loop {
        let mut out = Vec::new();
        match p
            .get(&mut out)
            .expect("get reported corruption after repair")
        {
            GetOutcome::Got(kind) => got.push((out, kind)),
            GetOutcome::Empty => return got,
            GetOutcome::Closed => unreachable!("never closed"),
        }
        assert!(got.len() < 1000, "the ring never empties");
    }
}

/// A deterministic history with wrap-around, every record length up to half the ring, both
/// record kinds and both put paths.
fn history(seed: u64, len: usize) -> Vec<Op> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut serial = 0u8;
    (0..len)
        .map(|_| {
            let r = next();
            if r % 5 < 2 {
                return if r % 2 == 0 { Op::Get } else { Op::GetInPlace };
            }
            serial = serial.wrapping_add(1);
            let n = (next() % (CAP / 2 - REC_HDR + 1)) as usize;
            let n = if r % 3 == 0 { n % 24 } else { n };
            let payload: Vec<u8> = (0..n).map(|i| serial ^ (i as u8).rotate_left(3)).collect();
            match r % 4 {
                0 => Op::PutInPlace(payload),
                1 => Op::Put(payload, KIND_OUT_OF_LINE),
                _ => Op::Put(payload, KIND_DATA),
            }
        })
        .collect()
}

/// Kills every operation of `ops` at every store, repairs, and checks the invariants.
/// Returns the number of kill points checked.
fn check_history(ops: &[Op]) -> u64 {
    let live = State::new();
    let mut model = Model::new();
    let mut points = 0;
    for op in ops {
        for k in 0.. {
            let s = live.snapshot();
            let mut m = model.clone();
            let puts_before = s.unfinished();
            let (done, _) = run(&s, op, Some(k), &mut m);
            if done {
                break;
            }
            let decoding = DECODING.with(|d| d.get());
            points += 1;
            let side = match op {
                Op::Get | Op::GetInPlace => Side::Get,
                _ => Side::Put,
            };
            // The survivor's repair, itself killed at each of its stores before a full one.
            let mut skipped = false;
            for r in 0.. {
                let (rep, _) = killable(Some(r), || s.proto().repair(side));
                if let Ok(rep) = rep {
                    assert!(
                        !rep.corrupt,
                        "corrupt indices after repair ({op:?}, kill {k})"
                    );
                    skipped = rep.skipped;
                    break;
                }
            }
            let got = drain(&s);
            let want: Vec<_> = m.iter().cloned().collect();
            match op {
                Op::Get => {
                    // A copying get's only store is its publishing head store, and a kill
                    // comes before a store: the record stays for the next consumer.
                    assert_eq!(
                        got, want,
                        "a get killed before its head store lost a record"
                    );
                    assert!(!skipped, "the repair skipped the record of a copying get");
                    assert_eq!(s.unfinished(), puts_before);
                }
                Op::GetInPlace => {
                    // Killed before its decoder began (before its `taking` store): the record
                    // stays. Killed in the decoder or after: the repair skips it, so that a
                    // record whose decoder kills its process kills no other consumer.
                    if decoding {
                        assert!(!want.is_empty());
                        assert_eq!(
                            got[..],
                            want[1..],
                            "a get killed while decoding (kill {k}) did not lose exactly its record"
                        );
                    } else {
                        assert_eq!(
                            got, want,
                            "a get killed before decoding (kill {k}) lost a record"
                        );
                        assert!(!skipped, "the repair skipped a record nobody was decoding");
                    }
                    assert_eq!(s.unfinished(), puts_before);
                }
                Op::Put(payload, _) | Op::PutInPlace(payload) => {
                    let kind = match op {
                        Op::Put(_, k) => *k,
                        _ => KIND_DATA,
                    };
                    if got == want {
                        assert_eq!(
                            s.unfinished(),
                            puts_before,
                            "a put that did not happen counted"
                        );
                    } else {
                        let mut with = want.clone();
                        with.push((payload.clone(), kind));
                        assert_eq!(got, with, "a killed put left a torn or foreign record");
                        assert_eq!(
                            s.unfinished(),
                            puts_before + 1,
                            "the replayed put was not counted"
                        );
                    }
                }
            }
            // The ring keeps working: a further history, checked as it runs.
            let mut after = Model::new();
            for op in history(k + 77, 24) {
                run(&s, &op, None, &mut after);
            }
            assert_eq!(drain(&s), after.into_iter().collect::<Vec<_>>());
        }
        let (done, _) = run(&live, op, None, &mut model);
        assert!(done);
    }
    assert_eq!(drain(&live), model.into_iter().collect::<Vec<_>>());
    points
}

#[test]
fn every_kill_point_of_every_operation_is_repaired() {
    let mut points = 0;
    for seed in 1..=6 {
        points += check_history(&history(seed, 60));
    }
    // Each history has dozens of operations with a few to a few dozen stores each.
    assert!(points > 1000, "only {points} kill points were explored");
}

#[test]
fn the_journal_replays_a_put_killed_between_its_mark_and_its_clear() {
    // The hand-picked case the histories cover among many: every kill point of one put
    // after the journal mark must deliver it.
    let s = State::new();
    let payload = b"whole".to_vec();
    let (_, total) = killable(None, || s.snapshot().proto().put(&payload, KIND_DATA));
    let mut delivered_from = None;
    for k in 0..total {
        let t = s.snapshot();
        let (r, _) = killable(Some(k), || t.proto().put(&payload, KIND_DATA));
        assert!(r.is_err());
        t.proto().repair(Side::Put);
        let got = drain(&t);
        match got.as_slice() {
            [] => assert!(
                delivered_from.is_none(),
                "visible at kill {delivered_from:?}, not at {k}"
            ),
            [(p, KIND_DATA)] if *p == payload => {
                delivered_from.get_or_insert(k);
            }
            other => panic!("kill {k} left {other:?}"),
        }
    }
    // The last three stores (tail, count, clear) all come after the mark.
    assert_eq!(delivered_from, Some(total - 3));
}

#[test]
fn a_get_killed_while_decoding_in_place_has_its_record_skipped() {
    // The one place a dead get loses its record before its publishing store: its journal
    // names the record, so the next consumer does not decode (and die of) it again.
    let s = State::new();
    let mut m = Model::new();
    for op in [
        Op::Put(b"poison".to_vec(), KIND_DATA),
        Op::Put(b"next".to_vec(), KIND_DATA),
    ] {
        run(&s, &op, None, &mut m);
    }
    // Kill it before its last store (the head), after the journal's.
    let (_, total) = killable(None, || s.snapshot().proto().get_with(|_, _| ()));
    let (r, _) = killable(Some(total - 1), || {
        s.proto().get_with(|_, bytes| assert_eq!(bytes, b"poison"))
    });
    assert!(r.is_err());
    let rep = s.proto().repair(Side::Get);
    assert!(rep.skipped && !rep.corrupt);
    assert_eq!(drain(&s), vec![(b"next".to_vec(), KIND_DATA)]);
}
