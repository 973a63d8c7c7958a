//! The detect+segment stage of a run: its cache key, version and step. Cheap, but cached
//! like the rest so that a resumed run sees the same sentences as the first.

use crate::article::{Article, SegmentedArticle, SkippedInput};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::pipeline::{detect, segment};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "segment";

/// Bumped when detection or segmentation changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 1;

/// An article's languages and sentences depend on its text (its id) alone.
pub(crate) fn cache_key(article: &Article) -> Result<CacheKey, CacheError> {
    CacheKey::new(STAGE, article.id.as_str(), &CACHE_VERSION)
}

/// Detects and segments every article; one whose language cannot be identified is skipped
/// (and named), not fatal.
pub(crate) fn detect_and_segment(
    articles: Vec<Article>,
    cache: &StageCache,
) -> Result<(Vec<SegmentedArticle>, Vec<SkippedInput>), CacheError> {
    let mut segmented = Vec::new();
    let mut skipped = Vec::new();
    for article in articles {
        let key = cache_key(&article)?;
        let item = cache.get_or_compute(&key, || {
            Ok::<_, CacheError>(segment::segment(detect::detect(article)))
        })?;
        match item.detected.lang {
            Some(_) => segmented.push(item),
            None => {
                log::warn!(
                    "skipped {}: its language could not be identified",
                    item.detected.article.origin
                );
                skipped.push(SkippedInput {
                    path: item.detected.article.origin.clone().into(),
                    reason: "its language could not be identified with confidence".to_string(),
                });
            }
        }
    }
    cache.flush();
    Ok((segmented, skipped))
}
