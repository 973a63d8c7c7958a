//! Activation rows quantized to candle's Q8K blocks (the bytes of its `BlockQ8K`: f32 `d`,
//! 256 quants, 16 i16 sums of 16), bit for bit what candle's `BlockQ8K::from_float` gives, in
//! code the compiler vectorizes.
//!
//! Every Q4K and Q6K product quantizes its input rows first, on the calling thread, before
//! the product's work is spread over the pool. candle's `from_float` finds the block's
//! extreme with a branch per value and rounds with libm's `roundf`, one call per value: in a
//! decode step of Qwen2.5-1.5B (one row of 1,536 or 8,960 values per product, 196 products)
//! that was about 5% of the step while the pool's other thread waited (perf, AMD EPYC, AVX2).
//! Here the extreme is a max-reduction and then a search for its first occurrence (the value
//! candle's strict `<` keeps), and rounding is `int8::round_half_away` (truncation plus an
//! exact fraction test), which equals `roundf` on the clamped range: the same blocks, checked
//! against candle's on values that include exact halves, zeros and NaN.

use candle_core::quantized::k_quants::QK_K;

use super::int8::round_half_away;
use super::quant_blocks::Q8K_BYTES;

/// `rows` rows of width `k` (a multiple of 256), row-major, as the bytes of Q8K blocks.
pub(crate) fn quantize(xs: &[f32], rows: usize, k: usize) -> Vec<u8> {
    debug_assert!(k.is_multiple_of(QK_K) && xs.len() == rows * k);
    let mut blocks = vec![0u8; rows * (k / QK_K) * Q8K_BYTES];
    #[cfg(target_arch = "x86_64")]
    if super::quant_blocks::has_avx2() {
        // SAFETY: the CPU has AVX2.
        unsafe { quantize_avx2(xs, &mut blocks) };
        return blocks;
    }
    quantize_blocks(xs, &mut blocks);
    blocks
}

/// # Safety
/// The CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(xs: &[f32], blocks: &mut [u8]) {
    quantize_blocks(xs, blocks)
}

#[inline(always)]
fn quantize_blocks(xs: &[f32], blocks: &mut [u8]) {
    for (xs, block) in xs
        .chunks_exact(QK_K)
        .zip(blocks.chunks_exact_mut(Q8K_BYTES))
    {
        let (d, rest) = block.split_at_mut(4);
        let (qs, bsums) = rest.split_at_mut(QK_K);
        // `f32::max` skips NaN as candle's `amax < x.abs()` does.
        let amax = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
        if amax == 0.0 {
            block.fill(0);
            continue;
        }
        let max = xs.iter().copied().find(|x| x.abs() == amax).unwrap_or(amax);
        let iscale = -127f32 / max;
        for (q, &x) in qs.iter_mut().zip(xs) {
            *q = round_half_away(iscale * x) as i8 as u8;
        }
        for (sum, qs) in bsums.chunks_exact_mut(2).zip(qs.chunks_exact(16)) {
            let s: i16 = qs.iter().map(|&q| q as i8 as i16).sum();
            sum.copy_from_slice(&s.to_ne_bytes());
        }
        d.copy_from_slice(&(1.0 / iscale).to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::k_quants::BlockQ8K;

    use super::super::quant_blocks::{candle_from_float, test_values};
    use super::*;

    #[test]
    fn every_block_is_candles_from_float_bit_for_bit() {
        let k = 4 * QK_K;
        let mut xs: Vec<f32> = test_values(3 * k).iter().map(|x| x * 3.0).collect();
        // Block 1: values that scale to exact halves (max 127 makes the scale -1).
        for (i, x) in xs[QK_K..2 * QK_K].iter_mut().enumerate() {
            *x = (i as f32 - 128.0) * 0.5;
        }
        xs[QK_K] = 127.0;
        // Block 2 all zero; block 3 with NaN and the extreme's first occurrence negative.
        xs[2 * QK_K..3 * QK_K].fill(0.0);
        xs[3 * QK_K + 5] = f32::NAN;
        xs[3 * QK_K + 9] = -7.5;
        xs[3 * QK_K + 20] = 7.5;
        let ours = quantize(&xs, 3, k);
        assert_eq!(ours, candle_from_float::<BlockQ8K>(&xs));
        let mut portable = vec![0u8; ours.len()];
        quantize_blocks(&xs, &mut portable);
        assert_eq!(portable, ours);
    }
}
