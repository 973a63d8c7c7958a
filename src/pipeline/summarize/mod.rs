//! Summarize: one summary per English article, by a `Summarizer`. Two exist: the
//! model-free `ExtractiveSummarizer` (TextRank, always available, used when no LLM is cached
//! and the run is offline) and the LLM summarizer (in `llm`). Every summary's numbers, dates
//! and names are then checked against its article (`check_grounding`).

pub(crate) mod extractive;
pub(crate) mod grounding;
pub mod llm;
pub(crate) mod stage;

pub use extractive::ExtractiveSummarizer;
pub use grounding::{check_grounding, ungrounded_facts};

use crate::article::{EnglishArticle, Summary, SummaryMethod};
use crate::models::GenerateError;

/// Why an article could not be summarized.
#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    #[error("{origin} has no English text to summarize")]
    EmptyArticle { origin: String },

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

    /// Summaries of several articles, in order, each what `summarize` gives it. The outer
    /// error ends the whole batch (a stop was requested, the model failed); an inner one is
    /// that article's own. The default summarizes one by one; the LLM summarizer asks the
    /// model for independent steps of all the articles together.
    fn summarize_batch(
        &mut self,
        articles: &[&EnglishArticle],
    ) -> Result<Vec<Result<Summary, SummarizeError>>, SummarizeError> {
        let mut summaries = Vec::with_capacity(articles.len());
        for article in articles {
            match self.summarize(article) {
                Err(SummarizeError::Model(GenerateError::Interrupted)) => {
                    return Err(GenerateError::Interrupted.into())
                }
                summary => summaries.push(summary),
            }
        }
        Ok(summaries)
    }

    fn method(&self) -> SummaryMethod;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::{Article, ArticleMeta, EnglishSentence, Lang};

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
            english_title: None,
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
