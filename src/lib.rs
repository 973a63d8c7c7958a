//! polybrief: translate a folder of news articles in any language into one cited English brief.
//!
//! The pipeline runs one way, each stage a plain function or small type over the plain data
//! of [`article`]: ingest → detect → segment → translate → summarize → synthesize → render.
//! Models (catalog, hub downloads, Marian, the instruct LLM) live under [`models`]; the
//! command line only wires the stages together.

#![warn(unreachable_pub)]

pub mod allocator;
pub mod article;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod device;
pub(crate) mod engines;
pub mod error;
pub mod exit_code;
pub mod interrupt;
pub mod lock;
pub mod models;
pub(crate) mod output;
pub mod pipeline;
pub mod progress;
pub mod prompts;
pub(crate) mod shard;
pub(crate) mod units;
pub mod workload;
