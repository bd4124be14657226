//! Handles in the arguments: a socket end travels to one child as an inherited descriptor,
//! and to no other process.

mod common;

use std::os::fd::AsRawFd;
use std::sync::{Arc, Barrier};

use common::{join, End};
use conveyor_process::{init_test, ExitStatus, Process};

/// Answers every line with the line doubled, until the stream ends.
fn echo_twice((mut conn, tag): (End, String)) {
    while let Some(line) = conn.recv_line() {
        conn.send_line(&format!("{tag}:{line}{line}"));
    }
}

#[test]
fn a_socket_end_travels_to_the_child() {
    init_test!(echo_twice);
    let (mut mine, theirs) = End::pair();
    let child = Process::new("echo_twice", (theirs, "c1")).start().unwrap();
    for word in ["ab", "xyz", ""] {
        mine.send_line(word);
        assert_eq!(mine.recv_line().unwrap(), format!("c1:{word}{word}"));
    }
    // Closing our end ends the child's loop. Then, with the child gone, the socket has no
    // other holder: the parent's original and its duplicate were both closed by start().
    mine.0.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(join(&child), ExitStatus::Exited(0));
    assert_eq!(mine.recv_line(), None);
}

#[test]
fn two_ends_and_two_children() {
    init_test!(echo_twice);
    let (mut a, a_theirs) = End::pair();
    let (mut b, b_theirs) = End::pair();
    let ca = Process::new("echo_twice", (a_theirs, "A")).start().unwrap();
    let cb = Process::new("echo_twice", (b_theirs, "B")).start().unwrap();
    b.send_line("1");
    a.send_line("2");
    assert_eq!(a.recv_line().unwrap(), "A:22");
    assert_eq!(b.recv_line().unwrap(), "B:11");
    drop(a);
    drop(b);
    assert!(join(&ca).success());
    assert!(join(&cb).success());
}

/// Exits 0 if no descriptor of this process is the socket `inode` or a launch payload.
fn holds_nothing_foreign(inode: u64) -> i32 {
    let socket = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let entry = entry.unwrap();
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.to_string_lossy();
            if target == socket || target.starts_with("/memfd:conveyor-launch") {
                eprintln!("fd {:?} -> {target}", entry.file_name());
                return 1;
            }
        }
    }
    0
}

fn inode(end: &End) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/fd/{}", end.0.as_raw_fd()))
        .unwrap()
        .ino()
}

fn sleeps_on(conn: End) {
    let mut conn = conn;
    // returns when the parent closes its end
    let _ = conn.recv_line();
}

/// While one thread keeps handing a socket to children, children started at the same moment
/// by another thread must not inherit it (nor the first thread's launch payloads).
#[test]
fn only_the_intended_child_inherits() {
    init_test!(holds_nothing_foreign, sleeps_on);
    let rounds = if std::env::var_os("CI").is_some() {
        5
    } else {
        20
    };
    let (mine, theirs) = End::pair();
    // the child gets `theirs`; its inode is what must not show up elsewhere
    let ino = inode(&theirs);
    let theirs = Arc::new(theirs);
    let barrier = Arc::new(Barrier::new(2));
    let giver = {
        let barrier = Arc::clone(&barrier);
        let theirs = Arc::clone(&theirs);
        std::thread::spawn(move || {
            barrier.wait();
            for _ in 0..rounds {
                // serialising borrows the end: each child gets its own duplicate
                let c = Process::new("sleeps_on", &*theirs).start().unwrap();
                c.kill().unwrap();
                join(&c);
            }
        })
    };
    barrier.wait();
    for _ in 0..rounds {
        let c = Process::new("holds_nothing_foreign", ino).start().unwrap();
        assert_eq!(join(&c), ExitStatus::Exited(0));
    }
    giver.join().unwrap();
    drop(mine);
}

impl serde::Serialize for Unsendable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this handle cannot leave its process",
        ))
    }
}

struct Unsendable;

#[test]
fn an_argument_that_cannot_be_encoded_is_an_error() {
    init_test!(sleeps_on);
    let err = Process::new("sleeps_on", Unsendable).start().unwrap_err();
    // (postcard keeps no custom message: the error names the entry and the codec)
    assert!(
        matches!(err, conveyor_process::Error::Encode { ref entry, .. } if entry == "sleeps_on"),
        "{err}"
    );
}

/// A plain file (here an OS pipe's write end) travels the same way as a socket.
#[derive(serde::Serialize, serde::Deserialize)]
struct FileEnd(#[serde(with = "conveyor_core::handoff::fd")] std::fs::File);

/// Writes a greeting into the file; exits 0 only if the received descriptor is close-on-exec
/// again in the child, so that the child's own children would not inherit it.
fn writes_and_checks_cloexec(FileEnd(mut file): FileEnd) -> i32 {
    use std::io::Write;
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) };
    file.write_all(b"through an inherited pipe").unwrap();
    if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
        0
    } else {
        1
    }
}

#[test]
fn a_file_travels_and_is_close_on_exec_in_the_child() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    init_test!(writes_and_checks_cloexec);
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 succeeded; each descriptor is owned exactly once below.
    let (mut read, write) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let child = Process::new("writes_and_checks_cloexec", FileEnd(write))
        .start()
        .unwrap();
    assert_eq!(join(&child), ExitStatus::Exited(0));
    // The parent's copy went with the arguments and the child's with the child: end of file.
    let mut got = String::new();
    read.read_to_string(&mut got).unwrap();
    assert_eq!(got, "through an inherited pipe");
}
