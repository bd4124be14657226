//! Helpers shared by the integration tests: a socket end that travels to a child, waiting with
//! a generous limit, and watching processes that are not our children.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use conveyor_process::{Child, ExitStatus};
use serde::{Deserialize, Serialize};

/// Generous: a loaded 2-core machine may be slow, but a correct child ends long before this.
pub const LIMIT: Duration = Duration::from_secs(60);

/// One end of a socket pair, passed to a child as an inherited descriptor.
#[derive(Debug, Serialize, Deserialize)]
pub struct End(#[serde(with = "conveyor_core::handoff::fd")] pub UnixStream);

impl End {
    pub fn pair() -> (End, End) {
        let (a, b) = UnixStream::pair().unwrap();
        (End(a), End(b))
    }

    pub fn send_line(&mut self, line: &str) {
        writeln!(self.0, "{line}").unwrap();
    }

    /// Reads one line, byte by byte so nothing after it is consumed; `None` at end of stream.
    pub fn recv_line(&mut self) -> Option<String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.0.read(&mut byte).unwrap() {
                0 if line.is_empty() => return None,
                0 => break,
                _ if byte[0] == b'\n' => break,
                _ => line.push(byte[0]),
            }
        }
        Some(String::from_utf8(line).unwrap())
    }
}

/// Joins `child`, failing the test if it has not ended within [`LIMIT`].
pub fn join(child: &Child) -> ExitStatus {
    match child.join_timeout(LIMIT).unwrap() {
        Some(s) => s,
        None => {
            let _ = child.kill();
            panic!("child {} did not end within {LIMIT:?}", child.pid());
        }
    }
}

/// A descriptor that becomes readable when `pid` exits, for a process that is not our child.
pub fn pidfd(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(
        fd >= 0,
        "pidfd_open({pid}): {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Waits up to `timeout` for the process behind `pidfd` to exit; true if it did.
pub fn exited_within(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    n == 1
}

/// Parks the calling thread forever: an entry point that runs until it is signalled.
pub fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}
