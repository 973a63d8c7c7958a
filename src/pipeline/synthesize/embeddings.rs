//! Sentence embeddings for grouping, one cache entry per text. Grouping reads every source on
//! every run (stories are cached one by one, the groups are not), so without this a nightly
//! re-run would load the embedding model and embed every article again for one new article.
//! The model is loaded only when some text misses the cache.

use crate::cache::{CacheKey, StageCache};
use crate::models::{Embedder, GenerateError};

/// The entries' name in the cache.
const STAGE: &str = "embed";

/// Bumped when the texts given to the embedder or the vectors change.
const CACHE_VERSION: u32 = 1;

/// An [`Embedder`] that answers from the cache and loads the model with `load` on the first
/// miss. `name` is the model's label as the loaded model gives it.
pub(crate) struct CachedEmbedder<'c, L> {
    cache: &'c StageCache,
    name: String,
    load: L,
    model: Option<Box<dyn Embedder + 'c>>,
}

impl<'c, L> CachedEmbedder<'c, L>
where
    L: FnMut() -> Option<Box<dyn Embedder + 'c>>,
{
    pub(crate) fn new(cache: &'c StageCache, name: String, load: L) -> Self {
        CachedEmbedder {
            cache,
            name,
            load,
            model: None,
        }
    }

    fn model(&mut self) -> Result<&mut (dyn Embedder + 'c), GenerateError> {
        if self.model.is_none() {
            self.model = (self.load)();
        }
        match self.model.as_deref_mut() {
            Some(model) => Ok(model),
            None => Err(GenerateError::Other(format!(
                "the embedding model {} could not be loaded",
                self.name
            ))),
        }
    }
}

impl<'c, L> Embedder for CachedEmbedder<'c, L>
where
    L: FnMut() -> Option<Box<dyn Embedder + 'c>>,
{
    fn model_name(&self) -> String {
        self.name.clone()
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, GenerateError> {
        let keys = texts
            .iter()
            .map(|t| CacheKey::new(STAGE, &self.name, &(CACHE_VERSION, t)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| GenerateError::Other(e.to_string()))?;
        let mut vectors: Vec<Option<Vec<f32>>> = keys.iter().map(|k| self.cache.get(k)).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| vectors[i].is_none()).collect();
        if !missing.is_empty() {
            let wanted: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let computed = self.model()?.embed(&wanted)?;
            if computed.len() != wanted.len() {
                return Err(GenerateError::Other(format!(
                    "it returned {} vectors for {} texts",
                    computed.len(),
                    wanted.len()
                )));
            }
            for (i, vector) in missing.into_iter().zip(computed) {
                self.cache.put_or_warn(&keys[i], &vector);
                vectors[i] = Some(vector);
            }
        }
        Ok(vectors.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds a text as its length, counting its calls.
    struct Lengths<'a>(&'a std::cell::Cell<usize>);

    impl Embedder for Lengths<'_> {
        fn model_name(&self) -> String {
            "lengths".into()
        }
        fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, GenerateError> {
            self.0.set(self.0.get() + texts.len());
            Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
        }
    }

    #[test]
    fn the_model_is_loaded_only_for_texts_the_cache_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let embedded = std::cell::Cell::new(0);
        let loads = std::cell::Cell::new(0);
        let texts = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut first = CachedEmbedder::new(&cache, "lengths".into(), || {
            loads.set(loads.get() + 1);
            Some(Box::new(Lengths(&embedded)) as Box<dyn Embedder>)
        });
        assert_eq!(
            first.embed(&texts(&["a", "bb"])).unwrap(),
            vec![vec![1.0, 1.0], vec![2.0, 1.0]]
        );
        let mut second = CachedEmbedder::new(&cache, "lengths".into(), || {
            loads.set(loads.get() + 1);
            Some(Box::new(Lengths(&embedded)) as Box<dyn Embedder>)
        });
        assert_eq!(
            second.embed(&texts(&["bb", "a"])).unwrap(),
            vec![vec![2.0, 1.0], vec![1.0, 1.0]]
        );
        assert_eq!((loads.get(), embedded.get()), (1, 2), "all from the cache");
        assert_eq!(
            second.embed(&texts(&["ccc", "a"])).unwrap(),
            vec![vec![3.0, 1.0], vec![1.0, 1.0]]
        );
        assert_eq!(
            (loads.get(), embedded.get()),
            (2, 3),
            "one new text embedded"
        );
    }
}
