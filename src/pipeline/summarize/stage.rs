//! The summarize stage of a run: its cache key, version and step. Which summarizer runs on a
//! miss is the caller's (the LLM is loaded only then); the stage owns what a summary's cache
//! entry depends on and checks every summary's facts against its article.

use rayon::prelude::*;
use serde::Serialize;

use crate::article::{EnglishArticle, Summary};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::progress::Task;
use crate::prompts::{Prompts, SUMMARIZE_TEMPLATES};

use super::check_grounding;

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "summarize";

/// Bumped when summarizing changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 2;

/// Fields in name order: a key's canonical form sorts them, and in that order they are written
/// without sorting (the order changes no key).
#[derive(Serialize)]
struct KeyParts<'a> {
    english: &'a str,
    method: &'a str,
    /// For an LLM method only: its prompt shows the title and the outlet.
    outlet: Option<&'a str>,
    prompts: &'a str,
    title: Option<&'a str>,
    version: u32,
}

/// A summary depends on the article's English text, the method (`extractive`, or the LLM's
/// label), for an LLM its title and outlet, and the summary prompt templates (`prompts`:
/// their fingerprint, `Prompts::fingerprint(SUMMARIZE_TEMPLATES)`, taken once per run).
pub(crate) fn cache_key(
    article: &EnglishArticle,
    method: &str,
    prompts: &str,
) -> Result<CacheKey, CacheError> {
    // The LLM's prompt shows the title and outlet; extractive summaries read only the text.
    let reads_metadata = method != "extractive";
    CacheKey::new(
        STAGE,
        article.article.id.as_str(),
        &KeyParts {
            version: CACHE_VERSION,
            english: &article.text(),
            title: article
                .english_title
                .as_deref()
                .or(article.article.meta.title.as_deref())
                .filter(|_| reads_metadata),
            outlet: article
                .article
                .meta
                .source
                .as_deref()
                .filter(|_| reads_metadata),
            method,
            prompts,
        },
    )
}

/// How cache misses are summarized: `summarize` gets up to `batch` articles at a time (so
/// that an LLM can decode them together) and returns one result per article.
pub(crate) struct Misses<F> {
    pub(crate) batch: usize,
    pub(crate) summarize: F,
}

/// Summarizes every article: from the cache, or by `misses.summarize` on a miss, then
/// grounded. `between_articles` runs before each article's lookup and each batch (the run's
/// interrupt check).
pub(crate) fn summarize_all<E: From<CacheError>>(
    articles: &[EnglishArticle],
    method: &str,
    prompts: &Prompts,
    cache: &StageCache,
    task: &Task,
    mut between_articles: impl FnMut() -> Result<(), E>,
    mut misses_to: Misses<impl FnMut(&[&EnglishArticle]) -> Result<Vec<Result<Summary, E>>, E>>,
) -> Result<Vec<Summary>, E> {
    let mut summaries: Vec<Option<Summary>> = Vec::with_capacity(articles.len());
    let mut misses = Vec::new();
    let fingerprint = prompts.fingerprint(SUMMARIZE_TEMPLATES);
    // Every lookup first, in parallel.
    let looked_up: Vec<Result<(CacheKey, Option<Summary>), CacheError>> = articles
        .par_iter()
        .map(|article| {
            let key = cache_key(article, method, &fingerprint)?;
            let cached = cache.get::<Summary>(&key);
            Ok((key, cached))
        })
        .collect();
    for (i, looked_up) in looked_up.into_iter().enumerate() {
        between_articles()?;
        let (key, cached) = looked_up?;
        if cached.is_some() {
            task.inc(1);
        } else {
            misses.push((i, key));
        }
        summaries.push(cached);
    }
    for window in misses.chunks(misses_to.batch.max(1)) {
        between_articles()?;
        let batch: Vec<&EnglishArticle> = window.iter().map(|(i, _)| &articles[*i]).collect();
        let results = (misses_to.summarize)(&batch)?;
        for ((i, key), result) in window.iter().zip(results) {
            let mut summary = result?;
            check_grounding(&mut summary, &articles[*i]);
            cache.put_or_warn(key, &summary);
            summaries[*i] = Some(summary);
            task.inc(1);
        }
    }
    let summaries: Vec<Summary> = summaries
        .into_iter()
        .map(|s| s.expect("every article looked up or summarized"))
        .collect();
    for (article, summary) in articles.iter().zip(&summaries) {
        if !summary.ungrounded.is_empty() {
            log::warn!(
                "the summary of {} states facts the article does not contain ({}); it is flagged in the brief",
                article.article.origin,
                summary.ungrounded.join(", ")
            );
        }
    }
    cache.flush();
    Ok(summaries)
}
