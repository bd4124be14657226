//! `conveyor-manager serve --listen ADDR --authkey-file FILE`: a standalone manager server.
//!
//! It serves until a client asks it to shut down (`Client::shutdown_server`) or it receives
//! SIGINT or SIGTERM, then removes its Unix socket and exits. It prints the address it
//! listens on (with the port chosen, for `tcp:HOST:0`) on its first line of output.

use std::process::ExitCode;
use std::sync::Arc;

use conveyor_manager::{Address, Manager, DEFAULT_MAX_FRAME};

const USAGE: &str = "\
usage: conveyor-manager serve --listen ADDR --authkey-file FILE [--max-frame BYTES]

  --listen ADDR        unix:/path/to.sock, /path/to.sock, tcp:HOST:PORT or HOST:PORT
                       (port 0 picks a free port; the address is printed on start)
  --authkey-file FILE  the authkey clients must know: the file's bytes, without a final
                       newline
  --max-frame BYTES    refuse requests larger than this (default 67108864)";

struct Options {
    listen: Address,
    authkey: Vec<u8>,
    max_frame: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown command {other:?}")),
    }
    let mut listen = None;
    let mut key_file = None;
    let mut max_frame = DEFAULT_MAX_FRAME;
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(value()?.parse::<Address>().map_err(|e| e.to_string())?),
            "--authkey-file" => key_file = Some(value()?),
            "--max-frame" => {
                max_frame = value()?
                    .parse()
                    .map_err(|_| "--max-frame takes a number of bytes".to_string())?
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let listen = listen.ok_or("--listen is required")?;
    let key_file = key_file.ok_or("--authkey-file is required")?;
    let mut authkey = std::fs::read(&key_file)
        .map_err(|e| format!("cannot read the authkey file {key_file}: {e}"))?;
    if authkey.last() == Some(&b'\n') {
        authkey.pop();
    }
    if authkey.is_empty() {
        return Err(format!("the authkey file {key_file} is empty"));
    }
    Ok(Options {
        listen,
        authkey,
        max_frame,
    })
}

/// Blocks SIGINT and SIGTERM in every thread (call before starting any) and returns a
/// function that waits for one of them.
fn block_stop_signals() -> impl FnOnce() + Send + 'static {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask only reads
    // the set. Called before any other thread exists, so every thread inherits the mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    move || {
        let mut sig = 0;
        // SAFETY: sigwait reads the set and writes the signal number into `sig`, both valid
        // for the call.
        unsafe {
            libc::sigwait(&set, &mut sig);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("conveyor-manager: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let wait_signal = block_stop_signals();
    let (server, _key) = match Manager::builder()
        .address(opts.listen)
        .authkey(opts.authkey)
        .max_frame(opts.max_frame)
        .serve()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conveyor-manager: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.address());
    let server = Arc::new(server);
    let s2 = server.clone();
    std::thread::spawn(move || {
        wait_signal();
        s2.request_shutdown();
    });
    server.wait();
    ExitCode::SUCCESS
}
