//! `--since`: the time window a nightly run reads. An article is kept when it was published
//! in the window — per its front matter, JSON field, HTML `article:published_time` / `<time>`
//! or feed item date — or, when it states no date ingest can read, when its file was modified
//! in the window. Articles left out are counted, not listed as skipped: they are not faults.
//!
//! Durations are the ages every flag takes (`units::parse_age`: `90m`, `24h`, `7d`, `2w`);
//! dates, in articles and on the command line, are the few shapes chrono parses below.

use std::time::SystemTime;

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone as _, Utc};

use crate::units::parse_age;

/// The start of the window: articles from this moment on are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
}

/// A `--since` value that is neither a duration nor a date.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("--since {value}: give a duration such as 24h, 7d or 90m, or a date such as 2026-11-30")]
pub(crate) struct WindowError {
    pub(crate) value: String,
}

impl Window {
    /// `24h`, `7d`, `2w`, `90m` before `now`, or a date (local midnight) or RFC 3339
    /// time.
    pub(crate) fn parse(value: &str, now: DateTime<Local>) -> Result<Window, WindowError> {
        let error = || WindowError {
            value: value.to_string(),
        };
        let trimmed = value.trim();
        if let Ok(duration) = parse_age(trimmed) {
            let duration = chrono::Duration::from_std(duration).map_err(|_| error())?;
            return Ok(Window {
                start: now.with_timezone(&Utc) - duration,
            });
        }
        parse_time(trimmed)
            .map(|start| Window { start })
            .ok_or_else(error)
    }

    /// Whether an article with this stated date (if readable) and file time is in the window.
    pub(crate) fn keeps(&self, published: Option<&str>, modified: Option<SystemTime>) -> bool {
        match published.and_then(parse_time) {
            Some(time) => time >= self.start,
            // Neither a date nor a file time (a record read from stdin, say): nothing says it
            // is old, so it is kept.
            None => modified.is_none_or(|m| DateTime::<Utc>::from(m) >= self.start),
        }
    }
}

/// A date or time as articles and feeds write them: RFC 3339, RFC 2822 (RSS), ISO without a
/// zone (read as local time), or a plain date (local midnight).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Local
                .from_local_datetime(&t)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    let date = NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    Local
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Local> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
            .unwrap()
            .with_timezone(&Local)
    }

    #[test]
    fn durations_count_back_from_now_and_dates_start_at_midnight() {
        let day = Window::parse("24h", now()).unwrap();
        assert_eq!(
            day.start,
            Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
        );
        assert_eq!(
            Window::parse("7d", now()).unwrap().start,
            Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
        );
        let date = Window::parse("2026-11-30", now()).unwrap();
        assert_eq!(date.start, parse_time("2026-11-30").unwrap());
        assert_eq!(
            Window::parse("yesterday", now()).unwrap_err().to_string(),
            "--since yesterday: give a duration such as 24h, 7d or 90m, or a date such as 2026-11-30"
        );
    }

    #[test]
    fn a_stated_date_decides_before_the_file_time() {
        let window = Window::parse("24h", now()).unwrap();
        let recent_file = Some(SystemTime::from(
            Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap(),
        ));
        let old_file = Some(SystemTime::from(
            Utc.with_ymd_and_hms(2026, 11, 1, 6, 0, 0).unwrap(),
        ));
        assert!(window.keeps(Some("2026-12-01T08:00:00Z"), old_file));
        assert!(!window.keeps(Some("Mon, 23 Nov 2026 08:00:00 +0000"), recent_file));
        assert!(!window.keeps(Some("2026-11-02"), recent_file));
        // No readable date: the file time decides.
        assert!(window.keeps(Some("last Tuesday"), recent_file));
        assert!(!window.keeps(None, old_file));
        assert!(window.keeps(None, None));
    }
}
