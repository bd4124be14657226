//! Listener and Connector over Unix paths and TCP: both handshake forms, wrong keys, timeouts,
//! garbage instead of a handshake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use conveyor_pipe::{
    AuthFailure, ChallengeForm, ConnectError, Connection, Connector, Listener, ListenerBuilder,
};

const WAIT: Duration = Duration::from_secs(30);

fn exchange(
    listener: Listener,
    client: Connector,
) -> (
    Result<Connection, ConnectError>,
    Result<Connection, ConnectError>,
) {
    let address = listener.address().clone();
    let t = thread::spawn(move || client.connect(&address));
    let server = listener.accept();
    (server, t.join().unwrap())
}

fn echo_once(server: &Connection, client: &Connection) {
    client.send_bytes(b"ping").unwrap();
    let m = server.recv_bytes().unwrap();
    server.send_bytes(&m).unwrap();
    assert_eq!(client.recv_bytes().unwrap(), b"ping");
}

#[test]
fn private_unix_socket_is_0600_and_removed_on_drop() {
    let listener = Listener::bind_private(Some(b"k")).unwrap();
    let conveyor_pipe::Address::Unix(path) = listener.address().clone() else {
        panic!("not a unix address")
    };
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir = path.parent().unwrap().to_path_buf();
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    drop(listener);
    assert!(!path.exists());
    assert!(!dir.exists());
}

#[test]
fn given_unix_path_works_and_is_removed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let address = conveyor_pipe::Address::Unix(dir.path().join("s"));
    let listener = Listener::bind(&address, Some(b"key")).unwrap();
    let (s, c) = exchange(listener, Connector::new().authkey(b"key"));
    echo_once(&s.unwrap(), &c.unwrap());
    assert!(!dir.path().join("s").exists());
}

#[test]
fn tcp_with_authkey_and_a_chosen_port() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), Some(b"key")).unwrap();
    let conveyor_pipe::Address::Tcp(a) = listener.address() else {
        panic!("not tcp")
    };
    assert!(!a.ends_with(":0"), "{a}");
    let (s, c) = exchange(listener, Connector::new().authkey(b"key"));
    let (s, c) = (s.unwrap(), c.unwrap());
    echo_once(&s, &c);
    // 1 MiB both ways over TCP.
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let big2 = big.clone();
    let t = thread::spawn(move || {
        c.send_bytes(&big2).unwrap();
        c.recv_bytes().unwrap()
    });
    let m = s.recv_bytes().unwrap();
    s.send_bytes(&m).unwrap();
    assert_eq!(t.join().unwrap(), big);
}

#[test]
fn no_authkey_on_either_side() {
    let listener = Listener::bind_private(None).unwrap();
    let (s, c) = exchange(listener, Connector::new());
    echo_once(&s.unwrap(), &c.unwrap());
}

#[test]
fn every_combination_of_challenge_forms() {
    for lf in [ChallengeForm::Sha256, ChallengeForm::LegacyMd5] {
        for cf in [ChallengeForm::Sha256, ChallengeForm::LegacyMd5] {
            for strict in [false, true] {
                let listener = ListenerBuilder::default()
                    .authkey(b"key")
                    .challenge_form(lf)
                    .accept_md5_answers(!strict)
                    .bind_private()
                    .unwrap();
                let client = Connector::new()
                    .authkey(b"key")
                    .challenge_form(cf)
                    .accept_md5_answers(!strict);
                let (s, c) = exchange(listener, client);
                // Our own client answers a {sha256} challenge with sha256, so strict mode
                // works between two conveyor ends whatever the forms.
                echo_once(&s.unwrap(), &c.unwrap());
            }
        }
    }
}

#[test]
fn wrong_key_fails_on_both_sides_and_no_data_passes() {
    for form in [ChallengeForm::Sha256, ChallengeForm::LegacyMd5] {
        let listener = Listener::builder()
            .authkey(b"right")
            .challenge_form(form)
            .bind_private()
            .unwrap();
        let (s, c) = exchange(listener, Connector::new().authkey(b"wrong"));
        match s {
            Err(ConnectError::Authentication(e)) => {
                assert_eq!(e.failure(), AuthFailure::WrongDigest, "{e}")
            }
            other => panic!("listener: expected an authentication error, got {other:?}"),
        }
        match c {
            Err(ConnectError::Authentication(e)) => {
                assert_eq!(e.failure(), AuthFailure::Rejected, "{e}")
            }
            other => panic!("client: expected an authentication error, got {other:?}"),
        }
    }
}

/// The listener's handshake timeout in the tests where a silent or dripping client must run
/// into it and the next, well-behaved client must then finish its handshake within it: long
/// enough for that client's thread to be scheduled twice on a loaded 2-core machine (300 ms
/// was not), short enough to keep the tests quick.
const SERIAL_HANDSHAKE: Duration = Duration::from_secs(5);

/// A well-behaved client that waits for the listener to finish with the silent or dripping
/// client before it: its own handshake limit counts from its connect, so it must outlast
/// [`SERIAL_HANDSHAKE`] with room to spare.
fn patient_client() -> Connector {
    Connector::new()
        .authkey(b"key")
        .handshake_timeout(Some(WAIT))
}

#[test]
fn silent_client_times_out_and_the_next_client_is_served() {
    let listener = Listener::builder()
        .authkey(b"key")
        .handshake_timeout(Some(SERIAL_HANDSHAKE))
        .bind_private()
        .unwrap();
    let address = listener.address().clone();
    let conveyor_pipe::Address::Unix(path) = address.clone() else {
        unreachable!()
    };
    let silent = UnixStream::connect(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    let good = thread::spawn(move || {
        let r = patient_client().connect(&address);
        tx.send(()).unwrap();
        r
    });
    let start = Instant::now();
    let first = listener.accept();
    assert!(matches!(first, Err(ConnectError::Timeout(_))), "{first:?}");
    assert!(start.elapsed() < WAIT);
    let second = listener.accept().unwrap();
    rx.recv_timeout(WAIT).unwrap();
    echo_once(&second, &good.join().unwrap().unwrap());
    drop(silent);
}

#[test]
fn pending_handshakes_on_threads_do_not_block_each_other() {
    let listener = Listener::builder()
        .authkey(b"key")
        .handshake_timeout(None) // a silent client would hang its own handshake forever
        .bind_private()
        .unwrap();
    let address = listener.address().clone();
    let conveyor_pipe::Address::Unix(path) = address.clone() else {
        unreachable!()
    };
    let silent = UnixStream::connect(&path).unwrap();
    let pending = listener.accept_pending().unwrap();
    let stuck = thread::spawn(move || pending.authenticate());
    let good = thread::spawn(move || Connector::new().authkey(b"key").connect(&address));
    let s = listener.accept_pending().unwrap().authenticate().unwrap();
    echo_once(&s, &good.join().unwrap().unwrap());
    // Hanging up the silent client ends its handshake with an error.
    drop(silent);
    assert!(matches!(stuck.join().unwrap(), Err(ConnectError::Io(_))));
}

#[test]
fn garbage_instead_of_a_handshake_is_refused() {
    let listener = Listener::builder()
        .authkey(b"key")
        .handshake_timeout(Some(WAIT))
        .bind(&"127.0.0.1:0".parse().unwrap())
        .unwrap();
    let conveyor_pipe::Address::Tcp(a) = listener.address().clone() else {
        unreachable!()
    };
    // An HTTP request: its first four bytes read as a length of over a gigabyte.
    let mut http = TcpStream::connect(&a).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let e = listener.accept().unwrap_err();
    assert!(e.is_authentication(), "{e}");
    // A well-framed message that is not a digest.
    let mut framed = TcpStream::connect(&a).unwrap();
    let t = thread::spawn(move || {
        let mut hdr = [0u8; 4];
        framed.read_exact(&mut hdr).unwrap(); // the challenge's header
        let mut challenge = vec![0u8; u32::from_be_bytes(hdr) as usize];
        framed.read_exact(&mut challenge).unwrap();
        framed
            .write_all(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
            .unwrap();
        let mut verdict = [0u8; 4 + 9];
        framed.read_exact(&mut verdict).unwrap();
        verdict
    });
    let e = listener.accept().unwrap_err();
    assert!(e.is_authentication(), "{e}");
    assert_eq!(&t.join().unwrap()[4..], b"#FAILURE#");
    // A peer that hangs up half way through a frame.
    let mut half = TcpStream::connect(&a).unwrap();
    half.write_all(&[0, 0]).unwrap();
    drop(half);
    assert!(matches!(listener.accept(), Err(ConnectError::Io(_))));
    drop(http);
}

#[test]
fn client_refuses_a_listener_that_does_not_challenge() {
    let listener = Listener::bind_private(None).unwrap();
    let address = listener.address().clone();
    let t = thread::spawn(move || {
        let c = listener.accept().unwrap();
        c.send_bytes(b"hello, I am not a challenge").unwrap();
        c
    });
    let e = Connector::new()
        .authkey(b"key")
        .connect(&address)
        .unwrap_err();
    match e {
        ConnectError::Authentication(a) => assert_eq!(a.failure(), AuthFailure::Protocol),
        other => panic!("{other:?}"),
    }
    drop(t.join().unwrap());
}

#[test]
fn connecting_to_nothing_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Connector::new()
        .connect(&conveyor_pipe::Address::Unix(dir.path().join("none")))
        .unwrap_err();
    assert!(matches!(e, ConnectError::Io(_)));
}

#[test]
fn data_sent_right_after_the_handshake_stays_in_the_socket() {
    // A server may take the descriptor of an authenticated connection (into_fd) and read it
    // itself: the client's first message, sent right behind its #WELCOME#, must not have been
    // read ahead by the handshake.
    for _ in 0..20 {
        let listener = Listener::bind_private(Some(b"key")).unwrap();
        let address = listener.address().clone();
        let t = thread::spawn(move || {
            let c = Connector::new().authkey(b"key").connect(&address).unwrap();
            c.send_bytes(b"first").unwrap();
            c
        });
        let conn = listener.accept().unwrap();
        let mut raw = UnixStream::from(conn.into_fd());
        // Fail rather than hang if the bytes were taken by the handshake.
        raw.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = [0u8; 9];
        raw.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\0\0\0\x05first");
        drop(t.join().unwrap());
    }
}

#[test]
fn one_deadline_bounds_a_dripping_handshake_and_the_next_client_is_served() {
    // A client that answers the challenge one byte every 100 ms: each read gets a byte well
    // within the timeout, so only a deadline for the whole handshake stops it (a per-read
    // timeout let such a client hold a serial accept loop for 20 s).
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let timeout = SERIAL_HANDSHAKE;
    let listener = Listener::builder()
        .authkey(b"key")
        .handshake_timeout(Some(timeout))
        .bind_private()
        .unwrap();
    let address = listener.address().clone();
    let conveyor_pipe::Address::Unix(path) = address.clone() else {
        unreachable!()
    };
    let mut wire = 200i32.to_be_bytes().to_vec();
    wire.extend_from_slice(&[b'x'; 200]);
    let total = wire.len();
    let stop = Arc::new(AtomicBool::new(false));
    let (connected_tx, connected_rx) = mpsc::channel();
    let dripper = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut s = UnixStream::connect(&path).unwrap();
            connected_tx.send(()).unwrap();
            for (i, b) in wire.iter().enumerate() {
                if stop.load(Ordering::Acquire) || s.write_all(&[*b]).is_err() {
                    return i;
                }
                // The adversary's pace, not a wait for another thread.
                thread::sleep(Duration::from_millis(100));
            }
            wire.len()
        })
    };
    // The good client connects after the dripper, so the serial loop takes it second.
    connected_rx.recv_timeout(WAIT).unwrap();
    let good = thread::spawn(move || patient_client().connect(&address));

    let start = Instant::now();
    let first = listener.accept();
    let took = start.elapsed();
    assert!(matches!(first, Err(ConnectError::Timeout(_))), "{first:?}");
    assert!(
        took >= timeout,
        "timed out after {took:?}, before the deadline"
    );
    let second = listener.accept().unwrap();
    echo_once(&second, &good.join().unwrap().unwrap());
    stop.store(true, Ordering::Release);
    let dripped = dripper.join().unwrap();
    assert!(
        dripped < total,
        "the dripper sent all {total} bytes before the handshake gave up"
    );
}
