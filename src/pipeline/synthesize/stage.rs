//! The synthesize stage of a run: its cache key and version. Synthesis is one cache entry
//! over all sources: it depends on every source's text and summary, the summary method, how
//! stories are grouped and the synthesis prompt templates.

use serde::Serialize;

use crate::article::{EnglishArticle, SourceNumber, Summary};
use crate::cache::{CacheError, CacheKey};
use crate::prompts::{Prompts, SYNTHESIZE_TEMPLATES};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "synthesize";

/// Bumped when synthesis changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 4;

#[derive(Serialize)]
struct KeyParts<'a> {
    version: u32,
    sources: Vec<(SourceNumber, String, String)>,
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
                .map(|(n, a, s)| (*n, a.article.id.as_str().to_string(), s.text()))
                .collect(),
            method,
            grouping,
            prompt: prompts.fingerprint(SYNTHESIZE_TEMPLATES),
        },
    )
}
