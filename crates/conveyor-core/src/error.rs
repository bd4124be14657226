//! Error types: one per operation, each telling apart the ways it can fail.
//!
//! A failed put always hands the item back ([`PutError::into_inner`]), so a caller can retry,
//! reroute or drop it on purpose; nothing is lost silently.

use std::fmt;
use std::io;

/// Why a value could not be encoded or decoded by a [`Codec`](crate::Codec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    codec: &'static str,
    message: String,
}

impl CodecError {
    /// A codec error from the codec's name and what went wrong.
    pub fn new(codec: &'static str, message: impl Into<String>) -> Self {
        CodecError {
            codec,
            message: message.into(),
        }
    }

    /// The name of the codec that failed (`"postcard"`, `"pickle"`, ...).
    pub fn codec(&self) -> &'static str {
        self.codec
    }

    /// What went wrong, in the codec's words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} codec failed: {} (do both ends use the same item type and codec?)",
            self.codec, self.message
        )
    }
}

impl std::error::Error for CodecError {}

/// Why a put failed. The item is handed back in every case.
///
/// ```
/// use conveyor_core::PutError;
///
/// let err = PutError::Full(7);
/// assert!(err.is_full());
/// assert_eq!(err.into_inner(), 7);
/// ```
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue is full and the call was not allowed to wait (`try_put`).
    Full(T),
    /// The queue stayed full for the whole timeout (`put_timeout`).
    Timeout(T),
    /// The channel was shut down, or this handle was closed: it takes no more items.
    Closed(T),
    /// The encoded item is larger than the transport accepts.
    TooLarge {
        /// The item that was not put.
        item: T,
        /// Its encoded size in bytes.
        size: usize,
        /// The largest size the transport accepts.
        max: usize,
    },
    /// The item could not be encoded.
    Codec {
        /// The item that was not put.
        item: T,
        /// What the codec reported.
        source: CodecError,
    },
    /// The operating system reported an error.
    Io {
        /// The item that was not put.
        item: T,
        /// The I/O error.
        source: io::Error,
    },
}

impl<T> PutError<T> {
    /// Whether the queue was full and the call did not wait.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// Whether the call waited for the whole timeout without room appearing.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PutError::Timeout(_))
    }

    /// Whether the channel was shut down or this handle closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PutError::Closed(_))
    }

    /// Whether the item was too large for the transport.
    pub fn is_too_large(&self) -> bool {
        matches!(self, PutError::TooLarge { .. })
    }

    /// Whether the item could not be encoded.
    pub fn is_codec(&self) -> bool {
        matches!(self, PutError::Codec { .. })
    }

    /// Whether the operating system reported an error.
    pub fn is_io(&self) -> bool {
        matches!(self, PutError::Io { .. })
    }

    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::Timeout(item) | PutError::Closed(item) => item,
            PutError::TooLarge { item, .. }
            | PutError::Codec { item, .. }
            | PutError::Io { item, .. } => item,
        }
    }

    /// The same error carrying `item` instead: for wrappers that put a converted item.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> PutError<U> {
        match self {
            PutError::Full(item) => PutError::Full(f(item)),
            PutError::Timeout(item) => PutError::Timeout(f(item)),
            PutError::Closed(item) => PutError::Closed(f(item)),
            PutError::TooLarge { item, size, max } => PutError::TooLarge {
                item: f(item),
                size,
                max,
            },
            PutError::Codec { item, source } => PutError::Codec {
                item: f(item),
                source,
            },
            PutError::Io { item, source } => PutError::Io {
                item: f(item),
                source,
            },
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::Timeout(_) => f.write_str("Timeout(..)"),
            PutError::Closed(_) => f.write_str("Closed(..)"),
            PutError::TooLarge { size, max, .. } => f
                .debug_struct("TooLarge")
                .field("size", size)
                .field("max", max)
                .finish_non_exhaustive(),
            PutError::Codec { source, .. } => f
                .debug_struct("Codec")
                .field("source", source)
                .finish_non_exhaustive(),
            PutError::Io { source, .. } => f
                .debug_struct("Io")
                .field("source", source)
                .finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str(
                "the queue is full: wait with put() or put_timeout(), or get some items first",
            ),
            PutError::Timeout(_) => {
                f.write_str("timed out waiting for room in the queue: no item was taken in time")
            }
            PutError::Closed(_) => f.write_str(
                "the channel was shut down or this handle closed: it accepts no more items",
            ),
            PutError::TooLarge { size, max, .. } => write!(
                f,
                "the item encodes to {size} bytes, more than the {max} bytes this channel accepts: \
                 send it in parts or raise the limit"
            ),
            PutError::Codec { source, .. } => write!(f, "could not encode the item: {source}"),
            PutError::Io { source, .. } => write!(f, "I/O error while putting: {source}"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PutError::Codec { source, .. } => Some(source),
            PutError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a get failed.
///
/// ```
/// use conveyor_core::GetError;
///
/// let err = GetError::Empty;
/// assert!(err.is_empty() && !err.is_closed());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is empty and the call was not allowed to wait (`try_get`).
    Empty,
    /// The queue stayed empty for the whole timeout (`get_timeout`).
    Timeout,
    /// The channel was shut down and everything put before has been taken (or, after
    /// `shutdown(true)`, discarded).
    Closed,
    /// The incoming item is larger than this end accepts; it was not read.
    TooLarge {
        /// The announced size in bytes.
        size: u64,
        /// The largest size this end accepts.
        max: u64,
    },
    /// The item could not be decoded (the other end used another type or codec).
    Codec(CodecError),
    /// The operating system reported an error, or the data was not well formed.
    Io(io::Error),
}

impl GetError {
    /// Whether the queue was empty and the call did not wait.
    pub fn is_empty(&self) -> bool {
        matches!(self, GetError::Empty)
    }

    /// Whether the call waited for the whole timeout without an item arriving.
    pub fn is_timeout(&self) -> bool {
        matches!(self, GetError::Timeout)
    }

    /// Whether the channel was shut down and drained.
    pub fn is_closed(&self) -> bool {
        matches!(self, GetError::Closed)
    }

    /// Whether the incoming item was refused for its size.
    pub fn is_too_large(&self) -> bool {
        matches!(self, GetError::TooLarge { .. })
    }

    /// Whether the item could not be decoded.
    pub fn is_codec(&self) -> bool {
        matches!(self, GetError::Codec(_))
    }

    /// Whether the operating system reported an error.
    pub fn is_io(&self) -> bool {
        matches!(self, GetError::Io(_))
    }
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str(
                "the queue is empty: wait with get() or get_timeout(), or put some items first",
            ),
            GetError::Timeout => f.write_str("timed out waiting for an item: none was put in time"),
            GetError::Closed => {
                f.write_str("the channel was shut down and drained: no more items will arrive")
            }
            GetError::TooLarge { size, max } => write!(
                f,
                "the incoming item is {size} bytes, more than the {max} bytes this end accepts: \
                 raise the limit if the peer is trusted"
            ),
            GetError::Codec(e) => write!(f, "could not decode the item: {e}"),
            GetError::Io(e) => write!(f, "I/O error while getting: {e}"),
        }
    }
}

impl std::error::Error for GetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GetError::Codec(e) => Some(e),
            GetError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CodecError> for GetError {
    fn from(e: CodecError) -> Self {
        GetError::Codec(e)
    }
}

impl From<io::Error> for GetError {
    fn from(e: io::Error) -> Self {
        GetError::Io(e)
    }
}

/// Why `task_done` failed.
///
/// ```
/// use conveyor_core::TaskDoneError;
///
/// let err = TaskDoneError::TooManyCalls;
/// assert!(err.to_string().contains("more times"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskDoneError {
    /// `task_done` was called more times than items were put (Python's `ValueError`).
    TooManyCalls,
    /// The queue lives elsewhere (a server, shared memory) and could not be reached.
    Io(io::Error),
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDoneError::TooManyCalls => f.write_str(
                "task_done() called more times than there were items put: \
                 call it once per item taken",
            ),
            TaskDoneError::Io(e) => write!(f, "I/O error in task_done: {e}"),
        }
    }
}

impl std::error::Error for TaskDoneError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskDoneError::Io(e) => Some(e),
            TaskDoneError::TooManyCalls => None,
        }
    }
}

impl From<io::Error> for TaskDoneError {
    fn from(e: io::Error) -> Self {
        TaskDoneError::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_error_predicates_and_item() {
        let cases: Vec<(PutError<u8>, [bool; 3])> = vec![
            (PutError::Full(1), [true, false, false]),
            (PutError::Timeout(2), [false, true, false]),
            (PutError::Closed(3), [false, false, true]),
            (
                PutError::TooLarge {
                    item: 4,
                    size: 10,
                    max: 5,
                },
                [false, false, false],
            ),
        ];
        for (i, (err, [full, timeout, closed])) in cases.into_iter().enumerate() {
            assert_eq!(err.is_full(), full);
            assert_eq!(err.is_timeout(), timeout);
            assert_eq!(err.is_closed(), closed);
            assert!(!err.to_string().is_empty());
            assert_eq!(err.into_inner() as usize, i + 1);
        }
    }

    #[test]
    fn put_error_map_keeps_kind() {
        let e = PutError::Timeout(5u8).map(|v| v as u32 * 2);
        assert!(e.is_timeout());
        assert_eq!(e.into_inner(), 10u32);
    }

    #[test]
    fn get_error_predicates() {
        assert!(GetError::Empty.is_empty());
        assert!(GetError::Timeout.is_timeout());
        assert!(GetError::Closed.is_closed());
        assert!(!GetError::Closed.is_empty());
        let io = GetError::from(io::Error::other("boom"));
        assert!(io.is_io());
        assert!(std::error::Error::source(&io).is_some());
    }

    #[test]
    fn debug_does_not_need_item_debug() {
        struct Opaque;
        let e = PutError::Full(Opaque);
        assert_eq!(format!("{e:?}"), "Full(..)");
    }
}
