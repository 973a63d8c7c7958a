//! The stages of a run, in the order data flows through them.

pub mod detect;
pub mod facts;
pub mod ingest;
pub(crate) mod injection;
pub mod render;
pub mod segment;
pub mod summarize;
pub mod synthesize;
pub(crate) mod text;
pub mod translate;
