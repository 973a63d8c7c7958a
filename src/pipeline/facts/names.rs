//! Words and names: folding (lowercase, no diacritics, no possessive 's) and the capitalised
//! word sequences that are people, places and organisations.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

use super::{Fact, FactKey, FactKind, FactSpan, Unit};

/// A word of the text and whether it opens a sentence.
#[derive(Clone, Debug)]
pub(crate) struct Word {
    pub text: String,
    /// `fold(text)`, computed once.
    pub folded: String,
    pub span: Range<usize>,
    pub sentence_start: bool,
}

pub(super) static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\p{Lu}\.){2,}|[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+)*")
        .expect("valid regex")
});

/// The words of `text`, each marked sentence-initial when nothing precedes it or when the gap
/// from the previous word holds sentence punctuation, a line break, a colon or a quote mark.
pub(crate) fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut prev_end: Option<usize> = None;
    for m in WORD.find_iter(text) {
        let gap = &text[prev_end.unwrap_or(0)..m.start()];
        let sentence_start = prev_end.is_none()
            || gap.contains([
                '.', '!', '?', '\n', ':', '"', '\u{201c}', '\u{ab}', '\u{201e}',
            ]);
        out.push(Word {
            text: m.as_str().to_string(),
            folded: fold(m.as_str()),
            span: m.range(),
            sentence_start,
        });
        prev_end = Some(m.end());
    }
    out
}

/// Lowercase, without diacritics, without a possessive "'s", without the dots of "U.S.".
pub(crate) fn fold(word: &str) -> String {
    if word.is_ascii() {
        // Most words of English text: no decomposition needed.
        let lower = word.to_ascii_lowercase();
        let lower = lower.strip_suffix("'s").unwrap_or(&lower);
        return lower.replace('.', "");
    }
    let lower = word.to_lowercase();
    let lower = lower
        .strip_suffix("'s")
        .or_else(|| lower.strip_suffix("’s"))
        .unwrap_or(&lower);
    lower
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c) && *c != '.')
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect()
}

/// Capitalised words that are not names (or not on their own).
pub(super) const NAME_STOPWORDS: &[&str] = &[
    "a",
    "about",
    "according",
    "after",
    "all",
    "also",
    "although",
    "among",
    "an",
    "and",
    "another",
    "as",
    "at",
    "because",
    "before",
    "between",
    "both",
    "but",
    "by",
    "despite",
    "during",
    "each",
    "even",
    "every",
    "for",
    "from",
    "he",
    "her",
    "here",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "into",
    "it",
    "its",
    "just",
    "less",
    "many",
    "meanwhile",
    "more",
    "most",
    "my",
    "no",
    "not",
    "now",
    "of",
    "on",
    "only",
    "or",
    "other",
    "our",
    "over",
    "she",
    "since",
    "so",
    "some",
    "still",
    "such",
    "than",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "though",
    "through",
    "to",
    "today",
    "tomorrow",
    "under",
    "until",
    "we",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "with",
    "yes",
    "yesterday",
    "yet",
    "you",
    "your",
];

/// Titles and roles: they precede names but are not part of them, so "President Biden" and
/// "Biden" name the same person.
pub(super) const TITLES: &[&str] = &[
    "ambassador",
    "chancellor",
    "chief",
    "deputy",
    "dr",
    "governor",
    "judge",
    "king",
    "mayor",
    "minister",
    "mr",
    "mrs",
    "ms",
    "pope",
    "premier",
    "president",
    "prime",
    "prof",
    "queen",
    "secretary",
    "senator",
    "sir",
    "spokesman",
    "spokesperson",
    "spokeswoman",
    "vice",
];

/// Words that may sit inside a name ("Bank of England", "Ursula von der Leyen").
pub(super) const NAME_CONNECTORS: &[&str] = &[
    "of", "de", "van", "von", "der", "den", "al", "bin", "la", "le", "du", "da", "del", "di",
];

pub(super) fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

pub(super) fn names(text: &str, tokens: &[Word], taken: &[Range<usize>]) -> Vec<FactSpan> {
    let free = |t: &Word| {
        !taken
            .iter()
            .any(|r| r.start < t.span.end && t.span.start < r.end)
    };
    // Capitalisation at a sentence start says nothing; elsewhere it marks a name. A word the
    // text also writes in lowercase is an ordinary word ("Shares of Apple" / "its shares").
    let capitalised_mid_sentence: BTreeSet<String> = tokens
        .iter()
        .filter(|t| is_capitalised(&t.text) && !t.sentence_start)
        .map(|t| t.folded.clone())
        .collect();
    let lowercase_somewhere: BTreeSet<String> = tokens
        .iter()
        .filter(|t| t.text.chars().next().is_some_and(char::is_lowercase))
        .map(|t| t.folded.clone())
        .collect();

    // Runs of capitalised words joined by single spaces (or a connector between two of them).
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let joined_to_previous = current.last().is_some_and(|&p| {
            let gap = &text[tokens[p].span.end..token.span.start];
            !token.sentence_start
                && !gap.is_empty()
                && gap.chars().all(|c| c == ' ' || c == '\u{a0}')
        });
        let capital = is_capitalised(&token.text) && free(token);
        // A capitalised stopword ("The", "In" of an all-caps headline) ends a name.
        let capital = capital && !NAME_STOPWORDS.contains(&token.folded.as_str());
        let connector = !current.is_empty()
            && NAME_CONNECTORS.contains(&token.text.as_str())
            && tokens
                .get(i + 1)
                .is_some_and(|n| is_capitalised(&n.text) && !n.sentence_start);
        if (capital || connector) && (current.is_empty() || joined_to_previous) {
            current.push(i);
        } else {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            if capital {
                current.push(i);
            }
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }

    let mut out = Vec::new();
    for run in runs {
        // Titles split a run ("German Chancellor Olaf Scholz" → "German", "Olaf Scholz").
        let mut pieces: Vec<Vec<usize>> = vec![Vec::new()];
        for &i in &run {
            if TITLES.contains(&tokens[i].folded.as_str()) {
                pieces.push(Vec::new());
            } else if let Some(last) = pieces.last_mut() {
                last.push(i);
            }
        }
        for mut piece in pieces {
            // A sentence-initial word is part of a name only if nothing says it is an
            // ordinary word: "Officials said" is not a name; "Germany said" is where the
            // text capitalises Germany elsewhere; "Olaf Scholz said" is.
            if let Some(&first) = piece.first() {
                let word = &tokens[first].folded;
                let ordinary = lowercase_somewhere.contains(word)
                    || (piece.len() == 1 && !capitalised_mid_sentence.contains(word));
                if tokens[first].sentence_start && ordinary {
                    piece.remove(0);
                }
            }
            // Connectors only join: none at either end.
            while piece.first().is_some_and(|&i| is_name_stopword(&tokens[i])) {
                piece.remove(0);
            }
            while piece.last().is_some_and(|&i| is_name_stopword(&tokens[i])) {
                piece.pop();
            }
            let Some(&first) = piece.first() else {
                continue;
            };
            let last = piece[piece.len() - 1];
            let span = tokens[first].span.start..tokens[last].span.end;
            let key = piece
                .iter()
                .map(|&i| tokens[i].folded.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if key.is_empty() {
                continue;
            }
            out.push(FactSpan {
                fact: Fact {
                    kind: FactKind::Name,
                    text: text[span.clone()].to_string(),
                    key: FactKey::Name(key),
                },
                span,
                unit: Unit::Other,
            });
        }
    }
    out
}

pub(super) fn is_name_stopword(word: &Word) -> bool {
    NAME_STOPWORDS.contains(&word.folded.as_str()) || NAME_CONNECTORS.contains(&word.text.as_str())
}
