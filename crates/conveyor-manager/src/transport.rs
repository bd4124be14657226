//! Moving frames: the small trait the server and the client are written against, and its
//! implementation over a stream socket.
//!
//! A frame is CPython's `multiprocessing.connection` framing: a 4-byte big-endian length (or
//! `-1` and an 8-byte length for payloads of 2 GiB and more), then the payload.
//! [`StreamTransport`] reads and writes through its own buffers: replies to pipelined requests
//! are written together, and many small requests are read with one system call.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use conveyor_pipe::spin::{Poll, Spin};

/// Why a frame could not be received.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the connection between frames.
    Eof,
    /// The peer announced a frame larger than allowed; nothing of it was read.
    TooLarge {
        /// The announced size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The header is malformed (a negative length other than `-1`).
    Malformed(String),
    /// The system call failed, or the connection closed in the middle of a frame.
    Io(io::Error),
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        RecvError::Io(e)
    }
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Eof => f.write_str("the peer closed the connection"),
            RecvError::TooLarge { size, max } => write!(
                f,
                "the peer announced a {size}-byte frame, more than the {max} bytes allowed"
            ),
            RecvError::Malformed(m) => write!(f, "malformed frame: {m}"),
            RecvError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl From<RecvError> for io::Error {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Io(e) => e,
            RecvError::Eof => io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Sends and receives whole frames. One connection; used by one thread at a time.
pub trait Transport: Send {
    /// Queues one frame for sending; it may be written at once or at the next
    /// [`flush`](Transport::flush).
    fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Writes every queued frame.
    fn flush(&mut self) -> io::Result<()>;

    /// Receives one frame into `buf` (replacing its contents), refusing one larger than
    /// `max` bytes before reading it.
    fn recv(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<(), RecvError>;

    /// Whether bytes of a next frame are already buffered, so a `recv` would not wait.
    fn has_buffered_input(&self) -> bool;

    /// Whether the peer has closed its end (checked without consuming anything). Used by the
    /// server while a request waits, to give up on a client that is gone.
    fn peer_closed(&self) -> bool;

    /// A function that shuts the connection down from another thread, waking a `recv`
    /// blocked on it.
    fn closer(&self) -> Option<Box<dyn Fn() + Send + Sync>>;

    /// Client side of the move to pipes: sends the server's ends of `pipes` over the socket
    /// and from now on moves frames through this side's ends. Nothing may be buffered.
    fn hand_over(&mut self, pipes: Pipes) -> io::Result<()> {
        drop(pipes);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this transport cannot move to pipes",
        ))
    }

    /// Whether frames go through pipes (after a move).
    #[cfg(test)]
    fn uses_pipes(&self) -> bool {
        false
    }

    /// Server side of the move to pipes: receives the pipe ends the client hands over and
    /// from now on moves frames through them.
    fn take_over(&mut self) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this transport cannot move to pipes",
        ))
    }
}

const BUF: usize = 64 * 1024;

/// A [`Transport`] over any byte stream with a file descriptor (Unix or TCP socket).
#[derive(Debug)]
pub struct StreamTransport<S> {
    stream: S,
    rbuf: Box<[u8]>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    spin: Spin,
    /// After [`Transport::hand_over`] / [`Transport::take_over`]: the pipe ends frames move
    /// through; the socket stays open to notice the peer going away and to be shut down.
    pipes: Option<PipeEnds>,
}

impl<S: Read + Write + AsRawFd + Send> StreamTransport<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        StreamTransport {
            stream,
            rbuf: vec![0u8; BUF].into_boxed_slice(),
            rstart: 0,
            rend: 0,
            wbuf: Vec::with_capacity(BUF),
            spin: Spin::default(),
            pipes: None,
        }
    }

    /// The stream inside.
    #[cfg(test)]
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    fn buffered(&self) -> usize {
        self.rend - self.rstart
    }

    /// Polls with non-blocking reads for as long as the connection's adaptive spin allows
    /// (see [`crate::spin`]) before the caller blocks. `None`: nothing came, block.
    fn poll_read(&mut self) -> Option<io::Result<usize>> {
        let (fd, pipe) = match &self.pipes {
            Some(p) => (p.rd.as_raw_fd(), true),
            None => (self.stream.as_raw_fd(), false),
        };
        // Nothing of a next frame here yet: it was just asked for (or just answered), so it
        // cannot have come yet. Part of a frame here: the rest is likely in flight.
        let fresh = self.rend == 0;
        let buf = &mut self.rbuf[self.rend..];
        self.spin.run(fresh, || {
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`, which is valid and
            // exclusively borrowed for the call.
            // (The pipe's read end is non-blocking.)
            let r = unsafe {
                if pipe {
                    libc::read(fd, buf.as_mut_ptr().cast(), buf.len())
                } else {
                    libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
                }
            };
            if r >= 0 {
                return Poll::Ready(Ok(r as usize));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Poll::Empty,
                _ => Poll::Ready(Err(e)),
            }
        })
    }

    /// Reads until at least `n` bytes are buffered (n <= BUF). Returns false on a clean EOF
    /// with nothing buffered.
    fn fill(&mut self, n: usize) -> Result<bool, RecvError> {
        if self.buffered() >= n {
            return Ok(true);
        }
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        while self.rend < n {
            let got = match self.poll_read() {
                Some(r) => r,
                None => match &self.pipes {
                    Some(p) => {
                        p.read_blocking(self.stream.as_raw_fd(), &mut self.rbuf[self.rend..])
                    }
                    None => self.stream.read(&mut self.rbuf[self.rend..]),
                },
            };
            match got {
                Ok(0) => {
                    if self.rend == 0 {
                        return Ok(false);
                    }
                    return Err(RecvError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection in the middle of a frame",
                    )));
                }
                Ok(k) => self.rend += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
        Ok(true)
    }
}

impl<S: Read + Write + AsRawFd + Send> Transport for StreamTransport<S> {
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u64;
        if len <= i32::MAX as u64 {
            self.wbuf.extend_from_slice(&(len as u32).to_be_bytes());
        } else {
            self.wbuf.extend_from_slice(&(-1i32).to_be_bytes());
            self.wbuf.extend_from_slice(&len.to_be_bytes());
        }
        if frame.len() >= BUF {
            self.flush()?;
            return match &self.pipes {
                Some(p) => p.write_all(self.stream.as_raw_fd(), frame),
                None => self.stream.write_all(frame),
            };
        }
        self.wbuf.extend_from_slice(frame);
        if self.wbuf.len() >= BUF {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            let r = match &self.pipes {
                Some(p) => p.write_all(self.stream.as_raw_fd(), &self.wbuf),
                None => self.stream.write_all(&self.wbuf),
            };
            self.wbuf.clear();
            r?;
        }
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<(), RecvError> {
        if !self.fill(4)? {
            return Err(RecvError::Eof);
        }
        let head = i32::from_be_bytes(
            self.rbuf[self.rstart..self.rstart + 4]
                .try_into()
                .expect("4 bytes"),
        );
        let (size, hlen) = if head >= 0 {
            (head as u64, 4)
        } else if head == -1 {
            self.fill(12)?;
            let s = u64::from_be_bytes(
                self.rbuf[self.rstart + 4..self.rstart + 12]
                    .try_into()
                    .expect("8 bytes"),
            );
            (s, 12)
        } else {
            return Err(RecvError::Malformed(format!(
                "negative length {head} in the frame header"
            )));
        };
        if size > max as u64 {
            return Err(RecvError::TooLarge {
                size,
                max: max as u64,
            });
        }
        self.rstart += hlen;
        let size = size as usize;
        buf.clear();
        if size <= BUF {
            if !self.fill(size)? && size > 0 {
                return Err(RecvError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection in the middle of a frame",
                )));
            }
            buf.extend_from_slice(&self.rbuf[self.rstart..self.rstart + size]);
            self.rstart += size;
        } else {
            // The buffer grows as the bytes arrive (at most doubling each step), never to the
            // announced size up front: a peer that sends only a header must not make this side
            // allocate and zero-fill up to `max` bytes.
            buf.extend_from_slice(&self.rbuf[self.rstart..self.rend]);
            self.rstart = 0;
            self.rend = 0;
            while buf.len() < size {
                let have = buf.len();
                let step = have.max(BUF).min(size - have);
                buf.resize(have + step, 0);
                let read = match &self.pipes {
                    Some(p) => p.read_exact(self.stream.as_raw_fd(), &mut buf[have..]),
                    None => self.stream.read_exact(&mut buf[have..]),
                };
                if let Err(e) = read {
                    buf.clear();
                    buf.shrink_to(BUF);
                    return Err(RecvError::Io(e));
                }
            }
        }
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Ok(())
    }

    fn has_buffered_input(&self) -> bool {
        self.rend > self.rstart
    }

    fn peer_closed(&self) -> bool {
        if self.has_buffered_input() {
            return false;
        }
        peer_closed(self.stream.as_raw_fd())
    }

    fn hand_over(&mut self, pipes: Pipes) -> io::Result<()> {
        if self.has_buffered_input() || !self.wbuf.is_empty() {
            return Err(io::Error::other(
                "bytes are buffered: the transport cannot move to pipes now",
            ));
        }
        let Pipes {
            req_rd,
            req_wr,
            rep_rd,
            rep_wr,
        } = pipes;
        send_fds(
            self.stream.as_raw_fd(),
            &[req_rd.as_raw_fd(), rep_wr.as_raw_fd()],
        )?;
        drop((req_rd, rep_wr));
        self.pipes = Some(PipeEnds::new(rep_rd, req_wr)?);
        Ok(())
    }

    #[cfg(test)]
    fn uses_pipes(&self) -> bool {
        self.pipes.is_some()
    }

    fn take_over(&mut self) -> io::Result<()> {
        if self.has_buffered_input() || !self.wbuf.is_empty() {
            return Err(io::Error::other(
                "bytes are buffered: the transport cannot move to pipes now",
            ));
        }
        let mut fds = recv_fds(self.stream.as_raw_fd())?.into_iter();
        match (fds.next(), fds.next(), fds.next()) {
            (Some(rd), Some(wr), None) => {
                check_pipe_end(&rd, libc::O_RDONLY, "the request pipe's read end")?;
                check_pipe_end(&wr, libc::O_WRONLY, "the reply pipe's write end")?;
                self.pipes = Some(PipeEnds::new(rd, wr)?);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client did not hand over exactly two pipe ends",
            )),
        }
    }

    fn closer(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        let fd = self.stream.as_raw_fd();
        // The closure only calls shutdown(2) on the descriptor, which is still owned by the
        // transport: the server drops the closer before the transport (it is removed from
        // the connection table before the connection thread ends).
        Some(Box::new(move || shutdown_fd(fd)))
    }
}

/// The smallest pipe capacity worth moving to (twice the request window of a batch, so a
/// pipelining client never blocks writing while the server blocks writing replies).
const PIPE_MIN: usize = 2 * crate::batch::WINDOW;

/// Two pipes made by a client for a connection on the same machine: requests (client to
/// server) and replies (server to client). Unix socket traffic costs about 40 percent more
/// per round trip than pipe traffic (socket buffers are allocated and accounted per
/// message), so a client on a Unix socket moves its frames to pipes after hello.
#[derive(Debug)]
pub struct Pipes {
    req_rd: OwnedFd,
    req_wr: OwnedFd,
    rep_rd: OwnedFd,
    rep_wr: OwnedFd,
}

impl Pipes {
    /// Makes both pipes (close-on-exec, with at least [`PIPE_MIN`] bytes of capacity).
    pub fn new() -> io::Result<Pipes> {
        if !sigpipe_is_safe() {
            return Err(io::Error::other(
                "SIGPIPE is not ignored in this process: a write to a closed pipe would kill it",
            ));
        }
        let (req_rd, req_wr) = make_pipe()?;
        let (rep_rd, rep_wr) = make_pipe()?;
        Ok(Pipes {
            req_rd,
            req_wr,
            rep_rd,
            rep_wr,
        })
    }
}

fn make_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, an array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own; F_SETPIPE_SZ takes an int and touches no memory.
    let size = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_MIN as libc::c_int) };
    if size < 0 || (size as usize) < PIPE_MIN {
        return Err(io::Error::other("a pipe could not be made large enough"));
    }
    Ok((rd, wr))
}

/// Checks that a descriptor handed over by the peer is a pipe end opened for `mode`
/// (`O_RDONLY` or `O_WRONLY`): anything else (a file, a device such as `/dev/zero`, a socket,
/// the wrong end of a pipe) is refused, since reading a device that never blocks or writing
/// into one that swallows everything would keep this side's thread busy forever.
fn check_pipe_end(fd: &OwnedFd, mode: libc::c_int, what: &str) -> io::Result<()> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into `st`, which lives for the call; the descriptor is owned.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the client handed over something that is not a pipe as {what}"),
        ));
    }
    // SAFETY: fcntl F_GETFL on an owned descriptor touches no memory.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(io::Error::last_os_error());
    }
    if fl & libc::O_ACCMODE != mode {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the client handed over the wrong end of a pipe as {what}"),
        ));
    }
    Ok(())
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on a descriptor we own; no memory is touched.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// This side's pipe ends: both non-blocking; blocking waits poll them together with the
/// socket, so that a shutdown of the socket (the server's closer) or the peer closing it
/// wakes them.
#[derive(Debug)]
struct PipeEnds {
    rd: OwnedFd,
    wr: OwnedFd,
}

impl PipeEnds {
    fn new(rd: OwnedFd, wr: OwnedFd) -> io::Result<PipeEnds> {
        set_nonblocking(rd.as_raw_fd())?;
        set_nonblocking(wr.as_raw_fd())?;
        Ok(PipeEnds { rd, wr })
    }

    /// Waits until `fd` is ready for `events`; false if the socket was closed or shut down
    /// first (and `fd` is not ready).
    fn wait(fd: RawFd, events: libc::c_short, sock: RawFd) -> io::Result<bool> {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sock,
                    events: libc::POLLRDHUP,
                    revents: 0,
                },
            ];
            // SAFETY: poll reads and writes the two pollfd entries of `fds`, which lives
            // for the call.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[0].revents != 0 {
                return Ok(true);
            }
            if fds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                return Ok(false);
            }
        }
    }

    /// Reads what is there, waiting for something first; `Ok(0)`: end of file (the writer
    /// closed its end, or the socket was closed or shut down).
    fn read_blocking(&self, sock: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: read writes at most `buf.len()` bytes into `buf`, valid and
            // exclusively borrowed for the call.
            let r = unsafe { libc::read(self.rd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    if !Self::wait(self.rd.as_raw_fd(), libc::POLLIN, sock)? {
                        return Ok(0);
                    }
                }
                _ => return Err(e),
            }
        }
    }

    fn read_exact(&self, sock: RawFd, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_blocking(sock, buf)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection in the middle of a frame",
                    ))
                }
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    fn write_all(&self, sock: RawFd, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            // SAFETY: write reads at most `buf.len()` bytes from `buf`, valid for the call.
            let r = unsafe { libc::write(self.wr.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
            if r >= 0 {
                buf = &buf[r as usize..];
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    if !Self::wait(self.wr.as_raw_fd(), libc::POLLOUT, sock)? {
                        return Err(io::Error::new(
                            io::ErrorKind::BrokenPipe,
                            "the peer closed the connection",
                        ));
                    }
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether writing to a pipe whose reader is gone is safe in this process: it raises
/// `SIGPIPE`, which kills the process unless the signal is ignored or handled (Rust and
/// Python programs ignore it from the start; a socket write is sent with `MSG_NOSIGNAL`
/// instead). Pipes are used only where this holds, on both sides.
pub(crate) fn sigpipe_is_safe() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`, a
    // zeroed sigaction that lives for the call.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction != libc::SIG_DFL
    }
}

/// Runs `f` with a message of one byte and a zeroed, 8-byte aligned control buffer of
/// `CMSG_SPACE(control)` bytes: what [`send_fds`] fills and [`recv_fds`] receives into. The
/// message points at the byte and the buffer, which live until `f` returns.
fn with_fd_message<R>(control: usize, f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(control as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    f(&mut msg)
}

/// Sends one byte carrying the descriptors `fds` over the Unix socket `sock`.
pub(crate) fn send_fds(sock: RawFd, fds: &[RawFd]) -> io::Result<()> {
    let payload = std::mem::size_of_val(fds);
    with_fd_message(payload, |msg| {
        // SAFETY: `msg` points at its byte and control buffer, which outlive the sendmsg
        // call; CMSG_FIRSTHDR/CMSG_DATA stay inside the control buffer, which is
        // CMSG_SPACE(payload) bytes long and 8-byte aligned.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                payload,
            );
            loop {
                if libc::sendmsg(sock, msg, libc::MSG_NOSIGNAL) == 1 {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    })
}

/// Receives the one byte [`send_fds`] sends, and the descriptors it carries
/// (close-on-exec). Blocks; a shutdown of the socket wakes it with end of file.
fn recv_fds(sock: RawFd) -> io::Result<Vec<OwnedFd>> {
    const MAX_FDS: usize = 4;
    with_fd_message(MAX_FDS * std::mem::size_of::<RawFd>(), |msg| {
        // SAFETY: as in send_fds: `msg` points at its byte and control buffer, which outlive
        // the call; the control messages walked below lie inside the buffer (the kernel sets
        // msg_controllen to what it wrote), and each descriptor read from one is a new
        // descriptor this process now owns.
        unsafe {
            let n = loop {
                let n = libc::recvmsg(sock, msg, libc::MSG_CMSG_CLOEXEC);
                if n >= 0 {
                    break n;
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            };
            let mut out = Vec::new();
            let mut cmsg = libc::CMSG_FIRSTHDR(msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg);
                    let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / std::mem::size_of::<RawFd>() {
                        let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                        out.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(msg, cmsg);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection while handing over pipes",
                ));
            }
            if msg.msg_flags & libc::MSG_CTRUNC != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the peer handed over too many descriptors",
                ));
            }
            Ok(out)
        }
    })
}

/// Whether the peer of the connected socket `fd` has closed it: a non-blocking peek reads end
/// of file.
pub(crate) fn peer_closed(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv with MSG_PEEK | MSG_DONTWAIT writes at most one byte into `byte`, which
    // lives for the call; an invalid fd just makes it fail with EBADF.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return true;
    }
    if n < 0 {
        let e = io::Error::last_os_error();
        return !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        );
    }
    false
}

/// Shuts a socket down in both directions, waking any thread blocked reading it.
pub(crate) fn shutdown_fd(fd: RawFd) {
    // SAFETY: shutdown(2) takes a descriptor by value and touches no memory; on a closed or
    // reused descriptor it fails harmlessly (the server keeps the socket open while a closer
    // for it exists).
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn frames_cross_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = StreamTransport::new(a);
        let mut b = StreamTransport::new(b);
        a.send(b"hello").unwrap();
        a.send(b"").unwrap();
        let big = vec![7u8; 200_000];
        a.send(&big).unwrap();
        a.flush().unwrap();
        let mut buf = Vec::new();
        b.recv(&mut buf, 1 << 20).unwrap();
        assert_eq!(buf, b"hello");
        b.recv(&mut buf, 1 << 20).unwrap();
        assert!(buf.is_empty());
        b.recv(&mut buf, 1 << 20).unwrap();
        assert_eq!(buf, big);
        drop(a);
        assert!(matches!(b.recv(&mut buf, 10), Err(RecvError::Eof)));
    }

    #[test]
    fn oversize_is_refused_before_reading() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = StreamTransport::new(a);
        let mut b = StreamTransport::new(b);
        a.send(&[0u8; 100]).unwrap();
        a.flush().unwrap();
        let mut buf = Vec::new();
        match b.recv(&mut buf, 10) {
            Err(RecvError::TooLarge { size: 100, max: 10 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_header_alone_allocates_nothing_like_its_announced_size() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut b = StreamTransport::new(b);
        // Announces 48 MiB, sends 1000 bytes of it, and goes away.
        a.write_all(&(48u32 << 20).to_be_bytes()).unwrap();
        a.write_all(&[1u8; 1000]).unwrap();
        drop(a);
        let mut buf = Vec::new();
        assert!(matches!(b.recv(&mut buf, 64 << 20), Err(RecvError::Io(_))));
        assert!(
            buf.capacity() <= 4 * BUF,
            "{} bytes were allocated for 1000 that came",
            buf.capacity()
        );
    }

    #[test]
    fn a_large_frame_arriving_in_pieces_is_whole() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut b = StreamTransport::new(b);
        let frame: Vec<u8> = (0..(5 * BUF + 17)).map(|i| (i % 251) as u8).collect();
        let sent = frame.clone();
        let writer = std::thread::spawn(move || {
            a.write_all(&(sent.len() as u32).to_be_bytes()).unwrap();
            for piece in sent.chunks(10_000) {
                a.write_all(piece).unwrap();
            }
        });
        let mut buf = Vec::new();
        b.recv(&mut buf, 1 << 20).unwrap();
        assert_eq!(buf, frame);
        writer.join().unwrap();
    }

    #[test]
    fn negative_length_is_malformed() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut b = StreamTransport::new(b);
        a.write_all(&(-5i32).to_be_bytes()).unwrap();
        let mut buf = Vec::new();
        assert!(matches!(b.recv(&mut buf, 10), Err(RecvError::Malformed(_))));
    }

    /// A socket pair whose two ends have moved to pipes.
    fn piped() -> (StreamTransport<UnixStream>, StreamTransport<UnixStream>) {
        let (a, b) = UnixStream::pair().unwrap();
        let mut a = StreamTransport::new(a);
        let mut b = StreamTransport::new(b);
        let server = std::thread::spawn(move || {
            b.take_over().unwrap();
            b
        });
        a.hand_over(Pipes::new().unwrap()).unwrap();
        let b = server.join().unwrap();
        assert!(a.pipes.is_some() && b.pipes.is_some());
        (a, b)
    }

    #[test]
    fn frames_cross_pipes_after_the_move() {
        let (mut a, mut b) = piped();
        let big = vec![9u8; 3 << 20]; // more than a pipe holds: the reader drains it
        let big2 = big.clone();
        let writer = std::thread::spawn(move || {
            a.send(b"request").unwrap();
            a.send(&big2).unwrap();
            a.flush().unwrap();
            let mut buf = Vec::new();
            a.recv(&mut buf, 1 << 30).unwrap();
            assert_eq!(buf, b"reply");
            a
        });
        let mut buf = Vec::new();
        b.recv(&mut buf, 1 << 30).unwrap();
        assert_eq!(buf, b"request");
        b.recv(&mut buf, 1 << 30).unwrap();
        assert_eq!(buf, big);
        b.send(b"reply").unwrap();
        b.flush().unwrap();
        let a = writer.join().unwrap();
        // The socket still tells whether the peer is there.
        assert!(!b.peer_closed());
        drop(a);
        assert!(b.peer_closed());
        assert!(matches!(b.recv(&mut buf, 10), Err(RecvError::Eof)));
    }

    #[test]
    fn the_closer_wakes_a_receive_on_pipes() {
        let (a, mut b) = piped();
        let close = b.closer().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let mut buf = Vec::new();
            tx.send(b.recv(&mut buf, 10).is_err()).unwrap();
        });
        close();
        let woke = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the receive woke");
        assert!(woke);
        waiter.join().unwrap();
        drop(a);
    }

    #[test]
    fn a_hand_over_without_pipe_ends_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = StreamTransport::new(b);
        // One byte, no descriptors.
        (&a).write_all(&[0]).unwrap();
        assert!(b.take_over().is_err());
        assert!(b.pipes.is_none());
    }

    /// Hands `fds` over on a fresh socket pair and says whether the server side took them.
    fn take_over_of(fds: &[RawFd]) -> io::Result<()> {
        let (a, b) = UnixStream::pair().unwrap();
        let mut b = StreamTransport::new(b);
        send_fds(a.as_raw_fd(), fds).unwrap();
        let r = b.take_over();
        assert_eq!(r.is_ok(), b.pipes.is_some());
        r
    }

    #[test]
    fn devices_handed_over_as_pipes_are_refused() {
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let e = take_over_of(&[zero.as_raw_fd(), null.as_raw_fd()]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        // A socket is no pipe either.
        let (s1, s2) = UnixStream::pair().unwrap();
        assert!(take_over_of(&[s1.as_raw_fd(), s2.as_raw_fd()]).is_err());
    }

    #[test]
    fn pipe_ends_of_the_wrong_direction_are_refused() {
        let (r1, w1) = make_pipe().unwrap();
        let (r2, w2) = make_pipe().unwrap();
        // The server reads requests and writes replies: a write end to read from and a
        // read end to write to are refused.
        let e = take_over_of(&[w1.as_raw_fd(), r2.as_raw_fd()]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        // The right ends are taken.
        take_over_of(&[r1.as_raw_fd(), w2.as_raw_fd()]).unwrap();
    }

    #[test]
    fn peer_closed_is_seen() {
        let (a, b) = UnixStream::pair().unwrap();
        let b = StreamTransport::new(b);
        assert!(!b.peer_closed());
        drop(a);
        assert!(b.peer_closed());
    }
}
