//! Ingest: turns the files and folders the user named into [`Article`]s.
//!
//! Reads `.txt`, `.md`, `.html`/`.htm`, `.json` (one record or an array of records) and
//! `.jsonl` (one record a line), standard input (`-`, its format told by how it begins), and
//! feeds: RSS 2.0 / Atom / JSON Feed files and
//! `http(s)://` feed URLs (`feed`, fetched by `fetch`). `--since` keeps only recent articles
//! (`window`). Folders are walked recursively in name order; dot-files and
//! dot-folders inside them are ignored (`.git`, `.DS_Store`), and a symbolic link is followed
//! only when it points to a file inside the folder it was found in.
//!
//! A bad input never stops the run: empty, binary, oversized, unreadable, undecodable or
//! unsupported files and malformed records are listed in [`IngestReport::skipped`] with the
//! reason, and the run goes on. Only a path that does not exist is an error, because it is
//! almost always a typo the user wants to hear about before anything is translated.
//!
//! Text is normalised once here (UTF-8, NFC, `\n` line ends, no BOM or zero-width spaces), so
//! every later stage and the article id see the same characters.

mod decode;
mod feed;
pub mod fetch;
mod format;
mod html;
mod json;
mod markdown;
mod text;
mod walk;
pub mod window;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::article::{Article, SkippedInput};

use self::fetch::{FetchSettings, FetchStats};
pub use self::format::{SUPPORTED_EXTENSIONS, SUPPORTED_FILES};
use self::walk::Ingest;
use self::window::Window;

/// Default largest input file: news articles are kilobytes; anything this big is a dump or
/// a mistake, and would take hours to translate.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 5 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// `--since`: only articles published (or, undated, modified) from its start on.
    pub window: Option<Window>,
    /// How feeds and their items' pages are fetched.
    pub fetch: FetchSettings,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            window: None,
            fetch: FetchSettings::default(),
        }
    }
}

/// What ingest found: the articles (each text once), the inputs it skipped and why, and
/// warnings about inputs it read but had to repair.
#[derive(Clone, Debug, Default)]
pub struct IngestReport {
    pub articles: Vec<Article>,
    pub skipped: Vec<SkippedInput>,
    pub warnings: Vec<String>,
    /// Articles outside the `--since` window: counted, not skipped (they are not faults).
    pub left_out: usize,
    /// What fetching feeds and pages did.
    pub fetched: FetchStats,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("input `{}` does not exist; give a file or a folder of articles", .path.display())]
    Missing { path: PathBuf },

    #[error(
        "`-` (standard input) is named {times} times; it holds one text: name it once, or save \
         the texts to files"
    )]
    StdinTwice { times: usize },
}

/// The origin of the article read from standard input (the input `-`).
pub const STDIN_ORIGIN: &str = "<stdin>";

/// Reads every input, in the order given; folders in file-name order.
pub fn ingest(inputs: &[PathBuf], options: &IngestOptions) -> Result<IngestReport, IngestError> {
    // Check every path first, so a typo in the last one fails fast.
    let url_of = |input: &PathBuf| {
        input
            .to_str()
            .filter(|s| fetch::is_url(s))
            .map(str::to_string)
    };
    let is_stdin = |input: &PathBuf| input.as_os_str() == "-";
    let times = inputs.iter().filter(|i| is_stdin(i)).count();
    if times > 1 {
        return Err(IngestError::StdinTwice { times });
    }
    for input in inputs.iter().filter(|i| url_of(i).is_none()) {
        if is_stdin(input) {
            continue;
        }
        if let Err(err) = fs::symlink_metadata(input) {
            if err.kind() == io::ErrorKind::NotFound {
                return Err(IngestError::Missing {
                    path: input.clone(),
                });
            }
        }
    }
    let mut ingest = Ingest {
        options,
        report: IngestReport::default(),
        seen: HashMap::new(),
        fetcher: None,
        modified: None,
    };
    for input in inputs {
        if let Some(url) = url_of(input) {
            ingest.feed_url(&url);
        } else if is_stdin(input) {
            ingest.stdin();
        } else if input.is_dir() {
            ingest.folder(input);
        } else {
            ingest.file(input, input.display().to_string());
        }
    }
    ingest.report.fetched = ingest
        .fetcher
        .as_ref()
        .map(|f| f.stats())
        .unwrap_or_default();
    Ok(ingest.report)
}

#[cfg(test)]
mod tests;
