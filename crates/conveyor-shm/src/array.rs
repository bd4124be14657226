//! [`Array<T>`]: a fixed-length array of plain-old-data elements in shared memory, Python's
//! `multiprocessing.Array(typecode, init)` with its lock.
//!
//! Every access takes the array's lock (a robust, process-shared, recursive mutex, as
//! Python's `Array` has an `RLock`): element reads and writes, and the copies of ranges in
//! and out, which are one `memcpy` under the lock. Since the elements are only ever touched
//! under the lock, those copies never race with another access. Hold
//! [`get_lock`](Array::get_lock)'s guard to make several accesses one atomic step.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{LockError, ShmError};
use crate::pod_segment::{PodSegment, ARRAY_MAGIC};

/// Why an [`Array`] access failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ArrayError {
    /// The elements asked for are not all inside the array.
    #[error(
        "elements {start}..{start}+{count} are outside the array of {len} elements: \
         check the index against len()"
    )]
    OutOfRange {
        /// The first element asked for.
        start: usize,
        /// How many.
        count: usize,
        /// The array's length.
        len: usize,
    },
    /// The lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

conveyor_core::debug_shows_message!(ArrayError {
    OutOfRange { start, count, len },
    Lock(e),
});

/// A fixed-length array of plain-old-data elements in shared memory, with a robust process
/// lock: Python's `multiprocessing.Array`.
///
/// `T` is any [`bytemuck::Pod`] type. Every process must use the same `T`:
/// [`open`](Array::open) checks its name, size and alignment, and takes the length from the
/// segment. A handle travels to a child process (in conveyor-process arguments) as its name.
/// The segment is removed when the last handle in the last process goes.
///
/// ```
/// use conveyor_shm::Array;
///
/// let a = Array::new(&[1.5f64, 2.5, 3.5])?;
/// let other: Array<f64> = Array::open(a.name())?; // as another process would
/// other.set(1, 20.0)?;
/// assert_eq!(a.to_vec()?, vec![1.5, 20.0, 3.5]);
/// {
///     let mut guard = a.get_lock()?; // several accesses as one step
///     let sum: f64 = guard.to_vec().iter().sum();
///     guard.set(0, sum)?;
/// }
/// let mut out = [0.0; 2];
/// a.read(1, &mut out)?;
/// assert_eq!(out, [20.0, 3.5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Array<T: Pod> {
    seg: Arc<PodSegment>,
    _t: PhantomData<T>,
}

impl<T: Pod> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            seg: self.seg.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Pod> Array<T> {
    /// An array holding a copy of `init`, under a fresh name.
    pub fn new(init: &[T]) -> Result<Array<T>, ShmError> {
        Array::make(None, init)
    }

    /// An array of `len` zeroed elements, under a fresh name (Python's `Array('d', 10)`).
    pub fn zeroed(len: usize) -> Result<Array<T>, ShmError> {
        let seg = PodSegment::create::<T>(None, "array", ARRAY_MAGIC, len, None)?;
        Ok(Array {
            seg: Arc::new(seg),
            _t: PhantomData,
        })
    }

    /// An array holding a copy of `init`, called `name` (fails if it exists).
    pub fn create(name: &str, init: &[T]) -> Result<Array<T>, ShmError> {
        Array::make(Some(name), init)
    }

    fn make(name: Option<&str>, init: &[T]) -> Result<Array<T>, ShmError> {
        let seg = PodSegment::create(name, "array", ARRAY_MAGIC, init.len(), Some(init))?;
        Ok(Array {
            seg: Arc::new(seg),
            _t: PhantomData,
        })
    }

    /// Opens the array called `name`, created by this or another process with the same `T`:
    /// [`ShmError::BadMagic`] if it is another kind of segment, [`ShmError::SizeMismatch`] or
    /// [`ShmError::TypeMismatch`] if it holds another type.
    pub fn open(name: &str) -> Result<Array<T>, ShmError> {
        let seg = PodSegment::open::<T>(name, ARRAY_MAGIC, "array")?;
        Ok(Array {
            seg: Arc::new(seg),
            _t: PhantomData,
        })
    }

    /// Opens the array called `name` and checks that it has `len` elements
    /// ([`ShmError::SizeMismatch`] otherwise).
    pub fn open_exact(name: &str, len: usize) -> Result<Array<T>, ShmError> {
        let a = Array::open(name)?;
        if a.len() != len {
            return Err(ShmError::SizeMismatch {
                name: name.to_string(),
                what: "elements",
                expected: len as u64,
                found: a.len() as u64,
            });
        }
        Ok(a)
    }

    /// The segment's name: what another process passes to [`open`](Self::open).
    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.seg.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`, read under the lock.
    pub fn get(&self, index: usize) -> Result<T, ArrayError> {
        self.get_lock()?.get(index)
    }

    /// Sets the element at `index` under the lock.
    pub fn set(&self, index: usize, v: T) -> Result<(), ArrayError> {
        self.get_lock()?.set(index, v)
    }

    /// Copies `out.len()` elements starting at `start` into `out`, under the lock.
    pub fn read(&self, start: usize, out: &mut [T]) -> Result<(), ArrayError> {
        self.get_lock()?.read(start, out)
    }

    /// Copies `data` into the array starting at `start`, under the lock.
    pub fn write(&self, start: usize, data: &[T]) -> Result<(), ArrayError> {
        self.get_lock()?.write(start, data)
    }

    /// A copy of every element, taken under the lock.
    pub fn to_vec(&self) -> Result<Vec<T>, ArrayError> {
        Ok(self.get_lock()?.to_vec())
    }

    /// Takes the array's lock, blocking while another thread or process holds it. The lock is
    /// recursive: this thread may take it again, or call the other methods, while holding it.
    pub fn get_lock(&self) -> Result<ArrayGuard<'_, T>, LockError> {
        let died = self.seg.state().acquire(self.seg.name())?;
        Ok(ArrayGuard::new(self, died))
    }

    /// Takes the lock, waiting at most `timeout` (Python's `get_lock().acquire(timeout=t)`);
    /// `None` if it stayed held all that time. The same shape as [`Lock::acquire_timeout`].
    ///
    /// [`Lock::acquire_timeout`]: crate::Lock::acquire_timeout
    pub fn get_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<ArrayGuard<'_, T>>, LockError> {
        let taken = self.seg.state().acquire_timeout(self.seg.name(), timeout)?;
        Ok(taken.map(|died| ArrayGuard::new(self, died)))
    }

    /// How many times a process died holding the lock and it was recovered.
    pub fn recoveries(&self) -> u64 {
        self.seg.state().recoveries()
    }
}

/// Holds an [`Array`]'s lock until dropped, and reads and writes the elements meanwhile. It
/// cannot be sent to another thread.
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
    previous_owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl<'a, T: Pod> ArrayGuard<'a, T> {
    fn new(array: &'a Array<T>, previous_owner_died: bool) -> Self {
        ArrayGuard {
            array,
            previous_owner_died,
            _not_send: PhantomData,
        }
    }

    fn check(&self, start: usize, count: usize) -> Result<*mut T, ArrayError> {
        let len = self.array.len();
        match start.checked_add(count) {
            // SAFETY: `start <= len`, so the pointer stays inside (or one past) the elements.
            Some(end) if end <= len => Ok(unsafe { (self.array.seg.data() as *mut T).add(start) }),
            _ => Err(ArrayError::OutOfRange { start, count, len }),
        }
    }

    /// The element at `index`.
    pub fn get(&self, index: usize) -> Result<T, ArrayError> {
        let p = self.check(index, 1)?;
        // SAFETY: `p` is an element inside the array (checked), aligned (the data is
        // 64-aligned and elements are `size_of::<T>()` apart); this thread holds the lock and
        // every access to the elements takes it, so nobody writes it meanwhile.
        Ok(unsafe { std::ptr::read(p) })
    }

    /// Sets the element at `index`.
    pub fn set(&mut self, index: usize, v: T) -> Result<(), ArrayError> {
        let p = self.check(index, 1)?;
        // SAFETY: as in `get`: nobody else accesses the element while this thread holds the
        // lock.
        unsafe { std::ptr::write(p, v) };
        Ok(())
    }

    /// Copies `out.len()` elements starting at `start` into `out`.
    pub fn read(&self, start: usize, out: &mut [T]) -> Result<(), ArrayError> {
        let p = self.check(start, out.len())?;
        // SAFETY: the range is inside the array (checked); `out` is this process's memory,
        // distinct from the mapping; the lock excludes every other access to the elements.
        unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copies `data` into the array starting at `start`.
    pub fn write(&mut self, start: usize, data: &[T]) -> Result<(), ArrayError> {
        let p = self.check(start, data.len())?;
        // SAFETY: as in `read`, the other way.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        Ok(())
    }

    /// A copy of every element.
    pub fn to_vec(&self) -> Vec<T> {
        let mut v = vec![T::zeroed(); self.array.len()];
        // The whole array is always in range.
        let _ = self.read(0, &mut v);
        v
    }

    /// Whether the previous holder died holding the lock: the elements may be half-updated.
    pub fn previous_owner_died(&self) -> bool {
        self.previous_owner_died
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        self.array.seg.state().release(self.array.seg.name());
    }
}

impl<T: Pod> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard")
            .field("array", &self.array.name())
            .field("previous_owner_died", &self.previous_owner_died)
            .finish()
    }
}

impl<T: Pod> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("name", &self.name())
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len())
            .finish()
    }
}

/// Travels (for example into a conveyor-process child's arguments) as its name; the
/// receiving side opens the segment.
impl<T: Pod> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name().serialize(s)
    }
}

impl<'de, T: Pod> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Array::open(&name).map_err(serde::de::Error::custom)
    }
}
