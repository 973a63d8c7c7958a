//! Grounding: a summary may state only numbers, dates and names that its article states.
//! Ungrounded facts are recorded on the summary (the brief flags it); an LLM summarizer may
//! use `ungrounded_facts` first to decide whether to regenerate with a stricter prompt.

use std::collections::BTreeSet;

use crate::article::{EnglishArticle, Summary};
use crate::pipeline::facts::{extract_facts, Fact, SourceFacts};

/// Fills `summary.ungrounded` (replacing what was there) with the facts, as written in the
/// summary, that the article's English text does not contain; each fact once, in order.
pub fn check_grounding(summary: &mut Summary, article: &EnglishArticle) {
    let source = SourceFacts::new(&article.text());
    let mut seen = BTreeSet::new();
    summary.ungrounded = summary
        .sentences
        .iter()
        .flat_map(|s| source.missing(&extract_facts(&s.text)))
        .filter(|f| seen.insert((f.kind, f.key.clone())))
        .map(|f| f.text)
        .collect();
}

/// The facts of `text` (for example a generated summary) that `article` does not contain.
pub fn ungrounded_facts(text: &str, article: &EnglishArticle) -> Vec<Fact> {
    SourceFacts::new(&article.text()).missing(&extract_facts(text))
}
