//! Real interop with CPython's `multiprocessing.connection` (the `python3` on this machine, or
//! `$CONVEYOR_PYTHON`): a Python `Client` talks to a Rust `Listener` and a Rust `Connector` to a
//! Python `Listener`, over TCP and Unix sockets, with an authkey, small and 1 MiB messages.
//!
//! These tests need python3: where it is absent they fail with a message saying so, rather
//! than passing silently.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use conveyor_pipe::{Address, ChallengeForm, ConnectError, Connection, Connector, Listener};

const WAIT: Duration = Duration::from_secs(60);

fn python() -> Command {
    let exe = std::env::var("CONVEYOR_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let probe = Command::new(&exe)
        .args(["-c", "import multiprocessing.connection"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{exe} cannot import multiprocessing.connection: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "this interop test needs python3 (or $CONVEYOR_PYTHON) to run CPython's \
             multiprocessing.connection, and `{exe}` could not be started: {e}"
        ),
    }
    Command::new(exe)
}

/// Python helpers shared by the scripts: the address format and the test payloads.
const PRELUDE: &str = r#"
import sys
from multiprocessing.connection import Client, Listener
def parse(a):
    if '/' not in a and ':' in a:
        h, p = a.rsplit(':', 1)
        return (h, int(p))
    return a
def payload(n):
    return bytes(i % 251 for i in range(n))
SIZES = (0, 1, 5, 16385, 1 << 20)
"#;

const PY_CLIENT: &str = r#"
c = Client(parse(sys.argv[1]), authkey=sys.argv[2].encode())
for n in SIZES:
    m = payload(n)
    c.send_bytes(m)
    back = c.recv_bytes()
    assert back == m[::-1], ('echo mismatch', n, len(back))
c.send_bytes(b'bye')
print('python client ok', flush=True)
"#;

const PY_LISTENER: &str = r#"
a = sys.argv[1]
l = Listener(parse(a) if a != '-' else ('127.0.0.1', 0), authkey=sys.argv[2].encode())
addr = l.address
print(addr if isinstance(addr, str) else '%s:%d' % addr, flush=True)
c = l.accept()
while True:
    m = c.recv_bytes()
    if m == b'bye':
        break
    c.send_bytes(m[::-1])
c.close()
print('python listener ok', flush=True)
"#;

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

const SIZES: [usize; 5] = [0, 1, 5, 16385, 1 << 20];

fn spawn_py(script: &str, args: &[&str]) -> Child {
    python()
        .arg("-c")
        .arg(format!("{PRELUDE}{script}"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3")
}

/// Waits for the child, at most `WAIT`; returns (success, stdout, stderr).
fn finish(child: Child) -> (bool, String, String) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(WAIT)
        .expect("python did not finish in time")
        .expect("wait for python");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Serves the reverse-echo protocol on `conn` until `bye`.
fn serve_reverse(conn: &Connection) {
    loop {
        let m = conn.recv_bytes().unwrap();
        if m == b"bye" {
            break;
        }
        let mut r = m;
        r.reverse();
        conn.send_bytes(&r).unwrap();
    }
}

/// Runs the reverse-echo protocol as the client side on `conn`.
fn drive_reverse(conn: &Connection) {
    for n in SIZES {
        let m = payload(n);
        conn.send_bytes(&m).unwrap();
        let mut back = conn.recv_bytes().unwrap();
        back.reverse();
        assert_eq!(back, m, "size {n}");
    }
    conn.send_bytes(b"bye").unwrap();
}

fn python_client_against(listener: Listener) {
    let child = spawn_py(PY_CLIENT, &[&listener.address().to_string(), "s3cret"]);
    let conn = listener.accept().expect("a Python client authenticates");
    serve_reverse(&conn);
    let (ok, out, err) = finish(child);
    assert!(ok, "python failed:\n{out}\n{err}");
    assert!(out.contains("python client ok"), "{out}\n{err}");
}

#[test]
fn python_client_to_rust_listener_tcp_default_form() {
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), Some(b"s3cret")).unwrap();
    python_client_against(listener);
}

#[test]
fn python_client_to_rust_listener_unix_legacy_form() {
    let listener = Listener::builder()
        .authkey(b"s3cret")
        .challenge_form(ChallengeForm::LegacyMd5)
        .bind_private()
        .unwrap();
    python_client_against(listener);
}

fn rust_client_against_python_listener(address: &str, client: Connector) {
    let mut child = spawn_py(PY_LISTENER, &[address, "s3cret"]);
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = Address::parse(line.trim());
    let conn = client
        .connect(&address)
        .expect("authenticate with Python's Listener");
    drive_reverse(&conn);
    let (ok, out, err) = finish(child);
    assert!(ok, "python failed:\n{out}\n{err}");
    assert!(out.contains("python listener ok"), "{out}\n{err}");
}

#[test]
fn rust_client_to_python_listener_tcp() {
    rust_client_against_python_listener("-", Connector::new().authkey(b"s3cret"));
}

#[test]
fn rust_client_to_python_listener_unix_legacy_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("py.sock");
    rust_client_against_python_listener(
        path.to_str().unwrap(),
        Connector::new()
            .authkey(b"s3cret")
            .challenge_form(ChallengeForm::LegacyMd5),
    );
}

#[test]
fn wrong_key_fails_on_both_sides_with_python() {
    // Python client, Rust listener.
    let listener = Listener::bind(&"127.0.0.1:0".parse().unwrap(), Some(b"right")).unwrap();
    let child = spawn_py(PY_CLIENT, &[&listener.address().to_string(), "wrong"]);
    let e = listener.accept().unwrap_err();
    assert!(e.is_authentication(), "{e}");
    let (ok, out, err) = finish(child);
    assert!(!ok, "python should have failed:\n{out}");
    assert!(err.contains("AuthenticationError"), "{err}");

    // Rust client, Python listener.
    let mut child = spawn_py(PY_LISTENER, &["-", "right"]);
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let e = Connector::new()
        .authkey(b"wrong")
        .connect(&Address::parse(line.trim()))
        .unwrap_err();
    assert!(matches!(e, ConnectError::Authentication(_)), "{e}");
    let (ok, _, err) = finish(child);
    assert!(!ok);
    assert!(err.contains("AuthenticationError"), "{err}");
}

#[test]
fn python_version_is_reported() {
    // Not an interop check by itself: it makes the Python in use visible in the test log.
    let out = python().arg("--version").output().unwrap();
    let v =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(v.starts_with("Python 3"), "{v}");
    println!("interop tests ran against {}", v.trim());
}
