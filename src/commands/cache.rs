//! `polybrief cache stats|prune`: look at and trim the stage cache (see `crate::cache`).
//!
//! The cache folder itself comes from the global `--cache-dir` / `POLYBRIEF_CACHE_DIR`
//! (default `$XDG_CACHE_HOME/polybrief` or `~/.cache/polybrief`), resolved by the caller.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cache::{CacheStats, PruneReport, StageCache, Usage};
use crate::error::Error;
use crate::units::human_bytes;

/// What `polybrief cache` was asked to do (from `cli::CacheCommand`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheAction {
    /// Show the cache folder, its entries and size by stage; `json` for JSON.
    Stats { json: bool },
    /// Remove entries unused for `older_than`, old-format entries and leftover temp files.
    Prune {
        older_than: Duration,
        dry_run: bool,
        json: bool,
    },
}

/// Runs `polybrief cache ...` on the cache at `cache_dir`; the result goes to stdout.
pub fn run(action: &CacheAction, cache_dir: &Path) -> Result<(), Error> {
    let mut text = Vec::new();
    run_to(action, cache_dir, &mut text)?;
    Ok(crate::output::write_stdout(&text)?)
}

/// [`run`], writing the result to `out`.
pub fn run_to(action: &CacheAction, cache_dir: &Path, out: &mut impl Write) -> Result<(), Error> {
    let cache = StageCache::open(cache_dir)?;
    let text = match action {
        CacheAction::Stats { json } => {
            let stats = cache.stats()?;
            if *json {
                to_json(&stats)
            } else {
                format_stats(&stats, SystemTime::now())
            }
        }
        CacheAction::Prune {
            older_than,
            dry_run,
            json,
        } => {
            let report = cache.prune(*older_than, *dry_run)?;
            if *json {
                to_json(&report)
            } else {
                format_prune(&report, *older_than)
            }
        }
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| Error::Write {
            path: "<stdout>".into(),
            source,
        })
}

fn to_json(value: &impl serde::Serialize) -> String {
    // Plain data of numbers, strings and maps with string keys: cannot fail.
    let mut json = serde_json::to_string_pretty(value).unwrap_or_default();
    json.push('\n');
    json
}

fn format_stats(stats: &CacheStats, now: SystemTime) -> String {
    let mut out = format!(
        "cache folder: {}\nformat: v{}\n",
        stats.dir.display(),
        stats.format
    );
    out.push_str(&format!(
        "{:<14} {:>9} {:>10}\n",
        "stage", "entries", "size"
    ));
    for (stage, usage) in &stats.by_stage {
        out.push_str(&format!(
            "{:<14} {:>9} {:>10}\n",
            stage,
            usage.entries,
            human_bytes(usage.bytes)
        ));
    }
    out.push_str(&format!(
        "{:<14} {:>9} {:>10}\n",
        "total",
        stats.entries,
        human_bytes(stats.bytes)
    ));
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let (Some(oldest), Some(newest)) = (stats.oldest_use, stats.newest_use) {
        out.push_str(&format!(
            "last used: between {} and {} ago\n",
            human_age(now_secs.saturating_sub(newest)),
            human_age(now_secs.saturating_sub(oldest)),
        ));
    }
    let leftovers = [
        (stats.old_format, "entries of older cache formats"),
        (stats.temp_files, "temporary files from interrupted writes"),
    ];
    for (usage, what) in leftovers {
        if usage.entries > 0 {
            out.push_str(&format!(
                "{} {what} ({}); `polybrief cache prune` removes them\n",
                usage.entries,
                human_bytes(usage.bytes)
            ));
        }
    }
    out
}

fn format_prune(report: &PruneReport, older_than: Duration) -> String {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let line = |usage: Usage, what: &str| {
        format!(
            "{verb} {} {what} ({})\n",
            usage.entries,
            human_bytes(usage.bytes)
        )
    };
    let mut out = line(
        report.removed,
        &format!(
            "entries unused for {} or more",
            human_age(older_than.as_secs())
        ),
    );
    if report.removed_old_format.entries > 0 {
        out.push_str(&line(
            report.removed_old_format,
            "entries of older cache formats",
        ));
    }
    if report.removed_temp_files.entries > 0 {
        out.push_str(&line(
            report.removed_temp_files,
            "temporary files from interrupted writes",
        ));
    }
    out.push_str(&format!(
        "kept {} entries ({})\n",
        report.kept.entries,
        human_bytes(report.kept.bytes)
    ));
    out
}

fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn stats_table_lists_stages_totals_and_leftovers() {
        let mut by_stage = BTreeMap::new();
        by_stage.insert(
            "summary".to_string(),
            Usage {
                entries: 2,
                bytes: 2048,
            },
        );
        by_stage.insert(
            "translation".to_string(),
            Usage {
                entries: 3,
                bytes: 100,
            },
        );
        let stats = CacheStats {
            dir: "/var/cache/polybrief".into(),
            format: 1,
            entries: 5,
            bytes: 2148,
            by_stage,
            temp_files: Usage {
                entries: 1,
                bytes: 10,
            },
            oldest_use: Some(1_000_000 - 3 * 86_400),
            newest_use: Some(1_000_000 - 60),
            ..CacheStats::default()
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let expected = "\
cache folder: /var/cache/polybrief
format: v1
stage            entries       size
summary                2    2.0 KiB
translation            3      100 B
total                  5    2.1 KiB
last used: between 60s and 3d ago
1 temporary files from interrupted writes (10 B); `polybrief cache prune` removes them
";
        assert_eq!(format_stats(&stats, now), expected);
    }

    #[test]
    fn stats_and_prune_run_against_a_real_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let key = crate::cache::CacheKey::new("summary", "abc", &()).unwrap();
        cache.put(&key, &"x").unwrap();
        let args = CacheAction::Prune {
            older_than: Duration::ZERO,
            dry_run: false,
            json: true,
        };
        let mut out = Vec::new();
        run_to(&args, dir.path(), &mut out).unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(report["removed"]["entries"], 1);
        assert_eq!(
            cache.get::<String>(&key),
            None,
            "an age of zero empties the cache"
        );

        let stats = CacheAction::Stats { json: false };
        let mut out = Vec::new();
        run_to(&stats, dir.path(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("total                  0        0 B"),
            "{text}"
        );
    }
}
