//! (work in progress: pipeline/render)
