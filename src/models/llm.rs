//! The local instruct LLM behind summaries: loads a GGUF (Qwen2/Qwen2.5, Qwen3, Llama) or an
//! unquantized Qwen2 safetensors checkpoint, the model's own `tokenizer.json`, renders the
//! model's own chat template, and generates deterministically with stop tokens, a token budget
//! and a repetition guard. Implements [`TextGenerator`].
//!
//! The networks are candle-transformers' (`quantized_qwen3`, `quantized_llama`, `qwen2`) and,
//! for Qwen2 GGUFs, `models::qwen2_batched` (which follows candle's `quantized_qwen2` and
//! decodes several sequences at once: [`LlmGenerator::generate_batch`]); they follow
//! transformers' `Qwen2ForCausalLM`, `Qwen3ForCausalLM` and `LlamaForCausalLM`
//! (modeling_qwen2.py, modeling_qwen3.py, modeling_llama.py) as laid out by llama.cpp's
//! convert_hf_to_gguf.py; parity with
//! transformers is pinned by tests/integration/llm_parity.rs. Chat templates are rendered with
//! minijinja set up like transformers' `apply_chat_template` environment
//! (utils/chat_template_utils.py: trim_blocks, lstrip_blocks, `raise_exception`,
//! `strftime_now`, Python string methods).
//!
//! No I/O besides reading the files named; getting them from the hub is `models::hub`'s job.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{quantized_llama, quantized_qwen3, qwen2};
use serde::Deserialize;

use super::qwen2_batched::Qwen2Batched;
use super::{ChatRequest, GenerateError, TextGenerator};
use crate::workload::{self, Work};

mod batch;
mod decoding;

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a readable GGUF file ({reason}); re-download it or pass another --gguf"
    )]
    Gguf { path: PathBuf, reason: String },
    #[error(
        "{path}: model architecture `{arch}` is not supported; polybrief runs GGUF models of \
         the qwen2 (Qwen2, Qwen2.5), qwen3 and llama architectures"
    )]
    UnsupportedArchitecture { path: PathBuf, arch: String },
    #[error("cannot load the weights in {path}: {reason}")]
    Weights { path: PathBuf, reason: String },
    #[error("{path} is not a usable config.json: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("cannot load the tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error(
        "no chat template found: neither {searched} has one; pass the model's \
         tokenizer_config.json (it holds `chat_template`)"
    )]
    NoChatTemplate { searched: String },
    #[error("the chat template from {origin} does not compile: {reason}")]
    ChatTemplate { origin: String, reason: String },
    #[error("the model has no end-of-turn token that the tokenizer knows ({checked}); generation could never stop early")]
    NoStopToken { checked: String },
}

/// The files of one model. The tokenizer always comes from `tokenizer.json`; the chat template
/// from `tokenizer_config.json` (or a `chat_template.jinja` beside it or beside the tokenizer),
/// else from the GGUF's `tokenizer.chat_template`.
#[derive(Clone, Debug)]
pub struct LlmFiles {
    pub weights: Weights,
    pub tokenizer: PathBuf,
    pub tokenizer_config: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub enum Weights {
    /// A quantized (or f16/f32) GGUF file.
    Gguf(PathBuf),
    /// An unquantized Qwen2 checkpoint: its config.json and safetensors shards.
    Safetensors {
        config: PathBuf,
        files: Vec<PathBuf>,
    },
}

/// How text is generated. The default is greedy (deterministic) with a mild repetition penalty
/// and a loop guard; a temperature switches to seeded sampling, still reproducible.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationOptions {
    /// `None`: greedy (argmax). `Some(t)`: sample at temperature `t` from `seed`.
    pub temperature: Option<f64>,
    /// Nucleus sampling threshold, with a temperature.
    pub top_p: Option<f64>,
    pub seed: u64,
    /// Divides positive (multiplies negative) logits of tokens among the last `repeat_last_n`
    /// *generated* tokens; 1.0 turns it off. The prompt is not penalised: a summary must be
    /// free to repeat the article's names and numbers.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    /// Stop (and drop the repeats) when the reply ends in a block of tokens repeated back to back.
    pub stop_on_loop: bool,
    /// Every reply runs to its `max_new_tokens` (the context permitting): stop tokens and the
    /// loop guard end nothing. Only benchmarks set it (`examples/bench_run.rs`): random
    /// weights loop or stop at random, and must decode the lengths a real model's replies have.
    pub exact_length: bool,
    /// Every text counts as, and every chat prompt is fed as, `ceil(words × this)` tokens
    /// (the chat template's own tokens aside). Only benchmarks set it: the text a random
    /// translator writes has real word counts but runs of glued pieces that a tokenizer
    /// splits into several times the tokens real English takes.
    pub prompt_tokens_per_word: Option<f64>,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions {
            temperature: None,
            top_p: None,
            seed: 299_792_458,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            stop_on_loop: true,
            exact_length: false,
            prompt_tokens_per_word: None,
        }
    }
}

impl GenerationOptions {
    /// Argmax only: no penalty, no loop guard. What transformers' greedy `generate` does, and
    /// so what the parity tests compare.
    pub fn plain_greedy() -> Self {
        GenerationOptions {
            repeat_penalty: 1.0,
            stop_on_loop: false,
            ..Default::default()
        }
    }
}

/// Settings of a loaded model that are not about one generation.
#[derive(Clone, Debug)]
pub struct LlmOptions {
    /// Upper bound on the context window used, whatever the model supports: prompt processing
    /// on a CPU is slow and small models lose the thread on long inputs, so long articles are
    /// summarized in parts instead (the summarizer reads `context_len()`).
    pub max_context: usize,
    /// The prompt is fed in pieces of this many tokens, bounding the attention matrices' memory.
    pub prefill_chunk: usize,
    /// Most sequences decoded together by `generate_batch` (each holds a KV cache of its
    /// prompt and reply: for Qwen2.5-1.5B, 28 KiB per token).
    pub batch: usize,
    pub generation: GenerationOptions,
}

/// Sequences decoded together by default: where 2-core decoding stops gaining (see
/// scripts/bench/README.md), and a few hundred MB of KV caches for the catalog's summarizer.
pub const DEFAULT_BATCH: usize = 8;

impl Default for LlmOptions {
    fn default() -> Self {
        LlmOptions {
            max_context: 4096,
            prefill_chunk: 512,
            batch: DEFAULT_BATCH,
            generation: GenerationOptions::default(),
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-turn token.
    EndOfTurn,
    /// `max_new_tokens` reached.
    Budget,
    /// The context window is full.
    Context,
    /// The reply ended in a loop; the repeats were dropped.
    Loop,
}

/// Generated token ids and why generation ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub ids: Vec<u32>,
    pub stop: StopReason,
}

/// Time spent on the last generation, for logs and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Of `prompt_tokens`, those whose keys and values were copied from another sequence of
    /// the batch whose prompt begins with the same tokens.
    pub reused_prompt_tokens: usize,
    pub prompt_time: Duration,
    pub generated_tokens: usize,
    /// Single-token forward passes in `generation_time` (one fewer than the tokens generated:
    /// the first comes from the prompt's logits).
    pub decode_steps: usize,
    pub generation_time: Duration,
}

impl Timings {
    /// Prompt tokens computed (not reused) per second of prompt time.
    pub fn prompt_tokens_per_second(&self) -> f64 {
        (self.prompt_tokens - self.reused_prompt_tokens) as f64
            / self.prompt_time.as_secs_f64().max(1e-9)
    }
    /// Decoding speed: single-token forward passes per second.
    pub fn generated_tokens_per_second(&self) -> f64 {
        self.decode_steps as f64 / self.generation_time.as_secs_f64().max(1e-9)
    }
}

/// The network, whichever architecture the file holds.
enum Network {
    /// Qwen2 GGUFs: several sequences per decode step, each with its own cache.
    Qwen2Batched(Qwen2Batched),
    /// The others: one sequence, in the network's own KV cache.
    Single(SingleNetwork),
}

/// candle-transformers' networks, which hold the KV cache of one sequence.
enum SingleNetwork {
    Qwen3Quantized(quantized_qwen3::ModelWeights),
    LlamaQuantized(quantized_llama::ModelWeights),
    Qwen2(qwen2::ModelForCausalLM),
}

impl SingleNetwork {
    /// Logits of the last position of `ids`, fed at position `pos` (the KV cache holds `pos` tokens).
    fn forward(&mut self, ids: &[u32], pos: usize, device: &Device) -> candle_core::Result<Tensor> {
        let input = Tensor::new(ids, device)?.unsqueeze(0)?;
        let logits = match self {
            SingleNetwork::Qwen3Quantized(m) => m.forward(&input, pos)?,
            SingleNetwork::LlamaQuantized(m) => m.forward(&input, pos)?,
            SingleNetwork::Qwen2(m) => m.forward(&input, pos)?,
        };
        logits.flatten_all()?.to_dtype(DType::F32)
    }

    fn clear_kv_cache(&mut self) {
        match self {
            SingleNetwork::Qwen3Quantized(m) => m.clear_kv_cache(),
            SingleNetwork::LlamaQuantized(m) => m.clear_kv_cache(),
            SingleNetwork::Qwen2(m) => m.clear_kv_cache(),
        }
    }
}

/// The model's chat template, compiled once.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    origin: String,
    bos_token: String,
    eos_token: String,
}

/// One chat message as chat templates see it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChatMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
}

impl ChatTemplate {
    /// Compiles `source` in an environment that behaves like transformers' (Jinja2 with
    /// trim_blocks and lstrip_blocks, Python string methods, `raise_exception`, `strftime_now`).
    pub fn new(
        source: &str,
        origin: String,
        bos_token: String,
        eos_token: String,
    ) -> Result<Self, LlmError> {
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        env.add_function("strftime_now", |format: String| -> String {
            chrono::Local::now().format(&format).to_string()
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| LlmError::ChatTemplate {
                origin: origin.clone(),
                reason: e.to_string(),
            })?;
        Ok(ChatTemplate {
            env,
            origin,
            bos_token,
            eos_token,
        })
    }

    /// The prompt text for `messages`, ending with the assistant's turn opened
    /// (`add_generation_prompt`). Thinking is switched off for models whose template knows
    /// `enable_thinking` (Qwen3): a summary wants the answer, not the reasoning.
    pub fn render(&self, messages: &[ChatMessage<'_>]) -> Result<String, GenerateError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| GenerateError::Other(e.to_string()))?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                enable_thinking => false,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| {
                GenerateError::Other(format!("chat template from {} failed: {e:#}", self.origin))
            })
    }
}

/// An instruct model ready to answer chat prompts.
pub struct LlmGenerator {
    network: Network,
    tokenizer: tokenizers::Tokenizer,
    template: ChatTemplate,
    stop_ids: Vec<u32>,
    context_len: usize,
    architecture: String,
    name: String,
    device: Device,
    options: LlmOptions,
    timings: Timings,
}

/// Token strings that end a turn in the model families we run (checked against the vocabulary).
const END_OF_TURN_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "</s>",
];

impl LlmGenerator {
    /// Loads a GGUF model with its tokenizer (and optionally tokenizer_config.json).
    pub fn from_gguf(
        gguf: &Path,
        tokenizer: &Path,
        tokenizer_config: Option<&Path>,
        device: &Device,
    ) -> Result<Self, LlmError> {
        let files = LlmFiles {
            weights: Weights::Gguf(gguf.to_path_buf()),
            tokenizer: tokenizer.to_path_buf(),
            tokenizer_config: tokenizer_config.map(Path::to_path_buf),
        };
        Self::load(&files, device, LlmOptions::default())
    }

    /// Loads whatever `files` names.
    pub fn load(files: &LlmFiles, device: &Device, options: LlmOptions) -> Result<Self, LlmError> {
        let tokenizer = tokenizers::Tokenizer::from_file(&files.tokenizer).map_err(|e| {
            LlmError::Tokenizer {
                path: files.tokenizer.clone(),
                reason: e.to_string(),
            }
        })?;
        let tokenizer_config = match &files.tokenizer_config {
            Some(path) => Some(read_json::<TokenizerConfig>(path)?),
            None => None,
        };

        let mut gguf_template = None;
        let mut gguf_eos = None;
        let (network, architecture, model_context, config_eos, name) = match &files.weights {
            Weights::Gguf(path) => {
                let file = File::open(path).map_err(|source| LlmError::Read {
                    path: path.clone(),
                    source,
                })?;
                let mut reader = BufReader::new(file);
                let mut content =
                    gguf_file::Content::read(&mut reader).map_err(|e| LlmError::Gguf {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                let md_string = |key: &str| {
                    content
                        .metadata
                        .get(key)
                        .and_then(|v| v.to_string().ok())
                        .cloned()
                };
                let arch = md_string("general.architecture").unwrap_or_default();
                gguf_template = md_string("tokenizer.chat_template");
                gguf_eos = content
                    .metadata
                    .get("tokenizer.ggml.eos_token_id")
                    .and_then(|v| v.to_u32().ok());
                let context = content
                    .metadata
                    .get(&format!("{arch}.context_length"))
                    .and_then(|v| v.to_u32().ok())
                    .map(|c| c as usize);
                let weights_err = |e: candle_core::Error| LlmError::Weights {
                    path: path.clone(),
                    reason: e.to_string(),
                };
                let network = match arch.as_str() {
                    "qwen2" => Network::Qwen2Batched(
                        Qwen2Batched::from_gguf(&content, &mut reader, device)
                            .map_err(weights_err)?,
                    ),
                    "qwen3" => {
                        // quantized_qwen3 builds its RoPE tables in the dtype named by
                        // `general.dtype`, f16 when absent (as in llama.cpp's files); f16
                        // cannot hold positions past 2048 exactly. Ask for f32.
                        content
                            .metadata
                            .insert("general.dtype".to_string(), gguf_file::Value::U32(0));
                        Network::Single(SingleNetwork::Qwen3Quantized(
                            quantized_qwen3::ModelWeights::from_gguf(content, &mut reader, device)
                                .map_err(weights_err)?,
                        ))
                    }
                    "llama" => Network::Single(SingleNetwork::LlamaQuantized(
                        quantized_llama::ModelWeights::from_gguf(content, &mut reader, device)
                            .map_err(weights_err)?,
                    )),
                    _ => {
                        return Err(LlmError::UnsupportedArchitecture {
                            path: path.clone(),
                            arch,
                        })
                    }
                };
                let context = match arch.as_str() {
                    // quantized_llama precomputes RoPE for 4096 positions only.
                    "llama" => Some(context.unwrap_or(4096).min(4096)),
                    _ => context,
                };
                (network, arch, context, Vec::new(), file_stem(path))
            }
            Weights::Safetensors {
                config,
                files: shards,
            } => {
                let hub: HubQwen2Config = read_json(config)?;
                let cfg = hub.to_candle();
                // SAFETY: the files are memory-mapped read-only; like every mmap user we rely on
                // no one truncating them while the model is loaded.
                let vb = unsafe { VarBuilder::from_mmaped_safetensors(shards, DType::F32, device) }
                    .map_err(|e| LlmError::Weights {
                        path: shards.first().cloned().unwrap_or_default(),
                        reason: e.to_string(),
                    })?;
                let model =
                    qwen2::ModelForCausalLM::new(&cfg, vb).map_err(|e| LlmError::Weights {
                        path: config.clone(),
                        reason: e.to_string(),
                    })?;
                let name = config
                    .parent()
                    .map(file_stem)
                    .unwrap_or_else(|| "qwen2".to_string());
                (
                    Network::Single(SingleNetwork::Qwen2(model)),
                    "qwen2".to_string(),
                    Some(hub.max_position_embeddings),
                    hub.eos_ids(),
                    name,
                )
            }
        };

        let token_string = |id: u32| tokenizer.id_to_token(id).unwrap_or_default();
        let eos_token = tokenizer_config
            .as_ref()
            .and_then(|c| c.eos_token.as_ref().map(|t| t.content().to_string()))
            .or_else(|| gguf_eos.map(token_string))
            .unwrap_or_default();
        let bos_token = tokenizer_config
            .as_ref()
            .and_then(|c| c.bos_token.as_ref().map(|t| t.content().to_string()))
            .unwrap_or_default();

        let (template_source, template_origin) =
            find_chat_template(files, tokenizer_config.as_ref(), gguf_template)?;
        let template = ChatTemplate::new(
            &template_source,
            template_origin,
            bos_token,
            eos_token.clone(),
        )?;

        let mut stop_ids: Vec<u32> = Vec::new();
        let mut push = |id: Option<u32>| {
            if let Some(id) = id {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        };
        push(tokenizer.token_to_id(&eos_token));
        push(gguf_eos);
        for id in config_eos {
            push(Some(id));
        }
        for t in END_OF_TURN_TOKENS {
            push(tokenizer.token_to_id(t));
        }
        if stop_ids.is_empty() {
            return Err(LlmError::NoStopToken {
                checked: END_OF_TURN_TOKENS.join(", "),
            });
        }

        let context_len = model_context
            .unwrap_or(options.max_context)
            .min(options.max_context);
        Ok(LlmGenerator {
            network,
            tokenizer,
            template,
            stop_ids,
            context_len,
            architecture,
            name,
            device: device.clone(),
            options,
            timings: Timings::default(),
        })
    }

    /// Sets the name shown in the brief (the catalog id and revision).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The GGUF architecture (`qwen2`, `qwen3`, `llama`).
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// Token ids that end a reply.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    pub fn options(&self) -> &LlmOptions {
        &self.options
    }

    pub fn set_generation_options(&mut self, generation: GenerationOptions) {
        self.options.generation = generation;
    }

    /// Time spent by the last `chat` or `generate`.
    pub fn last_timings(&self) -> Timings {
        self.timings
    }

    /// The prompt text for one system and one user message (no system message when `system`
    /// is empty: the template then inserts the model's default, as transformers does).
    pub fn render_prompt(&self, system: &str, user: &str) -> Result<String, GenerateError> {
        let mut messages = Vec::with_capacity(2);
        if !system.is_empty() {
            messages.push(ChatMessage {
                role: "system",
                content: system,
            });
        }
        messages.push(ChatMessage {
            role: "user",
            content: user,
        });
        self.template.render(&messages)
    }

    /// The prompt's token ids, as transformers' `apply_chat_template(..., tokenize=True)` gives
    /// them: the rendered text encoded without adding special tokens (the template has them).
    pub fn prompt_ids(&self, system: &str, user: &str) -> Result<Vec<u32>, GenerateError> {
        let text = self.render_prompt(system, user)?;
        self.encode(&text)
    }

    /// [`LlmGenerator::prompt_ids`], resized to `prompt_tokens_per_word` when that is set:
    /// the ids' values do not change what a forward pass costs, their number does.
    fn chat_prompt_ids(&self, system: &str, user: &str) -> Result<Vec<u32>, GenerateError> {
        let ids = self.prompt_ids(system, user)?;
        let Some(per_word) = self.options.generation.prompt_tokens_per_word else {
            return Ok(ids);
        };
        let markup = self.prompt_ids("", "")?.len();
        let want = markup + words_as_tokens(system, per_word) + words_as_tokens(user, per_word);
        Ok(ids.iter().copied().cycle().take(want).collect())
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, GenerateError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens dropped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, GenerateError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| GenerateError::Tokenizer(e.to_string()))
    }

    /// Runs `ids` from an empty cache (in `prefill_chunk` pieces) and returns the logits of the
    /// last position.
    pub fn last_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>, GenerateError> {
        Ok(self.prefill(ids)?.to_vec1::<f32>()?)
    }

    fn prefill(&mut self, ids: &[u32]) -> Result<Tensor, GenerateError> {
        if ids.is_empty() {
            return Err(GenerateError::Other("empty prompt".to_string()));
        }
        let chunk = self.options.prefill_chunk.max(1);
        let network = match &mut self.network {
            Network::Qwen2Batched(model) => {
                return Ok(batch::prefill(model, ids, ids.len(), chunk)?.1);
            }
            Network::Single(network) => network,
        };
        network.clear_kv_cache();
        let mut logits = None;
        let mut pos = 0;
        for piece in ids.chunks(chunk) {
            super::check_interrupt()?;
            logits = Some(network.forward(piece, pos, &self.device)?);
            pos += piece.len();
        }
        Ok(logits.expect("ids is not empty"))
    }

    /// Generates up to `max_new_tokens` after `prompt`, stopping at any of `stop`. On a
    /// batched network this is [`LlmGenerator::generate_batch`] of one prompt.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_new_tokens: usize,
        options: &GenerationOptions,
        stop: &[u32],
    ) -> Result<Generated, GenerateError> {
        if matches!(self.network, Network::Qwen2Batched(_)) {
            let mut out =
                self.generate_batch(&[prompt.to_vec()], &[max_new_tokens], options, stop)?;
            return Ok(out.remove(0));
        }
        let started = Instant::now();
        let mut logits = self.prefill(prompt)?;
        let prompt_time = started.elapsed();
        let started = Instant::now();
        let mut decoding = decoding::Decoding::new(
            prompt.len(),
            max_new_tokens,
            self.context_len,
            options,
            stop,
        );
        let mut decode_steps = 0;
        while let Some(next) = {
            super::check_interrupt()?;
            decoding.step(logits)?
        } {
            let Network::Single(network) = &mut self.network else {
                unreachable!("batched networks return above")
            };
            logits = network.forward(&[next], decoding.next_position(), &self.device)?;
            decode_steps += 1;
        }
        let generated = decoding
            .into_generated()
            .expect("the loop ends when the sequence does");
        self.timings = Timings {
            prompt_tokens: prompt.len(),
            reused_prompt_tokens: 0,
            prompt_time,
            generated_tokens: generated.ids.len(),
            decode_steps,
            generation_time: started.elapsed(),
        };
        Ok(generated)
    }
}

impl TextGenerator for LlmGenerator {
    fn model_name(&self) -> String {
        self.name.clone()
    }

    fn chat(
        &mut self,
        system: &str,
        user: &str,
        max_new_tokens: usize,
    ) -> Result<String, GenerateError> {
        let request = ChatRequest {
            system: system.to_string(),
            user: user.to_string(),
            max_new_tokens,
        };
        self.chat_batch(std::slice::from_ref(&request))?
            .pop()
            .expect("one reply per request")
    }

    fn chat_batch(
        &mut self,
        requests: &[ChatRequest],
    ) -> Result<Vec<Result<String, GenerateError>>, GenerateError> {
        // Prompts that do not fit are answered with their error; the others run together.
        let mut replies: Vec<Option<Result<String, GenerateError>>> = Vec::new();
        let (mut prompts, mut budgets, mut slots) = (Vec::new(), Vec::new(), Vec::new());
        for r in requests {
            let prompt = self.chat_prompt_ids(&r.system, &r.user)?;
            if prompt.len() >= self.context_len {
                replies.push(Some(Err(GenerateError::Other(format!(
                    "the prompt takes {} tokens but {} has a context of {} tokens",
                    prompt.len(),
                    self.name,
                    self.context_len
                )))));
                continue;
            }
            slots.push(replies.len());
            replies.push(None);
            prompts.push(prompt);
            budgets.push(r.max_new_tokens);
        }
        let options = self.options.generation.clone();
        let stop = self.stop_ids.clone();
        let (generated, reused) =
            self.generate_batch_reusing(&prompts, &budgets, &options, &stop)?;
        let t = self.timings;
        log::debug!(
            "{}: {} prompts, {} prompt tokens ({} reused) at {:.1}/s, {} generated at {:.1}/s, stopped by {:?}",
            self.name,
            prompts.len(),
            t.prompt_tokens,
            t.reused_prompt_tokens,
            t.prompt_tokens_per_second(),
            t.generated_tokens,
            t.generated_tokens_per_second(),
            generated.iter().map(|g| g.stop).collect::<Vec<_>>()
        );
        workload::record(|| Work::Generation {
            batch: self.options.batch.max(1),
            prompt_tokens: prompts.iter().map(Vec::len).collect(),
            reused_prompt_tokens: reused,
            generated_tokens: generated.iter().map(|g| g.ids.len()).collect(),
        });
        for (slot, g) in slots.into_iter().zip(generated) {
            replies[slot] = Some(self.decode(&g.ids).map(|text| clean_reply(&text)));
        }
        Ok(replies
            .into_iter()
            .map(|r| r.expect("every request answered"))
            .collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, GenerateError> {
        match self.options.generation.prompt_tokens_per_word {
            Some(per_word) => Ok(words_as_tokens(text, per_word)),
            None => Ok(self.encode(text)?.len()),
        }
    }

    fn context_len(&self) -> usize {
        self.context_len
    }
}

/// `text`'s whitespace-separated words × `per_word`, rounded up.
fn words_as_tokens(text: &str, per_word: f64) -> usize {
    (text.split_whitespace().count() as f64 * per_word).ceil() as usize
}

/// Shortest block that, repeated back to back, must cover this many tokens to count as a loop.
const MIN_LOOP_SPAN: usize = 16;
/// Longest repeated block looked for.
const MAX_LOOP_BLOCK: usize = 64;

/// When `ids` ends in a loop — one block of tokens repeated back to back at least three times
/// and over at least [`MIN_LOOP_SPAN`] tokens — the length to keep (up to the end of the
/// block's first copy); otherwise `None`. Small models fall into such loops under greedy
/// decoding, and no summary legitimately contains one.
pub fn repeated_tail(ids: &[u32]) -> Option<usize> {
    for block in 1..=MAX_LOOP_BLOCK {
        let copies = 3.max(MIN_LOOP_SPAN.div_ceil(block));
        let span = block * copies;
        if ids.len() < span {
            continue;
        }
        let tail = &ids[ids.len() - span..];
        if (block..span).all(|i| tail[i] == tail[i - block]) {
            return Some(ids.len() - span + block);
        }
    }
    None
}

/// A reply without a reasoning block (`<think>…</think>`, should a model emit one anyway) and
/// without surrounding whitespace.
pub fn clean_reply(text: &str) -> String {
    let mut text = text.to_string();
    while let Some(start) = text.find("<think>") {
        match text[start..].find("</think>") {
            Some(end) => text.replace_range(start..start + end + "</think>".len(), ""),
            None => text.truncate(start),
        }
    }
    text.trim().to_string()
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LlmError> {
    let text = std::fs::read_to_string(path).map_err(|source| LlmError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| LlmError::Config {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The chat template: tokenizer_config.json's `chat_template`, else a `chat_template.jinja`
/// beside tokenizer_config.json or tokenizer.json (where newer transformers save it), else
/// the GGUF's `tokenizer.chat_template`.
fn find_chat_template(
    files: &LlmFiles,
    config: Option<&TokenizerConfig>,
    gguf_template: Option<String>,
) -> Result<(String, String), LlmError> {
    let mut searched = Vec::new();
    if let (Some(config), Some(path)) = (config, &files.tokenizer_config) {
        if let Some(template) = config
            .chat_template
            .as_ref()
            .and_then(ChatTemplateField::default_template)
        {
            return Ok((template, path.display().to_string()));
        }
        searched.push(path.display().to_string());
    }
    let beside = [
        files.tokenizer_config.as_deref(),
        Some(files.tokenizer.as_path()),
    ];
    for dir in beside.into_iter().flatten().filter_map(Path::parent) {
        let candidate = dir.join("chat_template.jinja");
        if candidate.is_file() {
            let text = std::fs::read_to_string(&candidate).map_err(|source| LlmError::Read {
                path: candidate.clone(),
                source,
            })?;
            return Ok((text, candidate.display().to_string()));
        }
        searched.push(candidate.display().to_string());
    }
    if let Weights::Gguf(path) = &files.weights {
        if let Some(template) = gguf_template {
            return Ok((
                template,
                format!("{} (tokenizer.chat_template)", path.display()),
            ));
        }
        searched.push(path.display().to_string());
    }
    Err(LlmError::NoChatTemplate {
        searched: searched.join(", "),
    })
}

/// The parts of tokenizer_config.json that matter here.
#[derive(Debug, Deserialize)]
struct TokenizerConfig {
    #[serde(default)]
    chat_template: Option<ChatTemplateField>,
    #[serde(default)]
    eos_token: Option<TokenField>,
    #[serde(default)]
    bos_token: Option<TokenField>,
}

/// `chat_template` is a string, or a list of named templates (`default`, `tool_use`, ...).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ChatTemplateField {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Debug, Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

impl ChatTemplateField {
    fn default_template(&self) -> Option<String> {
        match self {
            ChatTemplateField::One(s) => Some(s.clone()),
            ChatTemplateField::Named(list) => list
                .iter()
                .find(|t| t.name == "default")
                .map(|t| t.template.clone()),
        }
    }
}

/// A special token is written as its text or as an AddedToken object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenField {
    Text(String),
    Added { content: String },
}

impl TokenField {
    fn content(&self) -> &str {
        match self {
            TokenField::Text(s) => s,
            TokenField::Added { content } => content,
        }
    }
}

/// A Qwen2 config.json as the hub has it: older checkpoints carry `rope_theta`, transformers 5
/// writes `rope_parameters.rope_theta`; `sliding_window` may be null.
#[derive(Debug, Deserialize)]
struct HubQwen2Config {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default = "default_max_position_embeddings")]
    max_position_embeddings: usize,
    #[serde(default)]
    sliding_window: Option<usize>,
    #[serde(default)]
    max_window_layers: Option<usize>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_parameters: Option<RopeParameters>,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default = "default_hidden_act")]
    hidden_act: candle_nn::Activation,
    #[serde(default)]
    eos_token_id: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
struct RopeParameters {
    #[serde(default)]
    rope_theta: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

fn default_max_position_embeddings() -> usize {
    32768
}
fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_hidden_act() -> candle_nn::Activation {
    candle_nn::Activation::Silu
}

impl HubQwen2Config {
    fn to_candle(&self) -> qwen2::Config {
        let rope_theta = self
            .rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|r| r.rope_theta))
            .unwrap_or(10_000.0);
        qwen2::Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads.unwrap_or(self.num_attention_heads),
            max_position_embeddings: self.max_position_embeddings,
            // Without sliding-window attention every position sees all earlier ones.
            sliding_window: match (self.use_sliding_window, self.sliding_window) {
                (true, Some(w)) => w,
                _ => self.max_position_embeddings,
            },
            max_window_layers: self.max_window_layers.unwrap_or(self.num_hidden_layers),
            tie_word_embeddings: self.tie_word_embeddings,
            rope_theta,
            rms_norm_eps: self.rms_norm_eps,
            use_sliding_window: self.use_sliding_window,
            hidden_act: self.hidden_act,
        }
    }

    fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(OneOrMany::One(id)) => vec![*id],
            Some(OneOrMany::Many(ids)) => ids.clone(),
            None => Vec::new(),
        }
    }
}

/// Reads a GGUF's metadata only (no tensors), e.g. to show what a file holds.
pub fn gguf_metadata(path: &Path) -> Result<HashMap<String, gguf_file::Value>, LlmError> {
    let file = File::open(path).map_err(|source| LlmError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let content =
        gguf_file::Content::read(&mut BufReader::new(file)).map_err(|e| LlmError::Gguf {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(content.metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tail_finds_a_block_repeated_three_times_and_keeps_one_copy() {
        let mut ids: Vec<u32> = vec![1, 2, 3];
        let block = [10, 11, 12, 13, 14, 15];
        for _ in 0..3 {
            ids.extend(block);
        }
        assert_eq!(repeated_tail(&ids), Some(3 + block.len()));
    }

    #[test]
    fn repeated_tail_ignores_short_or_twice_repeated_text() {
        // A block repeated twice is not a loop; nor are three copies of a 2-token block (6 < 16).
        let twice: Vec<u32> = (0..10).chain(0..10).collect();
        assert_eq!(repeated_tail(&twice), None);
        assert_eq!(repeated_tail(&[5, 6, 5, 6, 5, 6]), None);
        let varied: Vec<u32> = (0..200).collect();
        assert_eq!(repeated_tail(&varied), None);
    }

    #[test]
    fn repeated_tail_catches_a_single_token_run() {
        let ids: Vec<u32> = std::iter::once(7)
            .chain(std::iter::repeat_n(9, 16))
            .collect();
        assert_eq!(repeated_tail(&ids), Some(2));
    }

    #[test]
    fn clean_reply_drops_reasoning_blocks() {
        assert_eq!(
            clean_reply("<think>\nhmm\n</think>\n\n The answer. "),
            "The answer."
        );
        assert_eq!(clean_reply("Text <think>unfinished"), "Text");
    }

    #[test]
    fn hub_config_reads_both_rope_theta_spellings() {
        let old: HubQwen2Config = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
               "num_attention_heads":2,"rope_theta":1000000.0,"sliding_window":131072,"use_sliding_window":false}"#,
        )
        .unwrap();
        assert_eq!(old.to_candle().rope_theta, 1e6);
        assert_eq!(old.to_candle().sliding_window, 32768);
        let new: HubQwen2Config = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
               "num_attention_heads":2,"rope_parameters":{"rope_theta":5.0,"rope_type":"default"},
               "sliding_window":null,"eos_token_id":[3,4]}"#,
        )
        .unwrap();
        assert_eq!(new.to_candle().rope_theta, 5.0);
        assert_eq!(new.eos_ids(), vec![3, 4]);
    }

    #[test]
    fn chat_template_renders_like_jinja_with_trimmed_blocks() {
        let source = "{%- for m in messages %}\n  {%- if m.role == 'system' %}\n[S]{{ m.content.strip() }}\n  {%- else %}\n[U]{{ m.content }}\n  {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}[A]{% endif %}";
        let t = ChatTemplate::new(source, "test".into(), String::new(), "<e>".into()).unwrap();
        let out = t
            .render(&[
                ChatMessage {
                    role: "system",
                    content: " sys ",
                },
                ChatMessage {
                    role: "user",
                    content: "hi",
                },
            ])
            .unwrap();
        // As Python jinja2 with trim_blocks and lstrip_blocks renders it.
        assert_eq!(out, "[S]sys[U]hi[A]");
    }

    #[test]
    fn chat_template_raise_exception_is_an_error() {
        let t = ChatTemplate::new(
            "{{ raise_exception('no system role') }}",
            "t".into(),
            String::new(),
            String::new(),
        )
        .unwrap();
        let err = t.render(&[]).unwrap_err().to_string();
        assert!(err.contains("no system role"), "{err}");
    }

    #[test]
    fn broken_chat_template_is_a_load_error_naming_its_origin() {
        let err = ChatTemplate::new(
            "{% if %}",
            "x/tokenizer_config.json".into(),
            String::new(),
            String::new(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("x/tokenizer_config.json"), "{err}");
    }
}
