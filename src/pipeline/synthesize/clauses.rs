//! A sentence that bundles a fact several sources state with one that only its own source
//! states — "the rescue went on for five days after a tunnel collapsed on Friday" [1] beside
//! "a tunnel had collapsed on Friday, trapping the men 300 metres below ground" [2] — can cite
//! only its own source, so the shared fact would be told twice, once per outlet. Split at the
//! conjunction that joins its clauses ("after", "when", "; ", ", but" …), the shared clause
//! becomes a point of its own that cites every source stating it.
//!
//! A sentence is split only where that credits a source the whole sentence cannot cite: one
//! clause is supported by a source the whole is not, and every source of the whole supports
//! both clauses (each clause says less than the sentence, so a split that loses a source is a
//! misreading). Each side must read as a clause: enough words and a finite verb. Without a
//! parser, "a finite verb" is a small table of auxiliaries and common irregular forms plus
//! words ending in -ed; a phrase like "after three days of talks" has none and stays whole.

use crate::article::SourceNumber;
use crate::pipeline::facts::words;

use super::citations::check_point;
use super::SourceDoc;

/// One clause of a split sentence and the story's sources that support it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Clause {
    pub text: String,
    pub sources: Vec<SourceNumber>,
}

/// Words that open a subordinate clause. "and" and "but" join clauses only after a comma
/// (otherwise they join nouns: "doctors and nurses").
const SUBORDINATORS: &[&str] = &[
    "after", "before", "when", "while", "because", "as", "until", "whereas",
];
const COORDINATORS: &[&str] = &["and", "but"];
/// Fewer words than this is no clause ("as expected").
const MIN_CLAUSE_WORDS: usize = 4;
/// Finite verbs that do not end in -ed.
const FINITE_VERBS: &[&str] = &[
    "is", "are", "was", "were", "has", "have", "had", "will", "would", "can", "could", "may",
    "might", "shall", "should", "must", "did", "does", "do", "said", "says", "went", "goes",
    "came", "comes", "began", "begins", "fell", "falls", "rose", "rises", "took", "takes", "made",
    "makes", "left", "leaves", "hit", "hits", "struck", "broke", "breaks", "brought", "found",
    "gave", "got", "held", "kept", "led", "lost", "met", "paid", "ran", "saw", "sent", "shut",
    "sold", "spent", "stood", "told", "won", "wrote", "tore", "swept", "burst", "sank", "froze",
];

/// `text` split into two clauses when that lets the story cite a source for one of them that
/// it cannot cite for the whole sentence; `None` keeps the sentence whole. `whole` is the
/// story's sources that support `text` (`check_point(text, …).valid`, which callers have).
pub(crate) fn split_for_wider_support(
    text: &str,
    whole: &[SourceNumber],
    story: &[&SourceDoc<'_>],
) -> Option<[Clause; 2]> {
    if whole.is_empty() || whole.len() == story.len() {
        return None;
    }
    // Each clause ends as the sentence did.
    let end = if text.trim_end().ends_with('.') {
        "."
    } else {
        ""
    };
    split_points(text).into_iter().find_map(|(left, right)| {
        let (left, right) = (clause_text(left)? + end, clause_text(right)? + end);
        let left_sources = check_point(&left, &[], story).valid;
        let right_sources = check_point(&right, &[], story).valid;
        let keeps_whole = |s: &[SourceNumber]| whole.iter().all(|n| s.contains(n));
        let wider = left_sources.len() > whole.len() || right_sources.len() > whole.len();
        (keeps_whole(&left_sources) && keeps_whole(&right_sources) && wider).then_some([
            Clause {
                text: left,
                sources: left_sources,
            },
            Clause {
                text: right,
                sources: right_sources,
            },
        ])
    })
}

/// Every (before, after) pair of `text` around a clause-joining word or a semicolon, the
/// joining word itself left out, in order.
fn split_points(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for word in words(text) {
        let before = &text[..word.span.start];
        let joins = SUBORDINATORS.contains(&word.folded.as_str())
            || (COORDINATORS.contains(&word.folded.as_str()) && before.trim_end().ends_with(','));
        if joins && !word.sentence_start {
            out.push((before, &text[word.span.end..]));
        }
    }
    for (at, _) in text.match_indices(';') {
        out.push((&text[..at], &text[at + 1..]));
    }
    out
}

/// `part` as a clause that stands alone (trimmed, capitalised, no trailing comma), or `None`
/// when it is too short or has no finite verb.
fn clause_text(part: &str) -> Option<String> {
    let part = part
        .trim()
        .trim_end_matches([',', ';', ':', '.'])
        .trim_start_matches([',', ';', ':'])
        .trim();
    let tokens = words(part);
    if tokens.len() < MIN_CLAUSE_WORDS || !has_finite_verb(&tokens) {
        return None;
    }
    let mut chars = part.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

fn has_finite_verb(tokens: &[crate::pipeline::facts::Word]) -> bool {
    tokens.iter().skip(1).any(|w| {
        FINITE_VERBS.contains(&w.folded.as_str())
            || (w.folded.len() > 4
                && w.folded.ends_with("ed")
                && !w.text.starts_with(char::is_uppercase))
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::with_story;
    use super::*;

    fn split(text: &str, sources: &[&[&str]]) -> Option<[Clause; 2]> {
        with_story(sources, |story| {
            let whole = check_point(text, &[], story).valid;
            split_for_wider_support(text, &whole, story)
        })
    }

    const TRIBUNE: &[&str] =
        &["The rescue went on for five days after a tunnel collapsed on Friday."];
    const REVIEW: &[&str] =
        &["A tunnel had collapsed on Friday, trapping the men 300 metres below ground."];

    #[test]
    fn a_shared_clause_is_split_off_and_cites_both_sources() {
        let [main, shared] = split(TRIBUNE[0], &[TRIBUNE, REVIEW]).expect("split");
        assert_eq!(main.text, "The rescue went on for five days.");
        assert_eq!(main.sources, vec![1]);
        assert_eq!(shared.text, "A tunnel collapsed on Friday.");
        assert_eq!(shared.sources, vec![1, 2]);
    }

    #[test]
    fn a_sentence_every_source_supports_stays_whole() {
        assert_eq!(split(TRIBUNE[0], &[TRIBUNE, TRIBUNE]), None);
    }

    #[test]
    fn a_sentence_whose_clauses_gain_no_source_stays_whole() {
        let other: &[&str] = &["Heavy rain closed the coastal road near the harbour on Monday."];
        assert_eq!(split(TRIBUNE[0], &[TRIBUNE, other]), None);
    }

    #[test]
    fn a_phrase_without_a_finite_verb_is_no_clause() {
        assert_eq!(clause_text(" three days of talks"), None);
        assert_eq!(
            clause_text(" a tunnel collapsed on Friday."),
            Some("A tunnel collapsed on Friday".to_string())
        );
    }

    #[test]
    fn and_joins_clauses_only_after_a_comma() {
        let pairs =
            split_points("Doctors and nurses walked out, and the hospital closed its doors");
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].1, " the hospital closed its doors");
    }
}
