//! HTML: the article's main content without site chrome, its title and metadata.

use scraper::{ElementRef, Html, Node, Selector};

use crate::article::ArticleMeta;

use super::text::{clean_inline, split_paragraphs, Parsed};

/// Collects text into paragraphs: whitespace runs collapsed, a paragraph ended by every
/// block element, explicit line breaks kept.
#[derive(Default)]
pub(super) struct TextCollector {
    pub(super) paragraphs: Vec<String>,
    pub(super) current: String,
}

impl TextCollector {
    pub(super) fn push_text(&mut self, text: &str) {
        for (i, word) in text.split(char::is_whitespace).enumerate() {
            if i > 0 && !self.current.is_empty() && !self.current.ends_with([' ', '\n']) {
                self.current.push(' ');
            }
            self.current.push_str(word);
        }
    }

    pub(super) fn line_break(&mut self) {
        let trimmed = self.current.trim_end_matches(' ').len();
        self.current.truncate(trimmed);
        if !self.current.is_empty() {
            self.current.push('\n');
        }
    }

    pub(super) fn end_paragraph(&mut self) {
        // Two line breaks in a row (`<br><br>`) separate paragraphs too.
        for paragraph in split_paragraphs(&std::mem::take(&mut self.current)) {
            self.paragraphs.push(paragraph);
        }
    }
}

/// Elements whose content is never article text: code, styling, page chrome (navigation,
/// headers, footers, sidebars), forms and embedded media.
#[rustfmt::skip]
pub(super) const SKIPPED_ELEMENTS: &[&str] = &[
    "script", "style", "noscript", "template", "head", "nav", "header", "footer", "aside", "form",
    "button", "select", "textarea", "iframe", "object", "embed", "svg", "canvas", "video", "audio",
    "picture", "figure", "menu", "dialog",
];

/// ARIA landmark roles and class/id words of the same page chrome.
#[rustfmt::skip]
pub(super) const SKIPPED_ROLES: &[&str] = &[
    "navigation", "banner", "contentinfo", "complementary", "search",
];
#[rustfmt::skip]
pub(super) const SKIPPED_CLASS_WORDS: &[&str] = &[
    "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar", "footer",
    "share", "social", "related", "comments", "advert", "advertisement", "cookie", "newsletter",
    "subscribe", "promo", "byline",
];

/// Elements that end a paragraph.
#[rustfmt::skip]
pub(super) const BLOCK_ELEMENTS: &[&str] = &[
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul",
    "ol", "dl", "dt", "dd", "blockquote", "pre", "table", "tr", "hr", "address", "body",
    "figcaption", "details", "summary",
];

/// HTML through a real parser (html5ever, via `scraper`): metadata from `<title>` and the
/// Open Graph / article meta tags, text from the `<article>` (or `<main>`, or `<body>`) with
/// scripts, styles and page chrome removed.
pub(super) fn parse_html(html: &str) -> Parsed {
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
    let root = main_content(&document);
    // The headline is the page's og:title or its <h1>; a <title> is often "Site | Section".
    let meta = ArticleMeta {
        title: meta_content(r#"meta[property="og:title"]"#)
            .or_else(|| headline(&root))
            .or_else(|| element_text("title")),
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
    Parsed {
        meta,
        paragraphs: html_paragraphs(&root),
    }
}

/// The text of the first `<h1>` inside `root` that is not page chrome (a site name in the
/// header's `<h1>` is no headline).
fn headline(root: &ElementRef) -> Option<String> {
    let selector = Selector::parse("h1").ok()?;
    root.select(&selector)
        .find(|h1| {
            h1.ancestors()
                .take_while(|node| node.id() != root.id())
                .filter_map(ElementRef::wrap)
                .chain(std::iter::once(*h1))
                .all(|e| !is_chrome(&e))
        })
        .map(|h1| clean_inline(&h1.text().collect::<String>()))
        .filter(|t| !t.is_empty())
}

pub(super) fn select_first<'a>(document: &'a Html, selector: &str) -> Option<ElementRef<'a>> {
    let selector = Selector::parse(selector).ok()?;
    document.select(&selector).next()
}

/// The element holding the article: the `<article>` with most text, else `<main>`, else
/// `<body>`, else the whole document.
pub(super) fn main_content(document: &Html) -> ElementRef<'_> {
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

pub(super) fn html_paragraphs(root: &ElementRef) -> Vec<String> {
    let mut out = TextCollector::default();
    collect_html_text(root, &mut out);
    out.end_paragraph();
    out.paragraphs
}

pub(super) fn collect_html_text(element: &ElementRef, out: &mut TextCollector) {
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
pub(super) fn is_chrome(element: &ElementRef) -> bool {
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
pub(super) fn looks_like_html(text: &str) -> bool {
    static TAG: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        regex::Regex::new(r"(?i)</?(p|div|br|span|a|h[1-6]|article|section|li|strong|em)[\s>/]")
            .ok()
    })
    .as_ref()
    .is_some_and(|re| re.is_match(text))
}
