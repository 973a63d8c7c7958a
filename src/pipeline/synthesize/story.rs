//! One story's synthesis: its key points (the LLM's, checked, or extracted sentences), the
//! figures its sources disagree on, and why each uncited source was left out — computed from
//! the story's own sources alone, numbered 1..k in the order of their run numbers.
//!
//! That makes a story's result a function of its sources only, so the stage caches it per
//! story (`stage::synthesize_cached`) and one changed article re-synthesizes only its own
//! story; [`StorySynthesis::renumbered`] maps the local numbers to the run's. The story's
//! title is not part of it: it depends on how central each source is among the run's
//! similarities, and is chosen per run.
//!
//! Stories are synthesized several at a time ([`synthesize_batch`]): the LLM is given every
//! story's key-point prompt together, so that it decodes them as one batch, and each reply is
//! then checked against its own story's sources only.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::article::{Disagreement, KeyPoint, SourceNumber};
use crate::models::{ChatRequest, GenerateError, TextGenerator};
use crate::pipeline::injection;

use super::citations::check_point;
use super::prompt::GeneratedPoint;
use super::since::{self, StatedFact};
use super::{
    clauses, disagreements, points, prompt, LlmPoints, SourceDoc, SynthesisOptions, UnusedReason,
};

/// What one story's sources say together, in the story's local numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct StorySynthesis {
    /// The story's key points; empty when nothing checkable could be said (its sources are
    /// then listed as unused rather than as an empty story).
    pub points: Vec<KeyPoint>,
    pub disagreements: Vec<Disagreement>,
    /// How the key points were written ("extracted sentences", or the LLM's name).
    pub method: String,
    /// Why the LLM's key points were not used, when they were asked for and failed: "the
    /// language model failed (…)". The brief's note adds the story's title.
    pub fallback: Option<String>,
    /// Why some of the LLM's key points are missing although others are shown: parts of a
    /// story asked for in parts whose replies failed. The brief's note adds the story's title.
    #[serde(default)]
    pub failed_parts: Option<String>,
    /// Why each source no point cites was left out (sources a point cites may have one too).
    pub unused: Vec<(SourceNumber, UnusedReason)>,
    /// Sources with sentences addressed to machines, and how many.
    pub instructions: Vec<(SourceNumber, usize)>,
    /// The quantities the story's sources state, for the brief's digest (`since`): cached
    /// with the story, so a re-run does not scan every source again.
    pub facts: Vec<StatedFact>,
}

impl StorySynthesis {
    /// The same result with every source number `n` replaced by `numbers[n - 1]`: the story's
    /// local numbers become the run's.
    pub(crate) fn renumbered(mut self, numbers: &[SourceNumber]) -> StorySynthesis {
        let map = |n: &mut SourceNumber| {
            if let Some(&global) = n.checked_sub(1).and_then(|i| numbers.get(i)) {
                *n = global;
            }
        };
        for point in &mut self.points {
            point.citations.iter_mut().for_each(map);
        }
        for disagreement in &mut self.disagreements {
            for (_, sources) in &mut disagreement.sides {
                sources.iter_mut().for_each(map);
            }
            for statement in &mut disagreement.statements {
                map(&mut statement.source);
            }
        }
        self.unused.iter_mut().for_each(|(n, _)| map(n));
        self.instructions.iter_mut().for_each(|(n, _)| map(n));
        for fact in &mut self.facts {
            fact.renumber(map);
        }
        self
    }

    /// The brief's notes about an LLM fallback or failed parts, naming the story.
    pub(crate) fn fallback_notes(&self, title: &str) -> impl Iterator<Item = String> {
        let fallback = self.fallback.as_ref().map(|why| {
            format!(
                "Story \u{201c}{title}\u{201d}: {why}, so extracted sentences are shown instead."
            )
        });
        let parts = self
            .failed_parts
            .as_ref()
            .map(|why| format!("Story \u{201c}{title}\u{201d}: {why}."));
        fallback.into_iter().chain(parts)
    }
}

/// One story to synthesize: its sources, numbered as the result will be, and its title (for
/// the log).
pub(crate) type StoryDocs<'s, 'a> = (&'s [&'s SourceDoc<'a>], &'s str);

/// What the model gave for one story's key points: its name and the parsed reply, or why
/// there is none.
struct LlmReply {
    model: String,
    points: Result<StoryPoints, GenerateError>,
}

/// A story's points as the model wrote them, and which of its parts failed, if any.
struct StoryPoints {
    points: Vec<GeneratedPoint>,
    /// "the key points of 1 of its 3 parts failed (…), so that part's sources are not drawn on".
    failed_parts: Option<String>,
}

/// Synthesizes each of `stories` (see [`synthesize_story`]): with the LLM when `llm` is
/// given, every story's prompt built first and all of them asked for together, so that the
/// generator decodes them as one batch; then each reply is checked for its own story. Each
/// result is what the story synthesized alone gives, since a batched reply is the reply
/// alone.
pub(crate) fn synthesize_batch(
    stories: &[StoryDocs<'_, '_>],
    llm: Option<&mut LlmPoints<'_>>,
    options: &SynthesisOptions,
) -> Vec<StorySynthesis> {
    let replies: Vec<Option<LlmReply>> = match llm {
        None => stories.iter().map(|_| None).collect(),
        Some(llm) => {
            let generated = key_points_of_all(stories, llm, options);
            let model = llm.generator.model_name();
            generated
                .into_iter()
                .map(|points| {
                    Some(LlmReply {
                        model: model.clone(),
                        points,
                    })
                })
                .collect()
        }
    };
    // What follows the replies reads each story's own sources only.
    stories
        .par_iter()
        .zip(replies)
        .map(|(&(members, title), reply)| synthesize_story(members, reply, options, title))
        .collect()
}

/// Each story's key points as the model wrote them, or why it wrote none: every request is
/// built first (several for a story asked for in parts), then all are asked for together.
fn key_points_of_all(
    stories: &[StoryDocs<'_, '_>],
    llm: &mut LlmPoints<'_>,
    options: &SynthesisOptions,
) -> Vec<Result<StoryPoints, GenerateError>> {
    // Per story, how many requests it has (its parts, in the order of the stories), or why it
    // has none.
    let mut asked: Vec<Result<usize, GenerateError>> = Vec::new();
    let mut requests = Vec::new();
    for (members, _) in stories {
        match prompt::key_points_requests(members, &*llm.generator, llm.prompt, options) {
            Ok(parts) => {
                asked.push(Ok(parts.len()));
                requests.extend(parts);
            }
            Err(e) => asked.push(Err(e)),
        }
    }
    let mut replies = ask_all(&mut *llm.generator, &requests).into_iter();
    asked
        .into_iter()
        .zip(stories)
        .map(|(parts, (_, title))| story_points(replies.by_ref().take(parts?).collect(), title))
        .collect()
}

/// A story's points from the replies to its parts (one reply for most stories): the parts
/// that were answered, put together ([`prompt::interleave_parts`]), and which failed; the
/// first error when none was answered, or when the run was interrupted.
fn story_points(
    replies: Vec<Result<String, GenerateError>>,
    title: &str,
) -> Result<StoryPoints, GenerateError> {
    let count = replies.len();
    let mut answered = Vec::new();
    let (mut first_error, mut failed) = (None, 0);
    for (part, reply) in replies.into_iter().enumerate() {
        match reply {
            Ok(reply) => answered.push(prompt::parse_points(&reply)),
            Err(GenerateError::Interrupted) => return Err(GenerateError::Interrupted),
            Err(err) => {
                if count > 1 {
                    log::warn!(
                        "key points for part {} of {count} of story \u{201c}{title}\u{201d} failed: {err}",
                        part + 1
                    );
                }
                failed += 1;
                first_error.get_or_insert(err);
            }
        }
    }
    match first_error {
        Some(err) if answered.is_empty() => Err(err),
        first_error => Ok(StoryPoints {
            points: prompt::interleave_parts(answered),
            failed_parts: first_error.map(|err| {
                let those = if failed == 1 {
                    "that part's"
                } else {
                    "those parts'"
                };
                format!(
                    "the key points of {failed} of its {count} parts failed ({err}), so {those} sources are not drawn on"
                )
            }),
        }),
    }
}

/// The replies to `requests`, in order, each what `chat` gives it alone. When the batch fails
/// as a whole for another reason than a stop, each request is asked again on its own, so that
/// one story's failure stays that story's (its fallback note) as it would one at a time.
fn ask_all(
    generator: &mut dyn TextGenerator,
    requests: &[ChatRequest],
) -> Vec<Result<String, GenerateError>> {
    if requests.is_empty() {
        return Vec::new();
    }
    match generator.chat_batch(requests) {
        Ok(replies) => replies,
        Err(GenerateError::Interrupted) => requests
            .iter()
            .map(|_| Err(GenerateError::Interrupted))
            .collect(),
        Err(err) if requests.len() == 1 => vec![Err(err)],
        Err(err) => {
            log::warn!(
                "key points of {} stories asked for together failed ({err}); asking for each on its own",
                requests.len()
            );
            requests
                .iter()
                .map(|r| generator.chat(&r.system, &r.user, r.max_new_tokens))
                .collect()
        }
    }
}

/// Synthesizes one story from its `members` (numbered as the result will be): from the LLM's
/// `reply` when one was asked for, falling back to extracted points when it failed or yields
/// no point that passes citation checking, otherwise by merging summary sentences. `title` is
/// for the log.
fn synthesize_story(
    members: &[&SourceDoc<'_>],
    reply: Option<LlmReply>,
    options: &SynthesisOptions,
    title: &str,
) -> StorySynthesis {
    let mut unused: BTreeMap<SourceNumber, UnusedReason> = BTreeMap::new();
    let mut method = "extracted sentences".to_string();
    let (mut fallback, mut failed_parts) = (None, None);
    let mut llm_points = None;
    if let Some(LlmReply { model, points }) = reply {
        match points {
            Ok(StoryPoints {
                points: generated,
                failed_parts: failed,
            }) => {
                let checked: Vec<KeyPoint> = generated
                    .iter()
                    .filter(|p| !injection::is_addressed_to_machines(&p.text))
                    .flat_map(|p| {
                        let check = check_point(&p.text, &p.cited, members);
                        if check.valid.is_empty() {
                            return vec![];
                        }
                        // A fact other sources share, bundled with one the cited source
                        // alone states, is told on its own so that it cites them all.
                        match clauses::split_for_wider_support(&p.text, &check.valid, members) {
                            Some(parts) => parts
                                .map(|c| KeyPoint {
                                    text: c.text,
                                    citations: c.sources,
                                })
                                .to_vec(),
                            None => vec![KeyPoint {
                                text: p.text.clone(),
                                citations: check.valid,
                            }],
                        }
                    })
                    .take(options.max_points)
                    .collect();
                let cited_by_llm: Vec<SourceNumber> = generated
                    .iter()
                    .flat_map(|p| p.cited.iter().copied())
                    .collect();
                if checked.is_empty() {
                    fallback = Some(format!(
                        "the key points written by {model} did not pass citation checking"
                    ));
                } else {
                    method = model;
                    failed_parts = failed;
                    for doc in members {
                        let reason = if cited_by_llm.contains(&doc.number) {
                            UnusedReason::FailedCheck
                        } else {
                            UnusedReason::NotDrawnOn
                        };
                        unused.insert(doc.number, reason);
                    }
                    llm_points = Some(points::merge_repeats(checked));
                }
            }
            Err(err) => {
                log::warn!(
                    "key points for story \u{201c}{title}\u{201d} by the language model failed: {err}"
                );
                fallback = Some(format!("the language model failed ({err})"));
            }
        }
    }
    let story_points = match llm_points {
        Some(p) => p,
        None => {
            let (extracted, reasons) = points::extract_points(members, options.max_points);
            unused.extend(reasons);
            extracted
        }
    };
    for doc in members {
        if doc.text.trim().is_empty() {
            unused.insert(doc.number, UnusedReason::NoText);
        }
    }
    let disagreements = disagreements::find_disagreements(members, options.max_disagreements);
    if story_points.is_empty() {
        for doc in members {
            unused
                .entry(doc.number)
                .or_insert(UnusedReason::FailedCheck);
        }
    }
    StorySynthesis {
        points: story_points,
        disagreements,
        method,
        fallback,
        failed_parts,
        unused: unused.into_iter().collect(),
        instructions: members
            .iter()
            .filter(|d| d.instructions > 0)
            .map(|d| (d.number, d.instructions))
            .collect(),
        facts: since::stated_facts(
            &members
                .iter()
                .map(|d| (d.number, d.original))
                .collect::<Vec<_>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::Statement;
    use crate::pipeline::synthesize::since::StatedValue;

    #[test]
    fn a_story_too_large_for_the_context_is_asked_in_parts_and_keeps_each_parts_first_points() {
        use crate::pipeline::synthesize::test_support::{with_story, PointWriter};
        use crate::pipeline::synthesize::{LlmPoints, SynthesisPrompt};
        let sentences: Vec<String> = (0..8)
            .map(|i| {
                format!(
                    "Floods in Quang Nam killed {} people on Monday.",
                    12 + 3 * i
                )
            })
            .collect();
        let texts: Vec<[&str; 1]> = sentences.iter().map(|s| [s.as_str()]).collect();
        let texts: Vec<&[&str]> = texts.iter().map(|t| t.as_slice()).collect();
        let prompt = SynthesisPrompt::bundled();
        let options = SynthesisOptions::default();
        let (system, user) = prompt.render("", options.max_points);
        let fixed = system.split_whitespace().count() + user.split_whitespace().count();
        // "[n] sentence" and its separator.
        let block = sentences[0].split_whitespace().count() + 2;
        let mut model = PointWriter::new("no such text", "no such text either");
        // Room for three sources at one sentence each, not for all eight.
        model.context = fixed + options.max_new_tokens + 32 + 3 * block;
        let synthesis = with_story(&texts, |story| {
            let mut llm = LlmPoints {
                generator: &mut model,
                prompt: &prompt,
            };
            synthesize_batch(&[(story, "floods")], Some(&mut llm), &options)
        });
        assert_eq!(model.batches, [3], "the parts are asked for together");
        let story = &synthesis[0];
        assert_eq!(story.method, "point-writer", "{:?}", story.fallback);
        let cited: Vec<Vec<SourceNumber>> =
            story.points.iter().map(|p| p.citations.clone()).collect();
        // Parts of 3, 2 and 3 sources (8 in even shares); the parts' points in turn, up to the
        // story's cap of 6.
        assert_eq!(cited, [[1], [4], [6], [2], [5], [7]]);
    }

    #[test]
    fn a_failed_part_leaves_the_other_parts_points_with_a_note_and_an_interrupt_ends_the_story() {
        let other = || Err(GenerateError::Other("no memory left".into()));
        let point = || Ok("- Storm closed 36 roads. [2]".to_string());
        let partial = story_points(vec![other(), point()], "floods").unwrap();
        let texts: Vec<String> = partial.points.into_iter().map(|p| p.text).collect();
        assert_eq!(texts, ["Storm closed 36 roads."]);
        assert_eq!(
            partial.failed_parts.as_deref(),
            Some("the key points of 1 of its 2 parts failed (no memory left), so that part's sources are not drawn on")
        );
        let whole = story_points(vec![point()], "floods").unwrap();
        assert_eq!(whole.failed_parts, None);
        assert!(matches!(
            story_points(vec![other(), other()], "floods"),
            Err(GenerateError::Other(e)) if e == "no memory left"
        ));
        assert!(matches!(
            story_points(vec![point(), Err(GenerateError::Interrupted)], "floods"),
            Err(GenerateError::Interrupted)
        ));
    }

    #[test]
    fn failed_parts_are_a_note_naming_the_story() {
        let result = StorySynthesis {
            points: vec![],
            disagreements: vec![],
            method: "point-writer".into(),
            fallback: None,
            failed_parts: Some("the key points of 1 of its 3 parts failed (no memory left), so that part's sources are not drawn on".into()),
            unused: vec![],
            instructions: vec![],
            facts: vec![],
        };
        let notes: Vec<String> = result.fallback_notes("Floods").collect();
        assert_eq!(
            notes,
            ["Story \u{201c}Floods\u{201d}: the key points of 1 of its 3 parts failed (no memory left), so that part's sources are not drawn on."]
        );
    }

    #[test]
    fn renumbering_maps_every_source_number_of_a_story() {
        let local = StorySynthesis {
            points: vec![KeyPoint {
                text: "Floods killed 12 people.".into(),
                citations: vec![1, 2],
            }],
            disagreements: vec![Disagreement {
                subject: "deaths".into(),
                sides: vec![("12".into(), vec![1]), ("15".into(), vec![2])],
                statements: vec![Statement {
                    source: 2,
                    value: "15".into(),
                    sentence: "Floods killed 15 people.".into(),
                }],
            }],
            method: "extracted sentences".into(),
            fallback: None,
            failed_parts: None,
            unused: vec![(2, UnusedReason::BelowCap)],
            instructions: vec![(1, 3)],
            facts: vec![StatedFact {
                subject_key: "count|people|flood".into(),
                subject: "people".into(),
                specificity: 1,
                values: vec![
                    StatedValue {
                        key: "12".into(),
                        text: "12".into(),
                        sources: vec![1],
                    },
                    StatedValue {
                        key: "15".into(),
                        text: "15".into(),
                        sources: vec![2],
                    },
                ],
            }],
        };
        let run = local.renumbered(&[7, 19]);
        assert_eq!(run.points[0].citations, vec![7, 19]);
        assert_eq!(run.disagreements[0].sides[0].1, vec![7]);
        assert_eq!(run.disagreements[0].sides[1].1, vec![19]);
        assert_eq!(run.disagreements[0].statements[0].source, 19);
        assert_eq!(run.unused, vec![(19, UnusedReason::BelowCap)]);
        assert_eq!(run.instructions, vec![(7, 3)]);
        assert_eq!(run.facts[0].values[0].sources, vec![7]);
        assert_eq!(run.facts[0].values[1].sources, vec![19]);
    }
}
