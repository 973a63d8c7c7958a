//! Since the last brief: what is new against the previous brief — stories that are new,
//! stories that continue with figures that changed ("people: 12 → 14"), and stories that
//! dropped out.
//!
//! The Markdown of the section is the renderer's (`render/since.rs`). Each brief carries a [`StoryDigest`] per story in its JSON (and `--archive` keeps that JSON
//! beside the Markdown), so the next run can compare without the previous day's articles.
//! Stories are matched across days by the machinery that groups sources within a run: the
//! same article (same text, same id) in both is the same story; otherwise the TF-IDF
//! similarity over words, names and numbers of their titles and key points must reach the
//! grouping threshold. Figures are compared the way disagreements are found within a story:
//! a value and the measure it states (`quantities`), keyed by that measure.
//!
//! Only quantities (counts, percentages, money) are compared: dates in news are relative
//! ("on Monday") and a continuing story reports each day's events, so a different date is
//! rarely a corrected fact. Everything here is deterministic: no clock, no hash-map order.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::article::Summary;
use crate::article::{EnglishArticle, SourceNumber, Story};
use crate::pipeline::facts::Unit;

use super::group::lexical_similarity;
use super::quantities::{quantities, Event, Measure};
use super::SynthesisOptions;

/// What the next run needs of a story to say what changed; written into the brief's JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoryDigest {
    pub(crate) title: String,
    pub(crate) sources: Vec<SourceNumber>,
    /// Ids of the story's articles: the same article on two days means the same story.
    pub(crate) articles: Vec<String>,
    /// Title and key points: what two stories sharing no article are compared by.
    pub(crate) text: String,
    /// The quantities the story's sources state, one entry per subject, in order of first
    /// mention.
    pub(crate) facts: Vec<StatedFact>,
}

/// The values a story's sources give for one subject ("people", "jobs").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StatedFact {
    /// "count|peopl": kind of value and stemmed subject words, the comparison key.
    pub(crate) subject_key: String,
    /// As written: "people".
    pub(crate) subject: String,
    /// 1 or 2 subject words after the value, 0 for the word before it.
    pub(crate) specificity: u8,
    /// Each distinct value with the sources stating it; most sources first.
    pub(crate) values: Vec<StatedValue>,
}

impl StatedFact {
    /// Replaces each source number with `map`'s, which must keep their order.
    pub(crate) fn renumber(&mut self, mut map: impl FnMut(&mut SourceNumber)) {
        for value in &mut self.values {
            value.sources.iter_mut().for_each(&mut map);
        }
    }
}

/// One value and its sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StatedValue {
    /// The normalised value ("12", "1200000").
    pub(crate) key: String,
    /// As the first source wrote it ("12", "1.2 million").
    pub(crate) text: String,
    pub(crate) sources: Vec<SourceNumber>,
}

/// The "Since the last brief" section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinceLastBrief {
    /// The previous brief's date.
    pub(crate) previous_date: String,
    pub(crate) new_stories: Vec<StoryRef>,
    /// Continuing stories whose figures changed.
    pub(crate) changed: Vec<ChangedStory>,
    /// How many stories continue with no figure changed.
    pub(crate) unchanged: usize,
    /// Stories of the previous brief with no counterpart in this one.
    pub(crate) dropped: Vec<StoryRef>,
}

/// A story by title, with its sources (in the brief it belongs to).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoryRef {
    pub(crate) title: String,
    pub(crate) sources: Vec<SourceNumber>,
}

/// A continuing story and its changed figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChangedStory {
    pub(crate) title: String,
    pub(crate) sources: Vec<SourceNumber>,
    pub(crate) changes: Vec<FactChange>,
}

/// One figure that moved: its values in the previous brief (citing that brief's sources)
/// and in this one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FactChange {
    pub(crate) subject: String,
    pub(crate) before: Vec<StatedValue>,
    pub(crate) after: Vec<StatedValue>,
}

/// Changed figures shown per story, at most.
const MAX_CHANGES: usize = 5;

/// The digest of every story, from the English text of its sources. A run takes each
/// story's digest from its synthesis instead (`Synthesis::digest`: the facts are cached with
/// the story, so a re-run does not scan every source's quantities again); this is the same
/// computation in one piece, which tests compare with.
#[cfg(test)]
pub(crate) fn digest(
    stories: &[Story],
    sources: &[(SourceNumber, &EnglishArticle, &Summary)],
) -> Vec<StoryDigest> {
    stories
        .iter()
        .map(|story| {
            let members: Vec<(SourceNumber, &EnglishArticle)> = sources
                .iter()
                .filter(|(n, _, _)| story.sources.contains(n))
                .map(|(n, a, _)| (*n, *a))
                .collect();
            let articles: Vec<&EnglishArticle> = members.iter().map(|(_, a)| *a).collect();
            story_digest(story, &articles, stated_facts(&members))
        })
        .collect()
}

/// The digest of `story`, whose sources are `articles`, with the `facts` they state
/// ([`stated_facts`] in the story's numbers).
pub(crate) fn story_digest(
    story: &Story,
    articles: &[&EnglishArticle],
    facts: Vec<StatedFact>,
) -> StoryDigest {
    let mut ids: Vec<String> = articles
        .iter()
        .map(|a| a.article.id.as_str().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    let mut text = story.title.clone();
    for point in &story.points {
        text.push('\n');
        text.push_str(&point.text);
    }
    StoryDigest {
        title: story.title.clone(),
        sources: story.sources.clone(),
        articles: ids,
        text,
        facts,
    }
}

/// One stated value, keyed by the measure it is a value of: the within-run disagreement
/// finder's notion of "the same thing" (`quantities`), flattened to strings that the brief's
/// JSON keeps from one night to the next.
struct Mention {
    /// "count|people|flood": kind of value, counted thing and event.
    subject_key: String,
    subject_text: String,
    value_key: String,
    value_text: String,
    source: SourceNumber,
    position: usize,
    /// Always 1 (one subject per value); kept so digests of older briefs still compare.
    specificity: u8,
}

fn mentions_in(text: &str, source: SourceNumber) -> Vec<Mention> {
    quantities(text)
        .into_iter()
        .filter_map(|q| {
            Some(Mention {
                subject_key: measure_key(&q.measure)?,
                subject_text: q.subject_text,
                value_key: q.value_key.to_string(),
                value_text: q.value_text,
                source,
                position: q.span.start,
                specificity: 1,
            })
        })
        .collect()
}

/// `count|nurse|strike`; `None` for dates, which are not compared across days.
fn measure_key(measure: &Measure) -> Option<String> {
    let unit = match measure.unit {
        Unit::Count => "count",
        Unit::Percent => "percent",
        Unit::Money => "money",
        _ => return None,
    };
    let event = match &measure.event {
        Event::Known(class) => class.to_string(),
        Event::Nearby(stem) => stem.clone(),
    };
    Some(format!(
        "{unit}|{}|{event}",
        measure.thing.as_deref().unwrap_or_default()
    ))
}

/// The quantities stated by the story's sources (their text as read, instructions to
/// machines included). A source giving two values for one subject is left out of it, as for
/// disagreements. Only the order of the source numbers matters, so the facts of a story
/// numbered 1..k, renumbered into the run ([`StatedFact::renumber`]), are the run's.
pub(crate) fn stated_facts(members: &[(SourceNumber, &EnglishArticle)]) -> Vec<StatedFact> {
    let mentions: Vec<_> = members
        .iter()
        .flat_map(|(n, a)| mentions_in(&a.text(), *n))
        .filter(|m| {
            ["count|", "percent|", "money|"]
                .iter()
                .any(|k| m.subject_key.starts_with(k))
        })
        .collect();
    // subject → source → values.
    let mut by_subject: BTreeMap<&str, BTreeMap<SourceNumber, BTreeSet<&str>>> = BTreeMap::new();
    for m in &mentions {
        by_subject
            .entry(&m.subject_key)
            .or_default()
            .entry(m.source)
            .or_default()
            .insert(&m.value_key);
    }
    let mut facts: Vec<((SourceNumber, usize), StatedFact)> = Vec::new();
    for (subject, per_source) in by_subject {
        let unambiguous: BTreeMap<SourceNumber, &str> = per_source
            .iter()
            .filter_map(|(s, values)| {
                (values.len() == 1)
                    .then(|| values.iter().next().map(|v| (*s, *v)))
                    .flatten()
            })
            .collect();
        let of_subject: Vec<_> = mentions
            .iter()
            .filter(|m| {
                m.subject_key == subject
                    && unambiguous.get(&m.source) == Some(&m.value_key.as_str())
            })
            .collect();
        let Some(first) = of_subject.iter().min_by_key(|m| (m.source, m.position)) else {
            continue;
        };
        let distinct: BTreeSet<&str> = unambiguous.values().copied().collect();
        let mut values: Vec<StatedValue> = distinct
            .iter()
            .map(|value| {
                let text = of_subject
                    .iter()
                    .filter(|m| m.value_key == *value)
                    .min_by_key(|m| (m.source, m.position))
                    .map_or_else(|| value.to_string(), |m| m.value_text.clone());
                let sources = unambiguous
                    .iter()
                    .filter(|(_, v)| *v == value)
                    .map(|(s, _)| *s)
                    .collect();
                StatedValue {
                    key: value.to_string(),
                    text,
                    sources,
                }
            })
            .collect();
        values.sort_by(|a, b| {
            b.sources
                .len()
                .cmp(&a.sources.len())
                .then(a.sources.cmp(&b.sources))
        });
        facts.push((
            (first.source, first.position),
            StatedFact {
                subject_key: subject.to_string(),
                subject: first.subject_text.clone(),
                specificity: first.specificity,
                values,
            },
        ));
    }
    facts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.subject_key.cmp(&b.1.subject_key)));
    facts.into_iter().map(|(_, f)| f).collect()
}

/// What this run's stories say against the previous brief's.
pub(crate) fn compare(previous: &ArchivedBrief, current: &[StoryDigest]) -> SinceLastBrief {
    let pairs = match_stories(&previous.digest, current);
    let mut changed = Vec::new();
    let mut unchanged = 0;
    let mut matched_previous = BTreeSet::new();
    let mut matched_current = BTreeSet::new();
    for &(old, new) in &pairs {
        matched_previous.insert(old);
        matched_current.insert(new);
    }
    // In this brief's story order.
    let mut by_current: Vec<(usize, usize)> = pairs.iter().map(|&(o, n)| (n, o)).collect();
    by_current.sort_unstable();
    for (new, old) in by_current {
        let changes = fact_changes(&previous.digest[old].facts, &current[new].facts);
        if changes.is_empty() {
            unchanged += 1;
        } else {
            changed.push(ChangedStory {
                title: current[new].title.clone(),
                sources: current[new].sources.clone(),
                changes,
            });
        }
    }
    let story_ref = |d: &StoryDigest| StoryRef {
        title: d.title.clone(),
        sources: d.sources.clone(),
    };
    SinceLastBrief {
        previous_date: previous.date.clone(),
        new_stories: current
            .iter()
            .enumerate()
            .filter(|(i, _)| !matched_current.contains(i))
            .map(|(_, d)| story_ref(d))
            .collect(),
        changed,
        unchanged,
        dropped: previous
            .digest
            .iter()
            .enumerate()
            .filter(|(i, _)| !matched_previous.contains(i))
            .map(|(_, d)| story_ref(d))
            .collect(),
    }
}

/// One-to-one pairs (previous index, current index), best match first: stories sharing an
/// article before any that do not, then by similarity; ties go to the earliest stories.
fn match_stories(previous: &[StoryDigest], current: &[StoryDigest]) -> Vec<(usize, usize)> {
    let texts: Vec<&str> = previous
        .iter()
        .chain(current)
        .map(|d| d.text.as_str())
        .collect();
    let similarity = lexical_similarity(&texts);
    let threshold = SynthesisOptions::default().lexical_threshold;
    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for (i, old) in previous.iter().enumerate() {
        for (j, new) in current.iter().enumerate() {
            let shared = old
                .articles
                .iter()
                .filter(|a| new.articles.contains(a))
                .count();
            let score = if shared > 0 {
                // Above any cosine: the same text on both days is the same story.
                2.0 + shared as f32 / (old.articles.len() + new.articles.len() - shared) as f32
            } else {
                similarity[i][previous.len() + j]
            };
            if score >= threshold {
                candidates.push((score, i, j));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut used_old, mut used_new) = (BTreeSet::new(), BTreeSet::new());
    let mut pairs = Vec::new();
    for (_, i, j) in candidates {
        if !used_old.contains(&i) && !used_new.contains(&j) {
            used_old.insert(i);
            used_new.insert(j);
            pairs.push((i, j));
        }
    }
    pairs
}

/// The value keys of one subject before and after.
type ValueChange = (BTreeSet<String>, BTreeSet<String>);

/// Subjects stated on both days with different values. One change often shows under two
/// subject keys ("people", "people hue"): it is reported once, under the plainest.
fn fact_changes(before: &[StatedFact], after: &[StatedFact]) -> Vec<FactChange> {
    let keys = |f: &StatedFact| {
        f.values
            .iter()
            .map(|v| v.key.clone())
            .collect::<BTreeSet<_>>()
    };
    let plainness = |s: u8| match s {
        1 => 0,
        2 => 1,
        _ => 2,
    };
    // (values before, values after) → (first position, the fact before, the fact after).
    let mut best: BTreeMap<ValueChange, (usize, &StatedFact, &StatedFact)> = BTreeMap::new();
    for (order, new) in after.iter().enumerate() {
        let Some(old) = before.iter().find(|o| o.subject_key == new.subject_key) else {
            continue;
        };
        let (old_keys, new_keys) = (keys(old), keys(new));
        if old_keys == new_keys || old_keys.is_empty() || new_keys.is_empty() {
            continue;
        }
        let entry = best
            .entry((old_keys, new_keys))
            .or_insert((order, old, new));
        if plainness(new.specificity) < plainness(entry.2.specificity) {
            *entry = (order.min(entry.0), old, new);
        }
    }
    let mut changes: Vec<(usize, FactChange)> = best
        .into_values()
        .map(|(order, old, new)| {
            (
                order,
                FactChange {
                    subject: new.subject.clone(),
                    before: old.values.clone(),
                    after: new.values.clone(),
                },
            )
        })
        .collect();
    changes.sort_by_key(|(order, _)| *order);
    changes
        .into_iter()
        .map(|(_, c)| c)
        .take(MAX_CHANGES)
        .collect()
}

/// What is read back of a previous brief's JSON: its date and story digests. Other fields
/// are ignored, so any polybrief JSON brief will do.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub(crate) struct ArchivedBrief {
    pub(crate) date: String,
    #[serde(default)]
    pub(crate) stories: Vec<serde_json::Value>,
    #[serde(default)]
    pub(crate) digest: Vec<StoryDigest>,
}

/// Why a previous brief could not be compared with. Never fatal: the run notes it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PreviousBriefError {
    #[error("the previous brief {} could not be read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the previous brief {} is not a polybrief JSON brief: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the previous brief {} has no story digests (it was written by an older polybrief)", path.display())]
    NoDigest { path: PathBuf },
}

/// The section against `previous` (`--previous`) or else the newest brief in `archive`
/// dated before `today`; `None` when there is neither (a first run: no section).
pub(crate) fn since_previous(
    previous: Option<&Path>,
    archive: Option<&Path>,
    today: NaiveDate,
    current: &[StoryDigest],
) -> Result<Option<SinceLastBrief>, PreviousBriefError> {
    let found = archive.and_then(|dir| previous_in_archive(dir, today));
    let Some(path) = previous.or(found.as_deref()) else {
        return Ok(None);
    };
    Ok(Some(compare(&load_previous(path)?, current)))
}

/// Reads a previous brief's JSON.
pub(crate) fn load_previous(path: &Path) -> Result<ArchivedBrief, PreviousBriefError> {
    let text = std::fs::read_to_string(path).map_err(|source| PreviousBriefError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let brief: ArchivedBrief =
        serde_json::from_str(&text).map_err(|source| PreviousBriefError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    if brief.digest.is_empty() && !brief.stories.is_empty() {
        return Err(PreviousBriefError::NoDigest {
            path: path.to_path_buf(),
        });
    }
    Ok(brief)
}

/// The newest archived JSON brief (`brief-YYYY-MM-DD.json`) dated before `today`: a second
/// run on one day compares with the day before, as the first run that day did.
pub(crate) fn previous_in_archive(dir: &Path, today: NaiveDate) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let date = name.strip_prefix("brief-")?.strip_suffix(".json")?;
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
            (date < today).then(|| (date, e.path()))
        })
        .max()
        .map(|(_, path)| path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::KeyPoint;
    use crate::pipeline::synthesize::number_sources;
    use crate::pipeline::synthesize::test_support::{article, summary};

    fn story(title: &str, sources: &[SourceNumber], points: &[&str]) -> Story {
        Story {
            title: title.into(),
            sources: sources.to_vec(),
            points: points
                .iter()
                .map(|p| KeyPoint {
                    text: p.to_string(),
                    citations: sources.to_vec(),
                })
                .collect(),
            disagreements: vec![],
        }
    }

    /// Digests of one story per article, each article its own source.
    fn day(articles: &[(&str, &[&str])]) -> Vec<StoryDigest> {
        let english: Vec<EnglishArticle> =
            articles.iter().map(|(name, s)| article(name, s)).collect();
        let summaries: Vec<Summary> = english.iter().map(|a| summary(a, &[0])).collect();
        let numbered = number_sources(&english, &summaries);
        let stories: Vec<Story> = articles
            .iter()
            .enumerate()
            .map(|(i, (_, s))| story(&s[0].replace('.', ""), &[i + 1], &s[..1]))
            .collect();
        digest(&stories, &numbered)
    }

    fn archived(date: &str, digest: Vec<StoryDigest>) -> ArchivedBrief {
        ArchivedBrief {
            date: date.into(),
            stories: vec![],
            digest,
        }
    }

    const FLOOD_1: &[&str] = &[
        "Floods in Hue province killed 12 people on Monday.",
        "About 3,000 homes were flooded.",
    ];
    const FLOOD_2: &[&str] = &[
        "Floods in Hue province have killed 14 people since Monday.",
        "About 3,000 homes were flooded.",
    ];
    const STRIKE: &[&str] =
        &["Rail workers in Germany began a 48-hour strike over pay on Tuesday."];
    const EXPORTS: &[&str] =
        &["Vietnam's exports rose 15 percent in October, the statistics office said."];

    #[test]
    fn a_figure_that_moved_is_reported_with_both_days_sources() {
        let previous = archived(
            "2026-11-30",
            day(&[("flood.txt", FLOOD_1), ("strike.txt", STRIKE)]),
        );
        let current = day(&[("exports.txt", EXPORTS), ("flood.txt", FLOOD_2)]);
        let since = compare(&previous, &current);
        assert_eq!(
            since
                .new_stories
                .iter()
                .map(|s| s.title.as_str())
                .collect::<Vec<_>>(),
            [current[0].title.as_str()]
        );
        assert_eq!(
            since
                .dropped
                .iter()
                .map(|s| s.title.as_str())
                .collect::<Vec<_>>(),
            [previous.digest[1].title.as_str()]
        );
        assert_eq!(since.unchanged, 0);
        assert_eq!(since.changed.len(), 1, "{since:?}");
        let changes = &since.changed[0].changes;
        assert_eq!(changes.len(), 1, "homes did not change: {changes:?}");
        assert_eq!(changes[0].subject, "people killed");
        assert_eq!(
            changes[0].before,
            vec![StatedValue {
                key: "12".into(),
                text: "12".into(),
                sources: vec![1]
            }]
        );
        assert_eq!(
            changes[0].after,
            vec![StatedValue {
                key: "14".into(),
                text: "14".into(),
                sources: vec![2]
            }]
        );
    }

    #[test]
    fn the_same_article_on_both_days_is_one_unchanged_story() {
        let previous = archived("2026-11-30", day(&[("strike.txt", STRIKE)]));
        let since = compare(&previous, &day(&[("strike.txt", STRIKE)]));
        assert!(
            since.new_stories.is_empty() && since.changed.is_empty() && since.dropped.is_empty(),
            "{since:?}"
        );
        assert_eq!(since.unchanged, 1);
    }

    #[test]
    fn the_same_value_written_another_way_is_no_change() {
        let previous = archived(
            "d",
            day(&[(
                "a.txt",
                &["The plan will create 1 million jobs in Bavaria."],
            )]),
        );
        let since = compare(
            &previous,
            &day(&[(
                "b.txt",
                &["The plan will create 1,000,000 jobs in Bavaria, ministers said."],
            )]),
        );
        assert_eq!((since.changed.len(), since.unchanged), (0, 1), "{since:?}");
    }

    #[test]
    fn comparing_is_deterministic_and_survives_json() {
        let previous = archived(
            "2026-11-30",
            day(&[("flood.txt", FLOOD_1), ("strike.txt", STRIKE)]),
        );
        let json = serde_json::json!({ "date": "2026-11-30", "stories": [1, 2], "digest": previous.digest }).to_string();
        let reread: ArchivedBrief = serde_json::from_str(&json).unwrap();
        let current = day(&[("flood.txt", FLOOD_2)]);
        assert_eq!(compare(&reread, &current), compare(&previous, &current));
    }

    #[test]
    fn a_brief_without_digests_or_a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.json");
        std::fs::write(
            &old,
            r#"{"date": "2026-11-30", "stories": [{"title": "x"}]}"#,
        )
        .unwrap();
        let err = load_previous(&old).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the previous brief {} has no story digests (it was written by an older polybrief)",
                old.display()
            )
        );
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{").unwrap();
        assert!(matches!(
            load_previous(&broken),
            Err(PreviousBriefError::Parse { .. })
        ));
        assert!(matches!(
            load_previous(&dir.path().join("none.json")),
            Err(PreviousBriefError::Read { .. })
        ));
    }

    #[test]
    fn the_previous_brief_is_the_newest_json_dated_before_today() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "brief-2026-11-28.json",
            "brief-2026-11-29.json",
            "brief-2026-11-30.md",
            "brief-2026-12-01.json",
            "latest.md",
        ] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(
            previous_in_archive(dir.path(), today),
            Some(dir.path().join("brief-2026-11-29.json"))
        );
        let first = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(previous_in_archive(dir.path(), first), None);
    }
}
