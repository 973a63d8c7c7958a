//! The Marian encoder on the CPU over a padded batch's real tokens only: the padding is
//! dropped before the first layer and put back (as zeros) after the last.
//!
//! Why: every layer of the encoder but its self-attention treats each token on its own, and
//! self-attention only ever looks at the keys of a token's own sentence (the padding is
//! masked out), so a padded position's work is thrown away. Packed, a batch of 16 sentences
//! of 8–48 tokens runs its linear layers on the 1,711 tokens it has rather than the 1,984
//! it is padded to. The self-attention of a sentence is then a loop of one-row attentions
//! over that sentence's keys (`head_attention`), where candle ran it as a gemm per
//! `(sentence, head)` with the mask added to every score.
//!
//! The arithmetic of attention is the reference's (`MarianAttention`, queries already
//! scaled): scores `q · k`, `softmax` as `exp(x - max) / Σ`, then `Σ p · v`.

use std::ops::Range;

use super::head_attention::{attend_head, attend_rows};

/// Where the real tokens of a `(batch, src_len)` grid are: packed row `r` is grid position
/// `grid_rows[r]`, and sentence `i`'s tokens are packed rows `spans[i]`, in order.
#[derive(Clone, Debug)]
pub(crate) struct PackedTokens {
    grid_rows: Vec<usize>,
    spans: Vec<Range<usize>>,
    /// The sentence of each packed row.
    row_sentence: Vec<u32>,
    src_len: usize,
}

impl PackedTokens {
    /// The tokens of a right-padded batch whose key mask `keep` (`batch × src_len`) is
    /// nonzero at tokens and zero at padding.
    pub(crate) fn new(keep: &[f32], batch: usize, src_len: usize) -> Self {
        assert_eq!(keep.len(), batch * src_len, "mask is not batch × src_len");
        let mut grid_rows = Vec::with_capacity(keep.len());
        let mut spans = Vec::with_capacity(batch);
        let mut row_sentence = Vec::with_capacity(keep.len());
        for (sentence, row) in keep.chunks_exact(src_len.max(1)).enumerate().take(batch) {
            let start = grid_rows.len();
            for (position, &k) in row.iter().enumerate() {
                if k != 0.0 {
                    grid_rows.push(sentence * src_len + position);
                    row_sentence.push(sentence as u32);
                }
            }
            spans.push(start..grid_rows.len());
        }
        // A zero-width grid has no rows, but its sentences still get (empty) spans.
        spans.resize(batch, grid_rows.len()..grid_rows.len());
        Self {
            grid_rows,
            spans,
            row_sentence,
            src_len,
        }
    }

    /// Number of real tokens (packed rows).
    pub(crate) fn len(&self) -> usize {
        self.grid_rows.len()
    }

    /// The packed rows of `grid`, whose rows are `d` values each.
    pub(crate) fn gather(&self, grid: &[f32], d: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len() * d);
        for &g in &self.grid_rows {
            out.extend_from_slice(&grid[g * d..(g + 1) * d]);
        }
        out
    }

    /// `packed` (`len × d`) put back on the `(batch, src_len)` grid, zeros at padding.
    pub(crate) fn scatter(&self, packed: &[f32], d: usize) -> Vec<f32> {
        let mut grid = vec![0f32; self.spans.len() * self.src_len * d];
        for (row, &g) in packed.chunks_exact(d.max(1)).zip(&self.grid_rows) {
            grid[g * d..(g + 1) * d].copy_from_slice(row);
        }
        grid
    }

    /// Columns `columns` of each packed row of `packed` (rows `width` values apart) put on a
    /// `(batch, heads, src_len, head_dim)` grid, zeros at padding: cross-attention's keys or
    /// values in the layout the decoder reads, `columns` being `heads × head_dim` wide.
    pub(crate) fn scatter_heads(
        &self,
        packed: &[f32],
        width: usize,
        columns: Range<usize>,
        heads: usize,
    ) -> Vec<f32> {
        let hd = columns.len() / heads.max(1);
        let s = self.src_len;
        let mut grid = vec![0f32; self.spans.len() * heads * s * hd];
        for (row, &g) in packed.chunks_exact(width.max(1)).zip(&self.grid_rows) {
            let (sentence, position) = (g / s, g % s);
            let row = &row[columns.clone()];
            for h in 0..heads {
                let at = ((sentence * heads + h) * s + position) * hd;
                grid[at..at + hd].copy_from_slice(&row[h * hd..(h + 1) * hd]);
            }
        }
        grid
    }
}

/// Self-attention of every packed token over the tokens of its own sentence. `qkv` is the
/// fused projection's output, `(len, 3 · heads · head_dim)`, each row `[q | k | v]`;
/// returns `(len, heads · head_dim)`, heads side by side.
pub(crate) fn self_attention(
    tokens: &PackedTokens,
    qkv: &[f32],
    heads: usize,
    head_dim: usize,
) -> Vec<f32> {
    let (n, d) = (tokens.len(), heads * head_dim);
    assert_eq!(qkv.len(), n * 3 * d, "qkv is not len × 3·d_model");
    // Keys and values head-major, `(heads, len, head_dim)`: a sentence's keys for one head
    // are then one slice.
    let (mut keys, mut values) = (vec![0f32; n * d], vec![0f32; n * d]);
    for (r, row) in qkv.chunks_exact(3 * d).enumerate() {
        for h in 0..heads {
            let at = (h * n + r) * head_dim;
            keys[at..at + head_dim].copy_from_slice(&row[d + h * head_dim..][..head_dim]);
            values[at..at + head_dim].copy_from_slice(&row[2 * d + h * head_dim..][..head_dim]);
        }
    }
    let work: usize = tokens
        .spans
        .iter()
        .map(|s| s.len() * s.len())
        .sum::<usize>()
        * d;
    attend_rows(n, d, work, |r, out| {
        let span = &tokens.spans[tokens.row_sentence[r] as usize];
        let q = &qkv[r * 3 * d..][..d];
        let mut scores = Vec::with_capacity(span.len());
        for h in 0..heads {
            let sentence = (h * n + span.start) * head_dim..(h * n + span.end) * head_dim;
            attend_head(
                &q[h * head_dim..][..head_dim],
                &keys[sentence.clone()],
                &values[sentence],
                None,
                &mut scores,
                &mut out[h * head_dim..][..head_dim],
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::marian_step::tests::values;
    use super::*;

    #[test]
    fn packing_keeps_the_tokens_in_order_and_puts_zeros_back_at_the_padding() {
        // Two sentences of 3 and 1 tokens, padded to 3.
        let keep = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0];
        let tokens = PackedTokens::new(&keep, 2, 3);
        assert_eq!(tokens.len(), 4);
        assert_eq!(tokens.spans, [0..3, 3..4]);
        let grid: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let packed = tokens.gather(&grid, 2);
        assert_eq!(packed, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(
            tokens.scatter(&packed, 2),
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn a_sentence_of_padding_only_gets_an_empty_span_and_zeros_and_attention_still_runs() {
        let (heads, hd) = (2, 2);
        let d = heads * hd;
        // Sentence 1 is all padding.
        let tokens = PackedTokens::new(&[1.0, 1.0, 0.0, 0.0, 1.0, 0.0], 3, 2);
        assert_eq!(tokens.spans, [0..2, 2..2, 2..3]);
        let qkv = values(3 * 3 * d, 7);
        let out = self_attention(&tokens, &qkv, heads, hd);
        assert_eq!(out.len(), 3 * d);
        assert!(out.iter().all(|v| v.is_finite()));
        let grid = tokens.scatter(&values(3 * d, 8), d);
        assert!(grid[2 * d..4 * d].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn keys_on_the_head_grid_are_where_the_decoder_reads_them() {
        // Two sentences (2 tokens, 1 token) padded to 2; 2 heads of 1 value.
        let tokens = PackedTokens::new(&[1.0, 1.0, 1.0, 0.0], 2, 2);
        // Rows [x | k0 k1]: the keys are columns 1..3 of 3.
        let packed = [9.0, 1.0, 2.0, 9.0, 3.0, 4.0, 9.0, 5.0, 6.0];
        let grid = tokens.scatter_heads(&packed, 3, 1..3, 2);
        // (sentence, head, position): s0h0 = [1, 3], s0h1 = [2, 4], s1h0 = [5, 0], s1h1 = [6, 0].
        assert_eq!(grid, [1.0, 3.0, 2.0, 4.0, 5.0, 0.0, 6.0, 0.0]);
    }

    #[test]
    fn packed_self_attention_equals_masked_attention_over_the_padded_sentence() {
        let (heads, hd) = (2, 4);
        let d = heads * hd;
        // Sentence 0 has 3 tokens, sentence 1 has 2 tokens padded to 3.
        let keep = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let tokens = PackedTokens::new(&keep, 2, 3);
        let padded_qkv = values(6 * 3 * d, 1);
        let qkv = tokens.gather(&padded_qkv, 3 * d);
        let out = self_attention(&tokens, &qkv, heads, hd);
        // The padded way: every position of each sentence attends to all 3 positions of its
        // sentence under the key mask.
        let mut want = vec![0f32; 5 * d];
        for (r, &g) in tokens.grid_rows.iter().enumerate() {
            let sentence = g / 3;
            let mask: Vec<f32> = keep[sentence * 3..sentence * 3 + 3]
                .iter()
                .map(|&k| if k == 0.0 { f32::MIN } else { 0.0 })
                .collect();
            for h in 0..heads {
                let column = |part: usize, p: usize| {
                    padded_qkv[(sentence * 3 + p) * 3 * d + part * d + h * hd..][..hd].to_vec()
                };
                let k: Vec<f32> = (0..3).flat_map(|p| column(1, p)).collect();
                let v: Vec<f32> = (0..3).flat_map(|p| column(2, p)).collect();
                let q = &padded_qkv[g * 3 * d + h * hd..][..hd];
                attend_head(
                    q,
                    &k,
                    &v,
                    Some(&mask),
                    &mut Vec::new(),
                    &mut want[r * d + h * hd..][..hd],
                );
            }
        }
        assert_eq!(out, want);
    }
}
