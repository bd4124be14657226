//! One connection to a manager server, on conveyor-pipe's [`Connection`], and the one request
//! loop every call, batch and proxy goes through.
//!
//! The bytes are conveyor-pipe's: CPython's `multiprocessing.connection` framing and authkey
//! handshake, buffered sends written by one flush (or by the next receive), reads that take
//! in every small frame that has arrived with one system call, and the adaptive spin before
//! a receive sleeps. A [`Wire`] is that connection as both sides of the manager use it, on
//! its socket or, after the move below, on two OS pipes; [`Conn`] adds what a client needs
//! on top: request ids, the hello, and [`Conn::pipeline`], which keeps up to [`WINDOW`] bytes
//! of requests in flight and hands each reply to the caller in order.
//!
//! **Pipes on one machine.** A client that reached the server over a Unix socket asks
//! ([`Request::Pipes`]) to move the connection's frames to a pair of pipes right after hello,
//! and the two sides move with conveyor-pipe's [`Connection::move_to_pipes`] and
//! [`Connection::accept_pipes`]: the client makes the pipes and passes the server's ends over
//! the socket; the server takes only a pipe's read end for requests and a pipe's write end for
//! replies (anything else, a device such as `/dev/zero` say, is refused and the connection
//! closed). The socket stays open to tell the server that the client went and to be shut down
//! at the server's shutdown. A pipe message costs less than a Unix socket message (socket
//! buffers are allocated and accounted per message): side by side on the loaded 2-vCPU
//! machine, one client's dict set+get on this module's socket ran at 0.6-0.75x the earlier
//! piped build's rate, and at 0.99x once moved to pipes (2026-12-06). TCP connections stay on their
//! socket; so does a connection where the pipes cannot be made, or where `SIGPIPE` is not
//! ignored or handled in either process (a write to a closed pipe raises it; Rust and Python
//! programs ignore it from the start).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use conveyor_core::{Codec, GetError, Postcard};
use conveyor_pipe::{Address, ConnectError, Connection, Connector, PipesError, SendError};

use crate::error::{ErrorKind, ManagerError, RemoteError, Result};
use crate::protocol::{decode_frame, Reply, Request, Response, MAGIC, PROTOCOL_VERSION};

/// The largest reply a client accepts: 1 GiB.
const MAX_REPLY: u64 = 1 << 30;

/// The most request bytes in flight (sent, not yet answered) while requests are pipelined:
/// below what the socket buffers of both sides hold together, so that neither side ever
/// blocks writing while the other does.
pub const WINDOW: usize = 128 * 1024;

/// The error for a request of `size` bytes where the server accepts `max`: refused before
/// anything of it is sent.
fn too_large(size: usize, max: usize) -> ManagerError {
    ManagerError::Remote(RemoteError::new(
        ErrorKind::TooLarge,
        format!("the request is {size} bytes, more than the {max} bytes the server accepts"),
    ))
}

/// A connection's failure to send, as a manager error (the typed source kept).
pub(crate) fn send_error(e: SendError) -> ManagerError {
    match e {
        SendError::Io(e) => ManagerError::Io(e),
        SendError::Closed => ManagerError::Io(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the manager closed the connection",
        )),
        other => ManagerError::Io(io::Error::other(other)),
    }
}

/// A connection's failure to receive, as a manager error (the typed source kept).
pub(crate) fn recv_error(e: GetError) -> ManagerError {
    match e {
        GetError::Io(e) => ManagerError::Io(e),
        GetError::Closed => ManagerError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the manager closed the connection (the server stopped or dropped this client)",
        )),
        other => ManagerError::Io(io::Error::new(io::ErrorKind::InvalidData, other)),
    }
}

fn connect_error(e: ConnectError) -> ManagerError {
    match e {
        ConnectError::Io(e) => ManagerError::Io(e),
        other if other.is_authentication() || other.is_timeout() => ManagerError::Auth(other),
        other => ManagerError::Io(io::Error::other(other)),
    }
}

/// Shuts a socket down both ways from another thread, waking a receive blocked on it: what
/// the server calls on every connection when it stops. It holds a duplicate of the
/// descriptor, so it never touches a descriptor number reused by something else.
#[derive(Debug)]
pub(crate) struct Closer(UnixStream);

impl Closer {
    /// A closer for `socket` (a Unix or TCP socket: `shutdown(2)` is the same call for both).
    pub(crate) fn new(socket: impl AsFd) -> io::Result<Closer> {
        Ok(Closer(UnixStream::from(
            socket.as_fd().try_clone_to_owned()?,
        )))
    }

    /// Shuts the socket down; errors (already shut down, not connected) mean there is
    /// nothing left to wake.
    pub(crate) fn close(&self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// A manager connection as both sides use it: conveyor-pipe's [`Connection`], on its socket or,
/// after a move ([`Connection::move_to_pipes`], [`Connection::accept_pipes`]), on two pipes
/// with the socket kept to watch the peer. Sends are buffered until a flush or the next
/// receive that would wait (so replies to pipelined requests go out together).
#[derive(Debug)]
pub(crate) struct Wire {
    conn: Connection,
}

// conveyor-pipe's pipes hold what a pipelining client keeps in flight in each direction, so
// neither side blocks writing while the other does.
const _: () = assert!(conveyor_pipe::PIPE_CAPACITY >= 2 * WINDOW);

impl Wire {
    /// The connection on `socket`, accepting frames up to `max` bytes.
    pub(crate) fn new(socket: Connection, max: u64) -> Wire {
        socket.set_buffered_sends(true);
        socket.set_max_message_size(max);
        Wire { conn: socket }
    }

    /// The connection (its socket: a closer is made from it).
    pub(crate) fn socket(&self) -> &Connection {
        &self.conn
    }

    /// Whether frames go through pipes.
    #[cfg(test)]
    pub(crate) fn uses_pipes(&self) -> bool {
        self.conn.uses_pipes()
    }

    /// Whether this side could move to pipes now (see [`Connection::can_move_to_pipes`]).
    pub(crate) fn can_move_to_pipes(&self) -> bool {
        self.conn.can_move_to_pipes()
    }

    /// Sets the largest frame accepted and sent.
    pub(crate) fn set_max_message_size(&self, max: u64) {
        self.conn.set_max_message_size(max);
    }

    /// Queues one frame (written by the next flush, or receive that waits).
    pub(crate) fn send_bytes(&self, frame: &[u8]) -> Result<(), SendError> {
        self.conn.send_bytes(frame)
    }

    /// Writes every queued frame and then `frame`, in one write where they fit.
    pub(crate) fn send_bytes_now(&self, frame: &[u8]) -> Result<(), SendError> {
        self.conn.send_bytes_now(frame)
    }

    /// Whether the next frame was already read ahead (a pipelined request).
    pub(crate) fn has_read_ahead(&self) -> bool {
        self.conn.has_read_ahead()
    }

    /// Writes every queued frame.
    pub(crate) fn flush(&self) -> Result<(), SendError> {
        self.conn.flush()
    }

    /// Receives one frame into `buf`. Frames queued for sending are written first unless the
    /// next frame was already read ahead.
    pub(crate) fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        self.conn.recv_bytes_into(buf)
    }

    /// Whether the peer has gone (closed or shut down its socket, or closed its pipe).
    pub(crate) fn hung_up(&self) -> bool {
        self.conn.hung_up().unwrap_or(true)
    }

    /// The client side of the move to pipes, after the server agreed: conveyor-pipe's
    /// [`Connection::move_to_pipes`] (which tells the server if it declines after all).
    fn move_to_pipes(&mut self) -> Result<bool, PipesError> {
        self.conn.move_to_pipes()
    }

    /// The server side of the move to pipes: conveyor-pipe's [`Connection::accept_pipes`],
    /// which refuses anything but two pipe ends of the right direction and watches the
    /// socket, so that the client going or the server's shutdown ends a wait on the request
    /// pipe.
    pub(crate) fn take_over(&mut self) -> Result<bool, PipesError> {
        self.conn.accept_pipes()
    }
}

/// One authenticated connection of a client, with the ids of its requests.
pub(crate) struct Conn {
    wire: Wire,
    next_id: u64,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    /// The (id, size) of each request in flight during a pipeline, kept between calls so
    /// that a call (a pipeline of one) allocates nothing.
    in_flight: VecDeque<(u64, usize)>,
    /// Set after a failure that may have left the stream mid-frame: not used again.
    pub(crate) broken: bool,
}

impl Conn {
    /// Connects to `address`, authenticates with `authkey` (the handshake bounded by
    /// `handshake_timeout`), and says hello. Answers the connection and the largest request
    /// the server accepts.
    pub(crate) fn open(
        address: &Address,
        authkey: &[u8],
        handshake_timeout: Option<Duration>,
    ) -> Result<(Conn, usize)> {
        let conn = Connector::new()
            .authkey(authkey)
            .handshake_timeout(handshake_timeout)
            .connect(address)
            .map_err(connect_error)?;
        let mut conn = Conn {
            wire: Wire::new(conn, MAX_REPLY),
            next_id: 0,
            out: Vec::new(),
            inbuf: Vec::new(),
            in_flight: VecDeque::new(),
            broken: false,
        };
        let max = conn.request(
            usize::MAX,
            &Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            },
            |r| match r {
                Reply::Hello { version, max_frame } if version == PROTOCOL_VERSION => Ok(max_frame),
                other => Err(crate::protocol::unexpected(&other)),
            },
        )?;
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        if matches!(address, Address::Unix(_)) {
            conn.move_to_pipes(max)?;
        }
        tracing::debug!(%address, "connected to a manager");
        Ok((conn, max))
    }

    /// On a Unix socket, moves the connection's frames to a pair of pipes (see the module's
    /// documentation). If this side cannot move, the server declines, or the pipes cannot be
    /// made, the connection stays on the socket.
    fn move_to_pipes(&mut self, max: usize) -> Result<()> {
        if !self.wire.can_move_to_pipes() {
            tracing::debug!("the manager connection stays on its socket (SIGPIPE not ignored?)");
            return Ok(());
        }
        match self.request(max, &Request::Pipes, crate::protocol::unit) {
            Ok(()) => match self.wire.move_to_pipes() {
                Ok(moved) => {
                    tracing::debug!(moved, "manager connection's move to pipes");
                    Ok(())
                }
                Err(e) => {
                    self.broken = true;
                    Err(ManagerError::Io(io::Error::other(e)))
                }
            },
            Err(ManagerError::Remote(e)) => {
                tracing::debug!(error = %e, "manager declined pipes; staying on the socket");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The connection's wire (tests look at it).
    #[cfg(test)]
    pub(crate) fn wire(&self) -> &Wire {
        &self.wire
    }

    /// Sends one request (refused here if it is larger than `max`, the server's limit) and
    /// hands its reply to `f`. The request is written at once, in the same system call as
    /// anything still queued, so the receive that follows finds nothing to flush: one turn of
    /// the connection's writer lock per call instead of two.
    pub(crate) fn request<R>(
        &mut self,
        max: usize,
        req: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        self.check_usable()?;
        let id = self
            .encode_next(|out| Postcard.encode(req, out).map(|()| true).map_err(Into::into))?
            .expect("one request was encoded");
        if self.out.len() > max {
            return Err(too_large(self.out.len(), max));
        }
        if let Err(e) = self.wire.send_bytes_now(&self.out) {
            self.broken = true;
            return Err(send_error(e));
        }
        let mut f = Some(f);
        let mut answer = None;
        self.receive(id, &mut |resp| {
            let f = f.take().expect("one request, one reply");
            answer = Some(match resp {
                Response::Ok(r) => f(r),
                Response::Err(e) => Err(e.into()),
            });
            Ok(())
        })?;
        answer.expect("receive hands its reply over or fails")
    }

    /// Encodes the next request into `out`: a new id, then what `next` writes. Answers the
    /// id, or `None` if `next` had no request (the id is then not used).
    fn encode_next(
        &mut self,
        next: impl FnOnce(&mut Vec<u8>) -> Result<bool>,
    ) -> Result<Option<u64>> {
        self.out.clear();
        let id = self.next_id + 1;
        Postcard.encode(&id, &mut self.out)?;
        if !next(&mut self.out)? {
            return Ok(None);
        }
        self.next_id = id;
        Ok(Some(id))
    }

    /// An error unless the connection is still usable.
    fn check_usable(&self) -> Result<()> {
        if self.broken {
            return Err(ManagerError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection to the manager failed earlier: connect again",
            )));
        }
        Ok(())
    }

    /// The request loop. `next` encodes the next request into the buffer it is given (after
    /// its id) and answers whether there was one; `reply` gets each reply in order. Requests
    /// are sent while fewer than [`WINDOW`] bytes are in flight, the sends flushed before
    /// each wait for a reply, so a long run of requests costs a few large writes and reads.
    ///
    /// A request larger than `max` is refused before anything of it is sent. A failure of
    /// the connection, or a reply that does not follow the protocol, marks the connection
    /// broken; an error `reply` returns stops the loop and is returned.
    pub(crate) fn pipeline(
        &mut self,
        max: usize,
        next: impl FnMut(&mut Vec<u8>) -> Result<bool>,
        reply: impl FnMut(Response<'_>) -> Result<()>,
    ) -> Result<()> {
        self.check_usable()?;
        let mut in_flight = std::mem::take(&mut self.in_flight);
        in_flight.clear();
        let result = self.pipeline_with(&mut in_flight, max, next, reply);
        self.in_flight = in_flight;
        result
    }

    /// [`pipeline`](Conn::pipeline), with `in_flight` (empty) to keep its requests in.
    fn pipeline_with(
        &mut self,
        in_flight: &mut VecDeque<(u64, usize)>,
        max: usize,
        mut next: impl FnMut(&mut Vec<u8>) -> Result<bool>,
        mut reply: impl FnMut(Response<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut in_flight_bytes = 0usize;
        // An encoded request that did not fit in the window yet: (id, its bytes in `out`).
        let mut waiting: Option<u64> = None;
        let mut done = false;
        loop {
            while !done {
                if waiting.is_none() {
                    let Some(id) = self.encode_next(&mut next)? else {
                        done = true;
                        break;
                    };
                    if self.out.len() > max {
                        // Nothing of it was sent; the replies of those before it are read
                        // first, so the connection stays at a frame boundary.
                        self.drain(in_flight, &mut reply)?;
                        return Err(too_large(self.out.len(), max));
                    }
                    waiting = Some(id);
                }
                let bytes = self.out.len();
                if !in_flight.is_empty() && in_flight_bytes + bytes > WINDOW {
                    break;
                }
                let id = waiting.take().expect("set above");
                if let Err(e) = self.wire.send_bytes(&self.out) {
                    self.broken = true;
                    return Err(send_error(e));
                }
                in_flight.push_back((id, bytes));
                in_flight_bytes += bytes;
            }
            let Some((id, bytes)) = in_flight.pop_front() else {
                return Ok(());
            };
            in_flight_bytes -= bytes;
            self.receive(id, &mut reply)?;
        }
    }

    /// Reads the replies of every request still in flight, handing them to `reply`.
    fn drain(
        &mut self,
        in_flight: &mut VecDeque<(u64, usize)>,
        reply: &mut impl FnMut(Response<'_>) -> Result<()>,
    ) -> Result<()> {
        while let Some((id, _)) = in_flight.pop_front() {
            self.receive(id, reply)?;
        }
        Ok(())
    }

    /// Receives the reply to request `id` (flushing the sends first) and hands it over.
    fn receive(
        &mut self,
        id: u64,
        reply: &mut impl FnMut(Response<'_>) -> Result<()>,
    ) -> Result<()> {
        if let Err(e) = self.wire.recv_bytes_into(&mut self.inbuf) {
            self.broken = true;
            return Err(recv_error(e));
        }
        let (rid, resp) = match decode_frame(&self.inbuf) {
            Ok(v) => v,
            Err(e) => {
                self.broken = true;
                return Err(e);
            }
        };
        if rid != id {
            self.broken = true;
            return Err(match resp {
                // An error about no request in particular (id 0: an oversize frame); the
                // server closes the connection after it.
                Response::Err(e) => e.into(),
                Response::Ok(_) => {
                    ManagerError::protocol(format!("reply {rid} came for request {id}"))
                }
            });
        }
        reply(resp)
    }
}
