//! One event told in other words: "talks on a new contract **broke down**" and "the
//! **collapse** of contract talks" state one fact, though they share too few words for the
//! word-coverage test. Without a parser, such a statement is read as an event (a noun or verb
//! form from the small table `EVENTS`, where each class lists the words and phrases that name
//! it) and its subject (the content words around that word in its sentence). Two statements
//! name the same event when their event words are of one class and their subjects share at
//! least two content words ("contract", "talks"): one class alone would make every strike
//! in a story one fact, and the shared subject alone every sentence about the talks.
//!
//! Used for statements without numbers or days (those are matched by `quantities`): by the
//! citation checker, so that every source telling the event is credited, and by the point
//! merger, so that it is told once.

use crate::pipeline::facts::{words, Word};
use crate::pipeline::text::{is_stopword, stem};

use super::SourceDoc;

/// Event words and phrases (folded) by class: a noun and its verb forms, and the other words
/// news uses for the same event. Phrases are matched word by word.
const EVENTS: &[(&str, &[&str])] = &[
    (
        "break down",
        &[
            "broke down",
            "break down",
            "breaks down",
            "broken down",
            "breakdown",
            "collapse",
            "collapsed",
            "collapses",
            "fell apart",
            "fall apart",
            "falls apart",
            "failed",
            "failure",
        ],
    ),
    (
        "strike",
        &[
            "strike",
            "strikes",
            "striking",
            "walkout",
            "walked out",
            "walk out",
            "walks out",
            "walked off",
            "stoppage",
            "stopped work",
        ],
    ),
    (
        "evacuate",
        &[
            "evacuate",
            "evacuated",
            "evacuation",
            "moved out",
            "move out",
            "relocated",
            "ordered to leave",
            "left their homes",
        ],
    ),
];
/// The subject: up to this many content words on each side of the event word…
const SUBJECT_WORDS: usize = 3;
/// …within this many words of it, in its sentence.
const SUBJECT_REACH: usize = 6;
/// Content words two subjects must share for two event words of one class to be one event.
const MIN_SHARED_SUBJECT: usize = 2;

/// One event word of a text and the subject around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventMention {
    class: &'static str,
    /// Stemmed content words near the event word, sorted, distinct.
    subject: Vec<String>,
}

/// The event words of `text` (one or a few sentences) with their subjects.
pub(crate) fn event_mentions(text: &str) -> Vec<EventMention> {
    let tokens = words(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some((class, len)) = phrase_at(&tokens, i) else {
            i += 1;
            continue;
        };
        // Content words before the event word, nearest first, then after it.
        let before = (0..i)
            .rev()
            .take_while(|&k| !tokens[k + 1].sentence_start)
            .take(SUBJECT_REACH);
        let after = (i + len..tokens.len())
            .take_while(|&k| !tokens[k].sentence_start)
            .take(SUBJECT_REACH);
        let content = |k: usize| subject_word(&tokens[k].folded);
        let mut subject: Vec<String> = before
            .filter_map(content)
            .take(SUBJECT_WORDS)
            .chain(after.filter_map(content).take(SUBJECT_WORDS))
            .collect();
        subject.sort_unstable();
        subject.dedup();
        out.push(EventMention { class, subject });
        i += len;
    }
    out
}

/// Whether some event of `a` is some event of `b`: one class, and subjects sharing at least
/// [`MIN_SHARED_SUBJECT`] words.
pub(crate) fn share_an_event(a: &[EventMention], b: &[EventMention]) -> bool {
    a.iter().any(|x| {
        b.iter().any(|y| {
            x.class == y.class
                && x.subject
                    .iter()
                    .filter(|w| y.subject.binary_search(w).is_ok())
                    .count()
                    >= MIN_SHARED_SUBJECT
        })
    })
}

/// Whether a sentence of `doc` tells an event of `point` (see [`share_an_event`]).
pub(crate) fn states_the_same_event(point: &str, doc: &SourceDoc<'_>) -> bool {
    let told = event_mentions(point);
    // Cheap first: the document must hold enough of some subject's words at all.
    let possible = told.iter().any(|m| {
        m.subject
            .iter()
            .filter(|w| doc.terms.binary_search(w).is_ok())
            .count()
            >= MIN_SHARED_SUBJECT
    });
    possible
        && doc
            .article
            .sentences
            .iter()
            .any(|s| share_an_event(&told, &event_mentions(&s.text)))
}

/// The class and word length of the event phrase starting at token `i`, the longest first.
fn phrase_at(tokens: &[Word], i: usize) -> Option<(&'static str, usize)> {
    EVENTS
        .iter()
        .flat_map(|(class, phrases)| phrases.iter().map(move |p| (*class, *p)))
        .filter_map(|(class, phrase)| {
            let len = phrase.split(' ').count();
            let fits = i + len <= tokens.len()
                && phrase
                    .split(' ')
                    .zip(&tokens[i..i + len])
                    .all(|(p, t)| p == t.folded);
            fits.then_some((class, len))
        })
        .max_by_key(|&(_, len)| len)
}

/// The stem of `folded` when it is a content word that can be part of a subject.
fn subject_word(folded: &str) -> Option<String> {
    let word = possessive_stripped(folded);
    (!is_stopword(word)
        && word.chars().count() > 1
        && word.chars().all(char::is_alphabetic)
        && !is_event_word(word))
    .then(|| stem(word))
}

/// "valley's" → "valley".
fn possessive_stripped(folded: &str) -> &str {
    folded
        .strip_suffix("'s")
        .or_else(|| folded.strip_suffix("\u{2019}s"))
        .unwrap_or(folded)
}

fn is_event_word(folded: &str) -> bool {
    EVENTS
        .iter()
        .any(|(_, phrases)| phrases.iter().any(|p| p.split(' ').next() == Some(folded)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        share_an_event(&event_mentions(a), &event_mentions(b))
    }

    #[test]
    fn talks_that_broke_down_are_the_collapse_of_the_talks() {
        assert!(same(
            "The dockers' union called the stoppage after talks on a new contract broke down.",
            "The strike follows the collapse of contract talks between the union and the port operators."
        ));
        assert!(same(
            "Negotiations over pay fell apart late on Tuesday, the union said.",
            "The breakdown of pay negotiations was confirmed by both sides."
        ));
    }

    #[test]
    fn one_kind_of_event_with_another_subject_is_another_event() {
        // Both collapse, but a tunnel is not the talks.
        assert!(!same(
            "Talks on a new contract broke down.",
            "A mine tunnel collapsed on Friday."
        ));
        // The same subject, but a strike is not a breakdown.
        assert!(!same(
            "Contract talks collapsed.",
            "Workers went on strike over the contract talks."
        ));
    }

    #[test]
    fn a_walkout_is_a_strike_and_moving_out_is_evacuating() {
        assert!(same(
            "Dock workers walked out at the container terminal.",
            "A strike by dock workers shut the container terminal."
        ));
        assert!(same(
            "Residents of the valley moved out as the fire spread.",
            "The valley's residents were evacuated from the fire."
        ));
    }
}
