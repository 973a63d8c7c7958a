//! The input formats ingest reads, chosen by file extension: the one list of them.

use std::path::Path;

/// The extensions ingest reads, for messages and for anything that must know what an input
/// looks like (the output checks refuse to write where a run would read).
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    "txt", "text", "md", "markdown", "html", "htm", "json", "jsonl", "ndjson", "rss", "atom", "xml",
];

/// [`SUPPORTED_EXTENSIONS`] as a message names them.
pub const SUPPORTED_FILES: &str =
    ".txt, .text, .md, .markdown, .html, .htm, .json, .jsonl, .ndjson, .rss, .atom, .xml (feeds)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Text,
    Markdown,
    Html,
    Json,
    JsonLines,
    /// RSS, Atom (JSON Feeds are `.json` and told apart by their `version`).
    Feed,
}

impl Format {
    pub(super) fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "text" => Format::Text,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::JsonLines,
            "rss" | "atom" | "xml" => Format::Feed,
            _ => return None,
        })
    }
}
