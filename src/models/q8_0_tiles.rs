//! Q8_0 prompt products on AVX2 (a prompt's hundreds of activation rows against a Q8_0
//! weight matrix), each (row, column) bit for bit what candle's AVX2 `vec_dot_q8_0_q8_0`
//! computes, and so what polybrief's decode rows ([`super::row_kernels`]) compute.
//!
//! Why by hand: candle 0.11.1 has no Q8_0 tiles below AVX-512 VNNI: its prompt product is one
//! `vec_dot` per row and column. These tiles are that `vec_dot`'s arithmetic for 4 rows × 2
//! columns at once (as llama.cpp's tinyBLAS has it on AVX2): per block, each weight block's
//! absolute values once for 4 rows, and the scale products `d_w · d_a` formed eight at a time
//! (one `vmulps`) before the tile runs, so that the inner loop is the sign, the two integer
//! multiplies, the conversion and one fused multiply-add per (row, column, block), with its
//! 8 accumulators and 4 weight registers never spilled. The same loop with candle's scalar
//! product and broadcast per (row, column, block) spilled, and those took ~40% of its time
//! (perf, AMD EPYC). Two variants measured slower on Zen 3 (`q8_0_prompt_rate`, 512 × 1,536
//! against 8,960 columns): both sides widened to i16 for two `vpmaddwd` per block (67 vs 75
//! GMAC/s on 2 cores), and the i16 pairs widened by shifts instead of `vpmaddwd` by ones (56).
//!
//! Each product is candle's to the bit: the same activation quantization (candle's
//! `from_float`, by the caller), the same exact i32 lane sums (`|w| ≤ 128`, `|a| ≤ 127`, so
//! `vpmaddubsw` never saturates), the same f32 scale product, the same fused multiply-adds in
//! block order and candle's horizontal sum.

use super::quant_blocks::Q8_0_BYTES;

/// Activation rows of a tile.
const TILE_ROWS: usize = 4;
/// Weight rows (output columns) of a tile: 4 × 2 accumulators, two weight blocks and their
/// absolute values fill 12 of the 16 AVX2 registers.
const TILE_COLS: usize = 2;

/// Most activation rows of a work item.
const CHUNK_ROWS: usize = 64;

/// Bytes of activation blocks a work item keeps in the core's L2 cache (512 KB on Zen 3) while
/// its columns stream past: 64 rows of Qwen2.5-1.5B's 8,960-wide down projection (609 KB)
/// would spill out of it, so there a work item has fewer rows.
const CHUNK_BYTES: usize = 192 * 1024;

/// `dst = act · Wᵀ` for `rows` activation rows already quantized by candle's Q8_0
/// `from_float` (`act`: `rows × kb` blocks as bytes) against `n` weight rows of `kb` Q8_0
/// blocks (`weights`); `dst` is `(rows, n)`. Callers check AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
pub(super) fn matmul(
    weights: &[u8],
    act: &[u8],
    (rows, kb, n): (usize, usize, usize),
    dst: &mut [f32],
) {
    assert!(weights.len() == n * kb * Q8_0_BYTES && act.len() == rows * kb * Q8_0_BYTES);
    assert!(dst.len() == rows * n);
    // SAFETY: callers checked AVX2, FMA and F16C.
    unsafe { x86::matmul(weights, act, rows, kb, n, dst) }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::*;
    use crate::models::quant_blocks::x86::{hsum, q8_0_scale};
    use crate::models::tile_items::Out;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn matmul(
        weights: &[u8],
        act: &[u8],
        rows: usize,
        kb: usize,
        n: usize,
        dst: &mut [f32],
    ) {
        // The activations' scales by tile of rows, block by block: a tile's `TILE_ROWS` scales
        // of a block side by side (zero past the last row).
        let tiles_of_rows = rows.div_ceil(TILE_ROWS);
        let mut row_scales = vec![0f32; tiles_of_rows * kb * TILE_ROWS];
        for r in 0..rows {
            for b in 0..kb {
                row_scales[((r / TILE_ROWS) * kb + b) * TILE_ROWS + r % TILE_ROWS] =
                    q8_0_scale(act, r * kb + b);
            }
        }
        let chunk_rows =
            (CHUNK_BYTES / (kb * Q8_0_BYTES)).clamp(TILE_ROWS, CHUNK_ROWS) / TILE_ROWS * TILE_ROWS;
        let col_tiles = n.div_ceil(TILE_COLS);
        let out = Out(dst.as_mut_ptr());
        let row_scales = &row_scales;
        // Row chunk major: consecutive items reuse the chunk's activations from L2, each
        // item's two weight rows are read from memory once and then from L1.
        candle_core::utils::barrier_pool().execute_chunked(
            rows.div_ceil(chunk_rows) * col_tiles,
            |items| {
                // The whole wrapper (Sync), not its raw-pointer field, which the closure would
                // capture alone.
                let out = &out;
                // Per block, lanes `c · 4 + i`: column `c`'s weight scale (4 times), then its
                // products with the scales of a tile's rows `i`.
                let mut weight_scales = vec![0f32; kb * 8];
                let mut products = vec![0f32; kb * 8];
                for i in items {
                    let (chunk, col_tile) = (i / col_tiles, i % col_tiles);
                    let c0 = col_tile * TILE_COLS;
                    let cols = TILE_COLS.min(n - c0);
                    let w = &weights[c0 * kb * Q8_0_BYTES..(c0 + cols) * kb * Q8_0_BYTES];
                    for c in 0..cols {
                        for b in 0..kb {
                            weight_scales[b * 8 + c * 4..b * 8 + c * 4 + 4]
                                .fill(q8_0_scale(w, c * kb + b));
                        }
                    }
                    let rows_here = chunk * chunk_rows..rows.min((chunk + 1) * chunk_rows);
                    for r0 in rows_here.clone().step_by(TILE_ROWS) {
                        let tile_rows = TILE_ROWS.min(rows_here.end - r0);
                        let a = &act[r0 * kb * Q8_0_BYTES..(r0 + tile_rows) * kb * Q8_0_BYTES];
                        let group = &row_scales[(r0 / TILE_ROWS) * kb * TILE_ROWS..];
                        scale_products(&group[..kb * TILE_ROWS], &weight_scales, &mut products);
                        // SAFETY: `w` and `a` hold `cols` columns and `tile_rows` rows of `kb`
                        // blocks, `products` `kb` blocks of scale products; the outputs
                        // (r0.., c0..) are inside `dst` and written by this tile only.
                        unsafe {
                            let o = out.0.add(r0 * n + c0);
                            let p = &products;
                            match (tile_rows, cols) {
                                (4, 2) => tile::<4, 2>(w, a, p, kb, o, n),
                                (3, 2) => tile::<3, 2>(w, a, p, kb, o, n),
                                (2, 2) => tile::<2, 2>(w, a, p, kb, o, n),
                                (1, 2) => tile::<1, 2>(w, a, p, kb, o, n),
                                (4, _) => tile::<4, 1>(w, a, p, kb, o, n),
                                (3, _) => tile::<3, 1>(w, a, p, kb, o, n),
                                (2, _) => tile::<2, 1>(w, a, p, kb, o, n),
                                _ => tile::<1, 1>(w, a, p, kb, o, n),
                            }
                        }
                    }
                }
            },
        );
    }

    /// `products[8b + 4c + i] = weight_scales[8b + 4c + i] · group[4b + i]` for every block
    /// `b`: each the f32 product candle forms per block (`d_w · d_a`, the same bits).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scale_products(group: &[f32], weight_scales: &[f32], products: &mut [f32]) {
        for ((p, d_w), d_a) in products
            .chunks_exact_mut(8)
            .zip(weight_scales.chunks_exact(8))
            .zip(group.chunks_exact(TILE_ROWS))
        {
            // SAFETY: 8, 8 and 4 f32 in bounds, as the chunks above have them.
            unsafe {
                let d_a = _mm_loadu_ps(d_a.as_ptr());
                let d_w = _mm256_loadu_ps(d_w.as_ptr());
                let d = _mm256_mul_ps(d_w, _mm256_set_m128(d_a, d_a));
                _mm256_storeu_ps(p.as_mut_ptr(), d);
            }
        }
    }

    /// `R` rows × `C` columns of a product. `w`: `C` weight rows of `kb` blocks; `a`: `R`
    /// activation rows of `kb` blocks; `products`: per block the scale products of
    /// [`scale_products`]; `out[r * n + c]`.
    // `r` and `c` index the accumulators, the blocks and the scale products together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile<const R: usize, const C: usize>(
        w: &[u8],
        a: &[u8],
        products: &[f32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        debug_assert!(w.len() >= C * kb * Q8_0_BYTES && a.len() >= R * kb * Q8_0_BYTES);
        debug_assert!(products.len() >= kb * 8);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let wp = w.as_ptr();
        let ap = a.as_ptr();
        let pp = products.as_ptr();
        for b in 0..kb {
            let mut wq = [_mm256_setzero_si256(); C];
            let mut wabs = [_mm256_setzero_si256(); C];
            for c in 0..C {
                let at = wp.add((c * kb + b) * Q8_0_BYTES + 2);
                wq[c] = _mm256_loadu_si256(at as *const __m256i);
                wabs[c] = _mm256_sign_epi8(wq[c], wq[c]);
            }
            for r in 0..R {
                let at = ap.add((r * kb + b) * Q8_0_BYTES + 2);
                let y = _mm256_loadu_si256(at as *const __m256i);
                for c in 0..C {
                    let pairs = _mm256_maddubs_epi16(wabs[c], _mm256_sign_epi8(y, wq[c]));
                    let q = _mm256_cvtepi32_ps(_mm256_madd_epi16(ones, pairs));
                    let d = _mm256_broadcast_ss(&*pp.add(b * 8 + c * 4 + r));
                    acc[r][c] = _mm256_fmadd_ps(d, q, acc[r][c]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                *out.add(r * n + c) = hsum(v);
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use candle_core::quantized::k_quants::{self, BlockQ8_0};
    use candle_core::quantized::GgmlType;

    use super::*;
    use crate::models::quant_blocks::{as_bytes, has_avx2};

    /// Q8_0 weights as bytes, every quant in [-128, 127] (-128 and 127 included: quantizers
    /// other than llama.cpp's may write -128), scales of several magnitudes.
    fn extreme_weights(n: usize, kb: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(n * kb * Q8_0_BYTES);
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for block in 0..n * kb {
            // f16 bits of 2^(block % 7 - 9): exponent field `e + 15`, no mantissa.
            let d = ((block % 7) as u16 + 6) << 10;
            bytes.extend_from_slice(&d.to_le_bytes());
            for i in 0..32 {
                let q = match (block + i) % 11 {
                    0 => -128i8,
                    1 => 127,
                    _ => next() as i8,
                };
                bytes.push(q as u8);
            }
        }
        bytes
    }

    #[test]
    fn prompt_rows_equal_candles_vec_dot_bit_for_bit() {
        if !has_avx2() {
            return;
        }
        // Widths with one row chunk of 64 rows (1,536) and with chunks of 20 rows (8,960, so
        // that its rows' blocks fit the L2 budget); a column count that leaves half a tile.
        for (k, n) in [(1536, 7), (8960, 3), (64, 4)] {
            let kb = k / 32;
            let weights = extreme_weights(n, kb);
            // SAFETY: `BlockQ8_0` is `repr(C)` plain data of `Q8_0_BYTES` (asserted in
            // quant_blocks), and the bytes hold `n × kb` of them.
            let blocks: &[BlockQ8_0] =
                unsafe { std::slice::from_raw_parts(weights.as_ptr() as *const BlockQ8_0, n * kb) };
            for rows in [64, 67, 130] {
                let xs: Vec<f32> = (0..rows * k)
                    .map(|i| ((i * 7919 + rows) % 1013) as f32 / 101.3 - 5.0)
                    .collect();
                // candle's own quantization of the rows, as `k_quants::matmul` does it.
                let mut act = vec![BlockQ8_0::zeros(); rows * kb];
                BlockQ8_0::from_float(&xs, &mut act);
                let mut got = vec![0f32; rows * n];
                matmul(&weights, as_bytes(&act), (rows, kb, n), &mut got);
                let mut want = vec![0f32; rows * n];
                k_quants::matmul((rows, k, n), &xs, blocks, &mut want).unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "({n}, {k}) with {rows} rows");
            }
        }
    }
}
