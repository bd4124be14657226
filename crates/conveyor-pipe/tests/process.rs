//! Connections across real processes: an end travels into a child started by
//! conveyor-process; a child killed in the middle of a message is an error, not a hang.

use std::time::Duration;

use conveyor_core::Channel;
use conveyor_pipe::{pipe, pipe_oneway, Connection};
use conveyor_process::{init_test, ExitStatus, Process};

const WAIT: Duration = Duration::from_secs(60);

fn join(child: &conveyor_process::Child) -> ExitStatus {
    child
        .join_timeout(WAIT)
        .unwrap()
        .expect("the child did not finish in time")
}

/// Doubles every number it receives until the parent closes, then says how many it saw.
fn doubler(conn: Connection) -> i32 {
    let mut n = 0;
    loop {
        match Channel::<u64>::get(&conn) {
            Ok(v) => {
                conn.put(v * 2).unwrap();
                n += 1;
            }
            Err(e) if e.is_closed() => break,
            Err(e) => panic!("child: {e}"),
        }
    }
    conn.send(&format!("saw {n}")).unwrap();
    0
}

#[test]
fn a_connection_travels_into_a_child() {
    init_test!(doubler);
    let (mine, theirs) = pipe().unwrap();
    let child = Process::new("doubler", theirs).start().unwrap();
    for i in 0..100u64 {
        mine.put(i).unwrap();
        assert_eq!(Channel::<u64>::get_timeout(&mine, WAIT).unwrap(), i * 2);
    }
    Channel::<u64>::close(&mine).unwrap();
    assert_eq!(mine.recv::<String>().unwrap(), "saw 100");
    assert_eq!(join(&child), ExitStatus::Exited(0));
    assert!(mine.recv_bytes().unwrap_err().is_closed());
}

/// Sends `count` messages of `size` bytes on the writing end of a one-way pipe.
fn writer((conn, count, size): (Connection, u32, usize)) {
    for i in 0..count {
        conn.send_bytes(&vec![i as u8; size]).unwrap();
    }
}

#[test]
fn oneway_writer_in_a_child() {
    init_test!(writer);
    let (reader, w) = pipe_oneway().unwrap();
    let child = Process::new("writer", (w, 20u32, 100_000usize))
        .start()
        .unwrap();
    for i in 0..20u32 {
        let m = reader.recv_bytes().unwrap();
        assert_eq!(m.len(), 100_000);
        assert!(m.iter().all(|&b| b == i as u8));
    }
    assert!(join(&child).success());
    // The child's copy is gone and so is ours (moved into the arguments): end of file.
    assert!(reader.recv_bytes().unwrap_err().is_closed());
}

/// Starts sending one message far larger than a socket buffer; the parent kills it meanwhile.
fn big_sender(conn: Connection) {
    conn.set_max_message_size(u64::MAX);
    let _ = conn.send_bytes(&vec![7u8; 64 << 20]);
}

#[test]
fn a_peer_killed_mid_message_is_an_error_not_a_hang() {
    init_test!(big_sender);
    let (mine, theirs) = pipe().unwrap();
    mine.set_max_message_size(u64::MAX);
    let child = Process::new("big_sender", theirs).start().unwrap();
    // The header and the first part of the payload have arrived; the rest cannot, since
    // nothing reads it yet and the socket buffer is far smaller than the message.
    assert!(mine.poll(Some(WAIT)).unwrap());
    child.kill().unwrap();
    assert_eq!(join(&child).signal(), Some(libc::SIGKILL));
    let e = mine.recv_bytes().unwrap_err();
    match &e {
        conveyor_core::GetError::Io(io) => {
            assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof, "{e}")
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // And the connection stays refused afterwards.
    assert!(mine.recv_bytes().unwrap_err().is_io());
}

/// Sends two whole messages and exits without closing explicitly.
fn sends_two_and_exits(conn: Connection) {
    conn.send(&1u8).unwrap();
    conn.send(&2u8).unwrap();
}

#[test]
fn a_child_that_exits_after_sending_is_drained_then_closed() {
    init_test!(sends_two_and_exits);
    let (mine, theirs) = pipe().unwrap();
    let child = Process::new("sends_two_and_exits", theirs).start().unwrap();
    assert!(join(&child).success());
    assert_eq!(mine.recv::<u8>().unwrap(), 1);
    assert_eq!(mine.recv::<u8>().unwrap(), 2);
    assert!(mine.recv::<u8>().unwrap_err().is_closed());
}

#[test]
fn encoding_a_connection_outside_a_child_launch_fails() {
    // A descriptor number means nothing in another process: outside a launch it is refused
    // (postcard reports it as a serialization error).
    let (a, _b) = pipe().unwrap();
    let mut out = Vec::new();
    assert!(conveyor_core::Codec::encode(&conveyor_core::Postcard, &a, &mut out).is_err());
}

/// Receives u32s until the peer closes and exits with their sum (small: an exit code).
fn summer(conn: Connection) -> i32 {
    let mut sum = 0;
    while let Ok(v) = conn.recv::<u32>() {
        sum += v as i32;
    }
    sum
}

#[test]
fn messages_read_ahead_travel_with_the_connection() {
    init_test!(summer);
    let (a, b) = pipe().unwrap();
    for v in [1u32, 2, 4] {
        a.send(&v).unwrap();
    }
    // The first receive reads all three at once; the other two are in b's buffer, not in
    // the socket, and must reach the child with it.
    assert_eq!(b.recv::<u32>().unwrap(), 1);
    let child = Process::new("summer", b).start().unwrap();
    a.send(&8u32).unwrap();
    a.close();
    // 2 + 4 from the buffer, 8 from the socket (an exit code is 8 bits).
    assert_eq!(join(&child), ExitStatus::Exited(14));
}

fn never_runs(_: ()) {
    unreachable!("a child whose main bound a socket before init must not run its entry point");
}

#[test]
fn a_listener_bound_before_init_is_refused_and_removed_in_the_child() {
    // In the child the test runs from the top again, binding a socket of its own before it
    // reaches `init_test!`: a late init, which would leave that socket file behind.
    let listener = conveyor_pipe::Listener::bind_private(None).unwrap();
    init_test!(never_runs);
    let err = Process::new("never_runs", ())
        .stdout(std::process::Stdio::null()) // the child's libtest says its test failed
        .start()
        .unwrap_err();
    let conveyor_process::Error::InitTooLate { held, .. } = &err else {
        panic!("expected InitTooLate, got {err:?}");
    };
    assert_eq!(held.len(), 1, "{held:?}");
    let path = held[0]
        .strip_prefix("Unix socket ")
        .unwrap_or_else(|| panic!("not a socket: {}", held[0]));
    let ours = match listener.address() {
        conveyor_pipe::Address::Unix(p) => p.clone(),
        other => panic!("a private listener on {other:?}"),
    };
    assert_ne!(std::path::Path::new(path), ours);
    // start returned after the child exited: its unwinding removed the socket
    assert!(!std::path::Path::new(path).exists(), "{path} leaked");
    assert!(ours.exists());
}
