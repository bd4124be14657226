//! conveyor-process: placeholder, filled in by its issue.
