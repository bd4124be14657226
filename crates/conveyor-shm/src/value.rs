//! [`Value<T>`]: one plain-old-data value in shared memory, Python's
//! `multiprocessing.Value(typecode, init)` with its lock, and atomics without it.
//!
//! # How the bytes are accessed, and why that is sound
//!
//! [`get`](Value::get) and [`set`](Value::set) take the value's lock, as Python's `.value`
//! does, so a `set` waits for a holder of [`get_lock`](Value::get_lock) and a
//! read-modify-write under the guard is never interleaved with another locked access. The
//! lock is a robust, process-shared, *recursive* mutex (Python's default lock for a `Value` is
//! an `RLock`): `get` inside a guard in the same thread does not deadlock, and a holder that
//! dies (even by SIGKILL) never blocks the others; the next guard says so
//! ([`ValueGuard::previous_owner_died`]).
//!
//! The atomic operations ([`fetch_add`](Value::fetch_add), [`compare_exchange`](Value::compare_exchange),
//! [`swap`](Value::swap), [`load`](Value::load)) of integer types do not take the lock. So
//! that a locked `get` never races with them as a plain read would, a value whose type is 1, 2,
//! 4 or 8 bytes long is always read and written with an atomic of exactly that size (relaxed
//! under the lock, whose acquire and release order them; sequentially consistent without it).
//! A value of another size (a `#[repr(C)]` struct of several fields) has no atomic operations
//! and is only touched under the lock, by plain copies.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{LockError, ShmError};
use crate::pod_segment::{PodSegment, VALUE_MAGIC};

/// Reads the element at `p`, with an atomic of its size if it has one.
///
/// # Safety
/// `p` points to a live, 64-aligned element of type `T` in a shared mapping, accessed by every
/// process only through [`load`] / [`store`] or the atomic operations of [`AtomicInt`] (of the
/// same size), or, for sizes other than 1, 2, 4 and 8, only under the value's lock, which the
/// caller then holds.
pub(crate) unsafe fn load<T: Pod>(p: *const u8, order: Ordering) -> T {
    // SAFETY: in every arm, `p` is aligned for each of these atomics (64-aligned), the size
    // matched selects the atomic covering exactly the element's bytes, and the caller's
    // contract rules out accesses of another size.
    unsafe {
        match std::mem::size_of::<T>() {
            1 => bytemuck::pod_read_unaligned(&[(*(p as *const AtomicU8)).load(order)]),
            2 => {
                bytemuck::pod_read_unaligned(&(*(p as *const AtomicU16)).load(order).to_ne_bytes())
            }
            4 => {
                bytemuck::pod_read_unaligned(&(*(p as *const AtomicU32)).load(order).to_ne_bytes())
            }
            8 => {
                bytemuck::pod_read_unaligned(&(*(p as *const AtomicU64)).load(order).to_ne_bytes())
            }
            _ => std::ptr::read(p as *const T),
        }
    }
}

/// Writes the element at `p`, with an atomic of its size if it has one.
///
/// # Safety
/// As for [`load`].
pub(crate) unsafe fn store<T: Pod>(p: *mut u8, v: T, order: Ordering) {
    let b = bytemuck::bytes_of(&v);
    // SAFETY: as in `load`; for the other sizes the caller holds the lock, so nobody else
    // accesses the bytes.
    unsafe {
        match b.len() {
            1 => (*(p as *const AtomicU8)).store(b[0], order),
            2 => (*(p as *const AtomicU16)).store(u16::from_ne_bytes([b[0], b[1]]), order),
            4 => {
                let mut w = [0u8; 4];
                w.copy_from_slice(b);
                (*(p as *const AtomicU32)).store(u32::from_ne_bytes(w), order)
            }
            8 => {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                (*(p as *const AtomicU64)).store(u64::from_ne_bytes(w), order)
            }
            _ => std::ptr::write(p as *mut T, v),
        }
    }
}

mod sealed {
    /// The atomic operations of an integer type on an element in shared memory.
    pub trait Sealed: Sized {
        /// # Safety
        /// `p` is a live, aligned element of this type in a mapping, accessed only by atomics of
        /// this size.
        unsafe fn fetch_add(p: *mut u8, v: Self) -> Self;
        /// # Safety
        /// As for `fetch_add`.
        unsafe fn fetch_sub(p: *mut u8, v: Self) -> Self;
        /// # Safety
        /// As for `fetch_add`.
        unsafe fn swap(p: *mut u8, v: Self) -> Self;
        /// # Safety
        /// As for `fetch_add`.
        unsafe fn compare_exchange(p: *mut u8, current: Self, new: Self) -> Result<Self, Self>;
    }
}

/// Integer types whose [`Value`] has atomic operations without the lock: `u8` to `u64`,
/// `i8` to `i64`, `usize`, `isize`. Sealed.
pub trait AtomicInt: Pod + sealed::Sealed {}

macro_rules! atomic_int {
    ($($t:ty => $a:ty),* $(,)?) => {$(
        impl sealed::Sealed for $t {
            unsafe fn fetch_add(p: *mut u8, v: Self) -> Self {
                // SAFETY: the trait's contract.
                unsafe { (*(p as *const $a)).fetch_add(v, Ordering::SeqCst) }
            }
            unsafe fn fetch_sub(p: *mut u8, v: Self) -> Self {
                // SAFETY: the trait's contract.
                unsafe { (*(p as *const $a)).fetch_sub(v, Ordering::SeqCst) }
            }
            unsafe fn swap(p: *mut u8, v: Self) -> Self {
                // SAFETY: the trait's contract.
                unsafe { (*(p as *const $a)).swap(v, Ordering::SeqCst) }
            }
            unsafe fn compare_exchange(p: *mut u8, current: Self, new: Self) -> Result<Self, Self> {
                // SAFETY: the trait's contract.
                unsafe {
                    (*(p as *const $a)).compare_exchange(
                        current, new, Ordering::SeqCst, Ordering::SeqCst,
                    )
                }
            }
        }
        impl AtomicInt for $t {}
    )*};
}

atomic_int!(
    u8 => std::sync::atomic::AtomicU8,
    u16 => std::sync::atomic::AtomicU16,
    u32 => std::sync::atomic::AtomicU32,
    u64 => std::sync::atomic::AtomicU64,
    usize => std::sync::atomic::AtomicUsize,
    i8 => std::sync::atomic::AtomicI8,
    i16 => std::sync::atomic::AtomicI16,
    i32 => std::sync::atomic::AtomicI32,
    i64 => std::sync::atomic::AtomicI64,
    isize => std::sync::atomic::AtomicIsize,
);

/// One plain-old-data value in shared memory, with a robust process lock: Python's
/// `multiprocessing.Value`, and atomic operations without the lock for integer types.
///
/// `T` is any [`bytemuck::Pod`] type: integers, floats, `#[repr(C)]` structs of them. Every
/// process must use the same `T`: [`open`](Value::open) checks its name, size and alignment.
/// A handle travels to a child process (in conveyor-process arguments) as its name, and the
/// child opens it. Handles are cheap to clone; the segment is removed when the last handle in
/// the last process goes (as for [`ShmQueue`](crate::ShmQueue)).
///
/// ```
/// use conveyor_shm::Value;
///
/// let counter = Value::new(0u64)?;
/// let other: Value<u64> = Value::open(counter.name())?; // as another process would
/// {
///     let mut guard = counter.get_lock()?; // Python's `with v.get_lock(): v.value += 1`
///     let n = guard.get();
///     guard.set(n + 1);
/// }
/// other.fetch_add(2); // atomic, no lock
/// assert_eq!(counter.get()?, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Value<T: Pod> {
    seg: Arc<PodSegment>,
    _t: PhantomData<T>,
}

impl<T: Pod> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            seg: self.seg.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Pod> Value<T> {
    /// A value holding `init`, under a fresh name.
    pub fn new(init: T) -> Result<Value<T>, ShmError> {
        Value::make(None, init)
    }

    /// A value holding `init`, called `name` (fails if it exists).
    pub fn create(name: &str, init: T) -> Result<Value<T>, ShmError> {
        Value::make(Some(name), init)
    }

    fn make(name: Option<&str>, init: T) -> Result<Value<T>, ShmError> {
        let seg = PodSegment::create(name, "value", VALUE_MAGIC, 1, Some(&[init]))?;
        Ok(Value {
            seg: Arc::new(seg),
            _t: PhantomData,
        })
    }

    /// Opens the value called `name`, created by this or another process with the same `T`:
    /// [`ShmError::BadMagic`] if it is another kind of segment, [`ShmError::SizeMismatch`]
    /// or [`ShmError::TypeMismatch`] if it holds another type.
    pub fn open(name: &str) -> Result<Value<T>, ShmError> {
        let seg = PodSegment::open::<T>(name, VALUE_MAGIC, "value")?;
        if seg.len() != 1 {
            return Err(ShmError::corrupt(
                name,
                format!("a value segment holds {} elements, not 1", seg.len()),
            ));
        }
        Ok(Value {
            seg: Arc::new(seg),
            _t: PhantomData,
        })
    }

    /// The segment's name: what another process passes to [`open`](Self::open).
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// The value, read under the lock (Python's `v.value`).
    pub fn get(&self) -> Result<T, LockError> {
        Ok(self.get_lock()?.get())
    }

    /// Sets the value under the lock (Python's `v.value = x`).
    pub fn set(&self, v: T) -> Result<(), LockError> {
        self.get_lock()?.set(v);
        Ok(())
    }

    /// Takes the value's lock (Python's `with v.get_lock():`), blocking while another thread
    /// or process holds it. The lock is recursive: this thread may take it again, or call
    /// [`get`](Self::get) and [`set`](Self::set), while holding the guard.
    pub fn get_lock(&self) -> Result<ValueGuard<'_, T>, LockError> {
        let died = self.seg.state().acquire(self.seg.name())?;
        Ok(ValueGuard::new(self, died))
    }

    /// Takes the lock, waiting at most `timeout` (Python's `get_lock().acquire(timeout=t)`);
    /// `None` if it stayed held all that time. The same shape as [`Lock::acquire_timeout`].
    ///
    /// [`Lock::acquire_timeout`]: crate::Lock::acquire_timeout
    pub fn get_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ValueGuard<'_, T>>, LockError> {
        let taken = self.seg.state().acquire_timeout(self.seg.name(), timeout)?;
        Ok(taken.map(|died| ValueGuard::new(self, died)))
    }

    /// How many times a process died holding the lock and it was recovered.
    pub fn recoveries(&self) -> u64 {
        self.seg.state().recoveries()
    }
}

impl<T: AtomicInt> Value<T> {
    /// The value, read atomically without the lock.
    pub fn load(&self) -> T {
        // SAFETY: the data is one live, 64-aligned T of an integer type (1 to 8 bytes), which
        // every access of this crate touches with an atomic of its size (see the module docs).
        unsafe { load(self.seg.data(), Ordering::SeqCst) }
    }

    /// Adds `v` atomically, without the lock, wrapping on overflow; returns the previous value.
    pub fn fetch_add(&self, v: T) -> T {
        // SAFETY: as in `load`.
        unsafe { T::fetch_add(self.seg.data(), v) }
    }

    /// Subtracts `v` atomically, without the lock, wrapping on overflow; returns the previous
    /// value.
    pub fn fetch_sub(&self, v: T) -> T {
        // SAFETY: as in `load`.
        unsafe { T::fetch_sub(self.seg.data(), v) }
    }

    /// Stores `v` atomically, without the lock; returns the previous value.
    pub fn swap(&self, v: T) -> T {
        // SAFETY: as in `load`.
        unsafe { T::swap(self.seg.data(), v) }
    }

    /// Stores `new` if the value is `current`, atomically, without the lock: `Ok(previous)`
    /// if it was stored, `Err(actual)` if not.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        // SAFETY: as in `load`.
        unsafe { T::compare_exchange(self.seg.data(), current, new) }
    }
}

/// Holds a [`Value`]'s lock until dropped, and reads and writes the value meanwhile. It cannot
/// be sent to another thread (a pthread mutex is released by the thread that took it).
pub struct ValueGuard<'a, T: Pod> {
    value: &'a Value<T>,
    previous_owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: Pod> ValueGuard<'a, T> {
    fn new(value: &'a Value<T>, previous_owner_died: bool) -> Self {
        ValueGuard {
            value,
            previous_owner_died,
            _not_send: PhantomData,
        }
    }

    /// The value.
    pub fn get(&self) -> T {
        // SAFETY: the data is one live, 64-aligned T; this thread holds the lock, so a value
        // of a size without atomics is touched by nobody else, and one with atomics only by
        // atomics of its size.
        unsafe { load(self.value.seg.data(), Ordering::Relaxed) }
    }

    /// Sets the value.
    pub fn set(&mut self, v: T) {
        // SAFETY: as in `get`.
        unsafe { store(self.value.seg.data(), v, Ordering::Relaxed) }
    }

    /// Whether the previous holder died holding the lock: the value may be half-updated (for
    /// a struct of several fields) and should be checked before use.
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }
}

impl<T: Pod> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        self.value.seg.state().release(self.value.seg.name());
    }
}

impl<T: Pod> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard")
            .field("value", &self.value.name())
            .field("previous_owner_died", &self.previous_owner_died)
            .finish()
    }
}

impl<T: Pod> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("name", &self.name())
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

/// Travels (for example into a conveyor-process child's arguments) as its name; the
/// receiving side opens the segment.
impl<T: Pod> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name().serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Value::open(&name).map_err(serde::de::Error::custom)
    }
}
