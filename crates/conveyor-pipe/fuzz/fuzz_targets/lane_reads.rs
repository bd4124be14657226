//! Feeds arbitrary input to the receiving end of a shared-memory pipe
//! (`PipeBuilder::shared_memory`) through every read path of its lane: records of any bytes
//! put straight into its ring (messages, descriptor markers, malformed tags, messages over the
//! maximum), messages and descriptors sent by the peer, stray bytes and stray descriptors on
//! the socket, and end of file; received as bytes, into a reused buffer, as values, as
//! descriptors, or polled. Each receive ends in a message, descriptors or an error (never a
//! panic, a hang, or a message over the maximum), and once the peer is gone and the ring
//! drained, the receiver reaches `Closed` or an error.
#![no_main]

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use conveyor_pipe::{PipeBuilder, SendError};
use conveyor_shm::ShmQueue;
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 1 << 12;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.len() > 20_000 {
        return;
    }
    let (conn, peer) = PipeBuilder::new()
        .shared_memory(true)
        .ring_bytes(1 << 14)
        .build()
        .unwrap();
    conn.set_max_message_size(MAX);
    conn.set_spin(mode & 1 != 0);
    let ring: ShmQueue<Vec<u8>> = ShmQueue::open(&conn.__lane_ring_names().1.unwrap()).unwrap();
    let ops = rest.to_vec();
    let writer = std::thread::spawn(move || {
        let file = std::fs::File::open("/dev/null").unwrap();
        // A raw handle on the peer's socket, for stray bytes and descriptors.
        let raw = UnixStream::from(peer.as_fd().try_clone_to_owned().unwrap());
        let mut rest = &ops[..];
        while let Some((&op, tail)) = rest.split_first() {
            let Some((&len, tail)) = tail.split_first() else {
                break;
            };
            let n = usize::from(len).min(tail.len());
            let bytes = &tail[..n];
            rest = &tail[n..];
            let ok = match op % 6 {
                // A record of any bytes: the last is its tag.
                0 => {
                    // A full ring drops it: the receiver may have stopped.
                    let _ = ring.try_put_bytes(bytes);
                    true
                }
                1 => !matches!(peer.send_bytes(bytes), Err(SendError::Closed)),
                2 => peer.send_fds(&[file.as_fd()]).is_ok(),
                // Stray bytes (framed, which the lane's socket does not care about).
                3 => conveyor_pipe::Connection::from_fd(raw.try_clone().unwrap().into())
                    .map(|c| c.send_bytes(bytes).is_ok())
                    .unwrap_or(false),
                // A message over the receiver's maximum.
                4 => {
                    let big = vec![len; MAX as usize + 1 + n];
                    !matches!(peer.send_bytes(&big), Err(SendError::Closed))
                }
                _ => {
                    // Descriptors on the socket with no marker in the ring.
                    let fd = file.as_fd();
                    conveyor_pipe::Connection::from_fd(raw.try_clone().unwrap().into())
                        .map(|c| c.send_fds(&[fd]).is_ok())
                        .unwrap_or(false)
                }
            };
            if !ok {
                break;
            }
        }
        // The peer goes: end of file on the socket.
    });
    let mut buf = Vec::new();
    let mut closed = false;
    for i in 0..(2 * data.len() + 8) {
        let how = (mode >> (1 + i % 7)) & 3;
        let r = match how {
            0 => conn.recv_bytes_into(&mut buf).map(|n| {
                assert!(n as u64 <= MAX && n == buf.len());
            }),
            1 => conn
                .recv_fds(4)
                .map(|f| assert!(!f.is_empty() && f.len() <= 4)),
            2 => conn.recv::<Vec<u8>>().map(|_| ()),
            _ => {
                let _ = conn.poll(Some(Duration::ZERO));
                Ok(())
            }
        };
        if let Err(e) = r {
            if e.is_closed() {
                closed = true;
                break;
            }
        }
    }
    let _ = closed;
    drop(conn);
    writer.join().unwrap();
});
