//! What this process holds that outlives it unless dropped: shared-memory segments
//! (`conveyor-shm`), the Unix socket files of listeners (`conveyor-pipe`).
//!
//! A transport whose handle leaves something in the system when the process ends without
//! dropping it (a segment under `/dev/shm` that the last handle unlinks) keeps a [`Held`]
//! beside it for as long as the handle lives. `conveyor-process` reads the list when a child
//! reaches `init`: anything held then was made by the code of `main` that runs before `init`,
//! which a child runs again and would never drop (it exits from inside `init`), so it refuses
//! to run the entry point and says what was made, instead of leaking it on every run.
//!
//! ```
//! use conveyor_core::held::{self, Held};
//!
//! let before = held::list().len();
//! let token = Held::new("shared-memory queue `/dev/shm/conveyor-jobs`");
//! assert_eq!(held::list().len(), before + 1);
//! drop(token);
//! assert_eq!(held::list().len(), before);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn table() -> MutexGuard<'static, Vec<(u64, String)>> {
    static TABLE: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// One thing this process holds, listed by [`list`] until the `Held` is dropped.
#[derive(Debug)]
pub struct Held {
    id: u64,
}

impl Held {
    /// Lists `what` (a description a person can act on: the kind and where it lives) until the
    /// returned value is dropped.
    pub fn new(what: impl Into<String>) -> Held {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        table().push((id, what.into()));
        Held { id }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        table().retain(|(id, _)| *id != self.id);
    }
}

/// The descriptions of everything held now, oldest first.
pub fn list() -> Vec<String> {
    table().iter().map(|(_, what)| what.clone()).collect()
}
