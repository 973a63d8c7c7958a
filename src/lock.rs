//! (work in progress: lock)
