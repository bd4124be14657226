//! Honest answers when the server is gone: a queue proxy whose server was killed, whose
//! connection dropped, or whose server was restarted says so from every call (`len`, `join`,
//! `shutdown`, `put`, `get`, `task_done`), instead of answering `0`, "every task done" or
//! only logging. The servers are real processes (the `conveyor-manager` binary).

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use conveyor_core::{Channel, Joinable, QueueInfo, Unavailable};
use conveyor_manager::proxy::QueueProxy;
use conveyor_manager::{Address, ManagerConnection, ManagerError};

const KEY: &[u8] = b"gone";
/// How long a call that must fail at once may take before the test says it hung.
const PATIENCE: Duration = Duration::from_secs(30);

/// A temporary directory of this test's own, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("cm-gone-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("key"), KEY).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the server binary listening on `listen`; returns it once it says where it listens.
fn serve(listen: &str, dir: &Path) -> (Child, Address) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conveyor-manager"))
        .args(["serve", "--listen", listen, "--authkey-file"])
        .arg(dir.join("key"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

/// Runs `f` on a thread of its own (so on a connection of its own), failing the test if it
/// does not return within `PATIENCE`: a call on a dead server must fail, not hang.
fn on_own_thread<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{what} did not return within {PATIENCE:?}"))
}

/// Asserts that a queue call failed with an `Unavailable` that names the call, the queue and
/// the kind, keeps the manager's error as its source, and says what to do.
fn says_so<T: std::fmt::Debug>(
    what: &'static str,
    r: Result<T, Unavailable>,
    lost: bool,
) -> Unavailable {
    let e = match r {
        Ok(v) => panic!("{what} on a gone server answered {v:?}, as if all were well"),
        Err(e) => e,
    };
    assert_eq!(e.operation(), what, "{e}");
    assert!(e.channel().contains("`jobs`"), "{e}");
    if lost {
        assert!(e.is_lost(), "{what}: expected the queue lost, got {e:?}");
        assert!(e.to_string().contains("create or open it again"), "{e}");
    } else {
        assert!(
            e.is_unreachable(),
            "{what}: expected unreachable, got {e:?}"
        );
        assert!(
            e.to_string().contains("check that the server is running"),
            "{e}"
        );
    }
    assert!(
        e.source_ref().downcast_ref::<ManagerError>().is_some(),
        "{what}: the manager's error is the source: {e:?}"
    );
    e
}

/// Every call of a proxy whose server is gone (on this thread) says so. `lost`: the server
/// answers but no longer knows the queue (a restarted one), rather than not answering.
fn every_call_says_so(q: &QueueProxy<u64>, lost: bool) {
    says_so("len", q.len(), lost);
    says_so("is_empty", q.is_empty(), lost);
    says_so("is_full", q.is_full(), lost);
    says_so("capacity", q.capacity(), lost);
    says_so(
        "join_timeout",
        q.join_timeout(Duration::from_millis(10)),
        lost,
    );
    says_so("join", q.join(), lost);
    says_so("shutdown", q.shutdown(false), lost);
    let e = q.put(5).unwrap_err();
    assert!(e.is_io(), "{e:?}");
    assert!(e.to_string().contains("put on manager queue `jobs`"), "{e}");
    assert_eq!(e.into_inner(), 5, "the put hands the item back");
    let e = q.get_timeout(Duration::from_millis(10)).unwrap_err();
    assert!(e.is_io() && !e.is_timeout() && !e.is_closed(), "{e:?}");
    assert!(e.to_string().contains("get on manager queue `jobs`"), "{e}");
    let e = q.try_get().unwrap_err();
    assert!(e.is_io() && !e.is_empty(), "{e:?}");
    let e = q.task_done().unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

/// A queue `jobs` of capacity 4 with one item in it (a task outstanding), through a proxy
/// made on this thread.
fn jobs(addr: &Address) -> (ManagerConnection, QueueProxy<u64>) {
    let client = ManagerConnection::connect(addr, KEY).unwrap();
    let q = client.queue::<u64>("jobs", Some(4)).unwrap();
    q.put(1).unwrap();
    assert_eq!(q.len().unwrap(), 1);
    assert!(!q.join_timeout(Duration::ZERO).unwrap());
    (client, q)
}

#[test]
fn a_killed_server_is_reported_by_every_call() {
    let dir = Dir::new("killed");
    let sock = dir.0.join("m.sock");
    let (mut server, addr) = serve(&format!("unix:{}", sock.display()), &dir.0);
    let (_client, q) = jobs(&addr);
    server.kill().unwrap(); // SIGKILL: no goodbye to anyone
    server.wait().unwrap();
    every_call_says_so(&q, false);
    // On a thread with no connection yet: connecting fails, and says so.
    let q2 = q.clone();
    on_own_thread("len from a new thread", move || {
        says_so("len", q2.len(), false);
        says_so("join", q2.join(), false);
    });
    // close belongs to the proxy: it succeeds, and its puts then fail as closed.
    q.close().unwrap();
    assert!(q.put(2).unwrap_err().is_closed());
}

#[test]
fn a_join_blocked_when_the_server_is_killed_wakes_with_the_error() {
    let dir = Dir::new("join");
    let sock = dir.0.join("m.sock");
    let (mut server, addr) = serve(&format!("unix:{}", sock.display()), &dir.0);
    let (_client, q) = jobs(&addr);
    let (started, joined) = {
        let q = q.clone();
        let (stx, srx) = mpsc::channel();
        let (jtx, jrx) = mpsc::channel();
        thread::spawn(move || {
            // This thread's own connection, made before the join blocks on it, so that the
            // first time the thread sleeps after reporting is in the join's wait for the reply.
            assert!(!q.join_timeout(Duration::ZERO).unwrap());
            // SAFETY: gettid(2) takes no arguments and touches no memory.
            let tid = unsafe { libc::gettid() };
            stx.send(tid).unwrap();
            let _ = jtx.send(q.join());
        });
        (srx, jrx)
    };
    let tid = started.recv_timeout(PATIENCE).unwrap();
    until_asleep(tid);
    assert!(
        joined.try_recv().is_err(),
        "join returned with a task outstanding"
    );
    // The join is blocked on the server with a task outstanding: the server dies, and the
    // answer cannot be "done".
    server.kill().unwrap();
    server.wait().unwrap();
    let r = joined
        .recv_timeout(PATIENCE)
        .expect("the blocked join did not wake when the server died");
    says_so("join", r, false);
}

/// Waits until the thread `tid` of this process is asleep in the kernel (state `S` in
/// `/proc`), as a call blocked on the server is; fails the test after `PATIENCE`.
fn until_asleep(tid: libc::pid_t) {
    let path = format!("/proc/self/task/{tid}/stat");
    let start = std::time::Instant::now();
    loop {
        let stat = std::fs::read_to_string(&path).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('S') {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the joining thread never fell asleep (state {state:?})"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// A TCP forwarder between clients and a server, whose connections can be cut as a network
/// failure would, while the server lives on.
struct Forwarder {
    address: Address,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    cut: Arc<AtomicBool>,
}

impl Forwarder {
    fn new(upstream: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("tcp:{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let cut = Arc::new(AtomicBool::new(false));
        let (kept, is_cut) = (streams.clone(), cut.clone());
        thread::spawn(move || {
            for down in listener.incoming() {
                let Ok(down) = down else { return };
                // Once cut, a new connection is dropped at once, as a broken network would.
                if is_cut.load(Ordering::SeqCst) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(upstream) else {
                    return;
                };
                let mut all = kept.lock().unwrap();
                all.push(down.try_clone().unwrap());
                all.push(up.try_clone().unwrap());
                for (mut from, mut to) in [
                    (down.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up, down),
                ] {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Forwarder {
            address,
            streams,
            cut,
        }
    }

    /// Drops every forwarded connection, and every new one from now on.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn a_dropped_connection_is_reported_and_the_queue_is_untouched() {
    let dir = Dir::new("dropped");
    let (mut server, server_addr) = serve("tcp:127.0.0.1:0", &dir.0);
    let upstream: SocketAddr = server_addr
        .to_string()
        .strip_prefix("tcp:")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("a TCP address expected, got {server_addr}"));
    let forwarder = Forwarder::new(upstream);
    let (_client, q) = jobs(&forwarder.address);
    forwarder.cut();
    every_call_says_so(&q, false);
    // The server and the queue are fine: only the connection went. A direct client sees
    // the item that was put, and the task still outstanding.
    let direct = ManagerConnection::connect(&server_addr, KEY).unwrap();
    let same = direct.queue::<u64>("jobs", Some(4)).unwrap();
    assert_eq!(same.len().unwrap(), 1);
    assert!(!same.join_timeout(Duration::ZERO).unwrap());
    direct.shutdown_server().unwrap();
    assert!(server.wait().unwrap().success());
}

#[test]
fn a_restarted_server_is_reported_unreachable_then_lost() {
    let dir = Dir::new("restarted");
    let sock = dir.0.join("m.sock");
    let listen = format!("unix:{}", sock.display());
    let (mut server, addr) = serve(&listen, &dir.0);
    let (_client, q) = jobs(&addr);
    server.kill().unwrap();
    server.wait().unwrap();
    // A killed server leaves its socket file behind; the restart replaces it.
    let _ = std::fs::remove_file(&sock);
    let (mut again, addr2) = serve(&listen, &dir.0);
    assert_eq!(addr.to_string(), addr2.to_string());
    // This thread's connection was to the old server: it is gone, and the calls say so.
    every_call_says_so(&q, false);
    // A thread that connects now reaches the new server, which does not know the queue:
    // what it held is lost, and the calls say that instead of answering from nothing.
    let q2 = q.clone();
    on_own_thread("calls on the restarted server", move || {
        every_call_says_so(&q2, true)
    });
    ManagerConnection::connect(&addr2, KEY)
        .unwrap()
        .shutdown_server()
        .unwrap();
    assert!(again.wait().unwrap().success());
}
