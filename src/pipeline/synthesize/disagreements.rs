//! Disagreements: a story's sources giving different values for the same quantity or date —
//! "1 million jobs" against "1.2 million jobs", "12 dead" against "15 dead", landfall on
//! Monday against Tuesday.
//!
//! Without parsing, "the same quantity" is read from the words around a value: the first one
//! or two content words after a number ("1.2 million new **jobs**", "12 **people died**"), or
//! for a number ending its clause, the content word before it ("the death **toll** rose to
//! 15"); for a date, the content word before it ("**landfall** on Monday"). A subject counts
//! only for the same kind of value (counts with counts, money with money, weekdays with
//! weekdays). A source giving two values for one subject is ambiguous about it and is left out
//! of that subject, which keeps "12 people died … 300 people were evacuated" from looking like
//! a disagreement with itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::article::{Disagreement, SourceNumber};
use crate::pipeline::facts::{scan, words, FactSpan, Unit, Word};
use crate::pipeline::text::{is_stopword, stem};

use super::SourceDoc;

/// Words between a number and what it counts that do not say what it counts.
const SKIP_AFTER: &[&str] = &[
    "additional",
    "approximately",
    "estimated",
    "extra",
    "further",
    "more",
    "new",
    "other",
    "over",
    "roughly",
    "total",
    "some",
    "around",
    "nearly",
    "almost",
    "least",
    "than",
    "thousand",
    "million",
    "billion",
    "trillion",
    "hundred",
    "dollar",
    "dollars",
    "euro",
    "euros",
    "usd",
    "eur",
    "vnd",
    "won",
    "yen",
    "percent",
    "cent",
    "worth",
];
/// Words between a subject and a value that ends its clause ("the toll rose to 15").
const SKIP_BEFORE: &[&str] = &[
    "about",
    "almost",
    "approximately",
    "around",
    "climbed",
    "estimated",
    "fell",
    "grew",
    "increased",
    "last",
    "least",
    "nearly",
    "next",
    "reached",
    "rose",
    "risen",
    "roughly",
    "stood",
    "totaled",
    "totalled",
    "early",
    "late",
    "mid",
    "this",
    "some",
    "now",
    "jumped",
];

/// One value stated for a subject by a source.
pub(crate) struct Mention {
    /// "count|job", "count|people die", "weekday|landfall": what is being compared.
    pub(crate) subject_key: String,
    pub(crate) specificity: u8,
    pub(crate) subject_text: String,
    pub(crate) value_key: String,
    pub(crate) value_text: String,
    pub(crate) source: SourceNumber,
    pub(crate) position: usize,
}

/// The disagreements among the story's sources, at most `max`, in order of first appearance.
pub(crate) fn find_disagreements(story: &[&SourceDoc<'_>], max: usize) -> Vec<Disagreement> {
    let mut mentions: Vec<Mention> = Vec::new();
    for doc in story {
        mentions.extend(mentions_in(&doc.text, doc.number));
    }

    // subject → source → values stated.
    let mut by_subject: BTreeMap<&str, BTreeMap<SourceNumber, BTreeSet<&str>>> = BTreeMap::new();
    for m in &mentions {
        by_subject
            .entry(m.subject_key.as_str())
            .or_default()
            .entry(m.source)
            .or_default()
            .insert(m.value_key.as_str());
    }

    struct Found {
        disagreement: Disagreement,
        pairs: BTreeSet<(String, SourceNumber)>,
        specificity: u8,
        first: (SourceNumber, usize),
    }
    let mut found: Vec<Found> = Vec::new();
    for (subject, per_source) in &by_subject {
        let unambiguous: BTreeMap<SourceNumber, &str> = per_source
            .iter()
            .filter(|(_, values)| values.len() == 1)
            .filter_map(|(source, values)| values.iter().next().map(|v| (*source, *v)))
            .collect();
        let distinct: BTreeSet<&str> = unambiguous.values().copied().collect();
        if unambiguous.len() < 2 || distinct.len() < 2 {
            continue;
        }
        let of_subject = |m: &&Mention| {
            m.subject_key == *subject && unambiguous.get(&m.source) == Some(&m.value_key.as_str())
        };
        let first_mention = mentions
            .iter()
            .filter(of_subject)
            .min_by_key(|m| (m.source, m.position));
        let Some(first_mention) = first_mention else {
            continue;
        };

        let mut sides: Vec<(String, Vec<SourceNumber>)> = Vec::new();
        for value in &distinct {
            let sources: Vec<SourceNumber> = unambiguous
                .iter()
                .filter(|(_, v)| *v == value)
                .map(|(s, _)| *s)
                .collect();
            let text = mentions
                .iter()
                .filter(of_subject)
                .filter(|m| m.value_key == *value)
                .min_by_key(|m| (m.source, m.position))
                .map(|m| m.value_text.clone())
                .unwrap_or_else(|| value.to_string());
            sides.push((text, sources));
        }
        sides.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1.cmp(&b.1)));
        let pairs = unambiguous
            .iter()
            .map(|(s, v)| (v.to_string(), *s))
            .collect();
        found.push(Found {
            disagreement: Disagreement {
                subject: first_mention.subject_text.clone(),
                sides,
            },
            pairs,
            specificity: first_mention.specificity,
            first: (first_mention.source, first_mention.position),
        });
    }

    // One subject often shows under several keys ("jobs", "jobs renewable"): report each
    // disagreement once, under the key that covers the most sources, then the plainest
    // (one word after the value, then two, then the word before it).
    let plainness = |specificity: u8| match specificity {
        1 => 0,
        2 => 1,
        _ => 2,
    };
    found.sort_by(|a, b| {
        b.pairs
            .len()
            .cmp(&a.pairs.len())
            .then(plainness(a.specificity).cmp(&plainness(b.specificity)))
            .then(a.first.cmp(&b.first))
    });
    let mut kept: Vec<Found> = Vec::new();
    for f in found {
        let covered = kept
            .iter()
            .any(|k| f.pairs.is_subset(&k.pairs) || k.pairs.is_subset(&f.pairs));
        if !covered {
            kept.push(f);
        }
    }
    kept.sort_by_key(|f| f.first);
    kept.truncate(max);
    kept.into_iter().map(|f| f.disagreement).collect()
}

/// The stated values of `text` with their subjects.
pub(crate) fn mentions_in(text: &str, source: SourceNumber) -> Vec<Mention> {
    let spans = scan(text);
    let tokens = words(text);
    let in_fact = |t: &Word| {
        spans
            .iter()
            .any(|s| s.span.start < t.span.end && t.span.start < s.span.end)
    };
    let mut out = Vec::new();
    for span in &spans {
        let kind = match span.unit {
            Unit::Count | Unit::Percent | Unit::Money => unit_name(span.unit),
            Unit::Weekday | Unit::MonthDay => unit_name(span.unit),
            _ => continue,
        };
        if span.unit == Unit::Count && is_ordinal(span) {
            continue;
        }
        let is_date = matches!(span.unit, Unit::Weekday | Unit::MonthDay);
        let mut subjects: Vec<(String, String, u8)> = Vec::new();
        if !is_date {
            let after = subject_words(text, &tokens, span.span.end, true, &in_fact);
            if let Some(first) = after.first() {
                subjects.push((first.0.clone(), first.1.clone(), 1));
            }
            if after.len() >= 2 {
                subjects.push((
                    format!("{} {}", after[0].0, after[1].0),
                    format!("{} {}", after[0].1, after[1].1),
                    2,
                ));
            }
        }
        if subjects.is_empty() {
            let before = subject_words(text, &tokens, span.span.start, false, &in_fact);
            if let Some(first) = before.first() {
                let shown = if is_date {
                    format!("date of {}", first.1)
                } else {
                    first.1.clone()
                };
                subjects.push((first.0.clone(), shown, 0));
            }
        }
        for (key, shown, specificity) in subjects {
            out.push(Mention {
                subject_key: format!("{kind}|{key}"),
                specificity,
                subject_text: shown,
                value_key: span.fact.key.clone(),
                value_text: span.fact.text.clone(),
                source,
                position: span.span.start,
            });
        }
    }
    out
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "count",
        Unit::Percent => "percent",
        Unit::Money => "money",
        Unit::Weekday => "weekday",
        Unit::MonthDay => "date",
        _ => "other",
    }
}

fn is_ordinal(span: &FactSpan) -> bool {
    let lower = span.fact.text.to_lowercase();
    ["st", "nd", "rd", "th"].iter().any(|s| lower.ends_with(s))
        && lower.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Up to two content words (stem, as written) next to byte offset `at` — after it when
/// `forward`, else before it — without crossing clause punctuation or another value.
fn subject_words(
    text: &str,
    tokens: &[Word],
    at: usize,
    forward: bool,
    in_fact: &dyn Fn(&Word) -> bool,
) -> Vec<(String, String)> {
    let skip = if forward { SKIP_AFTER } else { SKIP_BEFORE };
    let ordered: Box<dyn Iterator<Item = &Word>> = if forward {
        Box::new(tokens.iter().filter(|t| t.span.start >= at))
    } else {
        Box::new(tokens.iter().rev().filter(|t| t.span.end <= at))
    };
    let mut out = Vec::new();
    let mut edge = at;
    for token in ordered {
        let gap = if forward {
            &text[edge..token.span.start]
        } else {
            &text[token.span.end..edge]
        };
        if gap.contains([
            '.', ',', ';', ':', '!', '?', '(', ')', '\n', '"', '\u{201c}', '\u{201d}',
        ]) {
            break;
        }
        edge = if forward {
            token.span.end
        } else {
            token.span.start
        };
        if in_fact(token) {
            // Another value in between: its words are its own subject, not this one's.
            break;
        }
        let folded = &token.folded;
        if is_stopword(folded) || skip.contains(&folded.as_str()) {
            continue;
        }
        out.push((stem(folded), token.text.clone()));
        if out.len() == 2 || !forward {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects(text: &str) -> Vec<(String, String)> {
        mentions_in(text, 1)
            .into_iter()
            .map(|m| (m.subject_key, m.value_key))
            .collect()
    }

    fn disagreements(texts: &[&[&str]]) -> Vec<Disagreement> {
        use crate::pipeline::synthesize::test_support::{article, summary};
        let articles: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| article(&format!("{i}.txt"), t))
            .collect();
        let summaries: Vec<_> = articles.iter().map(|a| summary(a, &[])).collect();
        let docs: Vec<SourceDoc<'_>> = articles
            .iter()
            .zip(&summaries)
            .enumerate()
            .map(|(i, (a, s))| SourceDoc::new(i + 1, a, s))
            .collect();
        let story: Vec<&SourceDoc<'_>> = docs.iter().collect();
        find_disagreements(&story, 5)
    }

    #[test]
    fn different_dates_of_the_same_event_disagree() {
        let found = disagreements(&[
            &["The typhoon made landfall on Monday near Da Nang."],
            &["The typhoon made landfall on Tuesday, officials said."],
            &["Typhoon Noru made landfall on Monday."],
        ]);
        assert_eq!(
            found,
            vec![Disagreement {
                subject: "date of landfall".into(),
                sides: vec![("Monday".into(), vec![1, 3]), ("Tuesday".into(), vec![2])],
            }]
        );
    }

    #[test]
    fn a_source_with_two_values_for_a_subject_is_not_a_side() {
        // Source 1 gives 12 dead and 300 evacuated "people": it disagrees with nobody.
        let found = disagreements(&[
            &[
                "Floods killed 12 people in Hue.",
                "About 300 people were evacuated.",
            ],
            &["Floods in Hue killed 12 people on Monday."],
        ]);
        assert!(found.is_empty(), "{found:?}");
        // Money and counts are not compared: $5 million in aid and 5 rescue boats.
        let found = disagreements(&[
            &["Japan sent $5 million aid."],
            &["Japan sent 7 aid boats."],
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn agreeing_spellings_are_no_disagreement() {
        let found = disagreements(&[
            &["The plan will create 1 million jobs."],
            &["The plan will create one million jobs."],
            &["The plan will create 1,000,000 jobs."],
        ]);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn subjects_are_the_words_a_value_counts() {
        assert_eq!(
            subjects("Berlin plans 1.2 million new jobs by 2030."),
            [("count|job".to_string(), "1200000".to_string())]
        );
        assert_eq!(
            subjects("Officials said 12 people died."),
            [
                ("count|peopl".to_string(), "12".to_string()),
                ("count|peopl died".to_string(), "12".to_string())
            ]
        );
        assert_eq!(
            subjects("The death toll rose to 15."),
            [("count|toll".to_string(), "15".to_string())]
        );
        assert_eq!(
            subjects("The storm made landfall on Monday."),
            [("weekday|landfall".to_string(), "weekday:monday".to_string())]
        );
        assert!(subjects("It was the 3rd storm.").is_empty());
    }
}
