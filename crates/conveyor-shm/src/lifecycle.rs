//! Finding and removing segments: what the `conveyor` command-line tool lists and cleans.
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

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::segment::{
    pid_alive, remove_companions, remove_with_companions, shm_dir, FILE_PREFIX, SLOTS,
};

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
    /// The pids recorded as attached (alive or not).
    pub attached: Vec<u32>,
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
    for entry in std::fs::read_dir(shm_dir())? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_prefix(FILE_PREFIX) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
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
        // Another user's segment is never ours to remove.
        info.leaked &= mine;
        inodes.insert(info.name.clone(), meta.ino());
        out.push(info);
    }
    let segments: HashMap<(&str, u64), bool> = out
        .iter()
        .filter_map(|s| Some(((s.name.as_str(), *inodes.get(&s.name)?), s.leaked)))
        .collect();
    let mut mapped: Option<std::collections::HashSet<u64>> = None;
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
                        !seg_ino.is_some_and(|ino| mapped.contains(&ino))
                    }
                }
            };
            info
        })
        .collect();
    out.extend(judged);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The inodes of the files under [`shm_dir`](crate::shm_dir) that some process maps, from
/// `/proc/<pid>/maps` (the processes this one may read): a segment whose name was unlinked is
/// still in use while a process maps it.
fn mapped_shm_inodes() -> std::collections::HashSet<u64> {
    let dir = shm_dir();
    let dir = dir.to_string_lossy();
    let mut found = std::collections::HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        if !p
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
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
                    found.insert(ino);
                }
            }
        }
    }
    found
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
        attached: judged.attached,
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
        if info.kind == SegmentKind::OutOfLine {
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
/// Its out-of-line files (large messages not yet taken) are removed too only if no process
/// attached to it is alive; otherwise they stay, so that the processes still holding the
/// queue get those messages, and go when its last handle does.
pub fn remove_segment(name: &str) -> io::Result<()> {
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
