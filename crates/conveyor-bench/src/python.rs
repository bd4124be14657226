//! The Python originals, run through `python3` by the script shipped in this crate
//! (`python/conveyor_bench.py`), one run per process; the script prints a JSON [`Sample`].
//!
//! Where no Python interpreter is found, every Python transport reports itself unavailable and
//! the rest of the run goes on. `CONVEYOR_BENCH_PYTHON` names another interpreter.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::transport::{Family, Scope, Transport, TransportInfo};
use crate::workload::{RunError, Sample, Workload};

/// The script's text, embedded so the harness works from any directory.
pub const SCRIPT: &str = include_str!("../python/conveyor_bench.py");

/// How long one Python run may take before it is killed and reported as failed.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// A Python interpreter and the script, written out where it can run it.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    /// The interpreter, or why there is none.
    interpreter: Result<(PathBuf, String), String>,
    script: PathBuf,
}

impl PythonEnv {
    /// Finds `python3` (or `$CONVEYOR_BENCH_PYTHON`) and writes the script under `dir`.
    pub fn detect(dir: &Path) -> Self {
        let script = dir.join("conveyor_bench.py");
        let exe = std::env::var_os("CONVEYOR_BENCH_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("python3"));
        let interpreter = Self::find_interpreter(exe).and_then(|(exe, version)| {
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&script, SCRIPT))
                .map_err(|e| format!("could not write {}: {e}", script.display()))?;
            Ok((exe, version))
        });
        PythonEnv {
            interpreter,
            script,
        }
    }

    /// An environment without Python, saying `why`.
    pub fn absent(why: &str) -> Self {
        PythonEnv {
            interpreter: Err(why.to_string()),
            script: PathBuf::new(),
        }
    }

    fn find_interpreter(exe: PathBuf) -> Result<(PathBuf, String), String> {
        let out = Command::new(&exe)
            .args(["-c", "import sys; print(sys.version.split()[0])"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{} not found ({e}): Python rows skipped", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} does not run: Python rows skipped",
                exe.display()
            ));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((exe, version))
    }

    /// The interpreter's version (`3.11.7`), if there is one.
    pub fn version(&self) -> Option<&str> {
        self.interpreter.as_ref().ok().map(|(_, v)| v.as_str())
    }

    /// Why Python rows are skipped, if they are.
    pub fn unavailable(&self) -> Option<&str> {
        self.interpreter.as_ref().err().map(String::as_str)
    }

    fn run(&self, args: &[String]) -> Result<Sample, RunError> {
        let (exe, _) = self
            .interpreter
            .as_ref()
            .map_err(|e| RunError::new(e.clone()))?;
        let mut child = Command::new(exe)
            .arg(&self.script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| RunError::new(format!("could not start {}: {e}", exe.display())))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RunError::new(format!(
                        "python run took more than {} s and was killed",
                        RUN_LIMIT.as_secs()
                    )));
                }
                Err(e) => return Err(RunError::new(format!("waiting for python: {e}"))),
            }
        };
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            let last = err.lines().last().unwrap_or("").trim();
            return Err(RunError::new(format!("python failed ({status}): {last}")));
        }
        let line = out.lines().last().unwrap_or("");
        serde_json::from_str(line)
            .map_err(|e| RunError::new(format!("could not parse the python result {line:?}: {e}")))
    }
}

/// One Python original: `queue.Queue`, `multiprocessing.Pipe`, ...
#[derive(Debug)]
pub struct PythonTransport {
    info: TransportInfo,
    module_name: &'static str,
    env: Arc<PythonEnv>,
}

/// The Python originals: (name in the script, scope, runs the joinable workload, 1P/1C only,
/// has ping-pong).
const ORIGINALS: [(&str, Scope, bool, bool, bool); 8] = [
    ("queue.Queue", Scope::Thread, true, false, true),
    ("queue.LifoQueue", Scope::Thread, true, false, true),
    ("queue.PriorityQueue", Scope::Thread, true, false, true),
    ("multiprocessing.Queue", Scope::Process, false, false, true),
    (
        "multiprocessing.JoinableQueue",
        Scope::Process,
        true,
        false,
        true,
    ),
    ("multiprocessing.Pipe", Scope::Process, false, true, true),
    ("Manager().Queue", Scope::Process, true, false, true),
    ("Manager().dict", Scope::Process, false, false, false),
];

/// The table name of a Python original: `python queue.Queue`.
pub fn python_name(module_name: &str) -> String {
    format!("python {module_name}")
}

impl PythonTransport {
    /// Every Python original, sharing `env`.
    pub fn all(env: Arc<PythonEnv>) -> Vec<PythonTransport> {
        ORIGINALS
            .iter()
            .map(|&(module_name, scope, ..)| PythonTransport {
                info: TransportInfo::new(&python_name(module_name), scope, Family::Python, None),
                module_name,
                env: env.clone(),
            })
            .collect()
    }

    fn traits(&self) -> (bool, bool, bool) {
        ORIGINALS
            .iter()
            .find(|o| o.0 == self.module_name)
            .map(|o| (o.2, o.3, o.4))
            .unwrap_or((false, false, false))
    }
}

impl Transport for PythonTransport {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        let (joinable, one_to_one, pingpong) = self.traits();
        match *workload {
            Workload::PoolSubmit { .. } | Workload::PoolMap => Err("a queue, not a pool".into()),
            Workload::Throughput {
                producers,
                consumers,
                ..
            } if one_to_one && (producers, consumers) != (1, 1) => {
                Err("point-to-point: one sender, one receiver".into())
            }
            Workload::PingPong { .. } if !pingpong => Err("no ping-pong for a dict".into()),
            Workload::Joinable { .. } if !joinable => Err("no task_done/join".into()),
            _ => Ok(()),
        }
    }

    fn available(&self) -> Result<(), String> {
        match self.env.unavailable() {
            Some(why) => Err(why.to_string()),
            None => Ok(()),
        }
    }

    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError> {
        let cap = workload.capacity();
        let (kind, p, c) = match *workload {
            Workload::Throughput {
                producers,
                consumers,
                ..
            } => ("throughput", producers, consumers),
            Workload::PingPong { .. } => ("pingpong", 1, 1),
            Workload::Joinable { .. } => ("joinable", 1, 1),
            Workload::PoolSubmit { .. } | Workload::PoolMap => {
                return Err(RunError::new("a queue, not a pool"))
            }
        };
        let count = crate::workload::round_count(count, workload.granule());
        let args = [
            self.module_name.to_string(),
            kind.to_string(),
            p.to_string(),
            c.to_string(),
            workload.size().to_string(),
            cap.to_string(),
            count.to_string(),
        ];
        self.env.run(&args)
    }
}

/// A Python pool: `ThreadPoolExecutor`, `ProcessPoolExecutor`, `multiprocessing.Pool`,
/// running the pool workloads (see [`crate::pool`]).
#[derive(Debug)]
pub struct PythonPool {
    info: TransportInfo,
    module_name: &'static str,
    env: Arc<PythonEnv>,
}

/// The Python pools: (name in the script, scope).
const POOLS: [(&str, Scope); 3] = [
    ("ThreadPoolExecutor", Scope::Thread),
    ("ProcessPoolExecutor", Scope::Process),
    ("multiprocessing.Pool", Scope::Process),
];

impl PythonPool {
    /// Every Python pool, sharing `env`.
    pub fn all(env: Arc<PythonEnv>) -> Vec<PythonPool> {
        POOLS
            .iter()
            .map(|&(module_name, scope)| PythonPool {
                info: TransportInfo::new(&python_name(module_name), scope, Family::Python, None),
                module_name,
                env: env.clone(),
            })
            .collect()
    }
}

impl Transport for PythonPool {
    fn info(&self) -> &TransportInfo {
        &self.info
    }

    fn is_pool(&self) -> bool {
        true
    }

    fn supports(&self, workload: &Workload) -> Result<(), String> {
        if workload.is_pool() {
            Ok(())
        } else {
            Err("a pool, not a queue".into())
        }
    }

    fn available(&self) -> Result<(), String> {
        match self.env.unavailable() {
            Some(why) => Err(why.to_string()),
            None => Ok(()),
        }
    }

    fn run(&self, workload: &Workload, count: usize) -> Result<Sample, RunError> {
        let workers = match self.info.scope {
            Scope::Thread => crate::pool::THREAD_WORKERS,
            Scope::Process => crate::pool::process_workers(),
        };
        let (kind, submitters) = match *workload {
            Workload::PoolSubmit { submitters } => ("pool-submit", submitters),
            Workload::PoolMap => ("pool-map", 1),
            _ => return Err(RunError::new("a pool, not a queue")),
        };
        let count = crate::workload::round_count(count, workload.granule());
        let args = [
            self.module_name.to_string(),
            kind.to_string(),
            submitters.to_string(),
            workers.to_string(),
            "0".to_string(),
            workload.capacity().to_string(),
            count.to_string(),
        ];
        self.env.run(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_python_makes_rows_unavailable() {
        let env = Arc::new(PythonEnv::absent("python3 not found"));
        let all = PythonTransport::all(env);
        assert_eq!(all.len(), ORIGINALS.len());
        for t in &all {
            assert_eq!(t.available().unwrap_err(), "python3 not found");
            let err = t.run(&Workload::PingPong { size: 8 }, 10).unwrap_err();
            assert!(err.to_string().contains("not found"));
        }
    }

    #[test]
    fn a_missing_interpreter_is_reported_not_fatal() {
        let err = PythonEnv::find_interpreter(PathBuf::from("/nonexistent/python3")).unwrap_err();
        assert!(
            err.contains("not found") && err.contains("skipped"),
            "{err}"
        );
    }

    #[test]
    fn the_script_runs_every_original_where_python_is_installed() {
        let dir = std::env::temp_dir().join(format!("conveyor-bench-py-{}", std::process::id()));
        let env = Arc::new(PythonEnv::detect(&dir));
        if let Some(why) = env.unavailable() {
            // No interpreter here: the rows must say so rather than fail.
            assert!(why.contains("skipped"), "{why}");
            return;
        }
        let one = Workload::Throughput {
            producers: 1,
            consumers: 1,
            size: 64,
        };
        let mut ran = 0;
        for t in PythonTransport::all(env) {
            for w in [one, Workload::PingPong { size: 8 }] {
                if t.supports(&w).is_ok() {
                    let s = t
                        .run(&w, 100)
                        .unwrap_or_else(|e| panic!("{} {}: {e}", t.info().name, w.id()));
                    assert!(s.count() >= 100, "{} {}: {s:?}", t.info().name, w.id());
                    ran += 1;
                }
            }
        }
        // every original does 1P/1C throughput; all but the dict do ping-pong
        assert_eq!(ran, 15);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pipe_is_point_to_point_and_dict_has_no_pingpong() {
        let env = Arc::new(PythonEnv::absent("x"));
        let all = PythonTransport::all(env);
        let pipe = all
            .iter()
            .find(|t| t.module_name == "multiprocessing.Pipe")
            .unwrap();
        let four = Workload::Throughput {
            producers: 4,
            consumers: 4,
            size: 8,
        };
        assert!(pipe.supports(&four).is_err());
        let dict = all
            .iter()
            .find(|t| t.module_name == "Manager().dict")
            .unwrap();
        assert!(dict.supports(&Workload::PingPong { size: 8 }).is_err());
        assert!(dict.supports(&four).is_ok());
    }
}
