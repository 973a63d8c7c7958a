//! The citation checker: which sources may be cited for a point. Every point passes it,
//! extracted or generated, so the brief never shows a citation its source does not back.
//!
//! A source supports a point when its English text contains the point's key facts (every
//! number and date, most names; see `facts`) and most of the point's content words. A point
//! with no key facts must be worded almost entirely from the source, or tell one of the
//! source's events in other words (`paraphrase`: "talks broke down" / "the collapse of the
//! talks"). Citations are the story's
//! sources that support the point — cited numbers that do not exist, are outside the story or
//! fail the check are dropped, and supporting sources the writer left out are added, so every
//! outlet that reports a fact is credited.

use crate::article::SourceNumber;
use crate::pipeline::facts::{extract_facts, Fact, FactKey, FactKind};
use crate::pipeline::text::{coverage, terms};

use super::paraphrase;
use super::quantities::{quantities, same_statement};
use super::SourceDoc;

/// Share of a fact-bearing point's content words the source must contain.
const COVERAGE_WITH_FACTS: f32 = 0.6;
/// Share of a fact-less point's content words the source must contain, and how many content
/// words such a point needs before wording alone can tie it to a source.
const COVERAGE_WITHOUT_FACTS: f32 = 0.75;
const MIN_TERMS_WITHOUT_FACTS: usize = 4;

/// Whether `doc` supports `point`.
pub(crate) fn supports(point: &str, doc: &SourceDoc<'_>) -> bool {
    let facts = extract_facts(point);
    let point_terms = terms(point);
    if facts.is_empty() {
        // Worded from the source, or telling one of its events in other words.
        point_terms.len() >= MIN_TERMS_WITHOUT_FACTS
            && (coverage(&point_terms, &doc.terms) >= COVERAGE_WITHOUT_FACTS
                || paraphrase::states_the_same_event(point, doc))
    } else {
        doc.facts.supports(&facts)
            && (coverage(&point_terms, &doc.terms) >= COVERAGE_WITH_FACTS
                || states_the_same_quantities(point, &facts, doc)
                || paraphrase::states_the_same_event(point, doc))
    }
}

/// Whether `doc` states every number and day of `point` as the same value of the same
/// measure, in whatever words ("5,000 dockers walked out" / "5,000 dock workers began a
/// strike"; "talks would resume on Thursday" / "negotiations would restart on Thursday"): the
/// same fact, though the wording differs too much for the word-coverage test.
fn states_the_same_quantities(point: &str, facts: &[Fact], doc: &SourceDoc<'_>) -> bool {
    let stated = quantities(point);
    // The numbers carry the statement; a point without any is carried by its days. (The
    // other facts need only be contained: `supports` checked that.)
    let numbers: Vec<&Fact> = facts
        .iter()
        .filter(|f| f.kind == FactKind::Number)
        .collect();
    let values = if numbers.is_empty() {
        facts
            .iter()
            .filter(|f| matches!(f.key, FactKey::Weekday(_) | FactKey::MonthDay { .. }))
            .collect()
    } else {
        numbers
    };
    !values.is_empty()
        && values.iter().all(|fact| {
            stated
                .iter()
                .filter(|q| q.value_key == fact.key)
                .any(|q| doc.quantities.iter().any(|d| same_statement(q, d)))
        })
}

/// The outcome of checking one point's citations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PointCheck {
    /// The sources to cite: every story source that supports the point, ascending.
    pub valid: Vec<SourceNumber>,
    /// Cited numbers that name no source of the story.
    pub unknown: Vec<SourceNumber>,
    /// Cited sources of the story that do not support the point.
    pub unsupported: Vec<SourceNumber>,
}

/// Checks the citations `cited` of `point` against the story's sources `story`.
pub(crate) fn check_point(
    point: &str,
    cited: &[SourceNumber],
    story: &[&SourceDoc<'_>],
) -> PointCheck {
    let valid: Vec<SourceNumber> = story
        .iter()
        .filter(|d| supports(point, d))
        .map(|d| d.number)
        .collect();
    let mut unknown: Vec<SourceNumber> = cited
        .iter()
        .copied()
        .filter(|n| !story.iter().any(|d| d.number == *n))
        .collect();
    let mut unsupported: Vec<SourceNumber> = cited
        .iter()
        .copied()
        .filter(|n| story.iter().any(|d| d.number == *n) && !valid.contains(n))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    unsupported.sort_unstable();
    unsupported.dedup();
    if !unknown.is_empty() || !unsupported.is_empty() {
        log::debug!(
            "citation check: dropped unknown {unknown:?} and unsupported {unsupported:?} for \u{201c}{point}\u{201d}"
        );
    }
    PointCheck {
        valid,
        unknown,
        unsupported,
    }
}
