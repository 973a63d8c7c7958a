//! (work in progress: pipeline/ingest)
