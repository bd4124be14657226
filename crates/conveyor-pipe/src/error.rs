//! Error types of this crate. Receives report [`GetError`](conveyor_core::GetError), as every
//! transport does; sends report [`SendError`] (which [`Channel::put`](conveyor_core::Channel)
//! turns into a [`PutError`](conveyor_core::PutError) carrying the item back); connecting and
//! accepting report [`ConnectError`].

use std::io;

use conveyor_core::CodecError;

/// Why a send failed. Nothing of the message reached the peer unless the error says otherwise.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// This end was closed for sending, or the peer has gone (the OS reported a broken pipe).
    #[error("the connection is closed for sending (this end was closed, or the peer has gone)")]
    Closed,
    /// The message is larger than this connection's maximum message size.
    #[error(
        "the message is {size} bytes, more than the {max} bytes this connection accepts: \
         send it in parts or raise the limit with set_max_message_size"
    )]
    TooLarge {
        /// The encoded size in bytes.
        size: u64,
        /// The connection's maximum.
        max: u64,
    },
    /// The value could not be encoded.
    #[error("could not encode the value: {0}")]
    Codec(#[from] CodecError),
    /// The operating system reported an error; part of the message may have been written, in
    /// which case the connection can no longer be used.
    #[error("I/O error while sending: {0}")]
    Io(#[from] io::Error),
}

impl SendError {
    /// Whether this end was closed or the peer has gone.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed)
    }

    /// Whether the message was over the size limit.
    pub fn is_too_large(&self) -> bool {
        matches!(self, SendError::TooLarge { .. })
    }
}

/// How an authentication handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The peer's answer to our challenge was wrong: it does not hold the same authkey.
    WrongDigest,
    /// The peer rejected our answer to its challenge (`#FAILURE#`): the authkeys differ.
    Rejected,
    /// The peer sent something that is not part of the handshake (or is not a
    /// `multiprocessing.connection` peer at all).
    Protocol,
    /// The peer asked for, or answered with, a digest this crate does not compute.
    UnsupportedDigest,
}

/// The authentication handshake failed; no application data was exchanged.
///
/// The same error as Python's `multiprocessing.AuthenticationError`.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: {detail} (do both ends use the same authkey?)")]
pub struct AuthenticationError {
    failure: AuthFailure,
    detail: String,
}

impl AuthenticationError {
    pub(crate) fn new(failure: AuthFailure, detail: impl Into<String>) -> Self {
        AuthenticationError {
            failure,
            detail: detail.into(),
        }
    }

    /// How it failed.
    pub fn failure(&self) -> AuthFailure {
        self.failure
    }

    /// A description of what went wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// Why connecting, or accepting a connection, failed.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The operating system reported an error (no listener at the address, the peer went away
    /// during the handshake, ...).
    #[error("I/O error while connecting: {0}")]
    Io(#[from] io::Error),
    /// The handshake did not finish within the handshake timeout.
    #[error(
        "the authentication handshake did not finish within {0:?}: \
         the peer is silent or does not expect an authkey"
    )]
    Timeout(std::time::Duration),
    /// The authentication handshake failed.
    #[error(transparent)]
    Authentication(#[from] AuthenticationError),
    /// The move to pipes both ends asked for
    /// ([`Connector::pipes`](crate::Connector::pipes), [`ListenerBuilder::pipes`](crate::ListenerBuilder::pipes))
    /// failed.
    #[error("moving the new connection to pipes failed: {0}")]
    Pipes(#[from] PipesError),
}

impl ConnectError {
    /// Whether the handshake failed on the authkey or the protocol.
    pub fn is_authentication(&self) -> bool {
        matches!(self, ConnectError::Authentication(_))
    }

    /// Whether the handshake timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout(_))
    }
}

/// Which pipe end a move to pipes expected from the peer (see [`PipesError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipeEnd {
    /// The read end of the pipe the peer's messages come through.
    Receive,
    /// The write end of the pipe this end's messages go through.
    Send,
}

impl std::fmt::Display for PipeEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PipeEnd::Receive => "the read end of the pipe to receive on",
            PipeEnd::Send => "the write end of the pipe to send on",
        })
    }
}

/// Why a move of a connection's messages to a pair of OS pipes failed (see
/// [`Connection::move_to_pipes`](crate::Connection::move_to_pipes) and
/// [`Connection::accept_pipes`](crate::Connection::accept_pipes)).
///
/// A connection that reports [`Unsupported`](PipesError::Unsupported) is untouched and goes
/// on over its socket. After any other error the two ends no longer agree on where messages
/// travel: drop the connection.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PipesError {
    /// This connection cannot move (nothing was sent or read): it is not a socket, it already
    /// moved, its messages travel through shared memory, it is closed for sending, bytes
    /// were read ahead, or (accepting side) `SIGPIPE` is not ignored in this process.
    #[error("this connection cannot move to pipes: {0}")]
    Unsupported(&'static str),
    /// The peer passed some other number of descriptors than the two pipe ends.
    #[error(
        "the peer passed {got} descriptors to move to pipes, not the 2 pipe ends expected: \
         refused"
    )]
    Count {
        /// How many descriptors came.
        got: usize,
    },
    /// The peer passed something that is not a pipe (a file, a socket, a device such as
    /// `/dev/zero` that would keep this end's thread reading forever).
    #[error("the peer passed something that is not a pipe as {end}: refused")]
    NotAPipe {
        /// Which end it was passed as.
        end: PipeEnd,
    },
    /// The peer passed a pipe end of the wrong direction (or a FIFO open both ways).
    #[error("the peer passed a pipe end of the wrong direction as {end}: refused")]
    WrongEnd {
        /// Which end it was passed as.
        end: PipeEnd,
    },
    /// The peer closed the connection before the exchange finished.
    #[error("the peer closed the connection before the move to pipes")]
    Closed,
    /// The operating system reported an error.
    #[error("I/O error while moving to pipes: {0}")]
    Io(#[from] io::Error),
}

impl PipesError {
    /// Whether the peer's descriptors were refused ([`Count`](PipesError::Count),
    /// [`NotAPipe`](PipesError::NotAPipe), [`WrongEnd`](PipesError::WrongEnd)).
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            PipesError::Count { .. } | PipesError::NotAPipe { .. } | PipesError::WrongEnd { .. }
        )
    }

    /// Whether the connection was left untouched ([`Unsupported`](PipesError::Unsupported)).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, PipesError::Unsupported(_))
    }
}

conveyor_core::debug_shows_message!(PipesError {
    Unsupported(why),
    Count { got },
    NotAPipe { end },
    WrongEnd { end },
    Closed,
    Io(e),
});

conveyor_core::debug_shows_message!(SendError {
    Closed,
    TooLarge { size, max },
    Codec(e),
    Io(e),
});

conveyor_core::debug_shows_message!(struct AuthenticationError { failure, detail });

conveyor_core::debug_shows_message!(ConnectError {
    Io(e),
    Timeout(limit),
    Authentication(e),
    Pipes(e),
});

#[cfg(test)]
mod tests {
    use super::*;

    /// `main` returning one of these prints its `Debug` form: it must carry the message.
    #[test]
    fn debug_shows_the_message_then_the_fields() {
        let e = SendError::TooLarge { size: 9, max: 4 };
        assert_eq!(
            format!("{e:?}"),
            format!("{e} (TooLarge {{ size: 9, max: 4 }})")
        );
        let e = ConnectError::Authentication(AuthenticationError::new(
            AuthFailure::WrongDigest,
            "digest mismatch",
        ));
        let d = format!("{e:?}");
        assert!(d.starts_with(&e.to_string()), "{d}");
        assert!(d.contains("do both ends use the same authkey?"), "{d}");
        assert!(
            d.ends_with(" (Authentication(AuthenticationError { failure: WrongDigest, detail: \"digest mismatch\" }))"),
            "{d}"
        );
    }
}
