//! One module per subcommand: each turns its validated arguments into library calls.

pub mod cache;
pub mod models;
pub mod run;
pub mod summarize;
pub mod translate;
