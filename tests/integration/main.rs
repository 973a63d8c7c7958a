//! polybrief's integration tests: one binary, one module per area. They run the real
//! binary or the library against files the tests make or ship under tests/fixtures.
mod marian_parity;
