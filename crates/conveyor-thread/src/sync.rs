//! The loom shim: the synchronisation primitives the crate is built on, switched to loom's
//! model-checked versions when compiled with `RUSTFLAGS="--cfg loom"`.
//!
//! Everything lock-free in this crate takes its atomics, cells, locks and `yield_now` from here,
//! never from `std` directly, so the very same code runs under the model checker.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::{current, park, yield_now, Thread};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};

/// Loom has no timed park; the model tests never use timeouts, so a timed park is a park.
#[cfg(loom)]
pub(crate) fn park_timeout(_timeout: std::time::Duration) {
    loom::thread::park();
}

/// One busy-wait step. Under loom a spin must yield, or the model would never progress.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// The `SeqCst` handshake of [`crate::waiters`], made explicit for the model checker.
///
/// The wake-up protocol pairs a `SeqCst` read-modify-write on one side with a `SeqCst` load on
/// the other. In the C++20 memory model that Rust follows, all four operations fall in one total
/// order consistent with program order and coherence, so at least one side sees the other's write
/// (a cycle would be needed otherwise). Loom models `SeqCst` accesses as `AcqRel` only (a
/// documented limitation, loom issue #180) and would report a false lost wake-up, so under loom
/// a `SeqCst` fence, which it does model, is added at both places. In normal builds it is
/// nothing: on x86 the read-modify-write already is a full barrier, and a fence would cost every
/// put and get a few dozen cycles.
#[inline(always)]
pub(crate) fn handshake_fence() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}

/// Locks `m`, ignoring poisoning.
///
/// Every structure guarded by a lock in this crate keeps its invariants across a panic in user
/// code (the only code that can panic while a guard is held is a user's `Ord`, and the heap
/// compares before it moves anything), so a poisoned lock holds valid data.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// `UnsafeCell` with loom's closure-based API, so that loom can track every access.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `UnsafeCell` with loom's closure-based API, so that loom can track every access.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Pads and aligns a value to 128 bytes (two cache lines, as adjacent-line prefetchers pair them),
/// so that the atomics one thread hammers never share a line with another thread's.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
