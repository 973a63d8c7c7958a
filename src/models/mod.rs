//! Everything that knows about model weights: which models a run needs (`catalog`), getting
//! them from the hub or a local folder (`hub`), and the architectures that run them.

pub mod catalog;
pub mod cpu_level;
pub mod embedder;
mod exp_sum;
pub mod generate;
mod group_attention;
mod head_attention;
pub mod hub;
mod huge_pages;
pub mod int8;
pub mod llm;
pub mod marian;
mod marian_encode;
mod marian_step;
pub mod marian_tokenizer;
pub(crate) mod model_ref;
mod panels;
pub mod precision;
mod prompt_attention;
mod q4k_tiles;
mod q6k_tiles;
mod q8_0_avx2_tiles;
mod q8_0_rows;
mod q8_0_tiles;
mod q8_0_vnni_tiles;
mod q8k_rows;
mod quant_blocks;
pub(crate) mod qwen2_batched;
mod row_kernels;
pub(crate) mod row_linear;
pub mod safetensors_file;
mod tile_items;

/// Why a model could not produce text.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Other(String),
    /// A stop was requested (Ctrl-C, SIGTERM): generation ended between two steps.
    #[error("interrupted")]
    Interrupted,
}

/// `Err(Interrupted)` once a stop was requested: called once per generation step.
pub(crate) fn check_interrupt() -> Result<(), GenerateError> {
    if crate::interrupt::requested() {
        Err(GenerateError::Interrupted)
    } else {
        Ok(())
    }
}

/// One prompt of [`TextGenerator::chat_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRequest {
    pub system: String,
    pub user: String,
    pub max_new_tokens: usize,
}

/// An instruct model that answers a chat prompt: the LLM behind summaries and key points.
/// Implemented by `llm::LlmGenerator`; stages take `&mut dyn TextGenerator` so they can be
/// tested with any implementation.
pub trait TextGenerator {
    /// The model's catalog id and revision, as shown in the brief.
    fn model_name(&self) -> String;

    /// The assistant's reply to one system and one user message, generated deterministically
    /// (greedy or seeded), stopping at the model's end-of-turn token or `max_new_tokens`.
    fn chat(
        &mut self,
        system: &str,
        user: &str,
        max_new_tokens: usize,
    ) -> Result<String, GenerateError>;

    /// The replies to several independent prompts, in order, each exactly what `chat` gives
    /// for it. The outer error ends the whole batch (a stop was requested, the model failed);
    /// an inner one is that prompt's own (too long for the context). The default asks one by
    /// one; `llm::LlmGenerator` decodes up to its batch width together.
    fn chat_batch(
        &mut self,
        requests: &[ChatRequest],
    ) -> Result<Vec<Result<String, GenerateError>>, GenerateError> {
        let mut replies = Vec::with_capacity(requests.len());
        for r in requests {
            match self.chat(&r.system, &r.user, r.max_new_tokens) {
                Err(GenerateError::Interrupted) => return Err(GenerateError::Interrupted),
                reply => replies.push(reply),
            }
        }
        Ok(replies)
    }

    /// How many tokens `text` takes, to fit prompts into the context window.
    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError>;

    /// The context window in tokens (prompt and reply together).
    fn context_len(&self) -> usize;
}

/// Turns texts into vectors whose cosine similarity says how alike their meaning is: a small
/// local sentence-embedding model (`embedder::SentenceEmbedder`). Without one,
/// grouping is lexical (see `pipeline::synthesize::GroupingMethod`).
pub trait Embedder {
    /// The model's catalog id and revision, as shown in the brief.
    fn model_name(&self) -> String;
    /// One vector per text, all of the same length.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, GenerateError>;
}
