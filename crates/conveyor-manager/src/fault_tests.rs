//! Bad input and faults, sent as raw frames: each gets an error reply or is cleaned up, and the
//! server keeps serving everyone else.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use conveyor_core::{Codec, Postcard};
use conveyor_pipe::{Connection, Connector};

use crate::error::ErrorKind;
use crate::manager::{Manager, ManagerGuard};
use crate::protocol::{
    decode_frame, Blob, Call, Kind, Op, Reply, Request, Response, Wait, MAGIC, PROTOCOL_VERSION,
};
use crate::server::PANIC_NAME;
use crate::ManagerConnection;

/// A connection that speaks frames by hand.
struct Raw {
    t: Connection,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(m: &ManagerGuard) -> Raw {
        let t = Connector::new()
            .authkey(m.authkey())
            .connect(m.address())
            .unwrap();
        t.set_max_message_size(1 << 20);
        Raw { t, buf: Vec::new() }
    }

    fn hello(m: &ManagerGuard) -> Raw {
        let mut r = Raw::connect(m);
        let reply = r.request(
            1,
            &Request::Hello {
                magic: MAGIC,
                version: PROTOCOL_VERSION,
            },
        );
        assert!(reply.starts_with("Ok(Hello"), "{reply}");
        r
    }

    /// The socket itself, to write bytes that are not whole frames.
    fn socket(&self) -> UnixStream {
        UnixStream::from(self.t.as_fd().try_clone_to_owned().unwrap())
    }

    fn send_bytes(&mut self, frame: &[u8]) {
        self.t.send_bytes(frame).unwrap();
    }

    /// The reply, as (id, debug text of the response).
    fn recv(&mut self) -> (u64, String) {
        self.t.recv_bytes_into(&mut self.buf).unwrap();
        let (id, resp) = decode_frame(&self.buf).unwrap();
        (id, format!("{resp:?}"))
    }

    fn request(&mut self, id: u64, req: &Request<'_>) -> String {
        let mut out = Vec::new();
        Postcard.encode(&(id, req), &mut out).unwrap();
        self.send_bytes(&out);
        let (rid, text) = self.recv();
        assert_eq!(rid, id);
        text
    }

    fn open(&mut self, name: &str, create: crate::protocol::Create<'_>) -> u64 {
        let mut out = Vec::new();
        let req = Request::Open {
            name,
            kind: create.kind(),
            create: Some(create),
        };
        Postcard.encode(&(9u64, &req), &mut out).unwrap();
        self.send_bytes(&out);
        self.t.recv_bytes_into(&mut self.buf).unwrap();
        match decode_frame(&self.buf).unwrap().1 {
            Response::Ok(Reply::Opened { id, .. }) => id,
            other => panic!("{other:?}"),
        }
    }

    fn is_closed(&mut self) -> bool {
        self.t.recv_bytes_into(&mut self.buf).is_err()
    }
}

fn kind_in(text: &str, kind: ErrorKind) -> bool {
    text.starts_with("Err(") && text.contains(&format!("kind: {kind:?}"))
}

/// The server still answers a normal client.
fn still_serving(m: &ManagerGuard) {
    let c = m.connect().unwrap();
    let v = c.value("alive", &0u32).unwrap();
    v.fetch_add(1).unwrap();
    c.ping().unwrap();
}

#[test]
fn unknown_object_id() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    let text = r.request(
        2,
        &Request::Call(Call {
            obj: 999_999,
            op: Op::DictLen,
        }),
    );
    assert!(kind_in(&text, ErrorKind::NotFound), "{text}");
    // The connection goes on.
    assert_eq!(r.request(3, &Request::Ping), "Ok(Unit)");
    still_serving(&m);
}

#[test]
fn operation_of_the_wrong_kind() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    let id = r.open("q", crate::protocol::Create::Queue { capacity: None });
    let text = r.request(
        2,
        &Request::Call(Call {
            obj: id,
            op: Op::DictGet(Blob(b"k")),
        }),
    );
    assert!(kind_in(&text, ErrorKind::WrongType), "{text}");
    assert!(text.contains("DictGet"), "{text}");
    // A proxy of the wrong kind is refused at open.
    assert!(m.dict::<u8, u8>("q").unwrap_err().is_wrong_type());
    // A number op on a stored string is a type error too, and changes nothing.
    let s = m.value("s", &"text".to_string()).unwrap();
    let as_num: crate::ValueProxy<i64> =
        crate::Proxy::rebind(&m.open::<crate::ValueProxy<i64>>("s").unwrap(), m.client());
    assert!(as_num.fetch_add(1).unwrap_err().is_wrong_type());
    assert_eq!(s.get().unwrap(), "text");
    still_serving(&m);
}

#[test]
fn malformed_requests_get_an_error_and_the_connection_goes_on() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    // An id, then garbage.
    r.send_bytes(&[5, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    let (id, text) = r.recv();
    assert_eq!(id, 5);
    assert!(kind_in(&text, ErrorKind::Malformed), "{text}");
    // Not even an id.
    r.send_bytes(&[]);
    let (id, text) = r.recv();
    assert_eq!(id, 0);
    assert!(kind_in(&text, ErrorKind::Malformed), "{text}");
    // A valid request with stray bytes after it.
    let mut out = Vec::new();
    Postcard.encode(&(6u64, Request::Ping), &mut out).unwrap();
    out.push(0);
    r.send_bytes(&out);
    let (id, text) = r.recv();
    assert_eq!(id, 6);
    assert!(kind_in(&text, ErrorKind::Malformed), "{text}");
    assert_eq!(r.request(7, &Request::Ping), "Ok(Unit)");
    still_serving(&m);
}

#[test]
fn requests_before_hello_and_wrong_versions_are_refused() {
    let m = Manager::start().unwrap();
    let mut r = Raw::connect(&m);
    let text = r.request(1, &Request::Ping);
    assert!(kind_in(&text, ErrorKind::Malformed), "{text}");
    assert!(r.is_closed());
    let mut r = Raw::connect(&m);
    let text = r.request(
        1,
        &Request::Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION + 1,
        },
    );
    assert!(kind_in(&text, ErrorKind::Version), "{text}");
    assert!(r.is_closed());
    still_serving(&m);
}

#[test]
fn oversize_request_is_refused_before_reading() {
    let m = Manager::builder().max_frame(1024).start().unwrap();
    let mut r = Raw::hello(&m);
    // Only the header of a 1 GiB frame: the server must refuse without waiting for the rest.
    r.socket().write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    let (id, text) = r.recv();
    assert_eq!(id, 0);
    assert!(kind_in(&text, ErrorKind::TooLarge), "{text}");
    assert!(r.is_closed());
    // Through the proxies: an oversize put is refused before it is sent.
    let q = m.queue::<Vec<u8>>("q", None).unwrap();
    let e = conveyor_core::Channel::put(&q, vec![1u8; 4096]).unwrap_err();
    assert!(e.is_too_large());
    assert_eq!(e.into_inner().len(), 4096);
    // A batch frame larger than the server takes: refused with TooLarge before it is sent,
    // and the connection goes on.
    let d = m.dict::<u32, String>("d").unwrap();
    let mut b = m.batch();
    b.dict_set(&d, &1, &"x".repeat(2000)).unwrap();
    let e = b.run().unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::TooLarge), "{e}");
    assert_eq!(d.len().unwrap(), 0);
    m.ping().unwrap();
    still_serving(&m);
}

#[test]
fn wrong_authkey_is_refused() {
    let m = Manager::start().unwrap();
    let e = ManagerConnection::connect(m.address(), b"not the key").unwrap_err();
    assert!(matches!(e, crate::ManagerError::Auth(_)), "{e}");
    // The typed cause travels along.
    let source = std::error::Error::source(&e).expect("a source");
    let cause = source
        .downcast_ref::<conveyor_pipe::ConnectError>()
        .expect("conveyor-pipe's error");
    assert!(cause.is_authentication(), "{cause}");
    // A peer that is not a manager client at all: garbage instead of the answer.
    let crate::Address::Unix(path) = m.address() else {
        unreachable!("the default address is a Unix socket")
    };
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    still_serving(&m);
}

#[test]
fn client_disconnecting_mid_request() {
    let m = Manager::start().unwrap();
    for cut in [2usize, 4, 7] {
        let r = Raw::hello(&m);
        let mut out = Vec::new();
        let req = Request::Open {
            name: "half",
            kind: Kind::Dict,
            create: Some(crate::protocol::Create::Dict),
        };
        Postcard.encode(&(2u64, req), &mut out).unwrap();
        let mut framed = (out.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&out);
        let mut s = r.socket();
        s.write_all(&framed[..cut]).unwrap();
        drop(s);
        drop(r);
    }
    still_serving(&m);
    // Nothing of the cut requests was done.
    assert!(m
        .open::<crate::DictProxy<u8, u8>>("half")
        .unwrap_err()
        .is_not_found());
}

#[test]
fn client_dying_while_waiting_is_cleaned_up() {
    let m = Manager::start().unwrap();
    let q = m.queue::<u32>("q", None).unwrap();
    let mut r = Raw::hello(&m);
    let qid = r.open("q", crate::protocol::Create::Queue { capacity: None });
    let mut out = Vec::new();
    Postcard
        .encode(
            &(
                2u64,
                Request::Call(Call {
                    obj: qid,
                    op: Op::QueueGet(Wait::Forever),
                }),
            ),
            &mut out,
        )
        .unwrap();
    r.send_bytes(&out);
    drop(r); // gone while its get waits on the server (or before it is even read)
             // The dead client's get must not swallow the item: whether its request is read after
             // the close or was already waiting, the item goes to a live getter.
    conveyor_core::Channel::put(&q, 1).unwrap();
    let got = conveyor_core::Channel::get_timeout(&q, Duration::from_secs(30));
    assert_eq!(got.unwrap(), 1);
    still_serving(&m);
}

#[test]
fn dead_client_holding_a_lock_has_it_released() {
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let rlock = m.rlock("r").unwrap();
    {
        let dying = m.connect().unwrap();
        let mine = crate::Proxy::rebind(&lock, &dying);
        let mine_r = crate::Proxy::rebind(&rlock, &dying);
        let g = mine.acquire().unwrap();
        let g1 = mine_r.acquire().unwrap();
        let g2 = mine_r.acquire().unwrap();
        assert!(lock.is_locked().unwrap());
        // The process "dies": its guards never run, its connection closes.
        std::mem::forget((g, g1, g2));
        drop(mine);
        drop(mine_r);
        drop(dying);
    }
    // The server releases both once it sees the connection close.
    let g = lock.acquire_timeout(Duration::from_secs(30)).unwrap();
    assert!(g.is_some());
    let g = rlock.acquire_timeout(Duration::from_secs(30)).unwrap();
    assert!(g.is_some());
}

#[test]
fn release_of_a_lock_not_held_is_refused() {
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let _g = lock.acquire().unwrap();
    let mut r = Raw::hello(&m);
    let id = r.open("l", crate::protocol::Create::Lock);
    let text = r.request(
        2,
        &Request::Call(Call {
            obj: id,
            op: Op::Release,
        }),
    );
    assert!(kind_in(&text, ErrorKind::NotOwner), "{text}");
    assert!(lock.is_locked().unwrap());
}

#[test]
fn a_unix_socket_client_moves_to_pipes_and_a_tcp_one_does_not() {
    let m = Manager::start().unwrap();
    let c = m.connect().unwrap();
    assert!(matches!(c.address(), Some(crate::Address::Unix(_))));
    assert!(c.thread_conn().unwrap().lock().wire().uses_pipes());
    // In non-blocking mode, so that a receive's spin looks with a plain read.
    assert!(c
        .thread_conn()
        .unwrap()
        .lock()
        .wire()
        .pipes_are_nonblocking());
    let d = c.dict::<u32, u32>("d").unwrap();
    d.set(&1, &2).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));

    let tcp = Manager::builder()
        .address("127.0.0.1:0".parse().unwrap())
        .start()
        .unwrap();
    let c = tcp.connect().unwrap();
    assert!(!c.thread_conn().unwrap().lock().wire().uses_pipes());
    assert_eq!(c.value("v", &5u32).unwrap().get().unwrap(), 5);
}

#[test]
fn a_move_to_pipes_with_requests_behind_it_is_declined_and_the_socket_goes_on() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    // The move and a ping in one write: the server sees the ping buffered behind the move.
    let mut a = Vec::new();
    Postcard.encode(&(2u64, Request::Pipes), &mut a).unwrap();
    let mut b = Vec::new();
    Postcard.encode(&(3u64, Request::Ping), &mut b).unwrap();
    r.t.send_bytes_many(&[a, b]).unwrap();
    let (id, text) = r.recv();
    assert_eq!(id, 2);
    assert!(kind_in(&text, ErrorKind::Malformed), "{text}");
    assert_eq!(r.recv(), (3, "Ok(Unit)".to_string()));
    assert_eq!(r.request(4, &Request::Ping), "Ok(Unit)");
    still_serving(&m);
}

#[test]
fn a_client_that_never_hands_over_its_pipes_is_dropped() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    assert_eq!(r.request(2, &Request::Pipes), "Ok(Unit)");
    // A plain frame instead of the pipe ends: the server ends the connection.
    r.send_bytes(b"");
    assert!(r.is_closed());
    still_serving(&m);
}

#[test]
fn a_client_handing_over_devices_instead_of_pipes_is_dropped_and_shutdown_still_works() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    assert_eq!(r.request(2, &Request::Pipes), "Ok(Unit)");
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    r.t.send_fds(&[zero.as_fd(), null.as_fd()]).unwrap();
    // Refused: the server ends the connection (end of file on the socket) instead of reading
    // /dev/zero forever.
    assert!(r.is_closed(), "the server kept the connection");
    // The wrong ends of real pipes are refused too.
    let mut r = Raw::hello(&m);
    assert_eq!(r.request(2, &Request::Pipes), "Ok(Unit)");
    let (rd, wr) = rustix::pipe::pipe().unwrap();
    r.t.send_fds(&[wr.as_fd(), rd.as_fd()]).unwrap();
    assert!(r.is_closed(), "the server took the wrong pipe ends");
    still_serving(&m);
    // And the server still shuts down (no connection thread is left spinning).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        m.shutdown();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the server shut down");
}

#[test]
fn shutdown_wakes_a_connection_waiting_on_its_request_pipe() {
    let m = Manager::start().unwrap();
    // An idle piped client: its server thread waits on the request pipe, which the client
    // keeps open. Shutting the server down must wake that thread (through the watched
    // socket), or the shutdown would wait for it forever.
    let idle = m.connect().unwrap();
    idle.ping().unwrap();
    assert!(idle.thread_conn().unwrap().lock().wire().uses_pipes());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        m.shutdown();
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the server shut down with a piped client connected");
    assert!(idle.ping().is_err());
}

#[test]
fn a_client_that_drips_its_handshake_is_cut_off_at_the_deadline() {
    use std::io::Read;
    let m = Manager::builder()
        .handshake_timeout(Some(Duration::from_millis(300)))
        .start()
        .unwrap();
    let crate::Address::Unix(path) = m.address() else {
        unreachable!("the default address is a Unix socket")
    };
    let mut s = UnixStream::connect(path).unwrap();
    // The server's challenge comes first; then the client answers one byte at a time: a
    // header announcing a 200-byte answer (within the handshake's 256-byte limit), then the
    // answer's bytes, each well inside a per-read timeout of the deadline's length. Only a
    // deadline for the whole handshake cuts it off before the 200 bytes (10 s) are in.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut challenge = [0u8; 4];
    s.read_exact(&mut challenge).unwrap();
    let started = std::time::Instant::now();
    let drip = (200u32.to_be_bytes().into_iter()).chain(std::iter::repeat(b'x').take(200));
    let mut cut_off = false;
    for byte in drip {
        if s.write_all(&[byte]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    if !cut_off {
        // Writes into a socket whose reader closed may still succeed once; a read tells.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        cut_off = match s.read_to_end(&mut rest) {
            Ok(_) => true,
            // A reset says the server closed it too; only a read that timed out says not.
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
    }
    assert!(cut_off, "the server kept a dripping handshake open");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cut off only after {:?}",
        started.elapsed()
    );
    still_serving(&m);
}

#[test]
fn a_semaphore_release_past_u64_max_is_refused_and_the_connection_keeps_its_locks() {
    let m = Manager::start().unwrap();
    let c = m.connect().unwrap();
    let lock = c.lock("held").unwrap();
    let sem = c.semaphore("full", u64::MAX).unwrap();
    let g = lock.acquire().unwrap();
    let err = sem.release().unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Overflow), "{err}");
    assert_eq!(sem.value().unwrap(), u64::MAX);
    // The connection is still there and still holds its lock.
    assert!(lock.is_locked().unwrap());
    g.release().unwrap();
    assert!(!lock.is_locked().unwrap());
    // A counter past its type's range is refused too, and left as it was.
    let v = c.value("count", &u32::MAX).unwrap();
    assert_eq!(
        v.fetch_add(1).unwrap_err().kind(),
        Some(ErrorKind::Overflow)
    );
    assert_eq!(v.get().unwrap(), u32::MAX);
    still_serving(&m);
}

#[test]
fn a_panicking_request_releases_the_locks_of_its_connection() {
    let m = Manager::start().unwrap();
    let lock = m.lock("l").unwrap();
    let rlock = m.rlock("r").unwrap();
    let c = m.connect().unwrap();
    let mine = crate::Proxy::rebind(&lock, &c);
    let mine_r = crate::Proxy::rebind(&rlock, &c);
    let g = mine.acquire().unwrap();
    let g1 = mine_r.acquire().unwrap();
    assert!(lock.is_locked().unwrap());
    let err = c.dict::<u8, u8>(PANIC_NAME).unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Internal), "{err}");
    std::mem::forget((g, g1));
    // The connection is closed and its locks are free for everyone else.
    assert!(c.ping().is_err());
    let g = lock.acquire_timeout(Duration::from_secs(30)).unwrap();
    assert!(g.is_some());
    let g = rlock.acquire_timeout(Duration::from_secs(30)).unwrap();
    assert!(g.is_some());
    still_serving(&m);
}

#[test]
fn condition_wait_and_notify_without_its_lock_are_refused() {
    let m = Manager::start().unwrap();
    let mut r = Raw::hello(&m);
    let id = r.open("c", crate::protocol::Create::Condition);
    for (n, op) in [
        (2, Op::CondNotify(1)),
        (3, Op::CondNotifyAll),
        (4, Op::CondWait(Wait::Micros(1_000))),
    ] {
        let text = r.request(n, &Request::Call(Call { obj: id, op }));
        assert!(kind_in(&text, ErrorKind::NotOwner), "{text}");
    }
    // A lock operation on it works, and a queue operation is of the wrong kind.
    let text = r.request(
        5,
        &Request::Call(Call {
            obj: id,
            op: Op::Acquire(Wait::Never),
        }),
    );
    assert_eq!(text, "Ok(Bool(true))");
    let text = r.request(
        6,
        &Request::Call(Call {
            obj: id,
            op: Op::QueueState,
        }),
    );
    assert!(kind_in(&text, ErrorKind::WrongType), "{text}");
    still_serving(&m);
}

#[test]
fn an_undecodable_reply_keeps_postcards_error_as_its_source() {
    // A varint that never ends: not a reply.
    let e = decode_frame(&[0x80]).unwrap_err();
    assert!(matches!(e, crate::ManagerError::Decode(_)), "{e}");
    let source = std::error::Error::source(&e).expect("a source");
    assert!(
        source.downcast_ref::<postcard::Error>().is_some(),
        "{source}"
    );
}
