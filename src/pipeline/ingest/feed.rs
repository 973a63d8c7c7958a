//! Feeds as input: RSS 2.0, Atom and JSON Feed documents, from files (`.rss`, `.atom`,
//! `.xml`, a `.json` whose `version` is a jsonfeed.org URL) or `http(s)://` URLs. Parsing is
//! `feed-rs`'s (maintained, covers every RSS and Atom variant and JSON Feed 1.x); this file
//! only turns entries into articles.
//!
//! An item becomes an article from its own content when that is a whole article; an item
//! with only a link and a teaser becomes the linked page, fetched (see `fetch`) and read
//! like an `.html` file. The item's title, link and date win over the page's. A feed that
//! cannot be fetched or parsed, and an item whose page cannot be had, is reported by name
//! and the run goes on.

use std::path::{Path, PathBuf};

use feed_rs::model::Entry;

use crate::article::ArticleMeta;

use super::decode::normalize;
use super::fetch::Fetcher;
use super::html::{looks_like_html, parse_html};
use super::text::{clean_inline, parse_text, Parsed};
use super::walk::Ingest;

/// Words of item content below which the item is a teaser and its page is read instead
/// (when it links one).
const MIN_ARTICLE_WORDS: usize = 80;

/// Whether a JSON document is a JSON Feed (`"version": "https://jsonfeed.org/version/1.1"`).
pub(super) fn is_json_feed(value: &serde_json::Value) -> bool {
    value
        .get("version")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|v| v.starts_with("https://jsonfeed.org/version/"))
}

impl Ingest<'_> {
    /// An `http(s)://` input: the feed is fetched, then read like a feed file.
    pub(super) fn feed_url(&mut self, url: &str) {
        let text = match self.fetcher().feed(url) {
            Ok(text) => text,
            Err(e) => return self.skip(url, format!("feed not fetched: {e}")),
        };
        self.feed(Path::new(url), url, &text, Some(url));
    }

    /// A feed document read from `path` (a file, or the URL it was fetched from).
    pub(super) fn feed(&mut self, path: &Path, origin: &str, text: &str, base: Option<&str>) {
        let parsed = feed_rs::parser::Builder::new()
            .base_uri(base)
            .build()
            .parse(text.as_bytes());
        let feed = match parsed {
            Ok(feed) => feed,
            Err(e) => {
                return self.skip(path, format!("not a readable RSS, Atom or JSON feed: {e}"))
            }
        };
        if feed.entries.is_empty() {
            return self.skip(path, "the feed has no items");
        }
        let outlet = feed
            .title
            .as_ref()
            .map(|t| clean_inline(&t.content))
            .filter(|t| !t.is_empty());
        for (index, entry) in feed.entries.iter().enumerate() {
            self.feed_item(outlet.as_deref(), entry, path, origin, index);
        }
    }

    fn feed_item(
        &mut self,
        outlet: Option<&str>,
        entry: &Entry,
        path: &Path,
        origin: &str,
        index: usize,
    ) {
        let link = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .map(|l| l.href.clone());
        let title = entry
            .title
            .as_ref()
            .map(|t| clean_inline(&t.content))
            .filter(|t| !t.is_empty());
        let published = entry.published.or(entry.updated).map(|t| t.to_rfc3339());
        let item_path = link.clone().map_or_else(
            || PathBuf::from(format!("{}#{index}", path.display())),
            PathBuf::from,
        );
        let item_origin = link.clone().unwrap_or_else(|| format!("{origin}#{index}"));
        let named = |reason: String| match &title {
            Some(t) => format!("feed item \u{201c}{t}\u{201d}: {reason}"),
            None => format!("feed item {index}: {reason}"),
        };
        // An item dated outside --since is left out before its page is fetched.
        if let Some(window) = &self.options.window {
            if !window.keeps(published.as_deref(), None) {
                self.report.left_out += 1;
                return;
            }
        }
        let content = entry
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .filter(|b| !b.trim().is_empty());
        let teaser = entry
            .summary
            .as_ref()
            .map(|s| s.content.clone())
            .filter(|s| !s.trim().is_empty());
        let own = content
            .clone()
            .or_else(|| teaser.clone())
            .map(|body| read_body(&body));
        let whole = own.as_ref().is_some_and(|p| words(p) >= MIN_ARTICLE_WORDS);
        let parsed = match (own, &link) {
            (Some(own), _) if whole => own,
            (_, Some(url)) => {
                let stamp = format!(
                    "{}\n{}",
                    published.as_deref().unwrap_or_default(),
                    teaser.as_deref().unwrap_or_default()
                );
                match self.fetcher().page(url, &stamp) {
                    Ok(html) => parse_html(&normalize(&html)),
                    Err(e) => {
                        return self
                            .skip(item_path, named(format!("its page was not fetched: {e}")))
                    }
                }
            }
            (Some(own), None) => own,
            (None, None) => {
                return self.skip(item_path, named("no content and no link".to_string()))
            }
        };
        self.add_item(
            &item_path,
            item_origin,
            parsed,
            outlet,
            title,
            link,
            published,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add_item(
        &mut self,
        path: &Path,
        origin: String,
        mut parsed: Parsed,
        outlet: Option<&str>,
        title: Option<String>,
        link: Option<String>,
        published: Option<String>,
    ) {
        let page = std::mem::take(&mut parsed.meta);
        parsed.meta = ArticleMeta {
            title: title.or(page.title),
            url: link.or(page.url),
            source: outlet.map(str::to_string).or(page.source),
            published: published.or(page.published),
        };
        self.add(path, origin, parsed);
    }

    /// The run's fetcher, made on first use.
    fn fetcher(&mut self) -> &Fetcher {
        self.fetcher
            .get_or_insert_with(|| Fetcher::new(self.options.fetch.clone()))
    }
}

/// Item content, HTML or plain text, as paragraphs.
fn read_body(body: &str) -> Parsed {
    let body = normalize(body);
    let mut parsed = if looks_like_html(&body) {
        parse_html(&body)
    } else {
        parse_text(&body, true)
    };
    parsed.meta = ArticleMeta::default();
    parsed
}

fn words(parsed: &Parsed) -> usize {
    parsed
        .paragraphs
        .iter()
        .map(|p| p.split_whitespace().count())
        .sum()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::{Local, TimeZone as _};

    use super::super::fetch::FetchSettings;
    use super::super::window::Window;
    use super::super::{ingest, IngestOptions, IngestReport};

    const BODY: &str = "Floods in Hue province have killed 14 people since Sunday, the provincial \
        disaster committee said. Heavy rain has fallen on central Vietnam for four days, and rivers \
        reached their highest level in two decades. About 3,000 homes were flooded and schools \
        closed. Rescue teams used boats to reach villages cut off by the water. The weather service \
        expects more rain until Wednesday, and officials asked residents of low-lying districts to \
        move to higher ground. Army units were sent to help with evacuations and to deliver food \
        and drinking water to stranded families in the province.";

    fn read(name: &str, text: &str, options: IngestOptions) -> IngestReport {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        ingest(&[path], &options).unwrap()
    }

    fn offline() -> IngestOptions {
        IngestOptions {
            fetch: FetchSettings {
                offline: true,
                ..FetchSettings::default()
            },
            ..IngestOptions::default()
        }
    }

    #[test]
    fn an_atom_entry_with_content_is_an_article_with_the_entrys_metadata() {
        let atom = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Wire Desk</title><id>urn:wire</id><updated>2026-11-30T01:00:00Z</updated>
<entry><title>Floods kill 14 in Hue</title><id>urn:1</id><link href="https://wire.example/flood"/>
<published>2026-11-30T01:00:00Z</published><updated>2026-11-30T01:00:00Z</updated>
<content type="html">&lt;p&gt;{BODY}&lt;/p&gt;</content></entry></feed>"#
        );
        let report = read("wire.atom", &atom, offline());
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        let article = &report.articles[0];
        assert_eq!(article.meta.title.as_deref(), Some("Floods kill 14 in Hue"));
        assert_eq!(
            article.meta.url.as_deref(),
            Some("https://wire.example/flood")
        );
        assert_eq!(article.meta.source.as_deref(), Some("Wire Desk"));
        assert_eq!(
            article.meta.published.as_deref(),
            Some("2026-11-30T01:00:00+00:00")
        );
        assert_eq!(article.origin, "https://wire.example/flood");
        assert!(article
            .text()
            .starts_with("Floods in Hue province have killed 14 people"));
    }

    #[test]
    fn a_json_feed_is_read_as_a_feed_not_as_a_record() {
        let feed = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Wire Desk",
            "items": [{ "id": "1", "url": "https://wire.example/flood", "title": "Floods kill 14 in Hue", "content_html": format!("<p>{BODY}</p>") }],
        });
        let report = read("wire.json", &feed.to_string(), offline());
        assert_eq!(report.articles.len(), 1, "{:?}", report.skipped);
        assert_eq!(
            report.articles[0].meta.title.as_deref(),
            Some("Floods kill 14 in Hue")
        );
    }

    #[test]
    fn a_teaser_item_whose_page_cannot_be_had_is_skipped_by_name() {
        let rss = r#"<rss version="2.0"><channel><title>Wire</title>
<item><title>Rail strike</title><link>https://wire.example/strike</link><description>Workers walk out.</description></item>
</channel></rss>"#;
        let report = read("wire.rss", rss, offline());
        assert!(report.articles.is_empty());
        assert_eq!(
            report.skipped[0].path,
            PathBuf::from("https://wire.example/strike")
        );
        assert_eq!(
            report.skipped[0].reason,
            "feed item \u{201c}Rail strike\u{201d}: its page was not fetched: \
             not fetched before, and --offline allows no fetching; run once without --offline"
        );
    }

    #[test]
    fn an_item_dated_before_the_window_is_left_out_before_its_page_is_fetched() {
        let rss = r#"<rss version="2.0"><channel><title>Wire</title>
<item><title>Rail strike</title><link>https://wire.example/strike</link><pubDate>Mon, 02 Nov 2026 08:00:00 +0000</pubDate><description>Workers walk out.</description></item>
</channel></rss>"#;
        let now = Local.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        let options = IngestOptions {
            window: Some(Window::parse("7d", now).unwrap()),
            ..offline()
        };
        let report = read("wire.rss", rss, options);
        assert!(
            report.articles.is_empty() && report.skipped.is_empty(),
            "{:?}",
            report.skipped
        );
        assert_eq!(report.left_out, 1);
        assert_eq!(report.fetched.requests, 0);
    }
}
