//! Disagreements: a story's sources giving different values for the same measure — "8,000
//! nurses" against "9,500 hospital staff" on strike, "12 dead" against "a death toll of 15",
//! a launch on Wednesday against Thursday.
//!
//! What "the same measure" is comes from `quantities`: the counted thing (with its synonyms)
//! and the event the value belongs to, so "five days" of a rescue and "two days" of a road
//! closure never meet. A source giving two values for one measure is ambiguous about it and
//! is left out of that measure, which keeps "12 people died … 300 people were evacuated" from
//! looking like a disagreement with itself. Each side keeps the sentence that states it.

use std::collections::{BTreeMap, BTreeSet};

use crate::article::{Disagreement, SourceNumber, Statement};

use crate::pipeline::facts::FactKey;

use super::quantities::{Measure, Quantity};
use super::SourceDoc;

/// The disagreements among the story's sources, at most `max`, in order of first appearance.
pub(crate) fn find_disagreements(story: &[&SourceDoc<'_>], max: usize) -> Vec<Disagreement> {
    let mentions: Vec<(SourceNumber, &Quantity)> = story
        .iter()
        .flat_map(|doc| doc.quantities.iter().map(|q| (doc.number, q)))
        .collect();

    // measure → source → values stated.
    let mut by_measure: BTreeMap<&Measure, BTreeMap<SourceNumber, BTreeSet<&FactKey>>> =
        BTreeMap::new();
    for (source, q) in &mentions {
        by_measure
            .entry(&q.measure)
            .or_default()
            .entry(*source)
            .or_default()
            .insert(&q.value_key);
    }

    let mut found: Vec<((SourceNumber, usize), Disagreement)> = Vec::new();
    for (measure, per_source) in &by_measure {
        let unambiguous: BTreeMap<SourceNumber, &FactKey> = per_source
            .iter()
            .filter(|(_, values)| values.len() == 1)
            .filter_map(|(source, values)| values.iter().next().map(|v| (*source, *v)))
            .collect();
        let distinct: BTreeSet<&FactKey> = unambiguous.values().copied().collect();
        if unambiguous.len() < 2 || distinct.len() < 2 {
            continue;
        }
        // Each source's first mention of its value.
        let first_of = |source: SourceNumber| {
            mentions
                .iter()
                .filter(|(s, q)| *s == source && q.measure == **measure)
                .min_by_key(|(_, q)| q.span.start)
                .map(|(_, q)| q)
        };
        let mut sides: Vec<(String, Vec<SourceNumber>)> = Vec::new();
        for value in &distinct {
            let sources: Vec<SourceNumber> = unambiguous
                .iter()
                .filter(|(_, v)| *v == value)
                .map(|(s, _)| *s)
                .collect();
            let text = sources
                .first()
                .and_then(|s| first_of(*s))
                .map_or_else(|| value.to_string(), |q| q.value_text.clone());
            sides.push((text, sources));
        }
        sides.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1.cmp(&b.1)));
        let statements: Vec<Statement> = unambiguous
            .keys()
            .filter_map(|s| {
                first_of(*s).map(|q| Statement {
                    source: *s,
                    value: q.value_text.clone(),
                    sentence: q.sentence.clone(),
                })
            })
            .collect();
        let Some((first_source, first)) = unambiguous
            .keys()
            .next()
            .and_then(|s| first_of(*s).map(|q| (*s, q)))
        else {
            continue;
        };
        found.push((
            (first_source, first.span.start),
            Disagreement {
                subject: first.subject_text.clone(),
                sides,
                statements,
            },
        ));
    }
    found.sort_by_key(|(first, _)| *first);
    found.truncate(max);
    found.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disagreements(texts: &[&[&str]]) -> Vec<Disagreement> {
        use crate::pipeline::synthesize::test_support::with_story;
        with_story(texts, |story| find_disagreements(story, 5))
    }

    #[test]
    fn different_dates_of_the_same_event_disagree() {
        let found = disagreements(&[
            &["The typhoon made landfall on Monday near Da Nang."],
            &["The typhoon made landfall on Tuesday, officials said."],
            &["Typhoon Noru made landfall on Monday."],
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].subject, "date of landfall");
        assert_eq!(
            found[0].sides,
            vec![("Monday".into(), vec![1, 3]), ("Tuesday".into(), vec![2])]
        );
        // Both sides' sentences, for the JSON.
        let sentences: Vec<(SourceNumber, &str)> = found[0]
            .statements
            .iter()
            .map(|s| (s.source, s.sentence.as_str()))
            .collect();
        assert_eq!(
            sentences,
            [
                (1, "The typhoon made landfall on Monday near Da Nang."),
                (2, "The typhoon made landfall on Tuesday, officials said."),
                (3, "Typhoon Noru made landfall on Monday.")
            ]
        );
    }

    #[test]
    fn counts_of_one_measure_in_other_words_disagree_and_of_other_measures_do_not() {
        let found = disagreements(&[
            &["About 8,000 nurses walked off the job on Tuesday in Westmere."],
            &["Some 9,500 hospital staff went on strike in Westmere on Tuesday."],
            &["The union says 9,500 staff joined the walkout in Westmere."],
        ]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0].sides,
            vec![("9,500".into(), vec![2, 3]), ("8,000".into(), vec![1])]
        );
        let found = disagreements(&[
            &["The rescue at the mine went on for five days after a tunnel collapsed."],
            &["The road to the mine was closed for two days after the tunnel collapsed."],
        ]);
        assert!(found.is_empty(), "{found:?}");
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
}
