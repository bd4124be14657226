//! `conveyor`: the command-line tool of the conveyor workspace.
//!
//! Pick it to see and tidy what conveyor programs leave in shared memory, or to run a
//! standalone manager server; the libraries do the rest. Install it with
//! `cargo install --path crates/conveyor-cli`.
//!
//! ```text
//! conveyor shm list [--json]          every conveyor segment: kind, size, processes, age, leaked
//! conveyor shm inspect NAME [--json]  one segment's header: a queue's capacity, items, closed...
//! conveyor shm rm NAME...             remove segments by name (in use or not)
//! conveyor shm clean [--dry-run]      remove only what is leaked (every user is dead)
//! conveyor manager serve --listen ADDR --authkey-file FILE [--max-frame BYTES]
//! conveyor completions bash|zsh|fish|elvish|powershell
//! ```
//!
//! The segments are those of `conveyor_shm::list_segments`, in `/dev/shm` unless
//! `$CONVEYOR_SHM_DIR` says otherwise: queues, locks, values, arrays, their out-of-line
//! message files, and the `SharedMemory` blocks conveyor created (listed as `/NAME`).
//! `manager serve` runs `conveyor_manager::standalone::serve`, as the `conveyor-manager`
//! binary does. Exit status: 0 on success, 1 when an operation failed, 2 for a usage error.

mod shm;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use conveyor_manager::standalone::ServeArgs;

/// See and tidy conveyor's shared-memory segments; run a manager server.
#[derive(Debug, Parser)]
#[command(name = "conveyor", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Shared-memory segments: queues, locks, values, arrays, shared-memory blocks.
    #[command(subcommand)]
    Shm(shm::ShmCommand),
    /// The manager server.
    #[command(subcommand)]
    Manager(ManagerCommand),
    /// Prints a shell completion script (for example `conveyor completions bash >
    /// ~/.local/share/bash-completion/completions/conveyor`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum ManagerCommand {
    /// Serves shared objects to clients that know the authkey, until a client shuts it down
    /// or SIGINT/SIGTERM arrives. Prints `listening on ADDRESS` first.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Shm(cmd) => shm::run(cmd),
        Command::Manager(ManagerCommand::Serve(args)) => {
            match conveyor_manager::standalone::serve(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("conveyor: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "conveyor",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
