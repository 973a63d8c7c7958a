//! (work in progress: cache)
