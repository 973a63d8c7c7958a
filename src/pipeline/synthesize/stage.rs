//! The synthesize stage of a run: grouping over all sources on every run (cheap), then each
//! story's synthesis from the cache or computed, one cache entry per story. A story's key is
//! its own sources (numbered 1..k, see `story`), the summary method, the synthesis prompt
//! templates and the settings that shape a story's points: one changed article re-synthesizes
//! its own story only, and a source renumbered by the arrival of another is still a hit.

use serde::Serialize;

use crate::article::{EnglishArticle, Lang, SourceNumber, Summary};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::models::Embedder;
use crate::prompts::{Prompts, SYNTHESIZE_TEMPLATES};

use super::story::StorySynthesis;
use super::terms::CachedTerms;
use super::{synthesize_stories, SourceDoc, Synthesis, SynthesisOptions};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "synthesize";

/// Bumped when synthesis changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 8;

/// What a story's synthesis reads of one source: everything but its file name, which the
/// synthesis does not hold (notes that name files are made per run:
/// `Synthesis::instruction_notes`).
///
/// Fields in name order: a key's canonical form sorts them, and in that order they are written
/// without sorting (the order changes no key).
#[derive(Serialize)]
struct SourceParts<'a> {
    english: String,
    english_title: Option<&'a str>,
    number: SourceNumber,
    source_lang: Option<&'a Lang>,
    summary: String,
    title: Option<&'a str>,
    translated: bool,
}

/// Fields in name order, as [`SourceParts`]'.
#[derive(Serialize)]
struct KeyParts<'a> {
    max_disagreements: usize,
    max_new_tokens: usize,
    max_points: usize,
    method: &'a str,
    prompt: &'a str,
    sources: Vec<SourceParts<'a>>,
    version: u32,
}

/// The key of one story's synthesis over its `members` (numbered 1..k); `prompts` is the
/// synthesis templates' fingerprint (`Prompts::fingerprint(SYNTHESIZE_TEMPLATES)`).
pub(crate) fn story_key(
    members: &[(SourceNumber, &EnglishArticle, &Summary)],
    method: &str,
    prompts: &str,
    options: &SynthesisOptions,
) -> Result<CacheKey, CacheError> {
    CacheKey::new(
        STAGE,
        "story",
        &KeyParts {
            version: CACHE_VERSION,
            sources: members
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
            prompt: prompts,
            max_points: options.max_points,
            max_new_tokens: options.max_new_tokens,
            max_disagreements: options.max_disagreements,
        },
    )
}

/// How many stories came from the cache and how many were synthesized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoryCounts {
    pub cached: usize,
    pub synthesized: usize,
}

/// Synthesizes the run's `sources` (grouped with `embedder` when given), each story from the
/// cache (every story is looked up first, in parallel) or by `compute` over its sources
/// (numbered 1..k) and its title. A story is stored
/// only after `compute` returned it, so an error (an interrupt) stores nothing for it.
pub(crate) fn synthesize_cached<E: From<CacheError>>(
    cache: &StageCache,
    sources: &[(SourceNumber, &EnglishArticle, &Summary)],
    embedder: Option<&mut dyn Embedder>,
    method: &str,
    prompts: &Prompts,
    options: &SynthesisOptions,
    mut compute: impl FnMut(&[&SourceDoc<'_>], &str) -> Result<StorySynthesis, E>,
) -> Result<(Synthesis, StoryCounts), E> {
    let mut counts = StoryCounts::default();
    let fingerprint = prompts.fingerprint(SYNTHESIZE_TEMPLATES);
    let synthesis = synthesize_stories(
        sources,
        embedder,
        &mut CachedTerms::new(cache),
        options,
        |members| -> Result<(CacheKey, Option<StorySynthesis>), CacheError> {
            let key = story_key(members, method, &fingerprint, options)?;
            let cached = cache.get::<StorySynthesis>(&key);
            Ok((key, cached))
        },
        |members, title, looked_up| -> Result<StorySynthesis, E> {
            let (key, cached) = looked_up?;
            if let Some(cached) = cached {
                counts.cached += 1;
                return Ok(cached);
            }
            let docs = SourceDoc::of_story(members);
            let docs: Vec<&SourceDoc<'_>> = docs.iter().collect();
            let story = compute(&docs, title)?;
            cache.put_or_warn(&key, &story);
            counts.synthesized += 1;
            Ok(story)
        },
    )?;
    cache.flush();
    Ok((synthesis, counts))
}

#[cfg(test)]
mod tests {
    use super::super::story::synthesize_story;
    use super::super::test_support::{article, summary};
    use super::super::{number_sources, synthesize};
    use super::*;
    use crate::article::EnglishArticle;

    fn articles() -> Vec<EnglishArticle> {
        vec![
            article(
                "quake-a.txt",
                &["An earthquake struck Vessa on Monday, damaging 40 homes in the old town."],
            ),
            article(
                "quake-b.txt",
                &["The Vessa earthquake on Monday damaged 40 homes, officials in Vessa said."],
            ),
            article(
                "bridge-a.txt",
                &["The Harrow bridge reopened on Friday after repairs costing 3 million dollars."],
            ),
            article(
                "bridge-b.txt",
                &["Harrow reopened its bridge on Friday; the repairs cost 3 million dollars."],
            ),
        ]
    }

    fn run(
        cache: &StageCache,
        articles: &[EnglishArticle],
        summaries: &[Summary],
    ) -> (Synthesis, StoryCounts) {
        let numbered = number_sources(articles, summaries);
        let options = SynthesisOptions::default();
        let prompts = Prompts::builtin();
        let result = synthesize_cached::<CacheError>(
            cache,
            &numbered,
            None,
            "extractive",
            &prompts,
            &options,
            |docs, title| Ok(synthesize_story(docs, None, &options, title)),
        )
        .unwrap();
        assert_eq!(
            result.0,
            synthesize(&numbered, None, None, &options),
            "the cached stage and the uncached synthesis agree"
        );
        assert_eq!(
            result.0.digest,
            super::super::since::digest(&result.0.stories, &numbered),
            "the digest made of each story's cached facts is the one made of the run's sources"
        );
        result
    }

    fn summaries(articles: &[EnglishArticle]) -> Vec<Summary> {
        articles.iter().map(|a| summary(a, &[0])).collect()
    }

    #[test]
    fn a_story_is_served_from_the_cache_when_a_new_source_renumbers_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let first = articles();
        let (synthesis, counts) = run(&cache, &first, &summaries(&first));
        assert_eq!(synthesis.stories.len(), 2);
        assert_eq!((counts.cached, counts.synthesized), (0, 2));

        let mut second = vec![article(
            "fire.txt",
            &["A fire at the Lindhaven mill burned for 6 hours on Sunday."],
        )];
        second.extend(articles());
        let (synthesis, counts) = run(&cache, &second, &summaries(&second));
        assert_eq!((counts.cached, counts.synthesized), (2, 1));
        let quake = synthesis
            .stories
            .iter()
            .find(|s| s.title.contains("earthquake"))
            .unwrap();
        assert_eq!(quake.sources, vec![2, 3], "renumbered into this run");
        assert!(quake
            .points
            .iter()
            .all(|p| p.citations.iter().all(|c| [2, 3].contains(c))));
    }

    #[test]
    fn one_changed_source_resynthesizes_only_its_own_story() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let mut sources = articles();
        run(&cache, &sources, &summaries(&sources));
        sources[3] = article(
            "bridge-b.txt",
            &["Harrow reopened its bridge on Friday; the repairs cost 4 million dollars."],
        );
        let (synthesis, counts) = run(&cache, &sources, &summaries(&sources));
        assert_eq!((counts.cached, counts.synthesized), (1, 1));
        let bridge = synthesis
            .stories
            .iter()
            .find(|s| s.title.contains("bridge"))
            .unwrap();
        assert!(
            bridge.points.iter().any(|p| p.text.contains("4 million")),
            "the changed story is synthesized anew: {bridge:?}"
        );
    }
}
