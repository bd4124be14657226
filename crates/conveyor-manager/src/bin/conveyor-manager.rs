//! `conveyor-manager serve --listen ADDR --authkey-file FILE`: a standalone manager server.
//!
//! The same server as `conveyor manager serve` (the `conveyor` command, crate conveyor-cli):
//! both run [`conveyor_manager::standalone::serve`]. It serves until a client asks it to shut
//! down (`ManagerConnection::shutdown_server`) or it receives SIGINT or SIGTERM, then removes its Unix
//! socket and exits. It prints the address it listens on (with the port chosen, for
//! `tcp:HOST:0`) on its first line of output.

use std::process::ExitCode;

use clap::Parser;
use conveyor_manager::standalone::{serve, ServeArgs};

/// A standalone conveyor manager server.
#[derive(Debug, Parser)]
#[command(name = "conveyor-manager", version)]
enum Cli {
    /// Serve shared objects to clients that know the authkey.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let Cli::Serve(args) = Cli::parse();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conveyor-manager: {e}");
            ExitCode::FAILURE
        }
    }
}
