//! Forced output lengths for the end-to-end benchmark (`examples/bench_run.rs`): a run on
//! random weights at the real models' sizes costs what a real run costs only if every model
//! writes what a real one would. Random translators almost never emit EOS and random LLMs
//! stop or loop at random, so the benchmark fixes each stage's output length from published
//! behaviour and turns the grounding re-asks off (real summaries mostly pass the check;
//! random ones never do). A random translation has about the real word count, but its words
//! are glued pieces that the LLM's tokenizer splits several times finer than English, so the
//! LLM counts and reads every text at English's tokens per word. `polybrief run` never sets
//! any of this.

use crate::pipeline::summarize::llm::LlmSummaryOptions;
use crate::pipeline::synthesize::SynthesisOptions;

/// Europarl v7 (statmt.org/europarl, "Size of the Corpus"): English 53,974,751 words in
/// 2,218,201 sentences; German 47,236,849 words in 2,176,537 sentences.
const EUROPARL_EN_WORDS: f64 = 53_974_751.0;
const EUROPARL_EN_SENTENCES: f64 = 2_218_201.0;
const EUROPARL_DE_WORDS: f64 = 47_236_849.0;
const EUROPARL_DE_SENTENCES: f64 = 2_176_537.0;
/// Tokens per English word of a ~100k–150k-entry byte-level BPE (OpenAI's rule of thumb,
/// "a token is about ¾ of a word"; Qwen2.5's tokenizer has 151,643 regular entries).
const TOKENS_PER_ENGLISH_WORD: f64 = 4.0 / 3.0;
/// What a key point adds to its sentence: "- " and citations like "[1][3]".
const POINT_MARKUP_TOKENS: f64 = 5.0;

/// The output length of each stage of a forced-length run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForcedLengths {
    /// Target tokens per source token of a translated sentence (EOS aside).
    pub translation_ratio: f64,
    /// Tokens of every summary reply (articles, parts and combined parts alike).
    pub summary_tokens: usize,
    /// Tokens of every story's key-points reply.
    pub synthesis_tokens: usize,
    /// LLM tokens per word of every text the LLM reads, counts or is prompted with.
    pub prompt_tokens_per_word: f64,
}

impl ForcedLengths {
    /// From published figures: English words per German word in Europarl sentence pairs as
    /// the translation ratio (a word ratio, used as the token ratio for every language);
    /// replies as long as the prompts ask (`sentences` per summary, `max_points` one-sentence
    /// points per story), with Europarl's mean English sentence length; prompts as many
    /// tokens per word as English takes.
    pub fn published(summary: &LlmSummaryOptions, synthesis: &SynthesisOptions) -> ForcedLengths {
        let en_sentence_words = EUROPARL_EN_WORDS / EUROPARL_EN_SENTENCES;
        let de_sentence_words = EUROPARL_DE_WORDS / EUROPARL_DE_SENTENCES;
        let sentence_tokens = en_sentence_words * TOKENS_PER_ENGLISH_WORD;
        ForcedLengths {
            translation_ratio: en_sentence_words / de_sentence_words,
            summary_tokens: (summary.sentences as f64 * sentence_tokens).ceil() as usize,
            synthesis_tokens: (synthesis.max_points as f64
                * (sentence_tokens + POINT_MARKUP_TOKENS))
                .ceil() as usize,
            prompt_tokens_per_word: TOKENS_PER_ENGLISH_WORD,
        }
    }

    /// The summarizer's options with the forced reply length and no strict re-asks.
    pub(crate) fn summary_options(&self, base: LlmSummaryOptions) -> LlmSummaryOptions {
        LlmSummaryOptions {
            strict_reasks: false,
            exact_reply_tokens: Some(self.summary_tokens),
            ..base
        }
    }

    /// Synthesis's options with the forced reply length.
    pub(crate) fn synthesis_options(&self, base: SynthesisOptions) -> SynthesisOptions {
        SynthesisOptions {
            exact_reply_tokens: Some(self.synthesis_tokens),
            ..base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_lengths_follow_the_prompts_asks_and_europarls_sentences() {
        let forced =
            ForcedLengths::published(&LlmSummaryOptions::default(), &SynthesisOptions::default());
        // 24.33 English words per sentence, 21.70 German: 1.12 English words per German word.
        assert!(
            (forced.translation_ratio - 1.121).abs() < 0.001,
            "{forced:?}"
        );
        // 3 sentences × 24.33 words × 4/3 tokens = 97.3; 6 points × (32.4 + 5) = 224.6.
        assert_eq!((forced.summary_tokens, forced.synthesis_tokens), (98, 225));
        let one = ForcedLengths::published(
            &LlmSummaryOptions {
                sentences: 1,
                ..Default::default()
            },
            &SynthesisOptions {
                max_points: 1,
                ..Default::default()
            },
        );
        assert_eq!((one.summary_tokens, one.synthesis_tokens), (33, 38));
    }

    #[test]
    fn forced_options_turn_reasks_off_and_keep_the_planned_budgets() {
        let forced =
            ForcedLengths::published(&LlmSummaryOptions::default(), &SynthesisOptions::default());
        let summary = forced.summary_options(LlmSummaryOptions::default());
        assert!(!summary.strict_reasks);
        assert_eq!(summary.exact_reply_tokens, Some(98));
        assert_eq!(
            summary.max_reply_tokens, 200,
            "the context is still planned for 200"
        );
        let synthesis = forced.synthesis_options(SynthesisOptions::default());
        assert_eq!(synthesis.exact_reply_tokens, Some(225));
        assert_eq!(synthesis.max_new_tokens, 400);
    }
}
