//! Summaries written by a local instruct model, checked against the article.
//!
//! One article, one prompt when it fits the model's context; otherwise map-reduce: the English
//! sentences are packed into parts that fit (never cutting a sentence), each part is
//! summarized, and the part summaries are combined (in rounds, if even they do not fit).
//!
//! Grounding: every number, date and name of a generated summary must occur in the text it was
//! made from (`facts::missing_facts`). A summary that fails is regenerated once with the strict
//! prompt, which names what was wrong; if that fails too, the summary is kept and the facts the
//! article does not contain are listed in `Summary::ungrounded`, which the brief flags.

use super::{SummarizeError, Summarizer};
use crate::article::{EnglishArticle, Summary, SummaryMethod, SummarySentence};
use crate::models::{ChatRequest, TextGenerator};
use crate::pipeline::facts::missing_facts;
use crate::pipeline::injection;
use crate::prompts::Prompts;

/// How long summaries are and how much room the model gets.
#[derive(Clone, Debug)]
pub struct LlmSummaryOptions {
    /// Sentences asked for, in the final summary and in each part's summary.
    pub sentences: usize,
    /// Most tokens one reply may take.
    pub max_reply_tokens: usize,
    /// A reply that states facts its text lacks is asked for once more, with the strict prompt.
    pub strict_reasks: bool,
    /// The tokens each reply is given instead of `max_reply_tokens` (which the context is
    /// still planned for). Only benchmarks set it, with a generator that runs every reply to
    /// its budget: random weights then write a real model's reply lengths.
    pub exact_reply_tokens: Option<usize>,
}

impl Default for LlmSummaryOptions {
    fn default() -> Self {
        LlmSummaryOptions {
            sentences: 3,
            max_reply_tokens: 200,
            strict_reasks: true,
            exact_reply_tokens: None,
        }
    }
}

/// Tokens kept free besides the prompt and the reply: the chat markup the template adds
/// around the messages, and slack because a text's token count is not exactly the sum of its
/// parts' counts.
const CHAT_MARKUP_TOKENS: usize = 24;
/// Room in the strict prompt for the list of facts that were wrong.
const MISSING_FACTS_TOKENS: usize = 48;

/// A [`Summarizer`] that asks a [`TextGenerator`].
pub struct LlmSummarizer<'g> {
    generator: &'g mut dyn TextGenerator,
    prompts: Prompts,
    options: LlmSummaryOptions,
}

/// The article's fields that fill the templates' placeholders.
#[derive(Clone)]
struct Fields {
    title: String,
    outlet: String,
    language: String,
    target_length: String,
}

/// One prompt → reply step, with what the reply must be grounded in.
#[derive(Clone)]
struct Step {
    /// `summarize` or `summarize_reduce`.
    template: &'static str,
    fields: Fields,
    /// What fills `{text}`.
    text: String,
    /// What the reply's facts must occur in.
    source: String,
}

/// One article on its way through [`LlmSummarizer::summarize_batch`].
struct Job<'a> {
    original: &'a EnglishArticle,
    /// The article without sentences addressed to machines.
    news: Option<EnglishArticle>,
    english: String,
    fields: Fields,
    budget: usize,
    /// Part summaries still to be combined; one when done.
    parts: Vec<String>,
}

impl Job<'_> {
    fn article(&self) -> &EnglishArticle {
        self.news.as_ref().unwrap_or(self.original)
    }
}

impl<'g> LlmSummarizer<'g> {
    pub fn new(
        generator: &'g mut dyn TextGenerator,
        prompts: Prompts,
        options: LlmSummaryOptions,
    ) -> Self {
        LlmSummarizer {
            generator,
            prompts,
            options,
        }
    }

    fn fields(&self, article: &EnglishArticle) -> Fields {
        let meta = &article.article.meta;
        let language = match &article.source_lang {
            Some(lang) if !lang.is_english() => {
                format!(
                    "{} (the text below is a machine translation into English)",
                    lang.name()
                )
            }
            _ => "English".to_string(),
        };
        let n = self.options.sentences;
        Fields {
            title: meta.title.clone().unwrap_or_else(|| "(none)".to_string()),
            outlet: meta
                .source
                .clone()
                .unwrap_or_else(|| "(unknown)".to_string()),
            language,
            target_length: if n == 1 {
                "one sentence".to_string()
            } else {
                format!("{n} sentences")
            },
        }
    }

    fn render(
        &self,
        template: &str,
        fields: &Fields,
        text: &str,
        missing: &str,
    ) -> Result<String, SummarizeError> {
        Ok(self.prompts.render(
            template,
            &[
                ("title", &fields.title),
                ("outlet", &fields.outlet),
                ("language", &fields.language),
                ("target_length", &fields.target_length),
                ("text", text),
                ("missing_facts", missing),
            ],
        )?)
    }

    /// Tokens available for `{text}` in every template a step may use.
    fn text_budget(&self, fields: &Fields) -> Result<usize, SummarizeError> {
        let system = self.prompts.render("system", &[])?;
        let mut overhead = 0;
        for template in ["summarize", "summarize_reduce", "summarize_strict"] {
            let empty = self.render(template, fields, "", "")?;
            let extra = if template == "summarize_strict" {
                MISSING_FACTS_TOKENS
            } else {
                0
            };
            overhead = overhead.max(self.generator.count_tokens(&empty)? + extra);
        }
        overhead += self.generator.count_tokens(&system)? + CHAT_MARKUP_TOKENS;
        let context = self.generator.context_len();
        let reserved = overhead + self.options.max_reply_tokens;
        // A part must hold at least two replies, or combining part summaries could never shrink them.
        let budget = context.saturating_sub(reserved);
        if budget < 2 * self.options.max_reply_tokens {
            return Err(SummarizeError::Other(format!(
                "the model's context of {context} tokens is too small: the prompts and a reply of {} tokens \
                 leave {budget} tokens for the article",
                self.options.max_reply_tokens
            )));
        }
        Ok(budget)
    }

    /// Runs every step; a step whose reply states facts its source lacks runs once more with
    /// the strict prompt, which names them. Each step's result is the reply with fewer missing
    /// facts (the strict one on a tie). First replies are asked for together, then the strict
    /// ones: the steps are independent, so the generator may decode them as one batch.
    fn grounded(
        &mut self,
        steps: &[Step],
    ) -> Result<Vec<Result<String, SummarizeError>>, SummarizeError> {
        let first = self.ask_all(steps.iter().map(|s| (s, String::new())))?;
        let mut results = Vec::with_capacity(steps.len());
        let mut retries = Vec::new();
        for (i, (step, reply)) in steps.iter().zip(first).enumerate() {
            let reply = match reply {
                Ok(reply) => tidy(&reply),
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let missing = missing_facts(&reply, &step.source);
            if !missing.is_empty() && self.options.strict_reasks {
                let listed = missing
                    .iter()
                    .map(|f| format!("\"{f}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                log::info!(
                    "summary states {listed}, which the text does not; asking again with the strict prompt"
                );
                retries.push((i, listed, missing.len()));
            }
            results.push(Ok(reply));
        }
        let strict: Vec<Step> = retries
            .iter()
            .map(|&(i, _, _)| Step {
                template: "summarize_strict",
                ..steps[i].clone()
            })
            .collect();
        let second = self.ask_all(strict.iter().zip(retries.iter().map(|r| r.1.clone())))?;
        for ((i, _, missing), reply) in retries.into_iter().zip(second) {
            let second = tidy(&reply?);
            if missing_facts(&second, &steps[i].source).len() <= missing {
                results[i] = Ok(second);
            }
        }
        Ok(results)
    }

    /// One reply per (step, missing facts), trimmed, asked for together.
    fn ask_all<'s>(
        &mut self,
        steps: impl Iterator<Item = (&'s Step, String)>,
    ) -> Result<Vec<Result<String, SummarizeError>>, SummarizeError> {
        let system = self.prompts.render("system", &[])?;
        let requests = steps
            .map(|(step, missing)| {
                Ok(ChatRequest {
                    system: system.clone(),
                    user: self.render(step.template, &step.fields, &step.text, &missing)?,
                    max_new_tokens: self
                        .options
                        .exact_reply_tokens
                        .unwrap_or(self.options.max_reply_tokens),
                })
            })
            .collect::<Result<Vec<_>, SummarizeError>>()?;
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .generator
            .chat_batch(&requests)?
            .into_iter()
            .map(|r| {
                r.map(|text| text.trim().to_string())
                    .map_err(SummarizeError::from)
            })
            .collect())
    }

    /// What an article is summarized from, and its steps: one prompt when it fits the
    /// budget, else one per part.
    fn prepare<'a>(
        &mut self,
        original: &'a EnglishArticle,
    ) -> Result<(Job<'a>, Vec<Step>), SummarizeError> {
        // The model never reads sentences addressed to machines, and what it writes of that
        // kind (having obeyed one, or on its own) is dropped in `finish`.
        let news = injection::without_instructions(original);
        let article = news.as_ref().unwrap_or(original);
        let english = article.text();
        if english.trim().is_empty() {
            return Err(SummarizeError::Other(format!(
                "{} has no English text to summarize",
                article.article.origin
            )));
        }
        let fields = self.fields(article);
        let budget = self.text_budget(&fields)?;
        let steps = if self.generator.count_tokens(&english)? <= budget {
            vec![Step {
                template: "summarize",
                fields: fields.clone(),
                text: english.clone(),
                source: english.clone(),
            }]
        } else {
            let counts = article
                .sentences
                .iter()
                .map(|s| self.generator.count_tokens(&s.text).map(|n| n + 1))
                .collect::<Result<Vec<_>, _>>()?;
            let parts = pack(&counts, budget);
            log::info!(
                "{}: too long for one prompt; summarizing it in {} parts",
                article.article.origin,
                parts.len()
            );
            parts
                .iter()
                .enumerate()
                .map(|(i, range)| {
                    let part_text = article.text_of(range.clone());
                    Step {
                        template: "summarize",
                        fields: Fields {
                            title: format!("{} (part {} of {})", fields.title, i + 1, parts.len()),
                            ..fields.clone()
                        },
                        source: part_text.clone(),
                        text: part_text,
                    }
                })
                .collect()
        };
        let job = Job {
            original,
            english,
            fields,
            budget,
            parts: Vec::new(),
            news,
        };
        Ok((job, steps))
    }

    /// The groups one reduce round combines a job's part summaries in, as steps.
    fn reduce_steps(&self, job: &Job<'_>) -> Result<Vec<Step>, SummarizeError> {
        let labelled: Vec<String> = job
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| format!("Part {}: {p}", i + 1))
            .collect();
        let counts = labelled
            .iter()
            .map(|p| self.generator.count_tokens(p).map(|n| n + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(pack(&counts, job.budget)
            .into_iter()
            .map(|group| Step {
                template: "summarize_reduce",
                fields: job.fields.clone(),
                text: labelled[group].join("\n\n"),
                source: job.english.clone(),
            })
            .collect())
    }

    /// Summaries of several articles, in order, each what `summarize` gives it alone: every
    /// step that does not wait for another (all articles' first prompts and parts, then each
    /// round of re-asks and of combining part summaries) is asked for together.
    pub fn summarize_batch(
        &mut self,
        articles: &[&EnglishArticle],
    ) -> Result<Vec<Result<Summary, SummarizeError>>, SummarizeError> {
        let mut results: Vec<Option<Result<Summary, SummarizeError>>> = Vec::new();
        let mut jobs: Vec<(usize, Job<'_>)> = Vec::new();
        let mut steps = Vec::new();
        let mut owners = Vec::new();
        for &article in articles {
            match self.prepare(article) {
                Ok((job, job_steps)) => {
                    owners.extend(std::iter::repeat_n(jobs.len(), job_steps.len()));
                    steps.extend(job_steps);
                    jobs.push((results.len(), job));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        // Rounds: the pending steps of every job at once, until each has one summary.
        let mut failed: Vec<Option<SummarizeError>> = (0..jobs.len()).map(|_| None).collect();
        let mut first_round = true;
        while !steps.is_empty() {
            let replies = self.grounded(&steps)?;
            let mut next: Vec<Vec<String>> = vec![Vec::new(); jobs.len()];
            for (owner, reply) in owners.iter().zip(replies) {
                match reply {
                    Ok(reply) => next[*owner].push(reply),
                    Err(e) => {
                        failed[*owner].get_or_insert(e);
                    }
                }
            }
            for (j, parts) in next.into_iter().enumerate() {
                let job = &mut jobs[j].1;
                if failed[j].is_some() || (parts.is_empty() && !first_round) {
                    continue;
                }
                if !first_round && parts.len() >= job.parts.len() {
                    // Cannot happen while a budget holds two replies; guards against looping forever.
                    failed[j] = Some(SummarizeError::Other(
                        "part summaries do not get shorter when combined".to_string(),
                    ));
                    continue;
                }
                job.parts = parts;
            }
            first_round = false;
            steps.clear();
            owners.clear();
            for (j, (_, job)) in jobs.iter().enumerate() {
                if failed[j].is_some() || job.parts.len() <= 1 {
                    continue;
                }
                match self.reduce_steps(job) {
                    Ok(job_steps) => {
                        owners.extend(std::iter::repeat_n(j, job_steps.len()));
                        steps.extend(job_steps);
                    }
                    Err(e) => failed[j] = Some(e),
                }
            }
        }
        for ((slot, mut job), failure) in jobs.into_iter().zip(failed) {
            results[slot] = Some(match failure {
                Some(e) => Err(e),
                None => {
                    let text = job.parts.pop().unwrap_or_default();
                    Ok(self.finish(&job, &text))
                }
            });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every article has a result"))
            .collect())
    }

    /// The summary of `job` from its final text: sentences addressed to machines dropped,
    /// each sentence pointed at the article's, facts the article lacks listed.
    fn finish(&self, job: &Job<'_>, text: &str) -> Summary {
        let original = job.original;
        let sentences: Vec<SummarySentence> = split_sentences(text)
            .into_iter()
            .filter(|s| !injection::is_addressed_to_machines(s))
            .map(|s| SummarySentence {
                support: supporting_sentences(&s, original),
                text: s,
            })
            .collect();
        let kept = sentences
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let ungrounded = missing_facts(&kept, &job.english)
            .iter()
            .map(ToString::to_string)
            .collect();
        Summary {
            article: job.article().article.id.clone(),
            sentences,
            method: self.method(),
            ungrounded,
        }
    }
}

impl Summarizer for LlmSummarizer<'_> {
    fn summarize(&mut self, article: &EnglishArticle) -> Result<Summary, SummarizeError> {
        self.summarize_batch(&[article])?
            .pop()
            .expect("one result per article")
    }

    fn summarize_batch(
        &mut self,
        articles: &[&EnglishArticle],
    ) -> Result<Vec<Result<Summary, SummarizeError>>, SummarizeError> {
        LlmSummarizer::summarize_batch(self, articles)
    }

    fn method(&self) -> SummaryMethod {
        SummaryMethod::Llm {
            model: self.generator.model_name(),
        }
    }
}

/// Consecutive groups of items (sentences, part summaries) of the given token counts, each
/// within `budget`, as even in size as the budget allows. An item larger than the budget gets
/// a group of its own (the caller's budget leaves room for the reply, so such a part still
/// fits the context if not the budget; a one-sentence "part" that large is a segmentation
/// failure, and the model reads as much of it as it can).
pub fn pack(counts: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let budget = budget.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < counts.len() {
        // Aim each group at an equal share of what is left, so the last is not a stub.
        let remaining: usize = counts[start..].iter().sum();
        let target = remaining.div_ceil(remaining.div_ceil(budget).max(1));
        let mut end = start;
        let mut size = 0;
        while end < counts.len() {
            if end > start && size + counts[end] > budget {
                break;
            }
            size += counts[end];
            end += 1;
            if size >= target {
                break;
            }
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// A reply as plain prose: no "Summary:" label, no list markers, one line.
fn tidy(reply: &str) -> String {
    let mut lines = Vec::new();
    for line in reply.lines() {
        let mut line = line.trim();
        for label in ["Summary:", "**Summary:**", "Summary"] {
            if let Some(rest) = line.strip_prefix(label) {
                if rest.is_empty() || rest.starts_with(' ') || label.ends_with(':') {
                    line = rest.trim();
                }
            }
        }
        let line = line.trim_start_matches(['-', '*', '•']).trim_start();
        let line = match line.split_once(". ") {
            Some((n, rest))
                if !n.is_empty() && n.len() <= 2 && n.chars().all(|c| c.is_ascii_digit()) =>
            {
                rest
            }
            _ => line,
        };
        if !line.is_empty() {
            lines.push(line.to_string());
        }
    }
    lines.join(" ")
}

/// Sentences of a summary, cut by the same segmenter as the articles.
pub fn split_sentences(text: &str) -> Vec<String> {
    crate::pipeline::segment::split_sentences(text)
        .into_iter()
        .map(|range| text[range].trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// English sentences that share most of a summary sentence's content words (up to three, in
/// article order): a cheap pointer from an LLM sentence back to where it came from.
fn supporting_sentences(sentence: &str, article: &EnglishArticle) -> Vec<usize> {
    let words = crate::pipeline::text::term_set(sentence);
    if words.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(usize, usize)> = article
        .sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let theirs = crate::pipeline::text::term_set(&s.text);
            (
                i,
                words
                    .iter()
                    .filter(|w| theirs.binary_search(w).is_ok())
                    .count(),
            )
        })
        .filter(|&(_, shared)| shared >= 2 && shared * 10 >= words.len() * 3)
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<usize> = scored.into_iter().take(3).map(|(i, _)| i).collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_never_cuts_an_item_and_respects_the_budget() {
        let counts = [30, 30, 30, 30, 30, 30, 30];
        let groups = pack(&counts, 100);
        assert_eq!(groups.iter().map(|g| g.len()).sum::<usize>(), counts.len());
        for g in &groups {
            assert!(counts[g.clone()].iter().sum::<usize>() <= 100);
        }
        assert_eq!(groups.len(), 3);
        // Balanced: 3 + 2 + 2 rather than 3 + 3 + 1.
        assert!(groups.iter().all(|g| g.len() >= 2), "{groups:?}");
    }

    #[test]
    fn pack_gives_an_oversized_item_its_own_group() {
        let groups = pack(&[10, 500, 10], 100);
        assert_eq!(groups, vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn pack_of_what_fits_is_one_group() {
        assert_eq!(pack(&[10, 20], 100), vec![0..2]);
        assert!(pack(&[], 100).is_empty());
    }

    #[test]
    fn tidy_drops_labels_and_list_markers() {
        assert_eq!(
            tidy("Summary: The river rose.\n- Two shelters opened."),
            "The river rose. Two shelters opened."
        );
        assert_eq!(tidy("1. First.\n2. Second."), "First. Second.");
        assert_eq!(tidy("Summary\nText."), "Text.");
    }

    #[test]
    fn split_sentences_keeps_each_sentence_whole() {
        assert_eq!(
            split_sentences("The river rose 3.2 metres. Two shelters opened!"),
            vec!["The river rose 3.2 metres.", "Two shelters opened!"]
        );
    }
}
