//! Helpers shared by the integration test areas.

pub mod fake_hub;
pub mod feed_server;
