//! The standalone server binary: start, serve a client, refuse a wrong key, shut down.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use conveyor_manager::{Address, ManagerConnection};

fn key_file(dir: &std::path::Path, key: &[u8]) -> std::path::PathBuf {
    let p = dir.join("key");
    std::fs::write(&p, key).unwrap();
    p
}

fn start(listen: &str, key: &std::path::Path) -> (std::process::Child, Address) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_conveyor-manager"))
        .args(["serve", "--listen", listen, "--authkey-file"])
        .arg(key)
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

#[test]
fn serve_over_tcp_then_shut_down_by_a_client() {
    let dir = std::env::temp_dir().join(format!("cm-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = key_file(&dir, b"s3cret\n");
    let (mut child, addr) = start("tcp:127.0.0.1:0", &key);
    // The final newline of the file is not part of the key.
    let c = ManagerConnection::connect(&addr, b"s3cret").unwrap();
    let d = c.dict::<String, u32>("d").unwrap();
    d.set(&"x".into(), &1).unwrap();
    assert_eq!(d.get(&"x".into()).unwrap(), Some(1));
    assert!(ManagerConnection::connect(&addr, b"wrong").is_err());
    c.shutdown_server().unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_on_a_unix_socket_and_stop_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("cm-bin-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = key_file(&dir, b"k");
    let sock = dir.join("m.sock");
    let (mut child, addr) = start(&format!("unix:{}", sock.display()), &key);
    assert_eq!(addr, Address::Unix(sock.clone()));
    ManagerConnection::connect(&addr, b"k")
        .unwrap()
        .ping()
        .unwrap();
    // SAFETY: kill(2) with a child's pid and a signal number touches no memory.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(child.wait().unwrap().success());
    assert!(!sock.exists(), "the socket file is removed at exit");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor-manager"))
        .args(["serve", "--listen", "tcp:nonsense", "--authkey-file", "k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'tcp:nonsense'") && err.contains("--listen"),
        "{err}"
    );
    // A missing option: clap's usage line.
    let out = Command::new(env!("CARGO_BIN_EXE_conveyor-manager"))
        .args(["serve", "--listen", "tcp:127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--authkey-file") && err.contains("Usage:"),
        "{err}"
    );
}

#[test]
fn an_unreadable_or_empty_key_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("cm-bin-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = key_file(&dir, b"\n");
    for (key, says) in [
        (empty.clone(), "is empty"),
        (dir.join("missing"), "cannot read the authkey file"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_conveyor-manager"))
            .args(["serve", "--listen", "tcp:127.0.0.1:0", "--authkey-file"])
            .arg(&key)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
