//! Errors: what the server answers ([`RemoteError`]) and what a client call returns
//! ([`ManagerError`]).

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

use conveyor_core::CodecError;

/// What went wrong on the server, as a category a program can act on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No object has that name or id (deleted, or never made).
    NotFound,
    /// The object exists but is of another kind, or the operation does not apply to it.
    WrongType,
    /// The index is out of range (Python's `IndexError`).
    IndexOutOfRange,
    /// The request could not be decoded: a bug or a stray peer.
    Malformed,
    /// The request is larger than the server accepts.
    TooLarge,
    /// A release of a lock this connection does not hold.
    NotOwner,
    /// This connection already holds this (non-reentrant) lock: waiting would never end.
    WouldDeadlock,
    /// A release of a bounded semaphore already at its bound.
    TooManyReleases,
    /// The server is shutting down.
    ShuttingDown,
    /// The barrier was broken (aborted, reset, timed out, or a waiter's client went away).
    BrokenBarrier,
    /// A wait ran out of time.
    Timeout,
    /// The queue is full and the put was not allowed to wait.
    Full,
    /// The queue is empty and the get was not allowed to wait.
    Empty,
    /// The queue is closed (and, for a get, drained).
    Closed,
    /// `task_done` was called more times than items were put.
    TooManyTaskDone,
    /// The client speaks another protocol version.
    Version,
    /// Something that should not happen on the server.
    Internal,
    /// The operation would take a number past what its type holds (a counter, a semaphore's
    /// permits, a reentrant lock's depth); nothing was changed.
    Overflow,
}

/// An error reply from the server: a kind and a message for people.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// The category.
    pub kind: ErrorKind,
    /// What happened and what to do about it.
    pub message: String,
}

impl RemoteError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RemoteError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for RemoteError {}

/// Why a manager call failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The server did the request and answered with an error.
    #[error("the manager refused the request: {0}")]
    Remote(#[from] RemoteError),
    /// The connection failed (the server is gone, or the network).
    #[error("I/O error talking to the manager: {0} (is the server still running?)")]
    Io(#[from] io::Error),
    /// A value could not be encoded or decoded: the two sides use different types for the
    /// same object.
    #[error("{0}")]
    Codec(#[from] CodecError),
    /// A reply could not be decoded (the server runs another version, or is another
    /// program); the source is postcard's error.
    #[error(
        "a reply from the manager could not be decoded: {0} (do both sides run the same version?)"
    )]
    Decode(#[source] postcard::Error),
    /// The peer does not follow the protocol (another program, or another version).
    #[error("manager protocol error: {0}")]
    Protocol(String),
    /// The server refused the authkey, the client refused the server's, or the handshake
    /// did not finish in time; the source says which.
    #[error("authentication with the manager failed: {0} (do both sides use the same authkey?)")]
    Auth(#[source] conveyor_pipe::ConnectError),
}

impl ManagerError {
    /// The server's error kind, if the server answered with an error.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ManagerError::Remote(e) => Some(e.kind),
            _ => None,
        }
    }

    /// Whether no object had that name.
    pub fn is_not_found(&self) -> bool {
        self.kind() == Some(ErrorKind::NotFound)
    }

    /// Whether the object has another kind, or a value has another type.
    pub fn is_wrong_type(&self) -> bool {
        self.kind() == Some(ErrorKind::WrongType) || matches!(self, ManagerError::Codec(_))
    }

    /// Whether the connection to the server failed.
    pub fn is_io(&self) -> bool {
        matches!(self, ManagerError::Io(_))
    }

    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        ManagerError::Protocol(msg.into())
    }

    /// This error as an `io::Error`, for traits whose errors only carry one.
    pub fn into_io(self) -> io::Error {
        match self {
            ManagerError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// The result of a manager call.
pub type Result<T, E = ManagerError> = std::result::Result<T, E>;

conveyor_core::debug_shows_message!(ManagerError {
    Remote(e),
    Io(e),
    Codec(e),
    Decode(e),
    Protocol(message),
    Auth(e),
});

#[cfg(test)]
mod tests {
    use super::*;

    /// `main` returning one of these prints its `Debug` form: it must carry the message.
    #[test]
    fn debug_shows_the_message_then_the_fields() {
        let e = ManagerError::Protocol("reply to an unknown request".into());
        assert_eq!(
            format!("{e:?}"),
            format!("{e} (Protocol(\"reply to an unknown request\"))")
        );
    }
}
