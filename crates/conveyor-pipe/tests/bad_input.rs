//! A misbehaving peer, written byte by byte on a raw socket: every case is an error, never a
//! hang, a panic or a huge allocation.

use std::io::Write;
use std::os::unix::net::UnixStream;

use conveyor_core::GetError;
use conveyor_pipe::Connection;

/// A connection whose peer is a raw socket the test writes to.
fn raw_peer() -> (UnixStream, Connection) {
    let (raw, theirs) = UnixStream::pair().unwrap();
    (raw, Connection::from_fd(theirs.into()).unwrap())
}

fn assert_unexpected_eof(e: GetError) {
    match e {
        GetError::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof, "{io}"),
        other => panic!("expected UnexpectedEof, got {other:?}"),
    }
}

#[test]
fn eof_at_a_frame_boundary_is_closed() {
    let (mut raw, conn) = raw_peer();
    raw.write_all(&[0, 0, 0, 1, 9]).unwrap();
    drop(raw);
    assert_eq!(conn.recv_bytes().unwrap(), [9]);
    assert!(conn.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn truncated_header_is_unexpected_eof() {
    let (mut raw, conn) = raw_peer();
    raw.write_all(&[0, 0]).unwrap();
    drop(raw);
    assert_unexpected_eof(conn.recv_bytes().unwrap_err());
}

#[test]
fn truncated_long_header_is_unexpected_eof() {
    let (mut raw, conn) = raw_peer();
    raw.write_all(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0]).unwrap();
    drop(raw);
    assert_unexpected_eof(conn.recv_bytes().unwrap_err());
}

#[test]
fn truncated_payload_is_unexpected_eof_and_the_connection_stays_refused() {
    let (mut raw, conn) = raw_peer();
    raw.write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
    drop(raw);
    assert_unexpected_eof(conn.recv_bytes().unwrap_err());
    let again = conn.recv_bytes().unwrap_err();
    assert!(
        again.is_io() && again.to_string().contains("unusable"),
        "{again}"
    );
}

#[test]
fn oversize_length_is_refused_before_the_payload_arrives() {
    let (mut raw, conn) = raw_peer();
    // Announce 1 GiB and send none of it: the refusal must not wait for (or allocate) it.
    raw.write_all(&(1i32 << 30).to_be_bytes()).unwrap();
    match conn.recv_bytes() {
        Err(GetError::TooLarge { size, max }) => {
            assert_eq!(size, 1 << 30);
            assert_eq!(max, conveyor_pipe::DEFAULT_MAX_MESSAGE_SIZE);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(conn.recv_bytes().unwrap_err().is_io());
    drop(raw);
}

#[test]
fn minus_one_with_a_huge_eight_byte_size_is_refused() {
    let (mut raw, conn) = raw_peer();
    conn.set_max_message_size(u64::MAX - 1);
    let mut h = (-1i32).to_be_bytes().to_vec();
    h.extend_from_slice(&u64::MAX.to_be_bytes());
    raw.write_all(&h).unwrap();
    match conn.recv_bytes() {
        Err(GetError::TooLarge { size, .. }) => assert_eq!(size, u64::MAX),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn minus_one_with_a_size_beyond_memory_fails_cleanly_even_without_a_limit() {
    // With the limit lifted entirely, a size no allocator can satisfy must still not abort:
    // the peer sends 2^62 as the size.
    let (mut raw, conn) = raw_peer();
    conn.set_max_message_size(u64::MAX);
    let mut h = (-1i32).to_be_bytes().to_vec();
    h.extend_from_slice(&(1u64 << 62).to_be_bytes());
    raw.write_all(&h).unwrap();
    let e = conn.recv_bytes().unwrap_err();
    assert!(e.is_too_large() || e.is_io(), "{e}");
}

#[test]
fn negative_length_is_malformed() {
    let (mut raw, conn) = raw_peer();
    raw.write_all(&(-5i32).to_be_bytes()).unwrap();
    let e = conn.recv_bytes().unwrap_err();
    match &e {
        GetError::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::InvalidData),
        other => panic!("expected InvalidData, got {other:?}"),
    }
    assert!(conn
        .recv_bytes()
        .unwrap_err()
        .to_string()
        .contains("unusable"));
}

#[test]
fn peer_closing_mid_frame_while_we_wait_is_an_error_not_a_hang() {
    let (mut raw, conn) = raw_peer();
    let t = std::thread::spawn(move || conn.recv_bytes());
    raw.write_all(&[0, 0, 1, 0]).unwrap(); // 256 bytes announced
    raw.write_all(&[1; 100]).unwrap();
    drop(raw); // ... and only 100 sent
    assert_unexpected_eof(t.join().unwrap().unwrap_err());
}

#[test]
fn garbage_that_decodes_badly_is_a_codec_error() {
    let (mut raw, conn) = raw_peer();
    raw.write_all(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF]).unwrap();
    assert!(conn.recv::<String>().unwrap_err().is_codec());
}

#[test]
fn a_read_ahead_header_announcing_u64_max_is_refused() {
    // One small message, then a long header announcing u64::MAX bytes, in one write: the
    // first receive reads both, and the second looks at the header already read ahead (found
    // by fuzzing: the check whether a whole message was read ahead overflowed).
    let (mut raw, conn) = raw_peer();
    let mut bytes = vec![0, 0, 0, 1, 9];
    bytes.extend_from_slice(&[0xff; 12]);
    raw.write_all(&bytes).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), [9]);
    assert!(matches!(
        conn.recv_bytes().unwrap_err(),
        GetError::TooLarge { .. }
    ));
}
