//! Feeds arbitrary bytes to a connection whose messages come through an OS pipe, as after a
//! move to pipes (`Connection::accept_pipes`): the read-ahead buffer taking the stream in
//! arbitrary chunks from the pipe, with or without the spin and read-ahead, while a socket is
//! watched for hang-up. Each receive ends in a message or an error (never a panic, a hang, or
//! an allocation for a length that did not arrive), and an error ends the stream.
#![no_main]

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use conveyor_pipe::Connection;
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 100_000 {
        return;
    }
    // libFuzzer's main, unlike Rust's, leaves SIGPIPE deadly: the writer below writes to a
    // pipe whose reader may have gone (as a connection moves to pipes only where it is
    // ignored).
    // SAFETY: setting a signal's disposition to SIG_IGN is async-signal-safe and touches no
    // memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded: both descriptors are new and owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let conn = Connection::from_fd(rd).unwrap();
    conn.set_max_message_size(MAX);
    conn.set_spin(mode & 1 != 0);
    conn.set_read_ahead(mode & 2 != 0);
    // The socket a moved connection keeps: its peer goes with the writer, or (mode bit 2)
    // at once, which ends a wait on the pipe as end of file.
    let (watched, peer) = UnixStream::pair().unwrap();
    conn.watch_hangup(watched.into()).unwrap();
    let peer = if mode & 4 != 0 {
        drop(peer);
        None
    } else {
        Some(peer)
    };
    // The stream, written by another thread in chunks whose lengths the input picks; it
    // stops when the reader has gone.
    let stream = rest.to_vec();
    let writer = std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(wr);
        let mut rest = &stream[..];
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            if pipe.write_all(&tail[..n]).is_err() {
                return;
            }
            rest = &tail[n..];
        }
        drop(peer);
    });
    let mut buf = Vec::new();
    for _ in 0..=data.len() {
        match conn.recv_bytes_into(&mut buf) {
            Ok(n) => assert!(n as u64 <= MAX && n == buf.len()),
            Err(_) => {
                assert!(buf.capacity() as u64 <= MAX.max(1 << 22));
                break;
            }
        }
    }
    drop(conn);
    writer.join().unwrap();
});
