//! (work in progress: facts)
