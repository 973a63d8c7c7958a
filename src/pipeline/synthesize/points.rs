//! Key points without a model: the story's summary sentences, each cited to every source
//! that supports it, near-duplicates from different sources merged into one point.
//!
//! A sentence from source B that says what a point from source A already says (similar
//! wording, the same value of the same measure, or the same event in other words —
//! `paraphrase` — and B passed the citation check for A's point) adds nothing but B's citation,
//! which the point already has; a similar sentence that B's text does *not* support for A's
//! point — "1.2 million jobs" against "1 million jobs" — stays a point of its own, so each side
//! of a disagreement keeps its sources. Points are ranked by how many sources support them,
//! then by where they first appear.

use std::collections::BTreeMap;

use crate::article::{KeyPoint, SourceNumber};
use crate::pipeline::facts::{extract_facts, FactKey, FactKind, Unit};
use crate::pipeline::injection;
use crate::pipeline::text::{terms, Idf, TermVector};

use super::citations::{check_point, supports};
use super::clauses;
use super::paraphrase::{event_mentions, share_an_event, EventMention};
use super::quantities::{quantities, same_statement, Quantity};
use super::{SourceDoc, UnusedReason};

/// Wording this similar, with the citation check passed, makes two sentences one point.
const MERGE_SIMILARITY: f32 = 0.3;
/// Sentences taken from a source's text when its summary offers no sentence the text backs.
const FALLBACK_SENTENCES: usize = 3;
/// Shorter sentences ("Photo: AP.") are not points.
const MIN_WORDS: usize = 4;

struct Candidate<'a> {
    doc: usize,
    order: usize,
    text: String,
    doc_ref: &'a SourceDoc<'a>,
}

/// The story's key points (at most `max_points`), and why each story source that none of them
/// cites was left out.
pub(crate) fn extract_points(
    story: &[&SourceDoc<'_>],
    max_points: usize,
) -> (Vec<KeyPoint>, BTreeMap<SourceNumber, UnusedReason>) {
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    for (d, doc) in story.iter().enumerate() {
        let one_line = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        // A summary cached before the instruction filter existed may still hold such a sentence.
        let mut texts: Vec<String> = doc
            .summary
            .sentences
            .iter()
            .map(|s| one_line(&s.text))
            .filter(|t| !injection::is_addressed_to_machines(t))
            .collect();
        // An empty summary, or one whose every sentence its own article fails to back (an LLM
        // that invented its facts): the article's opening sentences stand in, so the source
        // still speaks for itself in the story rather than dropping out of it.
        if !texts.iter().any(|t| supports(t, doc)) {
            texts = doc
                .article
                .sentences
                .iter()
                .take(FALLBACK_SENTENCES)
                .map(|s| one_line(&s.text))
                .collect();
        }
        for (order, text) in texts.into_iter().enumerate() {
            if text.split(' ').count() < MIN_WORDS {
                continue;
            }
            // A fact other sources share, bundled with one of this source's own, is told on
            // its own so that it can cite them all.
            let whole = check_point(&text, &[], story).valid;
            let parts = match clauses::split_for_wider_support(&text, &whole, story) {
                Some(clauses) => clauses.map(|c| c.text).to_vec(),
                None => vec![text],
            };
            for text in parts {
                candidates.push(Candidate {
                    doc: d,
                    order,
                    text,
                    doc_ref: doc,
                });
            }
        }
    }

    let candidate_terms: Vec<Vec<String>> = candidates.iter().map(|c| terms(&c.text)).collect();
    let idf = Idf::new(&candidate_terms);
    let vectors: Vec<TermVector> = candidate_terms.iter().map(|t| idf.vector(t)).collect();
    // Counts, percentages and sums each candidate states, with what they measure.
    let stated: Vec<Vec<Quantity>> = candidates
        .iter()
        .map(|c| stated_quantities(&c.text))
        .collect();
    // The events each candidate tells, for statements without numbers.
    let events: Vec<Vec<EventMention>> =
        candidates.iter().map(|c| event_mentions(&c.text)).collect();
    let values: Vec<Vec<FactKey>> = candidates.iter().map(|c| numbers(&c.text)).collect();
    // Whether candidate `a` states a number that candidate `b` lacks.
    let adds = |a: usize, b: usize| adds_values(&values[a], &values[b]);

    struct Point {
        text: String,
        citations: Vec<SourceNumber>,
        /// The candidate whose text the point shows (for similarity).
        candidate: usize,
        /// Where the statement first appeared: (source position in story, sentence).
        first: (usize, usize),
    }
    let mut points: Vec<Point> = Vec::new();
    let mut had_candidate = vec![false; story.len()];
    for (k, candidate) in candidates.iter().enumerate() {
        // A summary sentence its own article does not back (an ungrounded LLM summary) is no point.
        if !supports(&candidate.text, candidate.doc_ref) {
            continue;
        }
        had_candidate[candidate.doc] = true;
        let number = candidate.doc_ref.number;
        // Worded alike, stating the same value of the same measure, or telling the same
        // event in other words: one statement.
        let similar = |p: &Point| {
            vectors[p.candidate].cosine(&vectors[k]) >= MERGE_SIMILARITY
                || stated[p.candidate]
                    .iter()
                    .any(|a| stated[k].iter().any(|b| same_statement(a, b)))
                || share_an_event(&events[p.candidate], &events[k])
        };
        // Said already, and this source passed the check for it: nothing to add.
        if points
            .iter()
            .any(|p| similar(p) && p.citations.contains(&number) && !adds(k, p.candidate))
        {
            continue;
        }
        let valid = check_point(&candidate.text, &[number], story).valid;
        // Says what an earlier point says, backed by the same sources and more: it takes that
        // point's place, so the statement is made once, with the widest support.
        let wider = points.iter_mut().find(|p| {
            similar(p)
                && !adds(p.candidate, k)
                && valid.len() > p.citations.len()
                && p.citations.iter().all(|c| valid.contains(c))
        });
        if let Some(p) = wider {
            p.text = candidate.text.clone();
            p.citations = valid;
            p.candidate = k;
            continue;
        }
        points.push(Point {
            text: candidate.text.clone(),
            citations: valid,
            candidate: k,
            first: (candidate.doc, candidate.order),
        });
    }

    points.sort_by(|a, b| {
        b.citations
            .len()
            .cmp(&a.citations.len())
            .then(a.first.cmp(&b.first))
    });
    let key_points: Vec<KeyPoint> = covering_selection(&points, |p| &p.citations, max_points)
        .into_iter()
        .map(|i| KeyPoint {
            text: points[i].text.clone(),
            citations: points[i].citations.clone(),
        })
        .collect();

    let mut reasons = BTreeMap::new();
    for (d, doc) in story.iter().enumerate() {
        if key_points.iter().any(|p| p.citations.contains(&doc.number)) {
            continue;
        }
        let reason = if doc.text.trim().is_empty() {
            UnusedReason::NoText
        } else if had_candidate[d] {
            UnusedReason::BelowCap
        } else {
            UnusedReason::FailedCheck
        };
        reasons.insert(doc.number, reason);
    }
    (key_points, reasons)
}

/// Checked points (an LLM's) with repeats merged: a point that says what an earlier one says
/// (worded alike, or the same value of the same measure), states no number it lacks
/// and cites no source it does not is dropped; one that cites more and loses none of its
/// numbers takes the earlier one's place. Order is kept otherwise.
pub(crate) fn merge_repeats(points: Vec<KeyPoint>) -> Vec<KeyPoint> {
    let point_terms: Vec<Vec<String>> = points.iter().map(|p| terms(&p.text)).collect();
    let idf = Idf::new(&point_terms);
    let vectors: Vec<TermVector> = point_terms.iter().map(|t| idf.vector(t)).collect();
    let stated: Vec<Vec<Quantity>> = points.iter().map(|p| stated_quantities(&p.text)).collect();
    let events: Vec<Vec<EventMention>> = points.iter().map(|p| event_mentions(&p.text)).collect();
    let values: Vec<Vec<FactKey>> = points.iter().map(|p| numbers(&p.text)).collect();
    let alike = |a: usize, b: usize| {
        vectors[a].cosine(&vectors[b]) >= MERGE_SIMILARITY
            || stated[a]
                .iter()
                .any(|x| stated[b].iter().any(|y| same_statement(x, y)))
            || share_an_event(&events[a], &events[b])
    };
    // `a` repeats `b`: alike, and none of `a`'s numbers is missing from `b`.
    let repeats = |a: usize, b: usize| alike(a, b) && !adds_values(&values[a], &values[b]);
    let mut kept: Vec<usize> = Vec::new();
    for (k, point) in points.iter().enumerate() {
        let covers = |c: &[SourceNumber], by: &[SourceNumber]| c.iter().all(|n| by.contains(n));
        if kept
            .iter()
            .any(|&j| repeats(k, j) && covers(&point.citations, &points[j].citations))
        {
            continue;
        }
        match kept
            .iter()
            .position(|&j| repeats(j, k) && covers(&points[j].citations, &point.citations))
        {
            Some(at) => kept[at] = k,
            None => kept.push(k),
        }
    }
    kept.into_iter().map(|k| points[k].clone()).collect()
}

/// The numbers `text` states: what a merged repeat must not lose. (Days are left out: a
/// repeat's extra day is mostly when it was reported, "officials said on Tuesday".)
fn numbers(text: &str) -> Vec<FactKey> {
    extract_facts(text)
        .into_iter()
        .filter(|f| f.kind == FactKind::Number)
        .map(|f| f.key)
        .collect()
}

/// Whether `a` holds a value `b` lacks.
fn adds_values(a: &[FactKey], b: &[FactKey]) -> bool {
    a.iter().any(|v| !b.contains(v))
}

/// The counts, percentages and sums `text` states, with what each measures.
fn stated_quantities(text: &str) -> Vec<Quantity> {
    quantities(text)
        .into_iter()
        .filter(|q| matches!(q.measure.unit, Unit::Count | Unit::Percent | Unit::Money))
        .collect()
}

/// Indices of at most `max` of the ranked `points`, in rank order: first, going down the
/// ranking, every point that cites a source no point taken so far cites, so that each source
/// with a checked statement is heard before any source is heard twice; then the best of the
/// rest. With enough room this is simply the top `max`.
fn covering_selection<P>(
    points: &[P],
    citations: impl Fn(&P) -> &Vec<SourceNumber>,
    max: usize,
) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut covered: Vec<SourceNumber> = Vec::new();
    for (i, point) in points.iter().enumerate() {
        if chosen.len() == max {
            break;
        }
        if citations(point).iter().any(|c| !covered.contains(c)) {
            chosen.push(i);
            covered.extend(citations(point));
        }
    }
    for i in 0..points.len() {
        if chosen.len() == max {
            break;
        }
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::covering_selection;
    use crate::article::KeyPoint;

    fn point(text: &str, citations: &[usize]) -> KeyPoint {
        KeyPoint {
            text: text.into(),
            citations: citations.to_vec(),
        }
    }

    #[test]
    fn a_repeated_point_gives_way_to_the_one_citing_more() {
        let merged = super::merge_repeats(vec![
            point(
                "About 5,000 dockers walked out on Friday at Port Calder.",
                &[1],
            ),
            point("Schools in Port Calder stay closed until Monday.", &[2]),
            point(
                "Traffic stopped on Friday as 5,000 dock workers began a strike.",
                &[1, 2],
            ),
            point("5,000 dockers walked out on Friday, the union said.", &[2]),
        ]);
        assert_eq!(
            merged,
            [
                point(
                    "Traffic stopped on Friday as 5,000 dock workers began a strike.",
                    &[1, 2]
                ),
                point("Schools in Port Calder stay closed until Monday.", &[2]),
            ]
        );
    }

    #[test]
    fn talks_that_broke_down_and_the_collapse_of_the_talks_are_one_point() {
        let merged = super::merge_repeats(vec![
            point(
                "The dockers' union called the stoppage after talks on a new contract broke down.",
                &[1],
            ),
            point(
                "The strike follows the collapse of contract talks between the union and the port operators.",
                &[1, 2],
            ),
        ]);
        assert_eq!(
            merged,
            [point(
                "The strike follows the collapse of contract talks between the union and the port operators.",
                &[1, 2]
            )]
        );
    }

    #[test]
    fn a_repeat_that_adds_a_number_is_kept() {
        let points = vec![
            point("A tunnel collapsed on Friday at the Brenna mine.", &[1, 2]),
            point(
                "A tunnel had collapsed on Friday, trapping the men 300 metres below ground.",
                &[2],
            ),
        ];
        assert_eq!(super::merge_repeats(points.clone()), points);
    }

    #[test]
    fn a_fact_two_sources_share_inside_one_sources_sentence_is_one_point_citing_both() {
        use super::super::test_support::{article, summary};
        use super::super::SourceDoc;
        let review = article(
            "review.md",
            &["A tunnel had collapsed on Friday, trapping the men 300 metres below ground."],
        );
        let tribune = article(
            "tribune.txt",
            &["The rescue went on for five days after a tunnel collapsed on Friday."],
        );
        let (review_summary, tribune_summary) = (summary(&review, &[0]), summary(&tribune, &[0]));
        let docs = [
            SourceDoc::new(1, &review, &review_summary),
            SourceDoc::new(2, &tribune, &tribune_summary),
        ];
        let (points, _) = super::extract_points(&[&docs[0], &docs[1]], 6);
        assert_eq!(
            points,
            [
                point("A tunnel collapsed on Friday.", &[1, 2]),
                point(
                    "A tunnel had collapsed on Friday, trapping the men 300 metres below ground.",
                    &[1]
                ),
                point("The rescue went on for five days.", &[2]),
            ]
        );
    }

    #[test]
    fn every_source_is_heard_before_any_is_heard_twice() {
        // Ranked by support, each point given by the sources it cites. A cap of 2 takes the top
        // point, then the first that adds a source ([3]); a cap of 4 then fills up by rank.
        let points = vec![vec![1, 2], vec![1], vec![2], vec![3], vec![4, 1]];
        assert_eq!(covering_selection(&points, |p| p, 2), [0, 3]);
        assert_eq!(covering_selection(&points, |p| p, 3), [0, 3, 4]);
        assert_eq!(covering_selection(&points, |p| p, 4), [0, 1, 3, 4]);
        assert_eq!(covering_selection(&points, |p| p, 9), [0, 1, 2, 3, 4]);
        assert_eq!(covering_selection(&points, |p| p, 0), Vec::<usize>::new());
    }
}
