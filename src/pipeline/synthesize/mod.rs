//! (work in progress: synthesize)
