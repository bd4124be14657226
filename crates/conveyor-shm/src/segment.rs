//! A named segment: a file under `/dev/shm`, mapped shared, with a common header.
//!
//! Every conveyor segment (a queue, a lock) starts with [`Common`]: its kind's magic number,
//! the layout version, its sizes, the creator's pid, an item-type fingerprint, and a table of
//! the processes attached to it. The table is what lets the last handle unlink the segment and
//! lets [`list_segments`](crate::list_segments) tell a leaked segment from a live one.
//!
//! Creation: `open(O_CREAT | O_EXCL, 0600)`, `ftruncate` to the full size, map, initialise the
//! kind's header, then publish the magic number with a release store. An opener waits (at most
//! a second) for the magic to appear, then validates every field against the file's real length
//! before touching anything else.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::MmapRaw;

use crate::error::ShmError;

/// The layout version written in every header; bumped on any layout change.
pub(crate) const VERSION: u32 = 3;
/// File names of conveyor segments start with this.
pub const FILE_PREFIX: &str = "conveyor-";
/// How many attached processes a segment tracks.
///
/// A process that opens a segment whose 48 slots all hold live pids (a 49th process) still
/// opens it and works normally, but is *untracked*: a warning is logged, its pid is recorded
/// nowhere, and its handles never unlink the segment. So the last *tracked* handle to go
/// unlinks the name and removes the out-of-line files of messages not yet taken even while an
/// untracked process still uses the queue (its mapping keeps working; its gets of those large
/// messages fail), and a segment whose last user is untracked is left behind and listed as
/// leaked once the tracked ones are gone. A slot of a dead process is reused, so only 48
/// processes attached *at once* count.
///
/// The table is scanned without a lock, so an `open` can race with the last handle's drop:
/// an opener that attaches after the dropper scanned the table, and checks the name before the
/// dropper removes it, ends up alone on an unlinked segment (nobody else can open it, and its
/// large messages' files may be gone). Keeping the creator's handle alive until every other
/// process has opened the queue avoids it.
pub(crate) const SLOTS: usize = 48;
/// How long an opener waits for a creator to finish initialising.
const INIT_WAIT: Duration = Duration::from_secs(1);

/// The start of every segment.
///
/// Invariants: written by the creator before `magic` is stored (release); read-only after,
/// except `slots`. `total_len` equals the file's length. `slots[i]` is 0 or the pid of a process
/// holding a handle (possibly dead, if it was killed).
#[repr(C, align(64))]
pub(crate) struct Common {
    /// The kind's magic number; 0 until the segment is initialised.
    pub(crate) magic: AtomicU64,
    /// [`VERSION`].
    pub(crate) version: AtomicU32,
    /// The size of the kind's whole header (this struct included).
    pub(crate) header_size: AtomicU32,
    /// The file's length in bytes.
    pub(crate) total_len: AtomicU64,
    /// The pid of the creating process.
    pub(crate) creator_pid: AtomicU32,
    /// `size_of::<pthread_mutex_t>()` in the creator: a segment made by a build with another
    /// C library layout is refused.
    pub(crate) mutex_size: AtomicU32,
    /// Hash of the item type and codec (queues), or 0.
    pub(crate) fingerprint: AtomicU64,
    _pad: [u64; 3],
    /// Pids of the attached processes (0 = free).
    pub(crate) slots: [AtomicU32; SLOTS],
}

const _: () = assert!(std::mem::size_of::<Common>() == 256);

/// The directory holding the segments: `$CONVEYOR_SHM_DIR` if set, else `/dev/shm`.
pub fn shm_dir() -> PathBuf {
    std::env::var_os("CONVEYOR_SHM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"))
}

/// Checks a segment name: 1 to 64 characters among `A-Z a-z 0-9 _ -`.
pub(crate) fn validate_name(name: &str) -> Result<(), ShmError> {
    let bad = |reason| {
        Err(ShmError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return bad("only ASCII letters, digits, '_' and '-' are allowed");
    }
    Ok(())
}

/// The path of the segment called `name`.
pub(crate) fn path_of(name: &str) -> PathBuf {
    shm_dir().join(format!("{FILE_PREFIX}{name}"))
}

/// A fresh name no other segment uses: `<kind>-<pid>-<counter>-<random>`.
pub(crate) fn anonymous_name(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{kind}-{}-{n}-{nanos:08x}", std::process::id())
}

/// Whether a process with this pid exists (a pid reused by another process counts as alive:
/// the error is on the side of keeping a segment).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission; it sends nothing.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether the process `pid` is alive and running: as [`pid_alive`], except that a zombie (a
/// dead child its parent has not waited for yet) counts as gone. For the producer count of an
/// `auto_shutdown` queue, whose consumer is often the parent of a producer that died.
pub(crate) fn pid_running(pid: u32) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')' (comm may hold one itself).
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        // Gone between the two looks, or no /proc: keep the answer of `kill`.
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => true,
    }
}

/// The entry for a segment in `conveyor_core::held`'s list.
fn held(path: &std::path::Path) -> conveyor_core::held::Held {
    conveyor_core::held::Held::new(format!("shared-memory segment {}", path.display()))
}

/// An open, mapped segment. Dropping it detaches this process and, if no attached process is
/// left alive, unlinks the file.
#[derive(Debug)]
pub(crate) struct Segment {
    name: String,
    path: PathBuf,
    map: MmapRaw,
    slot: Option<usize>,
    keep: bool,
    /// The device and inode of this segment's file: the name may be unlinked and then given
    /// to another segment, which this one must never remove.
    id: (u64, u64),
    /// Lists the segment among what this process holds (see `conveyor_core::held`).
    _held: conveyor_core::held::Held,
}

impl Segment {
    /// The inode of this segment's file, which names its companion files
    /// (`<segment>.ool.<inode>.<pid>.<n>`): a later segment that takes the same name has
    /// another inode while this one is still held, so the two never touch each other's files.
    pub(crate) fn ino(&self) -> u64 {
        self.id.1
    }

    /// Creates the segment `name` of `len` bytes, runs `init` on the zeroed mapping, then
    /// publishes `magic`.
    pub(crate) fn create(
        name: &str,
        len: usize,
        magic: u64,
        header_size: usize,
        fingerprint: u64,
        init: impl FnOnce(*mut u8) -> io::Result<()>,
    ) -> Result<Segment, ShmError> {
        validate_name(name)?;
        let path = path_of(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => ShmError::AlreadyExists(name.to_string()),
                _ => ShmError::io(name, e),
            })?;
        let built = (|| {
            let meta = file.metadata()?;
            file.set_len(len as u64)?;
            let map = MmapRaw::map_raw(&file)?;
            if map.len() != len {
                return Err(io::Error::other("mapping has the wrong length"));
            }
            let base = map.as_mut_ptr();
            // SAFETY: the mapping is `len >= size_of::<Common>()` bytes, page aligned, and
            // nobody else uses it before `magic` is published below (openers wait for it).
            let common = unsafe { &*(base as *const Common) };
            common.version.store(VERSION, Ordering::Relaxed);
            common
                .header_size
                .store(header_size as u32, Ordering::Relaxed);
            common.total_len.store(len as u64, Ordering::Relaxed);
            common
                .creator_pid
                .store(std::process::id(), Ordering::Relaxed);
            common.mutex_size.store(
                std::mem::size_of::<libc::pthread_mutex_t>() as u32,
                Ordering::Relaxed,
            );
            common.fingerprint.store(fingerprint, Ordering::Relaxed);
            common.slots[0].store(std::process::id(), Ordering::Relaxed);
            init(base)?;
            common.magic.store(magic, Ordering::Release);
            Ok((map, (meta.dev(), meta.ino())))
        })();
        match built {
            Ok((map, id)) => {
                tracing::debug!(segment = name, len, "created shared-memory segment");
                Ok(Segment {
                    _held: held(&path),
                    name: name.to_string(),
                    path,
                    map,
                    slot: Some(0),
                    keep: false,
                    id,
                })
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(ShmError::io(name, e))
            }
        }
    }

    /// Opens the segment `name`, waiting for its creator to finish, and checks the common
    /// header: magic, version, sizes (`header_size` is the kind's header size), and that the
    /// file is exactly as long as declared.
    pub(crate) fn open(
        name: &str,
        magic: u64,
        kind: &'static str,
        header_size: usize,
    ) -> Result<Segment, ShmError> {
        validate_name(name)?;
        let path = path_of(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => ShmError::NotFound(name.to_string()),
                _ => ShmError::io(name, e),
            })?;
        let map = wait_initialised(name, &file, magic, kind)?;
        let ours = file.metadata().map_err(|e| ShmError::io(name, e))?;
        let mut seg = Segment {
            _held: held(&path),
            name: name.to_string(),
            path,
            map,
            slot: None,
            keep: true, // not attached yet: never unlink on an early error
            id: (ours.dev(), ours.ino()),
        };
        seg.validate_common(magic, kind, header_size)?;
        seg.attach();
        seg.keep = false;
        // The name may have been unlinked (by a last handle going away) between our open and
        // our attach; then nobody else can find this segment and we must not use it.
        match seg.name_state() {
            NameState::Ours => {}
            _ => {
                seg.keep = true;
                return Err(ShmError::NotFound(name.to_string()));
            }
        }
        tracing::debug!(segment = name, "opened shared-memory segment");
        Ok(seg)
    }

    fn validate_common(
        &self,
        magic: u64,
        kind: &'static str,
        header_size: usize,
    ) -> Result<(), ShmError> {
        let name = &self.name;
        let c = self.common();
        let found = c.magic.load(Ordering::Acquire);
        if found != magic {
            return Err(ShmError::BadMagic {
                name: name.clone(),
                expected: kind,
                found,
            });
        }
        let version = c.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(ShmError::VersionMismatch {
                name: name.clone(),
                expected: VERSION,
                found: version,
            });
        }
        let hs = c.header_size.load(Ordering::Relaxed) as usize;
        if hs != header_size {
            return Err(ShmError::corrupt(
                name,
                format!("header size {hs}, expected {header_size}"),
            ));
        }
        let ms = c.mutex_size.load(Ordering::Relaxed) as usize;
        if ms != std::mem::size_of::<libc::pthread_mutex_t>() {
            return Err(ShmError::corrupt(
                name,
                format!("mutex size {ms}: made by a build with another C library layout"),
            ));
        }
        let declared = c.total_len.load(Ordering::Relaxed);
        if declared != self.map.len() as u64 || (self.map.len() as u64) < header_size as u64 {
            return Err(ShmError::Truncated {
                name: name.clone(),
                expected: declared.max(header_size as u64),
                actual: self.map.len() as u64,
            });
        }
        Ok(())
    }

    /// Registers this process in the attach table (a free slot, or one of a dead process).
    fn attach(&mut self) {
        let me = std::process::id();
        let slots = &self.common().slots;
        for (i, s) in slots.iter().enumerate() {
            if s.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.slot = Some(i);
                return;
            }
        }
        for (i, s) in slots.iter().enumerate() {
            let pid = s.load(Ordering::SeqCst);
            if !pid_alive(pid)
                && s.compare_exchange(pid, me, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                self.slot = Some(i);
                return;
            }
        }
        tracing::warn!(
            segment = self.name.as_str(),
            "attach table full: this process is not tracked and will not unlink the segment"
        );
    }

    /// The common header.
    pub(crate) fn common(&self) -> &Common {
        // SAFETY: every Segment's mapping was checked (create: by construction; open: in
        // wait_initialised) to be at least size_of::<Common>() bytes; the mapping is page
        // aligned and lives as long as `self`; all fields are atomics.
        unsafe { &*(self.map.as_mut_ptr() as *const Common) }
    }

    /// This mapping's slot in the attach table, `None` if the table was full.
    pub(crate) fn slot(&self) -> Option<usize> {
        self.slot
    }

    /// The base of the mapping.
    pub(crate) fn base(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// The mapping's length.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The segment's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What the segment's name points at now.
    fn name_state(&self) -> NameState {
        match std::fs::metadata(&self.path) {
            Ok(now) if (now.dev(), now.ino()) == self.id => NameState::Ours,
            Ok(_) => NameState::Another,
            Err(e) if e.kind() == io::ErrorKind::NotFound => NameState::Gone,
            // Unknown: behave as if it were another segment's (remove nothing).
            Err(_) => NameState::Another,
        }
    }

    /// Removes the name now (the mapping stays usable by handles already open). Only the
    /// name: the files of out-of-line messages not yet taken stay, so that those messages are
    /// still delivered; each is removed as it is taken, and the rest when the last handle goes.
    /// `NotFound` if the name is already gone (or was given to another segment since).
    pub(crate) fn unlink(&self) -> io::Result<()> {
        match self.name_state() {
            NameState::Ours => std::fs::remove_file(&self.path),
            NameState::Gone | NameState::Another => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} was already unlinked", self.path.display()),
            )),
        }
    }
}

/// What a segment's name points at.
enum NameState {
    /// This segment's file.
    Ours,
    /// Nothing: it was unlinked.
    Gone,
    /// Another file: unlinked, then created again by someone.
    Another,
}

impl Drop for Segment {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            self.common().slots[i].store(0, Ordering::SeqCst);
        }
        if self.keep || self.slot.is_none() {
            return;
        }
        let anyone = self
            .common()
            .slots
            .iter()
            .any(|s| pid_alive(s.load(Ordering::SeqCst)));
        if anyone {
            return;
        }
        let name = self.name.as_str();
        match self.name_state() {
            NameState::Ours => match std::fs::remove_file(&self.path) {
                Ok(()) => tracing::debug!(segment = name, "unlinked segment"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(segment = name, error = %e, "could not unlink segment"),
            },
            // Unlinked, or given to another segment since: the name is not ours to remove, but
            // our companion files (named by our inode) still are.
            NameState::Gone | NameState::Another => {}
        }
        // The last handle: messages not taken can no longer be delivered.
        remove_companions(&self.path, Some(self.id.1));
    }
}

/// The prefix of the companion files of the segment at `path` whose file has inode `ino`.
pub(crate) fn companion_prefix(path: &Path, ino: u64) -> std::ffi::OsString {
    let mut p = path.as_os_str().to_os_string();
    p.push(format!(".ool.{ino}."));
    p
}

/// Removes the companion files (out-of-line messages) of the segment at `path` whose file has
/// inode `ino`; with `None`, every `path.*` file (for a segment file of unknown inode).
pub(crate) fn remove_companions(path: &Path, ino: Option<u64>) {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = match ino {
        Some(ino) => format!("{}.ool.{ino}.", file.to_string_lossy()),
        None => format!("{}.", file.to_string_lossy()),
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Removes `path` and its companion files (out-of-line messages): for a segment nobody uses
/// any more.
pub(crate) fn remove_with_companions(path: &Path) -> io::Result<()> {
    let ino = std::fs::metadata(path).ok().map(|m| m.ino());
    let result = std::fs::remove_file(path);
    remove_companions(path, ino);
    result
}

/// Maps `file` once it is long enough and its magic is published; errors if that does not
/// happen within [`INIT_WAIT`].
fn wait_initialised(
    name: &str,
    file: &File,
    magic: u64,
    kind: &'static str,
) -> Result<MmapRaw, ShmError> {
    let start = Instant::now();
    loop {
        let len = file.metadata().map_err(|e| ShmError::io(name, e))?.len();
        if len >= std::mem::size_of::<Common>() as u64 {
            let map = MmapRaw::map_raw(file).map_err(|e| ShmError::io(name, e))?;
            if map.len() as u64 >= std::mem::size_of::<Common>() as u64 {
                // SAFETY: the mapping is at least size_of::<Common>() bytes and page aligned;
                // the fields are atomics.
                let common = unsafe { &*(map.as_mut_ptr() as *const Common) };
                let found = common.magic.load(Ordering::Acquire);
                if found != 0 {
                    if found != magic {
                        return Err(ShmError::BadMagic {
                            name: name.to_string(),
                            expected: kind,
                            found,
                        });
                    }
                    return Ok(map);
                }
            }
        }
        if start.elapsed() >= INIT_WAIT {
            if len < std::mem::size_of::<Common>() as u64 && len > 0 {
                return Err(ShmError::Truncated {
                    name: name.to_string(),
                    expected: std::mem::size_of::<Common>() as u64,
                    actual: len,
                });
            }
            return Err(ShmError::Uninitialised(name.to_string()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// FNV-1a, for fingerprints.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
