//! (work in progress: pipeline/detect)
