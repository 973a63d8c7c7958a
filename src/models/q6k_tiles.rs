//! Q6K prompt products on AVX2, on weights repacked into tiles that keep the GGUF's compact
//! scales, bit for bit what candle's own AVX2 tiles give.
//!
//! candle 0.11.1 runs Q6K products of more than one row on AVX2 on its repacked x86 tiles
//! (`repack_x86::matmul_unit_256` with `q6k_tile_avx2`): the 6-bit quants of 16 weight rows side
//! by side, so one load serves 16 output columns and up to 4 activation rows. But its tiles
//! hold each sub-block's scale as an f32 per row beside a byte per quant (10 bits per weight,
//! cached beside the compact weights on first use), its kernel widens every `maddubs` to i32 at
//! once (`maddubs` + `madd` + `add` per 32 products) and keeps both halves of a tile's columns
//! live, and it quantizes the activations with `BlockQ8K::from_float` (libm `roundf` per value).
//! In a 512-token prompt of Qwen2.5-1.5B Q4_K_M (half the layers' `ffn_down` and `attn_v`
//! are Q6K) that was ~13% of the time plus ~2% for `from_float` (perf, AMD EPYC, AVX2,
//! 2 threads) while polybrief's [`Q4KTiles`](super::q4k_tiles) did ~5x the multiply-adds in 54%.
//!
//! These tiles keep a byte per quant in candle's order and each row's i8 scales and f16 `d`
//! (4,384 bytes a tile of 16 × 256 weights: 8.6 bits per weight), one half of a tile's columns
//! (8) for one sub-block in four 32-byte loads that serve up to 4 activation rows. The kernel
//! forms the integer sums with half of candle's widenings (exact: the bound is at the sums) and
//! then does candle's float arithmetic in its order — `(cvt(isum) − 32·bsum) · (d·sc · d_act)`
//! fused into the accumulator, sub-blocks then blocks in order — so every result is bit for bit
//! candle's (tested), whatever rows run beside it. The activations go through
//! [`q8k_rows::quantize`](super::q8k_rows::quantize) (candle's blocks, vectorized).
//!
//! Keeping the GGUF's own 4-bit and 2-bit planes (6.6 bits per weight) cost more than it saved:
//! unpacking them (17 vector operations per half sub-block, shared by 4 rows) took the 512-row
//! `(1536 × 8960)` product from 108-118 down to 91-96 GMAC/s, no faster than candle's 87-92
//! (`q6k_tile_rate`, AMD EPYC, AVX2, 2 threads); a prompt product is bound by operations, not
//! by the tile bytes it reads from cache.
//!
//! Only for prompts: decode rows of Q6K run on `row_kernels` (candle's compact single-row
//! arithmetic, which differs from the tiles'), so the layer keeps the compact weights too. Not
//! used where candle runs its AVX-512 VNNI tiles (see `row_linear.rs`).

use candle_core::quantized::k_quants::QK_K;
use rayon::prelude::*;

use super::quant_blocks::{has_avx2, Q6K_BYTES, Q8K_BSUMS, Q8K_BYTES, Q8K_QS};

/// Output columns per tile: candle's `TILE_N`.
pub(crate) const TILE_COLS: usize = 16;
/// Columns per half tile: one 256-bit register of f32 results.
const HALF: usize = 8;
/// Sub-blocks of 16 values per super-block, each with its own scale.
const SUBS: usize = QK_K / 16;
/// Activation rows per work item (candle's `MAX_MT`).
const MAX_ROWS: usize = 4;

/// One super-block (256 values) of 16 weight rows.
#[repr(C)]
#[derive(Clone)]
struct Tile {
    /// The unsigned 6-bit quants: for half `h` (columns `8h..8h + 8`) and sub-block `s`, the 16
    /// values of each column are four groups of 4 (`g`: values `16s + 4g..16s + 4g + 4`),
    /// group `g`'s byte `4c + j` holding value `j` of column `c` of the half: `q[h][s][g]`. A
    /// half's bytes are contiguous: the kernel runs one half at a time.
    q: [[[[u8; 32]; 4]; SUBS]; 2],
    /// Scale of sub-block `s` of row `r`: `scales[s][r]`.
    scales: [[i8; TILE_COLS]; SUBS],
    /// Each row's super-block factor, f16 bits.
    d: [u16; TILE_COLS],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 4384);

/// A `(n, k)` Q6K weight in tiles: tile `t`'s super-blocks `0..k/256` in order, then `t + 1`'s.
pub(crate) struct Q6KTiles {
    tiles: Vec<Tile>,
    n: usize,
    k: usize,
}

/// Whether [`Q6KTiles`] can hold a `(n, k)` weight and run on this CPU.
pub(crate) fn supports(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && n.is_multiple_of(TILE_COLS) && k.is_multiple_of(QK_K) && has_avx2()
}

/// The 256 unsigned 6-bit quants of a GGUF Q6K block, in order (as candle's `pack_q6k` reads
/// them: each 128-value half is 64 bytes of nibbles and 32 of 2-bit pairs).
pub(super) fn quants(block: &[u8]) -> [u8; QK_K] {
    let (ql, qh) = (&block[..128], &block[128..192]);
    let mut values = [0u8; QK_K];
    for h in 0..2 {
        let (ql, qh) = (&ql[h * 64..], &qh[h * 32..]);
        for j in 0..32 {
            values[h * 128 + j] = (ql[j] & 0x0F) | ((qh[j] & 3) << 4);
            values[h * 128 + j + 32] = (ql[j + 32] & 0x0F) | (((qh[j] >> 2) & 3) << 4);
            values[h * 128 + j + 64] = (ql[j] >> 4) | (((qh[j] >> 4) & 3) << 4);
            values[h * 128 + j + 96] = (ql[j + 32] >> 4) | (((qh[j] >> 6) & 3) << 4);
        }
    }
    values
}

impl Q6KTiles {
    /// Packs the raw bytes of a `(n, k)` GGUF Q6K tensor (row-major super-blocks). Callers
    /// check [`supports`] first.
    pub(crate) fn pack(weights: &[u8], n: usize, k: usize) -> candle_core::Result<Q6KTiles> {
        if !supports(n, k) {
            candle_core::bail!("no Q6K tiles for ({n}, {k}) on this CPU")
        }
        let kb = k / QK_K;
        super::tile_items::check_weight_bytes("Q6K", weights, (n, k), (QK_K, Q6K_BYTES))?;
        let empty = Tile {
            q: [[[[0; 32]; 4]; SUBS]; 2],
            scales: [[0; TILE_COLS]; SUBS],
            d: [0; TILE_COLS],
        };
        let mut tiles = vec![empty; n / TILE_COLS * kb];
        tiles.par_iter_mut().enumerate().for_each(|(i, tile)| {
            let (t, b) = (i / kb, i % kb);
            for r in 0..TILE_COLS {
                let at = ((t * TILE_COLS + r) * kb + b) * Q6K_BYTES;
                let block = &weights[at..at + Q6K_BYTES];
                tile.d[r] = u16::from_le_bytes([block[208], block[209]]);
                for s in 0..SUBS {
                    tile.scales[s][r] = block[192 + s] as i8;
                }
                let values = quants(block);
                let (h, c) = (r / HALF, r % HALF);
                for s in 0..SUBS {
                    for j in 0..4 {
                        for g in 0..4 {
                            tile.q[h][s][g][4 * c + j] = values[s * 16 + g * 4 + j];
                        }
                    }
                }
            }
        });
        Ok(Q6KTiles { tiles, n, k })
    }

    /// `(n, k)`.
    pub(crate) fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// `dst = xs · Wᵀ` for `rows` rows of width `k` (`xs`, row-major); `dst` is `(rows, n)`.
    pub(crate) fn matmul(
        &self,
        xs: &[f32],
        rows: usize,
        dst: &mut [f32],
    ) -> candle_core::Result<()> {
        let (n, k) = (self.n, self.k);
        let Some(act) = super::tile_items::q8k_rows_for("Q6K", (n, k), xs, rows, dst)? else {
            return Ok(());
        };
        #[cfg(target_arch = "x86_64")]
        x86::matmul(&self.tiles, &act, rows, k / QK_K, n, dst);
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = act;
            unreachable!("supports() is false off x86")
        }
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::tile_items::{run_tile_kernels, TileKernel};
    use super::*;

    /// One work item per column tile and group of up to [`MAX_ROWS`] rows
    /// ([`run_tile_kernels`]).
    pub(super) fn matmul(
        tiles: &[Tile],
        act: &[u8],
        rows: usize,
        kb: usize,
        n: usize,
        dst: &mut [f32],
    ) {
        let offsets = offsets(act, rows * kb);
        let kernels: [TileKernel<Tile>; MAX_ROWS] = [unit::<1>, unit::<2>, unit::<3>, unit::<4>];
        // SAFETY: `supports` checked AVX2, FMA and F16C.
        unsafe {
            run_tile_kernels(
                (tiles, TILE_COLS),
                (act, &offsets, SUBS),
                (rows, kb, n),
                dst,
                kernels,
            )
        }
    }

    /// Each Q8K block's `32 · (sum of a sub-block's quants)`, `SUBS` per block: the term that
    /// takes the quants' offset of 32 out of candle's sums (exact in f32: at most 32 · 16 · 128).
    /// Once per activation row here rather than once per column tile.
    fn offsets(act: &[u8], blocks: usize) -> Vec<f32> {
        let mut offsets = Vec::with_capacity(blocks * SUBS);
        for block in act.chunks_exact(Q8K_BYTES).take(blocks) {
            let sums = &block[Q8K_BSUMS..];
            for s in 0..SUBS {
                offsets.push(32.0 * i16::from_le_bytes([sums[2 * s], sums[2 * s + 1]]) as f32);
            }
        }
        offsets
    }

    /// 8 i8 to f32 lanes, exactly.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn i8_to_f32(bytes: &[i8]) -> __m256 {
        debug_assert!(bytes.len() >= 8);
        // SAFETY: 8 readable bytes (the slices are rows of 16).
        let b = unsafe { _mm_loadl_epi64(bytes.as_ptr() as *const __m128i) };
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b))
    }

    /// 8 f16 bits to f32 lanes, exactly (as `half::f16::to_f32`).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16_to_f32(bits: &[u16]) -> __m256 {
        debug_assert!(bits.len() >= 8);
        // SAFETY: 8 readable u16 (the slices are rows of 16).
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bits.as_ptr() as *const __m128i) })
    }

    /// `R` activation rows (`act`: `R × kb` Q8K blocks, `offsets` their [`offsets`]) against
    /// one column tile's `kb` super-blocks; writes the `R × 16` results at `out` (row stride
    /// `n`). candle's `matmul_unit_256` with `q6k_tile_avx2`: each output's float arithmetic in
    /// its order. One half of the tile's columns at a time over all its super-blocks, so that
    /// only `R` accumulators are live (as in `q4k_tiles`, where both halves at once spilled).
    // `m` indexes the rows, their blocks and their accumulators together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unit<const R: usize>(
        tiles: &[Tile],
        act: &[u8],
        offsets: &[f32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let ones = _mm256_set1_epi16(1);
        let base = act.as_ptr();
        for h in 0..2 {
            let mut acc = [_mm256_setzero_ps(); R];
            for (b, tile) in tiles.iter().enumerate() {
                let mut d = [0f32; R];
                for m in 0..R {
                    d[m] = (base.add((m * kb + b) * Q8K_BYTES) as *const f32).read_unaligned();
                }
                let d_row = f16_to_f32(&tile.d[h * HALF..]);
                for s in 0..SUBS {
                    // The sub-block's four groups of 6-bit quants, 8 columns × 4 values each:
                    // the low nibbles or'ed with the high pairs moved to bits 4..6.
                    let q = &tile.q[h][s];
                    let w = [
                        _mm256_loadu_si256(q[0].as_ptr() as *const __m256i),
                        _mm256_loadu_si256(q[1].as_ptr() as *const __m256i),
                        _mm256_loadu_si256(q[2].as_ptr() as *const __m256i),
                        _mm256_loadu_si256(q[3].as_ptr() as *const __m256i),
                    ];
                    // candle's f32 scale: `d · sc`, one rounding of exact inputs.
                    let scale = _mm256_mul_ps(d_row, i8_to_f32(&tile.scales[s][h * HALF..]));
                    for m in 0..R {
                        let a = base.add((m * kb + b) * Q8K_BYTES + Q8K_QS + s * 16);
                        let mut bcast = [_mm256_setzero_si256(); 4];
                        for (g, v) in bcast.iter_mut().enumerate() {
                            *v = _mm256_set1_epi32((a.add(4 * g) as *const i32).read_unaligned());
                        }
                        // Each i16 lane of a `maddubs` sums two products of a quant (at most
                        // 63) and an activation (at least -128): |lane| <= 16,128, so two
                        // such lanes add without leaving i16 (32,256 < 32,767) and each i32
                        // below is the sub-block's exact integer sum, as candle's.
                        let p01 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(w[0], bcast[0]),
                            _mm256_maddubs_epi16(w[1], bcast[1]),
                        );
                        let p23 = _mm256_add_epi16(
                            _mm256_maddubs_epi16(w[2], bcast[2]),
                            _mm256_maddubs_epi16(w[3], bcast[3]),
                        );
                        let isum = _mm256_add_epi32(
                            _mm256_madd_epi16(p01, ones),
                            _mm256_madd_epi16(p23, ones),
                        );
                        // SAFETY: `offsets` holds `SUBS` terms for each of the `R × kb` blocks.
                        let offset = *offsets.get_unchecked((m * kb + b) * SUBS + s);
                        let f = _mm256_sub_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(offset));
                        acc[m] =
                            _mm256_fmadd_ps(f, _mm256_mul_ps(scale, _mm256_set1_ps(d[m])), acc[m]);
                    }
                }
            }
            for (m, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(m * n + h * HALF), *row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;
    use crate::models::tile_items::test_support::{assert_candles_bits, assert_rows_alone};

    fn q6k(n: usize, k: usize) -> QTensor {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, GgmlDType::Q6K).unwrap()
    }

    fn ours(w: &QTensor, xs: &[f32], rows: usize) -> Vec<f32> {
        let (n, k) = w.shape().dims2().unwrap();
        let tiles = Q6KTiles::pack(&w.data().unwrap(), n, k).unwrap();
        let mut dst = vec![0f32; rows * n];
        tiles.matmul(xs, rows, &mut dst).unwrap();
        dst
    }

    /// Whether candle runs its AVX2 tiles here: where the CPU has AVX-512 VNNI it picks its
    /// AVX-512 tiles, which sum in another order, and only its AVX2 tiles are what these
    /// reproduce.
    fn candle_runs_avx2_tiles() -> bool {
        supports(16, 256)
            && (!is_x86_feature_detected!("avx512vnni")
                || std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1"))
    }

    #[test]
    fn every_result_is_candles_avx2_tiles_bit_for_bit() {
        if !candle_runs_avx2_tiles() {
            return;
        }
        let (n, k) = (48, 768);
        let w = std::sync::Arc::new(q6k(n, k));
        let candle = QMatMul::from_arc(w.clone()).unwrap();
        // candle's tiles run from 2 rows on (one row takes its compact kernel).
        assert_candles_bits(&candle, k, &[2, 3, 4, 5, 9], |xs, rows| ours(&w, xs, rows));
    }

    #[test]
    fn extreme_quants_and_activations_give_candles_results() {
        // Quants 0 and 63 beside activations of -128 and 127: the i16 bound in the kernel is
        // met with equality's neighbours, and any saturation would show here.
        if !candle_runs_avx2_tiles() {
            return;
        }
        let (n, k) = (16, 512);
        let w: Vec<f32> = (0..n * k)
            .map(|i| if (i / 3) % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + (i % 5) as f32))
            .collect();
        let w = std::sync::Arc::new(
            QTensor::quantize(
                &Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap(),
                GgmlDType::Q6K,
            )
            .unwrap(),
        );
        let candle = QMatMul::from_arc(w.clone()).unwrap();
        let rows = 4;
        let x: Vec<f32> = (0..rows * k)
            .map(|i| if i % 7 < 4 { -1.0 } else { 1.0 })
            .collect();
        let expected: Vec<f32> = candle
            .forward(&Tensor::from_vec(x.clone(), (rows, k), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got = ours(&w, &x, rows);
        assert!(expected
            .iter()
            .zip(&got)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_beside_it() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 512);
        let w = q6k(n, k);
        assert_rows_alone((n, k), 7, |xs, rows| ours(&w, xs, rows));
    }

    #[test]
    fn shapes_that_do_not_tile_are_refused() {
        assert!(!supports(40, 256));
        assert!(!supports(16, 128));
        assert!(Q6KTiles::pack(&[0u8; 10], 16, 256).is_err());
    }

    /// Multiply-accumulates per second of a prompt-sized product on this machine's pool, these
    /// tiles and then candle's `QMatMul` on the same weights:
    /// `cargo test --release --lib q6k_tile_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q6k_tile_rate() {
        // A prompt's `ffn_down`, then the decode shapes of one and of 8 sequences (the tied
        // output head, `ffn_down`).
        for (rows, n, k) in [
            (512, 1536, 8960),
            (1, 151_936, 1536),
            (8, 151_936, 1536),
            (1, 1536, 8960),
            (8, 1536, 8960),
        ] {
            let w = std::sync::Arc::new(q6k(n, k));
            let tiles = Q6KTiles::pack(&w.data().unwrap(), n, k).unwrap();
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let rate = |s: f64| (rows * n * k) as f64 / s / 1e9;
            let mut dst = vec![0f32; rows * n];
            tiles.matmul(&x, rows, &mut dst).unwrap();
            let reps = if rows * n * k < 100_000_000 { 20 } else { 3 };
            let t = std::time::Instant::now();
            for _ in 0..reps {
                tiles.matmul(&x, rows, &mut dst).unwrap();
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            eprintln!(
                "polybrief {rows}x{k} . {n}x{k}: {:.2} ms, {:.1} GMAC/s",
                s * 1e3,
                rate(s)
            );
            if rows == 512 {
                let candle = QMatMul::from_arc(w).unwrap();
                let xs = Tensor::from_vec(x, (rows, k), &Device::Cpu).unwrap();
                candle.forward(&xs).unwrap();
                let t = std::time::Instant::now();
                candle.forward(&xs).unwrap();
                let s = t.elapsed().as_secs_f64();
                eprintln!(
                    "candle    {rows}x{k} . {n}x{k}: {:.2} ms, {:.1} GMAC/s",
                    s * 1e3,
                    rate(s)
                );
            }
        }
    }
}
