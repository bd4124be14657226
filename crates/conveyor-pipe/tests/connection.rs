//! Connection over a socketpair and over an OS pipe: values, bytes, closing, the Channel face.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use conveyor_core::{Channel, GetError};
use conveyor_pipe::{pipe, pipe_oneway, Connection, SendError};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn values_both_ways() {
    let (a, b) = pipe().unwrap();
    a.send(&vec![1u32, 2, 3]).unwrap();
    assert_eq!(b.recv::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
    b.send(&Some("back".to_string())).unwrap();
    assert_eq!(a.recv::<Option<String>>().unwrap().as_deref(), Some("back"));
}

#[test]
fn bytes_of_many_sizes_arrive_whole_and_in_order() {
    let (a, b) = pipe().unwrap();
    let sizes = [
        0usize,
        1,
        3,
        4,
        5,
        1000,
        16384,
        16385,
        65536,
        1 << 20,
        3 << 20,
    ];
    let sender = std::thread::spawn(move || {
        for (i, &n) in sizes.iter().enumerate() {
            let payload: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
            a.send_bytes(&payload).unwrap();
        }
        a
    });
    let mut buf = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let got = b.recv_bytes_into(&mut buf).unwrap();
        assert_eq!(got, n);
        assert!(buf.iter().enumerate().all(|(j, &x)| x == (i + j) as u8));
    }
    drop(sender.join().unwrap());
    assert!(b.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn wire_format_is_cpythons() {
    let (raw, theirs) = UnixStream::pair().unwrap();
    let conn = Connection::from_fd(theirs.into()).unwrap();
    conn.send_bytes(b"abc").unwrap();
    conn.send(&300u16).unwrap(); // postcard: varint 300 = [0xAC, 0x02]
    let mut raw = raw;
    let mut got = [0u8; 7 + 6];
    raw.read_exact(&mut got).unwrap();
    assert_eq!(got, [0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 2, 0xAC, 0x02]);

    // And it reads what Python writes, including the long form with a -1 prefix.
    raw.write_all(&[0, 0, 0, 2, b'h', b'i']).unwrap();
    let mut long = (-1i32).to_be_bytes().to_vec();
    long.extend_from_slice(&3u64.to_be_bytes());
    long.extend_from_slice(b"big");
    raw.write_all(&long).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"hi");
    assert_eq!(conn.recv_bytes().unwrap(), b"big");
}

#[test]
fn close_lets_the_peer_drain_then_reports_closed() {
    let (a, b) = pipe().unwrap();
    for i in 0..5u8 {
        a.send(&i).unwrap();
    }
    a.close();
    a.close(); // twice is a no-op
    assert!(a.send(&9u8).unwrap_err().is_closed());
    for i in 0..5u8 {
        assert_eq!(b.recv::<u8>().unwrap(), i);
    }
    assert!(b.recv::<u8>().unwrap_err().is_closed());
    assert!(b.recv::<u8>().unwrap_err().is_closed());
    // The other direction still works after a half close.
    b.send(&7u8).unwrap();
    assert_eq!(a.recv::<u8>().unwrap(), 7);
}

/// On a point-to-point connection `Channel::shutdown`, either form, is closing this end.
#[test]
fn channel_shutdown_is_close_for_a_connection() {
    for immediate in [false, true] {
        let (a, b) = pipe().unwrap();
        for i in 0..3u8 {
            Channel::put(&a, i).unwrap();
        }
        Channel::<u8>::shutdown(&a, immediate).unwrap();
        assert!(Channel::put(&a, 9u8).unwrap_err().is_closed());
        for i in 0..3u8 {
            assert_eq!(Channel::<u8>::get(&b).unwrap(), i, "immediate: {immediate}");
        }
        assert!(Channel::<u8>::get(&b).unwrap_err().is_closed());
        // Receiving on the end shut down still works.
        Channel::put(&b, 7u8).unwrap();
        assert_eq!(Channel::<u8>::get(&a).unwrap(), 7);
    }
}

#[test]
fn close_wakes_a_send_blocked_on_a_full_socket() {
    let (a, b) = pipe().unwrap();
    let a = Arc::new(a);
    let sender = {
        let a = Arc::clone(&a);
        // Far larger than the socket buffer, and nobody reads: it blocks until closed.
        std::thread::spawn(move || a.send_bytes(&vec![1u8; 16 << 20]))
    };
    (*a).close(); // the inherent close; Arc<Connection> is a Channel too
                  // Whether close came before the send started or while it was blocked, it fails as Closed.
    assert!(sender.join().unwrap().unwrap_err().is_closed());
    // The peer sees either nothing (Closed) or the message cut short (UnexpectedEof).
    b.set_max_message_size(u64::MAX);
    match b.recv_bytes() {
        Err(GetError::Closed) => {}
        Err(GetError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dropping_one_end_closes_the_other() {
    let (a, b) = pipe().unwrap();
    a.send(&1u8).unwrap();
    drop(a);
    assert_eq!(b.recv::<u8>().unwrap(), 1);
    assert!(b.recv::<u8>().unwrap_err().is_closed());
    // Sending to a peer that has gone is Closed, not a SIGPIPE.
    let mut last = Ok(());
    for _ in 0..3 {
        last = b.send_bytes(b"x");
    }
    assert!(matches!(last, Err(SendError::Closed)), "{last:?}");
}

#[test]
fn poll_waits_for_data() {
    let (a, b) = pipe().unwrap();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    assert!(!b.poll(Some(Duration::from_millis(20))).unwrap());
    let t = std::thread::spawn(move || {
        a.send_bytes(b"late").unwrap();
        a
    });
    assert!(b.poll(Some(WAIT)).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"late");
    let a = t.join().unwrap();
    drop(a);
    // End of file counts as ready; the receive then says Closed.
    assert!(b.poll(None).unwrap());
    assert!(b.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn oneway_pipe() {
    let (r, w) = pipe_oneway().unwrap();
    assert!(r.readable() && !r.writable());
    assert!(w.writable() && !w.readable());
    w.send(&"through").unwrap();
    // Both fit in the pipe's 64 KiB buffer, so the writer does not wait for the reader.
    w.send_bytes(&vec![5u8; 30_000]).unwrap();
    let got: String = r.recv().unwrap();
    assert_eq!(got, "through");
    assert_eq!(r.recv_bytes().unwrap().len(), 30_000);
    assert!(r.send_bytes(b"no").is_err());
    assert!(w.recv_bytes().is_err());
    assert!(w.poll(Some(Duration::ZERO)).is_err());
    Channel::<u8>::close(&w).unwrap();
    assert!(w.send_bytes(b"after close").unwrap_err().is_closed());
    assert!(r.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn oneway_large_message_with_a_concurrent_reader() {
    let (r, w) = pipe_oneway().unwrap();
    let t = std::thread::spawn(move || r.recv_bytes().unwrap());
    let payload: Vec<u8> = (0..2_000_000u32).map(|i| i as u8).collect();
    w.send_bytes(&payload).unwrap();
    assert_eq!(t.join().unwrap(), payload);
}

#[test]
fn channel_face() {
    let (a, b) = pipe().unwrap();
    assert!(Channel::<u32>::try_get(&b).unwrap_err().is_empty());
    assert!(Channel::<u32>::get_timeout(&b, Duration::from_millis(10))
        .unwrap_err()
        .is_timeout());
    a.try_put(1u32).unwrap();
    a.put_timeout(2u32, WAIT).unwrap();
    a.put(3u32).unwrap();
    assert_eq!(Channel::<u32>::get(&b).unwrap(), 1);
    assert_eq!(
        Channel::<u32>::try_get(&b).unwrap_or_else(|_| {
            // try_get only sees what has arrived; the item was written before, so it has.
            panic!("item 2 should be there")
        }),
        2
    );
    assert_eq!(Channel::<u32>::get_timeout(&b, WAIT).unwrap(), 3);
    Channel::<u32>::close(&a).unwrap();
    let e = a.put(4u32).unwrap_err();
    assert!(e.is_closed());
    assert_eq!(e.into_inner(), 4);
    assert!(Channel::<u32>::get(&b).unwrap_err().is_closed());
    assert!(Channel::<u32>::try_get(&b).unwrap_err().is_closed());
}

#[test]
fn try_put_reports_full_when_the_peer_does_not_read() {
    let (a, _b) = pipe().unwrap();
    let chunk = vec![0u8; 64 * 1024];
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Chunk(#[serde(with = "serde_bytes")] Vec<u8>);
    // Fill the socket buffer (a few hundred KiB); a later try_put must say Full, not block.
    let mut full = false;
    for _ in 0..1000 {
        match a.try_put(Chunk(chunk.clone())) {
            Ok(()) => {}
            Err(e) => {
                assert!(e.is_full(), "{e}");
                assert_eq!(e.into_inner().0.len(), chunk.len());
                full = true;
                break;
            }
        }
    }
    assert!(full, "the socket buffer never filled");
    let e = a
        .put_timeout(Chunk(chunk.clone()), Duration::from_millis(10))
        .unwrap_err();
    assert!(e.is_timeout());
}

#[test]
fn codec_error_leaves_the_connection_usable() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(&[0xFF, 0xFF, 0xFF]).unwrap();
    a.send(&"fine").unwrap();
    assert!(b.recv::<String>().unwrap_err().is_codec());
    assert_eq!(b.recv::<String>().unwrap(), "fine");
}

#[test]
fn too_large_outgoing_is_refused_and_nothing_is_written() {
    let (a, b) = pipe().unwrap();
    a.set_max_message_size(10);
    assert!(a.send_bytes(&[0; 11]).unwrap_err().is_too_large());
    let e = a.put(vec![1u64; 100]).unwrap_err();
    assert!(e.is_too_large());
    assert_eq!(e.into_inner().len(), 100);
    a.send_bytes(&[1; 10]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), vec![1; 10]);
}

#[test]
fn too_large_incoming_is_refused_and_the_connection_is_unusable() {
    let (a, b) = pipe().unwrap();
    b.set_max_message_size(100);
    a.send_bytes(&[0; 101]).unwrap();
    a.send_bytes(&[0; 5]).unwrap();
    match b.recv_bytes() {
        Err(GetError::TooLarge {
            size: 101,
            max: 100,
        }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let e = b.recv_bytes().unwrap_err();
    assert!(e.is_io(), "{e}");
    assert!(e.to_string().contains("unusable"), "{e}");
}

#[test]
fn shared_through_an_arc_every_message_stays_whole() {
    let (a, b) = pipe().unwrap();
    let a = Arc::new(a);
    let threads = 4;
    let per = if std::env::var_os("CI").is_some() {
        200
    } else {
        2000
    };
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                for i in 0..per {
                    let len = 1 + (i * 7919 + t * 13) % 5000;
                    a.send_bytes(&vec![t as u8; len]).unwrap();
                }
            })
        })
        .collect();
    let mut counts = vec![0; threads];
    for _ in 0..threads * per {
        let m = b.recv_bytes().unwrap();
        let t = m[0] as usize;
        assert!(m.iter().all(|&x| x as usize == t), "a message was torn");
        counts[t] += 1;
    }
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(counts, vec![per; threads]);
}

#[test]
fn try_clone_shares_the_stream() {
    let (a, b) = pipe().unwrap();
    let a2 = a.try_clone().unwrap();
    drop(a);
    a2.send(&5u8).unwrap();
    assert_eq!(b.recv::<u8>().unwrap(), 5);
    drop(a2);
    assert!(b.recv::<u8>().unwrap_err().is_closed());
}

#[test]
fn connection_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Connection>();
}

#[test]
fn sizes_around_the_read_ahead_buffer_arrive_whole() {
    // The receiver reads ahead in 32 KiB: messages just under, at and over what it keeps
    // whole, mixed with tiny ones, so that frames straddle every kind of boundary.
    let sizes = [
        1usize, 100, 5000, 32755, 32756, 32757, 32768, 40000, 7, 0, 16000, 16000,
    ];
    let rounds = if std::env::var_os("CI").is_some() {
        5
    } else {
        50
    };
    let (a, b) = pipe().unwrap();
    let sender = std::thread::spawn(move || {
        for r in 0..rounds {
            for (i, &n) in sizes.iter().enumerate() {
                a.send_bytes(&vec![(r * 31 + i) as u8; n]).unwrap();
            }
        }
    });
    let mut buf = Vec::new();
    for r in 0..rounds {
        for (i, &n) in sizes.iter().enumerate() {
            if (r + i) % 3 == 0 {
                // Mix in the codec path: a message of raw bytes fails to decode as a u64 or
                // not, but is consumed whole either way.
                let _ = b.recv::<u64>();
                continue;
            }
            assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), n);
            assert!(
                buf.iter().all(|&x| x == (r * 31 + i) as u8),
                "round {r} message {i}"
            );
        }
    }
    sender.join().unwrap();
    assert!(b.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn with_codec_keeps_messages_already_read_ahead() {
    let (a, b) = pipe().unwrap();
    a.send(&1u32).unwrap();
    a.send(&2u32).unwrap();
    a.send(&3u32).unwrap();
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    let b = b.with_codec(conveyor_core::Postcard);
    assert_eq!(b.recv::<u32>().unwrap(), 2);
    assert_eq!(b.recv::<u32>().unwrap(), 3);
}

/// Closing with buffered sends the peer will never read says so: the messages are lost, and
/// neither `try_close` nor the `Channel` trait's `close` answers as if they were sent.
#[test]
fn close_with_buffered_sends_to_a_gone_peer_says_they_were_lost() {
    for via_trait in [false, true] {
        let (a, b) = pipe().unwrap();
        a.set_buffered_sends(true);
        a.send(&7u64).unwrap(); // buffered here, not written yet
        drop(b);
        if via_trait {
            let e = Channel::<u64>::close(&a).unwrap_err();
            assert!(e.is_unreachable(), "{e:?}");
            assert_eq!(e.operation(), "close");
            assert!(
                std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<SendError>())
                    .is_some(),
                "the pipe's own error is the source: {e:?}"
            );
        } else {
            let e = a.try_close().unwrap_err();
            assert!(e.is_closed(), "{e:?}");
        }
        // closed all the same: closing again has nothing left to lose
        assert!(a.try_close().is_ok());
        assert!(a.send(&8u64).unwrap_err().is_closed());
    }
    // with nothing buffered, closing after the peer went is not an error: nothing was lost
    let (a, b) = pipe().unwrap();
    drop(b);
    Channel::<u64>::close(&a).unwrap();
}

#[test]
fn replies_to_messages_read_ahead_together_go_out_together() {
    let (server, client) = pipe().unwrap();
    server.set_buffered_sends(true);
    client.send_bytes_many(&[&b"one"[..], b"two"]).unwrap();
    assert_eq!(server.recv_bytes().unwrap(), b"one"); // reads both
    server.send_bytes(b"re: one").unwrap();
    // The next message is already here: receiving it waits for nothing, so it writes nothing.
    assert_eq!(server.recv_bytes().unwrap(), b"two");
    assert!(!client.poll(Some(Duration::ZERO)).unwrap());
    server.send_bytes(b"re: two").unwrap();
    // This receive would wait for the client: both replies go out first, in one write.
    let t = std::thread::spawn(move || {
        let got = server.recv_bytes().unwrap();
        (server, got)
    });
    assert_eq!(client.recv_bytes().unwrap(), b"re: one");
    assert_eq!(client.recv_bytes().unwrap(), b"re: two");
    client.send_bytes(b"three").unwrap();
    assert_eq!(t.join().unwrap().1, b"three");
}
