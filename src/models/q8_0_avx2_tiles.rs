//! Q8_0 products on AVX2 without AVX-512 VNNI, on weights repacked once at load into tiles of
//! 8 output columns side by side: for decoding one sequence or several, and for prompts, one
//! exact integer per block and column and one float step.
//!
//! Why by hand: candle 0.11.1 has no Q8_0 tiles below AVX-512 VNNI, and its per-row
//! `vec_dot_q8_0_q8_0` (which polybrief's row kernels reproduce bit for bit, `row_kernels`)
//! spends, per row, column and block of 32 products, a load, the sign, two multiplies, a
//! conversion, a scale product, a broadcast and a fused multiply-add: 8 sequences decoded only
//! ~2× one sequence's tokens per second on it (AMD EPYC, AVX2, 2 threads; scripts/bench/README.md,
//! "Session 19"). Here 8 columns share each activation broadcast, and the float step is taken
//! once per block for 8 columns: per row and 32 products a broadcast, the sign, `vpmaddubsw`,
//! `vpmaddwd` and an add. On Qwen2.5-1.5B's 8,960 × 1,536 `ffn_up` this ran a 512-row prompt
//! at 94–104 GMAC/s against 37–57 for the row kernels' prompt tiles (`q8_0_tiles`) and 8 rows
//! at 68–82 against 50–65; 8 Q8_0 sequences decoded at 42–43 tok/s against 35–40, one at 17–23
//! against 17–19 (AMD EPYC Zen 4 at the AVX2 level, 2 threads, alternating runs;
//! scripts/bench/README.md, "Session 20"). Eight rows per work item instead of four (their
//! accumulators spilled) ran 64–73.
//!
//! The arithmetic: activations quantized by candle's Q8_0 `from_float` (`q8_0_rows`, at most
//! 127 in magnitude), each block's exact integer `Σ q·a` (`|q|` times the activations carrying
//! `q`'s sign: `vpmaddubsw`'s pair sums are at most 2 · 128 · 127 and never saturate), then
//! `acc += sum · (d_w · d_a)` block by block, one rounding per product. Every row count gives
//! the same bits as a plain scalar product (tested), so a row's result never depends on the
//! rows run beside it; results agree with candle's to rounding (tested).

use rayon::prelude::*;

use super::quant_blocks::{has_avx2, Q8_0_BYTES};
use super::tile_items::TileWeights;

/// Output columns per tile: one 256-bit register of 4-byte groups.
const TILE_COLS: usize = 8;
/// Values per Q8_0 block.
const BLOCK: usize = 32;
/// Q8_0 blocks per tile.
const BLOCKS: usize = 8;
/// Activation rows per work item in a prompt: 4 rows' accumulators and block sums and the
/// tile's quants fill 11 of the 16 registers.
const MAX_ROWS: usize = 4;
/// Up to how many activation rows (a decode step's sequences) a product runs one work item per
/// column tile that asks for the quants ahead (`tile_items::ask_ahead`): each tile is read from memory
/// once, its lines asked for in time. On 8 rows of an 8,960 × 1,536 weight streamed from
/// memory it ran 107–124 GMAC/s against 92–107 for two groups of 4, the first pass asking for
/// the next column tile, in paired rounds; the accumulators of 8 rows wait in memory (AMD EPYC
/// Zen 4, AVX2, 2 threads; scripts/bench/README.md, "Session 22").
const DECODE_ROWS: usize = 8;

/// Eight Q8_0 blocks (256 values) of 8 weight rows, factors first, on 34 cache lines of its own.
#[repr(C, align(64))]
#[derive(Clone)]
struct Tile {
    /// Block `b`'s factor for row `r`: `d[b][r]`, f16 bits.
    d: [[u16; TILE_COLS]; BLOCKS],
    /// Block `b`: `[group of 4 values (8)][row (8)][4 bytes]`, each byte `q` (i8).
    qs: [[u8; BLOCK * TILE_COLS]; BLOCKS],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 34 * 64);

/// A `(n, k)` Q8_0 weight in tiles: column tile `t`'s tiles `0..k/256` in order, then `t + 1`'s.
pub(crate) struct Q8_0Avx2Tiles {
    tiles: Vec<Tile>,
    n: usize,
    k: usize,
}

/// Whether [`Q8_0Avx2Tiles`] can hold a `(n, k)` weight and run on this CPU: whole tiles, AVX2
/// with FMA and F16C. Where the kernels' level is AVX-512 VNNI the layers take
/// `q8_0_vnni_tiles` instead (`row_linear`).
pub(crate) fn supports(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && n.is_multiple_of(TILE_COLS) && k.is_multiple_of(BLOCK * BLOCKS) && has_avx2()
}

impl Q8_0Avx2Tiles {
    /// Packs the raw bytes of a `(n, k)` GGUF Q8_0 tensor (row-major blocks). Callers check
    /// [`supports`] first.
    pub(crate) fn pack(weights: &[u8], n: usize, k: usize) -> candle_core::Result<Self> {
        if !supports(n, k) {
            candle_core::bail!("no Q8_0 AVX2 tiles for ({n}, {k}) on this CPU")
        }
        let (kb, spans) = (k / BLOCK, k / (BLOCK * BLOCKS));
        super::tile_items::check_weight_bytes("Q8_0", weights, (n, k), (BLOCK, Q8_0_BYTES))?;
        let empty = Tile {
            d: [[0; TILE_COLS]; BLOCKS],
            qs: [[0; BLOCK * TILE_COLS]; BLOCKS],
        };
        let mut tiles = super::huge_pages::filled(empty, n / TILE_COLS * spans);
        tiles.par_iter_mut().enumerate().for_each(|(i, tile)| {
            let (t, span) = (i / spans, i % spans);
            for r in 0..TILE_COLS {
                for b in 0..BLOCKS {
                    let at = ((t * TILE_COLS + r) * kb + span * BLOCKS + b) * Q8_0_BYTES;
                    let block = &weights[at..at + Q8_0_BYTES];
                    tile.d[b][r] = u16::from_le_bytes([block[0], block[1]]);
                    for g in 0..BLOCK / 4 {
                        tile.qs[b][(g * TILE_COLS + r) * 4..][..4]
                            .copy_from_slice(&block[2 + g * 4..][..4]);
                    }
                }
            }
        });
        Ok(Q8_0Avx2Tiles { tiles, n, k })
    }

    /// Row `r` of the weight in f32, each value exactly as candle's `dequantize` gives it
    /// (`q · d`): so tied embeddings can be looked up in the output head's tiles rather than
    /// held a second time.
    pub(crate) fn dequantize_row(&self, r: usize) -> candle_core::Result<Vec<f32>> {
        if r >= self.n {
            candle_core::bail!("row {r} of a Q8_0 weight of {} rows", self.n)
        }
        let (spans, t, c) = (self.k / (BLOCK * BLOCKS), r / TILE_COLS, r % TILE_COLS);
        let mut row = Vec::with_capacity(self.k);
        for tile in &self.tiles[t * spans..(t + 1) * spans] {
            for (d, qs) in tile.d.iter().zip(&tile.qs) {
                // SAFETY: `supports` held when these tiles were packed (F16C).
                let d = unsafe { super::quant_blocks::x86::f16_to_f32(d[c]) };
                for g in 0..BLOCK / 4 {
                    let group = &qs[(g * TILE_COLS + c) * 4..][..4];
                    row.extend(group.iter().map(|&q| q as i8 as f32 * d));
                }
            }
        }
        Ok(row)
    }
}

impl TileWeights for Q8_0Avx2Tiles {
    const FORMAT: &'static str = "Q8_0";
    const TILE_COLS: usize = TILE_COLS;
    type Rows = Vec<candle_core::quantized::k_quants::BlockQ8_0>;

    fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn quantize_rows(xs: &[f32], rows: usize, k: usize) -> Self::Rows {
        super::q8_0_rows::quantize(xs, rows, k)
    }

    /// At AVX2 at either width: the format is for CPUs without AVX-512 VNNI.
    #[cfg(target_arch = "x86_64")]
    fn run_kernels(
        &self,
        act: &Self::Rows,
        rows: usize,
        columns: std::ops::Range<usize>,
        dst: &mut [f32],
        _width: super::cpu_level::Width,
    ) {
        let spans = self.k / (BLOCK * BLOCKS);
        let tiles = super::tile_items::column_tiles(&self.tiles, &columns, (TILE_COLS, spans));
        let act = super::quant_blocks::as_bytes(act);
        x86::matmul(tiles, act, rows, self.k, columns.len(), dst);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::quant_blocks::x86::q8_0_scales;
    use super::super::tile_items::{ask_ahead, run_tile_kernels, TileKernel};
    use super::*;

    /// One work item per column tile and group of up to [`DECODE_ROWS`] rows in a decode step,
    /// [`MAX_ROWS`] in a prompt ([`run_tile_kernels`]).
    pub(super) fn matmul(
        tiles: &[Tile],
        act: &[u8],
        rows: usize,
        k: usize,
        n: usize,
        dst: &mut [f32],
    ) {
        // SAFETY: `supports` checked AVX2, FMA and F16C.
        let scales = unsafe { q8_0_scales(act, rows * k / BLOCK) };
        let decode: [TileKernel<Tile>; DECODE_ROWS] = [
            unit::<1, true>,
            unit::<2, true>,
            unit::<3, true>,
            unit::<4, true>,
            unit::<5, true>,
            unit::<6, true>,
            unit::<7, true>,
            unit::<8, true>,
        ];
        let prompt: [TileKernel<Tile>; MAX_ROWS] = [
            unit::<1, true>,
            unit::<2, false>,
            unit::<3, false>,
            unit::<4, false>,
        ];
        let (tiles, act, scales) = (
            (tiles, TILE_COLS),
            (act, BLOCKS * Q8_0_BYTES),
            (&scales[..], BLOCKS),
        );
        let shape = (rows, k / (BLOCK * BLOCKS), n);
        // SAFETY: as above.
        unsafe {
            if rows <= DECODE_ROWS {
                run_tile_kernels(tiles, act, scales, shape, dst, decode)
            } else {
                run_tile_kernels(tiles, act, scales, shape, dst, prompt)
            }
        }
    }

    /// `R` activation rows (`act`: `R × 8 · spans` Q8_0 blocks as bytes, `scales` their
    /// factors) against one column tile's `spans` tiles; writes the `R × 8` results at `out`
    /// (row stride `n`). With `NEXT` (a decode step, and one row left over in a prompt) each
    /// line of quants asks for one further on (`ask_ahead`, [`DECODE_ROWS`]).
    // `m` indexes the rows, their blocks, sums and accumulators together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unit<const R: usize, const NEXT: bool>(
        tiles: &[Tile],
        act: &[u8],
        scales: &[f32],
        spans: usize,
        out: *mut f32,
        n: usize,
    ) {
        let kb = spans * BLOCKS;
        let ones = _mm256_set1_epi16(1);
        let base = act.as_ptr();
        let mut acc = [_mm256_setzero_ps(); R];
        for (span, tile) in tiles.iter().enumerate() {
            for b in 0..BLOCKS {
                let block = span * BLOCKS + b;
                let qs = tile.qs[b].as_ptr();
                let mut sums = [_mm256_setzero_si256(); R];
                for g in 0..BLOCK / 4 {
                    let at = qs.add(g * TILE_COLS * 4);
                    if NEXT {
                        ask_ahead(at);
                    }
                    let q = _mm256_loadu_si256(at as *const __m256i);
                    let q_abs = _mm256_sign_epi8(q, q);
                    for m in 0..R {
                        let a = base.add((m * kb + block) * Q8_0_BYTES + 2 + g * 4);
                        let a = _mm256_set1_epi32((a as *const i32).read_unaligned());
                        let pairs = _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(a, q));
                        sums[m] = _mm256_add_epi32(sums[m], _mm256_madd_epi16(pairs, ones));
                    }
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(tile.d[b].as_ptr() as *const __m128i));
                for m in 0..R {
                    // SAFETY: `scales` holds the `R × kb` blocks' factors.
                    let d_act = _mm256_set1_ps(*scales.get_unchecked(m * kb + block));
                    let f = _mm256_cvtepi32_ps(sums[m]);
                    acc[m] = _mm256_fmadd_ps(f, _mm256_mul_ps(d, d_act), acc[m]);
                }
            }
        }
        for (m, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(m * n), *row);
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::models::quant_blocks::as_bytes;
    use crate::models::tile_items::test_support::{
        assert_close_to_candles, assert_dequantized_rows, assert_rows_alone, assert_same_bits,
        print_tile_rates, random_rows,
    };

    fn q8_0(n: usize, k: usize) -> QTensor {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()
    }

    fn ours(bytes: &[u8], (n, k): (usize, usize), xs: &[f32], rows: usize) -> Vec<f32> {
        let tiles = Q8_0Avx2Tiles::pack(bytes, n, k).unwrap();
        let mut dst = vec![0f32; rows * n];
        tiles.matmul(xs, rows, &mut dst).unwrap();
        dst
    }

    /// The product written plainly from the GGUF's blocks and the rows' Q8_0 blocks: per
    /// column and block the exact `Σ q·a`, then `acc += sum · (d_w · d_a)`, one rounding each.
    fn plain_product(weights: &[u8], (n, k): (usize, usize), xs: &[f32], rows: usize) -> Vec<f32> {
        let act = crate::models::q8_0_rows::quantize(xs, rows, k);
        let act = as_bytes(&act);
        let kb = k / BLOCK;
        // SAFETY: the callers run this where `supports` holds (AVX2, F16C).
        let f16 = |bytes: &[u8]| unsafe {
            crate::models::quant_blocks::x86::f16_to_f32(u16::from_le_bytes([bytes[0], bytes[1]]))
        };
        let mut dst = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let mut acc = 0f32;
                for b in 0..kb {
                    let w = &weights[(c * kb + b) * Q8_0_BYTES..][..Q8_0_BYTES];
                    let a = &act[(r * kb + b) * Q8_0_BYTES..][..Q8_0_BYTES];
                    let sum: i32 = (0..BLOCK)
                        .map(|j| w[2 + j] as i8 as i32 * a[2 + j] as i8 as i32)
                        .sum();
                    acc = (sum as f32).mul_add(f16(w) * f16(a), acc);
                }
                dst[r * n + c] = acc;
            }
        }
        dst
    }

    /// Q8_0 weights as bytes with every quant in [-128, 127] (-128 included: quantizers other
    /// than llama.cpp's may write it) and scales of several magnitudes.
    fn extreme_weights(n: usize, k: usize) -> Vec<u8> {
        let mut bytes = q8_0(n, k).data().unwrap().to_vec();
        for (i, block) in bytes.chunks_exact_mut(Q8_0_BYTES).enumerate() {
            block[2] = 0x80;
            block[3] = 0x7F;
            block[4 + i % 28] = 0x80;
        }
        bytes
    }

    #[test]
    fn every_row_count_gives_the_plain_products_bits() {
        if !supports(8, 256) {
            return;
        }
        let (n, k) = (24, 512);
        let bytes = extreme_weights(n, k);
        for rows in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13] {
            let x = random_rows(rows, k);
            let expected = plain_product(&bytes, (n, k), &x, rows);
            let got = ours(&bytes, (n, k), &x, rows);
            assert_same_bits(&expected, &got, &format!("{rows} rows"));
        }
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_beside_it() {
        if !supports(8, 256) {
            return;
        }
        let (n, k) = (16, 512);
        let w = q8_0(n, k);
        let bytes = w.data().unwrap();
        assert_rows_alone((n, k), 11, |xs, rows| ours(&bytes, (n, k), xs, rows));
    }

    #[test]
    fn results_agree_with_candles_q8_0_product() {
        if !supports(8, 256) {
            return;
        }
        let (n, k) = (24, 768);
        let w = std::sync::Arc::new(q8_0(n, k));
        let candle = QMatMul::from_arc(w.clone()).unwrap();
        let bytes = w.data().unwrap();
        // candle sums eight partial lanes per column.
        assert_close_to_candles(&candle, k, 5, |xs, rows| ours(&bytes, (n, k), xs, rows));
    }

    #[test]
    fn a_dequantized_row_is_candles_bit_for_bit() {
        if !supports(8, 256) {
            return;
        }
        let (n, k) = (16, 512);
        let w = q8_0(n, k);
        let tiles = Q8_0Avx2Tiles::pack(&w.data().unwrap(), n, k).unwrap();
        assert_dequantized_rows(&w, |r| tiles.dequantize_row(r));
    }

    /// Multiply-accumulates per second on this machine's pool:
    /// `cargo test --release --lib q8_0_avx2_tile_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q8_0_avx2_tile_rate() {
        let (n, k) = (8960, 1536);
        let w = q8_0(n, k);
        let data = w.data().unwrap();
        // 5 copies of 14.6 MB: more than twice a 32 MiB last-level cache.
        let copies: Vec<Q8_0Avx2Tiles> = (0..5)
            .map(|_| Q8_0Avx2Tiles::pack(&data, n, k).unwrap())
            .collect();
        print_tile_rates((n, k), copies.len(), |copy, x, rows, dst| {
            copies[copy].matmul(x, rows, dst).unwrap()
        });
    }

    #[test]
    fn shapes_that_do_not_tile_are_refused() {
        assert!(!supports(12, 256));
        assert!(!supports(8, 128));
        assert!(Q8_0Avx2Tiles::pack(&[0u8; 10], 8, 256).is_err());
    }
}
