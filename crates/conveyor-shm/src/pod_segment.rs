//! The segment behind [`Value`](crate::Value) and [`Array`](crate::Array): a header with a
//! robust process lock, then `len` elements of a plain-old-data type.
//!
//! ```text
//! offset  size        what
//!      0   256        Common: magic (CONVVALU or CONVARRY), version, sizes, creator pid,
//!                     fingerprint of the element type, attach table
//!    256   128        LockState: a robust, process-shared, recursive mutex; recovery count
//!    384    64        Shape: element size, element alignment, element count
//!    448   len*size   the elements (448 is a multiple of 64, so any alignment up to 64 holds)
//! ```
//!
//! Invariants: the shape is written by the creator before the magic is published and never
//! changes; `Common::total_len == DATA_OFFSET + len * elem_size`; `Common::fingerprint` is
//! [`fingerprint::<T>()`] of the element type. Elements are read and written under the lock,
//! and (for a [`Value`](crate::Value) of an integer type) by atomics of the element's own
//! size, never by accesses of another size (see `value.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use bytemuck::Pod;

use crate::error::ShmError;
use crate::lock::LockState;
use crate::robust::MutexKind;
use crate::segment::{anonymous_name, fnv1a, Common, Segment};

/// The magic of a [`Value`](crate::Value) segment.
pub(crate) const VALUE_MAGIC: u64 = u64::from_le_bytes(*b"CONVVALU");
/// The magic of an [`Array`](crate::Array) segment.
pub(crate) const ARRAY_MAGIC: u64 = u64::from_le_bytes(*b"CONVARRY");

/// The element type's shape, as the creator wrote it.
#[repr(C, align(64))]
pub(crate) struct Shape {
    pub(crate) elem_size: AtomicU64,
    pub(crate) elem_align: AtomicU64,
    pub(crate) len: AtomicU64,
}

/// The header of a value or array segment; the elements follow at [`DATA_OFFSET`].
#[repr(C)]
pub(crate) struct PodHeader {
    pub(crate) common: Common,
    pub(crate) state: LockState,
    pub(crate) shape: Shape,
}

/// Where the elements start.
pub(crate) const DATA_OFFSET: usize = std::mem::size_of::<PodHeader>();
const _: () = assert!(DATA_OFFSET == 448 && DATA_OFFSET % 64 == 0);

/// The fingerprint of an element type: its name, size and alignment.
pub(crate) fn fingerprint<T>() -> u64 {
    fnv1a(&[
        std::any::type_name::<T>().as_bytes(),
        &(std::mem::size_of::<T>() as u64).to_le_bytes(),
        &(std::mem::align_of::<T>() as u64).to_le_bytes(),
    ])
}

/// A mapped value or array segment of `len` elements of `elem_size` bytes.
#[derive(Debug)]
pub(crate) struct PodSegment {
    seg: Segment,
    len: usize,
}

// SAFETY: the mapping lives as long as `seg`; the header holds atomics and a pthread mutex
// made for concurrent use, and the elements are only touched under the lock or by atomics.
unsafe impl Send for PodSegment {}
// SAFETY: as above.
unsafe impl Sync for PodSegment {}

impl PodSegment {
    /// Creates a segment of `len` elements (`name`, or a fresh one with `tag`) holding a copy
    /// of `init` (whose length is then `len`), or zeroed if `init` is `None`.
    pub(crate) fn create<T: Pod>(
        name: Option<&str>,
        tag: &str,
        magic: u64,
        len: usize,
        init: Option<&[T]>,
    ) -> Result<PodSegment, ShmError> {
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| anonymous_name(tag));
        let size = std::mem::size_of::<T>();
        if std::mem::align_of::<T>() > 64 {
            return Err(ShmError::InvalidOption(format!(
                "{}: an alignment over 64 bytes is not supported",
                std::any::type_name::<T>()
            )));
        }
        let total = len
            .checked_mul(size)
            .and_then(|b| b.checked_add(DATA_OFFSET))
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| {
                ShmError::InvalidOption(format!(
                    "{len} elements of {size} bytes do not fit in memory"
                ))
            })?;
        let bytes: &[u8] = match init {
            Some(init) if init.len() == len => bytemuck::cast_slice(init),
            Some(_) => {
                return Err(ShmError::InvalidOption(
                    "the initial elements are not as many as the length".into(),
                ))
            }
            // The new mapping is zeroed already.
            None => &[],
        };
        let seg = Segment::create(
            &name,
            total,
            magic,
            DATA_OFFSET,
            fingerprint::<T>(),
            |base| {
                // SAFETY: the mapping is `total` bytes, page aligned and zeroed, and nobody else
                // sees it before the magic is published: the header fields and the
                // `bytes.len() <= total - DATA_OFFSET` bytes at DATA_OFFSET are ours to write.
                unsafe {
                    let h = base as *mut PodHeader;
                    LockState::init(std::ptr::addr_of_mut!((*h).state), MutexKind::Recursive)?;
                    let shape = &(*h).shape;
                    shape.elem_size.store(size as u64, Ordering::Relaxed);
                    shape
                        .elem_align
                        .store(std::mem::align_of::<T>() as u64, Ordering::Relaxed);
                    shape.len.store(len as u64, Ordering::Relaxed);
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        base.add(DATA_OFFSET),
                        bytes.len(),
                    );
                }
                Ok(())
            },
        )?;
        Ok(PodSegment { seg, len })
    }

    /// Opens the segment `name` of kind `magic` and checks that it holds elements of type `T`.
    pub(crate) fn open<T: Pod>(
        name: &str,
        magic: u64,
        what: &'static str,
    ) -> Result<PodSegment, ShmError> {
        let seg = Segment::open(name, magic, what, DATA_OFFSET)?;
        // SAFETY: Segment::open checked that the mapping is at least DATA_OFFSET bytes (the
        // header size) and initialised; the fields read are atomics.
        let shape = unsafe { &(*(seg.base() as *const PodHeader)).shape };
        let size = shape.elem_size.load(Ordering::Relaxed);
        if size != std::mem::size_of::<T>() as u64 {
            return Err(ShmError::SizeMismatch {
                name: name.to_string(),
                what: "bytes per element",
                expected: std::mem::size_of::<T>() as u64,
                found: size,
            });
        }
        let found = seg.common().fingerprint.load(Ordering::Relaxed);
        let expected = fingerprint::<T>();
        if found != expected {
            return Err(ShmError::TypeMismatch {
                name: name.to_string(),
                type_name: std::any::type_name::<T>(),
                expected,
                found,
            });
        }
        let len = shape.len.load(Ordering::Relaxed);
        let want = len
            .checked_mul(size)
            .and_then(|b| b.checked_add(DATA_OFFSET as u64));
        if want != Some(seg.len() as u64) {
            return Err(ShmError::corrupt(
                name,
                format!(
                    "{len} elements of {size} bytes do not fill the {} bytes after the header",
                    seg.len().saturating_sub(DATA_OFFSET)
                ),
            ));
        }
        Ok(PodSegment {
            seg,
            // It fits: len * size <= the mapping's length.
            len: len as usize,
        })
    }

    /// The number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The segment's name.
    pub(crate) fn name(&self) -> &str {
        self.seg.name()
    }

    /// The lock.
    pub(crate) fn state(&self) -> &LockState {
        // SAFETY: create/open checked the mapping holds an initialised PodHeader; it lives as
        // long as `self`.
        unsafe { &(*(self.seg.base() as *const PodHeader)).state }
    }

    /// The first element: `len()` elements of the segment's type follow, aligned to 64.
    pub(crate) fn data(&self) -> *mut u8 {
        // SAFETY: DATA_OFFSET is inside the mapping (open/create checked its length).
        unsafe { self.seg.base().add(DATA_OFFSET) }
    }
}
