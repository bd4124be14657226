//! conveyor-pipe: placeholder, filled in by its issue.
