//! The child's side of a launch: claim the payload and the status pipe, find the entry point,
//! decode its arguments, report, run it, report how it ended, exit.
//!
//! The payload's format is in `payload.rs`; the entry point is looked up in what
//! [`init`](crate::init) or [`init_test!`](crate::init_test!) was given, then in `registry.rs`
//! (entry points other tests registered, and those that library crates registered at link
//! time with [`register_entry!`](crate::register_entry!)).

use std::any::Any;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, ThreadId};

use crate::entry::Entry;
use crate::payload::{decode_payload, ENV_VAR, MEMFD_NAME};
use crate::registry;
use crate::status::{self, write_report, Report};
use crate::sys;

/// Who this process is, when it was started as a conveyor child.
#[derive(Debug)]
pub(crate) struct Current {
    pub name: String,
    pub entry: String,
    pub daemon: bool,
}

pub(crate) static CURRENT: OnceLock<Current> = OnceLock::new();

/// The pipe to the parent and the thread that runs the entry point (for the panic hook).
struct Reporter {
    pipe: Mutex<File>,
    entry_thread: ThreadId,
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

fn report(r: &Report) {
    if let Some(rep) = REPORTER.get() {
        // A parent that has gone away cannot be told anything; exiting is all that is left.
        let mut pipe = rep.pipe.lock().unwrap_or_else(|p| p.into_inner());
        let _ = write_report(&mut *pipe, r);
    }
}

fn exit(code: i32) -> ! {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    std::process::exit(code)
}

/// Whether this process was started as a conveyor child (and has not consumed that yet).
pub(crate) fn is_child() -> bool {
    std::env::var_os(ENV_VAR).is_some()
}

/// Runs the child's side of a launch with the entry points `entries`. Never returns.
pub(crate) fn run_child(entries: &[Entry]) -> ! {
    let value = std::env::var(ENV_VAR).unwrap_or_default();
    // The variable is consumed: grandchildren started with a plain Command must not take it
    // for their own. This runs first thing in main (or in the one test the child runs), before
    // the program starts threads of its own that could read the environment concurrently.
    std::env::remove_var(ENV_VAR);

    let (payload, status) = match claim_fds(&value) {
        Ok(p) => p,
        Err(message) => {
            // No pipe to report on: say it where a person will see it.
            eprintln!("conveyor-process: {ENV_VAR}={value:?} is not a valid launch: {message}");
            exit(status::LAUNCH_EXIT_CODE);
        }
    };
    let _ = sys::set_cloexec(status.as_fd(), true);
    let _ = REPORTER.set(Reporter {
        pipe: Mutex::new(File::from(status)),
        entry_thread: thread::current().id(),
    });

    let bytes = match read_payload(payload) {
        Ok(b) => b,
        Err(e) => {
            report(&Report::Launch(format!("reading the payload failed: {e}")));
            exit(status::LAUNCH_EXIT_CODE);
        }
    };
    let (header, args) = match decode_payload(&bytes) {
        Ok(h) => h,
        Err(message) => {
            report(&Report::Launch(message));
            exit(status::LAUNCH_EXIT_CODE);
        }
    };
    let fds = match claim_inherited(&header.fds) {
        Ok(fds) => fds,
        Err(message) => {
            report(&Report::Launch(message));
            exit(status::LAUNCH_EXIT_CODE);
        }
    };

    let Some(entry) = find(entries, &header.entry) else {
        let mut known: Vec<&str> = entries.iter().map(|e| e.name()).collect();
        known.extend(registry::known_names());
        known.sort_unstable();
        known.dedup();
        report(&Report::UnknownEntry(known.join(",")));
        exit(status::LAUNCH_EXIT_CODE);
    };
    // What main made before init, a child made again: it would never be dropped (the child
    // exits below, from inside init), and a shared-memory segment would stay in /dev/shm.
    // Refuse, and unwind main instead, which drops and removes it.
    let held = conveyor_core::held::list();
    if !held.is_empty() {
        report(&Report::InitTooLate(held.join("\n")));
        let message = format!(
            "conveyor-process: this child did not run entry point `{}`: main made [{}] before \
             calling conveyor_process::init; call init first in main",
            header.entry,
            held.join(", ")
        );
        eprintln!("{message}");
        // Stop reporting: the status pipe closes as the child exits.
        panic::resume_unwind(Box::new(message));
    }
    let _ = CURRENT.set(Current {
        name: header.name,
        entry: header.entry,
        daemon: header.daemon,
    });

    let call = match entry.prepare(args, fds) {
        Ok(call) => call,
        Err(message) => {
            report(&Report::BadArgs(message));
            exit(status::LAUNCH_EXIT_CODE);
        }
    };
    drop(bytes);
    report(&Report::Ready);

    install_panic_hook();
    let outcome = panic::catch_unwind(AssertUnwindSafe(call));
    // As a Python child does when its target returns: terminate the daemons it started, join
    // the others.
    crate::exit::finish_children();
    match outcome {
        Ok(Ok(code)) => {
            report(&Report::Ok);
            exit(code)
        }
        Ok(Err(message)) => {
            eprintln!("Error: {message}");
            report(&Report::Failed(message));
            exit(status::FAILURE_EXIT_CODE)
        }
        Err(payload) => {
            let message = PANIC_MESSAGE
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| panic_text(&*payload));
            report(&Report::Panicked(message));
            exit(status::PANIC_EXIT_CODE)
        }
    }
}

fn find(entries: &[Entry], name: &str) -> Option<Entry> {
    entries
        .iter()
        .find(|e| e.name() == name)
        .cloned()
        .or_else(|| registry::lookup(name))
}

/// Parses `"<payload fd>:<status fd>"` and takes ownership of both after checking that they
/// are what a parent would have left there.
fn claim_fds(value: &str) -> Result<(OwnedFd, OwnedFd), String> {
    let (p, s) = value
        .split_once(':')
        .ok_or("expected `<payload fd>:<status fd>`")?;
    let p: RawFd = p.parse().map_err(|_| "the payload fd is not a number")?;
    let s: RawFd = s.parse().map_err(|_| "the status fd is not a number")?;
    if p < 3 || s < 3 || p == s {
        return Err("the descriptor numbers cannot be a launch's".into());
    }
    // The payload must be our memory file: a stale variable inherited by some unrelated process
    // must not make us read from a descriptor that is someone else's pipe.
    let link = std::fs::read_link(format!("/proc/self/fd/{p}"))
        .map_err(|e| format!("the payload fd {p} is not open: {e}"))?;
    let want = format!("/memfd:{}", MEMFD_NAME.to_str().expect("ASCII name"));
    if !link.to_string_lossy().starts_with(&want) {
        return Err(format!(
            "fd {p} is {} and not a launch payload",
            link.display()
        ));
    }
    if !sys::fd_is_open(s) {
        return Err(format!("the status fd {s} is not open"));
    }
    // SAFETY: both descriptors are open (checked above) and were inherited for this launch
    // alone: the variable that names them is ours and is now removed, so nothing else in this
    // process claims them.
    Ok(unsafe { (OwnedFd::from_raw_fd(p), OwnedFd::from_raw_fd(s)) })
}

/// Maps the payload read-only: the arguments are decoded straight from the page cache, with no
/// copy into this process's heap first.
fn read_payload(fd: OwnedFd) -> io::Result<sys::Mapping> {
    sys::Mapping::of(fd.as_fd())
}

/// Takes ownership of the handed-off descriptors and makes them close-on-exec again, so that
/// this child's own children do not inherit them by accident.
fn claim_inherited(fds: &[RawFd]) -> Result<Vec<OwnedFd>, String> {
    let mut out = Vec::with_capacity(fds.len());
    for &fd in fds {
        if fd < 3
            || !sys::fd_is_open(fd)
            || out.iter().any(|o: &OwnedFd| {
                use std::os::fd::AsRawFd;
                o.as_raw_fd() == fd
            })
        {
            return Err(format!("handed-off descriptor {fd} was not inherited"));
        }
        // SAFETY: the descriptor is open (checked above), listed once, and was made
        // inheritable by the parent for this child only; nothing else here owns it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        sys::set_cloexec(owned.as_fd(), true).map_err(|e| e.to_string())?;
        out.push(owned);
    }
    Ok(out)
}

/// The message of the entry thread's last panic, recorded by the hook (which sees it even when
/// the panic strategy is abort).
static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

fn install_panic_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let on_entry_thread = REPORTER
            .get()
            .is_some_and(|r| r.entry_thread == thread::current().id());
        if on_entry_thread {
            let text = panic_text(info.payload());
            if cfg!(panic = "abort") {
                // There is no unwinding to come back from: report before the abort.
                report(&Report::Panicked(text.clone()));
            }
            *PANIC_MESSAGE.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_variable_is_refused() {
        assert!(claim_fds("garbage").is_err());
        assert!(claim_fds("1:2").is_err());
        // an open descriptor that is not a launch payload
        let f = File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        let n = f.as_raw_fd();
        let err = claim_fds(&format!("{n}:{}", n + 1)).unwrap_err();
        assert!(err.contains("not a launch payload"), "{err}");
    }
}
