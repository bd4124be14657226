//! Sockets: listening on and connecting to an [`Address`].

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use crate::address::Address;

/// A connected socket of either family.
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

/// Connects to `addr` (no authentication yet).
pub(crate) fn connect(addr: &Address) -> io::Result<Stream> {
    match addr {
        Address::Unix(p) => UnixStream::connect(p).map(Stream::Unix),
        Address::Tcp(a) => {
            let s = TcpStream::connect(a.as_str())?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
    }
}

/// A listening socket of either family.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Listener {
    /// Listens on `addr`. A Unix socket path must not exist yet.
    pub(crate) fn bind(addr: &Address) -> io::Result<Listener> {
        match addr {
            Address::Unix(p) => {
                let l = UnixListener::bind(p).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "cannot listen on {}: {e} (remove a stale socket file first)",
                            p.display()
                        ),
                    )
                })?;
                Ok(Listener::Unix(l, p.clone()))
            }
            Address::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a.as_str())?)),
        }
    }

    /// The address clients reach it at (with the port chosen, for TCP port 0).
    pub(crate) fn address(&self) -> io::Result<Address> {
        match self {
            Listener::Unix(_, p) => Ok(Address::Unix(p.clone())),
            Listener::Tcp(l) => Ok(Address::Tcp(l.local_addr()?.to_string())),
        }
    }

    /// Waits for the next connection.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
        }
    }

    /// Makes a blocked [`accept`](Listener::accept) return (with an error), for shutdown.
    pub(crate) fn wake(&self) {
        let fd = match self {
            Listener::Unix(l, _) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        };
        crate::transport::shutdown_fd(fd);
    }

    /// Removes the socket file of a Unix listener.
    pub(crate) fn cleanup(&self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}
