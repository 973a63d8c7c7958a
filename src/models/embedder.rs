//! The sentence-embedding model behind story grouping: a BERT encoder (candle-transformers'
//! `BertModel`) whose last hidden states are mean-pooled over the attention mask and
//! L2-normalised.
//!
//! Reference: sentence-transformers' pipeline for sentence-transformers/all-MiniLM-L6-v2
//! (modules.json: `models.Transformer` → `models.Pooling` with `pooling_mode_mean_tokens` →
//! `models.Normalize`), where the Transformer module is transformers'
//! `models/bert/modeling_bert.py::BertModel`. Texts are truncated to `max_seq_length` of
//! sentence_bert_config.json (256 for MiniLM), like sentence-transformers does, else to the
//! model's position limit (at most 512). Parity with that pipeline on tiny random weights is
//! pinned by tests/integration/embed_parity.rs.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

use crate::models::marian::var_builder;
use crate::models::{Embedder, GenerateError};

/// The longest input BERT-style checkpoints take (their position embedding table).
const MAX_LEN_CAP: usize = 512;

/// How many texts go through the model at once (bounds memory on long articles).
const BATCH: usize = 16;

/// Why an embedding model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedLoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable BERT config.json: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("cannot load the weights in {path}: {reason}")]
    Weights { path: PathBuf, reason: String },
    #[error("cannot load the tokenizer {path}: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
}

/// The files of a sentence-embedding model.
#[derive(Clone, Debug)]
pub struct EmbedderFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    /// sentence-transformers' sentence_bert_config.json (holds `max_seq_length`), if present.
    pub sentence_config: Option<PathBuf>,
}

/// A loaded sentence embedder; implements [`Embedder`] for story grouping.
pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pad_id: u32,
    max_len: usize,
    name: String,
}

fn read(path: &Path) -> Result<String, EmbedLoadError> {
    std::fs::read_to_string(path).map_err(|source| EmbedLoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl SentenceEmbedder {
    pub fn load(files: &EmbedderFiles, device: &Device) -> Result<Self, EmbedLoadError> {
        let config_err = |reason: String| EmbedLoadError::Config {
            path: files.config.clone(),
            reason,
        };
        let config: Config =
            serde_json::from_str(&read(&files.config)?).map_err(|e| config_err(e.to_string()))?;
        let mut max_len = config.max_position_embeddings.min(MAX_LEN_CAP);
        if let Some(path) = &files.sentence_config {
            let value: serde_json::Value =
                serde_json::from_str(&read(path)?).map_err(|e| EmbedLoadError::Config {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if let Some(n) = value.get("max_seq_length").and_then(|n| n.as_u64()) {
                max_len = max_len.min(n as usize);
            }
        }
        let weights_err = |reason: String| EmbedLoadError::Weights {
            path: files.weights.clone(),
            reason,
        };
        let vb = var_builder(&files.weights, DType::F32, device)
            .map_err(|e| weights_err(e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| weights_err(e.to_string()))?;
        let tok_err = |reason: String| EmbedLoadError::Tokenizer {
            path: files.tokenizer.clone(),
            reason,
        };
        let mut tokenizer =
            Tokenizer::from_file(&files.tokenizer).map_err(|e| tok_err(e.to_string()))?;
        // Padding is done by hand below; truncation counts [CLS] and [SEP], as in transformers.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| tok_err(e.to_string()))?;
        Ok(SentenceEmbedder {
            model,
            tokenizer,
            device: device.clone(),
            pad_id: config.pad_token_id as u32,
            max_len,
            name: "sentence embedder".to_string(),
        })
    }

    /// Sets the name shown in the brief (catalog id and revision).
    pub fn with_name(mut self, name: String) -> Self {
        self.name = name;
        self
    }

    /// The token ids the model sees for `text` ([CLS] … [SEP], truncated).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, GenerateError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Embeds one padded batch.
    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, GenerateError> {
        let mut rows = Vec::with_capacity(texts.len());
        for text in texts {
            let encoding = self
                .tokenizer
                .encode(text.as_str(), true)
                .map_err(|e| GenerateError::Tokenizer(e.to_string()))?;
            if !encoding.get_overflowing().is_empty() {
                log::debug!(
                    "a text of {} characters was truncated to {} tokens for embedding (as sentence-transformers does)",
                    text.chars().count(),
                    self.max_len
                );
            }
            rows.push(encoding.get_ids().to_vec());
        }
        let width = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in &rows {
            ids.extend(
                row.iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.pad_id, width - row.len())),
            );
            mask.extend(
                std::iter::repeat_n(1u32, row.len())
                    .chain(std::iter::repeat_n(0, width - row.len())),
            );
        }
        let shape = (rows.len(), width);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        // Mean over real tokens only: sentence_transformers.models.Pooling (mean mode).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let pooled = summed.broadcast_div(&counts)?;
        // models.Normalize: torch.nn.functional.normalize(p=2, eps=1e-12).
        let norms = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        Ok(pooled.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

impl Embedder for SentenceEmbedder {
    fn model_name(&self) -> String {
        self.name.clone()
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, GenerateError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }
}
