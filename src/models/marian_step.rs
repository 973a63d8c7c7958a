//! The Marian decoder's state and attention on the CPU, for step-by-step decoding: plain
//! `Vec<f32>` buffers instead of candle tensors.
//!
//! Why hand-written: profiling batched beam search (`scripts/bench/README.md`, "Where the
//! decoding time goes") showed a decoding step spending more time around the linear layers
//! than in them. Candle ran the attention of 64 hypotheses × 8 heads as 512 one-row gemm calls
//! per matmul, grew the self-attention keys/values by `Tensor::cat` at every step (copying
//! the whole cache), copied all of it again with `index_select` when beam search reordered
//! its hypotheses, and moved the cross-attention keys/values of every source once per beam.
//! Here, as in CTranslate2's decoder:
//! - the self-attention keys/values live in buffers with room to grow (`(slots, heads, cap,
//!   head_dim)`), so a step appends in place; each row owns a slot, and a reordering only
//!   renumbers slots, copying a row's keys/values only when two new rows continue it (a
//!   hypothesis that branches) into the slot of one that ended;
//! - the cross-attention keys/values are kept once per source sentence and every row reads
//!   its source's through `row_source`, so expanding a sentence into beams copies nothing;
//! - attention of one query row is a loop of dot products over that row's keys.
//!
//! The arithmetic is the reference's (`MarianAttention`, queries already scaled): scores
//! `q · k`, the additive key mask, `softmax` as `exp(x - max) / Σ`, then `Σ p · v`.

use super::head_attention::{attend_head, attend_rows};

/// Self-attention keys and values of one decoder layer, `(slots, heads, cap, head_dim)`
/// each, the first `len` positions of every `(slot, head)` in use valid.
#[derive(Clone, Debug, Default)]
struct SelfKv {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// Cross-attention keys and values of one decoder layer, `(sources, heads, src_len, head_dim)`.
#[derive(Clone, Debug)]
pub(crate) struct CrossKv {
    pub(crate) k: Vec<f32>,
    pub(crate) v: Vec<f32>,
}

/// Everything the CPU decoder keeps between steps.
#[derive(Clone, Debug)]
pub(crate) struct StepCache {
    self_kv: Vec<SelfKv>,
    cross: Vec<CrossKv>,
    /// `(sources, src_len)`: 0 at tokens, a large negative value at padding.
    cross_mask: Vec<f32>,
    /// Per source, the keys cross-attention reads: up to its last unmasked one. The masked
    /// keys after it would get a weight of at most e^-87 / Σ (`exp_sum`'s floor; the
    /// reference's is exactly 0), which rounds away against the real keys' weights: leaving
    /// them out is the reference's arithmetic, and a right-padded batch's short sentences
    /// cost their own length, not the longest's.
    source_keys: Vec<usize>,
    /// The source sentence each row (hypothesis) reads.
    row_source: Vec<u32>,
    /// The slot of `self_kv` holding each row's keys/values.
    row_slot: Vec<usize>,
    /// Slots allocated in `self_kv`.
    slots: usize,
    src_len: usize,
    heads: usize,
    head_dim: usize,
    /// Positions allocated per `(row, head)` in `self_kv`.
    cap: usize,
}

impl StepCache {
    /// A cache with one row per source and no decoded positions. `cross` holds one entry
    /// per decoder layer; `cross_mask` is `(sources, src_len)`.
    pub(crate) fn new(
        cross: Vec<CrossKv>,
        cross_mask: Vec<f32>,
        sources: usize,
        heads: usize,
        head_dim: usize,
    ) -> Self {
        let src_len = cross_mask.len() / sources.max(1);
        let source_keys = cross_mask
            .chunks_exact(src_len.max(1))
            .map(|mask| match mask.iter().rposition(|&m| m > f32::MIN) {
                Some(last) => last + 1,
                // Every key masked: the softmax is uniform over all of them, as in the
                // reference.
                None => src_len,
            })
            .collect();
        Self {
            self_kv: vec![SelfKv::default(); cross.len()],
            cross,
            cross_mask,
            source_keys,
            row_source: (0..sources as u32).collect(),
            row_slot: (0..sources).collect(),
            slots: sources,
            src_len,
            heads,
            head_dim,
            cap: 0,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.row_source.len()
    }

    fn d_model(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Makes room for `needed` positions per `(row, head)`, keeping the first `len`.
    pub(crate) fn reserve(&mut self, needed: usize, len: usize) {
        if needed <= self.cap {
            return;
        }
        // Doubling keeps the copies of a whole decode linear in its length.
        let cap = needed.max(2 * self.cap).max(16);
        let (blocks, hd, old_cap) = (self.slots * self.heads, self.head_dim, self.cap);
        for kv in &mut self.self_kv {
            for buf in [&mut kv.k, &mut kv.v] {
                let mut grown = vec![0f32; blocks * cap * hd];
                for b in 0..blocks {
                    grown[b * cap * hd..][..len * hd]
                        .copy_from_slice(&buf[b * old_cap * hd..][..len * hd]);
                }
                *buf = grown;
            }
        }
        self.cap = cap;
    }

    /// Writes the keys and values of `t` new positions per row, after `past` ones, into
    /// layer `layer`'s buffers (which [`reserve`](Self::reserve) has made room for). `qkv` is
    /// the fused projection's output, `(rows · t, 3 · d_model)`, each row `[q | k | v]`.
    pub(crate) fn append(&mut self, layer: usize, qkv: &[f32], t: usize, past: usize) {
        let (heads, hd, cap, d) = (self.heads, self.head_dim, self.cap, self.d_model());
        let kv = &mut self.self_kv[layer];
        for (row_t, x) in qkv.chunks_exact(3 * d).enumerate() {
            let (slot, i) = (self.row_slot[row_t / t], row_t % t);
            for h in 0..heads {
                let at = ((slot * heads + h) * cap + past + i) * hd;
                kv.k[at..at + hd].copy_from_slice(&x[d + h * hd..][..hd]);
                kv.v[at..at + hd].copy_from_slice(&x[2 * d + h * hd..][..hd]);
            }
        }
    }

    /// Keeps rows `rows` (indices into the current rows, repeats allowed), in that order;
    /// `len` positions are valid.
    pub(crate) fn select_rows(&mut self, rows: &[u32], len: usize) {
        let identity =
            rows.len() == self.rows() && rows.iter().enumerate().all(|(i, &r)| i as u32 == r);
        if identity {
            return;
        }
        self.row_source = rows.iter().map(|&r| self.row_source[r as usize]).collect();
        // The first new row to continue an old row takes over its slot; any further ones
        // get a free slot and a copy.
        let mut claimed = vec![false; self.slots];
        let mut new_slot = vec![usize::MAX; rows.len()];
        let mut branches = Vec::new();
        for (new, &old) in rows.iter().enumerate() {
            let slot = self.row_slot[old as usize];
            if claimed[slot] {
                branches.push((new, slot));
            } else {
                claimed[slot] = true;
                new_slot[new] = slot;
            }
        }
        let mut free: Vec<usize> = (0..self.slots).filter(|&s| !claimed[s]).collect();
        if free.len() < branches.len() {
            let more = branches.len() - free.len();
            let block = self.heads * self.cap * self.head_dim;
            for kv in &mut self.self_kv {
                kv.k.resize((self.slots + more) * block, 0.0);
                kv.v.resize((self.slots + more) * block, 0.0);
            }
            free.extend(self.slots..self.slots + more);
            self.slots += more;
        }
        let (heads, cap, hd) = (self.heads, self.cap, self.head_dim);
        for (new, from_slot) in branches {
            let to_slot = free.pop().expect("a free slot per branch");
            for kv in &mut self.self_kv {
                for buf in [&mut kv.k, &mut kv.v] {
                    for h in 0..heads {
                        let from = (from_slot * heads + h) * cap * hd;
                        let to = (to_slot * heads + h) * cap * hd;
                        buf.copy_within(from..from + len * hd, to);
                    }
                }
            }
            new_slot[new] = to_slot;
        }
        self.row_slot = new_slot;
    }

    /// Causal self-attention of layer `layer` for `t` new positions per row after `past`
    /// (their keys/values already appended): `qkv` as for [`append`](Self::append); returns
    /// `(rows · t, d_model)`, heads side by side.
    pub(crate) fn self_attention(
        &self,
        layer: usize,
        qkv: &[f32],
        t: usize,
        past: usize,
    ) -> Vec<f32> {
        let (heads, hd, cap, d) = (self.heads, self.head_dim, self.cap, self.d_model());
        let kv = &self.self_kv[layer];
        let work = qkv.len() / 3 * (past + t);
        attend_rows(qkv.len() / (3 * d), d, work, |row_t, out| {
            let (slot, i) = (self.row_slot[row_t / t], row_t % t);
            let q = &qkv[row_t * 3 * d..][..d];
            let keys = past + i + 1;
            let mut scores = Vec::with_capacity(keys);
            for h in 0..heads {
                let base = (slot * heads + h) * cap * hd;
                attend_head(
                    &q[h * hd..][..hd],
                    &kv.k[base..base + keys * hd],
                    &kv.v[base..base + keys * hd],
                    None,
                    &mut scores,
                    &mut out[h * hd..][..hd],
                );
            }
        })
    }

    /// Cross-attention of layer `layer`: `q` is `(rows · t, d_model)`; every row attends to
    /// its source's keys/values under its key mask. Returns `(rows · t, d_model)`.
    pub(crate) fn cross_attention(&self, layer: usize, q: &[f32], t: usize) -> Vec<f32> {
        let (heads, hd, s, d) = (self.heads, self.head_dim, self.src_len, self.d_model());
        let cross = &self.cross[layer];
        attend_rows(q.len() / d, d, q.len() * s, |row_t, out| {
            let source = self.row_source[row_t / t] as usize;
            let q = &q[row_t * d..][..d];
            let keys = self.source_keys[source];
            let mask = &self.cross_mask[source * s..][..keys];
            let mut scores = Vec::with_capacity(keys);
            for h in 0..heads {
                let base = (source * heads + h) * s * hd;
                attend_head(
                    &q[h * hd..][..hd],
                    &cross.k[base..base + keys * hd],
                    &cross.v[base..base + keys * hd],
                    Some(mask),
                    &mut scores,
                    &mut out[h * hd..][..hd],
                );
            }
        })
    }
}

/// Layer norm of every `weight.len()`-long row of `xs`, in place, with candle's CPU
/// arithmetic (`candle_nn::ops::layer_norm`: one pass for the sum and the sum of squares).
pub(crate) fn layer_norm_rows(xs: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let dim = weight.len();
    for row in xs.chunks_exact_mut(dim) {
        let (mut sum, mut sum2) = (0f32, 0f32);
        for &v in row.iter() {
            sum += v;
            sum2 += v * v;
        }
        let mean = sum / dim as f32;
        let var = sum2 / dim as f32 - mean * mean;
        let inv_std = (var + eps).sqrt().recip();
        for ((x, &w), &b) in row.iter_mut().zip(weight).zip(bias) {
            *x = (*x - mean) * inv_std * w + b;
        }
    }
}

/// `xs += ys`, element by element.
pub(crate) fn add_in_place(xs: &mut [f32], ys: &[f32]) {
    for (x, y) in xs.iter_mut().zip(ys) {
        *x += y;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The reference: softmax(q·kᵀ + mask)·v computed naively.
    fn naive(q: &[f32], k: &[f32], v: &[f32], mask: &[f32]) -> Vec<f32> {
        let hd = q.len();
        let scores: Vec<f32> = k
            .chunks(hd)
            .zip(mask)
            .map(|(key, m)| q.iter().zip(key).map(|(a, b)| a * b).sum::<f32>() + m)
            .collect();
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        (0..hd)
            .map(|j| {
                exps.iter()
                    .zip(v.chunks(hd))
                    .map(|(e, row)| e / sum * row[j])
                    .sum()
            })
            .collect()
    }

    /// `n` test values in [-1.6, 1.6], different for each `seed`.
    pub(crate) fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 37 + seed * 11) % 23) as f32 - 11.0) / 7.0)
            .collect()
    }

    #[test]
    fn masked_keys_get_no_weight_and_the_rest_match_a_naive_softmax() {
        let (hd, keys) = (20, 5);
        let (q, k, v) = (values(hd, 1), values(keys * hd, 2), values(keys * hd, 3));
        let mask = [0.0, 0.0, f32::MIN, 0.0, f32::MIN];
        let mut out = vec![0f32; hd];
        attend_head(&q, &k, &v, Some(&mask), &mut Vec::new(), &mut out);
        let want = naive(&q, &k, &v, &mask);
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // With the masked keys removed altogether the result is the same.
        let kept = |x: &[f32]| [&x[0..2 * hd], &x[3 * hd..4 * hd]].concat();
        let want = naive(&q, &kept(&k), &kept(&v), &[0.0; 3]);
        for (a, b) in out.iter().zip(&want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn cross_attention_skips_a_short_sources_padding_with_the_same_result_to_the_bit() {
        let (heads, hd, s) = (2, 4, 3);
        let d = heads * hd;
        // Source 0 has 3 tokens, source 1 has 1 token and 2 padded positions.
        let cross = vec![CrossKv {
            k: values(2 * heads * s * hd, 4),
            v: values(2 * heads * s * hd, 5),
        }];
        let mask = vec![0.0, 0.0, 0.0, 0.0, f32::MIN, f32::MIN];
        let cache = StepCache::new(cross.clone(), mask.clone(), 2, heads, hd);
        assert_eq!(cache.source_keys, [3, 1]);
        let q = values(2 * d, 6);
        let out = cache.cross_attention(0, &q, 1);
        // Source 1 over all of its padded keys under the mask, as the reference computes it.
        for h in 0..heads {
            let base = (heads + h) * s * hd;
            let mut want = vec![0f32; hd];
            attend_head(
                &q[d + h * hd..][..hd],
                &cross[0].k[base..base + s * hd],
                &cross[0].v[base..base + s * hd],
                Some(&mask[s..]),
                &mut Vec::new(),
                &mut want,
            );
            assert_eq!(out[d + h * hd..][..hd], want);
        }
    }

    #[test]
    fn reordered_rows_carry_their_keys_and_values_and_sources() {
        let (heads, hd) = (2, 4);
        let d = heads * hd;
        let cross = vec![CrossKv {
            k: values(2 * heads * 3 * hd, 4),
            v: values(2 * heads * 3 * hd, 5),
        }];
        let mut cache = StepCache::new(cross, vec![0.0; 2 * 3], 2, heads, hd);
        // Expand two sources into 2 rows each, then decode two positions.
        cache.select_rows(&[0, 0, 1, 1], 0);
        for step in 0..2 {
            cache.reserve(step + 1, step);
            let qkv = values(4 * 3 * d, 6 + step);
            cache.append(0, &qkv, 1, step);
        }
        let before = cache.self_attention(0, &values(4 * 3 * d, 9), 1, 1);
        let cross_before = cache.cross_attention(0, &values(4 * d, 10), 1);
        // Swap rows 0 and 3: their attention outputs swap with them.
        cache.select_rows(&[3, 1, 2, 0], 2);
        let mut qkv = values(4 * 3 * d, 9);
        let (first, rest) = qkv.split_at_mut(3 * 3 * d);
        first[..3 * d].swap_with_slice(&mut rest[..3 * d]);
        let after = cache.self_attention(0, &qkv, 1, 1);
        assert_eq!(after[..d], before[3 * d..]);
        assert_eq!(after[3 * d..], before[..d]);
        let mut q = values(4 * d, 10);
        let (first, rest) = q.split_at_mut(3 * d);
        first[..d].swap_with_slice(&mut rest[..d]);
        let cross_after = cache.cross_attention(0, &q, 1);
        assert_eq!(cross_after[..d], cross_before[3 * d..]);
        assert_eq!(cross_after[3 * d..], cross_before[..d]);
    }
}
