//! A [`Connection`] travels into a child process inside its arguments.
//!
//! `Connection` implements `Serialize` and `Deserialize` through
//! [`conveyor_core::handoff`]: encoded while `conveyor-process` starts a child, the descriptor
//! is duplicated and inherited by that one child, which rebuilds the connection from it (with
//! the same direction, kind and maximum message size). Encoded anywhere else (put in a queue,
//! written to a file) it fails with a clear error, since a descriptor number means nothing in
//! another process.
//!
//! The parent keeps its own connection: after handing a pipe end to a child, drop it in the
//! parent (Python programs close it too), or the peer will not see end of file when the child
//! exits. [`Connection::close`] (a socket shutdown) reaches every copy.
//!
//! A connection that moved to pipes ([`Connection::move_to_pipes`]) is refused: its messages
//! travel on two more descriptors than the one handed over.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

use conveyor_core::Codec;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::connection::Connection;
use crate::lane::{IncomingLane, Lane};
use crate::sys::FdKind;

#[derive(Serialize)]
struct Outgoing<'a> {
    #[serde(serialize_with = "conveyor_core::handoff::fd::serialize")]
    fd: BorrowedFd<'a>,
    socket: bool,
    readable: bool,
    writable: bool,
    write_closed: bool,
    max_message_size: u64,
    /// Bytes read ahead and not yet received: the new owner receives them first.
    #[serde(with = "serde_bytes")]
    pending: Vec<u8>,
    /// The shared-memory lane, by its segments' names.
    lane: Option<&'a Lane>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(deserialize_with = "conveyor_core::handoff::fd::deserialize")]
    fd: OwnedFd,
    socket: bool,
    readable: bool,
    writable: bool,
    write_closed: bool,
    max_message_size: u64,
    #[serde(with = "serde_bytes")]
    pending: Vec<u8>,
    lane: Option<IncomingLane>,
}

impl<C: Codec> Serialize for Connection<C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.uses_pipes() {
            const WHY: &str = "a connection that moved to pipes cannot be handed to another \
                 process (its messages travel on two pipes besides its socket): hand it over \
                 before it moves, and let the child move it";
            // Some codecs (postcard) keep no message of their own: it is logged as well.
            tracing::warn!("{WHY}");
            return Err(serde::ser::Error::custom(WHY));
        }
        let (socket, readable, writable, write_closed, max_message_size) = self.wire_state();
        Outgoing {
            fd: self.as_fd(),
            socket,
            readable,
            writable,
            write_closed,
            max_message_size,
            pending: self.pending_bytes(),
            lane: self.lane(),
        }
        .serialize(s)
    }
}

impl<'de, C: Codec + Default> Deserialize<'de> for Connection<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Incoming::deserialize(d)?;
        let kind = if w.socket {
            FdKind::Socket
        } else {
            FdKind::Pipe
        };
        let mut conn = Connection::from_parts(w.fd, kind, w.readable, w.writable, C::default());
        if let Some(lane) = w.lane {
            conn = conn.with_lane(lane.adopt());
        }
        conn.set_max_message_size(w.max_message_size);
        if !w.pending.is_empty() {
            conn.set_pending(&w.pending);
        }
        if w.write_closed {
            conn.write_closed_flag().store(true, Ordering::Release);
        }
        Ok(conn)
    }
}
