//! The fast path: buffered sends and their flushes, many messages in one call, large messages
//! straight into a reused buffer, descriptors passed with `send_fds`/`recv_fds` (also to and
//! from Python's `multiprocessing.reduction`), and the spin switched on and off.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use conveyor_core::{Channel, GetError};
use conveyor_pipe::{pipe, pipe_oneway, Connection, Listener, SendError};

const WAIT: Duration = Duration::from_secs(60);

fn nothing_arrived(conn: &Connection) -> bool {
    !conn.poll(Some(Duration::ZERO)).unwrap()
}

#[test]
fn buffered_sends_wait_for_flush() {
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    assert!(a.buffered_sends());
    for i in 0..100u32 {
        a.send(&i).unwrap();
    }
    a.send_bytes(b"raw").unwrap();
    assert!(
        nothing_arrived(&b),
        "buffered sends must not be written before a flush"
    );
    a.flush().unwrap();
    for i in 0..100u32 {
        assert_eq!(b.recv::<u32>().unwrap(), i);
    }
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    // Nothing pending: flush is a no-op.
    a.flush().unwrap();
    assert!(nothing_arrived(&b));
}

#[test]
fn buffered_sends_go_out_once_64_kib_are_pending() {
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    let msg = [5u8; 1000];
    // 70 frames of 1004 bytes: past 64 KiB, so the buffer was written at least once.
    for _ in 0..70 {
        a.send_bytes(&msg).unwrap();
    }
    assert!(b.poll(Some(WAIT)).unwrap());
    assert_eq!(b.recv_bytes().unwrap(), msg);
}

#[test]
fn a_large_buffered_send_is_written_at_once_after_what_was_pending() {
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    a.send_bytes(b"small").unwrap();
    let big = vec![3u8; 100_000];
    let t = thread::spawn(move || {
        a.send_bytes(&big).unwrap();
        a
    });
    assert_eq!(b.recv_bytes().unwrap(), b"small");
    assert_eq!(b.recv_bytes().unwrap().len(), 100_000);
    let a = t.join().unwrap();
    assert!(nothing_arrived(&b));
    drop(a);
}

#[test]
fn a_receive_flushes_this_ends_buffered_sends() {
    // Both ends buffered, ping-pong without a single explicit flush: each receive sends what
    // its end buffered, so neither waits for the other forever.
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    b.set_buffered_sends(true);
    let echo = thread::spawn(move || {
        for _ in 0..50 {
            let n: u64 = b.recv().unwrap();
            b.send(&(n + 1)).unwrap();
        }
        b.flush().unwrap();
    });
    let mut n = 0u64;
    for _ in 0..50 {
        a.send(&n).unwrap();
        n = a.recv::<u64>().unwrap();
    }
    assert_eq!(n, 50);
    echo.join().unwrap();
}

#[test]
fn close_drop_and_turning_buffering_off_flush() {
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    a.send_bytes(b"before close").unwrap();
    a.close();
    assert_eq!(b.recv_bytes().unwrap(), b"before close");
    assert!(b.recv_bytes().unwrap_err().is_closed());

    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    a.send_bytes(b"before drop").unwrap();
    drop(a);
    assert_eq!(b.recv_bytes().unwrap(), b"before drop");
    assert!(b.recv_bytes().unwrap_err().is_closed());

    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    a.send_bytes(b"before off").unwrap();
    a.set_buffered_sends(false);
    assert_eq!(b.recv_bytes().unwrap(), b"before off");
    a.send_bytes(b"unbuffered").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"unbuffered");

    // A one-way pipe's writer, and an OS pipe's, too.
    let (r, w) = os_pipe();
    w.set_buffered_sends(true);
    w.send(&7u8).unwrap();
    drop(w);
    assert_eq!(r.recv::<u8>().unwrap(), 7);
    assert!(r.recv_bytes().unwrap_err().is_closed());
    let (r, w) = pipe_oneway().unwrap();
    w.set_buffered_sends(true);
    w.send(&7u8).unwrap();
    drop(w);
    assert_eq!(r.recv::<u8>().unwrap(), 7);
    assert!(r.recv_bytes().unwrap_err().is_closed());
}

#[test]
fn buffered_channel_puts_reach_a_consumer_in_another_thread() {
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    let consumer = thread::spawn(move || {
        let mut sum = 0u64;
        while let Ok(i) = Channel::<u64>::get(&b) {
            sum += i;
        }
        sum
    });
    for i in 0..10_000u64 {
        a.put(i).unwrap();
    }
    Channel::<u64>::close(&a).unwrap();
    assert_eq!(consumer.join().unwrap(), (0..10_000u64).sum::<u64>());
}

#[test]
fn send_bytes_many_sends_each_message_in_order() {
    let (a, b) = pipe().unwrap();
    let big = vec![9u8; 40_000];
    let msgs: Vec<Vec<u8>> = vec![
        b"a".to_vec(),
        Vec::new(),
        big.clone(),
        b"bc".to_vec(),
        big[..17_000].to_vec(),
    ];
    let t = thread::spawn(move || {
        a.send_bytes_many(&msgs).unwrap();
        a
    });
    assert_eq!(b.recv_bytes().unwrap(), b"a");
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert_eq!(b.recv_bytes().unwrap(), big);
    assert_eq!(b.recv_bytes().unwrap(), b"bc");
    assert_eq!(b.recv_bytes().unwrap().len(), 17_000);
    let a = t.join().unwrap();
    assert!(nothing_arrived(&b));

    // One message over the maximum: nothing of the batch is sent.
    a.set_max_message_size(10);
    let e = a.send_bytes_many(&[&b"ok"[..], &[0u8; 11]]).unwrap_err();
    assert!(
        matches!(e, SendError::TooLarge { size: 11, max: 10 }),
        "{e}"
    );
    assert!(nothing_arrived(&b));
}

#[test]
fn large_messages_cross_both_kinds_of_pipe_whole() {
    // In non-blocking mode a pipe's writes find it full and its reads find it empty many
    // times over (it holds 64 KiB): both wait, as on a blocking pipe.
    for (rx, tx) in [
        pipe().unwrap(),
        pipe_oneway().unwrap(),
        os_pipe(),
        os_pipe_nonblocking(),
    ] {
        let msgs: Vec<Vec<u8>> = [1 << 20, (5 << 20) + 3, 16_385]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        let expect = msgs.clone();
        let t = thread::spawn(move || {
            for m in &msgs {
                tx.send_bytes(m).unwrap();
            }
        });
        let mut buf = Vec::new();
        for m in &expect {
            let n = rx.recv_bytes_into(&mut buf).unwrap();
            assert_eq!(n, m.len());
            assert!(buf == *m);
        }
        t.join().unwrap();
    }
}

#[test]
fn recv_bytes_into_reuses_the_buffer() {
    let (a, b) = pipe().unwrap();
    let msg = vec![1u8; 1 << 20];
    let t = thread::spawn(move || {
        for _ in 0..4 {
            a.send_bytes(&msg).unwrap();
        }
    });
    let mut buf = Vec::with_capacity(2 << 20);
    let ptr = buf.as_ptr();
    for _ in 0..4 {
        assert_eq!(b.recv_bytes_into(&mut buf).unwrap(), 1 << 20);
        assert_eq!(buf.as_ptr(), ptr, "the buffer was reallocated");
    }
    t.join().unwrap();
}

#[test]
fn a_header_then_silence_allocates_nothing_like_the_claimed_length() {
    // The peer announces 60 MiB (under the 64 MiB default), sends 10 bytes and dies.
    let (mut raw, theirs) = UnixStream::pair().unwrap();
    let conn = Connection::from_fd(theirs.into()).unwrap();
    raw.write_all(&(60i32 << 20).to_be_bytes()).unwrap();
    raw.write_all(&[1; 10]).unwrap();
    drop(raw);
    let mut buf = Vec::new();
    let e = conn.recv_bytes_into(&mut buf).unwrap_err();
    match &e {
        GetError::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof, "{io}"),
        other => panic!("expected UnexpectedEof, got {other:?}"),
    }
    assert!(
        buf.capacity() <= 4 << 20,
        "{} bytes were reserved for 10 that came",
        buf.capacity()
    );
}

fn file_with(text: &[u8]) -> std::fs::File {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(text).unwrap();
    f
}

fn read_all(fd: OwnedFd) -> String {
    let mut f = std::fs::File::from(fd);
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn descriptors_pass_between_messages_even_when_read_ahead() {
    let (a, b) = pipe().unwrap();
    let (one, two) = (file_with(b"one"), file_with(b"two"));
    // Everything is written before anything is read: the first receive reads ahead and takes
    // the descriptors' byte along with the messages around it.
    a.send_bytes(b"before").unwrap();
    a.send_fds(&[one.as_fd(), two.as_fd()]).unwrap();
    a.send_bytes(b"after").unwrap();
    a.send_fds(&[two.as_fd()]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"before");
    let fds = b.recv_fds(2).unwrap();
    assert_eq!(fds.len(), 2);
    let mut fds = fds.into_iter();
    assert_eq!(read_all(fds.next().unwrap()), "one");
    assert_eq!(read_all(fds.next().unwrap()), "two");
    assert_eq!(b.recv_bytes().unwrap(), b"after");
    let fds = b.recv_fds(1).unwrap();
    assert_eq!(read_all(fds.into_iter().next().unwrap()), "two");
}

#[test]
fn buffered_sends_go_out_before_the_descriptors() {
    let (a, b) = pipe().unwrap();
    a.set_buffered_sends(true);
    let f = file_with(b"x");
    a.send_bytes(b"first").unwrap();
    a.send_fds(&[f.as_fd()]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"first");
    assert_eq!(b.recv_fds(1).unwrap().len(), 1);
}

#[test]
fn a_message_where_descriptors_were_expected_is_invalid_data() {
    let (a, b) = pipe().unwrap();
    a.send_bytes(b"not descriptors").unwrap();
    let e = b.recv_fds(1).unwrap_err();
    match &e {
        GetError::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::InvalidData, "{io}"),
        other => panic!("expected InvalidData, got {other:?}"),
    }
    assert!(b.recv_bytes().unwrap_err().to_string().contains("unusable"));
}

#[test]
fn more_descriptors_than_expected_is_refused() {
    let (a, b) = pipe().unwrap();
    let f = file_with(b"x");
    a.send_fds(&[f.as_fd(), f.as_fd(), f.as_fd()]).unwrap();
    let e = b.recv_fds(2).unwrap_err();
    assert!(e.to_string().contains("more than the 2"), "{e}");
}

/// The two ends of an OS pipe (not one this crate makes: `pipe_oneway` is a socketpair).
fn os_pipe() -> (Connection, Connection) {
    os_pipe_with(0)
}

/// The two ends of an OS pipe in non-blocking mode (`O_NONBLOCK`).
fn os_pipe_nonblocking() -> (Connection, Connection) {
    os_pipe_with(libc::O_NONBLOCK)
}

/// The two ends of an OS pipe made with `flags` (and close-on-exec).
fn os_pipe_with(flags: libc::c_int) -> (Connection, Connection) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two descriptors, as pipe2 expects.
    let made = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags) };
    assert_eq!(made, 0);
    // SAFETY: pipe2 succeeded: both descriptors are new and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (
        Connection::from_fd(r).unwrap(),
        Connection::from_fd(w).unwrap(),
    )
}

#[test]
fn descriptors_need_a_unix_socket() {
    let (r, w) = os_pipe();
    let f = file_with(b"x");
    assert!(w.send_fds(&[f.as_fd()]).is_err());
    assert!(r.recv_fds(1).is_err());
    let (a, _b) = pipe().unwrap();
    assert!(a.send_fds(&[]).is_err(), "no descriptors is not a message");
    // A one-way pipe is a socketpair: it passes them.
    let (r, w) = pipe_oneway().unwrap();
    w.send_fds(&[f.as_fd()]).unwrap();
    assert_eq!(r.recv_fds(1).unwrap().len(), 1);
}

#[test]
fn end_of_file_before_descriptors_is_closed() {
    let (a, b) = pipe().unwrap();
    a.close();
    assert!(b.recv_fds(1).unwrap_err().is_closed());
}

/// Two OS pipes, one each way, in non-blocking mode: (one side's receiving and sending
/// ends, the other side's).
fn os_pipe_pair_nonblocking() -> ((Connection, Connection), (Connection, Connection)) {
    let (a_rx, b_tx) = os_pipe_nonblocking();
    let (b_rx, a_tx) = os_pipe_nonblocking();
    ((a_rx, a_tx), (b_rx, b_tx))
}

#[test]
fn pipes_in_non_blocking_mode_wait_for_messages_with_and_without_the_spin() {
    // Each receive right after a send finds its pipe empty: without the spin it goes
    // straight to the blocking read, which must wait (not fail with WouldBlock); with it,
    // the spin's plain reads find nothing a few times first.
    for spin in [false, true] {
        let ((a_rx, a_tx), (b_rx, b_tx)) = os_pipe_pair_nonblocking();
        for c in [&a_rx, &a_tx, &b_rx, &b_tx] {
            c.set_spin(spin);
        }
        let echo = thread::spawn(move || {
            for _ in 0..200 {
                let m = b_rx.recv_bytes().unwrap();
                b_tx.send_bytes(&m).unwrap();
            }
            // The peer's end of file, after what it sent.
            assert!(b_rx.recv_bytes().unwrap_err().is_closed());
        });
        for i in 0..200u32 {
            a_tx.send_bytes(&i.to_le_bytes()).unwrap();
            assert_eq!(a_rx.recv_bytes().unwrap(), i.to_le_bytes());
        }
        drop(a_tx);
        echo.join().unwrap();
        assert!(a_rx.recv_bytes().unwrap_err().is_closed());
    }
}

#[test]
fn messages_arrive_with_and_without_the_spin() {
    for spin in [false, true] {
        let (a, b) = pipe().unwrap();
        a.set_spin(spin);
        b.set_spin(spin);
        let echo = thread::spawn(move || {
            for _ in 0..200 {
                let m = b.recv_bytes().unwrap();
                b.send_bytes(&m).unwrap();
            }
        });
        for i in 0..200u32 {
            a.send_bytes(&i.to_le_bytes()).unwrap();
            assert_eq!(a.recv_bytes().unwrap(), i.to_le_bytes());
        }
        echo.join().unwrap();
    }
}

fn python() -> Command {
    let exe = std::env::var("CONVEYOR_PYTHON").unwrap_or_else(|_| "python3".to_string());
    match Command::new(&exe)
        .args(["-c", "import multiprocessing.reduction"])
        .output()
    {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "this interop test needs python3 (or $CONVEYOR_PYTHON) with \
             multiprocessing.reduction; `{exe}` gave {other:?}"
        ),
    }
    Command::new(exe)
}

/// A Python client takes two descriptors with `reduction.recvfds`, sends back what the files
/// hold, then passes one of its own with `reduction.sendfds`.
const PY_FDS: &str = r#"
import os, socket, sys
from multiprocessing.connection import Client
from multiprocessing import reduction
c = Client(sys.argv[1], authkey=b'fds')
s = socket.socket(fileno=os.dup(c.fileno()))
fds = reduction.recvfds(s, 2)
for fd in fds:
    os.lseek(fd, 0, 0)
    c.send_bytes(os.read(fd, 100))
r, w = os.pipe()
os.write(w, b'from python')
os.close(w)
reduction.sendfds(s, [r])
assert c.recv_bytes() == b'done'
print('python fds ok', flush=True)
"#;

#[test]
fn descriptors_pass_to_and_from_python() {
    let listener = Listener::builder().authkey(b"fds").bind_private().unwrap();
    let conveyor_pipe::Address::Unix(path) = listener.address().clone() else {
        unreachable!()
    };
    let child = python()
        .arg("-c")
        .arg(PY_FDS)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let conn = listener.accept().unwrap();
    let (one, two) = (file_with(b"first file"), file_with(b"second file"));
    conn.send_fds(&[one.as_fd(), two.as_fd()]).unwrap();
    assert_eq!(conn.recv_bytes().unwrap(), b"first file");
    assert_eq!(conn.recv_bytes().unwrap(), b"second file");
    let fds = conn.recv_fds(4).unwrap();
    assert_eq!(fds.len(), 1);
    let mut text = String::new();
    std::fs::File::from(fds.into_iter().next().unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "from python");
    conn.send_bytes(b"done").unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(WAIT).expect("python finished").unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python fds ok"));
}
