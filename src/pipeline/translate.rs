//! (work in progress: pipeline/translate)
