//! The detect+segment stage of a run: its cache key, version and step. Cheap, but cached
//! like the rest so that a resumed run sees the same sentences as the first.

use crate::article::{Article, SegmentedArticle, SkippedInput};
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
        let item = cache.get_or_compute(&key, || {
            let item = segment::segment(detect::detect(article));
            between_articles()?;
            Ok::<_, E>(item)
        })?;
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
