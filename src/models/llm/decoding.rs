//! One sequence's generation, step by step: the checks, penalty, sampling, stop tokens and
//! loop guard that turn next-token logits into a reply. Shared by one-by-one generation
//! ([`LlmGenerator::generate`](super::LlmGenerator::generate)) and batched generation
//! (`batch`), so that a sequence stops at the same token whichever runs it.

use candle_core::Tensor;
use candle_transformers::generation::{LogitsProcessor, Sampling};

use super::{repeated_tail, Generated, GenerationOptions, StopReason};
use crate::models::GenerateError;

pub(super) struct Decoding<'a> {
    prompt_len: usize,
    max_new_tokens: usize,
    context_len: usize,
    options: &'a GenerationOptions,
    stop: &'a [u32],
    processor: LogitsProcessor,
    ids: Vec<u32>,
    finished: Option<StopReason>,
}

impl<'a> Decoding<'a> {
    pub(super) fn new(
        prompt_len: usize,
        max_new_tokens: usize,
        context_len: usize,
        options: &'a GenerationOptions,
        stop: &'a [u32],
    ) -> Self {
        let sampling = match options.temperature {
            None => Sampling::ArgMax,
            Some(t) if t <= 0.0 => Sampling::ArgMax,
            Some(temperature) => match options.top_p {
                Some(p) => Sampling::TopP { p, temperature },
                None => Sampling::All { temperature },
            },
        };
        Decoding {
            prompt_len,
            max_new_tokens,
            context_len,
            options,
            stop,
            processor: LogitsProcessor::from_sampling(options.seed, sampling),
            ids: Vec::new(),
            finished: None,
        }
    }

    /// Takes the logits after the sequence's last token, `(vocab,)`; returns the token to feed
    /// next (at position [`Decoding::next_position`]), or `None` once the sequence has ended.
    pub(super) fn step(&mut self, logits: Tensor) -> Result<Option<u32>, GenerateError> {
        if self.finished.is_some() {
            return Ok(None);
        }
        if let Some(reason) = self.limit() {
            return self.finish(reason);
        }
        let mut logits = logits;
        let options = self.options;
        if options.repeat_penalty != 1.0 && !self.ids.is_empty() {
            let recent = &self.ids[self.ids.len().saturating_sub(options.repeat_last_n)..];
            logits = candle_transformers::utils::apply_repeat_penalty(
                &logits,
                options.repeat_penalty,
                recent,
            )?;
        }
        let next = self.processor.sample(&logits)?;
        if self.stop.contains(&next) && !options.exact_length {
            return self.finish(StopReason::EndOfTurn);
        }
        self.ids.push(next);
        if options.stop_on_loop && !options.exact_length {
            if let Some(keep) = repeated_tail(&self.ids) {
                self.ids.truncate(keep);
                return self.finish(StopReason::Loop);
            }
        }
        // A token the budget or the context would not let the model follow is not fed.
        match self.limit() {
            Some(reason) => self.finish(reason),
            None => Ok(Some(next)),
        }
    }

    /// The position the token returned by `step` is fed at.
    pub(super) fn next_position(&self) -> usize {
        self.prompt_len + self.ids.len() - 1
    }

    /// What was generated; `None` while the sequence runs.
    pub(super) fn into_generated(self) -> Option<Generated> {
        let stop = self.finished?;
        Some(Generated {
            ids: self.ids,
            stop,
        })
    }

    fn limit(&self) -> Option<StopReason> {
        if self.ids.len() >= self.max_new_tokens {
            Some(StopReason::Budget)
        } else if self.prompt_len + self.ids.len() >= self.context_len {
            Some(StopReason::Context)
        } else {
            None
        }
    }

    fn finish(&mut self, reason: StopReason) -> Result<Option<u32>, GenerateError> {
        self.finished = Some(reason);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Feeds logits whose argmax is always `best` until the sequence ends; returns its ids
    /// and why it stopped.
    fn run(options: &GenerationOptions, best: u32, stop: &[u32], max_new: usize) -> Generated {
        let mut logits = vec![0f32; 8];
        logits[best as usize] = 5.0;
        let mut decoding = Decoding::new(10, max_new, 4096, options, stop);
        let tensor = || Tensor::new(logits.as_slice(), &Device::Cpu).unwrap();
        while decoding.step(tensor()).unwrap().is_some() {}
        decoding.into_generated().unwrap()
    }

    #[test]
    fn exact_length_ignores_stop_tokens_and_loops_until_the_budget() {
        let free = GenerationOptions::plain_greedy();
        let stopped = run(&free, 7, &[7], 40);
        assert_eq!(
            (stopped.ids.len(), stopped.stop),
            (0, StopReason::EndOfTurn)
        );
        let guarded = GenerationOptions::default();
        assert_eq!(run(&guarded, 3, &[7], 40).stop, StopReason::Loop);

        for options in [free, guarded] {
            let exact = GenerationOptions {
                exact_length: true,
                ..options
            };
            let out = run(&exact, 7, &[7], 40);
            assert_eq!((out.ids.len(), out.stop), (40, StopReason::Budget));
            let out = run(&exact, 3, &[7], 40);
            assert_eq!((out.ids.len(), out.stop), (40, StopReason::Budget));
        }
    }
}
