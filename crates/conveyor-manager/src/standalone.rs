//! The standalone server: what `conveyor manager serve` and the `conveyor-manager serve`
//! binary run, one implementation behind both command lines.
//!
//! [`ServeArgs`] is the command line (clap), [`serve`] runs it: it blocks SIGINT and SIGTERM,
//! starts a server on the address given, prints `listening on ADDRESS` (with the port chosen,
//! for `tcp:HOST:0`) as its first line of output, and serves until a client asks it to shut
//! down ([`ManagerConnection::shutdown_server`](crate::ManagerConnection::shutdown_server)) or one of those signals
//! arrives; then it removes its Unix socket and returns.
//!
//! ```no_run
//! use clap::Parser;
//! use conveyor_manager::standalone::{serve, ServeArgs};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     serve: ServeArgs,
//! }
//!
//! let cli = Cli::parse();
//! if let Err(e) = serve(&cli.serve) {
//!     eprintln!("error: {e}");
//!     std::process::exit(1);
//! }
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::{Address, Manager, DEFAULT_MAX_FRAME};

/// The standalone server's command line: `--listen ADDR --authkey-file FILE
/// [--max-frame BYTES]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Where to listen: unix:/path/to.sock, /path/to.sock, tcp:HOST:PORT or HOST:PORT
    /// (port 0 picks a free port; the address is printed on start).
    #[arg(long, value_name = "ADDR")]
    pub listen: Address,
    /// The authkey clients must know: the file's bytes, without a final newline.
    #[arg(long, value_name = "FILE")]
    pub authkey_file: PathBuf,
    /// Refuse requests larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
}

/// Why the standalone server could not run.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The authkey file could not be read.
    #[error("cannot read the authkey file {path}: {source}")]
    AuthkeyFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The authkey file holds no key.
    #[error("the authkey file {0} is empty: write the key clients must know into it")]
    EmptyAuthkey(PathBuf),
    /// The server could not start (the address is taken, say).
    #[error("cannot start the server: {0}")]
    Start(#[source] crate::ManagerError),
}

conveyor_core::debug_shows_message!(ServeError {
    AuthkeyFile { path, source },
    EmptyAuthkey(path),
    Start(e),
});

/// Reads the authkey from `path`: its bytes without one final newline; refuses an empty key.
pub fn read_authkey(path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    let mut key = std::fs::read(path).map_err(|source| ServeError::AuthkeyFile {
        path: path.to_path_buf(),
        source,
    })?;
    if key.last() == Some(&b'\n') {
        key.pop();
    }
    if key.is_empty() {
        return Err(ServeError::EmptyAuthkey(path.to_path_buf()));
    }
    Ok(key)
}

/// Runs the standalone server of `args` until a client shuts it down or SIGINT or SIGTERM
/// arrives (see the [module docs](self)). Call it before starting any other thread: it
/// blocks those signals, and only threads started afterwards inherit that.
pub fn serve(args: &ServeArgs) -> Result<(), ServeError> {
    let authkey = read_authkey(&args.authkey_file)?;
    let wait_signal = block_stop_signals();
    let (server, _key) = Manager::builder()
        .address(args.listen.clone())
        .authkey(authkey)
        .max_frame(args.max_frame)
        .serve()
        .map_err(ServeError::Start)?;
    let mut out = std::io::stdout().lock();
    // A closed stdout does not stop the server: the line is for whoever reads it.
    let _ = writeln!(out, "listening on {}", server.address());
    let _ = out.flush();
    drop(out);
    let server = Arc::new(server);
    let s2 = server.clone();
    std::thread::spawn(move || {
        wait_signal();
        s2.request_shutdown();
    });
    server.wait();
    Ok(())
}

/// Blocks SIGINT and SIGTERM in this thread and those it starts later, and returns a function
/// that waits for one of them.
fn block_stop_signals() -> impl FnOnce() + Send + 'static {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; pthread_sigmask only reads
    // the set. Threads started after this call inherit the mask.
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
