//! Error types: one per operation, each telling apart the ways it can fail.
//!
//! A failed put always hands the item back ([`PutError::into_inner`]), so a caller can retry,
//! reroute or drop it on purpose; nothing is lost silently.

use std::fmt;
use std::io;

/// Implements `Debug` for an error type as its `Display` message followed by its fields, so that
/// a `main` returning the error (which prints `Error: {:?}`) shows the message that says what to
/// do, not only the variant's name:
///
/// ```text
/// Error: no entry point named `worker` is registered (known: none); register it with ...
///        (UnknownEntry { name: "worker", known: [] })
/// ```
///
/// List every variant with all its fields (struct variants) or a binding per field (tuple
/// variants); the match it writes is exhaustive, so a variant or field left out does not
/// compile. For a struct, write `struct Name { fields }` or `struct Name(bindings)`.
///
/// ```
/// use std::fmt;
///
/// enum Oops {
///     Missing { name: String },
///     Code(i32),
///     Gone,
/// }
///
/// impl fmt::Display for Oops {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         f.write_str("something went wrong: check the input")
///     }
/// }
///
/// conveyor_core::debug_shows_message!(Oops {
///     Missing { name },
///     Code(code),
///     Gone,
/// });
///
/// let d = format!("{:?}", Oops::Missing { name: "x".into() });
/// assert_eq!(d, "something went wrong: check the input (Missing { name: \"x\" })");
/// assert!(format!("{:?}", Oops::Code(3)).ends_with("(Code(3))"));
/// assert!(format!("{:?}", Oops::Gone).ends_with("(Gone)"));
/// ```
#[macro_export]
macro_rules! debug_shows_message {
    (struct $ty:ident { $($field:ident),* $(,)? }) => {
        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::error::debug_with_message(f, self, |f| {
                    let $ty { $($field),* } = self;
                    $crate::__debug_variant!(f, $ty { $($field),* })
                })
            }
        }
    };
    (struct $ty:ident ( $($field:ident),* $(,)? )) => {
        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::error::debug_with_message(f, self, |f| {
                    let $ty ( $($field),* ) = self;
                    $crate::__debug_variant!(f, $ty ( $($field),* ))
                })
            }
        }
    };
    ($ty:ident {
        $($variant:ident $({ $($field:ident),* $(,)? })? $(( $($tfield:ident),* $(,)? ))?),* $(,)?
    }) => {
        impl ::core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                $crate::error::debug_with_message(f, self, |f| match self {
                    $(
                        $ty::$variant $({ $($field),* })? $(( $($tfield),* ))? => {
                            $crate::__debug_variant!(
                                f, $variant $({ $($field),* })? $(( $($tfield),* ))?
                            )
                        }
                    )*
                })
            }
        }
    };
}

/// The `Debug` form of [`debug_shows_message!`]: `message (fields)`, where `fields` writes the
/// variant and its fields. An error among the fields of another (a source) shows its fields
/// alone, since the outer message already includes the inner one.
pub fn debug_with_message(
    f: &mut fmt::Formatter<'_>,
    message: &dyn fmt::Display,
    fields: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    use std::cell::Cell;
    thread_local!(static NESTED: Cell<bool> = const { Cell::new(false) });
    /// Clears the flag however the fields' formatting ends (a panic included).
    struct Outer;
    impl Drop for Outer {
        fn drop(&mut self) {
            NESTED.with(|n| n.set(false));
        }
    }
    if NESTED.with(Cell::get) {
        return fields(f);
    }
    write!(f, "{message} (")?;
    NESTED.with(|n| n.set(true));
    let outer = Outer;
    let written = fields(f);
    drop(outer);
    written?;
    f.write_str(")")
}

/// One variant's fields for [`debug_shows_message!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __debug_variant {
    ($f:ident, $v:ident { $($field:ident),* }) => {
        $f.debug_struct(stringify!($v))
            $(.field(stringify!($field), $field))*
            .finish()
    };
    ($f:ident, $v:ident ( $($field:ident),* )) => {
        $f.debug_tuple(stringify!($v))
            $(.field($field))*
            .finish()
    };
    ($f:ident, $v:ident) => {
        $f.write_str(stringify!($v))
    };
}

/// Why a value could not be encoded or decoded by a [`Codec`](crate::Codec).
#[derive(Clone, PartialEq, Eq)]
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

debug_shows_message!(struct CodecError { codec, message });

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
    /// The message, then the variant and its fields (the item is left out: `T` need not be
    /// `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_with_message(f, self, |f| match self {
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
        })
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

debug_shows_message!(GetError {
    Empty,
    Timeout,
    Closed,
    TooLarge { size, max },
    Codec(e),
    Io(e),
});

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
#[non_exhaustive]
pub enum TaskDoneError {
    /// `task_done` was called more times than items were put (Python's `ValueError`).
    TooManyCalls,
    /// The queue lives in shared memory and its state could not be used (a lock that cannot
    /// be recovered).
    Io(io::Error),
    /// The queue lives on a server that could not be reached or no longer holds it: whether
    /// the task was marked done is not known.
    Unavailable(crate::Unavailable),
}

impl TaskDoneError {
    /// Whether `task_done` was called more times than items were put.
    pub fn is_too_many_calls(&self) -> bool {
        matches!(self, TaskDoneError::TooManyCalls)
    }

    /// Whether the queue's server could not be reached or no longer holds it.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, TaskDoneError::Unavailable(_))
    }
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDoneError::TooManyCalls => f.write_str(
                "task_done() called more times than there were items put: \
                 call it once per item taken",
            ),
            TaskDoneError::Io(e) => write!(f, "I/O error in task_done: {e}"),
            TaskDoneError::Unavailable(e) => write!(f, "task_done failed: {e}"),
        }
    }
}

impl std::error::Error for TaskDoneError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TaskDoneError::Io(e) => Some(e),
            TaskDoneError::Unavailable(e) => Some(e),
            TaskDoneError::TooManyCalls => None,
        }
    }
}

debug_shows_message!(TaskDoneError {
    TooManyCalls,
    Io(e),
    Unavailable(e),
});

impl From<crate::Unavailable> for TaskDoneError {
    fn from(e: crate::Unavailable) -> Self {
        TaskDoneError::Unavailable(e)
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
        assert!(format!("{e:?}").ends_with(" (Full(..))"), "{e:?}");
    }

    /// `main` returning one of these prints its `Debug` form: it must carry the message.
    #[test]
    fn debug_forms_carry_the_message_then_the_fields() {
        fn check(debug: String, display: String, fields: &str) {
            assert!(debug.starts_with(&display), "{debug:?} lacks {display:?}");
            assert!(debug.ends_with(&format!(" ({fields})")), "{debug}");
        }
        let e = PutError::TooLarge {
            item: (),
            size: 9,
            max: 4,
        };
        check(
            format!("{e:?}"),
            e.to_string(),
            "TooLarge { size: 9, max: 4, .. }",
        );
        let e = GetError::TooLarge { size: 9, max: 4 };
        check(
            format!("{e:?}"),
            e.to_string(),
            "TooLarge { size: 9, max: 4 }",
        );
        let e = GetError::Closed;
        check(format!("{e:?}"), e.to_string(), "Closed");
        let e = GetError::Codec(CodecError::new("postcard", "unexpected end"));
        assert!(format!("{e:?}").contains("unexpected end"));
        // the source shows its fields alone: its message is in the outer one already
        assert!(
            format!("{e:?}").ends_with(
                " (Codec(CodecError { codec: \"postcard\", message: \"unexpected end\" }))"
            ),
            "{e:?}"
        );
        let e = TaskDoneError::TooManyCalls;
        check(format!("{e:?}"), e.to_string(), "TooManyCalls");
        let e = CodecError::new("pickle", "bad opcode");
        check(
            format!("{e:?}"),
            e.to_string(),
            "CodecError { codec: \"pickle\", message: \"bad opcode\" }",
        );
    }
}
