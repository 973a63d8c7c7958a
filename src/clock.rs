//! The run's "now": the system clock, or `SOURCE_DATE_EPOCH` (seconds since 1970, the
//! reproducible-builds convention) when it is set, so that a brief's date, its archive name
//! and `--since` windows can be pinned — by a rebuild of an old night's brief, and by tests
//! that simulate several nights in one.

use chrono::{DateTime, Local, NaiveDate, TimeZone as _};

/// The moment the run treats as now.
pub(crate) fn now() -> DateTime<Local> {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| Local.timestamp_opt(secs, 0).single())
        .unwrap_or_else(Local::now)
}

/// Today's date in local time, per [`now`].
pub(crate) fn today() -> NaiveDate {
    now().date_naive()
}
