//! Sockets: listening on and connecting to an [`Address`], authenticated by conveyor-pipe.
//!
//! The connections are conveyor-pipe's: its `Listener` and `Client` bind, connect, and run
//! CPython's authkey handshake (`multiprocessing.connection`'s HMAC challenge, both ways). The
//! authenticated socket is then taken over by [`StreamTransport`](crate::transport), which
//! speaks the same framing through its own buffers so that pipelined requests and replies
//! share system calls.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use conveyor_pipe::{ConnectError, PendingConnection};

use crate::address::Address;
use crate::error::ManagerError;

/// A connected, authenticated socket of either family.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl Stream {
    fn from_fd(fd: OwnedFd, tcp: bool) -> Stream {
        if tcp {
            Stream::Tcp(TcpStream::from(fd))
        } else {
            Stream::Unix(UnixStream::from(fd))
        }
    }
}

fn pipe_address(addr: &Address) -> conveyor_pipe::Address {
    match addr {
        Address::Unix(p) => conveyor_pipe::Address::Unix(p.clone()),
        Address::Tcp(a) => conveyor_pipe::Address::Tcp(a.clone()),
    }
}

fn connect_error(e: ConnectError) -> ManagerError {
    match e {
        ConnectError::Io(e) => ManagerError::Io(e),
        other if other.is_authentication() || other.is_timeout() => ManagerError::Auth(other),
        other => ManagerError::Io(io::Error::other(other)),
    }
}

/// Connects to `addr` and authenticates with `authkey`.
pub(crate) fn connect(addr: &Address, authkey: &[u8]) -> Result<Stream, ManagerError> {
    let conn = conveyor_pipe::Client::new()
        .authkey(authkey)
        .connect(&pipe_address(addr))
        .map_err(connect_error)?;
    Ok(Stream::from_fd(
        conn.into_fd(),
        matches!(addr, Address::Tcp(_)),
    ))
}

/// A listening socket that authenticates what it accepts.
#[derive(Debug)]
pub(crate) struct Listener {
    inner: conveyor_pipe::Listener,
    address: Address,
}

/// A connection accepted and not yet authenticated.
pub(crate) struct Pending {
    inner: PendingConnection,
    tcp: bool,
}

impl Pending {
    /// Runs the authkey handshake (bounded by conveyor-pipe's handshake timeout).
    pub(crate) fn authenticate(self) -> Result<Stream, ManagerError> {
        let conn = self.inner.authenticate().map_err(connect_error)?;
        Ok(Stream::from_fd(conn.into_fd(), self.tcp))
    }
}

impl Listener {
    /// Listens on `addr`, authenticating clients with `authkey`. A Unix socket path must not
    /// exist yet.
    pub(crate) fn bind(addr: &Address, authkey: &[u8]) -> io::Result<Listener> {
        let inner = conveyor_pipe::Listener::builder()
            .authkey(authkey)
            .bind(&pipe_address(addr))
            .map_err(|e| match addr {
                Address::Unix(p) => io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on {}: {e} (remove a stale socket file first)",
                        p.display()
                    ),
                ),
                Address::Tcp(a) => io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")),
            })?;
        let address = match inner.address() {
            conveyor_pipe::Address::Unix(p) => Address::Unix(p.clone()),
            conveyor_pipe::Address::Tcp(a) => Address::Tcp(a.clone()),
        };
        Ok(Listener { inner, address })
    }

    /// The address clients reach it at (with the port chosen, for TCP port 0).
    pub(crate) fn address(&self) -> &Address {
        &self.address
    }

    /// Waits for the next connection; authenticate it on its own thread.
    pub(crate) fn accept(&self) -> io::Result<Pending> {
        Ok(Pending {
            inner: self.inner.accept_pending()?,
            tcp: matches!(self.address, Address::Tcp(_)),
        })
    }

    /// Makes a blocked [`accept`](Listener::accept) return (with an error), for shutdown.
    pub(crate) fn wake(&self) {
        crate::transport::shutdown_fd(self.inner.as_fd().as_raw_fd());
    }

    /// Removes the socket file of a Unix listener.
    pub(crate) fn cleanup(&self) {
        if let Address::Unix(p) = &self.address {
            let _ = std::fs::remove_file(p);
        }
    }
}
