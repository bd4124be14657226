//! Pipes whose messages travel through shared memory (`PipeBuilder::shared_memory`): every
//! thing a connection does on a socket, done over the lane, within one process and across
//! real child processes (conveyor-process), a killed peer included.

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use conveyor_core::{Channel, GetError};
use conveyor_pipe::{pipe, wait, Connection, PipeBuilder, SendError};
use conveyor_process::{init_test, ExitStatus, Process};

const WAIT: Duration = Duration::from_secs(60);

fn shm_pipe() -> (Connection, Connection) {
    PipeBuilder::new().shared_memory(true).build().unwrap()
}

#[test]
fn messages_go_both_ways_as_bytes_values_and_into_a_reused_buffer() {
    let (a, b) = shm_pipe();
    assert!(a.is_shared_memory() && b.is_shared_memory());
    a.send_bytes(b"one").unwrap();
    a.send(&("two", 2u32)).unwrap();
    a.send_bytes_many(&[&b"three"[..], b"", b"five"]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"one");
    assert_eq!(b.recv::<(String, u32)>().unwrap(), ("two".to_string(), 2));
    let mut buf = Vec::with_capacity(64);
    let ptr = buf.as_ptr();
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 5);
    assert_eq!(buf, b"three");
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 0);
    assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 4);
    assert_eq!(buf, b"five");
    assert_eq!(buf.as_ptr(), ptr, "the buffer was reused");
    b.send(&42u64).unwrap();
    assert_eq!(a.recv::<u64>().unwrap(), 42);
    // Buffered sends change nothing: a message in the ring is delivered already.
    a.set_buffered_sends(true);
    a.send_bytes(b"at once").unwrap();
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), b"at once");
}

#[test]
fn a_oneway_reader_drains_then_sees_closed_when_the_writer_goes() {
    let (r, w) = PipeBuilder::new()
        .shared_memory(true)
        .duplex(false)
        .build()
        .unwrap();
    assert!(r.readable() && !r.writable() && w.writable() && !w.readable());
    assert!(r.send_bytes(b"x").is_err());
    assert!(w.recv_bytes().is_err());
    for i in 0..10u32 {
        w.send(&i).unwrap();
    }
    drop(w);
    for i in 0..10u32 {
        assert_eq!(r.recv::<u32>().unwrap(), i);
    }
    assert!(r.recv_bytes().unwrap_err().is_closed());
    assert!(r.recv_bytes().unwrap_err().is_closed(), "and stays closed");
}

#[test]
fn close_lets_the_peer_drain_then_closed_and_later_sends_fail() {
    let (a, b) = shm_pipe();
    a.send_bytes(b"before").unwrap();
    a.close();
    assert!(matches!(a.send_bytes(b"after"), Err(SendError::Closed)));
    assert!(Channel::<u8>::put(&a, 1).unwrap_err().is_closed());
    assert_eq!(b.recv_bytes().unwrap(), b"before");
    assert!(
        b.poll(Some(Duration::ZERO)).unwrap(),
        "end of file counts for poll"
    );
    assert!(b.recv_bytes().unwrap_err().is_closed());
    // The other direction still works.
    b.send_bytes(b"back").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"back");
}

#[test]
fn poll_and_timeouts() {
    let (a, b) = shm_pipe();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    let t0 = Instant::now();
    assert!(!b.poll(Some(Duration::from_millis(30))).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert!(matches!(Channel::<u8>::try_get(&b), Err(GetError::Empty)));
    let t0 = Instant::now();
    assert!(Channel::<u8>::get_timeout(&b, Duration::from_millis(30))
        .unwrap_err()
        .is_timeout());
    assert!(t0.elapsed() >= Duration::from_millis(30));
    a.put(7u8).unwrap();
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(Channel::<u8>::get_timeout(&b, WAIT).unwrap(), 7);
}

#[test]
fn a_full_ring_refuses_try_put_and_times_out_put_timeout() {
    let (a, b) = PipeBuilder::new()
        .shared_memory(true)
        .ring_bytes(4096)
        .build()
        .unwrap();
    let mut n = 0u32;
    loop {
        match Channel::<u32>::try_put(&a, n) {
            Ok(()) => n += 1,
            Err(e) => {
                assert!(e.is_full(), "{e:?}");
                assert_eq!(e.into_inner(), n);
                break;
            }
        }
        assert!(n < 100_000, "a 4 KiB ring never filled");
    }
    let t0 = Instant::now();
    let e = Channel::<u32>::put_timeout(&a, n, Duration::from_millis(30)).unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(t0.elapsed() >= Duration::from_millis(30));
    for i in 0..n {
        assert_eq!(b.recv::<u32>().unwrap(), i);
    }
    Channel::<u32>::try_put(&a, n).unwrap();
    assert_eq!(b.recv::<u32>().unwrap(), n);
}

#[test]
fn a_receiver_asleep_wakes_for_a_message() {
    let (a, b) = shm_pipe();
    b.set_spin(false);
    let start = Arc::new(Barrier::new(2));
    let receiver = {
        let start = start.clone();
        std::thread::spawn(move || {
            start.wait();
            let got: Vec<u32> = (0..100).map(|_| b.recv::<u32>().unwrap()).collect();
            (b, got)
        })
    };
    start.wait();
    for i in 0..100u32 {
        a.send(&i).unwrap();
    }
    let (_b, got) = receiver.join().unwrap();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn wait_mixes_shared_memory_and_socket_connections() {
    let (a_shm, b_shm) = shm_pipe();
    let (a_sock, b_sock) = pipe().unwrap();
    assert!(wait(&[&b_shm, &b_sock], Some(Duration::ZERO))
        .unwrap()
        .is_empty());
    // A message that comes while the wait sleeps wakes it (the doorbell).
    let start = Arc::new(Barrier::new(2));
    let sender = {
        let start = start.clone();
        std::thread::spawn(move || {
            start.wait();
            a_shm.send_bytes(b"shm").unwrap();
            a_shm
        })
    };
    start.wait();
    let ready = wait(&[&b_shm, &b_sock], Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 1);
    assert!(std::ptr::eq(ready[0], &b_shm));
    let a_shm = sender.join().unwrap();
    assert_eq!(b_shm.recv_bytes().unwrap(), b"shm");
    // A doorbell left from that wait does not make the connection ready again.
    assert!(wait(&[&b_shm, &b_sock], Some(Duration::from_millis(20)))
        .unwrap()
        .is_empty());
    a_sock.send_bytes(b"sock").unwrap();
    a_shm.send_bytes(b"shm again").unwrap();
    let ready = wait(&[&b_shm, &b_sock], Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 2);
    // End of file is ready too.
    assert_eq!(b_shm.recv_bytes().unwrap(), b"shm again");
    drop(a_shm);
    let ready = wait(&[&b_shm], Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 1);
    assert!(b_shm.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn descriptors_come_in_their_place_between_messages() {
    let (a, b) = shm_pipe();
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(b"passed").unwrap();
    a.send_bytes(b"one").unwrap();
    a.send_fds(&[file.as_fd(), file.as_fd()]).unwrap();
    a.send_bytes(b"two").unwrap();
    a.send_fds(&[file.as_fd()]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"one");
    // The descriptors are next: a receive of a message says so and loses nothing.
    let e = b.recv_bytes().unwrap_err();
    assert!(format!("{e}").contains("recv_fds"), "{e}");
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    let fds = b.recv_fds(4).unwrap();
    assert_eq!(fds.len(), 2);
    let mut same = std::fs::File::from(fds.into_iter().next().unwrap());
    same.rewind().unwrap();
    let mut text = String::new();
    same.read_to_string(&mut text).unwrap();
    assert_eq!(text, "passed");
    assert_eq!(b.recv_bytes().unwrap(), b"two");
    assert_eq!(b.recv_fds(4).unwrap().len(), 1);
    // Descriptors where a message comes: an error, as on a socket.
    a.send_bytes(b"not descriptors").unwrap();
    assert!(b.recv_fds(4).is_err());
}

#[test]
fn more_descriptors_than_asked_for_is_an_error() {
    let (a, b) = shm_pipe();
    let file = tempfile::tempfile().unwrap();
    a.send_fds(&[file.as_fd(), file.as_fd(), file.as_fd()])
        .unwrap();
    let e = b.recv_fds(2).unwrap_err();
    assert!(format!("{e}").contains("more than"), "{e}");
}

#[test]
fn a_message_over_the_maximum_is_refused_on_both_sides() {
    let (a, b) = shm_pipe();
    a.set_max_message_size(8);
    assert!(matches!(
        a.send_bytes(&[0; 9]),
        Err(SendError::TooLarge { size: 9, max: 8 })
    ));
    a.set_max_message_size(1 << 20);
    b.set_max_message_size(8);
    a.send_bytes(&[1; 9]).unwrap();
    a.send(&[2u8; 16]).unwrap();
    a.send_bytes(&[3; 8]).unwrap();
    assert!(matches!(
        b.recv_bytes(),
        Err(GetError::TooLarge { size: 9, max: 8 })
    ));
    assert!(matches!(
        b.recv::<[u8; 16]>(),
        Err(GetError::TooLarge { size: 16, max: 8 })
    ));
    // The ring's records keep their boundaries: the connection goes on.
    assert_eq!(b.recv_bytes().unwrap(), [3; 8]);
}

#[test]
fn large_messages_in_the_ring_and_out_of_line() {
    let (a, b) = PipeBuilder::new()
        .shared_memory(true)
        .ring_bytes(64 << 10)
        .build()
        .unwrap();
    let sizes = [20 << 10, 1 << 20, 3 << 20, 0, 100];
    let sender = std::thread::spawn(move || {
        for (i, &n) in sizes.iter().enumerate() {
            let m: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
            a.send_bytes(&m).unwrap();
        }
        a
    });
    let mut buf = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), n);
        assert!(buf.iter().enumerate().all(|(j, &x)| x == (i + j) as u8));
    }
    sender.join().unwrap();
}

#[test]
fn a_send_to_a_dropped_receiver_fails_closed() {
    let (a, b) = shm_pipe();
    let b2 = b.try_clone().unwrap();
    drop(b);
    a.send_bytes(b"the clone still receives").unwrap();
    assert_eq!(b2.recv_bytes().unwrap(), b"the clone still receives");
    drop(b2);
    assert!(matches!(a.send_bytes(b"nobody"), Err(SendError::Closed)));
    assert!(a.recv_bytes().unwrap_err().is_closed());
}

/// Doubles every number it receives until the parent closes, then says how many it saw.
fn doubler(conn: Connection) -> i32 {
    let mut n = 0;
    while let Ok(v) = Channel::<u64>::get(&conn) {
        conn.put(v * 2).unwrap();
        n += 1;
    }
    conn.send(&format!("saw {n}")).unwrap();
    0
}

#[test]
fn an_end_travels_into_a_child() {
    init_test!(doubler);
    let (mine, theirs) = shm_pipe();
    let child = Process::new("doubler", theirs).start().unwrap();
    for i in 0..1000u64 {
        mine.put(i).unwrap();
        assert_eq!(Channel::<u64>::get_timeout(&mine, WAIT).unwrap(), i * 2);
    }
    Channel::<u64>::close(&mine).unwrap();
    assert_eq!(mine.recv::<String>().unwrap(), "saw 1000");
    assert_eq!(
        child.join_timeout(WAIT).unwrap(),
        Some(ExitStatus::Exited(0))
    );
    assert!(mine.recv_bytes().unwrap_err().is_closed());
}

/// Says it is ready, then waits on `hold` (which never comes) until it is killed.
fn stuck((conn, hold): (Connection, Connection)) {
    conn.send_bytes(b"ready").unwrap();
    let _ = hold.recv_bytes();
}

#[test]
fn a_killed_peer_is_end_of_file_and_a_full_ring_to_it_fails_closed() {
    init_test!(stuck);
    let (mine, theirs) = PipeBuilder::new()
        .shared_memory(true)
        .ring_bytes(4096)
        .build()
        .unwrap();
    let (_hold, hold) = pipe().unwrap();
    let child = Process::new("stuck", (theirs, hold)).start().unwrap();
    assert_eq!(mine.recv_bytes().unwrap(), b"ready");
    child.kill().unwrap();
    child.join_timeout(WAIT).unwrap().expect("the child ended");
    // Its socket closed with it: a receive sees end of file.
    assert!(mine.recv_bytes().unwrap_err().is_closed());
    // Its handle count never went down, so sends fill the ring, then fail instead of waiting.
    let t0 = Instant::now();
    let mut sent = 0;
    loop {
        match mine.send_bytes(&[0; 64]) {
            Ok(()) => sent += 1,
            Err(e) => {
                assert!(matches!(e, SendError::Closed), "{e:?}");
                break;
            }
        }
        assert!(t0.elapsed() < WAIT, "sends to a dead peer never failed");
    }
    assert!(sent > 0);
}

#[test]
fn a_peer_that_marks_descriptors_and_dies_or_writes_garbage_gets_clear_errors() {
    use conveyor_shm::ShmQueue;
    let (conn, peer) = shm_pipe();
    let ring: ShmQueue<Vec<u8>> = ShmQueue::open(&conn.__lane_ring_names().1.unwrap()).unwrap();
    // A record with an unknown tag, then a marker whose descriptors never come.
    ring.put_bytes(&[5, 6, 7]).unwrap();
    ring.put_bytes(&[1]).unwrap();
    drop(peer);
    let e = conn.recv_bytes().unwrap_err();
    assert!(format!("{e}").contains("malformed record"), "{e}");
    let e = conn.recv_fds(4).unwrap_err();
    match e {
        GetError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
        other => panic!("expected an UnexpectedEof, got {other:?}"),
    }
}
