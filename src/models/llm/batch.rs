//! Batched generation: several prompts prefilled and decoded together on
//! [`Qwen2Batched`](crate::models::qwen2_batched::Qwen2Batched), each with its own position,
//! KV cache, budget and stop, joined as others finish (at most `LlmOptions::batch` at once).
//!
//! Each sequence is prefilled alone, as in one-by-one generation, except for the tokens its
//! prompt begins with that a running sequence's prompt begins with too (the chat template, the
//! system message and the instructions of one prompt template): their keys and values are
//! copied from that sequence's cache, where the network makes them the same bits however a
//! prompt is chunked ([`Qwen2Batched::prefixes_reusable`]). Decode steps stack the current
//! token of every running sequence into one forward pass, whose rows do not depend on each
//! other, so every reply is the one generating it alone would give.

use std::time::{Duration, Instant};

use candle_core::Tensor;

use super::decoding::Decoding;
use super::{Generated, GenerationOptions, LlmGenerator, Timings};
use crate::models::qwen2_batched::{Qwen2Batched, SequenceCache};
use crate::models::{check_interrupt, GenerateError};

/// One running sequence.
struct Running<'a> {
    index: usize,
    cache: SequenceCache,
    decoding: Decoding<'a>,
    /// The token to feed next.
    next: u32,
}

/// Shared prompt tokens below which a sequence is prefilled from scratch: copying a few
/// positions saves less than it costs to look.
const MIN_REUSED_PREFIX: usize = 8;

/// Prefills `prompt` into a fresh cache sized for it and its reply; returns the cache and
/// the logits after the prompt.
pub(super) fn prefill(
    model: &Qwen2Batched,
    prompt: &[u32],
    capacity: usize,
    chunk: usize,
) -> Result<(SequenceCache, Tensor), GenerateError> {
    prefill_after(model, None, prompt, capacity, chunk)
}

/// [`prefill`], the first `reused` positions copied from `source` (whose prompt begins with
/// the same tokens) rather than computed.
fn prefill_after(
    model: &Qwen2Batched,
    source: Option<(&SequenceCache, usize)>,
    prompt: &[u32],
    capacity: usize,
    chunk: usize,
) -> Result<(SequenceCache, Tensor), GenerateError> {
    if prompt.is_empty() {
        return Err(GenerateError::Other("empty prompt".to_string()));
    }
    let mut cache = model.new_cache(capacity.max(prompt.len()))?;
    let mut fed = 0;
    if let Some((source, reused)) = source {
        model.copy_prefix(source, &mut cache, reused)?;
        fed = reused;
    }
    let mut logits = None;
    for piece in prompt[fed..].chunks(chunk.max(1)) {
        check_interrupt()?;
        logits = Some(model.prefill(&mut cache, piece)?);
    }
    Ok((cache, logits.expect("at least one prompt token is fed")))
}

/// The running sequence whose prompt shares the most leading tokens with `prompt`, and how
/// many of them can be reused: all but the prompt's last token, whose logits are needed.
fn longest_shared_prefix<'r>(
    running: &'r [Running<'_>],
    prompts: &[Vec<u32>],
    prompt: &[u32],
) -> Option<(&'r SequenceCache, usize)> {
    running
        .iter()
        .map(|r| {
            let shared = prompts[r.index]
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count();
            (&r.cache, shared.min(prompt.len().saturating_sub(1)))
        })
        .max_by_key(|&(_, shared)| shared)
        .filter(|&(_, shared)| shared >= MIN_REUSED_PREFIX)
}

impl LlmGenerator {
    /// Generates a reply to each of `prompts` (`max_new_tokens[i]` for prompt `i`), each
    /// stopping at any of `stop`, as [`LlmGenerator::generate`] would one after another.
    /// Networks without a batched implementation run them one by one.
    pub fn generate_batch(
        &mut self,
        prompts: &[Vec<u32>],
        max_new_tokens: &[usize],
        options: &GenerationOptions,
        stop: &[u32],
    ) -> Result<Vec<Generated>, GenerateError> {
        Ok(self
            .generate_batch_reusing(prompts, max_new_tokens, options, stop)?
            .0)
    }

    /// [`LlmGenerator::generate_batch`], and for each prompt how many of its leading tokens
    /// were taken from another sequence's cache rather than computed.
    pub(super) fn generate_batch_reusing(
        &mut self,
        prompts: &[Vec<u32>],
        max_new_tokens: &[usize],
        options: &GenerationOptions,
        stop: &[u32],
    ) -> Result<(Vec<Generated>, Vec<usize>), GenerateError> {
        let mut reused = vec![0; prompts.len()];
        if prompts.len() != max_new_tokens.len() {
            return Err(GenerateError::Other(format!(
                "{} budgets for {} prompts",
                max_new_tokens.len(),
                prompts.len()
            )));
        }
        if !matches!(self.network, super::Network::Qwen2Batched(_)) {
            let generated = prompts
                .iter()
                .zip(max_new_tokens)
                .map(|(p, &n)| self.generate(p, n, options, stop))
                .collect::<Result<_, _>>()?;
            return Ok((generated, reused));
        }
        let super::Network::Qwen2Batched(model) = &self.network else {
            unreachable!("checked above")
        };
        let (context_len, chunk) = (self.context_len, self.options.prefill_chunk);
        let width = self.options.batch.max(1);
        let mut results: Vec<Option<Generated>> = vec![None; prompts.len()];
        let mut waiting = (0..prompts.len()).peekable();
        let mut running: Vec<Running<'_>> = Vec::with_capacity(width.min(prompts.len()));
        let mut timings = Timings::default();
        let mut prompt_time = Duration::ZERO;
        let started = Instant::now();
        loop {
            // Fill the batch: prefill waiting prompts, take their first token.
            while running.len() < width {
                let Some(index) = waiting.next() else { break };
                let prompt = &prompts[index];
                let prefill_started = Instant::now();
                // Positions reach prompt + reply − 1 (the last token is never fed).
                let capacity = (prompt.len() + max_new_tokens[index]).min(context_len);
                let source = model
                    .prefixes_reusable()
                    .then(|| longest_shared_prefix(&running, prompts, prompt))
                    .flatten();
                reused[index] = source.map_or(0, |(_, n)| n);
                let (cache, logits) = prefill_after(model, source, prompt, capacity, chunk)?;
                prompt_time += prefill_started.elapsed();
                timings.prompt_tokens += prompt.len();
                timings.reused_prompt_tokens += reused[index];
                let mut decoding = Decoding::new(
                    prompt.len(),
                    max_new_tokens[index],
                    context_len,
                    options,
                    stop,
                );
                match decoding.step(logits)? {
                    Some(next) => running.push(Running {
                        index,
                        cache,
                        decoding,
                        next,
                    }),
                    None => results[index] = decoding.into_generated(),
                }
            }
            if running.is_empty() {
                break;
            }
            check_interrupt()?;
            let tokens: Vec<u32> = running.iter().map(|r| r.next).collect();
            debug_assert!(running
                .iter()
                .all(|r| r.decoding.next_position() == r.cache.len()));
            let mut caches: Vec<&mut SequenceCache> =
                running.iter_mut().map(|r| &mut r.cache).collect();
            let logits = model.decode(&mut caches, &tokens)?;
            timings.decode_steps += tokens.len();
            let mut still = Vec::with_capacity(running.len());
            for (row, mut r) in running.into_iter().enumerate() {
                match r.decoding.step(logits.get(row)?)? {
                    Some(next) => {
                        r.next = next;
                        still.push(r);
                    }
                    None => results[r.index] = r.decoding.into_generated(),
                }
            }
            running = still;
        }
        let results: Vec<Generated> = results
            .into_iter()
            .map(|r| r.expect("every sequence ran to its end"))
            .collect();
        timings.generated_tokens = results.iter().map(|g| g.ids.len()).sum();
        timings.prompt_time = prompt_time;
        timings.generation_time = started.elapsed().saturating_sub(prompt_time);
        self.timings = timings;
        Ok((results, reused))
    }
}
