//! Word-level text similarity without a model: content terms (folded, stopwords out, lightly
//! stemmed), TF-IDF vectors and cosine similarity. Shared by the extractive summarizer
//! (TextRank's sentence graph) and synthesis (story grouping, merging points, support checks).
//!
//! Vectors are sorted term lists, never hash maps, so every sum is taken in the same order and
//! the same input gives bit-identical scores on every run.

use std::collections::BTreeMap;

use crate::pipeline::facts::words;

/// English function words: they say nothing about which event a text is about.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "even",
    "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "herself", "him", "himself", "his", "how", "however", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "least", "less", "like", "made", "make", "many", "may", "me", "might",
    "more", "most", "much", "must", "my", "no", "nor", "not", "now", "of", "off", "on", "once",
    "one", "only", "or", "other", "our", "ours", "out", "over", "own", "per", "s", "said", "same",
    "say", "says", "she", "should", "since", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "upon", "us", "very", "was", "we", "were", "what", "when", "where",
    "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within",
    "without", "would", "yet", "you", "your", "yours",
];

pub(crate) fn is_stopword(folded: &str) -> bool {
    STOPWORDS.binary_search(&folded).is_ok()
}

/// A light English stemmer: enough to make "jobs"/"job", "killed"/"killing"/"kill",
/// "evacuated"/"evacuate" meet, without a dictionary.
pub(crate) fn stem(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() <= 3 || chars.iter().any(|c| c.is_ascii_digit()) {
        return word.to_string();
    }
    let mut w: String = word.to_string();
    let len = |s: &str| s.chars().count();
    if let Some(base) = w.strip_suffix("ies").filter(|b| len(b) >= 2) {
        w = format!("{base}y");
    } else if let Some(base) = w.strip_suffix("sses") {
        w = format!("{base}ss");
    } else if let Some(base) = w.strip_suffix("ing").filter(|b| len(b) >= 3) {
        w = base.to_string();
    } else if let Some(base) = w.strip_suffix("ed").filter(|b| len(b) >= 3) {
        w = base.to_string();
    } else if let Some(base) = w.strip_suffix("ly").filter(|b| len(b) >= 4) {
        w = base.to_string();
    } else if let Some(base) = w
        .strip_suffix("es")
        .filter(|b| b.ends_with(['s', 'x', 'z']) || b.ends_with("ch") || b.ends_with("sh"))
    {
        w = base.to_string();
    } else if w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        w.pop();
    }
    // "evacuate" and "evacuat(ed)" end alike; doubled consonants of "stopped"/"stop" too.
    if w.ends_with('e') && len(&w) > 4 {
        w.pop();
    }
    let tail: Vec<char> = w.chars().rev().take(2).collect();
    if tail.len() == 2 && tail[0] == tail[1] && !"aeiouls".contains(tail[0]) && len(&w) > 4 {
        w.pop();
    }
    w
}

/// The content terms of `text`, in order: folded words that are not stopwords, stemmed.
/// Words with digits are kept whole ("2024", "1.2").
pub(crate) fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .map(|w| w.folded)
        .filter(|w| !w.is_empty() && !is_stopword(w) && w.chars().any(char::is_alphanumeric))
        .filter(|w| w.chars().count() > 1 || w.chars().all(|c| c.is_ascii_digit()))
        .map(|w| stem(&w))
        .collect()
}

/// A sparse vector over terms, sorted by term.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct TermVector {
    entries: Vec<(String, f32)>,
    norm: f32,
}

impl TermVector {
    pub(crate) fn from_weights(weights: BTreeMap<String, f32>) -> TermVector {
        let entries: Vec<(String, f32)> = weights.into_iter().filter(|(_, w)| *w > 0.0).collect();
        let norm = entries.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        TermVector { entries, norm }
    }

    #[cfg(test)]
    /// Raw term counts.
    pub(crate) fn counts(terms: &[String]) -> TermVector {
        let mut weights = BTreeMap::new();
        for t in terms {
            *weights.entry(t.clone()).or_insert(0.0) += 1.0;
        }
        TermVector::from_weights(weights)
    }

    /// Cosine similarity in [0, 1]; 0 when either vector is empty.
    pub(crate) fn cosine(&self, other: &TermVector) -> f32 {
        if self.norm == 0.0 || other.norm == 0.0 {
            return 0.0;
        }
        let (mut i, mut j, mut dot) = (0, 0, 0.0f32);
        while i < self.entries.len() && j < other.entries.len() {
            match self.entries[i].0.cmp(&other.entries[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += self.entries[i].1 * other.entries[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        (dot / (self.norm * other.norm)).clamp(0.0, 1.0)
    }
}

/// Inverse document frequencies over a set of documents (each a list of terms).
#[derive(Clone, Debug, Default)]
pub(crate) struct Idf {
    idf: BTreeMap<String, f32>,
    default: f32,
}

impl Idf {
    /// Smoothed idf, `ln((N + 1) / (df + 1)) + 1`: terms in every document still count a little,
    /// so two documents of a two-document run can be compared at all.
    pub(crate) fn new(documents: &[Vec<String>]) -> Idf {
        let n = documents.len() as f32;
        let mut df: BTreeMap<&str, f32> = BTreeMap::new();
        for doc in documents {
            let mut unique: Vec<&str> = doc.iter().map(String::as_str).collect();
            unique.sort_unstable();
            unique.dedup();
            for t in unique {
                *df.entry(t).or_insert(0.0) += 1.0;
            }
        }
        let idf = df
            .into_iter()
            .map(|(t, d)| (t.to_string(), ((n + 1.0) / (d + 1.0)).ln() + 1.0))
            .collect();
        Idf {
            idf,
            default: ((n + 1.0) / 1.0).ln() + 1.0,
        }
    }

    pub(crate) fn weight(&self, term: &str) -> f32 {
        self.idf.get(term).copied().unwrap_or(self.default)
    }

    /// The TF-IDF vector of a document, with sublinear term frequency (1 + ln tf) so one
    /// repeated word does not dominate.
    pub(crate) fn vector(&self, terms: &[String]) -> TermVector {
        let mut tf: BTreeMap<String, f32> = BTreeMap::new();
        for t in terms {
            *tf.entry(t.clone()).or_insert(0.0) += 1.0;
        }
        let weights = tf
            .into_iter()
            .map(|(t, f)| {
                let w = (1.0 + f.ln()) * self.weight(&t);
                (t, w)
            })
            .collect();
        TermVector::from_weights(weights)
    }
}

/// The share of `claim`'s distinct terms that occur in `source` (distinct terms, sorted).
pub(crate) fn coverage(claim: &[String], source_sorted: &[String]) -> f32 {
    let mut distinct: Vec<&String> = claim.iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.is_empty() {
        return 0.0;
    }
    let found = distinct
        .iter()
        .filter(|t| source_sorted.binary_search(t).is_ok())
        .count();
    found as f32 / distinct.len() as f32
}

/// Sorted, deduplicated terms, for `coverage`.
pub(crate) fn term_set(text: &str) -> Vec<String> {
    let mut t = terms(text);
    t.sort_unstable();
    t.dedup();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopword_list_is_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stemming_joins_inflections() {
        assert_eq!(stem("jobs"), stem("job"));
        assert_eq!(stem("killed"), stem("killing"));
        assert_eq!(stem("evacuated"), stem("evacuate"));
        assert_eq!(stem("cities"), "city");
        assert_eq!(stem("taxes"), "tax");
        assert_eq!(stem("stopped"), stem("stop"));
        assert_eq!(stem("news"), "new"); // accepted: a light stemmer errs toward merging
    }

    #[test]
    fn terms_drop_function_words_and_fold() {
        assert_eq!(
            terms("The floods in Hà Nội were severe."),
            ["flood", "ha", "noi", "sever"]
        );
    }

    #[test]
    fn cosine_is_one_for_same_text_and_zero_for_disjoint() {
        let a = TermVector::counts(&terms("flood waters rise in Hanoi"));
        let b = TermVector::counts(&terms("Hanoi flood waters rise"));
        let c = TermVector::counts(&terms("election results announced"));
        assert!((a.cosine(&b) - 1.0).abs() < 1e-6);
        assert_eq!(a.cosine(&c), 0.0);
        assert_eq!(a.cosine(&TermVector::default()), 0.0);
    }

    #[test]
    fn idf_weights_rare_terms_higher() {
        let docs = vec![
            terms("flood Hanoi rain"),
            terms("flood Berlin vote"),
            terms("flood Seoul"),
        ];
        let idf = Idf::new(&docs);
        assert!(idf.weight("hanoi") > idf.weight("flood"));
    }

    #[test]
    fn coverage_counts_distinct_claim_terms_found() {
        let source = term_set("Floods destroyed homes in Hanoi on Monday");
        assert_eq!(coverage(&terms("Floods destroyed homes"), &source), 1.0);
        assert_eq!(
            coverage(&terms("Floods destroyed bridges"), &source),
            2.0 / 3.0
        );
    }
}
