//! The command line of `conveyor-bench` (what `cargo xtask bench` runs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::machine::Machine;
use crate::python::PythonEnv;
use crate::report::{self, ResultsFile};
use crate::run::{self, Options, Progress, Status};
use crate::workload::Workload;

/// The usage text.
pub const USAGE: &str = "\
usage: conveyor-bench [--quick] [--filter TERMS]... [--reps N] [--out DIR] [--no-python] [--list]

  --quick         every transport once, briefly (a smoke test, under a minute); its report
                  goes to target/conveyor-bench/quick/, apart from the full run's
  --filter TERMS  comma-separated substrings: a term matching a transport's name, scope
                  (threads, processes) or family (conveyor, rust peer, python) keeps that
                  transport; one matching a workload id keeps that workload
                  (e.g. --filter pingpong,conveyor  or  --filter 'throughput-1x1,processes')
  --reps N        repetitions per case, interleaved across transports (default 5, quick 1)
  --out DIR       where report.md, results.json and the SVG charts go
                  (default target/conveyor-bench, or target/conveyor-bench/quick with --quick)
  --no-python     skip the Python originals
  --list          list the transports and workloads, and exit";

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `--quick`.
    pub quick: bool,
    /// `--filter`, each occurrence.
    pub filters: Vec<String>,
    /// `--reps`.
    pub reps: Option<usize>,
    /// `--out`.
    pub out: PathBuf,
    /// `--no-python`.
    pub no_python: bool,
    /// `--list`.
    pub list: bool,
}

/// Where the report goes without `--out`, relative to the working directory: a quick run's
/// under `quick/`, so that it never overwrites the last full report.
pub fn default_out(quick: bool) -> PathBuf {
    let full = PathBuf::from("target/conveyor-bench");
    if quick {
        full.join("quick")
    } else {
        full
    }
}

/// Parses the arguments (without the program name); `Err` carries the message to print.
pub fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = None;
    let mut a = Args {
        quick: false,
        filters: Vec::new(),
        reps: None,
        out: PathBuf::new(),
        no_python: false,
        list: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--filter" => a.filters.push(value("--filter")?),
            "--reps" => {
                let v = value("--reps")?;
                a.reps = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--reps takes a positive number, not {v:?}"))?,
                );
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--no-python" => a.no_python = true,
            "--list" => a.list = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => match other.strip_prefix("--filter=") {
                Some(f) => a.filters.push(f.to_string()),
                None => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            },
        }
    }
    a.out = out.unwrap_or_else(|| default_out(a.quick));
    Ok(a)
}

/// Runs the harness as the command line says; the exit code is non-zero if a run failed.
pub fn main(args: &[String]) -> ExitCode {
    let args = match parse(args) {
        Ok(a) => a,
        Err(msg) => {
            let help = args.iter().any(|a| a == "-h" || a == "--help");
            if help {
                println!("{msg}");
                return ExitCode::SUCCESS;
            }
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let python = Arc::new(if args.no_python {
        PythonEnv::absent("--no-python given")
    } else {
        PythonEnv::detect(&args.out.join("python"))
    });
    let all = crate::registry::transports(python.clone());
    let workloads = Workload::all();
    if args.list {
        println!("transports:");
        for t in &all {
            let i = t.info();
            let avail = t
                .available()
                .err()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default();
            println!(
                "  {:<38} {:<9} {}{avail}",
                i.name,
                i.scope.to_string(),
                i.family
            );
        }
        println!("workloads:");
        for w in &workloads {
            println!("  {:<22} {}", w.id(), w.title());
        }
        return ExitCode::SUCCESS;
    }
    let (transports, workloads) = match run::select(&all, &workloads, &args.filters) {
        Ok(sel) => sel,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    opts.filters = args.filters.clone();
    if let Some(r) = args.reps {
        opts.reps = r;
    }
    let machine = Machine::detect(python.version());
    let mut command = String::from("cargo xtask bench");
    if args.quick {
        command.push_str(" --quick");
    }
    for f in &args.filters {
        command.push_str(&format!(" --filter {f}"));
    }
    if let Some(r) = args.reps {
        command.push_str(&format!(" --reps {r}"));
    }
    let progress = Progress::new();
    progress.line(&format!("conveyor-bench on {}", machine.one_line()));
    if let Some(why) = python.unavailable() {
        progress.line(&format!("python originals skipped: {why}"));
    }
    progress.line(&format!(
        "{} transports x {} workloads, {} repetition(s) each, interleaved{}",
        transports.len(),
        workloads.len(),
        opts.reps,
        if opts.quick { " (quick)" } else { "" }
    ));
    let started = Instant::now();
    let results = run::run_all(&transports, &workloads, &opts, &progress);
    progress.line(&format!("done in {:.1} s", started.elapsed().as_secs_f64()));

    println!("{}", report::terminal_table(&workloads, &results));
    println!("machine: {}", machine.one_line());
    println!("{}", report::NOTES);

    let mut ok = true;
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("could not create {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let charts = match crate::chart::draw_all(&args.out, &results) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            ok = false;
            Vec::new()
        }
    };
    let md = report::markdown(&machine, &command, &workloads, &results, &charts);
    let rows = workloads
        .iter()
        .flat_map(|w| report::rows_for(w, &results))
        .collect();
    let file = ResultsFile {
        machine,
        command,
        reps: opts.reps,
        cases: results.clone(),
        rows,
    };
    let json =
        serde_json::to_string_pretty(&file).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    for (name, text) in [("report.md", md), ("results.json", json)] {
        let path = args.out.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("could not write {}: {e}", path.display());
            ok = false;
        }
    }
    println!(
        "wrote {}/report.md, results.json and {} chart(s)",
        args.out.display(),
        charts.len()
    );
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| match &r.status {
            Status::Failed(why) => {
                Some(format!("{} / {}: {why}", r.workload.id(), r.transport.name))
            }
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        eprintln!("{} run(s) failed:", failed.len());
        for f in &failed {
            eprintln!("  {f}");
        }
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_every_option() {
        let a = parse(&s(&[
            "--quick",
            "--filter",
            "flume",
            "--filter=pingpong",
            "--reps",
            "3",
            "--out",
            "/tmp/x",
            "--no-python",
        ]))
        .unwrap();
        assert!(a.quick && a.no_python && !a.list);
        assert_eq!(a.filters, s(&["flume", "pingpong"]));
        assert_eq!(a.reps, Some(3));
        assert_eq!(a.out, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn a_quick_run_writes_apart_from_the_full_report() {
        assert_eq!(
            parse(&[]).unwrap().out,
            PathBuf::from("target/conveyor-bench")
        );
        assert_eq!(
            parse(&s(&["--quick"])).unwrap().out,
            PathBuf::from("target/conveyor-bench/quick")
        );
        assert_ne!(default_out(true), default_out(false));
        // --out wins, in either order
        for args in [
            ["--quick", "--out", "/tmp/q"],
            ["--out", "/tmp/q", "--quick"],
        ] {
            assert_eq!(parse(&s(&args)).unwrap().out, PathBuf::from("/tmp/q"));
        }
        assert!(USAGE.contains("target/conveyor-bench/quick"));
    }

    #[test]
    fn bad_arguments_are_explained() {
        assert!(parse(&s(&["--reps", "0"]))
            .unwrap_err()
            .contains("positive"));
        assert!(parse(&s(&["--filter"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&s(&["--fast"]))
            .unwrap_err()
            .contains("unknown argument"));
    }
}
