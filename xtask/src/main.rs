//! Project chores: `cargo xtask bench` runs conveyor's benchmark harness.
//!
//! `bench` builds and runs the `conveyor-bench` binary in release mode (the figures mean
//! nothing in a debug build), with the output under the workspace's `target/conveyor-bench/`
//! (a `--quick` run's under `target/conveyor-bench/quick/`, so that it never overwrites the
//! last full report).
//! Every other argument goes to the harness: `--quick`, `--filter TERMS`, `--reps N`,
//! `--no-python`, `--list` (see `cargo xtask bench --help`). `criterion` runs the criterion
//! micro-benchmarks of the facade package instead.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--filter TERMS]... [--reps N] [--no-python] [--list]
       cargo xtask criterion [FILTER]

  bench      the harness: every transport against the Rust peers and the Python originals;
             prints a table and writes target/conveyor-bench/{report.md,results.json,*.svg}
             (--quick: under target/conveyor-bench/quick/, apart from the full report)
  criterion  the criterion micro-benchmarks in benches/ (cost per operation)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("criterion") => criterion(&args[1..]),
        Some("-h") | Some("--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The workspace root: xtask's manifest directory is `<root>/xtask`.
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn status_code(what: &str, cmd: &mut Command) -> ExitCode {
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("could not run {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> ExitCode {
    let has_out = args.iter().any(|a| a == "--out");
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "--package",
        "conveyor-bench",
        "--",
    ]);
    cmd.args(args);
    if !has_out {
        // Always the workspace's target/, whatever CARGO_TARGET_DIR says about build output.
        cmd.arg("--out").arg(out_dir(&workspace_root(), args));
    }
    status_code("the conveyor-bench harness", &mut cmd)
}

/// Where the harness writes its report: a quick run's apart from the full run's.
fn out_dir(root: &std::path::Path, args: &[String]) -> PathBuf {
    let full = root.join("target").join("conveyor-bench");
    if args.iter().any(|a| a == "--quick") {
        full.join("quick")
    } else {
        full
    }
}

fn criterion(args: &[String]) -> ExitCode {
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "conveyor", "--benches", "--"]);
    cmd.args(args);
    status_code("cargo bench", &mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_run_writes_apart_from_the_full_report() {
        let root = std::path::Path::new("/w");
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            out_dir(root, &args(&["--filter", "shm"])),
            PathBuf::from("/w/target/conveyor-bench")
        );
        assert_eq!(
            out_dir(root, &args(&["--no-python", "--quick"])),
            PathBuf::from("/w/target/conveyor-bench/quick")
        );
    }
}
