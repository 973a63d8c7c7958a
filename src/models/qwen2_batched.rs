//! Qwen2 / Qwen2.5 from a GGUF file, decoding several sequences at once.
//!
//! Follows candle-transformers 0.11.1 `models::quantized_qwen2` (itself transformers'
//! `Qwen2ForCausalLM` as laid out by llama.cpp's convert_hf_to_gguf.py): the same GGUF tensors,
//! RoPE tables, RMS norms, biases and attention arithmetic (scores divided by √head_dim after
//! the product, causal mask by `where_cond`, softmax over the last dimension). It differs in
//! what a decode step costs, not in what it computes:
//! - Each sequence has its own [`SequenceCache`], preallocated to the length the sequence can
//!   reach and written in place, instead of one cache grown by concatenation every step.
//! - Grouped-query attention multiplies each key/value head with its group of query heads
//!   directly instead of repeating the key/value heads (candle's `repeat_kv` copies the whole
//!   cache every step).
//! - On the CPU a prompt chunk's attention is [`prompt_attention`]'s: every query row's result
//!   depends only on its own query and the keys and values up to its position, so (with
//!   products that compute each row alone, [`RowLinear::rows_independent_in_prompts`]) a
//!   prompt's keys and values are the same bits however it is cut into chunks, and
//!   [`Qwen2Batched::copy_prefix`] can hand one sequence's prefix to another.
//! - [`Qwen2Batched::decode`] feeds one token of each of several sequences: the linear layers
//!   run on the sequences' rows stacked, so one matmul reads each weight once for all of them,
//!   while RoPE and attention run per sequence at its own position over its own cache.
//!
//! Token identity with one-by-one generation holds by construction: every operation is either
//! per sequence or per row, and the stacked matmuls are row-independent ([`RowLinear`]).

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, QStorage, QTensor};
use candle_core::{DType, Device, Layout, Module, Result, Storage, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::exp_sum::silu_mul;
use super::group_attention::attend_group;
use super::prompt_attention::{self, ChunkShape};
use super::row_linear::{RowLinear, SharedInputLinear};

/// The output buffer of [`Qwen2Batched::attend_rows_cpu`] and [`swiglu`], shared with
/// candle's CPU pool: each work item writes its own disjoint rows.
struct OutRows(*mut f32);
// SAFETY: see above.
unsafe impl Sync for OutRows {}

/// The hyperparameters a GGUF's `qwen2.*` metadata holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Config {
    pub(crate) n_head: usize,
    pub(crate) n_kv_head: usize,
    pub(crate) head_dim: usize,
    pub(crate) n_layer: usize,
    pub(crate) context_length: usize,
    pub(crate) rms_norm_eps: f64,
    pub(crate) rope_freq_base: f32,
}

impl Config {
    pub(crate) fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let get = |key: &str| match content.metadata.get(key) {
            Some(v) => Ok(v),
            None => candle_core::bail!("cannot find {key} in metadata"),
        };
        let n_head = get("qwen2.attention.head_count")?.to_u32()? as usize;
        let hidden = get("qwen2.embedding_length")?.to_u32()? as usize;
        Ok(Config {
            n_head,
            n_kv_head: get("qwen2.attention.head_count_kv")?.to_u32()? as usize,
            head_dim: hidden / n_head,
            n_layer: get("qwen2.block_count")?.to_u32()? as usize,
            context_length: get("qwen2.context_length")?.to_u32()? as usize,
            rms_norm_eps: get("qwen2.attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            rope_freq_base: get("qwen2.rope.freq_base")
                .and_then(|v| v.to_f32())
                .unwrap_or(10_000.0),
        })
    }
}

/// One sequence's keys and values for every layer, `(n_kv_head, capacity, head_dim)` each, of
/// which the first `len` positions are filled.
pub(crate) struct SequenceCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

impl SequenceCache {
    /// Positions filled so far (the next token's position).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

struct Layer {
    /// The query, key and value projections.
    qkv: SharedInputLinear,
    bq: Tensor,
    bk: Tensor,
    bv: Tensor,
    wo: RowLinear,
    attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    /// The gate and up projections.
    gate_up: SharedInputLinear,
    down: RowLinear,
}

impl Layer {
    fn mlp(&self, xs: &Tensor) -> Result<Tensor> {
        let [gate, up] = outputs::<2>(self.gate_up.forward(xs)?)?;
        self.down.forward(&swiglu(&gate, &up)?)
    }

    /// [`Layer::mlp`] with every row independent of the others.
    fn mlp_rows(&self, xs: &Tensor) -> Result<Tensor> {
        let [gate, up] = outputs::<2>(self.gate_up.forward_rows(xs)?)?;
        self.down.forward_rows(&swiglu(&gate, &up)?)
    }
}

/// `silu(gate) · up`, the MLP's activation. On the CPU, for the `(rows, width)` halves of the
/// fused gate and up projection, one pass over both rows at a time (`exp_sum::silu_mul`,
/// SiLU on a vectorized exponential, within a few ulp of candle's), rows across candle's
/// pool: candle made one tensor for the SiLU and another for the product, walking the
/// halves through their strides, and called libm's scalar `expf` for every value. Q4_K_M
/// decode, 1 and 8 sequences: 25.7 / 26.0 → 26.4 / 26.2 and 58.3 / 57.3 → 59.3 / 59.5 tok/s
/// (two alternating pairs, AMD EPYC, AVX2); a 512-token prompt unchanged (87.4 → 87.6 tok/s,
/// means of four). Elsewhere candle's ops.
fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    // (rows, width, row stride) of a matrix whose rows are contiguous.
    let rows_of = |t: &Tensor| match (t.dims(), t.layout().stride(), t.dtype()) {
        (&[rows, width], &[stride, 1], DType::F32) => Some((rows, width, stride)),
        _ => None,
    };
    let (Device::Cpu, Some((rows, width, g_stride)), Some((up_rows, up_width, u_stride))) =
        (gate.device(), rows_of(gate), rows_of(up))
    else {
        return candle_nn::ops::silu(gate)? * up;
    };
    if (rows, width) != (up_rows, up_width) {
        candle_core::bail!(
            "gate {:?} and up {:?} differ in shape",
            gate.dims(),
            up.dims()
        );
    }
    let mut out = vec![0f32; rows * width];
    {
        // Both halves may be views of one storage: two read locks, as candle's own binary
        // ops take on such operands.
        let (g_storage, g_layout) = gate.storage_and_layout();
        let (u_storage, u_layout) = up.storage_and_layout();
        let (g, u) = (
            cpu_f32(&g_storage, g_layout)?,
            cpu_f32(&u_storage, u_layout)?,
        );
        let out_rows = OutRows(out.as_mut_ptr());
        candle_core::utils::barrier_pool().execute_chunked(rows, |items| {
            let out_rows = &out_rows;
            for r in items {
                // SAFETY: row r alone writes `out[r·width..(r+1)·width]`, inside `out`, which
                // outlives `execute_chunked`.
                let out =
                    unsafe { std::slice::from_raw_parts_mut(out_rows.0.add(r * width), width) };
                silu_mul(
                    &g[r * g_stride..][..width],
                    &u[r * u_stride..][..width],
                    out,
                );
            }
        });
    }
    Tensor::from_vec(out, (rows, width), gate.device())
}

/// The `N` outputs of a [`SharedInputLinear`] of `N` weights.
fn outputs<const N: usize>(outputs: Vec<Tensor>) -> Result<[Tensor; N]> {
    let n = outputs.len();
    outputs
        .try_into()
        .map_err(|_| candle_core::Error::Msg(format!("{n} outputs where {N} were expected")))
}

/// The token embeddings. On the CPU they stay as the GGUF holds them (quantized) and a row is
/// dequantized when a token is looked up, as llama.cpp's `get_rows` does: the whole table in f32
/// would be vocab × hidden × 4 bytes (933 MB for Qwen2.5-1.5B, more than its Q4_K_M weights).
enum Embeddings {
    Quantized {
        weights: Arc<QTensor>,
        hidden: usize,
    },
    Table(Tensor),
    /// Tied to the output head, which holds them in its own form
    /// ([`RowLinear::weight_rows`]).
    InOutputHead,
}

impl Embeddings {
    fn new(weights: Arc<QTensor>, device: &Device) -> Result<Self> {
        if !matches!(device, Device::Cpu) {
            return Ok(Embeddings::Table(weights.dequantize(device)?));
        }
        let (_, hidden) = weights.shape().dims2()?;
        Ok(Embeddings::Quantized { weights, hidden })
    }

    /// `(ids.len(), hidden)`: each row exactly the dequantized table's row.
    fn rows(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        let (weights, hidden) = match self {
            Embeddings::Table(table) => {
                return table.index_select(&Tensor::new(ids, device)?, 0);
            }
            Embeddings::Quantized { weights, hidden } => (weights, *hidden),
            Embeddings::InOutputHead => {
                candle_core::bail!("the embeddings are the output head's: look them up there")
            }
        };
        let dtype = weights.dtype();
        let row_bytes = hidden / dtype.block_size() * dtype.type_size();
        let data = weights.data()?;
        let vocab = data.len() / row_bytes;
        let rows = ids
            .iter()
            .map(|&id| {
                let id = id as usize;
                if id >= vocab {
                    candle_core::bail!("token id {id} is outside the vocabulary of {vocab}")
                }
                let row = &data[id * row_bytes..(id + 1) * row_bytes];
                let storage = QStorage::from_data(Cow::Borrowed(row), device, dtype)?;
                QTensor::new(storage, (1, hidden))?.dequantize(device)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&rows, 0)
    }
}

/// The network; its state lives in the [`SequenceCache`]s handed to it.
pub(crate) struct Qwen2Batched {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: RowLinear,
    /// RoPE tables, `(context_length, head_dim / 2)`.
    cos: Tensor,
    sin: Tensor,
    neg_inf: Tensor,
    cfg: Config,
    device: Device,
    /// Whether a prompt's keys and values are the same bits however it is chunked: on the
    /// CPU, with every layer's prompt products computing each row alone.
    prefixes_reusable: bool,
}

/// candle-transformers' `precomput_freqs_cis`, unchanged.
fn rope_tables(cfg: &Config, device: &Device) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..cfg.head_dim)
        .step_by(2)
        .map(|i| 1f32 / cfg.rope_freq_base.powf(i as f32 / cfg.head_dim as f32))
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx_theta = Tensor::arange(0, cfg.context_length as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((cfg.context_length, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    Ok((idx_theta.cos()?, idx_theta.sin()?))
}

impl Qwen2Batched {
    pub(crate) fn from_gguf<R: std::io::Seek + std::io::Read>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let cfg = Config::from_gguf(content)?;
        let mut tensor = |name: &str| content.tensor(reader, name, device);
        let token_embd = Arc::new(tensor("token_embd.weight")?);
        let norm = RmsNorm::from_qtensor(tensor("output_norm.weight")?, cfg.rms_norm_eps)?;
        // Without `output.weight` the embeddings are tied: one tensor, read and held once,
        // looked up in the output head itself where it keeps only its own repacked form.
        let (output, embeddings) = match tensor("output.weight") {
            Ok(w) => (RowLinear::new(w)?, Embeddings::new(token_embd, device)?),
            Err(_) => {
                let output = RowLinear::from_arc(token_embd.clone())?;
                let embeddings = if output.holds_weight_rows() {
                    // The compact table goes now, before the layers are read in beside it.
                    drop(token_embd);
                    Embeddings::InOutputHead
                } else {
                    Embeddings::new(token_embd, device)?
                };
                (output, embeddings)
            }
        };
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let mut get = |part: &str| tensor(&format!("blk.{i}.{part}"));
            layers.push(Layer {
                qkv: SharedInputLinear::new(vec![
                    get("attn_q.weight")?,
                    get("attn_k.weight")?,
                    get("attn_v.weight")?,
                ])?,
                bq: get("attn_q.bias")?.dequantize(device)?,
                bk: get("attn_k.bias")?.dequantize(device)?,
                bv: get("attn_v.bias")?.dequantize(device)?,
                wo: RowLinear::new(get("attn_output.weight")?)?,
                attn_norm: RmsNorm::from_qtensor(get("attn_norm.weight")?, cfg.rms_norm_eps)?,
                ffn_norm: RmsNorm::from_qtensor(get("ffn_norm.weight")?, cfg.rms_norm_eps)?,
                gate_up: SharedInputLinear::new(vec![
                    get("ffn_gate.weight")?,
                    get("ffn_up.weight")?,
                ])?,
                down: RowLinear::new(get("ffn_down.weight")?)?,
            });
        }
        let (cos, sin) = rope_tables(&cfg, device)?;
        let prefixes_reusable = device.is_cpu()
            && layers.iter().all(|l| {
                l.qkv.rows_independent_in_prompts()
                    && l.wo.rows_independent_in_prompts()
                    && l.gate_up.rows_independent_in_prompts()
                    && l.down.rows_independent_in_prompts()
            });
        Ok(Qwen2Batched {
            embeddings,
            layers,
            norm,
            output,
            cos,
            sin,
            neg_inf: Tensor::new(f32::NEG_INFINITY, device)?,
            cfg,
            device: device.clone(),
            prefixes_reusable,
        })
    }

    /// Whether [`Qwen2Batched::copy_prefix`] gives a sequence exactly the keys and values that
    /// prefilling those positions itself would: each position's are then the same bits however
    /// the prompt was chunked (the attention of [`prompt_attention`], products that compute
    /// each row alone). Where candle's own prompt kernels run (formats and shapes polybrief
    /// has no tiles for, the GPU), they may differ in the last bits.
    pub(crate) fn prefixes_reusable(&self) -> bool {
        self.prefixes_reusable
    }

    /// Starts the empty cache `to` with the first `len` positions of `from`, as if `to` had
    /// been prefilled with the tokens `from` holds there.
    pub(crate) fn copy_prefix(
        &self,
        from: &SequenceCache,
        to: &mut SequenceCache,
        len: usize,
    ) -> Result<()> {
        if to.len != 0 || len > from.len || len > to.capacity {
            candle_core::bail!(
                "a prefix of {len} positions from a cache of {} into one of {} (holding {})",
                from.len,
                to.capacity,
                to.len
            )
        }
        if len == 0 {
            return Ok(());
        }
        for (source, target) in [(&from.keys, &mut to.keys), (&from.values, &mut to.values)] {
            for (s, t) in source.iter().zip(target.iter_mut()) {
                t.slice_set(&s.narrow(1, 0, len)?.contiguous()?, 1, 0)?;
            }
        }
        to.len = len;
        Ok(())
    }

    /// An empty cache for a sequence of at most `capacity` positions (prompt and reply).
    pub(crate) fn new_cache(&self, capacity: usize) -> Result<SequenceCache> {
        let capacity = capacity.clamp(1, self.cfg.context_length);
        let shape = (self.cfg.n_kv_head, capacity, self.cfg.head_dim);
        let mut keys = Vec::with_capacity(self.cfg.n_layer);
        let mut values = Vec::with_capacity(self.cfg.n_layer);
        for _ in 0..self.cfg.n_layer {
            keys.push(Tensor::zeros(shape, DType::F32, &self.device)?);
            values.push(Tensor::zeros(shape, DType::F32, &self.device)?);
        }
        Ok(SequenceCache {
            keys,
            values,
            len: 0,
            capacity,
        })
    }

    fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        match self.embeddings {
            Embeddings::InOutputHead => self.output.weight_rows(ids, &self.device),
            _ => self.embeddings.rows(ids, &self.device),
        }
    }

    fn check_room(&self, cache: &SequenceCache, tokens: usize) -> Result<()> {
        if cache.len + tokens > cache.capacity {
            candle_core::bail!(
                "the sequence's cache holds {} positions; {} more do not fit",
                cache.capacity,
                tokens
            )
        }
        Ok(())
    }

    /// Feeds `ids` (the next tokens of one sequence) and returns the logits after the last,
    /// `(vocab,)`.
    pub(crate) fn prefill(&self, cache: &mut SequenceCache, ids: &[u32]) -> Result<Tensor> {
        let seq_len = ids.len();
        if seq_len == 0 {
            candle_core::bail!("no tokens to feed")
        }
        self.check_room(cache, seq_len)?;
        let pos = cache.len;
        let cos = self.cos.narrow(0, pos, seq_len)?;
        let sin = self.sin.narrow(0, pos, seq_len)?;
        // The CPU's attention (`prompt_attention`) knows which keys each query sees.
        let mask = (seq_len > 1 && !self.device.is_cpu())
            .then(|| candle_transformers::utils::build_causal_mask(seq_len, pos, &self.device))
            .transpose()?;
        let (n_head, n_kv, d) = (self.cfg.n_head, self.cfg.n_kv_head, self.cfg.head_dim);
        let mut xs = self.embed(ids)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let h = layer.attn_norm.forward(&xs)?;
            let heads = |t: Tensor, n: usize| -> Result<Tensor> {
                t.reshape((1, seq_len, n, d))?.transpose(1, 2)?.contiguous()
            };
            let [q, k, v] = outputs::<3>(layer.qkv.forward(&h)?)?;
            let q = heads(q.broadcast_add(&layer.bq)?, n_head)?;
            let k = heads(k.broadcast_add(&layer.bk)?, n_kv)?;
            let v = heads(v.broadcast_add(&layer.bv)?, n_kv)?;
            let q = candle_nn::rotary_emb::rope(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&k, &cos, &sin)?;
            cache.keys[l].slice_set(&k.squeeze(0)?, 1, pos)?;
            cache.values[l].slice_set(&v.squeeze(0)?.contiguous()?, 1, pos)?;
            let y = if self.device.is_cpu() {
                self.attend_chunk_cpu(&q, cache, l, pos, seq_len)?
            } else {
                // (n_kv, n_rep, seq, d) → (seq, hidden)
                self.attend(&q.squeeze(0)?, cache, l, pos + seq_len, mask.as_ref())?
                    .reshape((n_head, seq_len, d))?
                    .transpose(0, 1)?
                    .reshape((seq_len, n_head * d))?
            };
            xs = (layer.wo.forward(&y)? + xs)?;
            let h = layer.ffn_norm.forward(&xs)?;
            xs = (layer.mlp(&h)? + xs)?;
        }
        cache.len += seq_len;
        let last = xs.narrow(0, seq_len - 1, 1)?;
        // The decode steps' product: one row, whichever chunk it ends.
        self.output
            .forward_rows(&self.norm.forward(&last)?)?
            .squeeze(0)
    }

    /// Feeds one token to each sequence (`tokens[i]` to `caches[i]`, each at its own position)
    /// and returns their next-token logits, `(sequences, vocab)`.
    pub(crate) fn decode(
        &self,
        caches: &mut [&mut SequenceCache],
        tokens: &[u32],
    ) -> Result<Tensor> {
        let n = tokens.len();
        if n == 0 || caches.len() != n {
            candle_core::bail!("{} tokens for {} sequences", n, caches.len())
        }
        for cache in caches.iter() {
            self.check_room(cache, 1)?;
        }
        let (n_head, n_kv, d) = (self.cfg.n_head, self.cfg.n_kv_head, self.cfg.head_dim);
        let positions: Vec<u32> = caches.iter().map(|c| c.len as u32).collect();
        let positions = Tensor::new(positions.as_slice(), &self.device)?;
        let cos = self.cos.index_select(&positions, 0)?.unsqueeze(1)?;
        let sin = self.sin.index_select(&positions, 0)?.unsqueeze(1)?;
        let mut xs = self.embed(tokens)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let h = layer.attn_norm.forward(&xs)?;
            let [q, k, v] = outputs::<3>(layer.qkv.forward_rows(&h)?)?;
            let q = q.broadcast_add(&layer.bq)?;
            let k = k.broadcast_add(&layer.bk)?;
            let v = v.broadcast_add(&layer.bv)?;
            // Batched RoPE: row i turned by its own position's angles.
            let q = candle_nn::rotary_emb::rope(&q.reshape((n, n_head, 1, d))?, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope(&k.reshape((n, n_kv, 1, d))?, &cos, &sin)?;
            let v = v.reshape((n, n_kv, 1, d))?;
            for (i, cache) in caches.iter_mut().enumerate() {
                let pos = cache.len;
                cache.keys[l].slice_set(&k.get(i)?, 1, pos)?;
                cache.values[l].slice_set(&v.get(i)?, 1, pos)?;
            }
            let y = match self.device {
                Device::Cpu => self.attend_rows_cpu(&q, caches, l)?,
                _ => {
                    let mut rows = Vec::with_capacity(n);
                    for (i, cache) in caches.iter().enumerate() {
                        let y = self.attend(&q.get(i)?, cache, l, cache.len + 1, None)?;
                        rows.push(y.reshape((1, n_head * d))?);
                    }
                    Tensor::cat(&rows, 0)?
                }
            };
            xs = (layer.wo.forward_rows(&y)? + xs)?;
            let h = layer.ffn_norm.forward(&xs)?;
            xs = (layer.mlp_rows(&h)? + xs)?;
        }
        for cache in caches.iter_mut() {
            cache.len += 1;
        }
        self.output.forward_rows(&self.norm.forward(&xs)?)
    }

    /// The decode step's attention on the CPU: each sequence's one query row `(n, n_head, 1, d)`
    /// over its cache of layer `l` (this step's key and value already written), every
    /// (sequence, key/value head) pair a work item on candle's CPU pool, attending with its
    /// whole group of query heads so that each key and value row is read once per step
    /// ([`attend_group`]); returns `(n, n_head · d)`. The arithmetic is
    /// [`Qwen2Batched::attend`]'s, with the 1/√d scale applied to the query before the dot
    /// products rather than to their results. A work item depends on its own sequence only, so
    /// a sequence's result is the same whatever other sequences decode beside it.
    fn attend_rows_cpu(
        &self,
        q: &Tensor,
        caches: &[&mut SequenceCache],
        l: usize,
    ) -> Result<Tensor> {
        let (n_head, n_kv, d) = (self.cfg.n_head, self.cfg.n_kv_head, self.cfg.head_dim);
        let n_rep = n_head / n_kv;
        let scale = 1.0 / (d as f32).sqrt();
        let q: Vec<f32> = q
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .map(|x| x * scale)
            .collect();
        let storages = caches
            .iter()
            .map(|c| {
                Ok((
                    c.keys[l].storage_and_layout(),
                    c.values[l].storage_and_layout(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut kv = Vec::with_capacity(caches.len());
        for (((keys, k_layout), (values, v_layout)), cache) in storages.iter().zip(caches) {
            kv.push((
                cpu_f32(keys, k_layout)?,
                cpu_f32(values, v_layout)?,
                cache.len + 1,
                cache.capacity,
            ));
        }
        // Item (s, g) reads and writes query heads g·n_rep .. (g+1)·n_rep of sequence s,
        // `group` values from `item · group`.
        let group = n_rep * d;
        let mut out = vec![0f32; caches.len() * n_head * d];
        let out_ptr = OutRows(out.as_mut_ptr());
        candle_core::utils::barrier_pool().execute_chunked(caches.len() * n_kv, |items| {
            let out_ptr = &out_ptr;
            let mut scratch = Vec::new();
            for item in items {
                let (s, g) = (item / n_kv, item % n_kv);
                let (keys, values, kv_len, cap) = kv[s];
                let base = g * cap * d;
                // SAFETY: item (s, g) alone writes `out[item·group..(item+1)·group]`, inside
                // `out`, which outlives `execute_chunked`.
                let out =
                    unsafe { std::slice::from_raw_parts_mut(out_ptr.0.add(item * group), group) };
                attend_group(
                    &q[item * group..(item + 1) * group],
                    &keys[base..base + kv_len * d],
                    &values[base..base + kv_len * d],
                    n_rep,
                    &mut scratch,
                    out,
                );
            }
        });
        Tensor::from_vec(out, (caches.len(), n_head * d), &self.device)
    }

    /// A prompt chunk's attention on the CPU: the queries `(1, n_head, seq, d)` at positions
    /// `pos..pos + seq` over layer `l` of the cache (the chunk's keys and values already
    /// written); returns `(seq, n_head · d)`.
    fn attend_chunk_cpu(
        &self,
        q: &Tensor,
        cache: &SequenceCache,
        l: usize,
        pos: usize,
        seq_len: usize,
    ) -> Result<Tensor> {
        let (n_head, d) = (self.cfg.n_head, self.cfg.head_dim);
        let q = q.contiguous()?;
        let (q_storage, q_layout) = q.storage_and_layout();
        let (k_storage, k_layout) = cache.keys[l].storage_and_layout();
        let (v_storage, v_layout) = cache.values[l].storage_and_layout();
        let mut out = vec![0f32; seq_len * n_head * d];
        prompt_attention::causal_attention(
            ChunkShape {
                heads: n_head,
                kv_heads: self.cfg.n_kv_head,
                head_dim: d,
                past: pos,
                rows: seq_len,
                capacity: cache.capacity,
            },
            cpu_f32(&q_storage, q_layout)?,
            cpu_f32(&k_storage, k_layout)?,
            cpu_f32(&v_storage, v_layout)?,
            &mut out,
        )?;
        Tensor::from_vec(out, (seq_len, n_head * d), &self.device)
    }

    /// Attention of one sequence's queries `(n_head, seq, d)` over the first `kv_len`
    /// positions of layer `l` of its cache; returns `(n_kv, n_rep * seq, d)`, query heads in
    /// order. Query head `h` reads key/value head `h / n_rep`, as `repeat_kv` arranges.
    fn attend(
        &self,
        q: &Tensor,
        cache: &SequenceCache,
        l: usize,
        kv_len: usize,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (n_head, seq_len, d) = q.dims3()?;
        let n_kv = self.cfg.n_kv_head;
        let n_rep = n_head / n_kv;
        let q = q.reshape((n_kv, n_rep * seq_len, d))?;
        let keys = cache.keys[l].narrow(1, 0, kv_len)?;
        let values = cache.values[l].narrow(1, 0, kv_len)?;
        let att = (q.matmul(&keys.t()?)? / (d as f64).sqrt())?;
        let att = match mask {
            None => att,
            Some(mask) => {
                let att = att.reshape((n_kv, n_rep, seq_len, kv_len))?;
                let mask = mask.broadcast_as(att.shape())?;
                mask.where_cond(&self.neg_inf.broadcast_as(att.shape())?, &att)?
                    .reshape((n_kv, n_rep * seq_len, kv_len))?
            }
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        att.matmul(&values)
    }
}

/// The `f32` data of a CPU tensor from its layout's start.
fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(cpu) => Ok(&cpu.as_slice::<f32>()?[layout.start_offset()..]),
        _ => candle_core::bail!("the tensor is not on the CPU"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use candle_transformers::models::quantized_qwen2;

    use super::super::cpu_level::CpuLevel;
    use super::*;

    fn load(file: &str) -> (Qwen2Batched, quantized_qwen2::ModelWeights) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/qwen2")
            .join(file);
        let read = || {
            let mut reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            let content = gguf_file::Content::read(&mut reader).unwrap();
            (content, reader)
        };
        let (content, mut reader) = read();
        let ours = Qwen2Batched::from_gguf(&content, &mut reader, &Device::Cpu).unwrap();
        let (content, mut reader) = read();
        let candle =
            quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, &Device::Cpu).unwrap();
        (ours, candle)
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn logits_match_candles_quantized_qwen2_in_prefill_and_every_decode_step() {
        for file in ["tiny/model-q8_0.gguf", "tiny-q4k/model-q4_k.gguf"] {
            let (ours, mut candle) = load(file);
            let prompt: Vec<u32> = (0..37u32).map(|i| (i * 131 + 7) % 600).collect();
            let mut cache = ours.new_cache(64).unwrap();
            // Two prefill pieces (the second attends to the first through the cache).
            let mut mine = None;
            let mut theirs = None;
            for (start, piece) in [(0, &prompt[..25]), (25, &prompt[25..])] {
                mine = Some(ours.prefill(&mut cache, piece).unwrap());
                let input = Tensor::new(piece, &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap();
                theirs = Some(
                    candle
                        .forward(&input, start)
                        .unwrap()
                        .flatten_all()
                        .unwrap(),
                );
            }
            let (mut mine, mut theirs) = (mine.unwrap(), theirs.unwrap());
            for step in 0..12 {
                // The prompt's attention sums in another order than candle's gemm (by ~5e-7),
                // and the next product quantizes its input to 8 bits a block: one value moved
                // across a rounding boundary moves this random model's logits (up to ~32) by up
                // to ~0.4, as scaling candle's own attention output by 1 + 2e-7 does. The
                // greedy tokens stay the same.
                let diff = max_abs_diff(&mine, &theirs);
                let scale = theirs
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    diff < 0.02 * scale,
                    "{file} step {step}: max |Δlogit| = {diff} of logits up to {scale}"
                );
                let next = theirs.argmax(0).unwrap().to_scalar::<u32>().unwrap();
                assert_eq!(mine.argmax(0).unwrap().to_scalar::<u32>().unwrap(), next);
                let pos = cache.len();
                mine = ours
                    .decode(&mut [&mut cache], &[next])
                    .unwrap()
                    .squeeze(0)
                    .unwrap();
                let input = Tensor::new(&[next], &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap();
                theirs = candle.forward(&input, pos).unwrap().flatten_all().unwrap();
            }
        }
    }

    fn bits(t: &Tensor) -> Vec<u32> {
        let t = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        t.into_iter().map(f32::to_bits).collect()
    }

    /// The logits after feeding `pieces` of a prompt into `cache` (from where it stands), then
    /// after each of three decode steps.
    fn logits_after(ours: &Qwen2Batched, cache: &mut SequenceCache, pieces: &[&[u32]]) -> Vec<u32> {
        let mut logits = None;
        for piece in pieces {
            logits = Some(ours.prefill(cache, piece).unwrap());
        }
        let mut all = bits(&logits.unwrap());
        for token in [3, 500, 41] {
            all.extend(bits(&ours.decode(&mut [&mut *cache], &[token]).unwrap()));
        }
        all
    }

    /// Whether this machine runs the fixtures' prompts on kernels that compute each row alone;
    /// on AVX2 it must (otherwise the tests below would pass by skipping), unless a capped
    /// level leaves candle its VNNI tiles (`row_linear::candle_has_vnni_tiles`).
    fn reusable(ours: &Qwen2Batched, file: &str) -> bool {
        if CpuLevel::current() == CpuLevel::Avx2
            && !super::super::row_linear::candle_has_vnni_tiles()
        {
            assert!(ours.prefixes_reusable(), "{file}");
        }
        ours.prefixes_reusable()
    }

    #[test]
    fn swiglu_on_the_fused_projections_halves_matches_candles_silu_times_up() {
        // Three rows of a fused [gate | up] output, 37 columns each half: the halves are
        // strided views, as `SharedInputLinear` returns them.
        let (rows, width) = (3, 37);
        let fused: Vec<f32> = (0..rows * 2 * width)
            .map(|i| ((i * 29) % 61) as f32 * 0.25 - 7.5)
            .collect();
        let fused = Tensor::from_vec(fused, (rows, 2 * width), &Device::Cpu).unwrap();
        let gate = fused.narrow(1, 0, width).unwrap();
        let up = fused.narrow(1, width, width).unwrap();
        let ours = swiglu(&gate, &up).unwrap();
        assert_eq!(ours.dims(), &[rows, width]);
        let want = (candle_nn::ops::silu(&gate).unwrap() * &up).unwrap();
        let (ours, want) = (
            ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        for (a, b) in ours.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn a_prompt_gives_the_same_bits_however_it_is_chunked() {
        for file in ["tiny/model-q8_0.gguf", "tiny-q4k/model-q4_k.gguf"] {
            let (ours, _) = load(file);
            if !reusable(&ours, file) {
                continue;
            }
            let prompt: Vec<u32> = (0..37u32).map(|i| (i * 131 + 7) % 600).collect();
            let whole = logits_after(&ours, &mut ours.new_cache(48).unwrap(), &[&prompt]);
            let cuts: [&[usize]; 3] = [&[1, 25], &[16, 32], &[7, 8, 9, 36]];
            for cut in cuts {
                let mut pieces = Vec::new();
                let mut start = 0;
                for &end in cut.iter().chain([&prompt.len()]) {
                    pieces.push(&prompt[start..end]);
                    start = end;
                }
                let chunked = logits_after(&ours, &mut ours.new_cache(48).unwrap(), &pieces);
                let differing = whole.iter().zip(&chunked).filter(|(a, b)| a != b).count();
                assert_eq!(differing, 0, "{file}, cut at {cut:?}");
            }
        }
    }

    #[test]
    fn a_sequence_started_from_anothers_prefix_equals_one_prefilled_alone() {
        for file in ["tiny/model-q8_0.gguf", "tiny-q4k/model-q4_k.gguf"] {
            let (ours, _) = load(file);
            if !reusable(&ours, file) {
                continue;
            }
            let first: Vec<u32> = (0..30u32).map(|i| (i * 131 + 7) % 600).collect();
            let mut second = first[..20].to_vec();
            second.extend((0..13u32).map(|i| (i * 17 + 300) % 600));
            let alone = logits_after(&ours, &mut ours.new_cache(40).unwrap(), &[&second]);
            let mut source = ours.new_cache(40).unwrap();
            ours.prefill(&mut source, &first).unwrap();
            let mut started = ours.new_cache(40).unwrap();
            ours.copy_prefix(&source, &mut started, 20).unwrap();
            assert_eq!(started.len(), 20);
            let reused = logits_after(&ours, &mut started, &[&second[20..]]);
            assert!(alone == reused, "{file}");
        }
    }

    #[test]
    fn a_prefix_longer_than_the_source_holds_is_refused() {
        let (ours, _) = load("tiny/model-q8_0.gguf");
        let mut source = ours.new_cache(16).unwrap();
        ours.prefill(&mut source, &[1, 2, 3]).unwrap();
        let mut target = ours.new_cache(16).unwrap();
        let err = ours.copy_prefix(&source, &mut target, 4).unwrap_err();
        assert!(err.to_string().contains("a prefix of 4 positions"), "{err}");
        assert_eq!(target.len(), 0);
    }

    #[test]
    fn decoding_with_other_sequences_changes_no_bit_of_a_sequences_logits() {
        let (ours, _) = load("tiny-q4k/model-q4_k.gguf");
        let prompts: Vec<Vec<u32>> = [5usize, 19, 11]
            .iter()
            .map(|&n| (0..n as u32).map(|i| (i * 97 + n as u32) % 600).collect())
            .collect();
        let alone: Vec<Tensor> = prompts
            .iter()
            .map(|p| {
                let mut cache = ours.new_cache(32).unwrap();
                ours.prefill(&mut cache, p).unwrap();
                ours.decode(&mut [&mut cache], &[3]).unwrap()
            })
            .collect();
        let mut caches: Vec<SequenceCache> = prompts
            .iter()
            .map(|p| {
                let mut cache = ours.new_cache(32).unwrap();
                ours.prefill(&mut cache, p).unwrap();
                cache
            })
            .collect();
        let mut refs: Vec<&mut SequenceCache> = caches.iter_mut().collect();
        let together = ours.decode(&mut refs, &[3, 3, 3]).unwrap();
        for (i, one) in alone.iter().enumerate() {
            let row = together.get(i).unwrap().to_vec1::<f32>().unwrap();
            let one = one.squeeze(0).unwrap().to_vec1::<f32>().unwrap();
            assert!(
                row.iter()
                    .zip(&one)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "sequence {i}"
            );
        }
    }
}
