//! (work in progress: output)
