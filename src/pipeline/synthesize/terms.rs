//! Grouping terms, cached per text. Grouping reads every source on every run (the stories
//! are cached one by one, the groups are not), and finding a text's words, names and figures
//! (`group::grouping_terms`) was most of a re-run's grouping: with this, a nightly re-run over
//! 3,000 articles computes the terms of the changed article only. They are kept in the
//! stage's pack only (`StageCache::get_packed`), not in an entry file each: they take well
//! under a millisecond per text to recompute, less than writing and flushing a file for each
//! on a first run.

use rayon::prelude::*;

use crate::cache::{CacheKey, StageCache};

use super::group::{grouping_terms, TermSource, Terms};

/// The entries' name in the cache.
const STAGE: &str = "group-terms";

/// Bumped when `group::grouping_terms` changes what it finds.
const CACHE_VERSION: u32 = 1;

/// A [`TermSource`] that answers from the cache and computes (and stores) what it misses.
pub(crate) struct CachedTerms<'c> {
    cache: &'c StageCache,
}

impl<'c> CachedTerms<'c> {
    pub(crate) fn new(cache: &'c StageCache) -> Self {
        CachedTerms { cache }
    }
}

impl TermSource for CachedTerms<'_> {
    fn terms(&mut self, texts: &[&str]) -> Vec<Terms> {
        let cache = self.cache;
        texts
            .par_iter()
            .map(|text| {
                let key = match CacheKey::new(STAGE, "text", &(CACHE_VERSION, text)) {
                    Ok(key) => key,
                    // A key is a hash of plain strings and cannot fail to serialize; if it
                    // ever did, the terms are still right, only not cached.
                    Err(e) => {
                        log::debug!("grouping terms not cached: {e}");
                        return grouping_terms(text).into();
                    }
                };
                if let Some(terms) = cache.get_packed(&key) {
                    return terms;
                }
                let terms: Terms = grouping_terms(text).into();
                if let Err(e) = cache.put_packed(&key, &terms) {
                    log::debug!("grouping terms not cached: {e}");
                }
                terms
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::group::ComputedTerms;
    use super::*;

    #[test]
    fn cached_terms_are_the_computed_terms_and_a_rerun_computes_none() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let texts = [
            "Floods in Quang Nam killed 12 people on Monday; 3,000 homes were flooded.",
            "The Harrow bridge reopened on Friday after repairs costing 3 million dollars.",
        ];
        let computed = ComputedTerms.terms(&texts);
        assert_eq!(CachedTerms::new(&cache).terms(&texts), computed);
        let counters = cache.counters(STAGE);
        assert_eq!((counters.hits, counters.misses, counters.writes), (0, 2, 2));
        drop(cache);
        // The next run, from the pack the first one left.
        let cache = StageCache::open(dir.path()).unwrap();
        assert_eq!(CachedTerms::new(&cache).terms(&texts), computed);
        let counters = cache.counters(STAGE);
        assert_eq!(
            (counters.hits, counters.misses, counters.writes),
            (2, 0, 0),
            "all from the cache"
        );
    }
}
