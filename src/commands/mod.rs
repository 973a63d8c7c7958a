//! One module per subcommand: each turns its validated arguments into library calls.

pub mod cache;
pub mod models;
pub mod run;
pub mod summarize;
pub mod translate;

use std::io::Read;
use std::path::PathBuf;

use crate::error::Error;

/// The text of a FILE argument, or of standard input for `-`.
pub(crate) fn read_input(input: &str) -> Result<String, Error> {
    if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| Error::Read {
                path: PathBuf::from("<stdin>"),
                source,
            })?;
        Ok(text)
    } else {
        std::fs::read_to_string(input).map_err(|source| Error::Read {
            path: PathBuf::from(input),
            source,
        })
    }
}
