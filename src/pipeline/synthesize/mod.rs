//! Synthesize: from the numbered sources of a run (each an English article and its summary)
//! to the brief's top section — stories (articles about the same event), each with key points
//! that cite every source supporting them, and the figures sources disagree on.
//!
//! - `group`: which sources report the same event (TF-IDF over words, names and numbers; or
//!   embeddings when an `Embedder` is given).
//! - `points`: key points without a model — summary sentences merged across sources.
//! - `prompt`: key points from the local LLM — the prompt (`prompts/synthesize*.txt`) and the
//!   parsing of its reply.
//! - `citations`: the checker every point passes, whoever wrote it: a source is cited only if
//!   its English text holds the point's key facts.
//! - `disagreements`: different values for the same quantity or date across a story's sources.
//! - `since`: what changed against the previous brief (new, continuing and dropped stories).
//!
//! Article text is data throughout: it reaches the output only as point text (plain text,
//! escaped by the renderer) and never decides a citation — citations are computed from source
//! numbers this module assigned.

pub(crate) mod citations;
pub(crate) mod clauses;
pub(crate) mod disagreements;
pub(crate) mod embeddings;
pub(crate) mod group;
pub(crate) mod paraphrase;
pub(crate) mod points;
pub(crate) mod prompt;
pub(crate) mod quantities;
pub(crate) mod since;
pub(crate) mod stage;
pub(crate) mod story;
pub(crate) mod terms;

use std::borrow::Cow;
use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::article::{EnglishArticle, SourceNumber, Story, Summary, UnusedSource};
use crate::models::{Embedder, TextGenerator};
use crate::pipeline::facts::SourceFacts;
use crate::pipeline::injection;

pub use group::GroupingMethod;
pub use prompt::SynthesisPrompt;
pub use since::{SinceLastBrief, StoryDigest};

use self::group::group_sources;
use self::story::StorySynthesis;

/// The local LLM and the prompt it is given, for LLM-written key points.
pub struct LlmPoints<'a> {
    pub generator: &'a mut dyn TextGenerator,
    pub prompt: &'a SynthesisPrompt,
}

/// Settings of synthesis. The defaults are what the CLI uses.
#[derive(Clone, Debug)]
pub struct SynthesisOptions {
    /// Key points per story, at most.
    pub max_points: usize,
    /// Average-linkage similarity at which two groups of sources are one story, lexically
    /// (TF-IDF cosine)…
    pub lexical_threshold: f32,
    /// …and with embeddings (cosine).
    pub embedding_threshold: f32,
    /// Longest reply the LLM may write for one story's key points.
    pub max_new_tokens: usize,
    /// The tokens the reply is given instead of `max_new_tokens` (which the prompt is still
    /// planned for). Only benchmarks set it, with a generator that runs every reply to its
    /// budget: random weights then write a real model's reply length.
    pub exact_reply_tokens: Option<usize>,
    /// Disagreements reported per story, at most.
    pub max_disagreements: usize,
}

impl Default for SynthesisOptions {
    fn default() -> Self {
        SynthesisOptions {
            max_points: 6,
            lexical_threshold: 0.12,
            embedding_threshold: 0.75,
            max_new_tokens: 400,
            exact_reply_tokens: None,
            max_disagreements: 5,
        }
    }
}

/// What synthesis found: stories (largest first), sources no key point cites, and notes for
/// the reader about how the result was made.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Synthesis {
    pub stories: Vec<Story>,
    pub unused: Vec<UnusedSource>,
    /// How sources were grouped into stories.
    pub grouping: GroupingMethod,
    /// How key points were written ("extracted sentences", or the LLM's name), per story in
    /// the order of `stories`.
    pub point_methods: Vec<String>,
    /// Plain-text remarks for the brief (fallbacks taken and why).
    pub notes: Vec<String>,
    /// Sources with sentences addressed to machines, and how many: left out of key points.
    /// The brief's note naming them is made per run ([`Synthesis::instruction_notes`]), since
    /// a file's name is no part of the cache key.
    #[serde(default)]
    pub instructions: Vec<(SourceNumber, usize)>,
    /// Per story, in the order of `stories`, what the next run compares with (`since`).
    #[serde(default)]
    pub digest: Vec<StoryDigest>,
}

impl Synthesis {
    /// One note per source that contained sentences addressed to machines, naming it as this
    /// run's `sources` do.
    pub fn instruction_notes(
        &self,
        sources: &[(SourceNumber, &EnglishArticle, &Summary)],
    ) -> Vec<String> {
        self.instructions
            .iter()
            .filter_map(|&(number, count)| {
                let (_, article, _) = sources.iter().find(|(n, _, _)| *n == number)?;
                Some(injection::note(number, &article.article.origin, count))
            })
            .collect()
    }
}

/// What grouping and titles read of one source: computed for every source on every run, so
/// it holds nothing costly.
pub(crate) struct SourceText<'a> {
    pub number: SourceNumber,
    /// The article without its sentences addressed to machines (`injection`): nothing
    /// downstream — points, citations, disagreements, prompts — sees those.
    pub article: Cow<'a, EnglishArticle>,
    /// How many sentences were left out of `article` as addressed to machines.
    pub instructions: usize,
    pub summary: &'a Summary,
    pub text: String,
    /// The article as read, instructions to machines included: what the digest's facts are
    /// taken from (`since::stated_facts`).
    pub original: &'a EnglishArticle,
}

impl<'a> SourceText<'a> {
    pub(crate) fn new(
        number: SourceNumber,
        article: &'a EnglishArticle,
        summary: &'a Summary,
    ) -> Self {
        let instructions = injection::count_in(article);
        let cow = match injection::without_instructions(article) {
            Some(news) => Cow::Owned(news),
            None => Cow::Borrowed(article),
        };
        let text = cow.text();
        SourceText {
            number,
            article: cow,
            instructions,
            summary,
            text,
            original: article,
        }
    }
}

/// One source of a story with what every step of its synthesis needs, computed once.
pub(crate) struct SourceDoc<'a> {
    source: SourceText<'a>,
    pub facts: SourceFacts,
    /// Sorted distinct content terms of `text`.
    pub terms: Vec<String>,
    /// The values `text` states, with what each measures.
    pub quantities: Vec<quantities::Quantity>,
}

impl<'a> SourceDoc<'a> {
    pub(crate) fn new(
        number: SourceNumber,
        article: &'a EnglishArticle,
        summary: &'a Summary,
    ) -> Self {
        let source = SourceText::new(number, article, summary);
        let facts = SourceFacts::new(&source.text);
        let terms = crate::pipeline::text::term_set(&source.text);
        let quantities = quantities::quantities(&source.text);
        SourceDoc {
            source,
            facts,
            terms,
            quantities,
        }
    }
}

/// `f` over `stories` (each its members and its title) with every story's docs made
/// (stories in parallel): what [`story::synthesize_batch`] takes.
pub(crate) fn with_story_docs<R>(
    stories: &[(&StoryMembers<'_>, &str)],
    f: impl FnOnce(&[story::StoryDocs<'_, '_>]) -> R,
) -> R {
    let docs: Vec<Vec<SourceDoc<'_>>> = stories
        .par_iter()
        .map(|(members, _)| {
            members
                .iter()
                .map(|(n, a, s)| SourceDoc::new(*n, a, s))
                .collect()
        })
        .collect();
    let refs: Vec<Vec<&SourceDoc<'_>>> = docs.iter().map(|d| d.iter().collect()).collect();
    let batch: Vec<story::StoryDocs<'_, '_>> = refs
        .iter()
        .zip(stories)
        .map(|(docs, (_, title))| (docs.as_slice(), *title))
        .collect();
    f(&batch)
}

impl<'a> std::ops::Deref for SourceDoc<'a> {
    type Target = SourceText<'a>;

    fn deref(&self) -> &SourceText<'a> {
        &self.source
    }
}

/// Why a source ended up cited by no key point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub(crate) enum UnusedReason {
    NoText,
    /// Its statements were supported but ranked below the story's cap.
    BelowCap,
    /// Cited by the LLM, but the citations failed checking.
    FailedCheck,
    /// The LLM's points did not draw on it and no surviving point is supported by it.
    NotDrawnOn,
}

impl UnusedReason {
    fn describe(self, max_points: usize) -> String {
        match self {
            UnusedReason::NoText => "it has no English text to take key points from".into(),
            UnusedReason::BelowCap => {
                format!("its statements did not make its story's top {max_points} key points")
            }
            UnusedReason::FailedCheck => "no key point from this source survived citation checking".into(),
            UnusedReason::NotDrawnOn => {
                "the language model's key points do not draw on it, and no checked point is supported by it".into()
            }
        }
    }
}

/// Groups the numbered sources into stories and writes each story's key points and
/// disagreements: with the LLM when `llm` is given (falling back to extracted points, with a
/// note, when its reply yields no point that passes citation checking), otherwise by merging
/// summary sentences. Sources are grouped with `embedder` when given, else lexically.
///
/// The result depends only on the inputs: no hash-map order, no clock, no randomness. The
/// stage (`stage::synthesize_cached`) gives the same result, each story cached on its own.
pub fn synthesize(
    sources: &[(SourceNumber, &EnglishArticle, &Summary)],
    embedder: Option<&mut dyn Embedder>,
    mut llm: Option<LlmPoints<'_>>,
    options: &SynthesisOptions,
) -> Synthesis {
    let mut terms = group::ComputedTerms;
    let result = synthesize_stories(
        sources,
        embedder,
        &mut terms,
        options,
        |_| (),
        |stories| {
            let stories: Vec<(&StoryMembers<'_>, &str)> =
                stories.iter().map(|s| (s.members, s.title)).collect();
            Ok::<_, std::convert::Infallible>(with_story_docs(&stories, |batch| {
                story::synthesize_batch(batch, llm.as_mut(), options)
            }))
        },
    );
    match result {
        Ok(synthesis) => synthesis,
        Err(never) => match never {},
    }
}

/// The run's sources as the brief numbers them: the articles in order, from 1, each with its
/// summary.
pub fn number_sources<'a>(
    english: &'a [EnglishArticle],
    summaries: &'a [Summary],
) -> Vec<(SourceNumber, &'a EnglishArticle, &'a Summary)> {
    english
        .iter()
        .zip(summaries)
        .enumerate()
        .map(|(i, (a, s))| (i + 1, a, s))
        .collect()
}

/// A story's sources as its synthesis numbers them (1..k, in the order of their run numbers).
pub(crate) type StoryMembers<'a> = [(SourceNumber, &'a EnglishArticle, &'a Summary)];

/// One story as [`synthesize_stories`] hands it over: its members (numbered locally, see
/// [`story`]), its title and what `prepare` made of its members.
pub(crate) struct StoryInput<'s, P> {
    pub members: &'s StoryMembers<'s>,
    pub title: &'s str,
    pub prepared: P,
}

/// Groups `sources` into stories and has `stories_for` synthesize them, one result per story
/// in the order given; assembles the run's synthesis from the results. `prepare` runs for
/// every story first, in parallel (the stage looks each story up in the cache there);
/// `stories_for` is given every story at once, so that it can ask the LLM for the key points
/// of several stories together.
pub(crate) fn synthesize_stories<E, P: Send>(
    sources: &[(SourceNumber, &EnglishArticle, &Summary)],
    embedder: Option<&mut dyn Embedder>,
    terms: &mut dyn group::TermSource,
    options: &SynthesisOptions,
    prepare: impl Fn(&StoryMembers<'_>) -> P + Sync,
    stories_for: impl FnOnce(Vec<StoryInput<'_, P>>) -> Result<Vec<StorySynthesis>, E>,
) -> Result<Synthesis, E> {
    let mut ordered: Vec<&(SourceNumber, &EnglishArticle, &Summary)> = sources.iter().collect();
    ordered.sort_by_key(|(n, _, _)| *n);
    ordered.dedup_by_key(|(n, _, _)| *n);
    let texts: Vec<SourceText<'_>> = ordered
        .par_iter()
        .map(|(n, a, s)| SourceText::new(*n, a, s))
        .collect();

    let mut notes = Vec::new();
    let grouping = group_sources(&texts, embedder, terms, options);
    if let Some(note) = grouping.note {
        notes.push(note);
    }

    let mut stories = Vec::new();
    let mut point_methods = Vec::new();
    let mut unused_reasons: BTreeMap<SourceNumber, UnusedReason> = BTreeMap::new();
    let mut instructions = Vec::new();
    let mut digest = Vec::new();
    let locals: Vec<Vec<(SourceNumber, &EnglishArticle, &Summary)>> = grouping
        .groups
        .iter()
        .map(|group| {
            group
                .iter()
                .enumerate()
                .map(|(k, &i)| (k + 1, ordered[i].1, ordered[i].2))
                .collect()
        })
        .collect();
    let prepared: Vec<P> = locals.par_iter().map(|local| prepare(local)).collect();
    let titles: Vec<String> = grouping
        .groups
        .iter()
        .map(|group| {
            let members: Vec<&SourceText<'_>> = group.iter().map(|&i| &texts[i]).collect();
            group::story_title(&members, &grouping.similarity, group)
        })
        .collect();
    let inputs: Vec<StoryInput<'_, P>> = locals
        .iter()
        .zip(&titles)
        .zip(prepared)
        .map(|((local, title), prepared)| StoryInput {
            members: local,
            title,
            prepared,
        })
        .collect();
    let results = stories_for(inputs)?;
    assert_eq!(
        results.len(),
        grouping.groups.len(),
        "one synthesis per story"
    );
    for ((group, title), result) in grouping.groups.iter().zip(titles).zip(results) {
        let numbers: Vec<SourceNumber> = group.iter().map(|&i| texts[i].number).collect();
        let result = result.renumbered(&numbers);
        notes.extend(result.fallback_notes(&title));
        unused_reasons.extend(result.unused.iter().copied());
        instructions.extend(result.instructions.iter().copied());
        if result.points.is_empty() {
            continue;
        }
        let story = Story {
            title,
            sources: numbers,
            points: result.points,
            disagreements: result.disagreements,
        };
        let articles: Vec<&EnglishArticle> = group.iter().map(|&i| ordered[i].1).collect();
        digest.push(since::story_digest(&story, &articles, result.facts));
        stories.push(story);
        point_methods.push(result.method);
    }

    let cited: std::collections::BTreeSet<SourceNumber> = stories
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| p.citations.iter().copied()))
        .collect();
    let unused = texts
        .iter()
        .filter(|d| !cited.contains(&d.number))
        .map(|d| UnusedSource {
            source: d.number,
            reason: unused_reasons
                .get(&d.number)
                .copied()
                .unwrap_or(UnusedReason::FailedCheck)
                .describe(options.max_points),
        })
        .collect();
    instructions.sort_unstable();
    Ok(Synthesis {
        stories,
        unused,
        grouping: grouping.method,
        point_methods,
        notes,
        instructions,
        digest,
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::article::{
        Article, ArticleMeta, EnglishArticle, EnglishSentence, Lang, Summary, SummaryMethod,
        SummarySentence,
    };
    use crate::models::{ChatRequest, GenerateError, TextGenerator};

    /// An English-original article of one paragraph per entry.
    pub(crate) fn article(origin: &str, sentences: &[&str]) -> EnglishArticle {
        let article = Article::new(
            origin.into(),
            ArticleMeta::default(),
            vec![sentences.join(" ")],
        );
        EnglishArticle {
            article,
            source_lang: Some(Lang::english()),
            translations: vec![],
            sentences: sentences
                .iter()
                .enumerate()
                .map(|(i, t)| EnglishSentence {
                    text: t.to_string(),
                    segment: i,
                    paragraph: 0,
                    translated_by: None,
                })
                .collect(),
            english_title: None,
        }
    }

    /// `f` over a story of English-original sources, one per entry of `texts` (its
    /// paragraphs), numbered from 1, each with an empty summary.
    pub(crate) fn with_story<R>(
        texts: &[&[&str]],
        f: impl FnOnce(&[&super::SourceDoc<'_>]) -> R,
    ) -> R {
        let articles: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| article(&format!("{i}.txt"), t))
            .collect();
        let summaries: Vec<_> = articles.iter().map(|a| summary(a, &[])).collect();
        let docs: Vec<super::SourceDoc<'_>> = articles
            .iter()
            .zip(&summaries)
            .enumerate()
            .map(|(i, (a, s))| super::SourceDoc::new(i + 1, a, s))
            .collect();
        let story: Vec<&super::SourceDoc<'_>> = docs.iter().collect();
        f(&story)
    }

    /// A model that writes one key point per source of a prompt (the source's summary,
    /// citing it) and records the size of every batch it is asked; a prompt naming
    /// `failing_on` fails, one naming `refusing_on` is answered without a single point.
    pub(crate) struct PointWriter {
        pub(crate) failing_on: &'static str,
        pub(crate) refusing_on: &'static str,
        /// A batch of more than one prompt fails as a whole (the prompts alone do not).
        pub(crate) failing_batches: bool,
        pub(crate) batches: Vec<usize>,
        /// Tokens (words) a prompt and its reply budget may take together; a prompt that
        /// overflows fails, as it would in a model's context.
        pub(crate) context: usize,
    }

    impl PointWriter {
        pub(crate) fn new(failing_on: &'static str, refusing_on: &'static str) -> PointWriter {
            PointWriter {
                failing_on,
                refusing_on,
                failing_batches: false,
                batches: vec![],
                context: 4096,
            }
        }
    }

    impl TextGenerator for PointWriter {
        fn model_name(&self) -> String {
            "point-writer".into()
        }
        fn chat(&mut self, system: &str, user: &str, max: usize) -> Result<String, GenerateError> {
            let tokens = self.count_tokens(system)? + self.count_tokens(user)? + max;
            if tokens > self.context {
                return Err(GenerateError::Other(format!(
                    "{tokens} tokens do not fit a context of {}",
                    self.context
                )));
            }
            if user.contains(self.failing_on) {
                return Err(GenerateError::Other(format!(
                    "no memory left for {}",
                    self.failing_on
                )));
            }
            if user.contains(self.refusing_on) {
                return Ok("I cannot help with that.".into());
            }
            // Source blocks are "[n] summary" lines (the test articles have no title).
            let points: Vec<String> = user
                .lines()
                .filter_map(|line| {
                    let (number, text) = line.strip_prefix('[')?.split_once("] ")?;
                    number.parse::<usize>().ok()?;
                    Some(format!("- {text} [{number}]"))
                })
                .collect();
            Ok(points.join("\n"))
        }
        fn chat_batch(
            &mut self,
            requests: &[ChatRequest],
        ) -> Result<Vec<Result<String, GenerateError>>, GenerateError> {
            self.batches.push(requests.len());
            if self.failing_batches && requests.len() > 1 {
                return Err(GenerateError::Other("the batch failed".into()));
            }
            Ok(requests
                .iter()
                .map(|r| self.chat(&r.system, &r.user, r.max_new_tokens))
                .collect())
        }
        fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
            Ok(text.split_whitespace().count())
        }
        fn context_len(&self) -> usize {
            self.context
        }
    }

    /// Four stories of two, two, one and one sources: an earthquake, a bridge, a fire (the
    /// one [`PointWriter::new`]`("Lindhaven", "Brenna")` fails on) and a mine rescue (the
    /// one it refuses).
    pub(crate) fn four_stories() -> Vec<EnglishArticle> {
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
            article(
                "fire.txt",
                &["A fire at the Lindhaven mill burned for 6 hours on Sunday."],
            ),
            article(
                "mine.txt",
                &["Rescuers at the Brenna mine reached 9 trapped miners on Thursday."],
            ),
        ]
    }

    /// A summary made of the article's sentences at `picks`.
    pub(crate) fn summary(article: &EnglishArticle, picks: &[usize]) -> Summary {
        Summary {
            article: article.article.id.clone(),
            sentences: picks
                .iter()
                .map(|&i| SummarySentence {
                    text: article.sentences[i].text.clone(),
                    support: vec![i],
                })
                .collect(),
            method: SummaryMethod::Extractive,
            ungrounded: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::citations::check_point;
    use super::test_support::{article, summary};
    use super::*;
    use crate::models::GenerateError;

    #[test]
    fn no_sources_give_an_empty_synthesis() {
        let s = synthesize(&[], None, None, &SynthesisOptions::default());
        assert!(s.stories.is_empty() && s.unused.is_empty() && s.notes.is_empty());
    }

    #[test]
    fn a_source_without_text_is_listed_unused_with_the_reason() {
        let a = article(
            "a.txt",
            &["Floods in Quang Nam killed 12 people on Monday."],
        );
        let empty = article("b.txt", &[]);
        let (sa, sb) = (summary(&a, &[0]), summary(&empty, &[]));
        let s = synthesize(
            &[(1, &a, &sa), (2, &empty, &sb)],
            None,
            None,
            &SynthesisOptions::default(),
        );
        assert_eq!(s.stories.len(), 1);
        assert_eq!(s.stories[0].points[0].citations, vec![1]);
        assert_eq!(
            s.unused,
            vec![UnusedSource {
                source: 2,
                reason: UnusedReason::NoText.describe(6)
            }]
        );
    }

    #[test]
    fn a_summary_its_article_does_not_back_gives_way_to_the_articles_own_sentences() {
        let a = article(
            "a.txt",
            &[
                "Floods in Quang Nam killed 12 people on Monday.",
                "Schools will stay closed until Friday.",
            ],
        );
        let mut invented = summary(&a, &[0]);
        invented.sentences[0].text = "Floods in Oregon killed 40 people in July.".into();
        invented.ungrounded = vec!["Oregon".into(), "July".into()];
        let s = synthesize(
            &[(1, &a, &invented)],
            None,
            None,
            &SynthesisOptions::default(),
        );
        assert_eq!(
            s.stories.len(),
            1,
            "the story keeps its source: {:?}",
            s.unused
        );
        let points = &s.stories[0].points;
        assert_eq!(
            points[0].text,
            "Floods in Quang Nam killed 12 people on Monday."
        );
        assert_eq!(points[0].citations, vec![1]);
        assert!(
            points.iter().all(|p| !p.text.contains("Oregon")),
            "{points:?}"
        );
        assert!(s.unused.is_empty(), "{:?}", s.unused);
    }

    #[test]
    fn a_source_whose_points_fall_below_the_cap_is_unused_with_that_reason() {
        let a = article(
            "a.txt",
            &[
                "Floods in Quang Nam killed 12 people on Monday.",
                "About 3,000 homes in Quang Nam were flooded on Monday.",
            ],
        );
        let b = article(
            "b.txt",
            &[
                "Floods in Quang Nam killed 12 people on Monday.",
                "Schools in Quang Nam will stay closed until Friday.",
            ],
        );
        let c = article(
            "c.txt",
            &["The army sent 200 soldiers to flooded Quang Nam on Monday after the floods."],
        );
        let (sa, sb, sc) = (summary(&a, &[0, 1]), summary(&b, &[1]), summary(&c, &[0]));
        let options = SynthesisOptions {
            max_points: 1,
            ..SynthesisOptions::default()
        };
        let s = synthesize(
            &[(1, &a, &sa), (2, &b, &sb), (3, &c, &sc)],
            None,
            None,
            &options,
        );
        assert_eq!(s.stories.len(), 1);
        // The toll, reported by a and b, ranks first; b is cited for it though its own summary
        // sentence falls below the cap; c's only point does too, so c is unused.
        assert_eq!(s.stories[0].points.len(), 1);
        assert_eq!(s.stories[0].points[0].citations, vec![1, 2]);
        assert_eq!(
            s.unused,
            vec![UnusedSource {
                source: 3,
                reason: UnusedReason::BelowCap.describe(1)
            }]
        );
    }

    /// A model that fails, or answers with a fixed reply, counting tokens as words, with a
    /// small context.
    struct FixedModel {
        reply: Result<String, String>,
        context: usize,
        prompts: Vec<String>,
        /// The reply budget of each call.
        budgets: Vec<usize>,
    }

    impl FixedModel {
        fn new(reply: Result<String, String>, context: usize) -> FixedModel {
            FixedModel {
                reply,
                context,
                prompts: vec![],
                budgets: vec![],
            }
        }
    }

    impl TextGenerator for FixedModel {
        fn model_name(&self) -> String {
            "fixed".into()
        }
        fn chat(&mut self, _system: &str, user: &str, max: usize) -> Result<String, GenerateError> {
            self.prompts.push(user.to_string());
            self.budgets.push(max);
            self.reply.clone().map_err(GenerateError::Other)
        }
        fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
            Ok(text.split_whitespace().count())
        }
        fn context_len(&self) -> usize {
            self.context
        }
    }

    fn flood_pair() -> (
        crate::article::EnglishArticle,
        crate::article::EnglishArticle,
    ) {
        let a = article(
            "a.txt",
            &[
                "Floods in Quang Nam killed 12 people on Monday.",
                "About 3,000 homes in Quang Nam were flooded.",
                "Schools in Quang Nam will stay closed until Friday.",
                "The army sent 200 soldiers to Quang Nam.",
            ],
        );
        let b = article(
            "b.txt",
            &["At least 12 people were killed by floods in Quang Nam on Monday."],
        );
        (a, b)
    }

    #[test]
    fn a_failing_model_falls_back_to_extracted_points_with_a_note() {
        let (a, b) = flood_pair();
        let (sa, sb) = (summary(&a, &[0]), summary(&b, &[0]));
        let prompt = SynthesisPrompt::bundled();
        let mut model = FixedModel::new(Err("out of memory".into()), 4096);
        let llm = LlmPoints {
            generator: &mut model,
            prompt: &prompt,
        };
        let s = synthesize(
            &[(1, &a, &sa), (2, &b, &sb)],
            None,
            Some(llm),
            &SynthesisOptions::default(),
        );
        assert_eq!(s.point_methods, ["extracted sentences"]);
        assert_eq!(s.stories[0].points[0].citations, vec![1, 2]);
        assert_eq!(s.notes.len(), 1);
        assert!(s.notes[0].contains("out of memory"), "{:?}", s.notes);
    }

    #[test]
    fn sources_are_shortened_to_fit_a_small_context() {
        let (a, b) = flood_pair();
        let (sa, sb) = (summary(&a, &[0, 1, 2]), summary(&b, &[0]));
        let prompt = SynthesisPrompt::bundled();
        let options = SynthesisOptions {
            max_new_tokens: 50,
            ..SynthesisOptions::default()
        };
        let reply = "- Floods killed 12 people in Quang Nam on Monday [1][2]".to_string();
        let (_, empty_user) = prompt.render("", options.max_points);
        let (system, _) = prompt.render("", options.max_points);
        let fixed = empty_user.split_whitespace().count() + system.split_whitespace().count();
        // Room for the two headers with a sentence each, not for the excerpts.
        let context = fixed + options.max_new_tokens + 32 + 30;
        let mut model = FixedModel::new(Ok(reply), context);
        let llm = LlmPoints {
            generator: &mut model,
            prompt: &prompt,
        };
        let s = synthesize(&[(1, &a, &sa), (2, &b, &sb)], None, Some(llm), &options);
        assert_eq!(s.point_methods, ["fixed"]);
        assert_eq!(s.stories[0].points[0].citations, vec![1, 2]);
        let user = &model.prompts[0];
        assert!(user.contains("[1] ") && user.contains("[2] "), "{user}");
        assert!(
            !user.contains("Excerpt"),
            "excerpts go first when space is short: {user}"
        );
        assert!(
            !user.contains("Schools"),
            "then summary sentences beyond the first: {user}"
        );
    }

    #[test]
    fn an_exact_reply_length_is_the_budget_asked_for_and_the_prompt_keeps_its_room() {
        let (a, b) = flood_pair();
        let (sa, sb) = (summary(&a, &[0, 1, 2]), summary(&b, &[0]));
        let prompt = SynthesisPrompt::bundled();
        let reply = "- Floods killed 12 people in Quang Nam on Monday [1][2]".to_string();
        let mut users = Vec::new();
        for exact in [None, Some(225)] {
            let options = SynthesisOptions {
                exact_reply_tokens: exact,
                ..SynthesisOptions::default()
            };
            let mut model = FixedModel::new(Ok(reply.clone()), 4096);
            let llm = LlmPoints {
                generator: &mut model,
                prompt: &prompt,
            };
            synthesize(&[(1, &a, &sa), (2, &b, &sb)], None, Some(llm), &options);
            assert_eq!(model.budgets, vec![exact.unwrap_or(options.max_new_tokens)]);
            users.extend(model.prompts);
        }
        assert_eq!(
            users[0], users[1],
            "the sources are fitted as for the full budget"
        );
    }

    #[test]
    fn citation_check_drops_unknown_and_unsupported_and_adds_supporting() {
        let a = article(
            "a.txt",
            &["Floods in Quang Nam killed 12 people on Monday."],
        );
        let b = article(
            "b.txt",
            &["At least 12 people were killed by floods in Quang Nam on Monday."],
        );
        let c = article(
            "c.txt",
            &["Floods in Quang Nam killed 15 people on Monday."],
        );
        let (sa, sb, sc) = (summary(&a, &[0]), summary(&b, &[0]), summary(&c, &[0]));
        let docs = [
            SourceDoc::new(1, &a, &sa),
            SourceDoc::new(2, &b, &sb),
            SourceDoc::new(3, &c, &sc),
        ];
        let story: Vec<&SourceDoc<'_>> = docs.iter().collect();
        let check = check_point(
            "Floods killed 12 people in Quang Nam on Monday.",
            &[1, 3, 9],
            &story,
        );
        assert_eq!(check.valid, vec![1, 2]);
        assert_eq!(check.unknown, vec![9]);
        assert_eq!(check.unsupported, vec![3]);
        // A point without key facts needs near-identical wording.
        assert!(check_point("Something happened somewhere.", &[1], &story)
            .valid
            .is_empty());
    }

    #[test]
    fn a_batch_that_fails_as_a_whole_is_asked_again_one_story_at_a_time() {
        use super::test_support::{four_stories, PointWriter};
        let articles = four_stories();
        let summaries: Vec<Summary> = articles.iter().map(|a| summary(a, &[0])).collect();
        let sources = number_sources(&articles, &summaries);
        let prompt = SynthesisPrompt::bundled();
        let with = |failing_batches: bool| {
            let mut model = PointWriter::new("Lindhaven", "Brenna");
            model.failing_batches = failing_batches;
            let llm = LlmPoints {
                generator: &mut model,
                prompt: &prompt,
            };
            let s = synthesize(&sources, None, Some(llm), &SynthesisOptions::default());
            assert_eq!(model.batches, [4]);
            s
        };
        let retried = with(true);
        assert_eq!(retried, with(false));
        // Only the fire story's own failure shows, not the batch's.
        assert_eq!(
            retried
                .point_methods
                .iter()
                .filter(|m| *m == "point-writer")
                .count(),
            2
        );
        assert!(
            retried
                .notes
                .iter()
                .all(|n| !n.contains("the batch failed")),
            "{:?}",
            retried.notes
        );
    }
}
