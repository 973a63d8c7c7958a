//! Plain text: front matter, paragraphs, and a headline on the first line.

use crate::article::ArticleMeta;

use super::decode::normalize;

/// An article's text and metadata, before it gets an id.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Parsed {
    pub(super) meta: ArticleMeta,
    pub(super) paragraphs: Vec<String>,
}

/// The body without its first paragraph when that paragraph is the title (a headline line,
/// a Markdown heading, an HTML `<h1>` repeating `<title>`): the title is metadata, rendered
/// and translated as such, and as a body sentence it would be picked as a summary sentence or
/// a key point. A body that is nothing but the title keeps it.
pub(super) fn without_leading_title(
    mut paragraphs: Vec<String>,
    title: Option<&str>,
) -> Vec<String> {
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
pub(super) fn parse_text(text: &str, metadata_given: bool) -> Parsed {
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

/// Paragraphs separated by blank (or whitespace-only) lines; lines trimmed. The one rule for
/// where a paragraph ends, for articles and for the `translate` and `summarize` commands.
pub(crate) fn split_paragraphs(text: &str) -> Vec<String> {
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
pub(super) fn is_headline(line: &str) -> bool {
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
pub(super) fn front_matter(text: &str) -> (ArticleMeta, &str) {
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

pub(super) fn unquote(value: &str) -> &str {
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
pub(super) fn clean_inline(text: &str) -> String {
    normalize(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
