//! A prompt's attention weights from its raw scores in one pass, in place: bit for bit what
//! candle-transformers' `quantized_qwen2` computes with three tensor operations (`scores /
//! √d`, the causal mask by `where_cond` to −∞, `softmax_last_dim`).
//!
//! Each of those three allocates a new scores tensor: `heads × chunk × keys` floats, 25 MB per
//! layer for a 512-token chunk after 512 earlier tokens, written, page-faulted in and read
//! again, and the softmax takes `exp` of every masked entry too. On Qwen2.5-1.5B Q4_K_M the
//! attention outside its two products was ~10% of a 1,024-token prompt (zeroing new pages,
//! `expf`, the element-wise closures; perf, AMD EPYC, AVX2). Here each row is scaled, reduced
//! and normalized where it lies, only over the keys it may see, with candle's own operations in
//! candle's order: the same `v · (1/√d) + 0`, the same sequential maximum, `f32::exp` of the
//! same differences, candle's own `vec_reduce_sum` over the whole row (its masked entries the
//! exact zeros candle's `exp(−∞)` gives, so its lanes sum what candle's sum), the same division.
//! No crate offers this fusion for candle's CPU tensors.

use candle_core::cpu::kernels::VecOps;
use candle_core::{CpuStorage, InplaceOp1, Layout, Result};
use rayon::prelude::*;

/// Scores `(groups, rows, keys)` of a chunk of `chunk` queries at positions `past..past +
/// chunk` (row `r` of a group is query `r % chunk`, as a `(kv_heads, n_rep × chunk, keys)`
/// layout has them) become their attention weights; query `i` sees keys `0..=past + i`.
pub(crate) struct CausalSoftmax {
    /// candle's `Tensor / f64` multiplies by the reciprocal, rounded to f32.
    scale: f32,
    chunk: usize,
    past: usize,
}

impl CausalSoftmax {
    pub(crate) fn new(head_dim: usize, chunk: usize, past: usize) -> CausalSoftmax {
        CausalSoftmax {
            scale: (1. / (head_dim as f64).sqrt()) as f32,
            chunk,
            past,
        }
    }
}

impl InplaceOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("causal softmax: f32 scores expected")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("causal softmax: contiguous scores expected")
        };
        let keys = *layout.dims().last().unwrap_or(&0);
        if keys == 0 || self.chunk == 0 || self.past + self.chunk > keys {
            candle_core::bail!(
                "causal softmax: {} queries after {} over {keys} keys",
                self.chunk,
                self.past
            )
        }
        data[start..end]
            .par_chunks_mut(keys)
            .enumerate()
            .for_each(|(row, scores)| {
                weights(scores, self.past + row % self.chunk + 1, self.scale)
            });
        Ok(())
    }
}

/// One row: the first `seen` scores become weights, the rest zeros.
fn weights(row: &mut [f32], seen: usize, scale: f32) {
    let (seen_scores, future) = row.split_at_mut(seen);
    for v in seen_scores.iter_mut() {
        *v = *v * scale + 0.0;
    }
    // candle's `vec_reduce_max`: the first value, then `max` in order (the −∞ of masked
    // entries never wins).
    let max = seen_scores[1..]
        .iter()
        .fold(seen_scores[0], |max, &v| max.max(v));
    for v in seen_scores.iter_mut() {
        *v = (*v - max).exp();
    }
    future.fill(0.0);
    let mut sum = 0f32;
    // SAFETY: `row.len()` readable values.
    unsafe { f32::vec_reduce_sum(row.as_ptr(), &mut sum, row.len()) };
    for v in row[..seen].iter_mut() {
        *v /= sum;
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// candle-transformers' `quantized_qwen2` attention weights, as `Qwen2Batched` had them.
    fn candles(scores: &Tensor, groups: usize, n_rep: usize, chunk: usize, past: usize) -> Tensor {
        let keys = past + chunk;
        let att = (scores / (64f64).sqrt()).unwrap();
        let att = if chunk > 1 {
            let mask =
                candle_transformers::utils::build_causal_mask(chunk, past, &Device::Cpu).unwrap();
            let att = att.reshape((groups, n_rep, chunk, keys)).unwrap();
            let neg_inf = Tensor::new(f32::NEG_INFINITY, &Device::Cpu).unwrap();
            mask.broadcast_as(att.shape())
                .unwrap()
                .where_cond(&neg_inf.broadcast_as(att.shape()).unwrap(), &att)
                .unwrap()
                .reshape((groups, n_rep * chunk, keys))
                .unwrap()
        } else {
            att
        };
        candle_nn::ops::softmax_last_dim(&att).unwrap()
    }

    #[test]
    fn the_weights_are_candles_scaled_masked_softmax_bit_for_bit() {
        let (groups, n_rep) = (2, 3);
        // Key counts around candle's 32-value summing step, a first chunk and later ones.
        for (chunk, past) in [(1, 0), (1, 40), (5, 0), (7, 30), (33, 31), (40, 100)] {
            let keys = past + chunk;
            let scores = (Tensor::randn(0f32, 3.0, (groups, n_rep * chunk, keys), &Device::Cpu)
                .unwrap()
                * 4.0)
                .unwrap();
            let expected: Vec<f32> = candles(&scores, groups, n_rep, chunk, past)
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let ours = scores.copy().unwrap();
            ours.inplace_op1(&CausalSoftmax::new(64, chunk, past))
                .unwrap();
            let got: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
            let differ = expected
                .iter()
                .zip(&got)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "chunk {chunk} after {past}: {differ} weights differ"
            );
        }
    }

    #[test]
    fn scores_that_do_not_fit_the_chunk_are_refused() {
        let scores = Tensor::zeros((1, 4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = scores
            .inplace_op1(&CausalSoftmax::new(64, 4, 0))
            .unwrap_err();
        assert!(
            err.to_string().contains("4 queries after 0 over 3 keys"),
            "{err}"
        );
    }
}
