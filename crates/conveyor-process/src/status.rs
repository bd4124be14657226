//! How a child ended ([`ExitStatus`]), and the small report protocol on the status pipe that
//! lets the parent tell a panic or an undecodable argument from a plain exit code.
//!
//! The child writes records `[tag: u8][len: u32 little endian][len bytes of UTF-8]` to a pipe
//! whose read end only the parent holds:
//!
//! | tag | sent when                                     | text            |
//! |-----|-----------------------------------------------|-----------------|
//! | 1   | the arguments decoded; the entry starts now   | empty           |
//! | 2   | the entry returned success                    | empty           |
//! | 3   | the entry returned an error                   | the error       |
//! | 4   | the entry panicked                            | panic message   |
//! | 5   | no entry by that name is registered           | known names     |
//! | 6   | the arguments did not decode                  | decoder message |
//! | 7   | the launch payload itself was unreadable      | what went wrong |
//!
//! Texts are cut to [`MAX_TEXT`] bytes so that a final record always fits in the pipe's buffer
//! and the child never blocks on it while the parent is waiting for it to exit.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::sys;

/// How a child process ended.
///
/// ```
/// use conveyor_process::ExitStatus;
///
/// assert!(ExitStatus::Exited(0).success());
/// assert_eq!(ExitStatus::Signaled(9).code(), -9); // Python's exitcode for a killed process
/// let panicked = ExitStatus::Panicked("index out of bounds".into());
/// assert!(!panicked.success());
/// assert_eq!(panicked.panic_message(), Some("index out of bounds"));
/// assert_eq!(ExitStatus::Signaled(9).to_string(), "killed by signal 9 (SIGKILL)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// The process exited with this code: 0 when the entry point returned `()` or `Ok`, the
    /// entry's own code when it returned an `i32`, or whatever it passed to
    /// `std::process::exit`.
    Exited(i32),
    /// The process was killed by this signal (`terminate` sends SIGTERM, 15; `kill` and a
    /// daemon's dying parent SIGKILL, 9).
    Signaled(i32),
    /// The entry point panicked; this is the panic message. The process exited with code 101.
    Panicked(String),
    /// The entry point returned `Err(e)`; this is `format!("{e:?}")`, as a `main` returning an
    /// error prints it. The process exited with code 1.
    Failed(String),
}

impl ExitStatus {
    /// Whether the child ended well: exit code 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Exited(0))
    }

    /// Python's `Process.exitcode`: the exit code, or minus the signal number for a process
    /// killed by a signal; 101 for a panic and 1 for an entry that returned an error.
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(c) => *c,
            ExitStatus::Signaled(s) => -s,
            ExitStatus::Panicked(_) => PANIC_EXIT_CODE,
            ExitStatus::Failed(_) => FAILURE_EXIT_CODE,
        }
    }

    /// The signal that killed the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(s) => Some(*s),
            _ => None,
        }
    }

    /// The panic message, if the entry point panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            ExitStatus::Panicked(m) => Some(m),
            _ => None,
        }
    }

    pub(crate) fn from_std(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => ExitStatus::Exited(c),
            (None, Some(s)) => ExitStatus::Signaled(s),
            // stopped/continued are not reported by wait(); treat anything else as a failure
            (None, None) => ExitStatus::Exited(status.into_raw()),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signaled(s) => match sys::signal_name(*s) {
                Some(name) => write!(f, "killed by signal {s} ({name})"),
                None => write!(f, "killed by signal {s}"),
            },
            ExitStatus::Panicked(m) => write!(f, "panicked: {m}"),
            ExitStatus::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// The exit code of a child whose entry point panicked (as a Rust `main` that panics).
pub(crate) const PANIC_EXIT_CODE: i32 = 101;
/// The exit code of a child whose entry point returned an error (as a Rust `main`).
pub(crate) const FAILURE_EXIT_CODE: i32 = 1;
/// The exit code of a child that could not start its entry point (unknown name, bad
/// arguments, unreadable payload).
pub(crate) const LAUNCH_EXIT_CODE: i32 = 2;

/// The longest text a record carries; longer texts are cut at a character boundary.
pub(crate) const MAX_TEXT: usize = 16 * 1024;

/// One record of the report protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    Ready,
    Ok,
    Failed(String),
    Panicked(String),
    UnknownEntry(String),
    BadArgs(String),
    Launch(String),
    /// The child's main made what `conveyor_core::held` lists before `init`: one per line.
    InitTooLate(String),
}

impl Report {
    fn tag_and_text(&self) -> (u8, &str) {
        match self {
            Report::Ready => (1, ""),
            Report::Ok => (2, ""),
            Report::Failed(t) => (3, t),
            Report::Panicked(t) => (4, t),
            Report::UnknownEntry(t) => (5, t),
            Report::BadArgs(t) => (6, t),
            Report::Launch(t) => (7, t),
            Report::InitTooLate(t) => (8, t),
        }
    }

    fn from_parts(tag: u8, text: String) -> Option<Report> {
        Some(match tag {
            1 => Report::Ready,
            2 => Report::Ok,
            3 => Report::Failed(text),
            4 => Report::Panicked(text),
            5 => Report::UnknownEntry(text),
            6 => Report::BadArgs(text),
            7 => Report::Launch(text),
            8 => Report::InitTooLate(text),
            _ => return None,
        })
    }

    /// Encodes the record, cutting its text to [`MAX_TEXT`] bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let (tag, text) = self.tag_and_text();
        let mut end = text.len().min(MAX_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let text = &text[..end];
        let mut out = Vec::with_capacity(5 + text.len());
        out.push(tag);
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }
}

/// Writes one record to the status pipe (child side).
pub(crate) fn write_report(pipe: &mut impl Write, report: &Report) -> io::Result<()> {
    pipe.write_all(&report.encode())
}

/// What the parent reads from the status pipe.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read1 {
    Report(Report),
    /// The write end is closed: the child (and anything it shared the pipe with) is gone.
    Eof,
    TimedOut,
}

/// The parent's end of the status pipe, with the bytes of a record not yet complete.
#[derive(Debug)]
pub(crate) struct ReportReader {
    fd: std::fs::File,
    buf: Vec<u8>,
    eof: bool,
}

impl ReportReader {
    pub(crate) fn new(fd: OwnedFd) -> Self {
        ReportReader {
            fd: fd.into(),
            buf: Vec::new(),
            eof: false,
        }
    }

    fn parse(&mut self) -> io::Result<Option<Report>> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[1..5].try_into().expect("4 bytes")) as usize;
        if len > MAX_TEXT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("status record of {len} bytes is longer than any the child sends"),
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let tag = self.buf[0];
        let text = String::from_utf8_lossy(&self.buf[5..5 + len]).into_owned();
        self.buf.drain(..5 + len);
        Report::from_parts(tag, text).map(Some).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown status record tag {tag}: are parent and child the same build?"),
            )
        })
    }

    /// Reads the next record, waiting at most `timeout` (`None`: until one comes or EOF).
    pub(crate) fn next(&mut self, timeout: Option<Duration>) -> io::Result<Read1> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if let Some(r) = self.parse()? {
                return Ok(Read1::Report(r));
            }
            if self.eof {
                return Ok(Read1::Eof);
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if !sys::wait_readable(self.fd.as_fd(), left)? {
                return Ok(Read1::TimedOut);
            }
            self.fill()?;
        }
    }

    /// Reads what is in the pipe now without waiting, and returns every complete record.
    pub(crate) fn drain_now(&mut self) -> io::Result<Vec<Report>> {
        sys::set_nonblocking(self.fd.as_fd(), true)?;
        let mut out = Vec::new();
        loop {
            if let Some(r) = self.parse()? {
                out.push(r);
                continue;
            }
            if self.eof {
                break;
            }
            match self.fill() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One read into the buffer; sets `eof` at end of file.
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.fd.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_pipe() {
        let (r, w) = sys::pipe().unwrap();
        let mut w = std::fs::File::from(w);
        let mut reader = ReportReader::new(r);
        write_report(&mut w, &Report::Ready).unwrap();
        write_report(&mut w, &Report::Panicked("boom ü".into())).unwrap();
        assert_eq!(
            reader.next(Some(Duration::from_secs(5))).unwrap(),
            Read1::Report(Report::Ready)
        );
        drop(w);
        assert_eq!(
            reader.drain_now().unwrap(),
            vec![Report::Panicked("boom ü".into())]
        );
        assert_eq!(reader.next(None).unwrap(), Read1::Eof);
    }

    #[test]
    fn long_texts_are_cut_at_a_char_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let bytes = Report::Failed(text).encode();
        let len = u32::from_le_bytes(bytes[1..5].try_into().unwrap()) as usize;
        assert!(len <= MAX_TEXT);
        assert!(std::str::from_utf8(&bytes[5..]).is_ok());
    }

    #[test]
    fn timeout_when_nothing_comes() {
        let (r, _w) = sys::pipe().unwrap();
        let mut reader = ReportReader::new(r);
        assert_eq!(
            reader.next(Some(Duration::from_millis(10))).unwrap(),
            Read1::TimedOut
        );
    }
}
