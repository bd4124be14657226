//! Finding and removing segments: what the `conveyor` command-line tool lists and cleans.
//!
//! A segment is unlinked when the last attached process drops its last handle. A process
//! killed by SIGKILL never drops anything, so its segments stay in `/dev/shm` until someone
//! removes them. Every segment records the pids of the processes attached to it; a segment
//! none of whose attached processes is alive is *leaked*, and [`remove_leaked`] removes it. An
//! out-of-line message file whose queue is gone is leaked too.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::segment::{pid_alive, remove_with_companions, shm_dir, FILE_PREFIX, SLOTS};

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
    /// The pid of its creator, if the header could be read.
    pub creator_pid: Option<u32>,
    /// The pids recorded as attached (alive or not).
    pub attached: Vec<u32>,
    /// Whether no process using it is alive any more.
    pub leaked: bool,
}

/// An uninitialised segment older than this is considered abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// Lists the conveyor segments in [`shm_dir`](crate::shm_dir).
pub fn list_segments() -> io::Result<Vec<SegmentInfo>> {
    let mut out = Vec::new();
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
        if let Some((queue, _)) = name.split_once(".ool.") {
            out.push(SegmentInfo {
                name: name.to_string(),
                path: entry.path(),
                kind: SegmentKind::OutOfLine,
                len: meta.len(),
                creator_pid: None,
                attached: Vec::new(),
                leaked: !shm_dir().join(format!("{FILE_PREFIX}{queue}")).exists(),
            });
            continue;
        }
        out.push(inspect(
            name,
            entry.path(),
            meta.len(),
            meta.modified().ok(),
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn inspect(name: &str, path: PathBuf, len: u64, modified: Option<SystemTime>) -> SegmentInfo {
    let mut head = [0u8; 256];
    let read = File::open(&path).and_then(|mut f| f.read_exact(&mut head));
    let old = modified
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > ABANDONED_AFTER);
    let magic = u64::from_ne_bytes(head[..8].try_into().unwrap_or_default());
    if read.is_err() || magic == 0 {
        return SegmentInfo {
            name: name.to_string(),
            path,
            kind: SegmentKind::Unknown,
            len,
            creator_pid: None,
            attached: Vec::new(),
            leaked: old,
        };
    }
    let kind = match &magic.to_le_bytes() {
        b"CONVSHMQ" => SegmentKind::Queue,
        b"CONVLOCK" => SegmentKind::Lock,
        b"CONVRLCK" => SegmentKind::RLock,
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
    SegmentInfo {
        name: name.to_string(),
        path,
        kind,
        len,
        creator_pid: Some(creator),
        attached,
        leaked,
    }
}

/// Removes every leaked segment (and the out-of-line files of removed queues); returns their
/// names.
///
/// ```
/// let removed = conveyor_shm::remove_leaked()?;
/// for name in &removed {
///     println!("removed leaked segment {name}");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn remove_leaked() -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for info in list_segments()? {
        if !info.leaked {
            continue;
        }
        let r = if info.kind == SegmentKind::OutOfLine {
            std::fs::remove_file(&info.path)
        } else {
            remove_with_companions(&info.path)
        };
        match r {
            Ok(()) => {
                tracing::info!(segment = info.name.as_str(), "removed leaked segment");
                removed.push(info.name);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Removes the segment called `name` (and its out-of-line files), whoever uses it: handles
/// already open keep working, new `open`s fail.
pub fn remove_segment(name: &str) -> io::Result<()> {
    crate::segment::validate_name(name).map_err(io::Error::other)?;
    remove_with_companions(&crate::segment::path_of(name))
}
