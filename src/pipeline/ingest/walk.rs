//! The walk over the user's inputs: folders in name order, the symlink rule, the size
//! limit, and folding articles with the same text into one.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

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
        let mut steps = Vec::new();
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    let path = err.path().unwrap_or(root).to_path_buf();
                    let reason = match err.io_error() {
                        Some(io) => format!("cannot read: {}", describe_io(io)),
                        None => format!("cannot read: {err}"),
                    };
                    steps.push(Step::Skip(path, reason));
                    continue;
                }
            };
            let path = entry.path();
            let origin = relative_origin(root, path);
            if entry.path_is_symlink() {
                steps.push(Step::Symlink(path.to_path_buf(), origin));
            } else if entry.file_type().is_file() {
                steps.push(Step::File(path.to_path_buf(), origin));
            }
        }
        // The files are read and parsed in parallel, a chunk at a time (so that a large
        // folder's files are not all held at once), and taken in the walk's order.
        for chunk in steps.chunks(FILES_AT_ONCE) {
            let options = self.options;
            let reads: Vec<Option<FileRead>> = chunk
                .par_iter()
                .map(|step| match step {
                    Step::File(path, _) => Some(read_file(path, options)),
                    _ => None,
                })
                .collect();
            for (step, read) in chunk.iter().zip(reads) {
                match (step, read) {
                    (Step::File(path, origin), Some(read)) => self.take(path, origin.clone(), read),
                    (Step::File(path, origin), None) => self.file(path, origin.clone()),
                    (Step::Symlink(path, origin), _) => {
                        self.symlink(&canonical_root, path, origin.clone())
                    }
                    (Step::Skip(path, reason), _) => self.skip(path.clone(), reason.clone()),
                }
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
        let read = read_file(path, self.options);
        self.take(path, origin, read);
    }

    /// Takes what [`read_file`] made of the file at `path` into the report.
    fn take(&mut self, path: &Path, origin: String, read: FileRead) {
        let (decoded, modified) = match read {
            FileRead::Stopped => return,
            FileRead::Skip(reason) => return self.skip(path, reason),
            FileRead::Decoded { decoded, modified } => (decoded, modified),
        };
        self.modified = modified;
        if decoded.replaced > 0 {
            self.report.warnings.push(format!(
                "{}: not valid UTF-8; {} invalid byte sequence(s) replaced with �",
                path.display(),
                decoded.replaced
            ));
        }
        match decoded.content {
            Content::Parsed(parsed) => self.add(path, origin, parsed),
            Content::Text(format, text) => self.parse_text_as(path, origin, format, &text),
        }
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
        let format = format.unwrap_or_else(|| Format::sniff(&text));
        self.parse_text_as(path, origin, format, &text);
    }

    /// Parses decoded `text` as `format`.
    fn parse_text_as(&mut self, path: &Path, origin: String, format: Format, text: &str) {
        match format {
            Format::Text | Format::Markdown | Format::Html => {
                let parsed = parse_one(format, text).expect("a one-article format");
                self.add(path, origin, parsed)
            }
            Format::Json => self.json(path, &origin, text),
            Format::JsonLines => self.json_lines(path, &origin, text),
            Format::Feed => self.feed(path, &origin, text, None),
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

/// Files read and parsed at once, in parallel, while walking a folder.
const FILES_AT_ONCE: usize = 512;

/// What the walk of a folder found, in its order.
enum Step {
    File(PathBuf, String),
    Symlink(PathBuf, String),
    Skip(PathBuf, String),
}

/// A file as [`read_file`] leaves it for [`Ingest::take`].
enum FileRead {
    /// A stop was requested: the file is not read.
    Stopped,
    Skip(String),
    Decoded {
        decoded: DecodedFile,
        modified: Option<SystemTime>,
    },
}

struct DecodedFile {
    /// Invalid UTF-8 sequences replaced (warned about).
    replaced: usize,
    content: Content,
}

enum Content {
    /// The one article of a text, Markdown or HTML file.
    Parsed(Parsed),
    /// The text of a file that holds records or a feed, parsed in the walk's order.
    Text(Format, String),
}

/// The article a text, Markdown or HTML file holds; `None` for the other formats.
fn parse_one(format: Format, text: &str) -> Option<Parsed> {
    match format {
        Format::Text => Some(parse_text(text, false)),
        Format::Markdown => Some(parse_markdown(text)),
        Format::Html => Some(parse_html(text)),
        Format::Json | Format::JsonLines | Format::Feed => None,
    }
}

/// Reads the file at `path` within the size limit, decodes it and, when it holds one
/// article, parses it: everything of a file's ingest that needs nothing of the others, so
/// that a folder's files are read in parallel.
fn read_file(path: &Path, options: &IngestOptions) -> FileRead {
    // A stop request ends the walk here; the run reports the interruption.
    if crate::interrupt::requested() {
        return FileRead::Stopped;
    }
    let Some(format) = Format::of(path) else {
        let what = match path.extension() {
            Some(ext) => format!("unsupported file type `.{}`", ext.to_string_lossy()),
            None => "no file extension".to_string(),
        };
        return FileRead::Skip(format!("{what}; polybrief reads {SUPPORTED_FILES}"));
    };
    let too_large = |len: u64| {
        (len > options.max_file_size).then(|| {
            format!(
                "file is {}, over the {} size limit",
                human_bytes(len),
                human_bytes(options.max_file_size)
            )
        })
    };
    let cannot_read = |err: &io::Error| format!("cannot read: {}", describe_io(err));
    // One open, the size from the open file.
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        // What a file that cannot be opened is skipped for: its size first, as when it is
        // looked at before it is opened.
        Err(err) => {
            return FileRead::Skip(match fs::metadata(path) {
                Ok(meta) => too_large(meta.len()).unwrap_or_else(|| cannot_read(&err)),
                Err(meta_err) => cannot_read(&meta_err),
            })
        }
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(err) => return FileRead::Skip(cannot_read(&err)),
    };
    if let Some(reason) = too_large(meta.len()) {
        return FileRead::Skip(reason);
    }
    let modified = meta.modified().ok();
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    // Through `take`: a `File` would ask the system for its size once more.
    if let Err(err) = Read::by_ref(&mut file)
        .take(u64::MAX)
        .read_to_end(&mut bytes)
    {
        return FileRead::Skip(cannot_read(&err));
    }
    let Decoded { text, replaced } = match decode(&bytes) {
        Ok(decoded) => decoded,
        Err(reason) => return FileRead::Skip(reason),
    };
    let content = match parse_one(format, &text) {
        Some(parsed) => Content::Parsed(parsed),
        None => Content::Text(format, text),
    };
    FileRead::Decoded {
        decoded: DecodedFile { replaced, content },
        modified,
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
