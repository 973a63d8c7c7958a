//! `polybrief summarize FILE|-`: the summary of one English text, on stdout.
//!
//! With `--gguf` and `--tokenizer` the model comes from local files; otherwise from the
//! catalog (wired by the lead). Facts of the summary that the text does not contain are
//! reported on stderr, as the brief would flag them.

use std::path::{Path, PathBuf};

use crate::article::{Article, EnglishArticle, EnglishSentence, Lang};
use crate::config::{Context, SummarizerChoice};
use crate::engines::{load_llm, plan_summarizer, SummaryPlan};
use crate::error::{Error, ExitCode};
use crate::models::llm::{LlmFiles, LlmGenerator, LlmOptions, Weights};
use crate::pipeline::summarize::llm::{split_sentences, LlmSummarizer, LlmSummaryOptions};
use crate::pipeline::summarize::{ExtractiveSummarizer, Summarizer};
use crate::prompts::Prompts;

/// What `polybrief summarize` was asked to do (from `cli::SummarizeArgs`).
#[derive(Clone, Debug)]
pub struct SummarizeOptions {
    /// The English text to summarize: a file, or `-` for standard input.
    pub input: String,

    /// Which summarizer writes the summary.
    pub summarizer: SummarizerChoice,

    /// A folder of prompt templates (summarize.txt, summarize_strict.txt, ...) that replace the
    /// built-in ones, file by file.
    pub prompts: Option<PathBuf>,

    /// A local GGUF model to use instead of the catalog's (needs --tokenizer).
    pub gguf: Option<PathBuf>,

    /// The model's tokenizer.json (with --gguf). A tokenizer_config.json beside it supplies
    /// the chat template; otherwise the GGUF's own template is used.
    pub tokenizer: Option<PathBuf>,

    /// How many sentences the summary has.
    pub sentences: u16,
}

pub fn run(args: SummarizeOptions, ctx: &Context) -> Result<ExitCode, Error> {
    // Read as `run` reads it: HTML without its markup, Markdown without its syntax, front
    // matter as metadata; `-` is standard input.
    let article = english_article_of(super::one_article(&args.input, "summarize")?);
    let prompts = Prompts::load(args.prompts.as_deref())?;
    let options = LlmSummaryOptions {
        sentences: usize::from(args.sentences),
        ..Default::default()
    };

    let summary = match (&args.gguf, &args.tokenizer) {
        (Some(gguf), Some(tokenizer)) => {
            let files = LlmFiles {
                weights: Weights::Gguf(gguf.clone()),
                tokenizer: tokenizer.clone(),
                tokenizer_config: tokenizer_config_beside(tokenizer),
            };
            let mut generator = LlmGenerator::load(&files, &ctx.device, LlmOptions::default())?;
            LlmSummarizer::new(&mut generator, prompts, options).summarize(&article)?
        }
        _ => {
            let store = ctx.model_store();
            match plan_summarizer(args.summarizer, ctx, &store)? {
                SummaryPlan::Extractive { note } => {
                    if let Some(note) = note {
                        log::warn!("{note}");
                    }
                    let mut summarizer = ExtractiveSummarizer {
                        max_sentences: usize::from(args.sentences),
                        ..Default::default()
                    };
                    summarizer.summarize(&article)?
                }
                SummaryPlan::Llm { entry } => {
                    let mut generator = load_llm(&store, &entry, &ctx.device)?;
                    LlmSummarizer::new(&mut generator, prompts, options).summarize(&article)?
                }
            }
        }
    };
    if !summary.ungrounded.is_empty() {
        log::warn!(
            "the summary states {} which the text does not contain; the brief would flag it",
            summary
                .ungrounded
                .iter()
                .map(|f| format!("\"{f}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    crate::output::write_stdout(format!("{}\n", summary.text()).as_bytes())?;
    Ok(ExitCode::Success)
}

fn tokenizer_config_beside(tokenizer: &Path) -> Option<PathBuf> {
    let candidate = tokenizer.with_file_name("tokenizer_config.json");
    candidate.is_file().then_some(candidate)
}

/// `article`, taken to be English, split into sentences.
fn english_article_of(article: Article) -> EnglishArticle {
    let paragraphs: Vec<String> = article
        .paragraphs
        .iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut sentences = Vec::new();
    for (paragraph, p) in paragraphs.iter().enumerate() {
        for s in split_sentences(p) {
            sentences.push(EnglishSentence {
                text: s,
                segment: sentences.len(),
                paragraph,
                translated_by: None,
            });
        }
    }
    let article = Article::new(article.origin, article.meta, paragraphs);
    EnglishArticle {
        article,
        source_lang: Some(Lang::english()),
        translations: Vec::new(),
        sentences,
        english_title: None,
    }
}
