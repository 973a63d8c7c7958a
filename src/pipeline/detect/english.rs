//! Evidence that a Latin-script text is English, for the one mistake trigram statistics make
//! most often on news: a plain English sentence full of names and numbers ("A new tram line
//! opened in Oakdale on Monday, carrying 14335 passengers on its first day.") scored as
//! French or Dutch, which then needs a translation model it should never have needed.
//!
//! The evidence is English grammar, not letter statistics: its function words that other
//! Latin-script languages do not use as words (`the`, `its`, `which`, `were`), and the `-ing`
//! and `-ed` endings of its verbs. A text is English by this rule only when such words are
//! both several and a large share of its words; the figures are in the README's language
//! section and pinned by the tests in `detect.rs`.

/// English function words that are not common words in the other Latin-script languages
/// polybrief meets (so not `a`, `in`, `die`, `was`, `of`, `is`, which Dutch, German, French
/// or Italian also use).
const FUNCTION_WORDS: &[&str] = &[
    "the",
    "and",
    "its",
    "it's",
    "with",
    "that",
    "which",
    "who",
    "whom",
    "whose",
    "were",
    "have",
    "has",
    "had",
    "been",
    "this",
    "these",
    "those",
    "their",
    "they",
    "them",
    "would",
    "will",
    "could",
    "should",
    "from",
    "after",
    "before",
    "said",
    "says",
    "for",
    "to",
    "on",
    "at",
    "by",
    "are",
    "his",
    "her",
    "she",
    "he",
    "than",
    "but",
    "not",
    "our",
    "your",
    "we",
    "you",
    "there",
    "when",
    "while",
    "about",
    "into",
    "over",
    "under",
    "first",
    "new",
    "day",
    "year",
    "years",
    "people",
    "city",
    "government",
    "police",
    "what",
    "where",
];

/// At least this many English words, and at least this share of all words.
const MIN_HITS: usize = 2;
const MIN_SHARE: f64 = 0.25;

/// Whether `text`'s words are, by grammar, English.
pub(super) fn reads_as_english(text: &str) -> bool {
    let mut words = 0usize;
    let mut hits = 0usize;
    let mut sentence_start = true;
    for word in text
        .split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '.'))
        .filter(|w| w.chars().any(char::is_alphabetic))
    {
        let starts_sentence = std::mem::replace(&mut sentence_start, word.ends_with('.'));
        let word = word.trim_matches('.');
        // Names (capitalised inside a sentence) belong to no language; they only dilute.
        if !starts_sentence && word.starts_with(char::is_uppercase) {
            continue;
        }
        words += 1;
        let lower = word.to_lowercase();
        if !lower.is_ascii() {
            // English words are plain ASCII; an accented word is evidence against.
            continue;
        }
        let verb_form = lower.len() > 5 && (lower.ends_with("ing") || lower.ends_with("ed"));
        if verb_form || FUNCTION_WORDS.contains(&lower.as_str()) {
            hits += 1;
        }
    }
    hits >= MIN_HITS && hits as f64 >= MIN_SHARE * words as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_english_with_names_and_numbers_reads_as_english() {
        assert!(reads_as_english("A new tram line opened in Oakdale on Monday, carrying 14335 passengers on its first day."));
        assert!(reads_as_english(
            "The council said the bridge would reopen after the repairs."
        ));
    }

    #[test]
    fn other_latin_languages_do_not() {
        for text in [
            "Une nouvelle ligne de tramway a ouvert lundi à Oakdale, avec 14335 passagers le premier jour.",
            "Het was een mooie dag en het is koud, of niet?",
            "Die neue Straßenbahnlinie wurde am Montag in Oakdale eröffnet.",
            "La nueva línea de tranvía abrió el lunes en Oakdale con 14335 pasajeros.",
            "Nowa linia tramwajowa została otwarta w poniedziałek w Oakdale.",
            "La nuova linea del tram è stata aperta lunedì a Oakdale.",
        ] {
            assert!(!reads_as_english(text), "{text}");
        }
    }
}
