//! [`Unavailable`]: the one error of a call whose answer lives elsewhere (a server, a peer, a
//! shared segment) and could not be had.
//!
//! A queue in this process always knows its length, its unfinished tasks and whether it was
//! shut down; a queue held by a manager server or by Redis knows them only by asking, and the
//! asking can fail. Rather than answer as if all were well (a length of 0, a `join` that
//! returns as if every task were done, a shutdown that only logs), [`QueueInfo`],
//! [`Joinable::join`] and [`Channel::shutdown`]/[`close`](Channel::close) return
//! `Result<_, Unavailable>`, and every transport fills it in the same way.
//!
//! [`QueueInfo`]: crate::QueueInfo
//! [`Joinable::join`]: crate::Joinable::join
//! [`Channel::shutdown`]: crate::Channel::shutdown
//! [`close`]: crate::Channel::close

use std::error::Error as StdError;
use std::fmt;
use std::io;

/// What kind of trouble made a call [`Unavailable`]: what a program can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnavailableKind {
    /// The server or peer could not be reached, or the connection to it dropped: it may have
    /// stopped, crashed or be restarting, or the network failed. Whether the call took effect
    /// there is not known.
    Unreachable,
    /// The server answered, but no longer holds the channel: it was restarted without its
    /// state, or the channel was removed. What the channel held is gone.
    Lost,
    /// The server, or the shared state, could not carry the call out: an error reply, an
    /// answer that makes no sense, a lock in shared memory that cannot be recovered.
    Failed,
}

impl UnavailableKind {
    /// What went wrong, for the message.
    fn what(self) -> &'static str {
        match self {
            UnavailableKind::Unreachable => "could not reach the server or peer",
            UnavailableKind::Lost => "the server no longer holds it",
            UnavailableKind::Failed => "the server or the shared state failed",
        }
    }

    /// What to do about it, for the message.
    fn advice(self) -> &'static str {
        match self {
            UnavailableKind::Unreachable => {
                "the answer is unknown and the call may not have taken effect: check that the \
                 server is running and reachable, then connect again and retry"
            }
            UnavailableKind::Lost => {
                "what it held is gone (was the server restarted?): create or open it again"
            }
            UnavailableKind::Failed => "the answer is unknown: see the cause",
        }
    }
}

impl fmt::Display for UnavailableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

/// A call that could not be carried out, or whose answer could not be known, because the
/// channel's state lives elsewhere (a server, a peer, a shared segment) and could not be
/// reached or used.
///
/// It is what [`QueueInfo`](crate::QueueInfo)'s methods, [`Joinable::join`](crate::Joinable::join)
/// and [`join_timeout`](crate::Joinable::join_timeout), and
/// [`Channel::shutdown`](crate::Channel::shutdown) and [`close`](crate::Channel::close) return
/// when they cannot answer truly. It carries the call that failed, the channel it was made on,
/// the [kind](UnavailableKind) of trouble, and the transport's own error as its typed
/// [`source`](std::error::Error::source) (downcast it to, say, `conveyor_manager::ManagerError`
/// or `conveyor_redis::Error` for the details).
///
/// # Who returns it
///
/// - In-process transports (conveyor-thread's `Queue`, `LifoQueue`, `PriorityQueue`) never do;
///   their inherent methods of the same names (`q.len()`, `q.join()`, `q.shutdown(false)`)
///   return plain values, so code that uses a thread queue directly never handles it. Only code
///   written over the traits sees the `Result`.
/// - conveyor-shm's queues answer [`QueueInfo`](crate::QueueInfo) and `join` from the shared
///   segment, and never return it there (their inherent methods return plain values too); a
///   `shutdown` returns it only if a lock in the segment cannot be recovered.
/// - A pipe `Connection`'s `close` and `shutdown` return it when what was buffered could not be
///   sent because the peer went away.
/// - The manager's `QueueProxy` and conveyor-redis's queues return it whenever the server does
///   not answer: `len` never answers 0, `join` never returns as if every task were done,
///   `shutdown` never only logs.
///
/// # Example
///
/// Generic code handles it like any other error; `?` turns it into a `Box<dyn Error>` or an
/// [`io::Error`]:
///
/// ```
/// use conveyor_core::{QueueInfo, Unavailable, UnavailableKind};
///
/// fn backlog<Q: QueueInfo>(q: &Q) -> Result<usize, Unavailable> {
///     let waiting = q.len()?;
///     Ok(waiting)
/// }
///
/// let e = Unavailable::new(
///     UnavailableKind::Unreachable,
///     "len",
///     "manager queue `jobs`",
///     std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
/// );
/// assert!(e.is_unreachable());
/// assert_eq!(e.operation(), "len");
/// assert!(e.to_string().contains("check that the server is running"));
/// let io: std::io::Error = e.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotConnected);
/// # let _ = backlog::<std::sync::Arc<dyn QueueInfo>>;
/// ```
#[derive(thiserror::Error)]
#[error("{operation} on {channel}: {kind} ({source}); {}", kind.advice())]
pub struct Unavailable {
    kind: UnavailableKind,
    operation: &'static str,
    channel: String,
    #[source]
    source: Box<dyn StdError + Send + Sync + 'static>,
}

crate::debug_shows_message!(struct Unavailable { kind, operation, channel, source });

impl Unavailable {
    /// `operation` (`"len"`, `"join"`, `"shutdown"`, ...) on `channel` (what it was made on, in
    /// the user's words: `"manager queue `jobs` at unix:/tmp/m.sock"`) failed for `source`.
    pub fn new(
        kind: UnavailableKind,
        operation: &'static str,
        channel: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Unavailable {
        Unavailable {
            kind,
            operation,
            channel: channel.into(),
            source: source.into(),
        }
    }

    /// What kind of trouble it was.
    pub fn kind(&self) -> UnavailableKind {
        self.kind
    }

    /// The call that failed (`"len"`, `"join"`, ...).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The channel it was made on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Whether the server or peer could not be reached ([`UnavailableKind::Unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        self.kind == UnavailableKind::Unreachable
    }

    /// Whether the server no longer holds the channel ([`UnavailableKind::Lost`]).
    pub fn is_lost(&self) -> bool {
        self.kind == UnavailableKind::Lost
    }

    /// The transport's own error, to downcast (`e.source_ref().downcast_ref::<MyError>()`).
    pub fn source_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The transport's own error, by value.
    pub fn into_source(self) -> Box<dyn StdError + Send + Sync + 'static> {
        self.source
    }
}

/// For code that reports I/O errors: `NotConnected` for an unreachable server, `NotFound` for
/// a lost channel, `Other` otherwise; the `Unavailable` is the I/O error's inner error.
impl From<Unavailable> for io::Error {
    fn from(e: Unavailable) -> io::Error {
        let kind = match e.kind {
            UnavailableKind::Unreachable => io::ErrorKind::NotConnected,
            UnavailableKind::Lost => io::ErrorKind::NotFound,
            UnavailableKind::Failed => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_says_what_failed_and_what_to_do() {
        let e = Unavailable::new(
            UnavailableKind::Lost,
            "join",
            "manager queue `q`",
            io::Error::other("NotFound: no object 3"),
        );
        let s = e.to_string();
        assert!(s.starts_with("join on manager queue `q`: "), "{s}");
        assert!(s.contains("no longer holds it"), "{s}");
        assert!(s.contains("no object 3"), "{s}");
        assert!(s.contains("create or open it again"), "{s}");
        assert!(e.is_lost() && !e.is_unreachable());
        let d = format!("{e:?}");
        assert!(d.starts_with(&s), "{d}");
        assert!(d.contains("Lost") && d.contains("\"join\""), "{d}");
    }

    #[test]
    fn keeps_its_typed_source() {
        #[derive(Debug)]
        struct Mine(u32);
        impl fmt::Display for Mine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "mine {}", self.0)
            }
        }
        impl StdError for Mine {}
        let e = Unavailable::new(UnavailableKind::Failed, "len", "x", Mine(7));
        let src = StdError::source(&e).expect("a source");
        assert_eq!(src.downcast_ref::<Mine>().map(|m| m.0), Some(7));
        assert_eq!(e.source_ref().downcast_ref::<Mine>().map(|m| m.0), Some(7));
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::Other);
        let inner = io.get_ref().and_then(|i| i.downcast_ref::<Unavailable>());
        assert_eq!(inner.map(Unavailable::operation), Some("len"));
    }
}
