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
//! **Pipes on one machine.** A client that reached the server over a Unix socket moves the
//! connection's frames to a pair of pipes right after hello: it makes them and hands the
//! server's ends over the socket ([`Connection::send_fds`]); the server takes only a pipe's
//! read end for requests and a pipe's write end for replies (anything else, a device such as
//! `/dev/zero` say, is refused and the connection closed). The socket stays open to tell the
//! server that the client went ([`Connection::watch_hangup`]) and to be shut down at the
//! server's shutdown. A pipe message costs less than a Unix socket message (socket buffers
//! are allocated and accounted per message): side by side on the loaded 2-vCPU machine, one
//! client's dict set+get on this module's socket ran at 0.6-0.75x the earlier piped build's
//! rate, and at 0.86-0.93x once moved to pipes. TCP connections stay
//! on their socket; so does a connection where the pipes cannot be made, or where `SIGPIPE`
//! is not ignored or handled in either process (a write to a closed pipe raises it; Rust and
//! Python programs ignore it from the start).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use conveyor_core::{Codec, GetError, Postcard};
use conveyor_pipe::{Address, ConnectError, Connection, Connector, SendError};

use crate::error::{ErrorKind, ManagerError, RemoteError, Result};
use crate::protocol::{decode_frame, Reply, Request, Response, MAGIC, PROTOCOL_VERSION};

/// The largest reply a client accepts: 1 GiB.
const MAX_REPLY: u64 = 1 << 30;

/// The most request bytes in flight (sent, not yet answered) while requests are pipelined:
/// below what the socket buffers of both sides hold together, so that neither side ever
/// blocks writing while the other does.
pub const WINDOW: usize = 128 * 1024;

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

/// The smallest pipe capacity worth moving to: twice the request window, so a pipelining
/// client never blocks writing while the server blocks writing replies.
const PIPE_MIN: usize = 2 * WINDOW;

/// Whether writing to a pipe whose reader is gone is safe in this process: it raises
/// `SIGPIPE`, which kills the process unless the signal is ignored or handled (Rust and
/// Python programs ignore it from the start; conveyor-pipe's socket writes use
/// `MSG_NOSIGNAL` instead). Pipes are used only where this holds, on both sides.
pub(crate) fn sigpipe_is_safe() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`, a
    // zeroed sigaction that lives for the call.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction != libc::SIG_DFL
    }
}

/// An OS pipe `(read end, write end)`, close-on-exec, holding at least [`PIPE_MIN`] bytes.
fn make_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (rd, wr) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let size = rustix::pipe::fcntl_setpipe_size(&wr, PIPE_MIN)?;
    if size < PIPE_MIN {
        return Err(io::Error::other("a pipe could not be made large enough"));
    }
    Ok((rd, wr))
}

/// A descriptor the peer handed over as `what`, as a connection: refused unless it is a pipe
/// end that only reads (`read`) or only writes. Anything else (a file, a device such as
/// `/dev/zero`, a socket, the wrong end of a pipe) would keep this side's thread reading a
/// source that never blocks or writing into one that swallows everything.
fn pipe_end(fd: OwnedFd, read: bool, what: &str) -> io::Result<Connection> {
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Fifo {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the client handed over something that is not a pipe as {what}"),
        ));
    }
    let conn = Connection::from_fd(fd)?;
    if conn.readable() != read || conn.writable() == read {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the client handed over the wrong end of a pipe as {what}"),
        ));
    }
    Ok(conn)
}

/// A manager connection as both sides use it: conveyor-pipe's [`Connection`] on the socket,
/// or, after a move, a pipe to receive on and a pipe to send on, with the socket kept to
/// watch the peer. Sends are buffered until a flush or the next receive that would wait.
#[derive(Debug)]
pub(crate) struct Wire {
    socket: Connection,
    /// (receive, send) after a move to pipes.
    pipes: Option<(Connection, Connection)>,
}

impl Wire {
    /// The connection on `socket`, accepting frames up to `max` bytes.
    pub(crate) fn new(socket: Connection, max: u64) -> Wire {
        socket.set_buffered_sends(true);
        socket.set_max_message_size(max);
        Wire {
            socket,
            pipes: None,
        }
    }

    fn rx(&self) -> &Connection {
        self.pipes.as_ref().map_or(&self.socket, |(rx, _)| rx)
    }

    fn tx(&self) -> &Connection {
        self.pipes.as_ref().map_or(&self.socket, |(_, tx)| tx)
    }

    /// The socket (a closer is made from it; a move hands descriptors over it).
    pub(crate) fn socket(&self) -> &Connection {
        &self.socket
    }

    /// Whether frames go through pipes.
    #[cfg(test)]
    pub(crate) fn uses_pipes(&self) -> bool {
        self.pipes.is_some()
    }

    /// Whether frames go through pipes whose ends are both in non-blocking mode.
    #[cfg(test)]
    pub(crate) fn pipes_are_nonblocking(&self) -> bool {
        self.pipes.as_ref().is_some_and(|(rx, tx)| {
            [rx, tx].into_iter().all(|c| {
                rustix::fs::fcntl_getfl(c).is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
            })
        })
    }

    /// Sets the largest frame accepted and sent.
    pub(crate) fn set_max_message_size(&self, max: u64) {
        self.socket.set_max_message_size(max);
        if let Some((rx, tx)) = &self.pipes {
            rx.set_max_message_size(max);
            tx.set_max_message_size(max);
        }
    }

    /// Queues one frame (written by the next flush, or receive that waits).
    pub(crate) fn send_bytes(&self, frame: &[u8]) -> Result<(), SendError> {
        self.tx().send_bytes(frame)
    }

    /// Writes every queued frame and then `frame`, in one write where they fit.
    pub(crate) fn send_bytes_now(&self, frame: &[u8]) -> Result<(), SendError> {
        self.tx().send_bytes_many(&[frame])
    }

    /// Writes every queued frame.
    pub(crate) fn flush(&self) -> Result<(), SendError> {
        self.tx().flush()
    }

    /// Receives one frame into `buf`. Frames queued for sending are written first unless the
    /// next frame was already read ahead (so replies to pipelined requests go out together).
    pub(crate) fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, GetError> {
        if let Some((rx, tx)) = &self.pipes {
            if !rx.has_read_ahead() {
                // The send's own error, kept typed, is what the receive reports.
                tx.flush().map_err(|e| match e {
                    SendError::Io(e) => GetError::Io(e),
                    SendError::Closed => GetError::Closed,
                    other => GetError::Io(io::Error::other(other)),
                })?;
            }
        }
        self.rx().recv_bytes_into(buf)
    }

    /// Whether the next frame was already read ahead.
    pub(crate) fn has_read_ahead(&self) -> bool {
        self.rx().has_read_ahead()
    }

    /// Whether the peer has gone (closed or shut down its socket). One system call: after a
    /// move the socket is enough, as a peer that goes closes its pipe ends and its socket
    /// together.
    pub(crate) fn hung_up(&self) -> bool {
        self.socket.hung_up().unwrap_or(true)
    }

    /// The client side of the move to pipes (after the server agreed): makes nothing itself;
    /// sends the server's ends of `pipes` over the socket and moves frames to this side's.
    fn hand_over(&mut self, pipes: [OwnedFd; 4]) -> io::Result<()> {
        let [req_rd, req_wr, rep_rd, rep_wr] = pipes;
        self.socket
            .send_fds(&[req_rd.as_fd(), rep_wr.as_fd()])
            .map_err(io::Error::other)?;
        drop((req_rd, rep_wr));
        let max = self.socket.max_message_size();
        let rx = Connection::from_fd(rep_rd)?;
        let tx = Connection::from_fd(req_wr)?;
        for c in [&rx, &tx] {
            c.set_buffered_sends(true);
            c.set_max_message_size(max);
        }
        self.pipes = Some((rx, tx));
        Ok(())
    }

    /// Server side of the move to pipes: takes the two pipe ends the client hands over
    /// (refusing anything else) and moves frames to them; the socket is watched, so that
    /// the client going or the server's shutdown ends a wait on the request pipe.
    pub(crate) fn take_over(&mut self) -> io::Result<()> {
        if self.socket.has_read_ahead() {
            return Err(io::Error::other(
                "bytes are buffered: the connection cannot move to pipes now",
            ));
        }
        let fds = self.socket.recv_fds(2).map_err(|e| match e {
            GetError::Io(e) => e,
            other => io::Error::other(other),
        })?;
        let [rd, wr]: [OwnedFd; 2] = fds.try_into().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the client did not hand over exactly two pipe ends",
            )
        })?;
        let rx = pipe_end(rd, true, "the request pipe's read end")?;
        let tx = pipe_end(wr, false, "the reply pipe's write end")?;
        rx.watch_hangup(self.socket.as_fd().try_clone_to_owned()?)?;
        let max = self.socket.max_message_size();
        for c in [&rx, &tx] {
            c.set_buffered_sends(true);
            c.set_max_message_size(max);
        }
        self.pipes = Some((rx, tx));
        Ok(())
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
    /// documentation). If the pipes cannot be made, or the server declines, the connection
    /// stays on the socket.
    fn move_to_pipes(&mut self, max: usize) -> Result<()> {
        if !sigpipe_is_safe() {
            tracing::debug!(
                "SIGPIPE is not ignored here: the manager connection stays on its socket"
            );
            return Ok(());
        }
        let pipes = match make_pipe()
            .and_then(|(a, b)| Ok((a, b, make_pipe()?)))
            .and_then(|(a, b, (c, d))| {
                let pipes = [a, b, c, d];
                // Non-blocking mode (the pipes are this connection's alone): each side's
                // connection then polls its end, in the spin before a receive sleeps, with
                // a plain read, the cheapest look there is (see conveyor-pipe's
                // `Connection::from_fd`); the mode travels with the ends handed over.
                for p in &pipes {
                    rustix::io::ioctl_fionbio(p, true)?;
                }
                Ok(pipes)
            }) {
            Ok(pipes) => pipes,
            Err(e) => {
                tracing::debug!(error = %e, "manager connection stays on its socket");
                return Ok(());
            }
        };
        match self.request(max, &Request::Pipes, crate::protocol::unit) {
            Ok(()) => {
                if let Err(e) = self.wire.hand_over(pipes) {
                    self.broken = true;
                    return Err(e.into());
                }
                Ok(())
            }
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
    /// hands its reply to `f`: a pipeline of one.
    pub(crate) fn request<R>(
        &mut self,
        max: usize,
        req: &Request<'_>,
        f: impl FnOnce(Reply<'_>) -> Result<R>,
    ) -> Result<R> {
        let mut req = Some(req);
        let mut f = Some(f);
        let mut answer = None;
        self.pipeline(
            max,
            |out| match req.take() {
                Some(r) => Postcard.encode(r, out).map(|()| true).map_err(Into::into),
                None => Ok(false),
            },
            |resp| {
                let f = f.take().expect("one request, one reply");
                answer = Some(match resp {
                    Response::Ok(r) => f(r),
                    Response::Err(e) => Err(e.into()),
                });
                Ok(())
            },
        )?;
        answer.expect("the pipeline answered its one request")
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
        if self.broken {
            return Err(ManagerError::Io(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection to the manager failed earlier: connect again",
            )));
        }
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
                    self.out.clear();
                    let id = self.next_id + 1;
                    Postcard.encode(&id, &mut self.out)?;
                    if !next(&mut self.out)? {
                        done = true;
                        break;
                    }
                    self.next_id = id;
                    if self.out.len() > max {
                        // Nothing of it was sent; the replies of those before it are read
                        // first, so the connection stays at a frame boundary.
                        self.drain(in_flight, &mut reply)?;
                        return Err(ManagerError::Remote(RemoteError::new(
                            ErrorKind::TooLarge,
                            format!(
                                "the request is {} bytes, more than the {max} bytes the server \
                                 accepts",
                                self.out.len()
                            ),
                        )));
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
