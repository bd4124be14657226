//! Finding and removing segments: what the `conveyor` command (crate conveyor-cli) lists,
//! inspects and cleans with `conveyor shm list`, `inspect`, `rm` and `clean`.
//!
//! A segment is unlinked when the last attached process drops its last handle. A process
//! killed by SIGKILL never drops anything, so its segments stay in `/dev/shm` until someone
//! removes them. Every segment records the pids of the processes attached to it; a segment
//! none of whose attached processes is alive is *leaked*, and [`remove_leaked`] removes it.
//!
//! An out-of-line message file (`<segment>.ool.<segment inode>.<writer pid>.<n>`) is leaked
//! when its queue's segment (the file of that name and inode) is leaked, or, when that segment
//! file is no longer listed (its name was unlinked, or taken by another segment), when no
//! process maps the segment's inode any more, its writer is dead and the file is older than a
//! minute: a queue whose name was unlinked may still be in use by the processes that hold it,
//! and its messages not yet taken must stay deliverable. Files owned by another user, and files
//! that cannot be read, are never called leaked.
//!
//! A [`SharedMemory`](crate::SharedMemory) block has no header and no `conveyor-` prefix (its
//! name is Python's). One that conveyor created carries its creator's pid in an extended
//! attribute and is listed under its name with a leading `/` (`/psm_1a2b3c4d`, the form
//! `shm_open` takes, which no conveyor segment name has); the processes attached to it are
//! those that map it now (from `/proc/<pid>/maps`). It is leaked when its creator asked for it
//! to be removed with its last handle ([`SharedMemory::unlink_on_drop`](crate::SharedMemory::unlink_on_drop)),
//! is dead, and no process maps the block; one meant to outlive its creator (Python's default)
//! is never leaked.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::segment::{
    pid_alive, remove_companions, remove_with_companions, shm_dir, FILE_PREFIX, SLOTS,
};
use crate::shared_memory::OWNER_XATTR;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentKind {
    /// A [`ShmQueue`](crate::ShmQueue) (or joinable queue).
    Queue,
    /// A [`Lock`](crate::Lock).
    Lock,
    /// An [`RLock`](crate::RLock).
    RLock,
    /// A [`Value`](crate::Value).
    Value,
    /// An [`Array`](crate::Array).
    Array,
    /// A [`SharedMemory`](crate::SharedMemory) block created by conveyor (it has no header;
    /// its name carries no `conveyor-` prefix, as Python's do not).
    SharedMemory,
    /// A large message of a queue, stored out of line.
    OutOfLine,
    /// Not (yet) initialised, or not recognised.
    Unknown,
}

/// A conveyor segment found in the segment directory.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// The name to pass to `open` (for out-of-line files, the file name without the prefix).
    pub name: String,
    /// The file's path.
    pub path: PathBuf,
    /// What it holds.
    pub kind: SegmentKind,
    /// The file's length in bytes.
    pub len: u64,
    /// The pid of its creator, if the header could be read (for an out-of-line file, the pid
    /// of the process that wrote it, from its name).
    pub creator_pid: Option<u32>,
    /// The pids recorded as attached (alive or not); for a [`SegmentKind::SharedMemory`]
    /// block, the processes that map it now (so all alive).
    pub attached: Vec<u32>,
    /// Those of `attached` still alive.
    pub alive: Vec<u32>,
    /// When the file was created, where the file system records it, else when it was last
    /// modified.
    pub created: Option<SystemTime>,
    /// Whether no process using it is alive any more.
    pub leaked: bool,
}

/// An uninitialised segment, or an out-of-line file whose queue's name is gone and whose
/// writer is dead, older than this is considered abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Lists the conveyor segments in [`shm_dir`](crate::shm_dir).
pub fn list_segments() -> io::Result<Vec<SegmentInfo>> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let mut out = Vec::new();
    // Out-of-line files, judged once every segment has been: (info, queue name, writer, old).
    let mut ool = Vec::new();
    // The inode of each listed segment file: an out-of-line file names its segment's.
    let mut inodes: HashMap<String, u64> = HashMap::new();
    // Shared-memory blocks conveyor created: (info, inode, creator asked for removal).
    let mut blocks: Vec<(SegmentInfo, u64, bool)> = Vec::new();
    for entry in std::fs::read_dir(shm_dir())? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_prefix(FILE_PREFIX) else {
            if let Some(block) = shared_memory_block(&entry, me) {
                blocks.push(block);
            }
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let created = created(&meta);
        let old = is_old(meta.modified().ok());
        let mine = meta.uid() == me;
        if let Some((queue, rest)) = name.split_once(".ool.") {
            // <segment inode>.<writer pid>.<n>
            let mut parts = rest.split('.').map(|p| p.parse::<u64>().ok());
            let (seg_ino, writer) = match (parts.next(), parts.next(), parts.next()) {
                (Some(ino), Some(pid), Some(_)) => (ino, pid.and_then(|p| u32::try_from(p).ok())),
                _ => (None, None),
            };
            let info = SegmentInfo {
                name: name.to_string(),
                path: entry.path(),
                kind: SegmentKind::OutOfLine,
                len: meta.len(),
                creator_pid: writer,
                attached: Vec::new(),
                alive: Vec::new(),
                created,
                leaked: false,
            };
            if mine {
                ool.push((info, queue.to_string(), seg_ino, writer, old));
            } else {
                out.push(info);
            }
            continue;
        }
        let mut info = inspect(name, entry.path(), meta.len(), old);
        info.created = created;
        // Another user's segment is never ours to remove.
        info.leaked &= mine;
        inodes.insert(info.name.clone(), meta.ino());
        out.push(info);
    }
    let segments: HashMap<(&str, u64), bool> = out
        .iter()
        .filter_map(|s| Some(((s.name.as_str(), *inodes.get(&s.name)?), s.leaked)))
        .collect();
    let mut mapped: Option<HashMap<u64, Vec<u32>>> = None;
    let judged: Vec<SegmentInfo> = ool
        .into_iter()
        .map(|(mut info, queue, seg_ino, writer, old)| {
            let listed = seg_ino.and_then(|ino| segments.get(&(queue.as_str(), ino)));
            info.leaked = match listed {
                // Its queue is listed: the file goes with it.
                Some(&queue_leaked) => queue_leaked,
                // Its queue's name is gone (or another's now), but handles may still hold the
                // queue and take the message: only a file whose segment nobody maps, whose
                // writer is dead and which is old is abandoned.
                None => {
                    old && !writer.is_some_and(pid_alive) && {
                        let mapped = mapped.get_or_insert_with(mapped_shm_inodes);
                        !seg_ino.is_some_and(|ino| mapped.contains_key(&ino))
                    }
                }
            };
            info
        })
        .collect();
    out.extend(judged);
    if !blocks.is_empty() {
        let mapped = mapped.get_or_insert_with(mapped_shm_inodes);
        for (mut info, ino, unlink) in blocks {
            info.attached = mapped.get(&ino).cloned().unwrap_or_default();
            info.alive = info.attached.clone();
            info.leaked &=
                unlink && info.attached.is_empty() && !info.creator_pid.is_some_and(pid_alive);
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The inodes of the files under [`shm_dir`](crate::shm_dir) that some process maps, each
/// with the pids mapping it, from `/proc/<pid>/maps` (the processes this one may read): a
/// segment whose name was unlinked is still in use while a process maps it.
fn mapped_shm_inodes() -> HashMap<u64, Vec<u32>> {
    let dir = shm_dir();
    let dir = dir.to_string_lossy();
    let mut found: HashMap<u64, Vec<u32>> = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(maps) = std::fs::read_to_string(p.path().join("maps")) else {
            continue;
        };
        for line in maps.lines() {
            // address perms offset dev inode path
            let mut fields = line.split_whitespace();
            let (Some(ino), Some(path)) = (fields.nth(4), fields.next()) else {
                continue;
            };
            if path.starts_with(dir.as_ref()) {
                if let Ok(ino) = ino.parse() {
                    let pids = found.entry(ino).or_default();
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
        }
    }
    found
}

/// When a file was created (or, where that is not recorded, last modified).
fn created(meta: &std::fs::Metadata) -> Option<SystemTime> {
    meta.created().or_else(|_| meta.modified()).ok()
}

/// The listing of `entry` if it is a [`SharedMemory`](crate::SharedMemory) block that conveyor
/// created (a regular file carrying [`OWNER_XATTR`]): its info (`leaked` true when it is
/// this user's; the caller adds the rest of the judgement), inode, and whether its creator
/// asked for removal with its last handle.
fn shared_memory_block(entry: &std::fs::DirEntry, me: u32) -> Option<(SegmentInfo, u64, bool)> {
    let meta = entry.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut buf = [0u8; 64];
    let n = rustix::fs::getxattr(entry.path(), OWNER_XATTR, &mut buf[..]).ok()?;
    let owner = std::str::from_utf8(&buf[..n]).ok()?;
    let mut words = owner.split_whitespace();
    let creator = words.next()?.parse::<u32>().ok();
    let unlink = words.next() == Some("1");
    let name = format!("/{}", entry.file_name().to_string_lossy());
    let info = SegmentInfo {
        name,
        path: entry.path(),
        kind: SegmentKind::SharedMemory,
        len: meta.len(),
        creator_pid: creator,
        attached: Vec::new(),
        alive: Vec::new(),
        created: created(&meta),
        leaked: meta.uid() == me,
    };
    Some((info, meta.ino(), unlink))
}

/// Whether a file last modified at `modified` is older than [`ABANDONED_AFTER`].
fn is_old(modified: Option<SystemTime>) -> bool {
    modified
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > ABANDONED_AFTER)
}

/// Reads the first 256 bytes of the segment at `path`: `Ok(None)` if the file is shorter.
fn read_head(file: &mut File) -> io::Result<Option<[u8; 256]>> {
    let mut head = [0u8; 256];
    match file.read_exact(&mut head) {
        Ok(()) => Ok(Some(head)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

fn inspect(name: &str, path: PathBuf, len: u64, old: bool) -> SegmentInfo {
    let unknown = |path, leaked| SegmentInfo {
        name: name.to_string(),
        path,
        kind: SegmentKind::Unknown,
        len,
        creator_pid: None,
        attached: Vec::new(),
        alive: Vec::new(),
        created: None,
        leaked,
    };
    let head = match File::open(&path).and_then(|mut f| read_head(&mut f)) {
        Ok(Some(head)) => head,
        // Shorter than a header: a creator that died before sizing it, or one still at work.
        Ok(None) => return unknown(path, old),
        // Unreadable (permissions, or gone since it was listed): not known to be leaked.
        Err(_) => return unknown(path, false),
    };
    let judged = judge(&head, old);
    SegmentInfo {
        name: name.to_string(),
        path,
        kind: judged.kind,
        len,
        creator_pid: judged.creator,
        alive: judged
            .attached
            .iter()
            .copied()
            .filter(|&p| pid_alive(p))
            .collect(),
        attached: judged.attached,
        created: None,
        leaked: judged.leaked,
    }
}

/// What a segment's header says about it.
struct Judged {
    kind: SegmentKind,
    creator: Option<u32>,
    attached: Vec<u32>,
    leaked: bool,
}

/// Reads a segment's kind and users from its first 256 bytes; `old` says whether the file is
/// older than [`ABANDONED_AFTER`] (for a segment not yet initialised).
fn judge(head: &[u8; 256], old: bool) -> Judged {
    let magic = u64::from_ne_bytes(head[..8].try_into().unwrap_or_default());
    if magic == 0 {
        return Judged {
            kind: SegmentKind::Unknown,
            creator: None,
            attached: Vec::new(),
            leaked: old,
        };
    }
    let kind = match &magic.to_le_bytes() {
        b"CONVSHMQ" => SegmentKind::Queue,
        b"CONVLOCK" => SegmentKind::Lock,
        b"CONVRLCK" => SegmentKind::RLock,
        b"CONVVALU" => SegmentKind::Value,
        b"CONVARRY" => SegmentKind::Array,
        _ => SegmentKind::Unknown,
    };
    let creator = u32::from_ne_bytes(head[24..28].try_into().unwrap_or_default());
    let attached: Vec<u32> = (0..SLOTS)
        .map(|i| u32::from_ne_bytes(head[64 + 4 * i..68 + 4 * i].try_into().unwrap_or_default()))
        .filter(|&p| p != 0)
        .collect();
    let alive = attached.iter().any(|&p| pid_alive(p));
    let leaked = if kind == SegmentKind::Unknown {
        old
    } else {
        let in_use = alive || (attached.is_empty() && pid_alive(creator));
        !in_use
    };
    Judged {
        kind,
        creator: Some(creator),
        attached,
        leaked,
    }
}

/// Removes every leaked segment (and the out-of-line files of removed queues); returns their
/// names.
///
/// Files owned by another user and files that cannot be read are never leaked (see
/// [`list_segments`]). A file that cannot be removed is logged (`tracing::warn!`) and skipped:
/// the others are still removed. The error is only for a segment directory that cannot be
/// read.
///
/// ```
/// let removed = conveyor_shm::remove_leaked()?;
/// for name in &removed {
///     println!("removed leaked segment {name}");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_leaked() -> io::Result<Vec<String>> {
    Ok(remove_each(list_segments()?, |info| {
        if matches!(
            info.kind,
            SegmentKind::OutOfLine | SegmentKind::SharedMemory
        ) {
            std::fs::remove_file(&info.path)
        } else {
            remove_with_companions(&info.path)
        }
    }))
}

/// Removes each leaked segment of `infos` with `remove`, going on after a failure; the names
/// removed.
fn remove_each(
    infos: Vec<SegmentInfo>,
    remove: impl Fn(&SegmentInfo) -> io::Result<()>,
) -> Vec<String> {
    let mut removed = Vec::new();
    for info in infos {
        if !info.leaked {
            continue;
        }
        match remove(&info) {
            Ok(()) => {
                tracing::info!(segment = info.name.as_str(), "removed leaked segment");
                removed.push(info.name);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                segment = info.name.as_str(),
                path = %info.path.display(),
                error = %e,
                "could not remove leaked segment; going on with the others"
            ),
        }
    }
    removed
}

/// Removes the segment called `name`, whoever uses it: handles already open keep working,
/// new `open`s fail.
///
/// A name with a leading `/` (as [`list_segments`] shows shared-memory blocks) is a
/// [`SharedMemory`](crate::SharedMemory) block's: `/x` removes the file `x`, as Python's
/// `unlink()` would, whoever created it. Any other name is a conveyor segment's.
///
/// A queue's out-of-line files (large messages not yet taken) are removed too only if no
/// process attached to it is alive; otherwise they stay, so that the processes still holding
/// the queue get those messages, and go when its last handle does.
pub fn remove_segment(name: &str) -> io::Result<()> {
    if name.starts_with('/') {
        let bare = crate::segment::validate_shm_name(name).map_err(io::Error::other)?;
        let path = shm_dir().join(bare);
        if !std::fs::symlink_metadata(&path)?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file: not a shared-memory block",
                path.display()
            )));
        }
        return std::fs::remove_file(&path);
    }
    crate::segment::validate_name(name).map_err(io::Error::other)?;
    let path = crate::segment::path_of(name);
    // Open first: the header is read after the name is gone, so that a process that attaches
    // in between is seen (one that opens later finds no name).
    let mut file = File::open(&path)?;
    let ino = file.metadata()?.ino();
    std::fs::remove_file(&path)?;
    let unused = match read_head(&mut file) {
        Ok(Some(head)) => judge(&head, false).leaked,
        Ok(None) => true,
        Err(_) => false,
    };
    if unused {
        remove_companions(&path, Some(ino));
    }
    Ok(())
}

/// What `conveyor shm inspect` shows of one segment: its listing, and what its header says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentDetails {
    /// The segment as [`list_segments`] lists it.
    pub info: SegmentInfo,
    /// The common header of a conveyor segment (not of a shared-memory block, which has none).
    pub header: Option<HeaderDetails>,
    /// A queue's state.
    pub queue: Option<QueueDetails>,
    /// A value's or array's element type.
    pub elements: Option<ElementDetails>,
    /// For a lock, value or array: how many times a holder died and the lock was recovered.
    pub lock_recoveries: Option<u64>,
    /// The first bytes of the data (a value's or array's elements, a shared-memory block's
    /// bytes; at most 64).
    pub data_head: Vec<u8>,
}

/// The common header of a conveyor segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeaderDetails {
    /// The kind's magic number (its 8 bytes spell the kind: `CONVSHMQ`, `CONVVALU`, ...).
    pub magic: u64,
    /// The layout version.
    pub version: u32,
    /// The size of the kind's header.
    pub header_size: u32,
    /// The length the header declares.
    pub total_len: u64,
    /// The fingerprint of the item or element type (0 for locks).
    pub fingerprint: u64,
}

/// A queue's state, as its header holds it when read (a snapshot: other processes go on).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueDetails {
    /// The ring's size in bytes.
    pub ring_capacity: u64,
    /// The bound on the item count (Python's `maxsize`), if any.
    pub max_items: Option<u64>,
    /// Items queued (put, not yet taken).
    pub items: u64,
    /// Bytes of the ring those items take (with their 8-byte record headers and padding).
    pub bytes: u64,
    /// Items put and not yet marked done (for a joinable queue).
    pub unfinished_tasks: u64,
    /// Whether the queue was closed for puts.
    pub closed: bool,
    /// How many times a process died holding one of the queue's mutexes.
    pub recoveries: u64,
    /// Whether the queue shuts itself down once its producers are done.
    pub auto_shutdown: bool,
    /// On an `auto_shutdown` queue, the attached processes (alive) with producer handles
    /// open, and how many each: `(pid, handles)`. `None` on other queues, which do not count
    /// producers. Consumers are not recorded by any queue: a process attached and not listed
    /// here may get, put through a handle that has not put yet, or both.
    pub producers: Option<Vec<(u32, u32)>>,
}

/// A value's or array's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElementDetails {
    /// Bytes per element.
    pub elem_size: u64,
    /// The element type's alignment.
    pub elem_align: u64,
    /// The number of elements.
    pub len: u64,
}

/// Reads the segment `name` (as [`list_segments`] names it) and what its header says:
/// `conveyor shm inspect NAME`. `NotFound` if no segment of that name is listed.
pub fn inspect_segment(name: &str) -> io::Result<SegmentDetails> {
    use std::mem::offset_of;
    let info = list_segments()?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no segment named {name:?} in {}", shm_dir().display()),
            )
        })?;
    let mut details = SegmentDetails {
        info,
        header: None,
        queue: None,
        elements: None,
        lock_recoveries: None,
        data_head: Vec::new(),
    };
    let mut head = Vec::new();
    let want = 1024u64;
    File::open(&details.info.path)?
        .take(want)
        .read_to_end(&mut head)?;
    let kind = details.info.kind;
    if matches!(kind, SegmentKind::SharedMemory) {
        head.truncate(64);
        details.data_head = head;
        return Ok(details);
    }
    if matches!(kind, SegmentKind::OutOfLine | SegmentKind::Unknown) {
        return Ok(details);
    }
    let u64_at = |off: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(head.get(off..off + 8)?.try_into().ok()?))
    };
    let u32_at = |off: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(head.get(off..off + 4)?.try_into().ok()?))
    };
    use crate::segment::Common;
    details.header = (|| {
        Some(HeaderDetails {
            magic: u64_at(offset_of!(Common, magic))?,
            version: u32_at(offset_of!(Common, version))?,
            header_size: u32_at(offset_of!(Common, header_size))?,
            total_len: u64_at(offset_of!(Common, total_len))?,
            fingerprint: u64_at(offset_of!(Common, fingerprint))?,
        })
    })();
    use crate::lock::LockState;
    use crate::pod_segment::{PodHeader, Shape, DATA_OFFSET};
    match kind {
        SegmentKind::Queue => {
            details.queue = crate::layout::queue_snapshot(&head).map(|q| QueueDetails {
                ring_capacity: q.ring_capacity,
                max_items: (q.max_items != 0).then_some(q.max_items),
                items: q.items,
                bytes: q.bytes,
                unfinished_tasks: q.unfinished,
                closed: q.closed,
                recoveries: q.recoveries,
                auto_shutdown: q.auto_shutdown,
                producers: q.auto_shutdown.then(|| {
                    (0..SLOTS)
                        .filter_map(|i| {
                            let pid = u32_at(offset_of!(Common, slots) + 4 * i)?;
                            let n = q.producer_counts[i];
                            (pid != 0 && n > 0 && pid_alive(pid)).then_some((pid, n))
                        })
                        .collect()
                }),
            });
        }
        SegmentKind::Lock | SegmentKind::RLock => {
            details.lock_recoveries =
                u64_at(std::mem::size_of::<Common>() + offset_of!(LockState, recoveries));
        }
        SegmentKind::Value | SegmentKind::Array => {
            let shape = offset_of!(PodHeader, shape);
            details.elements = (|| {
                Some(ElementDetails {
                    elem_size: u64_at(shape + offset_of!(Shape, elem_size))?,
                    elem_align: u64_at(shape + offset_of!(Shape, elem_align))?,
                    len: u64_at(shape + offset_of!(Shape, len))?,
                })
            })();
            details.lock_recoveries =
                u64_at(offset_of!(PodHeader, state) + offset_of!(LockState, recoveries));
            details.data_head = head
                .get(DATA_OFFSET..)
                .map(|d| d[..d.len().min(64)].to_vec())
                .unwrap_or_default();
        }
        _ => {}
    }
    Ok(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, leaked: bool) -> SegmentInfo {
        SegmentInfo {
            name: name.to_string(),
            path: PathBuf::from(format!("/nonexistent/{name}")),
            kind: SegmentKind::Queue,
            len: 0,
            creator_pid: None,
            attached: Vec::new(),
            alive: Vec::new(),
            created: None,
            leaked,
        }
    }

    #[test]
    fn remove_goes_on_after_a_failure() {
        let infos = vec![
            info("a", true),
            info("b", true),
            info("c", false),
            info("d", true),
        ];
        let tried = std::cell::RefCell::new(Vec::new());
        let removed = remove_each(infos, |i| {
            tried.borrow_mut().push(i.name.clone());
            match i.name.as_str() {
                "a" => Err(io::Error::from(io::ErrorKind::PermissionDenied)),
                "b" => Err(io::Error::from(io::ErrorKind::NotFound)),
                _ => Ok(()),
            }
        });
        assert_eq!(removed, vec!["d".to_string()]);
        assert_eq!(*tried.borrow(), vec!["a", "b", "d"]);
    }

    #[test]
    fn a_segment_that_cannot_be_opened_is_not_leaked() {
        // A name listed and then gone (or not readable): even if old, not known to be leaked.
        let gone = inspect(
            "gone",
            PathBuf::from("/nonexistent-conveyor-dir/conveyor-gone"),
            256,
            true,
        );
        assert_eq!(gone.kind, SegmentKind::Unknown);
        assert!(!gone.leaked);
    }
}
