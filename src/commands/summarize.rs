//! `polybrief summarize FILE|-`: the summary of one English text, on stdout.
//!
//! With `--gguf` and `--tokenizer` the model comes from local files; otherwise from the
//! catalog (wired by the lead). Facts of the summary that the text does not contain are
//! reported on stderr, as the brief would flag them.

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::article::{Article, ArticleMeta, EnglishArticle, EnglishSentence, Lang};
use crate::error::Error;
use crate::models::llm::{LlmFiles, LlmGenerator, LlmOptions, Weights};
use crate::pipeline::summarize::llm::{split_sentences, LlmSummarizer, LlmSummaryOptions};
use crate::pipeline::summarize::Summarizer;
use crate::prompts::Prompts;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SummarizerChoice {
    /// A local instruct model writes the summary.
    Llm,
    /// Sentences picked from the text; no model.
    Extractive,
    /// The LLM when a model is available, else extractive.
    Auto,
}

#[derive(Debug, clap::Args)]
pub struct SummarizeArgs {
    /// The English text to summarize: a file, or `-` for standard input.
    #[arg(value_name = "FILE|-")]
    pub input: String,

    /// Which summarizer writes the summary.
    #[arg(long, value_enum, default_value_t = SummarizerChoice::Auto)]
    pub summarizer: SummarizerChoice,

    /// A folder of prompt templates (summarize.txt, summarize_strict.txt, ...) that replace the
    /// built-in ones, file by file.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,

    /// A local GGUF model to use instead of the catalog's (needs --tokenizer).
    #[arg(long, value_name = "FILE", requires = "tokenizer")]
    pub gguf: Option<PathBuf>,

    /// The model's tokenizer.json (with --gguf). A tokenizer_config.json beside it supplies
    /// the chat template; otherwise the GGUF's own template is used.
    #[arg(long, value_name = "FILE", requires = "gguf")]
    pub tokenizer: Option<PathBuf>,

    /// How many sentences the summary has.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub sentences: u16,
}

pub fn run(args: &SummarizeArgs) -> Result<(), Error> {
    let text = read_input(&args.input)?;
    if text.trim().is_empty() {
        return Err(Error::Usage(format!("{} is empty: there is nothing to summarize", args.input)));
    }
    let prompts = Prompts::load(args.prompts.as_deref())?;
    let article = english_article(&args.input, &text);

    let files = match (&args.gguf, &args.tokenizer) {
        (Some(gguf), Some(tokenizer)) => Some(LlmFiles {
            weights: Weights::Gguf(gguf.clone()),
            tokenizer: tokenizer.clone(),
            tokenizer_config: tokenizer_config_beside(tokenizer),
        }),
        _ => None,
    };
    // LEAD: route `extractive` (and `auto` without a model) to the extractive summarizer, and
    // without --gguf resolve the catalog's default summarizer model through models::hub.
    if args.summarizer == SummarizerChoice::Extractive {
        return Err(Error::Usage("the extractive summarizer is not wired into `summarize` in this build".to_string()));
    }
    let Some(files) = files else {
        return Err(Error::Usage("pass --gguf FILE --tokenizer FILE: this build summarizes with local model files".to_string()));
    };

    let mut generator = LlmGenerator::load(&files, &default_device(), LlmOptions::default())?;
    let options = LlmSummaryOptions { sentences: usize::from(args.sentences), ..Default::default() };
    let mut summarizer = LlmSummarizer::new(&mut generator, prompts, options);
    let summary = summarizer.summarize(&article)?;
    if !summary.ungrounded.is_empty() {
        log::warn!(
            "the summary states {} which the text does not contain; the brief would flag it",
            summary.ungrounded.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ")
        );
    }
    println!("{}", summary.text());
    Ok(())
}

fn read_input(input: &str) -> Result<String, Error> {
    if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| Error::Read { path: PathBuf::from("<stdin>"), source })?;
        Ok(text)
    } else {
        std::fs::read_to_string(input).map_err(|source| Error::Read { path: PathBuf::from(input), source })
    }
}

fn tokenizer_config_beside(tokenizer: &Path) -> Option<PathBuf> {
    let candidate = tokenizer.with_file_name("tokenizer_config.json");
    candidate.is_file().then_some(candidate)
}

/// A plain English text as the pipeline's `EnglishArticle`: paragraphs at blank lines,
/// sentences at Unicode sentence boundaries.
pub fn english_article(origin: &str, text: &str) -> EnglishArticle {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    let mut sentences = Vec::new();
    for (paragraph, p) in paragraphs.iter().enumerate() {
        for s in split_sentences(p) {
            sentences.push(EnglishSentence { text: s, segment: sentences.len(), paragraph, translated_by: None });
        }
    }
    let article = Article::new(origin.to_string(), ArticleMeta::default(), paragraphs);
    EnglishArticle { article, source_lang: Some(Lang::english()), translations: Vec::new(), sentences }
}

/// The first GPU the build supports, else the CPU.
fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    #[cfg(feature = "metal")]
    if let Ok(device) = Device::new_metal(0) {
        return device;
    }
    Device::Cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_article_keeps_paragraphs_and_sentences() {
        let a = english_article("-", "First one. Second one.\n\nThird\none.\n\n\n");
        assert_eq!(a.article.paragraphs, vec!["First one. Second one.", "Third one."]);
        assert_eq!(a.sentences.iter().map(|s| (s.text.as_str(), s.paragraph)).collect::<Vec<_>>(), vec![
            ("First one.", 0),
            ("Second one.", 0),
            ("Third one.", 1)
        ]);
        assert_eq!(a.text(), "First one. Second one.\n\nThird one.");
    }
}
