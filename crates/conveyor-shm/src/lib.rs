//! conveyor-shm: placeholder, filled in by its issue.
