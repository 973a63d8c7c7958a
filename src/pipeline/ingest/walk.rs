//! The walk over the user's inputs: folders in name order, the symlink rule, the size
//! limit, and folding articles with the same text into one.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::article::{Article, SkippedInput};

use super::decode::{decode, Decoded};
use super::format::{Format, SUPPORTED_FILES};
use super::html::parse_html;
use super::markdown::parse_markdown;
use super::text::{parse_text, without_leading_title, Parsed};
use super::{IngestOptions, IngestReport, STDIN_ORIGIN};
use crate::units::human_bytes;

pub(super) struct Ingest<'a> {
    pub(super) options: &'a IngestOptions,
    pub(super) report: IngestReport,
    /// Article id → index in `report.articles`, to fold duplicates.
    pub(super) seen: HashMap<crate::article::ArticleId, usize>,
    /// Made when the first feed or page is fetched.
    pub(super) fetcher: Option<super::fetch::Fetcher>,
    /// The modification time of the file being read, for `--since` when it states no date.
    pub(super) modified: Option<SystemTime>,
}

impl Ingest<'_> {
    pub(super) fn skip(&mut self, path: impl Into<PathBuf>, reason: impl Into<String>) {
        let skipped = SkippedInput {
            path: path.into(),
            reason: reason.into(),
        };
        log::debug!("skipping {}: {}", skipped.path.display(), skipped.reason);
        self.report.skipped.push(skipped);
    }

    pub(super) fn folder(&mut self, root: &Path) {
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

    pub(super) fn file(&mut self, path: &Path, origin: String) {
        // A stop request ends the walk here; the run reports the interruption.
        if crate::interrupt::requested() {
            return;
        }
        let Some(format) = Format::of(path) else {
            let what = match path.extension() {
                Some(ext) => format!("unsupported file type `.{}`", ext.to_string_lossy()),
                None => "no file extension".to_string(),
            };
            return self.skip(path, format!("{what}; polybrief reads {SUPPORTED_FILES}"));
        };
        match fs::metadata(path) {
            Ok(meta) if meta.len() > self.options.max_file_size => {
                return self.skip(
                    path,
                    format!(
                        "file is {}, over the {} size limit",
                        human_bytes(meta.len()),
                        human_bytes(self.options.max_file_size)
                    ),
                );
            }
            Ok(meta) => self.modified = meta.modified().ok(),
            Err(err) => return self.skip(path, format!("cannot read: {}", describe_io(&err))),
        }
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => return self.skip(path, format!("cannot read: {}", describe_io(&err))),
        };
        self.parse(path, origin, Some(format), &bytes);
    }

    /// Standard input (`-`), read as a file is, its format told by how it begins; its
    /// origin is `<stdin>`.
    pub(super) fn stdin(&mut self) {
        let path = Path::new(STDIN_ORIGIN);
        let mut bytes = Vec::new();
        let limit = self.options.max_file_size;
        if let Err(err) = io::stdin().lock().take(limit + 1).read_to_end(&mut bytes) {
            return self.skip(path, format!("cannot read: {}", describe_io(&err)));
        }
        if bytes.len() as u64 > limit {
            return self.skip(path, format!("over the {} size limit", human_bytes(limit)));
        }
        self.modified = None;
        self.parse(path, STDIN_ORIGIN.to_string(), None, &bytes);
    }

    /// Decodes `bytes` and parses them as `format` (`None`: as [`Format::sniff`] tells).
    fn parse(&mut self, path: &Path, origin: String, format: Option<Format>, bytes: &[u8]) {
        let text = match decode(bytes) {
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
        match format.unwrap_or_else(|| Format::sniff(&text)) {
            Format::Text => self.add(path, origin, parse_text(&text, false)),
            Format::Markdown => self.add(path, origin, parse_markdown(&text)),
            Format::Html => self.add(path, origin, parse_html(&text)),
            Format::Json => self.json(path, &origin, &text),
            Format::JsonLines => self.json_lines(path, &origin, &text),
            Format::Feed => self.feed(path, &origin, &text, None),
        }
    }

    /// Adds an article, or folds it into an earlier one with the same text.
    pub(super) fn add(&mut self, path: &Path, origin: String, parsed: Parsed) {
        let Parsed {
            meta,
            paragraphs,
            warning,
        } = parsed;
        if let Some(warning) = warning {
            self.report
                .warnings
                .push(format!("{}: {warning}", path.display()));
        }
        if let Some(window) = &self.options.window {
            if !window.keeps(meta.published.as_deref(), self.modified) {
                self.report.left_out += 1;
                return;
            }
        }
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

pub(super) fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => err.to_string(),
    }
}
