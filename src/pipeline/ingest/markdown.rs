//! Markdown: paragraphs and the first heading as title, through pulldown-cmark.

use scraper::Html;

use crate::article::ArticleMeta;

use super::html::{html_paragraphs, TextCollector};
use super::text::{clean_inline, front_matter, is_headline, Parsed};

/// Markdown through a real CommonMark parser: the text of paragraphs, headings, list items,
pub(super) fn parse_markdown(text: &str) -> Parsed {
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
