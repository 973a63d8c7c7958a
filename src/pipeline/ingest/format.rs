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

    /// The format of a text with no file name (standard input), read from how it begins:
    /// markup is a feed (`<rss`, `<feed`) or HTML, `{`/`[` is JSON (JSON Lines when every
    /// line is a record), `---` opens Markdown's front matter, anything else is plain text.
    pub(super) fn sniff(text: &str) -> Format {
        let start = text.trim_start();
        let head: String = start
            .chars()
            .take(1024)
            .collect::<String>()
            .to_ascii_lowercase();
        if head.starts_with('<') {
            if head.contains("<rss") || head.contains("<feed") {
                Format::Feed
            } else {
                Format::Html
            }
        } else if head.starts_with('[') {
            Format::Json
        } else if head.starts_with('{') {
            let mut lines = start.lines().map(str::trim).filter(|l| !l.is_empty());
            let records = lines.clone().count();
            if records > 1 && lines.all(|l| l.starts_with('{') && l.ends_with('}')) {
                Format::JsonLines
            } else {
                Format::Json
            }
        } else if head.starts_with("---") {
            Format::Markdown
        } else {
            Format::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn a_text_without_a_name_is_read_by_how_it_begins() {
        for (text, format) in [
            ("<!doctype html><html><h1>Ferries halted</h1>", Format::Html),
            ("\n  <p>Ferries halted.</p>", Format::Html),
            ("<?xml version=\"1.0\"?><rss version=\"2.0\">", Format::Feed),
            ("{\"title\": \"a\", \"text\": \"b\"}", Format::Json),
            ("{\"text\": \"a\"}\n{\"text\": \"b\"}\n", Format::JsonLines),
            ("[{\"text\": \"a\"}]", Format::Json),
            ("---\ntitle: Storm\n---\nFerries halted.", Format::Markdown),
            ("Ferries halted as Storm Hestia hits.", Format::Text),
        ] {
            assert_eq!(Format::sniff(text), format, "{text:?}");
        }
    }
}
