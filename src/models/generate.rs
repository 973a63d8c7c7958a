//! (work in progress: models/generate)
