//! polybrief's integration tests: one binary, one module per area. They run the real
//! binary or the library against files the tests make or ship under tests/fixtures.

mod embed_parity;
mod feeds;
mod hub;
mod language_slips;
mod layers;
mod llm_parity;
mod marian_int8;
mod marian_parity;
mod nightly;
mod outputs;
mod rerun;
mod run_e2e;
mod signals;
mod support;
mod synthesis;
mod text_stages;
mod tokenizer_parity;
mod trust;
mod usage;
