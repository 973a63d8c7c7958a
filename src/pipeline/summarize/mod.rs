//! Summarize: one summary per English article, by a `Summarizer`. Two exist: the
//! model-free `ExtractiveSummarizer` (TextRank, always available, used when no LLM is cached
//! and the run is offline) and the LLM summarizer (in `llm`). Every summary's numbers, dates
//! and names are then checked against its article (`check_grounding`).

pub mod extractive;
pub mod grounding;
pub mod lexical;
pub mod llm;

use std::ops::Range;

pub use extractive::ExtractiveSummarizer;
pub use grounding::{check_grounding, ungrounded_facts};

use crate::article::{EnglishArticle, Summary, SummaryMethod};
use crate::models::GenerateError;

/// Which summarizer a run uses (`--summarizer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SummarizerKind {
    /// Sentences chosen from the article by TextRank; no model needed.
    Extractive,
    /// Written by the local instruct model.
    Llm,
}

/// Why an article could not be summarized.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    #[error("{origin} has no English text to summarize")]
    EmptyArticle { origin: String },

    #[error("the summarizer model {model} failed on {origin}: {source}")]
    Generate {
        model: String,
        origin: String,
        #[source]
        source: Box<GenerateError>,
    },

    #[error("prompt template {path} is malformed: {reason}")]
    Template { path: String, reason: String },

    #[error(transparent)]
    Model(#[from] GenerateError),

    #[error(transparent)]
    Prompt(#[from] crate::prompts::PromptError),

    #[error("{0}")]
    Other(String),
}

/// Produces the summary of one article.
pub trait Summarizer {
    fn summarize(&mut self, article: &EnglishArticle) -> Result<Summary, SummarizeError>;
    fn method(&self) -> SummaryMethod;
}

/// Cuts a run of sentences into consecutive chunks of at most `max_tokens` tokens each (as
/// `count` measures them), for summarizing a text longer than the model's context in pieces.
/// A sentence longer than `max_tokens` on its own becomes a chunk of its own rather than being
/// cut. The chunks cover every sentence, in order; no sentences give no chunks.
pub fn chunk_sentences(
    sentences: &[String],
    max_tokens: usize,
    count: impl Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, sentence) in sentences.iter().enumerate() {
        let n = count(sentence);
        if i > start && tokens + n > max_tokens {
            chunks.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += n;
    }
    if start < sentences.len() {
        chunks.push(start..sentences.len());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::{Article, ArticleMeta, EnglishSentence, Lang};

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn chunks_cover_all_sentences_in_order_within_budget() {
        let sentences: Vec<String> = ["a b c", "d e", "f g h i", "j", "k l m n o p q r s t", "u v"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let chunks = chunk_sentences(&sentences, 5, words);
        assert_eq!(chunks, vec![0..2, 2..4, 4..5, 5..6]);
        // Contiguous and complete.
        assert_eq!(chunks.first().map(|c| c.start), Some(0));
        assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        for c in &chunks {
            let total: usize = sentences[c.clone()].iter().map(|s| words(s)).sum();
            assert!(total <= 5 || c.len() == 1, "{c:?} has {total} tokens");
        }
        assert!(chunk_sentences(&[], 5, words).is_empty());
        assert_eq!(chunk_sentences(&sentences, 0, words).len(), sentences.len());
    }

    fn english(paragraphs: &[&[&str]]) -> EnglishArticle {
        let article = Article::new(
            "de-example.txt".into(),
            ArticleMeta::default(),
            paragraphs.iter().map(|p| p.join(" ")).collect(),
        );
        let mut sentences = Vec::new();
        for (p, paragraph) in paragraphs.iter().enumerate() {
            for text in paragraph.iter() {
                let segment = sentences.len();
                sentences.push(EnglishSentence {
                    text: text.to_string(),
                    segment,
                    paragraph: p,
                    translated_by: Some("opus-mt-de-en".into()),
                });
            }
        }
        EnglishArticle {
            article,
            source_lang: Lang::parse("de").ok(),
            translations: vec![(
                Lang::parse("de").unwrap_or_else(|_| Lang::english()),
                "opus-mt-de-en".into(),
            )],
            sentences,
        }
    }

    #[test]
    fn grounding_flags_facts_the_article_lacks() {
        let article = english(&[&[
            "The factory in Leipzig will close in 2025.",
            "About 1.200 workers are affected.",
        ]]);
        let mut summary = ExtractiveSummarizer::default()
            .summarize(&article)
            .expect("summary");
        assert!(summary.ungrounded.is_empty(), "{:?}", summary.ungrounded);
        summary.sentences[0].text =
            "The factory in Dresden will close in 2026, affecting 1,200 workers.".into();
        check_grounding(&mut summary, &article);
        assert_eq!(summary.ungrounded, ["Dresden", "2026"]);
    }

    #[test]
    fn empty_article_is_an_error_naming_it() {
        let article = english(&[&["  "]]);
        let err = ExtractiveSummarizer::default()
            .summarize(&article)
            .unwrap_err();
        assert!(err.to_string().contains("de-example.txt"), "{err}");
    }
}
