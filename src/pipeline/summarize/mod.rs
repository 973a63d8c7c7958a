//! TEMPORARY, h-llm branch only: the minimal `Summarizer` interface that the synthesis
//! helper owns, so that `llm.rs` compiles here. Their version of this file replaces this one at
//! merge; it must keep `pub mod llm;` and error variants/`From` impls for `GenerateError` and
//! `PromptError` plus a message variant (`SummarizeError::Other(String)`), which `llm.rs` uses.

pub mod llm;

use crate::article::{EnglishArticle, Summary, SummaryMethod};

/// Turns one English article into its summary.
pub trait Summarizer {
    fn summarize(&mut self, article: &EnglishArticle) -> Result<Summary, SummarizeError>;
    fn method(&self) -> SummaryMethod;
}

#[derive(Debug, thiserror::Error)]
pub enum SummarizeError {
    #[error(transparent)]
    Generate(#[from] crate::models::GenerateError),
    #[error(transparent)]
    Prompt(#[from] crate::prompts::PromptError),
    #[error("{0}")]
    Other(String),
}
