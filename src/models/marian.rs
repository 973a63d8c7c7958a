//! (work in progress: models/marian)
