//! The synthesize stage of a run: grouping over all sources on every run (cheap), then each
//! story's synthesis from the cache or computed, one cache entry per story. A story's key is
//! its own sources (numbered 1..k, see `story`), the summary method, the synthesis prompt
//! templates and the settings that shape a story's points: one changed article re-synthesizes
//! its own story only, and a source renumbered by the arrival of another is still a hit.
//! The stories the cache misses are computed several at a time ([`Misses`]), so that the LLM
//! decodes their key points together.

use serde::Serialize;

use crate::article::{EnglishArticle, Lang, SourceNumber, Summary};
use crate::cache::{CacheError, CacheKey, StageCache};
use crate::models::Embedder;
use crate::prompts::{Prompts, SYNTHESIZE_TEMPLATES};

use super::story::{StoryDocs, StorySynthesis};
use super::terms::CachedTerms;
use super::{synthesize_stories, with_story_docs, StoryInput, Synthesis, SynthesisOptions};

/// The stage's name in the cache and in its counters.
pub(crate) const STAGE: &str = "synthesize";

/// Bumped when synthesis changes what it produces.
pub(crate) const CACHE_VERSION: u32 = 9;

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

/// How the stories the cache misses are synthesized: `synthesize` gets up to `batch` of them
/// at a time (so that an LLM can decode their key points together) and returns one result
/// per story, in order.
pub(crate) struct Misses<F> {
    pub(crate) batch: usize,
    pub(crate) synthesize: F,
}

/// Synthesizes the run's `sources` (grouped with `embedder` when given), each story from the
/// cache (every story is looked up first, in parallel) or by `misses.synthesize` over its
/// sources (numbered 1..k) and its title. A story is stored only after `misses.synthesize`
/// returned its batch, so an error (an interrupt) stores nothing of that batch.
pub(crate) fn synthesize_cached<E: From<CacheError>>(
    cache: &StageCache,
    sources: &[(SourceNumber, &EnglishArticle, &Summary)],
    embedder: Option<&mut dyn Embedder>,
    method: &str,
    prompts: &Prompts,
    options: &SynthesisOptions,
    mut misses_to: Misses<impl FnMut(&[StoryDocs<'_, '_>]) -> Result<Vec<StorySynthesis>, E>>,
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
        |stories| -> Result<Vec<StorySynthesis>, E> {
            let mut results: Vec<Option<StorySynthesis>> = Vec::with_capacity(stories.len());
            // Each miss: where its result goes, its members and title, its key.
            let mut misses = Vec::new();
            let mut keys = Vec::new();
            for StoryInput {
                members,
                title,
                prepared,
            } in stories
            {
                let (key, cached) = prepared?;
                match cached {
                    Some(_) => counts.cached += 1,
                    None => {
                        misses.push((members, title));
                        keys.push((results.len(), key));
                    }
                }
                results.push(cached);
            }
            let batch = misses_to.batch.max(1);
            for (window, keys) in misses.chunks(batch).zip(keys.chunks(batch)) {
                let synthesized = with_story_docs(window, &mut misses_to.synthesize)?;
                assert_eq!(synthesized.len(), window.len(), "one synthesis per story");
                for ((i, key), story) in keys.iter().zip(synthesized) {
                    cache.put_or_warn(key, &story);
                    counts.synthesized += 1;
                    results[*i] = Some(story);
                }
            }
            Ok(results
                .into_iter()
                .map(|r| r.expect("every story looked up or synthesized"))
                .collect())
        },
    )?;
    cache.flush();
    Ok((synthesis, counts))
}

#[cfg(test)]
mod tests {
    use super::super::story::synthesize_batch;
    use super::super::test_support::{article, four_stories, summary, PointWriter};
    use super::super::{number_sources, synthesize, LlmPoints, SynthesisPrompt};
    use super::*;
    use crate::article::EnglishArticle;

    /// The earthquake and bridge stories of [`four_stories`], two sources each.
    fn articles() -> Vec<EnglishArticle> {
        four_stories().into_iter().take(4).collect()
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
            Misses {
                batch: 8,
                synthesize: |stories: &[StoryDocs<'_, '_>]| {
                    Ok(synthesize_batch(stories, None, &options))
                },
            },
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

    /// The stage over `articles` with `model` writing key points, `batch` stories at a time.
    fn run_with_model(
        cache: &StageCache,
        articles: &[EnglishArticle],
        batch: usize,
        model: &mut PointWriter,
    ) -> (Synthesis, StoryCounts) {
        let summaries = summaries(articles);
        let numbered = number_sources(articles, &summaries);
        let options = SynthesisOptions::default();
        let prompt = SynthesisPrompt::bundled();
        synthesize_cached::<CacheError>(
            cache,
            &numbered,
            None,
            "extractive",
            &Prompts::builtin(),
            &options,
            Misses {
                batch,
                synthesize: |stories: &[StoryDocs<'_, '_>]| {
                    let mut llm = LlmPoints {
                        generator: &mut *model,
                        prompt: &prompt,
                    };
                    Ok(synthesize_batch(stories, Some(&mut llm), &options))
                },
            },
        )
        .unwrap()
    }

    #[test]
    fn the_stories_the_cache_misses_are_asked_for_together_and_give_what_one_at_a_time_gives() {
        let all = four_stories();
        // One story after the other, as the stage asked before batching: the reference.
        let dir = tempfile::tempdir().unwrap();
        let mut model = PointWriter::new("Lindhaven", "Brenna");
        let (one_by_one, _) =
            run_with_model(&StageCache::open(dir.path()).unwrap(), &all, 1, &mut model);
        assert_eq!(model.batches, [1, 1, 1, 1]);

        // The quake and bridge stories are cached by a first run over their sources; the fire
        // and mine stories then miss, and only they are asked for, in one batch.
        let dir = tempfile::tempdir().unwrap();
        let cache = StageCache::open(dir.path()).unwrap();
        let mut model = PointWriter::new("Lindhaven", "Brenna");
        run_with_model(&cache, &all[..4], 8, &mut model);
        assert_eq!(model.batches, [2]);
        let mut model = PointWriter::new("Lindhaven", "Brenna");
        let (batched, counts) = run_with_model(&cache, &all, 8, &mut model);
        assert_eq!(model.batches, [2]);
        assert_eq!((counts.cached, counts.synthesized), (2, 2));
        assert_eq!(batched, one_by_one);

        // Misses beyond the batch size go in further batches.
        let dir = tempfile::tempdir().unwrap();
        let mut model = PointWriter::new("Lindhaven", "Brenna");
        let (in_threes, _) =
            run_with_model(&StageCache::open(dir.path()).unwrap(), &all, 3, &mut model);
        assert_eq!(model.batches, [3, 1]);
        assert_eq!(in_threes, one_by_one);

        // The LLM wrote the quake's and the bridge's points; the fire's failed and the mine's
        // were refused, and each of those two stories fell back on its own.
        let methods: Vec<(&str, &str)> = batched
            .stories
            .iter()
            .zip(&batched.point_methods)
            .map(|(s, m)| (s.title.as_str(), m.as_str()))
            .collect();
        assert_eq!(methods.len(), 4, "{methods:?}");
        for (title, method) in methods {
            let expected = if title.contains("Lindhaven") || title.contains("Brenna") {
                "extracted sentences"
            } else {
                "point-writer"
            };
            assert_eq!(method, expected, "{title}");
        }
        assert_eq!(batched.notes.len(), 2, "{:?}", batched.notes);
        assert!(batched
            .notes
            .iter()
            .any(|n| n.contains("Lindhaven") && n.contains("no memory left for Lindhaven")));
        assert!(batched
            .notes
            .iter()
            .any(|n| n.contains("Brenna") && n.contains("did not pass citation checking")));
        let quake = batched
            .stories
            .iter()
            .find(|s| s.title.contains("earthquake"))
            .unwrap();
        assert_eq!(quake.sources, vec![1, 2]);
        assert!(
            quake.points.iter().any(|p| p.citations == [1, 2]),
            "{quake:?}"
        );

        // The uncached synthesis asks for every story in one batch and agrees.
        let summaries = summaries(&all);
        let mut model = PointWriter::new("Lindhaven", "Brenna");
        let prompt = SynthesisPrompt::bundled();
        let llm = LlmPoints {
            generator: &mut model,
            prompt: &prompt,
        };
        let uncached = synthesize(
            &number_sources(&all, &summaries),
            None,
            Some(llm),
            &SynthesisOptions::default(),
        );
        assert_eq!(model.batches, [4]);
        assert_eq!(uncached, one_by_one);
    }
}
