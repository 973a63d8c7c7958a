//! The synthesize stage of a run: its cache key and version. Synthesis is one cache entry
//! over all sources: it depends on every source's text and summary, the summary method, how
//! stories are grouped and the synthesis prompt templates.

use serde::Serialize;

use crate::article::{EnglishArticle, Lang, SourceNumber, Summary};
use crate::cache::{CacheError, CacheKey};
use crate::prompts::{Prompts, SYNTHESIZE_TEMPLATES};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "synthesize";

/// Bumped when synthesis changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 6;

/// What synthesis reads of one source: everything but its file name, which the synthesis
/// does not hold (notes that name files are made per run: `Synthesis::instruction_notes`).
#[derive(Serialize)]
struct SourceParts<'a> {
    number: SourceNumber,
    english: String,
    title: Option<&'a str>,
    english_title: Option<&'a str>,
    source_lang: Option<&'a Lang>,
    translated: bool,
    summary: String,
}

#[derive(Serialize)]
struct KeyParts<'a> {
    version: u32,
    sources: Vec<SourceParts<'a>>,
    method: &'a str,
    /// `lexical` or the embedder's label.
    grouping: &'a str,
    prompt: String,
}

/// The key of a synthesis over `sources` (numbered as in the brief).
pub(crate) fn cache_key(
    sources: &[(SourceNumber, &EnglishArticle, &Summary)],
    method: &str,
    grouping: &str,
    prompts: &Prompts,
) -> Result<CacheKey, CacheError> {
    CacheKey::new(
        STAGE,
        "run",
        &KeyParts {
            version: CACHE_VERSION,
            sources: sources
                .iter()
                .map(|(n, a, s)| SourceParts {
                    number: *n,
                    english: a.text(),
                    title: a.article.meta.title.as_deref(),
                    english_title: a.english_title.as_deref(),
                    source_lang: a.source_lang.as_ref(),
                    translated: a.is_translated(),
                    summary: s.text(),
                })
                .collect(),
            method,
            grouping,
            prompt: prompts.fingerprint(SYNTHESIZE_TEMPLATES),
        },
    )
}
