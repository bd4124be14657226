//! [`SharedMemory`]: a named block of bytes shared between processes, Python's
//! `multiprocessing.shared_memory.SharedMemory`, under the same names.
//!
//! The user-facing documentation (naming, lifetime, Python's resource tracker, access) is on
//! [`SharedMemory`] itself.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use memmap2::MmapRaw;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ShmError;
use crate::segment::{create_file, name_state, open_file, shm_dir, validate_shm_name, NameState};

/// The extended attribute in which conveyor records a block's creator: `"<pid> <unlink>"`,
/// `unlink` being 1 once the creator asked for removal when its last handle goes.
pub(crate) const OWNER_XATTR: &str = "user.conveyor.owner";

/// Why an access to a [`SharedMemory`] block was refused.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The bytes asked for are not all inside the block.
    #[error(
        "bytes {offset}..{offset}+{len} are outside the block of {size} bytes: \
         check the offset and length against size()"
    )]
    OutOfRange {
        /// The first byte asked for.
        offset: usize,
        /// How many bytes.
        len: usize,
        /// The block's size.
        size: usize,
    },
    /// An atomic word was asked for at an offset that is not a multiple of its size.
    #[error("offset {offset} is not a multiple of {align}: atomic words must be aligned")]
    Misaligned {
        /// The offset asked for.
        offset: usize,
        /// The alignment the word needs.
        align: usize,
    },
}

conveyor_core::debug_shows_message!(AccessError {
    OutOfRange { offset, len, size },
    Misaligned { offset, align },
});

/// A named block of bytes in shared memory: Python's
/// `multiprocessing.shared_memory.SharedMemory`, under the same names.
///
/// Handles are cheap to clone (they share one mapping); it travels to a child process (in
/// conveyor-process arguments) as its name, and the child opens it.
///
/// # Names, sizes and modes, as Python has them
///
/// On Linux, Python's `SharedMemory(name="block")` calls `shm_open("/block")`, which is the
/// file `/dev/shm/block`: a name without a leading slash gets one, and the file is the name
/// without it. Python creates the file with `O_CREAT | O_EXCL` and mode 0600, sizes it with
/// `ftruncate(size)` (a size of 0 is refused), and an opener takes the size from the file
/// (`fstat`): there is no header, byte 0 of the block is byte 0 of the file, and the size is
/// exactly what the creator asked for (Linux rounds nothing; macOS rounds up to a page).
/// [`SharedMemory`] does the same in [`shm_dir`](crate::shm_dir) (`/dev/shm`, unless
/// `$CONVEYOR_SHM_DIR` moves it, which Python does not follow), so a block that either side
/// creates opens on the other by name, and the bytes are shared live.
///
/// Python's anonymous names look like `psm_1a2b3c4d`; [`SharedMemory::new`] makes names of
/// the same form.
///
/// # Lifetime: close and unlink
///
/// As in Python, a block lives until its name is removed ([`SharedMemory::unlink`]) and the
/// last mapping goes: dropping a handle only unmaps it (Python's `close()`). The creator can
/// ask for the name to be removed when this process's last handle goes
/// ([`SharedMemory::unlink_on_drop`]); such a block whose creator was killed before that and
/// that no process maps any more is *leaked*, and [`remove_leaked`](crate::remove_leaked)
/// (`conveyor shm clean`) removes it. A block created without that request is meant to
/// outlive its creator, as Python's are, and is never called leaked: remove it with
/// [`remove_segment`](crate::remove_segment) (`conveyor shm rm NAME`). conveyor records the
/// creator's pid and that request in an extended attribute of the file
/// (`user.conveyor.owner`; Python never sees it); where the file system keeps no extended
/// attributes, the block is simply not listed, and neither is a block Python created (it
/// carries no such record; conveyor does not claim it).
///
/// # Python's resource tracker
///
/// Python 3.8 to 3.12 register every `SharedMemory` they create *or open* with the
/// `multiprocessing` resource tracker, and when the Python program ends the tracker unlinks
/// every block still registered, with a warning about "leaked shared_memory objects": a
/// Python program that merely opens a block a Rust program created removes its name when it
/// exits (CPython issue gh-82300), and later `open`s in Rust fail with
/// [`ShmError::NotFound`]. To avoid it:
///
/// - on Python 3.13 and later, open with `SharedMemory(name, track=False)`;
/// - on older versions, unregister after opening:
///   `resource_tracker.unregister(shm._name, "shared_memory")` (from
///   `multiprocessing import resource_tracker`), and let the creator (or the Rust side)
///   unlink it.
///
/// A block that Python *creates* is meant to be unlinked by Python (`shm.unlink()`); its
/// tracker also unlinks it if the creating program ends without doing so, even while a Rust
/// process still maps it (the mapping keeps working; new `open`s fail).
///
/// # Accessing the bytes
///
/// The safe interface copies: [`read`](SharedMemory::read) / [`write`](SharedMemory::write)
/// and [`to_vec`](SharedMemory::to_vec), bounds-checked; and atomics over aligned words
/// ([`atomic_u64`](SharedMemory::atomic_u64), [`atomic_u32`](SharedMemory::atomic_u32)) for
/// what several processes change at once. A copy that races with another process's write of
/// the same bytes may see a mix of old and new bytes (torn), never anything else; coordinate
/// with the atomics, a [`Lock`](crate::Lock), or a queue. The raw views,
/// [`as_slice`](SharedMemory::as_slice) and [`as_mut_slice`](SharedMemory::as_mut_slice),
/// are `unsafe`: Rust references promise that nobody changes the bytes (or, for `&mut`, even
/// reads them) while they live, which only the caller can make true of memory other
/// processes map.
///
/// # Example
///
/// ```
/// use conveyor_shm::SharedMemory;
///
/// let block = SharedMemory::new(16)?; // a fresh name, as Python's SharedMemory(create=True)
/// let other = SharedMemory::open(block.name())?; // as another process would
/// other.write(0, b"hello")?;
/// let mut buf = [0u8; 5];
/// block.read(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// other.atomic_u64(8)?.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
/// assert_eq!(block.atomic_u64(8)?.load(std::sync::atomic::Ordering::SeqCst), 1);
/// block.unlink()?; // Python's unlink(): the name goes; the mappings stay usable
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedMemory {
    inner: Arc<Inner>,
}

struct Inner {
    /// The name without a leading `/`, as Python's `SharedMemory.name` reports it.
    name: String,
    path: PathBuf,
    map: MmapRaw,
    /// The file's device and inode: the name may be unlinked and given to another block.
    id: (u64, u64),
    /// Remove the name when this process's last handle goes.
    unlink_on_drop: AtomicBool,
    file: File,
    /// For a block this process created: listed among what it holds (see
    /// `conveyor_core::held`), so that a child that would create it again before `init` is
    /// stopped.
    _held: Option<conveyor_core::held::Held>,
}

impl SharedMemory {
    /// Creates a block of `size` bytes (zeroed) with a fresh name of Python's form
    /// (`psm_` and hex digits).
    pub fn new(size: usize) -> Result<SharedMemory, ShmError> {
        loop {
            match SharedMemory::create(&fresh_name(), size) {
                Err(ShmError::AlreadyExists(_)) => continue,
                other => return other,
            }
        }
    }

    /// Creates the block `name` of `size` bytes, zeroed, mode 0600: Python's
    /// `SharedMemory(name, create=True, size=size)`. Fails with
    /// [`ShmError::AlreadyExists`] if the name is taken, [`ShmError::InvalidName`] for a
    /// name `shm_open` refuses, and [`ShmError::InvalidOption`] for a size of 0.
    pub fn create(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        let bare = validate_shm_name(name)?;
        if size == 0 {
            return Err(ShmError::InvalidOption(format!(
                "shared memory {bare:?}: the size must be at least 1 byte (Python refuses 0 too)"
            )));
        }
        let path = shm_dir().join(bare);
        let file = create_file(bare, &path)?;
        let built = (|| {
            file.set_len(size as u64)?;
            let map = MmapRaw::map_raw(&file)?;
            if map.len() != size {
                return Err(io::Error::other("the mapping has the wrong length"));
            }
            let meta = file.metadata()?;
            Ok((map, (meta.dev(), meta.ino())))
        })();
        let (map, id) = match built {
            Ok(built) => built,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(ShmError::io(bare, e));
            }
        };
        let held = Some(crate::segment::held(&path));
        let block = SharedMemory::from_parts(bare, path, map, id, file, held);
        block.record_owner(false);
        tracing::debug!(segment = bare, size, "created shared memory");
        Ok(block)
    }

    /// Opens the block `name`, created by this or another process (a Python one included),
    /// and maps all of it: Python's `SharedMemory(name)`. Its size is the file's.
    pub fn open(name: &str) -> Result<SharedMemory, ShmError> {
        let bare = validate_shm_name(name)?;
        let path = shm_dir().join(bare);
        let file = open_file(bare, &path)?;
        let meta = file.metadata().map_err(|e| ShmError::io(bare, e))?;
        if !meta.is_file() {
            return Err(ShmError::corrupt(bare, "it is not a regular file"));
        }
        if meta.len() == 0 {
            return Err(ShmError::Truncated {
                name: bare.to_string(),
                expected: 1,
                actual: 0,
            });
        }
        let len = usize::try_from(meta.len()).map_err(|_| {
            ShmError::corrupt(bare, format!("{} bytes do not fit in memory", meta.len()))
        })?;
        let map = MmapRaw::map_raw(&file).map_err(|e| ShmError::io(bare, e))?;
        if map.len() != len {
            return Err(ShmError::io(
                bare,
                io::Error::other("the mapping has the wrong length"),
            ));
        }
        tracing::debug!(segment = bare, size = len, "opened shared memory");
        Ok(SharedMemory::from_parts(
            bare,
            path,
            map,
            (meta.dev(), meta.ino()),
            file,
            None,
        ))
    }

    /// Opens the block `name` and checks that it is `size` bytes long:
    /// [`ShmError::SizeMismatch`] otherwise.
    pub fn open_exact(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        let block = SharedMemory::open(name)?;
        if block.size() != size {
            return Err(ShmError::SizeMismatch {
                name: block.name().to_string(),
                what: "bytes",
                expected: size as u64,
                found: block.size() as u64,
            });
        }
        Ok(block)
    }

    fn from_parts(
        name: &str,
        path: PathBuf,
        map: MmapRaw,
        id: (u64, u64),
        file: File,
        held: Option<conveyor_core::held::Held>,
    ) -> Self {
        SharedMemory {
            inner: Arc::new(Inner {
                name: name.to_string(),
                path,
                map,
                id,
                unlink_on_drop: AtomicBool::new(false),
                file,
                _held: held,
            }),
        }
    }

    /// Records this process as the block's creator, and whether it will remove the name.
    fn record_owner(&self, unlink: bool) {
        let value = format!("{} {}", std::process::id(), u8::from(unlink));
        if let Err(e) = rustix::fs::fsetxattr(
            self.inner.file.as_fd(),
            OWNER_XATTR,
            value.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        ) {
            tracing::debug!(
                segment = self.name(),
                error = %e,
                "no extended attributes here: the block will not be listed"
            );
        }
    }

    /// The name, without a leading `/`: what Python's `SharedMemory.name` says, and what
    /// another process passes to [`open`](Self::open).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The file behind the block.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The block's size in bytes.
    pub fn size(&self) -> usize {
        self.inner.map.len()
    }

    /// The start of the mapping. Using it is `unsafe` as for any raw pointer: the bytes may
    /// change at any time (other processes write them), and only `size()` of them are mapped.
    pub fn as_ptr(&self) -> *mut u8 {
        self.inner.map.as_mut_ptr()
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(AccessError::OutOfRange {
                offset,
                len,
                size: self.size(),
            }),
        }
    }

    /// Copies `buf.len()` bytes from offset `offset` into `buf`.
    ///
    /// A write by another process to the same bytes during the copy may leave `buf` with a
    /// mix of old and new bytes.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.check(offset, buf.len())?;
        // SAFETY: `offset..offset + buf.len()` lies inside the mapping (checked above), which
        // lives as long as `self`; `buf` is a distinct local buffer, so the two do not
        // overlap. No reference to the shared bytes is formed: they are read through a raw
        // pointer, so another process writing them meanwhile yields unspecified bytes in
        // `buf` (the documented torn read), not a broken Rust invariant.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copies `data` into the block at offset `offset`.
    ///
    /// Another process reading the same bytes during the copy may see a mix of old and new.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        self.check(offset, data.len())?;
        // SAFETY: the destination lies inside the writable shared mapping (checked above),
        // alive as long as `self`; `data` is ordinary memory of this process, so they do not
        // overlap. No reference to the shared bytes is formed (see `read`).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// A copy of the whole block.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.size()];
        // The whole block is always in range.
        let _ = self.read(0, &mut v);
        v
    }

    /// The 64-bit word at `offset` (a multiple of 8), to be changed atomically by every
    /// process that shares it.
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64, AccessError> {
        self.check(offset, 8)?;
        if offset % 8 != 0 {
            return Err(AccessError::Misaligned { offset, align: 8 });
        }
        // SAFETY: 8 bytes at `offset` lie inside the mapping (checked), which is page aligned,
        // so `offset % 8 == 0` makes the address 8-aligned; AtomicU64 has the size and
        // alignment of u64 and every bit pattern is valid; the reference lives no longer than
        // `self`, hence the mapping. Shared mutation through an atomic is what it is for.
        Ok(unsafe { &*(self.as_ptr().add(offset) as *const AtomicU64) })
    }

    /// The 32-bit word at `offset` (a multiple of 4), to be changed atomically by every
    /// process that shares it.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32, AccessError> {
        self.check(offset, 4)?;
        if offset % 4 != 0 {
            return Err(AccessError::Misaligned { offset, align: 4 });
        }
        // SAFETY: as in `atomic_u64`, for a 4-byte, 4-aligned word.
        Ok(unsafe { &*(self.as_ptr().add(offset) as *const AtomicU32) })
    }

    /// The whole block as a byte slice.
    ///
    /// # Safety
    ///
    /// While the slice lives, no thread or process may write any byte of the block (by
    /// [`write`](Self::write), an atomic, a raw pointer, or a Python `buf[...] = ...`). The
    /// caller must ensure it, for example by a protocol in which writers have finished (and
    /// said so through an atomic with `Release`, read here with `Acquire`) before readers
    /// look.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is `size()` bytes, readable, alive as long as `self`; the caller
        // promises nobody writes the bytes while the slice lives.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.size()) }
    }

    /// The whole block as a mutable byte slice.
    ///
    /// # Safety
    ///
    /// While the slice lives, no other thread or process may read or write any byte of the
    /// block, through this handle, another handle, another mapping or Python, and this
    /// method must not be called again for the same block until it is dropped.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: the mapping is `size()` bytes, writable, alive as long as `self`; the caller
        // promises exclusive access while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.size()) }
    }

    /// Removes the name (Python's `unlink()`): new `open`s fail; the handles already open,
    /// here and elsewhere, keep the mapping. [`ShmError::NotFound`] if the name is already
    /// gone, or was given to another block since this one was opened.
    pub fn unlink(&self) -> Result<(), ShmError> {
        match name_state(&self.inner.path, self.inner.id) {
            NameState::Ours => {
                std::fs::remove_file(&self.inner.path).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => ShmError::NotFound(self.name().to_string()),
                    _ => ShmError::io(self.name(), e),
                })?;
                tracing::debug!(segment = self.name(), "unlinked shared memory");
                Ok(())
            }
            NameState::Gone | NameState::Another => {
                Err(ShmError::NotFound(self.name().to_string()))
            }
        }
    }

    /// Asks for the name to be removed when this process's last handle to the block goes
    /// (if the name still points at this block then). Recorded on the file, so that a block
    /// whose creator is killed first shows as leaked once no process maps it.
    pub fn unlink_on_drop(&self) {
        self.inner.unlink_on_drop.store(true, Ordering::Relaxed);
        self.record_owner(true);
    }
}

/// A fresh name of Python's form: `psm_` and 8 hex digits.
fn fresh_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = crate::segment::fnv1a(&[
        &std::process::id().to_le_bytes(),
        &n.to_le_bytes(),
        &nanos.to_le_bytes(),
    ]);
    format!("psm_{:08x}", seed as u32)
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.unlink_on_drop.load(Ordering::Relaxed) {
            return;
        }
        if let NameState::Ours = name_state(&self.path, self.id) {
            match std::fs::remove_file(&self.path) {
                Ok(()) => tracing::debug!(segment = self.name.as_str(), "unlinked shared memory"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    segment = self.name.as_str(),
                    error = %e,
                    "could not unlink shared memory"
                ),
            }
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name())
            .field("size", &self.size())
            .finish()
    }
}

/// Travels (for example into a conveyor-process child's arguments) as its name; the
/// receiving side opens the block.
impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        SharedMemory::open(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_shm_open() {
        assert_eq!(validate_shm_name("/x").unwrap(), "x");
        assert_eq!(validate_shm_name("psm_1234").unwrap(), "psm_1234");
        for bad in ["", "/", "a/b", "//x", ".", "..", "a\0b"] {
            assert!(
                matches!(validate_shm_name(bad), Err(ShmError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_shm_name(&"x".repeat(255)).is_ok());
        assert!(validate_shm_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn fresh_names_look_like_pythons() {
        let n = fresh_name();
        assert!(n.starts_with("psm_") && n.len() == 12, "{n}");
        assert!(n[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{n}");
    }
}
