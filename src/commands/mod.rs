//! One module per subcommand: each turns its validated arguments into library calls.

pub mod cache;
pub mod models;
pub mod run;
pub mod summarize;
pub mod translate;

use std::path::PathBuf;

use crate::article::Article;
use crate::error::Error;
use crate::pipeline::ingest::{ingest, IngestOptions};

/// The one article of a FILE argument, or of standard input for `-`, read as `run`'s ingest
/// reads it: HTML without its markup, Markdown without its syntax, front matter as metadata,
/// a JSON record's text. `doing` ("summarize", "translate") words the refusals.
pub(crate) fn one_article(input: &str, doing: &str) -> Result<Article, Error> {
    let report = ingest(&[PathBuf::from(input)], &IngestOptions::default())?;
    for warning in &report.warnings {
        log::warn!("{warning}");
    }
    match (report.articles.into_iter().next(), report.skipped.first()) {
        (Some(article), _) => Ok(article),
        (None, Some(skipped)) => Err(Error::Usage(format!(
            "{}: {}; there is nothing to {doing}",
            skipped.path.display(),
            skipped.reason
        ))),
        (None, None) => Err(Error::Usage(format!(
            "{input} holds no article text: there is nothing to {doing}"
        ))),
    }
}
