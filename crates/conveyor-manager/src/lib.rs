//! conveyor-manager: placeholder, filled in by its issue.
