//! JSON inputs: one record, an array of records, or JSON Lines; each record's text and
//! metadata fields.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::article::ArticleMeta;

use super::decode::normalize;
use super::html::{looks_like_html, parse_html};
use super::text::{clean_inline, parse_text};
use super::walk::Ingest;

impl Ingest<'_> {
    pub(super) fn json(&mut self, path: &Path, origin: &str, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(err) => return self.skip(path, format!("not valid JSON: {err}")),
        };
        if super::feed::is_json_feed(&value) {
            return self.feed(path, origin, text, None);
        }
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

    pub(super) fn json_lines(&mut self, path: &Path, origin: &str, text: &str) {
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
}
