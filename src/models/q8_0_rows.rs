//! Activation rows quantized to candle's Q8_0 blocks (the bytes of its `BlockQ8_0`: f16 `d`,
//! 32 quants), bit for bit what candle's `BlockQ8_0::from_float` gives, in code the compiler
//! vectorizes.
//!
//! Every Q8_0 product ([`super::row_kernels`], [`super::q8_0_tiles`]) quantizes its input rows
//! first, on the calling thread, while the pool's other thread waits. candle's `from_float`
//! rounds with libm's `roundf`, one call per value: 4.2% of a 512-token Q8_0 prompt of
//! Qwen2.5-1.5B (`from_float` 2.8%, `roundf` 1.4%; perf, AMD EPYC, AVX2). Here rounding is
//! `int8::round_half_away` (truncation plus an exact fraction test), which equals `roundf` on
//! the clamped range (`|x · id| ≤ 127` but for rounding, and `as i8` saturates at 127 where
//! the clamp does), and `d` goes to f16 by F16C's round-to-nearest-even, as `half` converts it.

use candle_core::quantized::k_quants::BlockQ8_0;
use candle_core::quantized::GgmlType;

use super::int8::round_half_away;
use super::quant_blocks::Q8_0_BYTES;

/// Values per Q8_0 block.
const VALUES: usize = 32;

/// `rows` rows of width `k` (a multiple of 32), row-major, as Q8_0 blocks.
pub(crate) fn quantize(xs: &[f32], rows: usize, k: usize) -> Vec<BlockQ8_0> {
    assert!(k.is_multiple_of(VALUES) && xs.len() == rows * k);
    let mut blocks = vec![BlockQ8_0::zeros(); rows * k / VALUES];
    #[cfg(target_arch = "x86_64")]
    if super::quant_blocks::has_avx2() {
        // SAFETY: the CPU has AVX2 and F16C; `BlockQ8_0` is `repr(C)` plain data of
        // `Q8_0_BYTES` bytes (asserted in quant_blocks), every bit pattern valid.
        unsafe {
            let bytes = std::slice::from_raw_parts_mut(
                blocks.as_mut_ptr() as *mut u8,
                blocks.len() * Q8_0_BYTES,
            );
            quantize_avx2(xs, bytes);
        }
        return blocks;
    }
    BlockQ8_0::from_float(xs, &mut blocks);
    blocks
}

/// # Safety
/// The CPU has AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn quantize_avx2(xs: &[f32], blocks: &mut [u8]) {
    use std::arch::x86_64::*;
    for (xs, block) in xs
        .chunks_exact(VALUES)
        .zip(blocks.chunks_exact_mut(Q8_0_BYTES))
    {
        // `f32::max` skips NaN as candle's `amax.max(x.abs())` does.
        let amax = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let bits = _mm_cvtsi128_si32(_mm_cvtps_ph(_mm_set_ss(d), _MM_FROUND_TO_NEAREST_INT));
        let (scale, qs) = block.split_at_mut(2);
        scale.copy_from_slice(&(bits as u16).to_le_bytes());
        for (q, &x) in qs.iter_mut().zip(xs) {
            *q = round_half_away(x * id) as i8 as u8;
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::quant_blocks::{as_bytes, candle_from_float, test_values};
    use super::*;

    #[test]
    fn every_block_is_candles_from_float_bit_for_bit() {
        if !super::super::quant_blocks::has_avx2() {
            return;
        }
        let k = 8 * VALUES;
        let mut xs: Vec<f32> = test_values(3 * k)
            .iter()
            .enumerate()
            .map(|(i, x)| x * (1 + i % 5) as f32)
            .collect();
        // Block 1: values that scale to exact halves (a maximum of 127 makes the scale 1).
        for (i, x) in xs[VALUES..2 * VALUES].iter_mut().enumerate() {
            *x = (i as f32 - 16.0) * 7.5;
        }
        xs[VALUES] = 127.0;
        // Block 2 all zero; block 3 with NaN, infinity and a negative extreme; block 4 with
        // an f16-subnormal scale and one with an f16-overflowing one.
        xs[2 * VALUES..3 * VALUES].fill(0.0);
        xs[3 * VALUES + 5] = f32::NAN;
        xs[3 * VALUES + 9] = -7.5;
        xs[4 * VALUES..5 * VALUES]
            .iter_mut()
            .for_each(|x| *x *= 1e-6);
        xs[5 * VALUES + 3] = f32::INFINITY;
        xs[6 * VALUES + 1] = 1e10;
        let ours = quantize(&xs, 3, k);
        assert_eq!(as_bytes(&ours), candle_from_float::<BlockQ8_0>(&xs));
    }
}
