//! A connection that moves its messages from its Unix socket to a pair of OS pipes: through the
//! builders (`Connector::pipes`, `ListenerBuilder::pipes`) and the two calls under them
//! (`move_to_pipes`, `accept_pipes`), across threads and into a real child process; the
//! descriptors a peer passes are refused unless they are pipe ends of the right direction.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use conveyor_pipe::{
    pipe, pipe_oneway, wait, Address, ConnectError, Connection, Connector, Listener, PipeEnd,
    PipesError,
};
use conveyor_process::{init_test, ExitStatus, Process};

const WAIT: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

/// A listener and a connector that both ask for pipes, connected: (server end, client end).
fn piped_pair() -> (Connection, Connection) {
    let listener = Listener::builder()
        .authkey(b"key")
        .pipes(true)
        .bind_private()
        .unwrap();
    let address = listener.address().clone();
    let client = thread::spawn(move || {
        Connector::new()
            .authkey(b"key")
            .pipes(true)
            .connect(&address)
            .unwrap()
    });
    let server = listener.accept().unwrap();
    (server, client.join().unwrap())
}

/// Two ends of a socketpair, moved by hand: (accepting end, moving end).
fn moved_by_hand() -> (Connection, Connection) {
    let (mut a, mut b) = pipe().unwrap();
    let t = thread::spawn(move || {
        assert!(b.move_to_pipes().unwrap());
        b
    });
    assert!(a.accept_pipes().unwrap());
    (a, t.join().unwrap())
}

/// Small and 1 MiB messages both ways, as bytes and as values, buffered and not.
fn exchange(a: &Connection, b: &Connection) {
    let big: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..100u32 {
                a.send(&i).unwrap();
            }
            a.send_bytes(&big).unwrap();
            a.send_bytes(b"after the big one").unwrap();
        });
        for i in 0..100u32 {
            assert_eq!(b.recv::<u32>().unwrap(), i);
        }
        assert_eq!(b.recv_bytes().unwrap(), big);
        assert_eq!(b.recv_bytes().unwrap(), b"after the big one");
    });
    b.set_buffered_sends(true);
    thread::scope(|s| {
        s.spawn(|| {
            for word in ["one", "two", "three"] {
                b.send_bytes(word.as_bytes()).unwrap();
            }
            b.send_bytes(&big).unwrap();
            b.flush().unwrap();
        });
        let mut buf = Vec::new();
        for word in ["one", "two", "three"] {
            let n = a.recv_bytes_into(&mut buf).unwrap();
            assert_eq!(&buf[..n], word.as_bytes());
        }
        assert_eq!(a.recv_bytes_into(&mut buf).unwrap(), MIB);
        assert_eq!(buf, big);
    });
    b.set_buffered_sends(false);
}

#[test]
fn both_builders_asking_move_and_messages_cross_both_ways() {
    let (server, client) = piped_pair();
    assert!(server.uses_pipes());
    assert!(client.uses_pipes());
    exchange(&server, &client);
    exchange(&client, &server);
    // A request and its reply: the request, buffered, goes out with the receive that waits
    // for the reply.
    client.set_buffered_sends(true);
    thread::scope(|s| {
        s.spawn(|| {
            let got = server.recv::<String>().unwrap();
            server.send(&format!("{got} pong")).unwrap();
        });
        client.send(&"ping").unwrap();
        assert_eq!(client.recv::<String>().unwrap(), "ping pong");
    });
}

#[test]
fn a_close_is_drained_then_closed_and_a_drop_is_closed() {
    let (server, client) = piped_pair();
    assert!(!server.hung_up().unwrap());
    client.send_bytes(b"last words").unwrap();
    client.close();
    assert!(server.hung_up().unwrap(), "the peer closed its pipe");
    assert_eq!(server.recv_bytes().unwrap(), b"last words");
    assert!(server.recv_bytes().unwrap_err().is_closed());
    // The client still receives after its close.
    server.send_bytes(b"still here").unwrap();
    assert_eq!(client.recv_bytes().unwrap(), b"still here");
    // A receive blocked on the pipe when the peer goes ends as Closed, whichever comes first.
    let waiting = thread::spawn(move || client.recv_bytes());
    drop(server);
    assert!(waiting.join().unwrap().unwrap_err().is_closed());
}

#[test]
fn a_shutdown_of_the_socket_wakes_a_receive_on_the_pipe() {
    let (accepting, moving) = moved_by_hand();
    // What a server keeps to stop its connections: a duplicate of the socket.
    let socket = UnixStream::from(accepting.as_fd().try_clone_to_owned().unwrap());
    let waiting = thread::spawn(move || accepting.recv_bytes());
    socket.shutdown(std::net::Shutdown::Both).unwrap();
    assert!(waiting.join().unwrap().unwrap_err().is_closed());
    drop(moving);
}

#[test]
fn after_the_move_descriptors_poll_wait_and_clones_still_work() {
    let (a, b) = moved_by_hand();
    // Descriptors still pass over the socket.
    let (rd, wr) = pipe_oneway().unwrap();
    b.send_fds(&[rd.as_fd()]).unwrap();
    let fds = a.recv_fds(1).unwrap();
    let rd2 = Connection::from_fd(fds.into_iter().next().unwrap()).unwrap();
    wr.send_bytes(b"via a passed pipe").unwrap();
    assert_eq!(rd2.recv_bytes().unwrap(), b"via a passed pipe");
    // poll and wait look at the receiving pipe.
    assert!(!a.poll(Some(Duration::ZERO)).unwrap());
    b.send_bytes(b"x").unwrap();
    assert!(a.poll(Some(WAIT)).unwrap());
    let ready = wait(&[&a], Some(WAIT)).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!(a.recv_bytes().unwrap(), b"x");
    // A clone shares the pipes.
    let c = b.try_clone().unwrap();
    assert!(c.uses_pipes());
    c.send_bytes(b"from the clone").unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"from the clone");
    // The peer sees end of file once every copy of the sending pipe is closed.
    c.close();
    b.close();
    assert!(a.recv_bytes().unwrap_err().is_closed());
    // The limit still holds on the pipe.
    a.set_max_message_size(4);
    assert!(a.send_bytes(b"too long").unwrap_err().is_too_large());
}

#[test]
fn without_both_asking_nothing_moves() {
    // Neither asks.
    let listener = Listener::bind_private(Some(b"k")).unwrap();
    let address = listener.address().clone();
    let t = thread::spawn(move || Connector::new().authkey(b"k").connect(&address).unwrap());
    let (server, client) = (listener.accept().unwrap(), t.join().unwrap());
    assert!(!server.uses_pipes() && !client.uses_pipes());
    client.send_bytes(b"on the socket").unwrap();
    assert_eq!(server.recv_bytes().unwrap(), b"on the socket");

    // A TCP listener ignores the setting: both stay on the socket.
    let listener = Listener::builder()
        .pipes(true)
        .bind(&"127.0.0.1:0".parse().unwrap())
        .unwrap();
    let address = listener.address().clone();
    let t = thread::spawn(move || Connector::new().pipes(true).connect(&address).unwrap());
    let (server, client) = (listener.accept().unwrap(), t.join().unwrap());
    assert!(!server.uses_pipes() && !client.uses_pipes());
    server.send_bytes(b"over tcp").unwrap();
    assert_eq!(client.recv_bytes().unwrap(), b"over tcp");
}

#[test]
fn a_client_that_did_not_ask_fails_clearly_against_a_listener_that_did() {
    let listener = Listener::builder().pipes(true).bind_private().unwrap();
    let address = listener.address().clone();
    let t = thread::spawn(move || {
        let conn = Connector::new().connect(&address).unwrap();
        // It takes the listener's offer for a message of its own...
        assert_eq!(conn.recv_bytes().unwrap(), b"#PIPES#1");
        // ...and answers with a message where the listener waits for pipe ends.
        conn.send_bytes(b"hello").unwrap();
    });
    let err = listener.accept().unwrap_err();
    assert!(
        matches!(&err, ConnectError::Pipes(e) if e.is_refused()),
        "{err:?}"
    );
    t.join().unwrap();
}

#[test]
fn a_move_over_tcp_is_declined_on_both_ends() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), None).unwrap();
    let address = listener.address().clone();
    let t = thread::spawn(move || {
        let mut conn = Connector::new().connect(&address).unwrap();
        assert!(!conn.can_move_to_pipes());
        assert!(!conn.move_to_pipes().unwrap());
        conn
    });
    let mut server = listener.accept().unwrap();
    assert!(!server.accept_pipes().unwrap());
    let client = t.join().unwrap();
    client.send_bytes(b"still tcp").unwrap();
    assert_eq!(server.recv_bytes().unwrap(), b"still tcp");
}

#[test]
fn connections_that_cannot_move_say_so_and_are_untouched() {
    let (mut reader, mut writer) = pipe_oneway().unwrap();
    assert!(reader.move_to_pipes().unwrap_err().is_unsupported());
    assert!(writer.accept_pipes().unwrap_err().is_unsupported());

    let (mut a, mut b) = moved_by_hand();
    assert!(!a.can_move_to_pipes());
    assert!(a.accept_pipes().unwrap_err().is_unsupported());
    assert!(b.move_to_pipes().unwrap_err().is_unsupported());

    // Bytes read ahead: the two ends would not agree on where the stream switches.
    let (mut a, b) = pipe().unwrap();
    b.send_bytes_many(&[&b"one"[..], b"two"]).unwrap();
    assert_eq!(a.recv_bytes().unwrap(), b"one");
    assert!(!a.can_move_to_pipes());
    assert!(a.move_to_pipes().unwrap_err().is_unsupported());
    assert_eq!(a.recv_bytes().unwrap(), b"two");
}

/// An OS pipe: (read end, write end).
fn os_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe(2) succeeded: both descriptors are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Passes `fds` from a socketpair's one end and lets the other end accept them.
fn accept_passed(fds: &[&OwnedFd]) -> (PipesError, Connection) {
    let (mut a, b) = pipe().unwrap();
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    b.send_fds(&borrowed).unwrap();
    let err = a.accept_pipes().unwrap_err();
    assert!(!a.uses_pipes());
    // The connection is unusable afterwards, not left half-moved.
    assert!(a.recv_bytes().unwrap_err().is_io());
    (err, b)
}

#[test]
fn descriptors_other_than_two_pipe_ends_of_the_right_direction_are_refused() {
    let zero: OwnedFd = std::fs::File::open("/dev/zero").unwrap().into();
    let null: OwnedFd = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap()
        .into();
    let (err, _) = accept_passed(&[&zero, &null]);
    assert!(
        matches!(
            err,
            PipesError::NotAPipe {
                end: PipeEnd::Receive
            }
        ),
        "{err:?}"
    );
    assert!(err.is_refused());

    // Pipe ends, but the wrong way round.
    let (rd, wr) = os_pipe();
    let (err, _) = accept_passed(&[&wr, &rd]);
    assert!(
        matches!(
            err,
            PipesError::WrongEnd {
                end: PipeEnd::Receive
            }
        ),
        "{err:?}"
    );

    // A right read end, then /dev/null instead of a pipe to send on.
    let (err, _) = accept_passed(&[&rd, &null]);
    assert!(
        matches!(err, PipesError::NotAPipe { end: PipeEnd::Send }),
        "{err:?}"
    );

    // One descriptor, or three.
    let (err, _) = accept_passed(&[&rd]);
    assert!(matches!(err, PipesError::Count { got: 1 }), "{err:?}");
    let (err, _) = accept_passed(&[&rd, &wr, &rd]);
    assert!(matches!(err, PipesError::Count { got: 3 }), "{err:?}");

    // A message where the pipe ends should be.
    let (mut a, b) = pipe().unwrap();
    b.send_bytes(b"").unwrap();
    let err = a.accept_pipes().unwrap_err();
    assert!(matches!(err, PipesError::Count { got: 0 }), "{err:?}");

    // The peer going first.
    let (mut a, b) = pipe().unwrap();
    drop(b);
    assert!(matches!(a.accept_pipes().unwrap_err(), PipesError::Closed));
}

/// Connects with pipes, echoes what it receives (1 MiB included) until the parent closes,
/// then exits.
fn piped_echo(address: Address) {
    let conn = Connector::new()
        .authkey(b"child")
        .pipes(true)
        .connect(&address)
        .unwrap();
    conn.send(&conn.uses_pipes()).unwrap();
    while let Ok(m) = conn.recv_bytes() {
        conn.send_bytes(&m).unwrap();
    }
}

#[test]
fn a_child_process_moves_and_echoes() {
    init_test!(piped_echo);
    let listener = Listener::builder()
        .authkey(b"child")
        .pipes(true)
        .bind_private()
        .unwrap();
    let child = Process::new("piped_echo", listener.address().clone())
        .start()
        .unwrap();
    let conn = listener.accept().unwrap();
    assert!(conn.uses_pipes());
    assert!(conn.recv::<bool>().unwrap(), "the child moved too");
    let big = vec![9u8; MIB];
    for m in [&b"small"[..], &big, b""] {
        conn.send_bytes(m).unwrap();
        assert_eq!(conn.recv_bytes().unwrap(), m);
    }
    conn.close();
    assert!(conn.recv_bytes().unwrap_err().is_closed());
    assert_eq!(
        child.join_timeout(WAIT).unwrap(),
        Some(ExitStatus::Exited(0))
    );
}

/// As `piped_echo`, in a process where SIGPIPE kills: the move must be declined.
fn piped_echo_with_sigpipe(address: Address) {
    // SAFETY: sets SIGPIPE back to its default action (termination) in this child process,
    // before any other thread of it writes anywhere.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    piped_echo(address)
}

#[test]
fn a_child_where_sigpipe_kills_declines_and_stays_on_its_socket() {
    init_test!(piped_echo_with_sigpipe);
    let listener = Listener::builder()
        .authkey(b"child")
        .pipes(true)
        .bind_private()
        .unwrap();
    let child = Process::new("piped_echo_with_sigpipe", listener.address().clone())
        .start()
        .unwrap();
    let conn = listener.accept().unwrap();
    assert!(!conn.uses_pipes());
    assert!(
        !conn.recv::<bool>().unwrap(),
        "the child stayed on its socket"
    );
    conn.send_bytes(b"on the socket").unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"on the socket");
    conn.close();
    assert!(conn.recv_bytes().unwrap_err().is_closed());
    assert_eq!(
        child.join_timeout(WAIT).unwrap(),
        Some(ExitStatus::Exited(0))
    );
}

fn never_started(_: Connection) {
    unreachable!("a connection that moved to pipes is not handed to a child");
}

#[test]
fn a_moved_connection_is_not_handed_to_a_child() {
    init_test!(never_started);
    let (a, _b) = moved_by_hand();
    let err = Process::new("never_started", a).start().unwrap_err();
    assert!(
        matches!(err, conveyor_process::Error::Encode { .. }),
        "{err:?}"
    );
}
