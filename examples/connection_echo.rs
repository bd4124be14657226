//! An echo server and client speaking Python's `multiprocessing.connection` wire.
//!
//! ```text
//! connection_echo --listen ADDR  [--authkey KEY] [--max-clients N]
//! connection_echo --connect ADDR [--authkey KEY]
//! ```
//!
//! `ADDR` is `host:port` for TCP or a filesystem path for a Unix socket.
//!
//! - `--listen`: echoes every message (`recv_bytes`, then `send_bytes` of the same bytes)
//!   back to its sender until that sender closes. Any number of clients are served at once, each
//!   on its own thread (its handshake too, so a silent client holds up nobody), until the
//!   server is stopped (Ctrl-C), or after `--max-clients` clients have come and gone.
//! - `--connect`: sends each line read from standard input and prints the echo.
//!
//! The peer may be Python: `examples/connection_echo_client.py` drives a listener with
//! `multiprocessing.connection.Client`.
//!
//! ```text
//! cargo run -p conveyor --no-default-features --features pipe --example connection_echo -- \
//!     --listen 127.0.0.1:6000 --authkey secret
//! python3 examples/connection_echo_client.py 127.0.0.1:6000 secret
//! echo hello | cargo run -p conveyor --no-default-features --features pipe \
//!     --example connection_echo -- --connect 127.0.0.1:6000 --authkey secret
//! ```

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use conveyor::pipe::{Address, Connection, Connector, Listener};

struct Args {
    listen: Option<Address>,
    connect: Option<Address>,
    authkey: Option<String>,
    max_clients: Option<usize>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: connection_echo --listen ADDR [--authkey KEY] [--max-clients N]\n       \
         connection_echo --connect ADDR [--authkey KEY]\n\
         ADDR is host:port (TCP) or a path (Unix socket)"
    );
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut args = Args {
        listen: None,
        connect: None,
        authkey: None,
        max_clients: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next()?;
        match flag.as_str() {
            "--listen" => args.listen = Some(Address::parse(&value)),
            "--connect" => args.connect = Some(Address::parse(&value)),
            "--authkey" => args.authkey = Some(value),
            "--max-clients" => args.max_clients = Some(value.parse().ok()?),
            _ => return None,
        }
    }
    if args.listen.is_some() == args.connect.is_some() {
        return None;
    }
    Some(args)
}

/// Echoes every message back until the peer closes; returns how many were echoed.
fn echo(conn: &Connection) -> Result<u64, String> {
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        match conn.recv_bytes_into(&mut buf) {
            Ok(_) => {
                conn.send_bytes(&buf).map_err(|e| e.to_string())?;
                n += 1;
            }
            Err(e) if e.is_closed() => return Ok(n),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn serve(address: Address, authkey: Option<String>, max_clients: Option<usize>) -> ExitCode {
    let mut builder = Listener::builder();
    if let Some(k) = &authkey {
        builder = builder.authkey(k);
    }
    let listener = match builder.bind(&address) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C: remove the socket file (the listener's drop would, but it does not run on a
    // signal) and stop.
    if let Address::Unix(path) = listener.address().clone() {
        let _ = ctrlc::set_handler(move || {
            let _ = std::fs::remove_file(&path);
            std::process::exit(0);
        });
    }
    println!("listening on {}", listener.address());
    let finished = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    let mut accepted = 0;
    while max_clients.map_or(true, |m| accepted < m) {
        let pending = match listener.accept_pending() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        accepted += 1;
        let finished = Arc::clone(&finished);
        workers.push(std::thread::spawn(move || {
            let peer = pending.peer().to_string();
            match pending.authenticate() {
                Ok(conn) => match echo(&conn) {
                    Ok(n) => println!("client {peer}: echoed {n} messages, closed"),
                    Err(e) => eprintln!("client {peer}: {e}"),
                },
                Err(e) => eprintln!("client {peer}: handshake failed: {e}"),
            }
            finished.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    println!("served {} clients", finished.load(Ordering::Relaxed));
    ExitCode::SUCCESS
}

fn connect(address: Address, authkey: Option<String>) -> ExitCode {
    let mut client = Connector::new();
    if let Some(k) = &authkey {
        client = client.authkey(k);
    }
    let conn = match client.connect(&address) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot connect to {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Err(e) = conn.send_bytes(line.as_bytes()) {
            eprintln!("send: {e}");
            return ExitCode::FAILURE;
        }
        match conn.recv_bytes() {
            Ok(back) => println!("{}", String::from_utf8_lossy(&back)),
            Err(e) => {
                eprintln!("recv: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    conn.close();
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    match (args.listen, args.connect) {
        (Some(a), None) => serve(a, args.authkey, args.max_clients),
        (None, Some(a)) => connect(a, args.authkey),
        _ => usage(),
    }
}
