//! (work in progress: models/hub)
