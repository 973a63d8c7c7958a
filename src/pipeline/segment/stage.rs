//! The detect+segment stage of a run: its cache key, version and step. Cheap, but cached
//! like the rest so that a resumed run sees the same sentences as the first.

use crate::article::{Article, CarriesArticle, SegmentedArticle, SkippedInput};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::pipeline::{detect, segment};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "segment";

/// Bumped when detection or segmentation changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 1;

/// An article's languages and sentences depend on its text (its id) and on the language it
/// was said to be in (`lang:`, `--lang`), if any.
pub(crate) fn cache_key(article: &Article) -> Result<CacheKey, CacheError> {
    CacheKey::new(
        STAGE,
        article.id.as_str(),
        &(CACHE_VERSION, &article.meta.lang),
    )
}

/// Detects and segments every article; one whose language cannot be identified is skipped
/// (and named), not fatal. `between_articles` runs before each article and after each
/// computation (the run's interrupt check: detect and segment stop early on a stop request,
/// and a cut-short result is not cached).
pub(crate) fn detect_and_segment<E: From<CacheError>>(
    articles: Vec<Article>,
    cache: &StageCache,
    mut between_articles: impl FnMut() -> Result<(), E>,
) -> Result<(Vec<SegmentedArticle>, Vec<SkippedInput>), E> {
    let mut segmented = Vec::new();
    let mut skipped = Vec::new();
    for article in articles {
        between_articles()?;
        let key = cache_key(&article)?;
        // The cached value names no file: this run's name and metadata are put on it.
        let item = match cache.get::<SegmentedArticle>(&key) {
            Some(cached) => cached.with_identity_of(&article),
            None => {
                let item = segment::segment(detect::detect(article));
                // Detect and segment stop early on a stop request: a cut-short result is
                // not cached.
                between_articles()?;
                if let Err(e) = cache.put(&key, &item.clone().without_identity()) {
                    log::warn!("{e}; the next run will redo this article's segmentation");
                }
                item
            }
        };
        match item.detected.lang {
            Some(_) => segmented.push(item),
            None => {
                let reason = "its language could not be identified with confidence; give it with --lang CODE or a `lang:` line in its front matter".to_string();
                log::warn!("skipped {}: {reason}", item.detected.article.origin);
                skipped.push(SkippedInput {
                    path: item.detected.article.origin.clone().into(),
                    reason,
                });
            }
        }
    }
    cache.flush();
    Ok((segmented, skipped))
}
