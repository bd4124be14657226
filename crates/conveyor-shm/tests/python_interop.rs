//! `SharedMemory` against CPython's `multiprocessing.shared_memory.SharedMemory`, both ways:
//! a block Python creates opens in Rust by its name and the reverse, and the bytes are shared
//! live (each side sees the other's writes through the mapping it already holds). Also the
//! resource-tracker behaviour the crate documents: a Python program that opens a block without
//! unregistering it removes the name when it exits.
//!
//! Needs python3 (or `$CONVEYOR_PYTHON`); fails with a clear message where it is absent. The
//! two sides step each other with lines on the Python process's stdin and stdout.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use conveyor_shm::{shm_dir, SharedMemory, ShmError};

const WAIT: Duration = Duration::from_secs(60);

/// A Python process running `script`, stepped by lines.
struct Py {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Python's stderr, whole, once every process holding it has exited: the resource
    /// tracker (a process of its own, which unlinks what is left registered after the main
    /// process ends) inherits it, so its end means the tracker is done too.
    stderr: mpsc::Receiver<String>,
}

impl Py {
    fn start(script: &str, args: &[&str]) -> Py {
        let exe = std::env::var("CONVEYOR_PYTHON").unwrap_or_else(|_| "python3".to_string());
        let mut child = Command::new(&exe)
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "this interop test needs python3 (or $CONVEYOR_PYTHON) and `{exe}` could \
                     not be started: {e}"
                )
            });
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (etx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut all);
            let _ = etx.send(all);
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Py {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The next line Python prints.
    fn next(&mut self) -> String {
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(_) => {
                let _ = self.child.kill();
                panic!("python said nothing within {WAIT:?} (or exited); see its stderr above")
            }
        }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for Python (and its resource tracker) to exit and checks that it succeeded.
    fn finish(mut self) {
        drop(self.stdin);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(self.child.wait());
        });
        let status = rx.recv_timeout(WAIT).expect("python did not exit").unwrap();
        let stderr = self
            .stderr
            .recv_timeout(WAIT)
            .expect("python's resource tracker did not exit");
        eprint!("{stderr}");
        assert!(status.success(), "python failed: {status}\n{stderr}");
    }
}

fn unique(tag: &str) -> String {
    format!("cvtest_{tag}_{}", std::process::id())
}

/// Python creates, writes; Rust opens by the same name, checks, writes back; Python sees it
/// in its own mapping; then Python writes again and Rust sees that in its mapping.
#[test]
fn a_block_python_creates_opens_in_rust() {
    const SCRIPT: &str = r#"
import sys
from multiprocessing import shared_memory
name = sys.argv[1]
shm = shared_memory.SharedMemory(name=name, create=True, size=4099)
shm.buf[:11] = b"from python"
shm.buf[4098] = 0x5A
print(shm.name, shm.size, flush=True)
assert sys.stdin.readline().strip() == "wrote"
assert bytes(shm.buf[100:109]) == b"from rust", bytes(shm.buf[100:109])
shm.buf[200:204] = b"live"
print("again", flush=True)
assert sys.stdin.readline().strip() == "bye"
shm.close()
shm.unlink()
"#;
    let name = unique("pyfirst");
    let mut py = Py::start(SCRIPT, &[&name]);
    let first = py.next();
    assert_eq!(first, format!("{name} 4099"), "Python's name and size");
    let meta = std::fs::metadata(shm_dir().join(&name)).expect("Python's name is /dev/shm/<name>");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let block = SharedMemory::open(&name).unwrap();
    assert_eq!(block.size(), 4099, "the size is the file's, exactly");
    let mut head = [0u8; 11];
    block.read(0, &mut head).unwrap();
    assert_eq!(&head, b"from python");
    let mut last = [0u8; 1];
    block.read(4098, &mut last).unwrap();
    assert_eq!(last, [0x5A]);
    // Opening with a leading slash (Python's internal form) names the same block.
    let slashed = SharedMemory::open(&format!("/{name}")).unwrap();
    assert_eq!(slashed.name(), name);

    block.write(100, b"from rust").unwrap();
    py.say("wrote");
    assert_eq!(py.next(), "again");
    let mut live = [0u8; 4];
    block.read(200, &mut live).unwrap();
    assert_eq!(
        &live, b"live",
        "Python's write is seen through the mapping Rust holds"
    );
    py.say("bye");
    py.finish();
    // Python unlinked it: the name is gone, the mapping still works.
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotFound(_))
    ));
    block.write(0, b"still mapped").unwrap();
}

/// Rust creates, writes; Python opens by name (unregistering it from its resource tracker),
/// checks, writes back; Rust sees it live; the name survives Python's exit.
#[test]
fn a_block_rust_creates_opens_in_python() {
    const SCRIPT: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
name = sys.argv[1]
shm = shared_memory.SharedMemory(name=name)
# Python 3.8-3.12 track blocks they only open, and would unlink this one at exit.
resource_tracker.unregister(shm._name, "shared_memory")
assert shm.size == 10000, shm.size
assert bytes(shm.buf[:9]) == b"from rust", bytes(shm.buf[:9])
word = int.from_bytes(shm.buf[16:24], "little")
assert word == 41, word
shm.buf[16:24] = (word + 1).to_bytes(8, "little")
shm.buf[9990:10000] = b"0123456789"
print("wrote", flush=True)
assert sys.stdin.readline().strip() == "changed"
assert bytes(shm.buf[0:4]) == b"RUST", bytes(shm.buf[0:4])
shm.close()
print("closed", flush=True)
"#;
    let name = unique("rustfirst");
    let block = SharedMemory::create(&name, 10_000).unwrap();
    let mode = std::fs::metadata(block.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "created with Python's mode");
    block.unlink_on_drop();
    block.write(0, b"from rust").unwrap();
    block
        .atomic_u64(16)
        .unwrap()
        .store(41, std::sync::atomic::Ordering::SeqCst);
    let mut py = Py::start(SCRIPT, &[&name]);
    assert_eq!(py.next(), "wrote");
    assert_eq!(
        block
            .atomic_u64(16)
            .unwrap()
            .load(std::sync::atomic::Ordering::SeqCst),
        42
    );
    let mut tail = [0u8; 10];
    block.read(9990, &mut tail).unwrap();
    assert_eq!(&tail, b"0123456789");
    block.write(0, b"RUST").unwrap();
    py.say("changed");
    assert_eq!(py.next(), "closed");
    py.finish();
    // Unregistered, Python's tracker left the name alone.
    let again = SharedMemory::open(&name).unwrap();
    assert_eq!(again.size(), 10_000);
    drop(again);
    drop(block);
    // This process asked for removal when its last handle went.
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotFound(_))
    ));
}

/// What the crate's docs warn about: a Python program that only opens a block, without
/// unregistering it, has its resource tracker unlink the name when it exits.
#[test]
fn pythons_resource_tracker_unlinks_a_block_it_only_opened() {
    const SCRIPT: &str = r#"
import sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1])
assert shm.size == 64
shm.close()
print("opened", flush=True)
"#;
    let name = unique("tracked");
    let block = SharedMemory::create(&name, 64).unwrap();
    let mut py = Py::start(SCRIPT, &[&name]);
    assert_eq!(py.next(), "opened");
    py.finish();
    assert!(
        matches!(SharedMemory::open(&name), Err(ShmError::NotFound(_))),
        "Python's resource tracker was expected to unlink {name} (gh-82300)"
    );
    // The mapping this process holds keeps working.
    block.write(0, b"x").unwrap();
    assert!(matches!(block.unlink(), Err(ShmError::NotFound(_))));
}
