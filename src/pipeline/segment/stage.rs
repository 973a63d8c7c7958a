//! The detect+segment stage of a run: its cache key, version and step. Cheap, but cached
//! like the rest so that a resumed run sees the same sentences as the first.

use crate::article::{Article, CarriesArticle, SegmentedArticle, SkippedInput};
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
        // The cached value names no file: this run's name and metadata are put on it.
        let item = match cache.get::<SegmentedArticle>(&key) {
            Some(cached) => cached.with_identity_of(&article),
            None => {
                let item = segment::segment(detect::detect(article));
                if let Err(e) = cache.put(&key, &item.clone().without_identity()) {
                    log::warn!("{e}; the next run will redo this article's segmentation");
                }
                item
            }
        };
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
