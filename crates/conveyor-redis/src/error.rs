//! [`Error`]: what can go wrong between a queue handle and its Redis server.
//!
//! The `Channel` methods report these inside `PutError::Io` and `GetError::Io`, as an
//! [`std::io::Error`] whose source is the [`Error`] (reach it with `io_error.get_ref()` and
//! `downcast_ref::<Error>()`); `QueueInfo`'s methods, `join`, `join_timeout`, `shutdown`,
//! `close` and `task_done` inside a [`conveyor_core::Unavailable`] whose source is the
//! [`Error`]. No detail is lost, and no call answers as if the server had when it did not.

use std::io;
use std::time::Duration;

/// Why a Redis queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not parse.
    #[error(
        "invalid Redis URL {url:?}: {source} \
         (expected redis://[user:password@]host[:port][/db], rediss://... for TLS, or redis+unix:///path)"
    )]
    Url {
        /// The URL as given (its password blanked).
        url: String,
        /// What redis-rs reported.
        #[source]
        source: redis::RedisError,
    },
    /// No connection could be made within the reconnect budget.
    #[error(
        "could not connect to the Redis server at {addr} ({attempts} attempts over {waited:?}): \
         {source}; is redis-server running there, and are the user and password right?"
    )]
    Connect {
        /// The server's address.
        addr: String,
        /// How many connections were tried.
        attempts: u32,
        /// How long they took in all.
        waited: Duration,
        /// The last failure.
        #[source]
        source: redis::RedisError,
    },
    /// A command failed (a server error, or the connection broke while it was in flight).
    #[error("Redis command {command} failed: {source}")]
    Command {
        /// What was being done (`"put"`, `"get"`, ...).
        command: &'static str,
        /// What redis-rs reported.
        #[source]
        source: redis::RedisError,
    },
    /// The connection broke while a get was in flight, so whether it took an item is unknown.
    #[error(
        "the connection to Redis broke during a get of queue {name:?}: an item it took is \
         redelivered after the visibility timeout on a JoinableRedisQueue, and lost on a \
         RedisQueue (which acknowledges on delivery); the next call reconnects"
    )]
    GetInterrupted {
        /// The queue's name.
        name: String,
        /// What redis-rs reported.
        #[source]
        source: redis::RedisError,
    },
    /// The queue's keys are gone: removed, or the server restarted without persistence.
    #[error(
        "the queue {name:?} is gone from the Redis server (its keys were removed, or the server \
         restarted without persistence): items put before may be lost; open the queue again to \
         start a new one, and enable appendonly on the server to keep queues across restarts"
    )]
    QueueLost {
        /// The queue's name.
        name: String,
    },
    /// The queue exists with another bound than the one asked for.
    #[error(
        "the queue {name:?} already exists with maxsize {existing}, not {requested}: \
         open it without .maxsize(), or pick another name (0 means unbounded)"
    )]
    MaxsizeMismatch {
        /// The queue's name.
        name: String,
        /// The bound it has.
        existing: usize,
        /// The bound asked for.
        requested: usize,
    },
    /// The server answered in a way this crate does not expect (another program wrote the
    /// queue's keys, or the server is too old: Redis 7.0 or later is needed).
    #[error(
        "unexpected answer from Redis to {command}: {detail} \
         (Redis 7.0 or later is needed; do other programs write this queue's keys?)"
    )]
    Protocol {
        /// What was being done.
        command: &'static str,
        /// What came back.
        detail: String,
    },
}

impl Error {
    /// Whether the queue's keys are gone from the server (see [`Error::QueueLost`]).
    pub fn is_queue_lost(&self) -> bool {
        matches!(self, Error::QueueLost { .. })
    }

    /// Whether the connection broke (the next call reconnects, within the reconnect budget).
    pub(crate) fn is_connection_dropped(&self) -> bool {
        match self {
            Error::Command { source, .. } => source.is_connection_dropped() || source.is_io_error(),
            Error::GetInterrupted { .. } => true,
            _ => false,
        }
    }

    /// This error as the [`Unavailable`](conveyor_core::Unavailable) of `operation` on the
    /// queue `name`: unreachable if no connection could be made or it broke, lost if the
    /// queue's keys are gone, failed otherwise.
    pub(crate) fn unavailable(
        self,
        operation: &'static str,
        name: &str,
    ) -> conveyor_core::Unavailable {
        use conveyor_core::UnavailableKind as K;
        let kind = match &self {
            Error::Connect { .. } => K::Unreachable,
            Error::QueueLost { .. } => K::Lost,
            e if e.is_connection_dropped() => K::Unreachable,
            _ => K::Failed,
        };
        conveyor_core::Unavailable::new(kind, operation, format!("Redis queue `{name}`"), self)
    }

    fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Url { .. } | Error::MaxsizeMismatch { .. } => io::ErrorKind::InvalidInput,
            Error::Connect { .. } => io::ErrorKind::ConnectionRefused,
            Error::GetInterrupted { .. } => io::ErrorKind::ConnectionAborted,
            Error::QueueLost { .. } => io::ErrorKind::NotFound,
            Error::Protocol { .. } => io::ErrorKind::InvalidData,
            Error::Command { source, .. } => {
                if source.is_connection_dropped() || source.is_io_error() {
                    io::ErrorKind::ConnectionAborted
                } else {
                    io::ErrorKind::Other
                }
            }
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_keeps_the_typed_source() {
        let io: io::Error = Error::QueueLost { name: "q".into() }.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        let inner = io
            .get_ref()
            .and_then(|e| e.downcast_ref::<Error>())
            .unwrap();
        assert!(inner.is_queue_lost());
        assert!(io.to_string().contains("appendonly"));
    }
}
