//! Feeds arbitrary bytes to a connection through every read path: the read-ahead buffer
//! taking the stream in arbitrary chunks, with or without the spin and read-ahead, descriptors
//! passed at arbitrary points, and receives of messages and of descriptors in any order. Each
//! receive ends in a message, descriptors or an error (never a panic, a hang, or an
//! allocation for a length that did not arrive), and an error ends the stream.
#![no_main]

use std::io::Write;
use std::os::fd::AsFd;
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
    let (mut raw, theirs) = UnixStream::pair().unwrap();
    let passer = Connection::from_fd(raw.try_clone().unwrap().into()).unwrap();
    let conn = Connection::from_fd(theirs.into()).unwrap();
    conn.set_max_message_size(MAX);
    conn.set_spin(mode & 1 != 0);
    conn.set_read_ahead(mode & 2 != 0);
    // The stream, written by another thread (it may not fit the socket's buffer): chunks
    // whose lengths the input picks; after a chunk whose length byte is odd, a descriptor
    // passed as Python's reduction.sendfds does. The writer stops when the reader has gone.
    let stream = rest.to_vec();
    let writer = std::thread::spawn(move || {
        let file = std::fs::File::open("/dev/null").unwrap();
        let mut rest = &stream[..];
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            if raw.write_all(&tail[..n]).is_err() {
                return;
            }
            if len & 1 == 1 && passer.send_fds(&[file.as_fd()]).is_err() {
                return;
            }
            rest = &tail[n..];
        }
    });
    // Receive, choosing messages or descriptors by the bits of `mode`, until the first error.
    let mut buf = Vec::new();
    for i in 0..=data.len() {
        let fds = (mode >> (2 + i % 6)) & 1 == 1;
        let ok = if fds {
            conn.recv_fds(4).map(|f| assert!(!f.is_empty() && f.len() <= 4)).is_ok()
        } else {
            match conn.recv_bytes_into(&mut buf) {
                Ok(n) => {
                    assert!(n as u64 <= MAX && n == buf.len());
                    true
                }
                Err(_) => {
                    assert!(buf.capacity() as u64 <= MAX.max(1 << 22));
                    false
                }
            }
        };
        if !ok {
            break;
        }
    }
    drop(conn);
    writer.join().unwrap();
});
