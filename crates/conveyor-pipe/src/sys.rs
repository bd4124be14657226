//! The system calls a connection makes, wrapped so that the rest of the crate is safe code.
//!
//! Every call retries on `EINTR`. Writes to sockets use `sendmsg` with `MSG_NOSIGNAL`, so a peer
//! that has gone away gives `EPIPE` rather than killing the process with `SIGPIPE`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// What kind of file a connection's descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A stream socket (socketpair, Unix or TCP): `sendmsg`, `shutdown`.
    Socket,
    /// One end of an OS pipe: `writev`; closing for writes replaces the descriptor.
    Pipe,
}

/// How a read of an exact number of bytes ended.
#[derive(Debug)]
pub(crate) enum ReadExact {
    /// Every byte was read.
    Full,
    /// End of file after `got` bytes (fewer than asked).
    Eof { got: usize },
}

fn cvt(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Reads up to `len` bytes into `ptr`, retrying on `EINTR`. A pipe in non-blocking mode
/// (`O_NONBLOCK`) that has nothing yet is waited for with `poll`, so the read blocks as on any
/// other pipe; a socket's `EAGAIN` (its receive timeout, during a handshake) is returned.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn read_raw(
    fd: BorrowedFd<'_>,
    kind: FdKind,
    ptr: *mut u8,
    len: usize,
) -> io::Result<usize> {
    loop {
        // SAFETY: the caller guarantees `ptr` is writable for `len` bytes; `read` writes at most
        // `len` bytes there.
        let ret = unsafe { libc::read(fd.as_raw_fd(), ptr.cast(), len) };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && kind == FdKind::Pipe => {
                poll_read(fd, None)?;
            }
            other => return other,
        }
    }
}

/// One read that never waits, of a pipe in non-blocking mode (`O_NONBLOCK`): `WouldBlock`
/// when nothing is there.
fn read_once(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes; `read` writes at most
        // that many bytes into it.
        let ret = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The most descriptors one message can carry on Linux (`SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// Reads what is there into `buf`; 0 is end of file. With `nonblocking`, returns
/// `WouldBlock` instead of waiting when nothing is there.
///
/// `fd_nonblocking` says that the descriptor, a pipe, is in non-blocking mode (`O_NONBLOCK`):
/// a non-blocking read of it is then a plain `read`, the cheapest system call that can say
/// "nothing yet" (a `preadv2(RWF_NOWAIT)` of a blocking pipe costs about a third more, on
/// every poll of a receive's spin); a blocking one polls when it finds nothing (see
/// `read_raw`), as it would for any pipe in non-blocking mode.
///
/// A socket is read with `recvmsg` and room for descriptors, so that descriptors the peer
/// passes (`SCM_RIGHTS`, see [`send_fds`]) are never dropped by a read that happens to take
/// their byte: they are appended to `fds`. (Linux ends a read right after the byte that
/// carries descriptors, so they belong to the last byte read.)
pub(crate) fn read_some(
    fd: BorrowedFd<'_>,
    kind: FdKind,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
    fd_nonblocking: bool,
) -> io::Result<usize> {
    match kind {
        FdKind::Socket => recv_with_fds(fd, buf, fds, nonblocking),
        FdKind::Pipe => {
            if nonblocking && fd_nonblocking {
                return read_once(fd, buf);
            }
            if nonblocking {
                if let Some(r) = read_nowait(fd, buf) {
                    return r;
                }
                if !poll_read(fd, Some(Duration::ZERO))? {
                    return Err(io::Error::from(io::ErrorKind::WouldBlock));
                }
            }
            // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes.
            unsafe { read_raw(fd, kind, buf.as_mut_ptr(), buf.len()) }
        }
    }
}

/// Whether `preadv2(RWF_NOWAIT)` was refused for a pipe here (an older kernel): the
/// non-blocking read then polls first.
static NOWAIT_UNSUPPORTED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// One non-blocking read of a pipe whose descriptor blocks, in one system call:
/// `preadv2(RWF_NOWAIT)` (Linux 5.6 and later for pipes) fails with `EAGAIN` instead of
/// waiting. `None` where the kernel does not support it (the caller polls, then reads: two
/// system calls for every spin that finds bytes).
fn read_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Option<io::Result<usize>> {
    use std::sync::atomic::Ordering;
    if NOWAIT_UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    loop {
        // SAFETY: `iov` describes `buf`, live and writable for the call; offset -1 reads at
        // the current position, as read(2) does (a pipe has no offset).
        let ret = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)
                ) =>
            {
                NOWAIT_UNSUPPORTED.store(true, Ordering::Relaxed);
                return None;
            }
            other => return Some(other),
        }
    }
}

/// Room for [`MAX_FDS`] descriptors in a control buffer, 8-byte aligned.
#[repr(C, align(8))]
struct FdControl([u8; FD_CONTROL_LEN]);

/// `CMSG_SPACE(MAX_FDS * size_of::<c_int>())` on 64- and 32-bit Linux, rounded up.
const FD_CONTROL_LEN: usize = 1040;

fn recv_with_fds(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<usize> {
    let mut control = FdControl([0; FD_CONTROL_LEN]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let flags = libc::MSG_CMSG_CLOEXEC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: an all-zero msghdr is a valid empty message; it points at `iov` (which
        // describes `buf`, live and writable) and at `control`, both of which outlive the
        // call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = FD_CONTROL_LEN as _;
        // SAFETY: `msg` is initialised as above.
        let ret = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, flags) };
        let n = match cvt(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if msg.msg_controllen > 0 {
            // SAFETY: the kernel wrote `msg_controllen` bytes of control messages into
            // `control`; the CMSG macros walk only inside them.
            unsafe { take_fds(&msg, fds) };
        }
        return Ok(n);
    }
}

/// Moves the descriptors of every `SCM_RIGHTS` control message of `msg` into `fds`.
///
/// # Safety
/// `msg` must have been filled by a successful `recvmsg`.
unsafe fn take_fds(msg: &libc::msghdr, fds: &mut Vec<OwnedFd>) {
    // SAFETY: the caller guarantees the control messages are the kernel's;
    // CMSG_FIRSTHDR/CMSG_NXTHDR stay inside msg_controllen, and each descriptor in an
    // SCM_RIGHTS message is new and owned by this process from now on.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(raw));
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
}

/// Sends `fds` over a Unix socket as Python's `multiprocessing.reduction.sendfds` does: one
/// byte holding `len(fds) % 256`, with the descriptors attached (`SCM_RIGHTS`).
pub(crate) fn send_fds(fd: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() || fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "send_fds passes 1 to {MAX_FDS} descriptors per call, not {}",
                fds.len()
            ),
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(raw.as_slice());
    let mut control = FdControl([0; FD_CONTROL_LEN]);
    let mut byte = [(fds.len() % 256) as u8];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: CMSG_SPACE only computes a size; it is at most FD_CONTROL_LEN for MAX_FDS.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    debug_assert!(space <= FD_CONTROL_LEN);
    // SAFETY: an all-zero msghdr is a valid empty message; it points at `iov` (the one byte)
    // and `control`, which outlive the calls below. CMSG_FIRSTHDR/CMSG_DATA stay inside the
    // control buffer, which is `space` bytes long and 8-byte aligned.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(raw.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), payload);
        loop {
            match cvt(libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL)) {
                Ok(1) => return Ok(()),
                Ok(_) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Appends exactly `len` bytes read from `fd` to `vec`, unless end of file comes first.
///
/// The bytes are read straight into the vector's spare capacity, so a large payload is not
/// zeroed first. The vector grows as the bytes arrive: at most `step` bytes (or its own
/// length, whichever is more) past what came, so that a peer announcing more than it sends
/// cannot make this end allocate what it announced. (A vector whose capacity already holds
/// `len` more bytes, the reused buffer of `recv_bytes_into`, does not grow.) On end of file or
/// error, `vec` keeps the bytes that did arrive.
pub(crate) fn read_exact_append(
    fd: BorrowedFd<'_>,
    kind: FdKind,
    vec: &mut Vec<u8>,
    len: usize,
    step: usize,
) -> io::Result<ReadExact> {
    let start = vec.len();
    let mut got = 0;
    while got < len {
        let left = len - got;
        if vec.capacity() == vec.len() {
            let grow = left.min(step.max(vec.len()));
            vec.try_reserve(grow).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("cannot allocate {grow} more bytes for an incoming message: {e}"),
                )
            })?;
        }
        let spare = vec.spare_capacity_mut();
        let want = spare.len().min(left);
        // SAFETY: `spare` is the vector's spare capacity, at least `want` bytes long (every
        // byte read so far was committed with set_len), and `read` writes at most `want`
        // bytes into it.
        let n = unsafe { read_raw(fd, kind, spare.as_mut_ptr().cast(), want) }?;
        if n == 0 {
            return Ok(ReadExact::Eof { got });
        }
        got += n;
        // SAFETY: `read` initialised the `n` bytes after the old length, within capacity.
        unsafe { vec.set_len(start + got) };
    }
    Ok(ReadExact::Full)
}

/// The most buffers one `sendmsg`/`writev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes every byte of `parts`, in order, gathering them into as few system calls as possible.
pub(crate) fn write_all_vectored(
    fd: BorrowedFd<'_>,
    kind: FdKind,
    parts: &[&[u8]],
) -> io::Result<()> {
    const ON_STACK: usize = 4;
    let iovec = |p: &&[u8]| libc::iovec {
        iov_base: p.as_ptr() as *mut libc::c_void,
        iov_len: p.len(),
    };
    if parts.len() <= ON_STACK {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; ON_STACK];
        let mut count = 0;
        for p in parts.iter().filter(|p| !p.is_empty()) {
            iov[count] = iovec(p);
            count += 1;
        }
        write_all_iov(fd, kind, &mut iov[..count])
    } else {
        let mut iov: Vec<libc::iovec> = parts.iter().filter(|p| !p.is_empty()).map(iovec).collect();
        write_all_iov(fd, kind, &mut iov)
    }
}

/// Writes every byte the entries of `iov` describe (each a live slice, none empty), in
/// order; the entries are advanced past what was written.
fn write_all_iov(fd: BorrowedFd<'_>, kind: FdKind, iov: &mut [libc::iovec]) -> io::Result<()> {
    let count = iov.len();
    let mut first = 0;
    while first < count {
        let vecs = &iov[first..count.min(first + IOV_MAX)];
        let ret = match kind {
            FdKind::Socket => {
                // SAFETY: an all-zero msghdr is a valid empty header; the iovec array it points
                // to lives until the call returns and each entry describes a live slice that
                // sendmsg only reads.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_iov = vecs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = vecs.len() as _;
                // SAFETY: `msg` is fully initialised as above.
                unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) }
            }
            // SAFETY: each iovec describes a live slice that writev only reads.
            FdKind::Pipe => unsafe {
                libc::writev(fd.as_raw_fd(), vecs.as_ptr(), vecs.len() as libc::c_int)
            },
        };
        let mut n = match cvt(ret) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A full pipe in non-blocking mode: wait for room, as a blocking write would.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && kind == FdKind::Pipe => {
                poll_write(fd, None)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        // Skip what was written: whole parts first, then the front of a partial one.
        while first < count && n >= iov[first].iov_len {
            n -= iov[first].iov_len;
            first += 1;
        }
        if n > 0 {
            let v = &mut iov[first];
            // SAFETY: n < v.iov_len, so the advanced pointer stays inside the same slice.
            v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) }.cast();
            v.iov_len -= n;
        }
    }
    Ok(())
}

/// Writes every byte of `buf` with `send` (sockets, `MSG_NOSIGNAL`) or `write` (pipes): one
/// system call for a message that fits the socket buffer, and a cheaper one than `sendmsg`.
pub(crate) fn write_all(fd: BorrowedFd<'_>, kind: FdKind, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let ret = match kind {
            // SAFETY: `buf` is a live slice that send only reads.
            FdKind::Socket => unsafe {
                libc::send(
                    fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            },
            // SAFETY: `buf` is a live slice that write only reads.
            FdKind::Pipe => unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) },
        };
        match cvt(ret) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A full pipe in non-blocking mode: wait for room, as a blocking write would.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && kind == FdKind::Pipe => {
                poll_write(fd, None)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Converts a timeout into poll(2)'s milliseconds, rounding up so that a short wait does not
/// turn into a busy loop; `None` waits forever.
fn poll_millis(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// Waits until any of `fds` is ready for `events` or `timeout` passes; returns, for each
/// descriptor, whether it is ready (an error or hang-up counts as ready: the next call reports
/// it).
pub(crate) fn poll_many(
    fds: &[BorrowedFd<'_>],
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        })
        .collect();
    let deadline = timeout.map(|t| Instant::now().checked_add(t));
    loop {
        let left = match deadline {
            None => None,
            Some(None) => None, // a timeout too large to represent waits forever
            Some(Some(d)) => Some(d.saturating_duration_since(Instant::now())),
        };
        // SAFETY: `pfds` is a live array of `pfds.len()` pollfd structures.
        let ret = unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                poll_millis(left),
            )
        };
        match cvt(ret as isize) {
            Ok(0) => {
                if matches!(left, Some(l) if l.is_zero()) {
                    return Ok(vec![false; fds.len()]);
                }
                // poll rounds to milliseconds and may wake a little early: wait out the rest.
                if let Some(Some(d)) = deadline {
                    if Instant::now() >= d {
                        return Ok(vec![false; fds.len()]);
                    }
                }
            }
            Ok(_) => return Ok(pfds.iter().map(|p| p.revents != 0).collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `fd` is readable (or at end of file, or in error) or `timeout` passes.
pub(crate) fn poll_read(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    Ok(poll_many(&[fd], libc::POLLIN, timeout)?[0])
}

/// Waits until `fd` can take a write (or is in error) or `timeout` passes.
pub(crate) fn poll_write(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    Ok(poll_many(&[fd], libc::POLLOUT, timeout)?[0])
}

/// Whether the peer of `fd`, or of `also`, has gone: a socket whose peer closed or shut down
/// its sending side (or that is in error), a pipe whose other end is closed. Never waits, and
/// makes one system call for both. Bytes still waiting to be read do not hide a hang-up.
pub(crate) fn hung_up(fd: BorrowedFd<'_>, also: Option<BorrowedFd<'_>>) -> io::Result<bool> {
    let pfd = |fd: BorrowedFd<'_>| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // On a pipe's read end, POLLHUP says that the write end closed.
    let mut pfds = [pfd(fd), pfd(also.unwrap_or(fd))];
    let n = if also.is_some() { 2 } else { 1 };
    loop {
        // SAFETY: `pfds` is a live array of 2 pollfd structures, of which poll uses `n`.
        let ret = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, 0) };
        match cvt(ret as isize) {
            Ok(_) => {
                return Ok(pfds[..n]
                    .iter()
                    .any(|p| p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `fd` is readable (or at end of file, or in error): true; or until the socket
/// `watch` hangs up (its peer closed it or shut it down, or it was shut down here) while `fd`
/// is not readable: false.
pub(crate) fn wait_readable_unless_hangup(
    fd: BorrowedFd<'_>,
    watch: BorrowedFd<'_>,
) -> io::Result<bool> {
    let mut pfds = [
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: watch.as_raw_fd(),
            events: libc::POLLRDHUP,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `pfds` is a live array of two pollfd structures.
        let ret = unsafe { libc::poll(pfds.as_mut_ptr(), 2, -1) };
        match cvt(ret as isize) {
            Ok(_) => {
                if pfds[0].revents != 0 {
                    return Ok(true);
                }
                if pfds[1].revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0 {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Shuts a socket down for writing: the peer reads what was sent, then end of file.
pub(crate) fn shutdown_write(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we borrow.
    let ret = unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) };
    match cvt(ret as isize) {
        // Already disconnected: nothing left to shut.
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
        other => other.map(drop),
    }
}

/// Closes the file behind `fd` while keeping the descriptor number valid: `/dev/null` is put in
/// its place. Used to close the writing end of an OS pipe through a shared reference, where
/// closing the number itself could let another thread's new file take it.
pub(crate) fn replace_with_dev_null(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the path is a NUL-terminated constant.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    let null = cvt(null as isize)? as RawFd;
    // SAFETY: `open` returned a new descriptor that nothing else owns.
    let null = unsafe { OwnedFd::from_raw_fd(null) };
    loop {
        // SAFETY: dup3 atomically makes `fd` (which we keep owning) refer to /dev/null.
        let ret = unsafe { libc::dup3(null.as_raw_fd(), fd.as_raw_fd(), libc::O_CLOEXEC) };
        match cvt(ret as isize) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(drop),
        }
    }
}

/// Whether `fd` is a socket.
pub(crate) fn is_socket(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable stat structure.
    let ret = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    cvt(ret as isize)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// The access mode `fd` was opened with, and whether it is in non-blocking mode
/// (`O_NONBLOCK`): (readable, writable, non-blocking).
pub(crate) fn access_mode(fd: BorrowedFd<'_>) -> io::Result<(bool, bool, bool)> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    let flags = cvt(flags as isize)? as libc::c_int;
    let nonblocking = flags & libc::O_NONBLOCK != 0;
    Ok(match flags & libc::O_ACCMODE {
        libc::O_RDONLY => (true, false, nonblocking),
        libc::O_WRONLY => (false, true, nonblocking),
        _ => (true, true, nonblocking),
    })
}

/// Sets (or, with `None`, clears) the socket's receive and send timeouts.
pub(crate) fn set_socket_timeouts(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    let tv = match timeout {
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        Some(t) => {
            let mut tv = libc::timeval {
                tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            };
            if tv.tv_sec == 0 && tv.tv_usec == 0 {
                tv.tv_usec = 1; // zero would mean "no timeout"
            }
            tv
        }
    };
    for opt in [libc::SO_RCVTIMEO, libc::SO_SNDTIMEO] {
        // SAFETY: `tv` is a live timeval and its size is passed along.
        let ret = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        cvt(ret as isize)?;
    }
    Ok(())
}

/// Raises a socket's send buffer to `bytes` (`SO_SNDBUF`; Linux doubles the figure for its
/// bookkeeping and caps it at `net.core.wmem_max`), best effort. On a Unix stream socket the
/// sender's buffer is what bounds the bytes in flight, so a large message crosses in fewer
/// hand-overs between the two processes.
pub(crate) fn grow_send_buffer(fd: BorrowedFd<'_>, bytes: usize) {
    let v = bytes.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: `v` is a live int and its size is passed along.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        tracing::trace!(error = %io::Error::last_os_error(), "could not grow a send buffer");
    }
}

/// Whether `fd` is a Unix-domain socket (the only kind that passes descriptors).
pub(crate) fn is_unix_socket(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: an all-zero sockaddr_storage is valid for getsockname to overwrite; `len` says
    // how big it is.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `addr` and `len` are live and writable for the call.
    let ret = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    ret == 0 && addr.ss_family as libc::c_int == libc::AF_UNIX
}

/// The machine's memory and swap together, in bytes (`sysinfo`); `None` if unknown.
pub(crate) fn memory_size() -> Option<u64> {
    // SAFETY: an all-zero sysinfo is a valid value for the call to overwrite.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is live and writable for the call.
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return None;
    }
    let unit = u64::from(info.mem_unit.max(1));
    (info.totalram as u64)
        .checked_add(info.totalswap as u64)?
        .checked_mul(unit)
}

/// Whether writing to a pipe whose reader is gone is safe in this process: it raises
/// `SIGPIPE`, which kills the process unless the signal is ignored or handled (Rust and
/// Python programs ignore it from the start; socket writes here use `MSG_NOSIGNAL` instead).
pub(crate) fn sigpipe_is_safe() -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`, a
    // zeroed sigaction that lives for the call.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction != libc::SIG_DFL
    }
}

/// An OS pipe `(read end, write end)`, close-on-exec, in non-blocking mode (see
/// [`set_nonblocking`]), holding at least `capacity` bytes.
pub(crate) fn make_pipe(capacity: usize) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a live array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } as isize)?;
    // SAFETY: pipe2 succeeded: both descriptors are new and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let want = capacity.min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: F_SETPIPE_SZ takes an int and changes only the pipe's capacity.
    let size = cvt(unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, want) } as isize)?;
    if size < capacity {
        return Err(io::Error::other(format!(
            "a pipe could hold only {size} bytes, less than the {capacity} asked for"
        )));
    }
    Ok((rd, wr))
}

/// Whether `fd` is a FIFO (an OS pipe's end, or a named pipe).
pub(crate) fn is_fifo(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a live, writable stat structure.
    let ret = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) };
    cvt(ret as isize)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFIFO)
}

/// Sets or clears `fd`'s non-blocking mode (`O_NONBLOCK`). Every pipe end a connection moves
/// to is non-blocking where that is safe (its spin then looks with a plain `read`, see
/// [`read_some`]); a read that finds nothing and a write that finds the pipe full still wait,
/// with `poll`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } as isize)? as libc::c_int;
    let want = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if want != flags {
        // SAFETY: F_SETFL takes an int and changes only the file status flags.
        let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, want) };
        cvt(ret as isize)?;
    }
    Ok(())
}

/// The read end of the pipe `fd` reads, opened again (through `/proc/self/fd`) as a new open
/// file of this process's own, read-only, non-blocking and close-on-exec. A pipe end passed by
/// a peer shares its open file, and with it `O_NONBLOCK`, with any copy the peer kept: the
/// peer could make it blocking again, and a spin's plain `read` would then sleep without
/// watching the socket. The reopened end's mode is this process's alone.
pub(crate) fn reopen_read_end(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}\0", fd.as_raw_fd());
    // SAFETY: `path` is a NUL-terminated string that lives for the call; open only reads it.
    let ret = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    let new = cvt(ret as isize)? as RawFd;
    // SAFETY: open succeeded: `new` is a fresh descriptor owned by nobody else.
    let new = unsafe { OwnedFd::from_raw_fd(new) };
    // the same pipe, or nothing
    let same = |f: BorrowedFd<'_>| -> io::Result<(u64, u64)> {
        // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a live, writable stat structure.
        cvt(unsafe { libc::fstat(f.as_raw_fd(), &mut st) } as isize)?;
        Ok((st.st_dev as u64, st.st_ino as u64))
    };
    if same(fd)? != same(new.as_fd())? || !is_fifo(new.as_fd())? {
        return Err(io::Error::other(
            "the reopened descriptor is not the same pipe",
        ));
    }
    Ok(new)
}
