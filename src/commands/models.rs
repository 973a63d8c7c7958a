//! `polybrief models list|fetch|verify`: what a run needs, getting it, and re-checking the cache.
//!
//! Tables and summaries go to stdout; progress and warnings go to stderr through the reporter.

use std::path::PathBuf;

use crate::article::Lang;
use crate::config::Context;
use crate::error::{Error, ExitCode};
use crate::models::catalog::{Catalog, ModelEntry, Need, Role, TranslatorKind};
use crate::models::hub::{CacheState, FileOutcome, ModelStore};
use crate::units::human_bytes;

/// What `polybrief models` was asked to do (from `cli::ModelsCommand`).
#[derive(Clone, Debug)]
pub enum ModelsAction {
    /// Show the models a run needs, whether each is cached, and how big it is.
    List {
        /// Source languages to plan for, as a comma list (`de,vi,ko`). Without it, every
        /// catalog model is listed.
        lang: Vec<Lang>,
    },
    /// Download and verify the models a run needs (translators for `--lang`, plus the
    /// summarizer); already cached files are only verified.
    Fetch {
        /// Source languages whose translators to fetch, as a comma list (`de,vi,ko`).
        lang: Vec<Lang>,
        /// Fetch every model of the catalog (several GB).
        all: bool,
    },
    /// Re-hash every cached catalog model; remove and report files that fail.
    Verify,
}

pub fn run(cmd: ModelsAction, ctx: &Context) -> Result<ExitCode, Error> {
    let store = ctx.model_store();
    let mut out = String::new();
    let code = match cmd {
        ModelsAction::List { lang } => {
            let rows = rows_for(&ctx.catalog, &lang);
            out.push_str(&list_table(&store, &rows));
            ExitCode::Success
        }
        ModelsAction::Fetch { lang, all } => {
            let rows = if all {
                rows_for(&ctx.catalog, &[])
            } else {
                let rows = rows_for(&ctx.catalog, &lang);
                if lang.is_empty() {
                    log::info!("no --lang given: fetching the summarizer and embedder only (add --lang de,vi or --all)");
                    rows.into_iter()
                        .filter(|r| {
                            !r.roles
                                .iter()
                                .all(|role| matches!(role, Role::Translate { .. }))
                        })
                        .collect()
                } else {
                    rows
                }
            };
            for row in &rows {
                let model = store.fetch(row.entry)?;
                let bytes: u64 = model
                    .files
                    .values()
                    .filter_map(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum();
                let dir = model
                    .files
                    .values()
                    .next()
                    .and_then(|p| p.parent())
                    .map(PathBuf::from)
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{}: {} files, {} verified, in {}\n",
                    row.entry.id,
                    model.files.len(),
                    human_bytes(bytes),
                    dir.display()
                ));
                // Print as we go so a later failure does not hide what succeeded.
                print_stdout(&std::mem::take(&mut out))?;
            }
            ExitCode::Success
        }
        ModelsAction::Verify => {
            let mut corrupt = 0;
            let mut checked = 0;
            for entry in ctx.catalog.entries() {
                let report = store.verify(entry)?;
                if report
                    .files
                    .iter()
                    .all(|f| f.outcome == FileOutcome::NotCached)
                {
                    continue;
                }
                checked += 1;
                let mut verified = 0;
                let mut unchecked = 0;
                let mut missing = 0;
                for f in &report.files {
                    match &f.outcome {
                        FileOutcome::Verified { .. } => verified += 1,
                        FileOutcome::Unchecked => unchecked += 1,
                        FileOutcome::NotCached => missing += 1,
                        FileOutcome::Corrupt { reason, .. } => {
                            corrupt += 1;
                            out.push_str(&format!("{}/{}: CORRUPT: {reason}\n", entry.id, f.name));
                        }
                    }
                }
                let mut parts = vec![format!("{verified} verified")];
                if unchecked > 0 {
                    parts.push(format!("{unchecked} without a published hash"));
                }
                if missing > 0 {
                    parts.push(format!("{missing} not cached"));
                }
                let status = if report.is_ok() { "ok" } else { "FAILED" };
                out.push_str(&format!("{}: {status} ({})\n", entry.id, parts.join(", ")));
            }
            out.push_str(&format!(
                "{checked} cached models checked, {corrupt} corrupt files removed\n"
            ));
            if corrupt > 0 {
                ExitCode::Fatal
            } else {
                ExitCode::Success
            }
        }
    };
    print_stdout(&out)?;
    Ok(code)
}

/// The models to show or fetch: what `langs` needs, or every catalog entry.
fn rows_for<'a>(catalog: &'a Catalog, langs: &[Lang]) -> Vec<Need<'a>> {
    if !langs.is_empty() {
        return catalog.needed_for(langs);
    }
    catalog
        .entries()
        .iter()
        .map(|entry| {
            let mut roles: Vec<Role> = entry
                .langs
                .iter()
                .map(|lang| Role::Translate {
                    lang: lang.clone(),
                    kind: if entry.is_group() {
                        TranslatorKind::Group
                    } else {
                        TranslatorKind::Direct
                    },
                })
                .collect();
            for task in &entry.tasks {
                match task {
                    crate::models::catalog::Task::Summarize => roles.push(Role::Summarize),
                    crate::models::catalog::Task::Synthesize => roles.push(Role::Synthesize),
                    crate::models::catalog::Task::Embed => roles.push(Role::Embed),
                    crate::models::catalog::Task::Translate => {}
                }
            }
            Need { entry, roles }
        })
        .collect()
}

fn list_table(store: &ModelStore, rows: &[Need<'_>]) -> String {
    let header = ["MODEL", "FOR", "REVISION", "SIZE", "LICENSE", "STATE"].map(String::from);
    let mut table = vec![header];
    let mut to_download = SizeSum::default();
    let mut missing = 0;
    for row in rows {
        let entry = row.entry;
        let purpose = if row.roles.is_empty() {
            if entry.fallback {
                "any other→en (fallback)".to_string()
            } else {
                "-".to_string()
            }
        } else {
            row.roles
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let size = SizeSum::of(entry);
        let state = match store.cache_state(entry) {
            CacheState::Cached { bytes } => format!("cached ({})", human_bytes(bytes)),
            CacheState::Partial {
                present,
                total,
                bytes,
            } => {
                missing += 1;
                to_download.add(&size);
                format!("partial ({present}/{total} files, {})", human_bytes(bytes))
            }
            CacheState::NotCached => {
                missing += 1;
                to_download.add(&size);
                "not cached".to_string()
            }
            CacheState::LocalDir { .. } => "local dir".to_string(),
            CacheState::LocalDirIncomplete { missing } => {
                format!("local dir lacks {}", missing.join(", "))
            }
        };
        table.push([
            entry.id.clone(),
            purpose,
            revision_label(entry),
            size.to_string(),
            entry.license.clone(),
            state,
        ]);
    }
    let mut out = render(&table);
    if missing > 0 {
        out.push_str(&format!(
            "\n{missing} of {} models not cached; to download: {to_download}\n",
            rows.len()
        ));
    } else {
        out.push_str(&format!("\nall {} models cached\n", rows.len()));
    }
    if rows
        .iter()
        .any(|r| r.entry.path.is_none() && !r.entry.is_pinned())
    {
        out.push_str(
            "unpinned: the revision is a branch, so the files may change; scripts/ops/pin_catalog.py pins them\n",
        );
    }
    out
}

fn revision_label(entry: &ModelEntry) -> String {
    if let Some(path) = &entry.path {
        return format!("local: {}", path.display());
    }
    let main = if crate::models::catalog::is_commit_sha(&entry.revision) {
        entry.revision[..12].to_string()
    } else {
        format!("{} (unpinned)", entry.revision)
    };
    let others_unpinned = entry.files.iter().any(|f| {
        let (repo, rev) = entry.source_of(f);
        repo != entry.repo && !crate::models::catalog::is_commit_sha(rev)
    });
    if others_unpinned && crate::models::catalog::is_commit_sha(&entry.revision) {
        format!("{main} (partly unpinned)")
    } else {
        main
    }
}

/// A model's download size from the catalog: exact, approximate (`~`), or partly unknown.
#[derive(Default)]
struct SizeSum {
    bytes: u64,
    approximate: bool,
    unknown: usize,
    files: usize,
}

impl SizeSum {
    fn of(entry: &ModelEntry) -> SizeSum {
        let mut sum = SizeSum::default();
        for f in &entry.files {
            sum.files += 1;
            match (f.size, f.approx_size) {
                (Some(size), _) => sum.bytes += size,
                (None, Some(approx)) => {
                    sum.bytes += approx;
                    sum.approximate = true;
                }
                (None, None) => sum.unknown += 1,
            }
        }
        sum
    }

    fn add(&mut self, other: &SizeSum) {
        self.bytes += other.bytes;
        self.approximate |= other.approximate;
        self.unknown += other.unknown;
        self.files += other.files;
    }
}

impl std::fmt::Display for SizeSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.files > 0 && self.unknown == self.files {
            return f.write_str("unknown");
        }
        let tilde = if self.approximate { "~" } else { "" };
        let more = if self.unknown > 0 { " +?" } else { "" };
        write!(f, "{tilde}{}{more}", human_bytes(self.bytes))
    }
}

fn render(rows: &[[String; 6]]) -> String {
    let mut widths = [0usize; 6];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Through the one stdout writer, so `polybrief models list | head` is not an error.
fn print_stdout(text: &str) -> Result<(), Error> {
    Ok(crate::output::write_stdout(text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::hub::HubSettings;
    use crate::progress::Reporter;

    #[test]
    fn list_shows_needed_models_with_sizes_and_cache_state() {
        let catalog = Catalog::builtin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(
            HubSettings::new(dir.path(), "http://127.0.0.1:9"),
            Reporter::hidden(),
        );
        let langs: Vec<Lang> = ["de", "vi", "ko"]
            .iter()
            .map(|c| Lang::parse(c).unwrap())
            .collect();
        let table = list_table(&store, &catalog.needed_for(&langs));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("MODEL"));
        assert!(
            lines[1].starts_with("opus-mt-de-en ") && lines[1].contains("de→en"),
            "{table}"
        );
        assert!(
            lines[1].contains("8be33f00bcaf") && lines[1].contains("~286.9 MiB"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("opus-mt-vi-en ") && lines[2].contains("~278.2 MiB"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("opus-mt-tc-big-ko-en ") && lines[3].contains("main (unpinned)"),
            "{table}"
        );
        assert!(lines[3].contains("unknown"), "{table}");
        assert!(
            lines[4].starts_with("qwen2.5-1.5b-instruct-q4_k_m ")
                && lines[4].contains("summarize, synthesize")
        );
        assert!(lines[4].contains("1.0 GiB +?"), "{table}");
        assert!(
            lines[5].starts_with("all-minilm-l6-v2 ")
                && lines[5].contains("embed (story grouping)"),
            "{table}"
        );
        assert!(
            lines[1..6].iter().all(|l| l.ends_with("not cached")),
            "{table}"
        );
        assert!(table.contains("5 of 5 models not cached"), "{table}");
    }
}
