//! What every hand-written quantized kernel here shares ([`super::row_kernels`],
//! [`super::q4k_tiles`], [`super::q6k_tiles`], [`super::q8_0_tiles`] and the activation
//! quantizers [`super::q8k_rows`], [`super::q8_0_rows`]): candle's block layouts read as
//! bytes, the CPU check, and the AVX2 primitives that must match candle's to the bit. Kept
//! apart so that the kernels and the quantizers they call depend on it, not on each other.

#[cfg(test)]
use candle_core::quantized::k_quants::GgmlType;
use candle_core::quantized::k_quants::{BlockQ6K, BlockQ8K, BlockQ8_0};

/// Bytes of a Q8_0 block: an f16 scale, then 32 signed quants.
pub(super) const Q8_0_BYTES: usize = 34;
/// Bytes of a Q6K super-block: `ql` (128), `qh` (64), 16 signed 8-bit scales, an f16 scale.
pub(super) const Q6K_BYTES: usize = 210;
/// Bytes of a Q8K block: an f32 scale, 256 quants, 16 i16 partial sums.
pub(super) const Q8K_BYTES: usize = 292;
/// Where a Q8K block's quants start (after the f32 scale).
pub(super) const Q8K_QS: usize = 4;
/// Where a Q8K block's 16 i16 sums (of 16 quants each) start.
pub(super) const Q8K_BSUMS: usize = Q8K_QS + 256;

// candle's block structs are `repr(C)` with private fields; the kernels read them as bytes at
// these sizes, which must not change under them.
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == Q8_0_BYTES);
const _: () = assert!(std::mem::size_of::<BlockQ6K>() == Q6K_BYTES);
const _: () = assert!(std::mem::size_of::<BlockQ8K>() == Q8K_BYTES);
const _: () = assert!(Q8K_BSUMS + 16 * 2 == Q8K_BYTES);

/// AVX2 with FMA and F16C: what the kernels are written for.
pub(super) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The bytes of a slice of candle blocks.
pub(super) fn as_bytes<B>(blocks: &[B]) -> &[u8] {
    // SAFETY: candle's blocks are plain `repr(C)` data (integers, f16, f32) without padding
    // (their sizes are asserted above), so every byte is initialized.
    unsafe {
        std::slice::from_raw_parts(blocks.as_ptr() as *const u8, std::mem::size_of_val(blocks))
    }
}

/// candle's own `from_float` of `xs` into `B` blocks, as bytes: what the activation
/// quantizers here must give to the bit.
#[cfg(test)]
pub(super) fn candle_from_float<B: GgmlType>(xs: &[f32]) -> Vec<u8> {
    let mut blocks = vec![B::zeros(); xs.len() / B::BLCK_SIZE];
    B::from_float(xs, &mut blocks);
    as_bytes(&blocks).to_vec()
}

/// `count` values in [-1, 1) from a fixed xorshift sequence: the quantizers' test inputs.
#[cfg(test)]
pub(super) fn test_values(count: usize) -> Vec<f32> {
    xorshift_values(0x2545_f491_4f6c_dd1d, count)
}

/// `count` values in [-1, 1) from the xorshift sequence that `seed` (any value) starts: the
/// attention kernels' test inputs, one sequence per seed.
#[cfg(test)]
pub(super) fn seeded_test_values(seed: u64, count: usize) -> Vec<f32> {
    xorshift_values(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, count)
}

#[cfg(test)]
fn xorshift_values(mut state: u64, count: usize) -> Vec<f32> {
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// The kernels call these per block: `#[inline]` keeps them inlined across codegen units.
#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use super::Q8_0_BYTES;

    /// f16 bits to f32 (exact), as `half::f16::to_f32` gives them.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::models) fn f16_to_f32(bits: u16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    /// The f32 scale of Q8_0 block `b` of `blocks` (candle's blocks as bytes).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::models) fn q8_0_scale(blocks: &[u8], b: usize) -> f32 {
        let at = b * Q8_0_BYTES;
        f16_to_f32(u16::from_le_bytes([blocks[at], blocks[at + 1]]))
    }

    /// The f32 scales of the first `count` Q8_0 blocks of `blocks`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::models) fn q8_0_scales(blocks: &[u8], count: usize) -> Vec<f32> {
        (0..count).map(|b| q8_0_scale(blocks, b)).collect()
    }

    /// candle's `hsum_float_8`, in its order.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::models) fn hsum(x: __m256) -> f32 {
        let res = _mm256_extractf128_ps(x, 1);
        let res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        let res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        let res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }
}
