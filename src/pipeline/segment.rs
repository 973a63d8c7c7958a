//! (work in progress: pipeline/segment)
