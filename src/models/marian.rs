//! The Marian encoder–decoder behind every opus-mt model, on candle.
//!
//! Reference: transformers `models/marian/modeling_marian.py`, class `MarianMTModel`
//! (with `MarianEncoder`, `MarianDecoder`, `MarianAttention` and
//! `MarianSinusoidalPositionalEmbedding`); `Config` mirrors `configuration_marian.py`.
//!
//! What this adds over candle-transformers' Marian: key padding masks in encoder self-attention
//! and cross-attention (polybrief translates padded batches of sentences of different lengths),
//! an explicit decoder cache ([`DecoderCache`]) that lives outside the model so that beam search
//! can reorder it and batched decoding can drop finished rows, cross-attention keys/values
//! computed once per batch, and the checkpoint layouts of both shared and separate vocabularies.
//! On the CPU the encoder runs on a batch's real tokens only (`marian_encode`) and the decoder
//! on plain buffers (`marian_step`); elsewhere both run on candle's tensors.
//!
//! No I/O here except [`var_builder`], which only opens a weights file as a `VarBuilder`.

use std::path::Path;

use candle_core::{DType, Device, IndexOp, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};
use serde::Deserialize;

use super::exp_sum::silu_in_place;
use super::int8::{Int8Linear, Int8Matrix};
use super::marian_encode::{self, PackedTokens};
use super::marian_step::{add_in_place, layer_norm_rows, CrossKv, StepCache};
use super::panels::PanelMatrix;
pub use super::precision::WeightPrecision;
use super::safetensors_file::{SafetensorsFile, SharedSafetensors};

/// One token id or several (`eos_token_id` may be either in hub configs).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    /// The first id; Marian models have exactly one end-of-sequence token.
    pub fn first(&self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(*id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

/// The activation between the two feed-forward projections, named as in transformers' `ACT2FN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Activation {
    /// `swish` is what every opus-mt checkpoint uses; it is SiLU.
    #[serde(alias = "swish", rename = "silu")]
    Silu,
    /// Exact (erf) GELU, transformers' `gelu`.
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh-approximated GELU.
    #[serde(alias = "gelu_new", alias = "gelu_fast", rename = "gelu_pytorch_tanh")]
    GeluTanh,
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    /// [`apply`](Self::apply) on row-major values, in place: SiLU (`x / (1 + exp(-x))` on
    /// `exp_sum`'s vectorized exponential, within a few ulp of candle's) split across
    /// threads when large, ReLU; the GELUs through a tensor.
    fn apply_values(self, xs: &mut Vec<f32>) -> Result<()> {
        use rayon::prelude::*;
        const CHUNK: usize = 8192;
        match self {
            Activation::Silu => xs.par_chunks_mut(CHUNK).for_each(silu_in_place),
            Activation::Relu => xs.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Gelu | Activation::GeluTanh => {
                let n = xs.len();
                let t = Tensor::from_vec(std::mem::take(xs), n, &Device::Cpu)?;
                *xs = self.apply(&t)?.to_vec1::<f32>()?;
            }
        }
        Ok(())
    }

    fn apply(self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Silu => xs.silu(),
            Activation::Gelu => xs.gelu_erf(),
            Activation::GeluTanh => xs.gelu(),
            Activation::Relu => xs.relu(),
        }
    }
}

/// A Marian `config.json` as the hub serves it. Defaults are `MarianConfig`'s, so that the
/// 2020-era opus-mt configs, which lack `decoder_vocab_size`, `share_encoder_decoder_embeddings`
/// or `forced_eos_token_id`, load the way transformers loads them. Fields that old configs carry
/// but transformers' Marian ignores (`static_position_embeddings`, `normalize_embedding`,
/// `normalize_before`, `add_final_layer_norm`: Marian is always post-norm with sinusoidal
/// positions) are ignored here too.
#[derive(Clone, Debug, Deserialize)]
pub struct Config {
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// Target vocabulary size when it differs from the source (`tc-big` models with separate
    /// vocabularies); `None` means `vocab_size`.
    #[serde(default)]
    pub decoder_vocab_size: Option<usize>,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_layers")]
    pub encoder_layers: usize,
    #[serde(default = "default_ffn_dim")]
    pub encoder_ffn_dim: usize,
    #[serde(default = "default_heads")]
    pub encoder_attention_heads: usize,
    #[serde(default = "default_layers")]
    pub decoder_layers: usize,
    #[serde(default = "default_ffn_dim")]
    pub decoder_ffn_dim: usize,
    #[serde(default = "default_heads")]
    pub decoder_attention_heads: usize,
    #[serde(default = "default_activation")]
    pub activation_function: Activation,
    #[serde(default = "default_d_model")]
    pub d_model: usize,
    #[serde(default = "default_pad")]
    pub decoder_start_token_id: u32,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: TokenIds,
    #[serde(default = "default_forced_eos")]
    pub forced_eos_token_id: Option<TokenIds>,
    #[serde(default = "default_true")]
    pub share_encoder_decoder_embeddings: bool,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Generation defaults that older configs carry inline (newer repos move them to
    /// generation_config.json); read as hints only.
    #[serde(default)]
    pub num_beams: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
}

fn default_vocab_size() -> usize {
    58101
}
fn default_max_position_embeddings() -> usize {
    1024
}
fn default_layers() -> usize {
    12
}
fn default_ffn_dim() -> usize {
    4096
}
fn default_heads() -> usize {
    16
}
fn default_activation() -> Activation {
    Activation::Gelu
}
fn default_d_model() -> usize {
    1024
}
fn default_pad() -> u32 {
    58100
}
fn default_eos() -> TokenIds {
    TokenIds::One(0)
}
fn default_forced_eos() -> Option<TokenIds> {
    Some(TokenIds::One(0))
}
fn default_true() -> bool {
    true
}

impl Config {
    /// Size of the decoder's vocabulary and of the logits.
    pub fn target_vocab_size(&self) -> usize {
        if self.share_encoder_decoder_embeddings {
            self.vocab_size
        } else {
            self.decoder_vocab_size.unwrap_or(self.vocab_size)
        }
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_token_id.first().unwrap_or(0)
    }

    /// The token forced at the last allowed position, if the model asks for one.
    pub fn forced_eos_id(&self) -> Option<u32> {
        self.forced_eos_token_id.as_ref().and_then(TokenIds::first)
    }

    /// Checks the invariants the model code relies on, naming the offending field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, dim, heads) in [
            ("encoder", self.d_model, self.encoder_attention_heads),
            ("decoder", self.d_model, self.decoder_attention_heads),
        ] {
            if heads == 0 || !dim.is_multiple_of(heads) {
                return Err(format!(
                    "d_model {dim} is not divisible by {name}_attention_heads {heads}"
                ));
            }
        }
        if !self.d_model.is_multiple_of(2) {
            return Err(format!(
                "d_model {} must be even for sinusoidal positions",
                self.d_model
            ));
        }
        let vocab = self.target_vocab_size() as u32;
        for (name, id) in [
            ("pad_token_id", self.pad_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id),
            ("eos_token_id", self.eos_id()),
        ] {
            if id >= vocab {
                return Err(format!(
                    "{name} {id} is outside the target vocabulary of {vocab}"
                ));
            }
        }
        Ok(())
    }
}

/// The value added to attention scores at padded keys: transformers uses the dtype's minimum.
const MASKED: f32 = f32::MIN;

/// Builds the `(num_positions, dim)` table of `MarianSinusoidalPositionalEmbedding`: sines of all
/// frequencies in the first half, cosines in the second half (not interleaved). Computed in f64
/// like the reference's numpy code, then rounded once.
fn sinusoidal_table(
    num_positions: usize,
    dim: usize,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let half = dim / 2;
    let mut table = vec![0f32; num_positions * dim];
    for pos in 0..num_positions {
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for i in 0..half {
            let angle = pos as f64 / 10000f64.powf((2 * i) as f64 / dim as f64);
            row[i] = angle.sin() as f32;
            row[half + i] = angle.cos() as f32;
        }
    }
    Tensor::from_vec(table, (num_positions, dim), device)?.to_dtype(dtype)
}

/// A linear layer `y = x W^T + b`.
///
/// On the CPU in f32 the weight lives in panels ([`PanelMatrix`], polybrief's kernels); on
/// any other device or dtype it is stored transposed, `(in, out)` contiguous, for candle's
/// matmul (which hands gemm a row-major destination and so reads an `(out, in)` weight as a
/// matrix to repack on every call). In int8 the weight is quantized per output row
/// ([`Int8Linear`]).
#[derive(Clone, Debug)]
enum Projection {
    Tensor {
        weight_t: Tensor,
        bias: Option<Tensor>,
    },
    Panels {
        weight: std::sync::Arc<PanelMatrix>,
        bias: Vec<f32>,
    },
    Int8(Int8Linear),
}

impl Projection {
    /// Stacks checkpoint linears `(out_i, in)` (and their biases) along the output dimension,
    /// each multiplied by its `scale`: one matmul computes all of them.
    fn fused(
        parts: &[(&str, f64)],
        in_dim: usize,
        out_dim: usize,
        vb: &VarBuilder,
        precision: WeightPrecision,
    ) -> Result<Self> {
        let mut weights = Vec::with_capacity(parts.len());
        let mut biases = Vec::with_capacity(parts.len());
        for (name, scale) in parts {
            let w = vb.get((out_dim, in_dim), &format!("{name}.weight"))?;
            let b = vb.get(out_dim, &format!("{name}.bias"))?;
            weights.push((w * *scale)?);
            biases.push((b * *scale)?);
        }
        let weight = Tensor::cat(&weights, 0)?;
        let bias = Tensor::cat(&biases, 0)?;
        Ok(match precision {
            WeightPrecision::F32 if vb.device().is_cpu() && vb.dtype() == DType::F32 => {
                let (rows, cols) = weight.dims2()?;
                Self::Panels {
                    weight: std::sync::Arc::new(PanelMatrix::from_row_major(
                        &cpu_values(&weight)?,
                        rows,
                        cols,
                    )),
                    bias: cpu_values(&bias)?,
                }
            }
            WeightPrecision::F32 => Self::Tensor {
                weight_t: weight.t()?.contiguous()?,
                bias: Some(bias),
            },
            WeightPrecision::Int8 => Self::Int8(Int8Linear::quantize(&weight, Some(&bias))?),
        })
    }

    fn load(
        name: &str,
        in_dim: usize,
        out_dim: usize,
        vb: &VarBuilder,
        precision: WeightPrecision,
    ) -> Result<Self> {
        Self::fused(&[(name, 1.0)], in_dim, out_dim, vb, precision)
    }

    /// `x` `(rows, in)` row-major → `(rows, out)` row-major, on the CPU.
    fn forward_rows(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        match self {
            Self::Panels { weight, bias } => {
                if x.len() != rows * weight.cols() {
                    candle_core::bail!(
                        "linear layer expects {rows} × {} values, got {}",
                        weight.cols(),
                        x.len()
                    );
                }
                Ok(weight.matmul_t(x, rows, Some(bias)))
            }
            Self::Int8(linear) => linear.forward_rows(x, rows),
            Self::Tensor { weight_t, .. } => {
                let in_dim = weight_t.dim(0)?;
                let xs = Tensor::from_slice(x, (rows, in_dim), weight_t.device())?;
                cpu_values(&self.forward(&xs)?)
            }
        }
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims();
        let in_dim = dims[dims.len() - 1];
        let rows = xs.elem_count() / in_dim.max(1);
        let (weight_t, bias) = match self {
            Self::Tensor { weight_t, bias } => (weight_t, bias),
            Self::Int8(linear) => return linear.forward(xs),
            Self::Panels { weight, .. } => {
                let mut out_dims = dims.to_vec();
                *out_dims.last_mut().expect("at least one dim") = weight.rows();
                let ys = self.forward_rows(&cpu_values(xs)?, rows)?;
                return Tensor::from_vec(ys, out_dims, xs.device());
            }
        };
        let ys = xs.reshape((rows, in_dim))?.matmul(weight_t)?;
        let ys = match bias {
            Some(bias) => ys.broadcast_add(bias)?,
            None => ys,
        };
        let mut out_dims = dims.to_vec();
        *out_dims.last_mut().expect("at least one dim") = ys.dim(1)?;
        ys.reshape(out_dims)
    }
}

/// nn.LayerNorm's default eps.
const LAYER_NORM_EPS: f64 = 1e-5;

fn layer_norm(dim: usize, vb: VarBuilder) -> Result<LayerNorm> {
    candle_nn::layer_norm(dim, LAYER_NORM_EPS, vb)
}

/// `norm` on row-major values in place, with the arithmetic of candle's CPU layer norm.
fn layer_norm_values(norm: &LayerNorm, xs: &mut [f32]) -> Result<()> {
    let Some(bias) = norm.bias() else {
        candle_core::bail!("Marian layer norms have a bias");
    };
    with_cpu_slice(norm.weight(), |w| {
        with_cpu_slice(bias, |b| layer_norm_rows(xs, w, b, LAYER_NORM_EPS as f32))
    })?
}

/// Runs `f` on a contiguous f32 CPU tensor's values, in place.
fn with_cpu_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(cpu), Some((start, end))) => {
            Ok(f(&cpu.as_slice::<f32>()?[start..end]))
        }
        _ => candle_core::bail!("expected a contiguous f32 tensor on the CPU"),
    }
}

/// `MarianAttention`. The projections of the checkpoint are fused where the same input feeds
/// them: q, k, v for self-attention; k, v for cross-attention (computed once per batch). The
/// reference's `scaling` of the scores is folded into the q projection.
#[derive(Clone, Debug)]
struct Attention {
    /// Self-attention: `[q | k | v]`; cross-attention: `q` only.
    query: Projection,
    /// Cross-attention only: `[k | v]`.
    key_value: Option<Projection>,
    out_proj: Projection,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(
        dim: usize,
        num_heads: usize,
        cross: bool,
        vb: VarBuilder,
        precision: WeightPrecision,
    ) -> Result<Self> {
        let head_dim = dim / num_heads;
        let scaling = (head_dim as f64).powf(-0.5);
        let (query, key_value) = if cross {
            (
                Projection::fused(&[("q_proj", scaling)], dim, dim, &vb, precision)?,
                Some(Projection::fused(
                    &[("k_proj", 1.0), ("v_proj", 1.0)],
                    dim,
                    dim,
                    &vb,
                    precision,
                )?),
            )
        } else {
            let qkv = [("q_proj", scaling), ("k_proj", 1.0), ("v_proj", 1.0)];
            (Projection::fused(&qkv, dim, dim, &vb, precision)?, None)
        };
        Ok(Self {
            query,
            key_value,
            out_proj: Projection::load("out_proj", dim, dim, &vb, precision)?,
            num_heads,
            head_dim,
        })
    }

    /// `(b, t, n × d)` from a fused projection → n tensors `(b, heads, t, head_dim)`, contiguous.
    fn split(&self, xs: &Tensor, n: usize) -> Result<Vec<Tensor>> {
        let (b, t, _) = xs.dims3()?;
        let xs = xs
            .reshape((b, t, n, self.num_heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        (0..n).map(|i| xs.get(i)).collect()
    }

    /// Self-attention: queries, keys and values of `xs`.
    fn qkv(&self, xs: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let mut parts = self.split(&self.query.forward(xs)?, 3)?.into_iter();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(q), Some(k), Some(v)) => Ok((q, k, v)),
            _ => candle_core::bail!("fused projection did not split in three"),
        }
    }

    /// Cross-attention: keys and values of the encoder output.
    fn key_values(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let Some(kv) = &self.key_value else {
            candle_core::bail!("key_values called on a self-attention layer");
        };
        let mut parts = self.split(&kv.forward(xs)?, 2)?.into_iter();
        match (parts.next(), parts.next()) {
            (Some(k), Some(v)) => Ok((k, v)),
            _ => candle_core::bail!("fused projection did not split in two"),
        }
    }

    /// Cross-attention: queries of `xs`.
    fn queries(&self, xs: &Tensor) -> Result<Tensor> {
        let mut parts = self.split(&self.query.forward(xs)?, 1)?;
        parts
            .pop()
            .ok_or_else(|| candle_core::Error::msg("empty query projection"))
    }

    /// Attention of (already scaled) queries `q` to `k`/`v`, all `(b, heads, ·, head_dim)`;
    /// `mask` is additive and broadcast onto the `(b, heads, t, s)` scores. Returns `(b, t, d)`
    /// after the output projection.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, _, t, _) = q.dims4()?;
        let d = self.num_heads * self.head_dim;
        let scores = q.matmul(&k.t()?)?;
        let scores = match mask {
            Some(mask) => scores.broadcast_add(mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(v)?; // (b, heads, t, head_dim)
        let out = if t == 1 {
            // With one query the head-major layout is already row-major (b, 1, d).
            out.reshape((b, 1, d))?
        } else {
            out.transpose(1, 2)?.reshape((b, t, d))?
        };
        self.out_proj.forward(&out)
    }
}

/// `MarianEncoderLayer` (post-norm).
#[derive(Clone, Debug)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    feed_forward: FeedForward,
}

impl EncoderLayer {
    fn new(cfg: &Config, vb: VarBuilder, precision: WeightPrecision) -> Result<Self> {
        let d = cfg.d_model;
        let heads = cfg.encoder_attention_heads;
        Ok(Self {
            self_attn: Attention::new(d, heads, false, vb.pp("self_attn"), precision)?,
            self_attn_layer_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            feed_forward: FeedForward::new(cfg, cfg.encoder_ffn_dim, &vb, precision)?,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (q, k, v) = self.self_attn.qkv(xs)?;
        let attn = self.self_attn.attend(&q, &k, &v, Some(mask))?;
        let xs = (attn + xs)?.apply(&self.self_attn_layer_norm)?;
        self.feed_forward.forward(&xs)
    }

    /// [`forward`](Self::forward) on the CPU over the packed real tokens of a batch
    /// (`marian_encode`), row-major `(tokens.len(), d_model)`.
    fn forward_cpu(&self, mut xs: Vec<f32>, tokens: &PackedTokens) -> Result<Vec<f32>> {
        let n = tokens.len();
        let attn = &self.self_attn;
        let qkv = attn.query.forward_rows(&xs, n)?;
        let heads = marian_encode::self_attention(tokens, &qkv, attn.num_heads, attn.head_dim);
        add_in_place(&mut xs, &attn.out_proj.forward_rows(&heads, n)?);
        layer_norm_values(&self.self_attn_layer_norm, &mut xs)?;
        self.feed_forward.forward_values(&mut xs, n)?;
        Ok(xs)
    }
}

/// The feed-forward block that ends every Marian layer, with its residual and (post-)norm:
/// `final_layer_norm(xs + fc2(activation(fc1(xs))))`.
#[derive(Clone, Debug)]
struct FeedForward {
    fc1: Projection,
    fc2: Projection,
    final_layer_norm: LayerNorm,
    activation: Activation,
}

impl FeedForward {
    fn new(
        cfg: &Config,
        ffn_dim: usize,
        vb: &VarBuilder,
        precision: WeightPrecision,
    ) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            fc1: Projection::load("fc1", d, ffn_dim, vb, precision)?,
            fc2: Projection::load("fc2", ffn_dim, d, vb, precision)?,
            final_layer_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
            activation: cfg.activation_function,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let ff = self
            .fc2
            .forward(&self.activation.apply(&self.fc1.forward(xs)?)?)?;
        (ff + xs)?.apply(&self.final_layer_norm)
    }

    /// [`forward`](Self::forward) on the CPU over `n` row-major rows `xs`, in place.
    fn forward_values(&self, xs: &mut [f32], n: usize) -> Result<()> {
        let mut hidden = self.fc1.forward_rows(xs, n)?;
        self.activation.apply_values(&mut hidden)?;
        add_in_place(xs, &self.fc2.forward_rows(&hidden, n)?);
        layer_norm_values(&self.final_layer_norm, xs)
    }
}

/// `MarianDecoderLayer` (post-norm): causal self-attention, cross-attention, feed-forward.
#[derive(Clone, Debug)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    feed_forward: FeedForward,
}

impl DecoderLayer {
    fn new(cfg: &Config, vb: VarBuilder, precision: WeightPrecision) -> Result<Self> {
        let d = cfg.d_model;
        let heads = cfg.decoder_attention_heads;
        Ok(Self {
            self_attn: Attention::new(d, heads, false, vb.pp("self_attn"), precision)?,
            self_attn_layer_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: Attention::new(d, heads, true, vb.pp("encoder_attn"), precision)?,
            encoder_attn_layer_norm: layer_norm(d, vb.pp("encoder_attn_layer_norm"))?,
            feed_forward: FeedForward::new(cfg, cfg.decoder_ffn_dim, &vb, precision)?,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        cache: &mut LayerCache,
        causal_mask: Option<&Tensor>,
        cross_mask: &Tensor,
    ) -> Result<Tensor> {
        let (q, k, v) = self.self_attn.qkv(xs)?;
        let (k, v) = match &cache.self_kv {
            Some((past_k, past_v)) => (
                Tensor::cat(&[past_k, &k], 2)?,
                Tensor::cat(&[past_v, &v], 2)?,
            ),
            None => (k, v),
        };
        let attn = self.self_attn.attend(&q, &k, &v, causal_mask)?;
        cache.self_kv = Some((k, v));
        let xs = (attn + xs)?.apply(&self.self_attn_layer_norm)?;

        let q = self.encoder_attn.queries(&xs)?;
        let attn =
            self.encoder_attn
                .attend(&q, &cache.cross_k, &cache.cross_v, Some(cross_mask))?;
        let xs = (attn + xs)?.apply(&self.encoder_attn_layer_norm)?;

        self.feed_forward.forward(&xs)
    }

    /// [`forward`](Self::forward) on the CPU over row-major values `(rows · t, d_model)`,
    /// for `t` new positions per row after `past`; `index` is this layer's number.
    fn forward_cpu(
        &self,
        mut xs: Vec<f32>,
        index: usize,
        cache: &mut StepCache,
        t: usize,
        past: usize,
    ) -> Result<Vec<f32>> {
        let n = cache.rows() * t;
        let qkv = self.self_attn.query.forward_rows(&xs, n)?;
        cache.append(index, &qkv, t, past);
        let attn = cache.self_attention(index, &qkv, t, past);
        add_in_place(&mut xs, &self.self_attn.out_proj.forward_rows(&attn, n)?);
        layer_norm_values(&self.self_attn_layer_norm, &mut xs)?;

        let q = self.encoder_attn.query.forward_rows(&xs, n)?;
        let attn = cache.cross_attention(index, &q, t);
        add_in_place(&mut xs, &self.encoder_attn.out_proj.forward_rows(&attn, n)?);
        layer_norm_values(&self.encoder_attn_layer_norm, &mut xs)?;
        self.feed_forward.forward_values(&mut xs, n)?;
        Ok(xs)
    }
}

/// The encoder's result for a padded batch: hidden states and the additive key mask that
/// hides the padding from every attention that reads them.
#[derive(Clone, Debug)]
pub struct EncoderOutput {
    /// `(batch, src_len, d_model)`; rows at padded positions are meaningless.
    pub hidden: Tensor,
    /// `(batch, 1, 1, src_len)`: 0 at tokens, a large negative value at padding.
    pub mask: Tensor,
    /// The CPU encoder's packed result, from which the decoder's cache computes the
    /// cross-attention keys and values of the real tokens only.
    packed: Option<std::sync::Arc<PackedStates>>,
}

/// The hidden states of a batch's real tokens, `(tokens.len(), d_model)` row-major.
#[derive(Debug)]
struct PackedStates {
    tokens: PackedTokens,
    values: Vec<f32>,
}

impl EncoderOutput {
    pub fn batch_size(&self) -> Result<usize> {
        self.hidden.dim(0)
    }
}

/// Keys and values one decoder layer keeps between steps.
#[derive(Clone, Debug)]
struct LayerCache {
    /// Self-attention keys/values of all tokens decoded so far, `(rows, heads, len, head_dim)`.
    self_kv: Option<(Tensor, Tensor)>,
    /// Cross-attention keys/values of the encoder output, computed once per batch.
    cross_k: Tensor,
    cross_v: Tensor,
}

/// Everything the decoder needs between steps, one row per hypothesis being decoded.
/// Lives outside the model so that generation can reorder rows (beam search) and drop rows
/// whose sequence is finished.
#[derive(Clone, Debug)]
pub struct DecoderCache {
    state: CacheState,
    /// Number of target positions already decoded.
    len: usize,
    rows: usize,
}

/// Where the cache lives: candle tensors (any device), or plain buffers that the CPU decoder
/// appends to in place ([`StepCache`]).
#[derive(Clone, Debug)]
enum CacheState {
    Tensors {
        layers: Vec<LayerCache>,
        cross_mask: Tensor,
    },
    Cpu(StepCache),
}

impl DecoderCache {
    /// Number of target positions already decoded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of rows (hypotheses) in the cache.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Keeps rows `rows` (indices into the current rows, repeats allowed), in that order:
    /// expands sources into beams, follows beam search's reordering, drops finished rows.
    pub fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(&bad) = rows.iter().find(|&&r| r as usize >= self.rows) {
            candle_core::bail!("row {bad} is outside the cache's {} rows", self.rows);
        }
        match &mut self.state {
            CacheState::Cpu(cache) => cache.select_rows(rows, self.len),
            CacheState::Tensors { layers, cross_mask } => {
                let device = cross_mask.device().clone();
                let idx = Tensor::from_slice(rows, rows.len(), &device)?;
                for layer in layers.iter_mut() {
                    if let Some((k, v)) = &layer.self_kv {
                        layer.self_kv = Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?));
                    }
                    layer.cross_k = layer.cross_k.index_select(&idx, 0)?;
                    layer.cross_v = layer.cross_v.index_select(&idx, 0)?;
                }
                *cross_mask = cross_mask.index_select(&idx, 0)?;
            }
        }
        self.rows = rows.len();
        Ok(())
    }

    /// Like [`select_rows`](Self::select_rows) when every row keeps reading the same source
    /// sentence as the row it replaces (beam reordering within one sentence): only the
    /// self-attention cache moves, the cross-attention keys/values are identical.
    pub fn reorder_within_sources(&mut self, rows: &[u32]) -> Result<()> {
        if rows.iter().enumerate().all(|(i, &r)| i as u32 == r) {
            return Ok(());
        }
        let (layers, cross_mask) = match &mut self.state {
            // Rows share their source's cross-attention state already: a plain selection.
            CacheState::Cpu(_) => return self.select_rows(rows),
            CacheState::Tensors { layers, cross_mask } => (layers, cross_mask),
        };
        let idx = Tensor::from_slice(rows, rows.len(), cross_mask.device())?;
        for layer in layers.iter_mut() {
            if let Some((k, v)) = &layer.self_kv {
                layer.self_kv = Some((k.index_select(&idx, 0)?, v.index_select(&idx, 0)?));
            }
        }
        Ok(())
    }
}

/// Reads a CPU tensor's values, row-major.
fn cpu_values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

/// Token embeddings, `(vocab, d_model)`.
#[derive(Clone, Debug)]
enum TokenEmbedding {
    Rows(Tensor),
    /// Shared with the CPU LM head.
    Panels(std::sync::Arc<PanelMatrix>),
    /// Int8, shared with the int8 LM head; rows are dequantized on lookup.
    Int8(std::sync::Arc<Int8Matrix>),
}

impl TokenEmbedding {
    /// `(b, t)` ids → `(b, t, d_model)`.
    fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        match self {
            TokenEmbedding::Rows(rows) => {
                rows.index_select(&ids.flatten_all()?, 0)?
                    .reshape((b, t, ()))
            }
            TokenEmbedding::Panels(m) => {
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let mut out = vec![0f32; ids.len() * m.cols()];
                for (id, row) in ids.iter().zip(out.chunks_exact_mut(m.cols())) {
                    let id = *id as usize;
                    if id >= m.rows() {
                        candle_core::bail!(
                            "token id {id} is outside the vocabulary of {}",
                            m.rows()
                        );
                    }
                    m.copy_row(id, row);
                }
                Tensor::from_vec(out, (b, t, m.cols()), &Device::Cpu)
            }
            TokenEmbedding::Int8(m) => {
                let ids = ids.flatten_all()?.to_vec1::<u32>()?;
                let mut out = vec![0f32; ids.len() * m.cols()];
                for (id, row) in ids.iter().zip(out.chunks_exact_mut(m.cols())) {
                    let id = *id as usize;
                    if id >= m.rows() {
                        candle_core::bail!(
                            "token id {id} is outside the vocabulary of {}",
                            m.rows()
                        );
                    }
                    m.dequantize_row(id, row);
                }
                Tensor::from_vec(out, (b, t, m.cols()), &Device::Cpu)
            }
        }
    }
}

/// The LM head: `hidden · W^T + final_logits_bias` with `W` the `(vocab, d_model)` target
/// embeddings (or an untied `lm_head.weight`).
#[derive(Clone, Debug)]
enum LmHead {
    /// Any device: candle's matmul. With few rows (decoding) `(W · hidden^T)^T` lets gemm stream
    /// `W` row by row, faster than `hidden · W^T`; with many, gemm packs `W` once per call and
    /// the plain product is faster.
    Tensor { weight: Tensor, bias: Tensor },
    /// CPU, f32: see [`PanelMatrix`].
    Panels {
        weight: std::sync::Arc<PanelMatrix>,
        bias: Vec<f32>,
    },
    /// CPU, int8: the quantized target embeddings (or `lm_head.weight`).
    Int8(Int8Linear),
}

/// Up to this many rows the tensor LM head runs as `(W · hidden^T)^T`.
const LM_HEAD_STREAMING_ROWS: usize = 32;

impl LmHead {
    /// `(rows, d_model)` → `(rows, vocab)` logits, as a tensor.
    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        match self {
            LmHead::Tensor { weight, bias } => {
                let rows = hidden.dim(0)?;
                let logits = if rows <= LM_HEAD_STREAMING_ROWS {
                    weight.matmul(&hidden.t()?.contiguous()?)?.t()?
                } else {
                    hidden.matmul(&weight.t()?)?
                };
                // The bias add also lays the transposed product out row-major.
                logits.broadcast_add(bias)
            }
            LmHead::Panels { weight, .. } => {
                let rows = hidden.dim(0)?;
                let logits = self.forward_values(hidden)?;
                Tensor::from_vec(logits, (rows, weight.rows()), hidden.device())
            }
            LmHead::Int8(linear) => linear.forward(hidden),
        }
    }

    /// The same logits as row-major f32 values (what generation consumes).
    fn forward_values(&self, hidden: &Tensor) -> Result<Vec<f32>> {
        match self {
            LmHead::Tensor { .. } => cpu_values(&self.forward(hidden)?),
            LmHead::Panels { weight, bias } => {
                let (rows, d) = hidden.dims2()?;
                if d != weight.cols() {
                    candle_core::bail!("LM head expects {} features, got {d}", weight.cols());
                }
                Ok(weight.matmul_t(&cpu_values(hidden)?, rows, Some(bias)))
            }
            LmHead::Int8(linear) => linear.forward_values(hidden),
        }
    }

    /// [`forward_values`](Self::forward_values) from row-major hidden states `(rows, d_model)`
    /// on the CPU.
    fn forward_rows(&self, hidden: &[f32], rows: usize) -> Result<Vec<f32>> {
        match self {
            LmHead::Panels { weight, bias } => {
                if hidden.len() != rows * weight.cols() {
                    candle_core::bail!("LM head expects {} features per row", weight.cols());
                }
                Ok(weight.matmul_t(hidden, rows, Some(bias)))
            }
            LmHead::Int8(linear) => linear.forward_rows(hidden, rows),
            LmHead::Tensor { .. } => {
                let d = hidden.len() / rows.max(1);
                let hidden = Tensor::from_slice(hidden, (rows, d), &Device::Cpu)?;
                self.forward_values(&hidden)
            }
        }
    }
}

/// `MarianEncoder`.
#[derive(Clone, Debug)]
struct Encoder {
    embed_tokens: TokenEmbedding,
    layers: Vec<EncoderLayer>,
}

/// `MarianDecoder`.
#[derive(Clone, Debug)]
struct Decoder {
    embed_tokens: TokenEmbedding,
    layers: Vec<DecoderLayer>,
}

/// `MarianMTModel`: encoder, decoder, and the language-model head tied to the target embeddings
/// plus `final_logits_bias`.
#[derive(Clone, Debug)]
pub struct MarianMTModel {
    cfg: Config,
    encoder: Encoder,
    decoder: Decoder,
    lm_head: LmHead,
    positions: Tensor,
    embed_scale: f64,
    /// Whether the encoder runs on the CPU's packed values (`marian_encode`) rather than on
    /// candle's tensors (what a GPU, and the tensor-head model that stands in for it, runs).
    packed_encoder: bool,
    device: Device,
    dtype: DType,
    precision: WeightPrecision,
}

/// Finds the first of `names` present in the checkpoint: save_pretrained keeps only one name of
/// a tied tensor, and which one has changed across transformers versions.
fn first_present<'a>(vb: &VarBuilder, names: &[&'a str]) -> Option<&'a str> {
    names.iter().copied().find(|name| vb.contains_tensor(name))
}

impl MarianMTModel {
    /// Builds the model from a checkpoint whose keys are those of `MarianMTModel.state_dict()`.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Self::new_with_precision(cfg, vb, WeightPrecision::F32)
    }

    /// [`MarianMTModel::new`] with the tensor LM head that GPUs use, on any device: lets a
    /// CPU-only test check the GPU's path against the reference.
    pub fn new_with_tensor_head(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Self::build(cfg, vb, WeightPrecision::F32, false, None)
    }

    /// [`new`](Self::new) with every linear layer, the LM head included, in `precision`
    /// (int8: quantized as each weight is read, on the CPU only). Layer norms, attention
    /// scores and the embeddings' positions stay f32.
    pub fn new_with_precision(
        cfg: &Config,
        vb: VarBuilder,
        precision: WeightPrecision,
    ) -> Result<Self> {
        // On the CPU in f32 the LM head (and the embeddings tied to it) live in panels; every
        // other device and dtype uses candle's tensors.
        let use_panels = vb.device().is_cpu() && vb.dtype() == DType::F32;
        Self::build(cfg, vb, precision, use_panels, None)
    }

    /// [`new_with_precision`](Self::new_with_precision) with the checkpoint's file at hand
    /// (the same one `vb` reads): an int8 model then quantizes its embedding matrix a block
    /// of rows at a time as they are read, so that loading never holds the f32 matrix
    /// (119 MB for opus-mt-de-en, the peak of an int8 load) beside its int8 copy.
    pub fn new_reading_rows(
        cfg: &Config,
        vb: VarBuilder,
        precision: WeightPrecision,
        file: &SafetensorsFile,
    ) -> Result<Self> {
        let use_panels = vb.device().is_cpu() && vb.dtype() == DType::F32;
        Self::build(cfg, vb, precision, use_panels, Some(file))
    }

    fn build(
        cfg: &Config,
        vb: VarBuilder,
        precision: WeightPrecision,
        use_panels: bool,
        file: Option<&SafetensorsFile>,
    ) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        if precision == WeightPrecision::Int8 && !vb.device().is_cpu() {
            candle_core::bail!("int8 Marian runs on the CPU only");
        }
        let d = cfg.d_model;
        let target_vocab = cfg.target_vocab_size();
        let missing = |what: &str| {
            candle_core::Error::msg(format!("the checkpoint has no {what} embedding matrix"))
        };

        let (encoder_rows, decoder_name, decoder_vocab) = if cfg.share_encoder_decoder_embeddings {
            let name = first_present(
                &vb,
                &[
                    "model.shared.weight",
                    "model.encoder.embed_tokens.weight",
                    "model.decoder.embed_tokens.weight",
                    "lm_head.weight",
                ],
            )
            .ok_or_else(|| missing("shared"))?;
            (None, name, cfg.vocab_size)
        } else {
            let enc = vb.get((cfg.vocab_size, d), "model.encoder.embed_tokens.weight")?;
            let name = first_present(
                &vb,
                &["model.decoder.embed_tokens.weight", "lm_head.weight"],
            )
            .ok_or_else(|| missing("decoder"))?;
            (Some(enc), name, target_vocab)
        };
        // Read row by row into int8 where the file allows it; otherwise whole, below.
        let streamed_embed = match file {
            Some(file)
                if precision == WeightPrecision::Int8
                    && file.f32_matrix_shape(decoder_name) == Some((decoder_vocab, d)) =>
            {
                Some(std::sync::Arc::new(Int8Matrix::quantize_read(
                    decoder_vocab,
                    d,
                    |first, out| file.read_f32_rows(decoder_name, first, out),
                )?))
            }
            _ => None,
        };
        let decoder_rows = match streamed_embed {
            Some(_) => None,
            None => Some(vb.get((decoder_vocab, d), decoder_name)?),
        };
        let untied_head = if !cfg.tie_word_embeddings && vb.contains_tensor("lm_head.weight") {
            Some(vb.get((target_vocab, d), "lm_head.weight")?)
        } else {
            None
        };
        // Old checkpoints may lack the bias; transformers then starts it at zero.
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            vb.get((1, target_vocab), "final_logits_bias")?
                .reshape(target_vocab)?
        } else {
            Tensor::zeros(target_vocab, vb.dtype(), vb.device())?
        };

        let (decoder_embed, lm_head) = if precision == WeightPrecision::Int8 {
            let quantize = |w: &Tensor| Int8Matrix::from_tensor(w).map(std::sync::Arc::new);
            let embed = match (streamed_embed, decoder_rows) {
                (Some(embed), _) => embed,
                (None, Some(rows)) => quantize(&rows)?,
                (None, None) => unreachable!("the embedding is read one way or the other"),
            };
            let head = match &untied_head {
                Some(w) => quantize(w)?,
                None => embed.clone(),
            };
            let bias = cpu_values(&final_logits_bias)?;
            (
                TokenEmbedding::Int8(embed),
                LmHead::Int8(Int8Linear::from_matrix(head, Some(bias))),
            )
        } else if use_panels {
            let panels = |w: &Tensor| -> Result<std::sync::Arc<PanelMatrix>> {
                let (rows, cols) = w.dims2()?;
                Ok(std::sync::Arc::new(PanelMatrix::from_row_major(
                    &cpu_values(w)?,
                    rows,
                    cols,
                )))
            };
            let decoder_rows = decoder_rows.expect("read whole outside int8");
            let embed = panels(&decoder_rows)?;
            // The panels replace the row-major matrix: free it now, before the layers are
            // read, rather than when `new` returns (a vocab × d_model copy off the peak RSS).
            drop(decoder_rows);
            let head = match &untied_head {
                Some(w) => panels(w)?,
                None => embed.clone(),
            };
            let bias = cpu_values(&final_logits_bias)?;
            (
                TokenEmbedding::Panels(embed),
                LmHead::Panels { weight: head, bias },
            )
        } else {
            let decoder_rows = decoder_rows.expect("read whole outside int8");
            let weight = untied_head.unwrap_or_else(|| decoder_rows.clone());
            (
                TokenEmbedding::Rows(decoder_rows),
                LmHead::Tensor {
                    weight,
                    bias: final_logits_bias,
                },
            )
        };
        let encoder_embed = match encoder_rows {
            Some(rows) => TokenEmbedding::Rows(rows),
            None => decoder_embed.clone(),
        };

        let vb_enc = vb.pp("model.encoder.layers");
        let encoder = Encoder {
            embed_tokens: encoder_embed,
            layers: (0..cfg.encoder_layers)
                .map(|i| EncoderLayer::new(cfg, vb_enc.pp(i), precision))
                .collect::<Result<_>>()?,
        };
        let vb_dec = vb.pp("model.decoder.layers");
        let decoder = Decoder {
            embed_tokens: decoder_embed,
            layers: (0..cfg.decoder_layers)
                .map(|i| DecoderLayer::new(cfg, vb_dec.pp(i), precision))
                .collect::<Result<_>>()?,
        };
        let positions = sinusoidal_table(cfg.max_position_embeddings, d, vb.dtype(), vb.device())?;
        Ok(Self {
            cfg: cfg.clone(),
            encoder,
            decoder,
            lm_head,
            positions,
            embed_scale: if cfg.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            packed_encoder: use_panels || precision == WeightPrecision::Int8,
            device: vb.device().clone(),
            dtype: vb.dtype(),
            precision,
        })
    }

    /// The precision of the linear layers.
    pub fn precision(&self) -> WeightPrecision {
        self.precision
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn embed(&self, embedding: &TokenEmbedding, ids: &Tensor, offset: usize) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        if offset + len > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "sequence of {} tokens exceeds the model's {} positions",
                offset + len,
                self.cfg.max_position_embeddings
            );
        }
        let xs = (embedding.lookup(ids)? * self.embed_scale)?;
        xs.broadcast_add(&self.positions.narrow(0, offset, len)?)
    }

    /// Runs the encoder on right-padded `input_ids` `(batch, src_len)`; `attention_mask` has the
    /// same shape, 1 at tokens and 0 at padding (any integer or float dtype).
    pub fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<EncoderOutput> {
        let (b, s) = input_ids.dims2()?;
        let keep = attention_mask.to_dtype(DType::F32)?;
        // 0 where kept, MASKED where padded: (keep - 1) * -MASKED.
        let mask = ((&keep - 1.0)? * (-MASKED as f64))?
            .reshape((b, 1, 1, s))?
            .to_dtype(self.dtype)?;
        let mut xs = self.embed(&self.encoder.embed_tokens, input_ids, 0)?;
        if self.packed_encoder {
            let tokens = PackedTokens::new(&cpu_values(&keep)?, b, s);
            let d = self.cfg.d_model;
            let mut values = tokens.gather(&cpu_values(&xs)?, d);
            for layer in &self.encoder.layers {
                values = layer.forward_cpu(values, &tokens)?;
            }
            let hidden = Tensor::from_vec(tokens.scatter(&values, d), (b, s, d), &self.device)?;
            let packed = Some(std::sync::Arc::new(PackedStates { tokens, values }));
            return Ok(EncoderOutput {
                hidden,
                mask,
                packed,
            });
        }
        for layer in &self.encoder.layers {
            xs = layer.forward(&xs, &mask)?;
        }
        Ok(EncoderOutput {
            hidden: xs,
            mask,
            packed: None,
        })
    }

    /// An empty decoder cache for `encoded`, one row per source sentence, with the
    /// cross-attention keys/values of every layer computed here once.
    pub fn new_cache(&self, encoded: &EncoderOutput) -> Result<DecoderCache> {
        if self.device.is_cpu() && self.dtype == DType::F32 {
            return self.new_cpu_cache(encoded);
        }
        let layers = self
            .decoder
            .layers
            .iter()
            .map(|layer| {
                let (cross_k, cross_v) = layer.encoder_attn.key_values(&encoded.hidden)?;
                Ok(LayerCache {
                    self_kv: None,
                    cross_k,
                    cross_v,
                })
            })
            .collect::<Result<_>>()?;
        Ok(DecoderCache {
            state: CacheState::Tensors {
                layers,
                cross_mask: encoded.mask.clone(),
            },
            len: 0,
            rows: encoded.batch_size()?,
        })
    }

    /// [`new_cache`](Self::new_cache) for the CPU decoder: cross-attention keys/values once
    /// per source sentence, in plain buffers.
    fn new_cpu_cache(&self, encoded: &EncoderOutput) -> Result<DecoderCache> {
        let (heads, d) = (self.cfg.decoder_attention_heads, self.cfg.d_model);
        let cross = self
            .decoder
            .layers
            .iter()
            .map(
                |layer| match (&encoded.packed, &layer.encoder_attn.key_value) {
                    // The real tokens' keys and values only, zeros at the (masked) padding.
                    (Some(packed), Some(key_value)) => {
                        let kv = key_value.forward_rows(&packed.values, packed.tokens.len())?;
                        Ok(CrossKv {
                            k: packed.tokens.scatter_heads(&kv, 2 * d, 0..d, heads),
                            v: packed.tokens.scatter_heads(&kv, 2 * d, d..2 * d, heads),
                        })
                    }
                    _ => {
                        let (k, v) = layer.encoder_attn.key_values(&encoded.hidden)?;
                        Ok(CrossKv {
                            k: cpu_values(&k)?,
                            v: cpu_values(&v)?,
                        })
                    }
                },
            )
            .collect::<Result<_>>()?;
        let rows = encoded.batch_size()?;
        let cache = StepCache::new(
            cross,
            cpu_values(&encoded.mask)?,
            rows,
            heads,
            self.cfg.d_model / heads,
        );
        Ok(DecoderCache {
            state: CacheState::Cpu(cache),
            len: 0,
            rows,
        })
    }

    /// Feeds `decoder_input_ids` `(rows, t)` after the tokens already in `cache`, updates the
    /// cache and returns the decoder's last hidden states `(rows, t, d_model)`.
    fn decode_hidden(
        &self,
        decoder_input_ids: &Tensor,
        cache: &mut DecoderCache,
    ) -> Result<Tensor> {
        let (rows, t) = decoder_input_ids.dims2()?;
        if rows != cache.rows {
            candle_core::bail!(
                "decoder input has {rows} rows but the cache has {}",
                cache.rows
            );
        }
        let past = cache.len;
        if let CacheState::Cpu(step) = &mut cache.state {
            let hidden = self.decode_hidden_cpu(decoder_input_ids, step, past)?;
            cache.len += t;
            return Tensor::from_vec(hidden, (rows, t, self.cfg.d_model), &self.device);
        }
        let CacheState::Tensors { layers, cross_mask } = &mut cache.state else {
            unreachable!("the CPU cache returned above");
        };
        let causal_mask = if t > 1 {
            let mask: Vec<f32> = (0..t)
                .flat_map(|i| (0..past + t).map(move |j| if j > past + i { MASKED } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(mask, (1, 1, t, past + t), &self.device)?.to_dtype(self.dtype)?)
        } else {
            None
        };
        let mut xs = self.embed(&self.decoder.embed_tokens, decoder_input_ids, past)?;
        for (layer, layer_cache) in self.decoder.layers.iter().zip(layers.iter_mut()) {
            xs = layer.forward(&xs, layer_cache, causal_mask.as_ref(), cross_mask)?;
        }
        cache.len += t;
        Ok(xs)
    }

    /// [`decode_hidden`](Self::decode_hidden) on the CPU cache: hidden states as row-major
    /// values `(rows · t, d_model)`.
    fn decode_hidden_cpu(
        &self,
        decoder_input_ids: &Tensor,
        cache: &mut StepCache,
        past: usize,
    ) -> Result<Vec<f32>> {
        let (_, t) = decoder_input_ids.dims2()?;
        let mut xs =
            cpu_values(&self.embed(&self.decoder.embed_tokens, decoder_input_ids, past)?)?;
        cache.reserve(past + t, past);
        for (index, layer) in self.decoder.layers.iter().enumerate() {
            xs = layer.forward_cpu(xs, index, cache, t, past)?;
        }
        Ok(xs)
    }

    /// Logits `(rows, target_vocab)` of the next token after feeding one token per row.
    pub fn decode_step(&self, tokens: &[u32], cache: &mut DecoderCache) -> Result<Tensor> {
        self.lm_head.forward(&self.step_hidden(tokens, cache)?)
    }

    /// [`decode_step`](Self::decode_step)'s logits as row-major f32 values, `rows × vocab`:
    /// what generation reads, without a round trip through a tensor on the CPU.
    pub fn decode_step_values(&self, tokens: &[u32], cache: &mut DecoderCache) -> Result<Vec<f32>> {
        if let CacheState::Cpu(step) = &mut cache.state {
            if tokens.len() != cache.rows {
                candle_core::bail!(
                    "decoder input has {} rows but the cache has {}",
                    tokens.len(),
                    cache.rows
                );
            }
            let ids = Tensor::from_slice(tokens, (tokens.len(), 1), &self.device)?;
            let hidden = self.decode_hidden_cpu(&ids, step, cache.len)?;
            cache.len += 1;
            return self.lm_head.forward_rows(&hidden, tokens.len());
        }
        self.lm_head
            .forward_values(&self.step_hidden(tokens, cache)?)
    }

    fn step_hidden(&self, tokens: &[u32], cache: &mut DecoderCache) -> Result<Tensor> {
        let ids = Tensor::from_slice(tokens, (tokens.len(), 1), &self.device)?;
        let hidden = self.decode_hidden(&ids, cache)?;
        hidden.i((.., 0, ..))?.contiguous()
    }

    /// Logits `(rows, t, target_vocab)` for every position of `decoder_input_ids`, continuing
    /// from `cache`.
    pub fn decode(&self, decoder_input_ids: &Tensor, cache: &mut DecoderCache) -> Result<Tensor> {
        let hidden = self.decode_hidden(decoder_input_ids, cache)?;
        let (rows, t, d) = hidden.dims3()?;
        self.lm_head
            .forward(&hidden.reshape((rows * t, d))?)?
            .reshape((rows, t, ()))
    }

    /// The full forward pass of `MarianMTModel(input_ids, attention_mask, decoder_input_ids)`:
    /// logits `(batch, tgt_len, target_vocab)`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        decoder_input_ids: &Tensor,
    ) -> Result<Tensor> {
        let encoded = self.encode(input_ids, attention_mask)?;
        let mut cache = self.new_cache(&encoded)?;
        self.decode(decoder_input_ids, &mut cache)
    }
}

/// Opens a checkpoint file as a `VarBuilder`: `*.safetensors` read tensor by tensor (see
/// [`SafetensorsFile`]: no memory map, so the file costs no resident memory once the model is
/// built), anything else read as a PyTorch pickle (`pytorch_model.bin`). Tensors are
/// converted to `dtype` on load.
pub fn var_builder(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    Ok(open_checkpoint(path, dtype, device)?.0)
}

/// [`var_builder`], and the safetensors file behind it (for
/// [`MarianMTModel::new_reading_rows`]), if the checkpoint is one.
pub fn open_checkpoint(
    path: &Path,
    dtype: DType,
    device: &Device,
) -> Result<(VarBuilder<'static>, Option<std::sync::Arc<SafetensorsFile>>)> {
    let is_safetensors = path.extension().is_some_and(|ext| ext == "safetensors");
    if is_safetensors {
        let file = std::sync::Arc::new(SafetensorsFile::open(path)?);
        let vb = VarBuilder::from_backend(
            Box::new(SharedSafetensors(file.clone())),
            dtype,
            device.clone(),
        );
        Ok((vb, Some(file)))
    } else {
        Ok((VarBuilder::from_pth(path, dtype, device)?, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_opus_mt_config_gets_marian_defaults() {
        // The shape of Helsinki-NLP/opus-mt-de-en's 2020 config.json (abridged).
        let json = r#"{
            "activation_function": "swish", "d_model": 512, "decoder_attention_heads": 8,
            "decoder_ffn_dim": 2048, "decoder_layers": 6, "decoder_start_token_id": 58100,
            "encoder_attention_heads": 8, "encoder_ffn_dim": 2048, "encoder_layers": 6,
            "eos_token_id": 0, "max_position_embeddings": 512, "pad_token_id": 58100,
            "scale_embedding": true, "static_position_embeddings": true,
            "normalize_embedding": false, "vocab_size": 58101, "num_beams": 4,
            "bad_words_ids": [[58100]], "max_length": 512
        }"#;
        let cfg: Config = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.activation_function, Activation::Silu);
        assert!(cfg.share_encoder_decoder_embeddings);
        assert_eq!(cfg.target_vocab_size(), 58101);
        assert_eq!(cfg.forced_eos_id(), Some(0));
        assert_eq!(cfg.num_beams, Some(4));
        cfg.validate().unwrap();
    }

    #[test]
    fn separate_vocab_config_uses_decoder_vocab_for_logits() {
        let json = r#"{"vocab_size": 100, "decoder_vocab_size": 80, "d_model": 16,
            "share_encoder_decoder_embeddings": false, "pad_token_id": 79,
            "decoder_start_token_id": 79, "eos_token_id": [0], "forced_eos_token_id": null,
            "activation_function": "relu"}"#;
        let cfg: Config = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.target_vocab_size(), 80);
        assert_eq!(cfg.eos_id(), 0);
        assert_eq!(cfg.forced_eos_id(), None);
    }

    #[test]
    fn sinusoidal_table_puts_sines_then_cosines() {
        let t = sinusoidal_table(3, 4, DType::F32, &Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        // Position 0: sin 0 = 0 in the first half, cos 0 = 1 in the second.
        assert_eq!(t[0], vec![0.0, 0.0, 1.0, 1.0]);
        // Position 2, frequency index 1: angle = 2 / 10000^(2/4) = 0.02.
        assert!((t[2][1] - 0.02f64.sin() as f32).abs() < 1e-7);
        assert!((t[2][3] - 0.02f64.cos() as f32).abs() < 1e-7);
    }
}
