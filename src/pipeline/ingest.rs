//! Ingest: turns the files and folders the user named into [`Article`]s.
//!
//! Reads `.txt`, `.md`, `.html`/`.htm`, `.json` (one record or an array of records) and
//! `.jsonl` (one record a line). Folders are walked recursively in name order; dot-files and
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

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use scraper::{ElementRef, Html, Node, Selector};
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

use crate::article::{Article, ArticleMeta, SkippedInput};

/// Default largest input file: news articles are kilobytes; anything this big is a dump or
/// a mistake, and would take hours to translate.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 5 * 1024 * 1024;

/// The extensions ingest reads, for messages.
const SUPPORTED: &str = ".txt, .md, .html, .htm, .json, .jsonl";

#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
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
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("input `{}` does not exist; give a file or a folder of articles", .path.display())]
    Missing { path: PathBuf },
}

/// Reads every input, in the order given; folders in file-name order.
pub fn ingest(inputs: &[PathBuf], options: &IngestOptions) -> Result<IngestReport, IngestError> {
    // Check every path first, so a typo in the last one fails fast.
    for input in inputs {
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
    };
    for input in inputs {
        if input.is_dir() {
            ingest.folder(input);
        } else {
            ingest.file(input, input.display().to_string());
        }
    }
    Ok(ingest.report)
}

struct Ingest<'a> {
    options: &'a IngestOptions,
    report: IngestReport,
    /// Article id → index in `report.articles`, to fold duplicates.
    seen: HashMap<crate::article::ArticleId, usize>,
}

impl Ingest<'_> {
    fn skip(&mut self, path: impl Into<PathBuf>, reason: impl Into<String>) {
        let skipped = SkippedInput {
            path: path.into(),
            reason: reason.into(),
        };
        log::debug!("skipping {}: {}", skipped.path.display(), skipped.reason);
        self.report.skipped.push(skipped);
    }

    fn folder(&mut self, root: &Path) {
        let canonical_root = match fs::canonicalize(root) {
            Ok(path) => path,
            Err(err) => return self.skip(root, format!("cannot open folder: {err}")),
        };
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry.file_name()));
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    let path = err.path().unwrap_or(root).to_path_buf();
                    let reason = match err.io_error() {
                        Some(io) => format!("cannot read: {}", describe_io(io)),
                        None => format!("cannot read: {err}"),
                    };
                    self.skip(path, reason);
                    continue;
                }
            };
            let path = entry.path();
            let origin = relative_origin(root, path);
            if entry.path_is_symlink() {
                self.symlink(&canonical_root, path, origin);
            } else if entry.file_type().is_file() {
                self.file(path, origin);
            }
        }
    }

    /// Follows a link found in a folder only to a file inside that folder; a link to a
    /// folder inside it is not followed either (its files are read at their real place).
    fn symlink(&mut self, root: &Path, path: &Path, origin: String) {
        let target = match fs::canonicalize(path) {
            Ok(target) => target,
            Err(_) => return self.skip(path, "broken symbolic link"),
        };
        if !target.starts_with(root) {
            return self.skip(
                path,
                format!(
                    "symbolic link to {}, outside the input folder; not followed",
                    target.display()
                ),
            );
        }
        if target.is_file() {
            self.file(path, origin);
        } else {
            self.report.warnings.push(format!(
                "{}: symbolic link to a folder inside the input; its files are read at {}",
                path.display(),
                target.display()
            ));
        }
    }

    fn file(&mut self, path: &Path, origin: String) {
        let Some(format) = Format::of(path) else {
            let what = match path.extension() {
                Some(ext) => format!("unsupported file type `.{}`", ext.to_string_lossy()),
                None => "no file extension".to_string(),
            };
            return self.skip(path, format!("{what}; polybrief reads {SUPPORTED}"));
        };
        match fs::metadata(path) {
            Ok(meta) if meta.len() > self.options.max_file_size => {
                return self.skip(
                    path,
                    format!(
                        "file is {}, over the {} size limit",
                        human_size(meta.len()),
                        human_size(self.options.max_file_size)
                    ),
                );
            }
            Ok(_) => {}
            Err(err) => return self.skip(path, format!("cannot read: {}", describe_io(&err))),
        }
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => return self.skip(path, format!("cannot read: {}", describe_io(&err))),
        };
        let text = match decode(&bytes) {
            Ok(Decoded { text, replaced }) => {
                if replaced > 0 {
                    self.report.warnings.push(format!(
                        "{}: not valid UTF-8; {replaced} invalid byte sequence(s) replaced with �",
                        path.display()
                    ));
                }
                text
            }
            Err(reason) => return self.skip(path, reason),
        };
        match format {
            Format::Text => self.add(path, origin, parse_text(&text, false)),
            Format::Markdown => self.add(path, origin, parse_markdown(&text)),
            Format::Html => self.add(path, origin, parse_html(&text)),
            Format::Json => self.json(path, &origin, &text),
            Format::JsonLines => self.json_lines(path, &origin, &text),
        }
    }

    fn json(&mut self, path: &Path, origin: &str, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => return self.skip(path, format!("not valid JSON: {err}")),
        };
        match value {
            Value::Array(records) => {
                if records.is_empty() {
                    return self.skip(path, "empty JSON array: no articles");
                }
                for (index, record) in records.iter().enumerate() {
                    self.record(path, format!("{origin}#{index}"), index, record);
                }
            }
            record => self.record(path, origin.to_string(), 0, &record),
        }
    }

    fn json_lines(&mut self, path: &Path, origin: &str, text: &str) {
        let lines = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        for (index, (line_number, line)) in lines.enumerate() {
            let record_path = PathBuf::from(format!("{}#{index}", path.display()));
            match serde_json::from_str::<Value>(line) {
                Ok(record) => self.record(path, format!("{origin}#{index}"), index, &record),
                Err(err) => self.skip(
                    record_path,
                    format!("line {} is not valid JSON: {err}", line_number + 1),
                ),
            }
        }
    }

    fn record(&mut self, path: &Path, origin: String, index: usize, record: &Value) {
        let record_path = || PathBuf::from(format!("{}#{index}", path.display()));
        let Value::Object(fields) = record else {
            return self.skip(
                record_path(),
                "JSON record is not an object with a `text` field",
            );
        };
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| fields.get(*name).and_then(Value::as_str))
                .map(clean_inline)
                .filter(|value| !value.is_empty())
        };
        let Some(text) = fields
            .get("text")
            .or_else(|| fields.get("body"))
            .or_else(|| fields.get("content"))
            .and_then(Value::as_str)
        else {
            return self.skip(record_path(), "JSON record has no `text` string");
        };
        let text = normalize(text);
        let mut parsed = if looks_like_html(&text) {
            parse_html(&text)
        } else {
            parse_text(&text, true)
        };
        parsed.meta = ArticleMeta {
            title: field(&["title", "headline"]).or(parsed.meta.title),
            url: field(&["url", "link"]).or(parsed.meta.url),
            source: field(&["source", "outlet", "site"]).or(parsed.meta.source),
            published: field(&["published", "date", "published_at"]).or(parsed.meta.published),
        };
        self.add(&record_path(), origin, parsed);
    }

    /// Adds an article, or folds it into an earlier one with the same text.
    fn add(&mut self, path: &Path, origin: String, parsed: Parsed) {
        let Parsed { meta, paragraphs } = parsed;
        let paragraphs = without_leading_title(paragraphs, meta.title.as_deref());
        if paragraphs.is_empty() {
            return self.skip(path, "no article text found");
        }
        let article = Article::new(origin, meta, paragraphs);
        if let Some(&first) = self.seen.get(&article.id) {
            let kept = &mut self.report.articles[first];
            self.report.warnings.push(format!(
                "{} has the same text as {}; it is processed once",
                article.origin, kept.origin
            ));
            kept.also_at.push(article.origin);
            return;
        }
        self.seen
            .insert(article.id.clone(), self.report.articles.len());
        self.report.articles.push(article);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Markdown,
    Html,
    Json,
    JsonLines,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "text" => Format::Text,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::JsonLines,
            _ => return None,
        })
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str().is_some_and(|name| name.starts_with('.'))
}

/// `path` relative to `root`, with `/` separators, for display and provenance.
fn relative_origin(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} bytes")
    }
}

#[derive(Debug)]
struct Decoded {
    text: String,
    /// Invalid UTF-8 sequences replaced by U+FFFD.
    replaced: usize,
}

/// Largest share of invalid UTF-8 (or control characters) a file may have and still be
/// read as text: a stray Latin-1 byte in a UTF-8 article is repairable, a Latin-1 or
/// GBK file is not (its every accented letter would be lost).
const MAX_BAD_SHARE: f64 = 0.02;

/// Bytes to normalised text, or the reason the file is not text.
fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    if bytes.is_empty() {
        return Err("empty file".to_string());
    }
    let (text, replaced) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        decode_utf8(rest)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        (decode_utf16(rest, u16::from_le_bytes), 0)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        (decode_utf16(rest, u16::from_be_bytes), 0)
    } else {
        if bytes.contains(&0) {
            return Err("binary file (contains NUL bytes)".to_string());
        }
        decode_utf8(bytes)?
    };
    let chars = text.chars().count().max(1);
    let control = text
        .chars()
        .filter(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0C'))
        .count();
    if control as f64 / chars as f64 > MAX_BAD_SHARE {
        return Err("binary file (mostly control characters)".to_string());
    }
    let text = normalize(&text);
    if text.trim().is_empty() {
        return Err("empty file (only whitespace)".to_string());
    }
    Ok(Decoded { text, replaced })
}

fn decode_utf8(bytes: &[u8]) -> Result<(String, usize), String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((text.to_string(), 0)),
        Err(_) => {
            let mut replaced = 0;
            let mut text = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    replaced += 1;
                    text.push('\u{FFFD}');
                }
            }
            let share = replaced as f64 / text.chars().count().max(1) as f64;
            if share > MAX_BAD_SHARE {
                Err(format!(
                    "not UTF-8 text ({:.0}% invalid); convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8`",
                    share * 100.0
                ))
            } else {
                Ok((text, replaced))
            }
        }
    }
}

fn decode_utf16(bytes: &[u8], to_u16: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks_exact(2).map(|pair| to_u16([pair[0], pair[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{FFFD}'))
        .collect()
}

/// NFC (Vietnamese in particular arrives decomposed), `\n` line ends, and no BOM or
/// zero-width spaces, which would split words for the tokenizer.
fn normalize(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .nfc()
        .filter(|&c| c != '\u{FEFF}' && c != '\u{200B}')
        .collect()
}

/// An article's text and metadata, before it gets an id.
#[derive(Debug, Default, PartialEq)]
struct Parsed {
    meta: ArticleMeta,
    paragraphs: Vec<String>,
}

/// The body without its first paragraph when that paragraph is the title (a headline line,
/// a Markdown heading, an HTML `<h1>` repeating `<title>`): the title is metadata, rendered
/// and translated as such, and as a body sentence it would be picked as a summary sentence or
/// a key point. A body that is nothing but the title keeps it.
fn without_leading_title(mut paragraphs: Vec<String>, title: Option<&str>) -> Vec<String> {
    let same = |a: &str, b: &str| a.split_whitespace().eq(b.split_whitespace());
    if let (Some(title), Some(first)) = (title, paragraphs.first()) {
        if paragraphs.len() > 1 && same(first, title) {
            paragraphs.remove(0);
        }
    }
    paragraphs
}

/// Plain text: optional front matter, then paragraphs separated by blank lines. Without a
/// title in front matter, a headline-like first line becomes the title, as its own first
/// paragraph (which [`without_leading_title`] then takes out of the body). `metadata_given`
/// turns both off for JSON records, whose metadata comes in fields.
fn parse_text(text: &str, metadata_given: bool) -> Parsed {
    let (mut meta, body) = if metadata_given {
        (ArticleMeta::default(), text)
    } else {
        front_matter(text)
    };
    let mut paragraphs = split_paragraphs(body);
    if meta.title.is_none() && !metadata_given {
        if let Some(first) = paragraphs.first() {
            let (line, rest) = first.split_once('\n').unwrap_or((first.as_str(), ""));
            let more_follows = !rest.trim().is_empty() || paragraphs.len() > 1;
            if more_follows && is_headline(line) {
                meta.title = Some(line.to_string());
                if !rest.trim().is_empty() {
                    let (line, rest) = (line.to_string(), rest.trim().to_string());
                    paragraphs[0] = rest;
                    paragraphs.insert(0, line);
                }
            }
        }
    }
    Parsed { meta, paragraphs }
}

/// Paragraphs separated by blank (or whitespace-only) lines; lines trimmed.
fn split_paragraphs(text: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    paragraphs
}

/// A short line without a final period, of a few words (or a few CJK characters).
fn is_headline(line: &str) -> bool {
    let line = line.trim();
    let chars = line.chars().count();
    let words = line.split_whitespace().count();
    let ends_like_sentence = line.ends_with(['.', '。', ',', '，', ':', '：', ';', '、']);
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    let spaced = (3..=25).contains(&words) && chars <= 200;
    let unspaced = words < 3 && (6..=60).contains(&chars) && letters * 2 >= chars;
    !ends_like_sentence && letters > 0 && (spaced || unspaced)
}

/// Splits off a `---` … `---` block of `key: value` lines at the start of `text`.
/// Anything else at the start (a horizontal rule, a line without a colon) is text.
fn front_matter(text: &str) -> (ArticleMeta, &str) {
    let mut meta = ArticleMeta::default();
    let Some(rest) = text.strip_prefix("---\n") else {
        return (meta, text);
    };
    let Some(end) = rest.find("\n---\n").map(|i| (i, i + 5)).or_else(|| {
        rest.strip_suffix("\n---")
            .map(|inner| (inner.len(), rest.len()))
    }) else {
        return (meta, text);
    };
    let (block, body) = (&rest[..end.0], &rest[end.1..]);
    for line in block.lines().filter(|line| !line.trim().is_empty()) {
        let Some((key, value)) = line.split_once(':') else {
            return (ArticleMeta::default(), text);
        };
        let value = unquote(value.trim());
        let value = (!value.is_empty()).then(|| clean_inline(value));
        match key.trim().to_ascii_lowercase().as_str() {
            "title" | "headline" => meta.title = value,
            "url" | "link" => meta.url = value,
            "source" | "outlet" | "site" => meta.source = value,
            "published" | "date" => meta.published = value,
            _ => {}
        }
    }
    (meta, body)
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// One line of metadata: whitespace runs (newlines included) collapsed to one space.
fn clean_inline(text: &str) -> String {
    normalize(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Markdown through a real CommonMark parser: the text of paragraphs, headings, list items,
/// quotes and table rows, without link targets, images, footnote marks or HTML tags.
fn parse_markdown(text: &str) -> Parsed {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    let (mut meta, body) = front_matter(text);
    let mut out = TextCollector::default();
    let mut image_depth = 0usize;
    let mut html_block: Option<String> = None;
    let mut first_block_heading: Option<Option<String>> = None;
    let mut heading_text = String::new();
    let mut in_heading = false;
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    for event in Parser::new_ext(body, options) {
        match event {
            Event::Start(Tag::Image { .. }) => image_depth += 1,
            Event::End(TagEnd::Image) => image_depth = image_depth.saturating_sub(1),
            _ if image_depth > 0 => {}
            Event::Start(Tag::HtmlBlock) => html_block = Some(String::new()),
            Event::End(TagEnd::HtmlBlock) => {
                if let Some(html) = html_block.take() {
                    for paragraph in html_paragraphs(&Html::parse_fragment(&html).root_element()) {
                        out.push_text(&paragraph);
                        out.end_paragraph();
                    }
                }
            }
            Event::Html(html) if html_block.is_some() => {
                if let Some(block) = html_block.as_mut() {
                    block.push_str(&html);
                }
            }
            Event::Start(Tag::Heading { .. }) => {
                out.end_paragraph();
                in_heading = true;
                heading_text.clear();
            }
            Event::End(TagEnd::Heading(_)) => {
                in_heading = false;
                first_block_heading.get_or_insert_with(|| Some(heading_text.trim().to_string()));
                out.end_paragraph();
            }
            Event::Start(
                Tag::Paragraph
                | Tag::Item
                | Tag::BlockQuote(_)
                | Tag::CodeBlock(_)
                | Tag::TableRow
                | Tag::TableHead,
            ) => {
                out.end_paragraph();
            }
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => {
                first_block_heading.get_or_insert(None);
                out.end_paragraph();
            }
            Event::End(TagEnd::TableCell) => out.push_text(" "),
            Event::Text(text) | Event::Code(text) => {
                if in_heading {
                    heading_text.push_str(&text);
                }
                out.push_text(&text);
            }
            Event::SoftBreak => out.push_text(" "),
            Event::HardBreak => out.line_break(),
            Event::Rule => out.end_paragraph(),
            _ => {}
        }
    }
    out.end_paragraph();
    let mut parsed = Parsed {
        meta: ArticleMeta::default(),
        paragraphs: out.paragraphs,
    };
    if meta.title.is_none() {
        meta.title = match first_block_heading {
            Some(Some(heading)) if !heading.is_empty() => Some(clean_inline(&heading)),
            _ => parsed
                .paragraphs
                .first()
                .filter(|first| {
                    parsed.paragraphs.len() > 1 && !first.contains('\n') && is_headline(first)
                })
                .cloned(),
        };
    }
    parsed.meta = meta;
    parsed
}

/// Collects text into paragraphs: whitespace runs collapsed, a paragraph ended by every
/// block element, explicit line breaks kept.
#[derive(Default)]
struct TextCollector {
    paragraphs: Vec<String>,
    current: String,
}

impl TextCollector {
    fn push_text(&mut self, text: &str) {
        for (i, word) in text.split(char::is_whitespace).enumerate() {
            if i > 0 && !self.current.is_empty() && !self.current.ends_with([' ', '\n']) {
                self.current.push(' ');
            }
            self.current.push_str(word);
        }
    }

    fn line_break(&mut self) {
        let trimmed = self.current.trim_end_matches(' ').len();
        self.current.truncate(trimmed);
        if !self.current.is_empty() {
            self.current.push('\n');
        }
    }

    fn end_paragraph(&mut self) {
        // Two line breaks in a row (`<br><br>`) separate paragraphs too.
        for paragraph in split_paragraphs(&std::mem::take(&mut self.current)) {
            self.paragraphs.push(paragraph);
        }
    }
}

/// Elements whose content is never article text: code, styling, page chrome (navigation,
/// headers, footers, sidebars), forms and embedded media.
#[rustfmt::skip]
const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "template", "head", "nav", "header", "footer", "aside", "form",
    "button", "select", "textarea", "iframe", "object", "embed", "svg", "canvas", "video", "audio",
    "picture", "figure", "menu", "dialog",
];

/// ARIA landmark roles and class/id words of the same page chrome.
#[rustfmt::skip]
const SKIPPED_ROLES: &[&str] = &[
    "navigation", "banner", "contentinfo", "complementary", "search",
];
#[rustfmt::skip]
const SKIPPED_CLASS_WORDS: &[&str] = &[
    "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar", "footer",
    "share", "social", "related", "comments", "advert", "advertisement", "cookie", "newsletter",
    "subscribe", "promo",
];

/// Elements that end a paragraph.
#[rustfmt::skip]
const BLOCK_ELEMENTS: &[&str] = &[
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul",
    "ol", "dl", "dt", "dd", "blockquote", "pre", "table", "tr", "hr", "address", "body",
    "figcaption", "details", "summary",
];

/// HTML through a real parser (html5ever, via `scraper`): metadata from `<title>` and the
/// Open Graph / article meta tags, text from the `<article>` (or `<main>`, or `<body>`) with
/// scripts, styles and page chrome removed.
fn parse_html(html: &str) -> Parsed {
    let document = Html::parse_document(html);
    let meta_content = |selector: &str| {
        select_first(&document, selector)
            .and_then(|e| e.attr("content"))
            .map(clean_inline)
            .filter(|v| !v.is_empty())
    };
    let element_text = |selector: &str| {
        select_first(&document, selector)
            .map(|e| clean_inline(&e.text().collect::<String>()))
            .filter(|v| !v.is_empty())
    };
    let meta = ArticleMeta {
        title: meta_content(r#"meta[property="og:title"]"#)
            .or_else(|| element_text("title"))
            .or_else(|| element_text("h1")),
        url: select_first(&document, r#"link[rel~="canonical"]"#)
            .and_then(|e| e.attr("href"))
            .map(clean_inline)
            .filter(|v| !v.is_empty())
            .or_else(|| meta_content(r#"meta[property="og:url"]"#)),
        source: meta_content(r#"meta[property="og:site_name"]"#),
        published: meta_content(r#"meta[property="article:published_time"]"#)
            .or_else(|| meta_content(r#"meta[itemprop="datePublished"]"#))
            .or_else(|| {
                select_first(&document, "time[datetime]")
                    .and_then(|e| e.attr("datetime"))
                    .map(clean_inline)
                    .filter(|v| !v.is_empty())
            })
            .or_else(|| element_text("time")),
    };
    let root = main_content(&document);
    Parsed {
        meta,
        paragraphs: html_paragraphs(&root),
    }
}

fn select_first<'a>(document: &'a Html, selector: &str) -> Option<ElementRef<'a>> {
    let selector = Selector::parse(selector).ok()?;
    document.select(&selector).next()
}

/// The element holding the article: the `<article>` with most text, else `<main>`, else
/// `<body>`, else the whole document.
fn main_content(document: &Html) -> ElementRef<'_> {
    let text_len = |e: &ElementRef| e.text().map(str::len).sum::<usize>();
    for selector in ["article", r#"main, [role="main"]"#, "body"] {
        if let Ok(selector) = Selector::parse(selector) {
            if let Some(best) = document.select(&selector).max_by_key(text_len) {
                return best;
            }
        }
    }
    document.root_element()
}

fn html_paragraphs(root: &ElementRef) -> Vec<String> {
    let mut out = TextCollector::default();
    collect_html_text(root, &mut out);
    out.end_paragraph();
    out.paragraphs
}

fn collect_html_text(element: &ElementRef, out: &mut TextCollector) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => out.push_text(text),
            Node::Element(_) => {
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                let name = child.value().name();
                if is_chrome(&child) {
                    continue;
                }
                match name {
                    "br" => out.line_break(),
                    "td" | "th" => {
                        collect_html_text(&child, out);
                        out.push_text(" ");
                    }
                    _ if BLOCK_ELEMENTS.contains(&name) => {
                        out.end_paragraph();
                        collect_html_text(&child, out);
                        out.end_paragraph();
                    }
                    _ => collect_html_text(&child, out),
                }
            }
            _ => {}
        }
    }
}

/// Whether an element is page chrome or hidden, by tag, ARIA role, `hidden`, or a class/id
/// word such as `nav` or `footer` (`site-footer` counts; `footnote` does not).
fn is_chrome(element: &ElementRef) -> bool {
    let value = element.value();
    if SKIPPED_ELEMENTS.contains(&value.name())
        || value.attr("hidden").is_some()
        || value.attr("aria-hidden") == Some("true")
        || value
            .attr("role")
            .is_some_and(|role| SKIPPED_ROLES.contains(&role))
    {
        return true;
    }
    let words = value
        .classes()
        .chain(value.id())
        .flat_map(|name| name.split(['-', '_']));
    words
        .map(str::to_ascii_lowercase)
        .any(|word| SKIPPED_CLASS_WORDS.contains(&word.as_str()))
}

/// Whether a JSON record's `text` is HTML rather than plain text.
fn looks_like_html(text: &str) -> bool {
    static TAG: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        regex::Regex::new(r"(?i)</?(p|div|br|span|a|h[1-6]|article|section|li|strong|em)[\s>/]")
            .ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_sets_metadata_and_is_not_text() {
        let parsed = parse_text(
            "---\ntitle: \"Sturm an der Küste\"\nsource: Nordkurier\nurl: https://example.org/a\npublished: 2026-03-02\nauthor: X\n---\nErster Absatz.\n\nZweiter Absatz.\n",
            false,
        );
        assert_eq!(parsed.meta.title.as_deref(), Some("Sturm an der Küste"));
        assert_eq!(parsed.meta.source.as_deref(), Some("Nordkurier"));
        assert_eq!(parsed.meta.url.as_deref(), Some("https://example.org/a"));
        assert_eq!(parsed.meta.published.as_deref(), Some("2026-03-02"));
        assert_eq!(parsed.paragraphs, ["Erster Absatz.", "Zweiter Absatz."]);
    }

    #[test]
    fn a_dash_line_that_is_not_front_matter_stays_text() {
        let parsed = parse_text(
            "---\nThis is not metadata at all\n---\nBody text here.",
            false,
        );
        assert_eq!(parsed.meta, ArticleMeta::default());
        assert_eq!(parsed.paragraphs.len(), 1);
        assert!(parsed.paragraphs[0].contains("This is not metadata at all"));
    }

    #[test]
    fn headline_first_line_becomes_title_and_its_own_paragraph() {
        let parsed = parse_text(
            "Trump meets with Ma Yun\n\nThey met in New York. It went well.",
            false,
        );
        assert_eq!(
            parsed.meta.title.as_deref(),
            Some("Trump meets with Ma Yun")
        );
        assert_eq!(
            parsed.paragraphs,
            [
                "Trump meets with Ma Yun",
                "They met in New York. It went well."
            ]
        );

        // Headline directly followed by the body, no blank line.
        let parsed = parse_text(
            "Storm hits the Breton coast\nThe storm came at night. Trees fell.",
            false,
        );
        assert_eq!(
            parsed.meta.title.as_deref(),
            Some("Storm hits the Breton coast")
        );
        assert_eq!(
            parsed.paragraphs,
            [
                "Storm hits the Breton coast",
                "The storm came at night. Trees fell."
            ]
        );
    }

    #[test]
    fn a_sentence_or_a_single_long_line_is_not_a_headline() {
        let parsed = parse_text("The storm came at night.\n\nTrees fell.", false);
        assert_eq!(parsed.meta.title, None);
        let long = "Tỷ phú Jack Ma bất ngờ gặp mặt Tổng thống và đưa ra cam kết ".repeat(5);
        let parsed = parse_text(&long, false);
        assert_eq!(parsed.meta.title, None);
        assert_eq!(parsed.paragraphs.len(), 1);
        // A lone line, however headline-like, is the whole text, not a title.
        assert_eq!(parse_text("Storm hits the coast", false).meta.title, None);
    }

    #[test]
    fn text_without_blank_lines_is_one_paragraph() {
        let parsed = parse_text("Eins. Zwei. Drei.", true);
        assert_eq!(parsed.paragraphs, ["Eins. Zwei. Drei."]);
        let parsed = parse_text("a\n \u{a0}\nb", true);
        assert_eq!(parsed.paragraphs, ["a", "b"]);
    }

    #[test]
    fn html_drops_scripts_styles_and_page_chrome() {
        let html = r#"<!doctype html><html><head>
            <title>Fallback title | Site</title>
            <meta property="og:title" content="Tempête sur la Bretagne">
            <meta property="og:site_name" content="Ouest Info">
            <meta property="article:published_time" content="2026-03-02T08:00:00Z">
            <link rel="canonical" href="https://example.fr/tempete">
            <style>p { color: red }</style>
            <script>var tracking = "secret";</script>
            </head><body>
            <nav><a href="/">Accueil</a> <a href="/monde">Monde</a></nav>
            <header><h1>Site header</h1></header>
            <div class="cookie-banner">Acceptez les cookies</div>
            <article>
              <p>La tempête a frappé <b>la côte</b> dans la nuit.</p>
              <script>alert("x")</script>
              <p>Les vents ont atteint<br>150 km/h.</p>
              <aside>À lire aussi : autre chose</aside>
            </article>
            <footer>© Ouest Info</footer>
            </body></html>"#;
        let parsed = parse_html(html);
        assert_eq!(
            parsed.meta.title.as_deref(),
            Some("Tempête sur la Bretagne")
        );
        assert_eq!(parsed.meta.source.as_deref(), Some("Ouest Info"));
        assert_eq!(
            parsed.meta.url.as_deref(),
            Some("https://example.fr/tempete")
        );
        assert_eq!(
            parsed.meta.published.as_deref(),
            Some("2026-03-02T08:00:00Z")
        );
        assert_eq!(
            parsed.paragraphs,
            [
                "La tempête a frappé la côte dans la nuit.",
                "Les vents ont atteint\n150 km/h."
            ]
        );
    }

    #[test]
    fn html_without_meta_uses_title_and_time_and_body() {
        let html = "<html><head><title> Plain  page </title></head><body>\
                    <p>Published <time datetime=\"2026-01-09\">Jan 9</time>.</p><div>Body text.</div></body></html>";
        let parsed = parse_html(html);
        assert_eq!(parsed.meta.title.as_deref(), Some("Plain page"));
        assert_eq!(parsed.meta.published.as_deref(), Some("2026-01-09"));
        assert_eq!(parsed.paragraphs, ["Published Jan 9.", "Body text."]);
    }

    #[test]
    fn markdown_keeps_text_and_drops_markup_links_and_images() {
        let parsed = parse_markdown(
            "# Metro line opens\n\nThe **first** line of the [metro](https://x.example) opened.\n![photo](a.jpg)\n\n- Item one\n- Item two\n\n<script>bad()</script>\n\n> A quote.\n",
        );
        assert_eq!(parsed.meta.title.as_deref(), Some("Metro line opens"));
        assert_eq!(
            parsed.paragraphs,
            [
                "Metro line opens",
                "The first line of the metro opened.",
                "Item one",
                "Item two",
                "A quote."
            ]
        );
    }

    #[test]
    fn jsonl_records_become_articles_with_their_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.jsonl");
        fs::write(
            &path,
            concat!(
                r#"{"title":"A","url":"https://a.example","source":"Wire","published":"2026-01-01","text":"First article.\n\nSecond paragraph."}"#,
                "\n\n",
                "not json\n",
                r#"{"title":"No text"}"#,
                "\n",
                r#"{"text":"<p>HTML body.</p><script>x()</script>"}"#,
                "\n"
            ),
        )
        .unwrap();
        let report = ingest(&[path], &IngestOptions::default()).unwrap();
        assert_eq!(report.articles.len(), 2);
        let first = &report.articles[0];
        assert!(first.origin.ends_with("feed.jsonl#0"));
        assert_eq!(first.meta.title.as_deref(), Some("A"));
        assert_eq!(first.meta.source.as_deref(), Some("Wire"));
        assert_eq!(first.paragraphs, ["First article.", "Second paragraph."]);
        assert_eq!(report.articles[1].paragraphs, ["HTML body."]);
        assert!(report.articles[1].origin.ends_with("feed.jsonl#3"));
        let reasons: Vec<_> = report.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2);
        assert!(reasons[0].starts_with("line 3 is not valid JSON"));
        assert_eq!(reasons[1], "JSON record has no `text` string");
    }

    #[test]
    fn json_file_holds_one_record_or_an_array() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("one.json"),
            r#"{"title":"T","text":"Only one."}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join("many.json"),
            r#"[{"text":"First."},{"text":"Second."}]"#,
        )
        .unwrap();
        let report = ingest(&[dir.path().to_path_buf()], &IngestOptions::default()).unwrap();
        let origins: Vec<_> = report.articles.iter().map(|a| a.origin.as_str()).collect();
        assert_eq!(origins, ["many.json#0", "many.json#1", "one.json"]);
    }

    #[test]
    fn a_title_that_opens_the_body_is_metadata_not_a_body_paragraph() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.txt"),
            "Storm hits the Breton coast\n\nThe storm came at night. Trees fell.",
        )
        .unwrap();
        fs::write(
            dir.path().join("b.md"),
            "# Metro line opens\n\nThe first line opened on Monday.",
        )
        .unwrap();
        fs::write(
            dir.path().join("c.html"),
            "<html><head><title>Ferries halted</title></head><body><h1>Ferries  halted</h1><p>No ferry sailed on Monday.</p></body></html>",
        )
        .unwrap();
        fs::write(
            dir.path().join("d.md"),
            "---\ntitle: Only a title\n---\nOnly a title\n",
        )
        .unwrap();
        let report = ingest(&[dir.path().to_path_buf()], &IngestOptions::default()).unwrap();
        let got: Vec<(Option<&str>, Vec<&str>)> = report
            .articles
            .iter()
            .map(|a| {
                (
                    a.meta.title.as_deref(),
                    a.paragraphs.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    Some("Storm hits the Breton coast"),
                    vec!["The storm came at night. Trees fell."]
                ),
                (
                    Some("Metro line opens"),
                    vec!["The first line opened on Monday."]
                ),
                (Some("Ferries halted"), vec!["No ferry sailed on Monday."]),
                // A body that is nothing but its title keeps it: there is nothing else to read.
                (Some("Only a title"), vec!["Only a title"]),
            ]
        );
    }

    #[test]
    fn decode_repairs_a_few_bad_bytes_and_rejects_non_utf8_files() {
        let mut bytes = "Ein Text über das Wetter, der fast ganz korrekt ist. "
            .repeat(3)
            .into_bytes();
        bytes.push(0xFF);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.replaced, 1);
        assert!(decoded.text.ends_with('\u{FFFD}'));
        let latin1: Vec<u8> = "Grüße aus Köln, schöne Öfen"
            .chars()
            .map(|c| c as u32 as u8)
            .collect();
        assert!(decode(&latin1).unwrap_err().starts_with("not UTF-8 text"));
    }

    #[test]
    fn decode_reads_utf16_with_bom_and_normalises_to_nfc() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "Chào".encode_utf16() {
            bytes.extend(unit.to_le_bytes());
        }
        assert_eq!(decode(&bytes).unwrap().text, "Chào");
        // "à" decomposed (a + combining grave) becomes one character.
        assert_eq!(decode("Cha\u{300}o\r\n".as_bytes()).unwrap().text, "Chào\n");
    }

    #[test]
    fn permission_errors_are_worded_for_people() {
        let err = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(describe_io(&err), "permission denied");
    }

    #[test]
    fn decode_rejects_empty_and_binary_input() {
        assert_eq!(decode(b"").unwrap_err(), "empty file");
        assert_eq!(
            decode(b" \n\t").unwrap_err(),
            "empty file (only whitespace)"
        );
        assert_eq!(
            decode(b"PK\x03\x04\x00\x00").unwrap_err(),
            "binary file (contains NUL bytes)"
        );
        assert_eq!(
            decode(b"\x01\x02\x03\x04text\x05\x06").unwrap_err(),
            "binary file (mostly control characters)"
        );
    }
}
