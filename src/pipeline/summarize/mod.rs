//! (work in progress: summarize)
