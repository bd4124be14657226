//! Property tests: frames and values round-trip; the decoders never panic on any input; the
//! connection's read paths (read-ahead over arbitrary chunks, with and without the spin,
//! buffered sends, descriptors between messages) deliver exactly what was sent, and arbitrary
//! streams with descriptors in them end in errors, never a panic or a hang. The fuzz target
//! `connection_reads` drives the same paths with coverage guidance. Over a shared-memory pipe
//! (`PipeBuilder::shared_memory`): any mix of messages and descriptors arrives in order, and
//! arbitrary records in its ring and bytes on its socket end in messages or errors (the fuzz
//! target `lane_reads`).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::thread;

use conveyor_pipe::frame::{decode_frame, encode_frame, Decoded};
use conveyor_pipe::handshake::{
    create_response, parse_challenge, split_digest, verify_response, CHALLENGE,
};
use conveyor_pipe::{pipe, Connection, PipeBuilder};
use conveyor_shm::ShmQueue;
use proptest::collection::vec;
use proptest::prelude::*;

/// A connection and the raw socket that feeds it, plus a second handle on that socket that
/// passes descriptors.
fn fed() -> (UnixStream, Connection, Connection) {
    let (raw, theirs) = UnixStream::pair().unwrap();
    let passer = Connection::from_fd(raw.try_clone().unwrap().into()).unwrap();
    (raw, passer, Connection::from_fd(theirs.into()).unwrap())
}

fn cases() -> u32 {
    if std::env::var_os("CI").is_some() {
        64
    } else {
        256
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn frame_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..5000), tail in proptest::collection::vec(any::<u8>(), 0..20)) {
        let mut wire = Vec::new();
        encode_frame(&payload, &mut wire);
        let frame_len = wire.len();
        wire.extend_from_slice(&tail);
        match decode_frame(&wire, u64::MAX).unwrap() {
            Decoded::Frame { payload: range, consumed } => {
                prop_assert_eq!(&wire[range], &payload[..]);
                prop_assert_eq!(consumed, frame_len);
            }
            other => prop_assert!(false, "incomplete: {:?}", other),
        }
        // Every strict prefix is incomplete, never an error or a wrong frame.
        for cut in [0, 1, 3, 4, frame_len.saturating_sub(1)] {
            if cut < frame_len {
                let is_incomplete = matches!(
                    decode_frame(&wire[..cut], u64::MAX),
                    Ok(Decoded::Incomplete { .. })
                );
                prop_assert!(is_incomplete);
            }
        }
    }

    #[test]
    fn decode_frame_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), max in any::<u64>()) {
        if let Ok(Decoded::Frame { payload, consumed }) = decode_frame(&bytes, max) {
            prop_assert!(payload.end == consumed && consumed <= bytes.len());
            prop_assert!((payload.len() as u64) <= max);
        }
    }

    #[test]
    fn values_round_trip_over_a_pipe(
        items in proptest::collection::vec(
            (any::<i64>(), ".{0,40}", proptest::collection::btree_map(any::<u8>(), any::<f64>(), 0..5), proptest::option::of(any::<bool>())),
            1..20,
        )
    ) {
        let (a, b) = pipe().unwrap();
        // Small enough in total to sit in the socket buffer without a reader.
        for item in &items {
            a.send(item).unwrap();
        }
        for item in &items {
            let got: (i64, String, BTreeMap<u8, f64>, Option<bool>) = b.recv().unwrap();
            prop_assert_eq!(got.0, item.0);
            prop_assert_eq!(&got.1, &item.1);
            prop_assert_eq!(got.2.len(), item.2.len());
            for ((k1, v1), (k2, v2)) in got.2.iter().zip(&item.2) {
                prop_assert_eq!(k1, k2);
                prop_assert!(v1.to_bits() == v2.to_bits());
            }
            prop_assert_eq!(got.3, item.3);
        }
    }

    #[test]
    fn bytes_round_trip_over_a_pipe(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..10)) {
        let (a, b) = pipe().unwrap();
        for m in &msgs {
            a.send_bytes(m).unwrap();
        }
        a.close();
        for m in &msgs {
            prop_assert_eq!(&b.recv_bytes().unwrap(), m);
        }
        prop_assert!(b.recv_bytes().unwrap_err().is_closed());
    }

    #[test]
    fn handshake_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), key in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = split_digest(&bytes);
        let _ = parse_challenge(&bytes);
        if let Ok(m) = parse_challenge(&bytes) {
            let _ = create_response(&key, m);
        }
        let _ = verify_response(&key, &bytes, &bytes, true);
    }

    #[test]
    fn response_verifies_with_the_same_key_only(
        key in proptest::collection::vec(any::<u8>(), 0..60),
        other in proptest::collection::vec(any::<u8>(), 0..60),
        random in proptest::collection::vec(any::<u8>(), 40),
        legacy in any::<bool>(),
    ) {
        let message = if legacy { random[..20].to_vec() } else { [b"{sha256}".as_slice(), &random].concat() };
        let wire = [CHALLENGE, &message].concat();
        let m = parse_challenge(&wire).unwrap();
        let r = create_response(&key, m).unwrap();
        prop_assert!(verify_response(&key, m, &r, false).is_ok());
        // HMAC pads a key shorter than a block with zeros: `k` and `k\0` are the same key.
        let trim = |k: &[u8]| k.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        if other[..trim(&other)] != key[..trim(&key)] {
            prop_assert!(verify_response(&other, m, &r, true).is_err());
        }
    }

    #[test]
    fn messages_and_descriptors_survive_any_chunking(
        msgs in vec((vec(any::<u8>(), 0..40_000), any::<bool>()), 1..6),
        cuts in vec(64usize..8000, 1..10),
        tiny_cut in 1usize..64,
        spin in any::<bool>(),
        read_ahead in any::<bool>(),
    ) {
        let (mut raw, passer, conn) = fed();
        conn.set_spin(spin);
        conn.set_read_ahead(read_ahead);
        let plan = msgs.clone();
        let writer = thread::spawn(move || {
            let file = std::fs::File::open("/dev/null").unwrap();
            // Mostly sizeable chunks, and one tiny one each round (a header split in two).
            let mut cuts = cuts.into_iter().chain([tiny_cut]).cycle();
            for (m, pass) in &plan {
                let mut wire = Vec::new();
                encode_frame(m, &mut wire);
                let mut rest = &wire[..];
                while !rest.is_empty() {
                    let n = cuts.next().unwrap().min(rest.len());
                    raw.write_all(&rest[..n]).unwrap();
                    rest = &rest[n..];
                }
                if *pass {
                    passer.send_fds(&[file.as_fd()]).unwrap();
                }
            }
        });
        let mut buf = Vec::new();
        for (m, pass) in &msgs {
            let n = conn.recv_bytes_into(&mut buf).unwrap();
            prop_assert_eq!(&buf[..n], &m[..]);
            if *pass {
                prop_assert_eq!(conn.recv_fds(1).unwrap().len(), 1);
            }
        }
        writer.join().unwrap();
        prop_assert!(conn.recv_bytes().unwrap_err().is_closed());
    }

    #[test]
    fn buffered_sends_arrive_as_unbuffered_ones(
        msgs in vec(vec(any::<u8>(), 0..5_000), 1..30),
        flush_every in 1usize..12,
        batch in any::<bool>(),
    ) {
        let (a, b) = pipe().unwrap();
        a.set_buffered_sends(true);
        let plan = msgs.clone();
        let writer = thread::spawn(move || {
            if batch {
                a.send_bytes_many(&plan).unwrap();
            } else {
                for (i, m) in plan.iter().enumerate() {
                    a.send_bytes(m).unwrap();
                    if i % flush_every == 0 {
                        a.flush().unwrap();
                    }
                }
            }
            // Dropping the connection writes what is left.
        });
        for m in &msgs {
            prop_assert_eq!(&b.recv_bytes().unwrap(), m);
        }
        writer.join().unwrap();
        prop_assert!(b.recv_bytes().unwrap_err().is_closed());
    }

    #[test]
    fn arbitrary_streams_with_descriptors_end_in_errors(
        chunks in vec((vec(any::<u8>(), 0..300), any::<bool>()), 0..20),
        choices in vec(any::<bool>(), 1..40),
        spin in any::<bool>(),
        read_ahead in any::<bool>(),
    ) {
        let (mut raw, passer, conn) = fed();
        conn.set_max_message_size(1 << 12);
        conn.set_spin(spin);
        conn.set_read_ahead(read_ahead);
        let total: usize = chunks.iter().map(|(c, p)| c.len() + usize::from(*p)).sum();
        let writer = thread::spawn(move || {
            let file = std::fs::File::open("/dev/null").unwrap();
            for (c, pass) in &chunks {
                if raw.write_all(c).is_err() || (*pass && passer.send_fds(&[file.as_fd()]).is_err()) {
                    return;
                }
            }
        });
        let mut buf = Vec::new();
        // Every successful receive takes at least one byte: this many reach the end.
        for i in 0..=total {
            let ok = if choices[i % choices.len()] {
                conn.recv_fds(2).map(|f| f.len()).is_ok()
            } else {
                conn.recv_bytes_into(&mut buf).map(|n| n <= 1 << 12).unwrap_or(false)
            };
            if !ok {
                break;
            }
        }
        // The stream has ended or failed: every further receive is an error.
        prop_assert!(conn.recv_bytes().is_err());
        drop(conn);
        writer.join().unwrap();
    }

    #[test]
    fn shared_memory_messages_and_descriptors_arrive_in_order(
        items in vec((any::<bool>(), vec(any::<u8>(), 0..3000)), 1..20),
        spin in any::<bool>(),
    ) {
        let (a, b) = PipeBuilder::new().shared_memory(true).build().unwrap();
        b.set_spin(spin);
        let file = tempfile::tempfile().unwrap();
        for (fds, bytes) in &items {
            if *fds {
                a.send_fds(&[file.as_fd()]).unwrap();
            } else {
                a.send_bytes(bytes).unwrap();
            }
        }
        drop(a);
        let mut buf = Vec::new();
        for (fds, bytes) in &items {
            if *fds {
                prop_assert_eq!(b.recv_fds(4).unwrap().len(), 1);
            } else {
                prop_assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), bytes.len());
                prop_assert_eq!(&buf, bytes);
            }
        }
        prop_assert!(b.recv_bytes().unwrap_err().is_closed());
    }

    #[test]
    fn shared_memory_arbitrary_records_end_in_messages_or_errors(
        ops in vec((0u8..4, vec(any::<u8>(), 0..40)), 0..30),
        reads in vec(0u8..4, 0..40),
    ) {
        const MAX: u64 = 32;
        let (conn, peer) = PipeBuilder::new().shared_memory(true).build().unwrap();
        conn.set_max_message_size(MAX);
        let ring: ShmQueue<Vec<u8>> =
            ShmQueue::open(&conn.__lane_ring_names().1.unwrap()).unwrap();
        let file = tempfile::tempfile().unwrap();
        let raw = Connection::from_fd(peer.as_fd().try_clone_to_owned().unwrap()).unwrap();
        for (op, bytes) in &ops {
            match op {
                0 => ring.try_put_bytes(bytes).unwrap(),
                1 => peer.send_bytes(bytes).unwrap(),
                2 => peer.send_fds(&[file.as_fd()]).unwrap(),
                _ => raw.send_bytes(bytes).unwrap(), // stray bytes on the socket
            }
        }
        drop((peer, raw));
        let mut buf = Vec::new();
        for how in reads {
            let r = match how {
                0 => conn.recv_bytes_into(&mut buf).map(|n| {
                    assert!(n as u64 <= MAX && n == buf.len());
                }),
                1 => conn.recv_fds(4).map(|f| assert!(!f.is_empty() && f.len() <= 4)),
                2 => conn.recv::<Vec<u8>>().map(|_| ()),
                _ => conn.poll(Some(std::time::Duration::ZERO)).map(|_| ()).map_err(Into::into),
            };
            if matches!(r, Err(ref e) if e.is_closed()) {
                break;
            }
        }
    }
}
