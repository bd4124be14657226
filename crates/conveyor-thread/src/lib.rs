//! conveyor-thread: placeholder, filled in by its issue.
