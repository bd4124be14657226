//! `conveyor-bench`: runs every workload over every transport and writes the report.
//! `cargo xtask bench` runs this binary in release mode; `--help` lists the options.

use std::process::ExitCode;

fn main() -> ExitCode {
    // First: in a child process this runs the producer/consumer/echo and exits.
    let _children = conveyor_bench::process::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    conveyor_bench::cli::main(&args)
}
