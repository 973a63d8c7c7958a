//! (work in progress: models/catalog)
