//! Q6K products on AVX2 and on AVX-512 VNNI (the same bits), on weights repacked once at load
//! into tiles of 16 output columns that keep the GGUF's 6 bits a weight: for decoding one
//! sequence or several, and for prompts, each row's result independent of the rows beside it.
//!
//! Until these tiles, Q6K decode rows ran on `row_kernels`, which reproduce candle's compact
//! single-row arithmetic (`vec_dot_q6k_q8k`): eight separate 32-bit partial sums per block and
//! output, each converted and accumulated on its own. That keeps a column per register, so
//! every block of every output ends in a float step of its own, and in an 8-sequence
//! Qwen2.5-1.5B Q4_K_M decode step the Q6K kernel (the tied 151,936-row output head, half the
//! layers' `ffn_down` and `attn_v`) took 28% of the time at ~110 GMAC/s while the Q4K tiles
//! took 47% at ~2.6 times its multiply-adds (AMD EPYC Zen 4, 2 threads; scripts/bench/README.md,
//! "Session 17"). Forming the candle lanes with fewer instructions did not help (tried: one
//! `vpdpbusd` per 64 quants, pairs interleaved into one `vpdpwssd` with the scales, 105 against
//! 107–112 GMAC/s on 8 rows of the head): the kernel was bound by all its per-output work.
//!
//! Here 16 columns sit side by side, as in [`super::q4k_tiles`]: one load of 4 quants of every
//! column serves all of them, and the activations are broadcast. Per sub-block of 16 values,
//! 4 `vpdpbusd` form each column's exact sum `Σ (a + 128)(q − 32)` (unsigned activations,
//! signed weights), one `vpmulld` and an add put it times the sub-block's scale into the
//! block's exact 32-bit sum; the weights-only term `128 Σ sc Σ (q − 32)` is stored in the tile
//! at packing and taken out once per block; then per block and output one conversion and one
//! fused multiply-add: `acc += f32(sum) · (d_w · d_a)`. The quants are kept as a plane of
//! nibbles and a plane of 2-bit high parts (3,456 bytes a tile of 16 × 256 weights: 6.75 bits a
//! weight, against the GGUF's 6.56), so one sequence, which is bound by reading the weights,
//! reads about as much as before.
//!
//! The arithmetic is not candle's: the block sum is one exact integer (candle's eight partial
//! sums add up to it) and it is rounded to f32 once per block, where candle rounds eight parts.
//! Every lane runs the scalar steps of [`reference`] in order, so the results equal that
//! reference bit for bit (tested), for any number of rows beside them; they agree with
//! candle's to float rounding.
//!
//! Without VNNI the AVX2 kernel forms the same exact sums from `vpmaddubsw` and `vpmaddwd`
//! (8 columns at a time), so a model's results do not depend on which of the two a CPU runs.
//! It replaced, at the AVX2 level, both the row kernels (decode) and polybrief's copy of
//! candle's AVX2 Q6K tiles (prompts, candle's bits): `q6k_tile_rate` with
//! `POLYBRIEF_CPU_LEVEL=avx2`, AMD EPYC Zen 4, 2 threads, two runs: 8 rows of the head 93 / 150
//! GMAC/s against the row kernels' 52 / 91, 8 rows of `ffn_down` 118 / 167 against 58 / 92, one
//! row of the head 8.8 / 6.4 ms against 9.9 / 6.2, a 512-row `ffn_down` prompt 170 / 169
//! against the copy of candle's AVX2 tiles' 132 / 132. One row has a kernel of its own that
//! reads each line of a tile once (both halves of a sub-block in turn), at both levels.
//!
//! Measured at AVX-512 (`q6k_tile_rate`, AMD EPYC Zen 4, 2 threads, two runs): 8 rows of the head
//! 232 / 242 GMAC/s against 121 / 123 on the row kernels, 8 rows of `ffn_down` 253 / 278
//! against 107 / 117, a 512-row `ffn_down` prompt 269 / 274 against candle's AVX-512 tiles'
//! 196 / 198; one row of the head (bound by reading 197 MB) 6.5–6.8 ms against 5.9–6.1 on the
//! VNNI kernel, 5.5–5.6 against 5.8–6.0 on the one-row kernel, which one row now runs. Every
//! tile asks for the lines ahead of those it reads (`tile_items::ask_ahead`), for any number of rows:
//! without it 8 rows of the head, read from memory, ran at 93 GMAC/s.

use candle_core::quantized::k_quants::QK_K;
use rayon::prelude::*;

use super::cpu_level::Width;
use super::quant_blocks::{has_avx2, Q6K_BYTES, Q8K_BYTES, Q8K_QS};
use super::tile_items::TileWeights;

/// Output columns per tile.
pub(crate) const TILE_COLS: usize = 16;
/// Sub-blocks of 16 values per super-block, each with its own scale.
const SUBS: usize = QK_K / 16;
/// Activation rows per work item: all of an 8-sequence decode step, so that each tile's
/// quants are unpacked once for all of them.
const MAX_ROWS: usize = 8;

/// One super-block (256 values) of 16 weight rows, on whole cache lines (54), header first.
#[repr(C, align(64))]
#[derive(Clone)]
struct Tile {
    /// Each row's super-block factor, f16 bits.
    d: [u16; TILE_COLS],
    /// Keeps every field after it on whole lines (the kernel's loads are aligned).
    _pad: [u8; 32],
    /// Each row's weights-only term, `128 Σ_s sc_s Σ_{i in s} (q_i − 32)`.
    weight_term: [i32; TILE_COLS],
    /// Scale of sub-block `s` of row `r`: `scales[s][r]`.
    scales: [[i8; TILE_COLS]; SUBS],
    /// Sub-block `s`'s quants, in the order the kernel reads them: `[low 4 bits of values
    /// 16s..16s + 8, of values 16s + 8..16s + 16, high 2 bits of all 16]`, each part
    /// `[row (16)][4 bytes]`. In the low parts byte `j` holds value `j` of the 8 in its low
    /// nibble and `4 + j` in its high one; in the high part byte `j` holds those of values
    /// `16s + j`, `16s + 4 + j`, `16s + 8 + j`, `16s + 12 + j` in bits 0-1, 2-3, 4-5, 6-7.
    quants: [[[u8; 4 * TILE_COLS]; 3]; SUBS],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 54 * 64);
/// The lines before a tile's quants.
const HEADER_LINES: usize = std::mem::offset_of!(Tile, quants) / 64;
const _: () = assert!(std::mem::offset_of!(Tile, quants) == HEADER_LINES * 64);

/// A `(n, k)` Q6K weight in tiles: column tile `t`'s super-blocks `0..k/256` in order, then
/// `t + 1`'s.
pub(crate) struct Q6KTiles {
    tiles: Vec<Tile>,
    n: usize,
    k: usize,
}

/// Whether [`Q6KTiles`] can hold a `(n, k)` weight and run: AVX2 with FMA and F16C, whole
/// tiles and super-blocks.
pub(crate) fn supports(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && n.is_multiple_of(TILE_COLS) && k.is_multiple_of(QK_K) && has_avx2()
}

/// The 256 unsigned 6-bit quants of a GGUF Q6K block, in order (as candle's `pack_q6k` reads
/// them: each 128-value half is 64 bytes of nibbles and 32 of 2-bit pairs).
fn quants(block: &[u8]) -> [u8; QK_K] {
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
    pub(crate) fn pack(weights: &[u8], n: usize, k: usize) -> candle_core::Result<Self> {
        if !supports(n, k) {
            candle_core::bail!("no Q6K tiles for ({n}, {k}) on this CPU")
        }
        let kb = k / QK_K;
        super::tile_items::check_weight_bytes("Q6K", weights, (n, k), (QK_K, Q6K_BYTES))?;
        let empty = Tile {
            d: [0; TILE_COLS],
            _pad: [0; 32],
            weight_term: [0; TILE_COLS],
            scales: [[0; TILE_COLS]; SUBS],
            quants: [[[0; 4 * TILE_COLS]; 3]; SUBS],
        };
        let mut tiles = super::huge_pages::filled(empty, n / TILE_COLS * kb);
        tiles.par_iter_mut().enumerate().for_each(|(i, tile)| {
            let (t, b) = (i / kb, i % kb);
            for r in 0..TILE_COLS {
                let at = ((t * TILE_COLS + r) * kb + b) * Q6K_BYTES;
                let block = &weights[at..at + Q6K_BYTES];
                tile.d[r] = u16::from_le_bytes([block[208], block[209]]);
                let q = quants(block);
                let mut term = 0i32;
                for s in 0..SUBS {
                    let sc = block[192 + s] as i8;
                    tile.scales[s][r] = sc;
                    let sum: i32 = q[16 * s..16 * s + 16].iter().map(|&q| q as i32 - 32).sum();
                    term += sc as i32 * sum;
                }
                tile.weight_term[r] = 128 * term;
                for s in 0..SUBS {
                    let [low0, low1, high] = &mut tile.quants[s];
                    for j in 0..4 {
                        let v = |i: usize| q[16 * s + i];
                        low0[4 * r + j] = (v(j) & 0x0F) | (v(4 + j) << 4);
                        low1[4 * r + j] = (v(8 + j) & 0x0F) | (v(12 + j) << 4);
                        high[4 * r + j] = (0..4)
                            .map(|g| (v(4 * g + j) >> 4) << (2 * g))
                            .fold(0, |byte, bits| byte | bits);
                    }
                }
            }
        });
        Ok(Q6KTiles { tiles, n, k })
    }

    /// Row `r` of the weight in f32, each value exactly as candle's `dequantize` gives it,
    /// `(d · sc) · (q − 32)`: so tied embeddings can be looked up in the output head's tiles
    /// rather than held a second time.
    pub(crate) fn dequantize_row(&self, r: usize) -> candle_core::Result<Vec<f32>> {
        if r >= self.n {
            candle_core::bail!("row {r} of a Q6K weight of {} rows", self.n)
        }
        let (kb, t, c) = (self.k / QK_K, r / TILE_COLS, r % TILE_COLS);
        let mut row = Vec::with_capacity(self.k);
        for tile in &self.tiles[t * kb..(t + 1) * kb] {
            // SAFETY: `supports` held when these tiles were packed (F16C).
            let d = unsafe { super::quant_blocks::x86::f16_to_f32(tile.d[c]) };
            for (s, [low0, low1, high]) in tile.quants.iter().enumerate() {
                let sc = d * tile.scales[s][c] as f32;
                let quant = |v: usize| {
                    let (low, j) = if v < 8 { (low0, v % 4) } else { (low1, v % 4) };
                    let nibble = (low[4 * c + j] >> (4 * (v / 4 % 2))) & 0x0F;
                    nibble | (((high[4 * c + v % 4] >> (2 * (v / 4))) & 3) << 4)
                };
                row.extend((0..16).map(|v| sc * (quant(v) as i32 - 32) as f32));
            }
        }
        Ok(row)
    }
}

impl TileWeights for Q6KTiles {
    const FORMAT: &'static str = "Q6K";
    const TILE_COLS: usize = TILE_COLS;
    type Rows = Vec<u8>;

    fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Q8K blocks whose quants carry 128 more, the kernel's unsigned operand (as bytes, the
    /// sign bit flipped).
    fn quantize_rows(xs: &[f32], rows: usize, k: usize) -> Vec<u8> {
        let mut act = super::q8k_rows::quantize(xs, rows, k);
        for block in act.chunks_exact_mut(Q8K_BYTES) {
            for q in &mut block[Q8K_QS..Q8K_QS + QK_K] {
                *q ^= 0x80;
            }
        }
        act
    }

    #[cfg(target_arch = "x86_64")]
    fn run_kernels(
        &self,
        act: &Vec<u8>,
        rows: usize,
        columns: std::ops::Range<usize>,
        dst: &mut [f32],
        width: Width,
    ) {
        let kb = self.k / QK_K;
        let tiles = super::tile_items::column_tiles(&self.tiles, &columns, (TILE_COLS, kb));
        x86::matmul(tiles, act, rows, kb, columns.len(), dst, width);
    }
}

/// What every output of the kernel computes, in scalar steps: row `x` (width `k`) against
/// column `col` of a `(n, k)` GGUF Q6K weight (`weights`), from `x`'s Q8K blocks (candle's
/// `from_float`).
#[cfg(test)]
fn reference(weights: &[u8], k: usize, col: usize, x: &[f32]) -> f32 {
    use candle_core::quantized::k_quants::BlockQ8K;
    let kb = k / QK_K;
    let act = super::quant_blocks::candle_from_float::<BlockQ8K>(x);
    let mut acc = 0f32;
    for b in 0..kb {
        let block = &weights[(col * kb + b) * Q6K_BYTES..][..Q6K_BYTES];
        let a = &act[b * Q8K_BYTES..][..Q8K_BYTES];
        let q = quants(block);
        let mut sum = 0i32;
        for s in 0..SUBS {
            let part: i32 = (16 * s..16 * s + 16)
                .map(|i| (a[Q8K_QS + i] as i8 as i32) * (q[i] as i32 - 32))
                .sum();
            sum += block[192 + s] as i8 as i32 * part;
        }
        // SAFETY: the tests that call this run only where `supports` holds (AVX2, F16C).
        let dw = unsafe {
            super::quant_blocks::x86::f16_to_f32(u16::from_le_bytes([block[208], block[209]]))
        };
        let da = f32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        acc = (sum as f32).mul_add(dw * da, acc);
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Columns in a 256-bit half of a tile.
    const HALF: usize = TILE_COLS / 2;

    use super::super::tile_items::{ask_ahead, run_tile_kernels, TileKernel};
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
        width: Width,
    ) {
        let kernels: [TileKernel<Tile>; MAX_ROWS] = match width {
            Width::Avx2 => [
                unit_avx2_one_row,
                unit_avx2::<2>,
                unit_avx2::<3>,
                unit_avx2::<4>,
                unit_avx2::<5>,
                unit_avx2::<6>,
                unit_avx2::<7>,
                unit_avx2::<8>,
            ],
            // One row, bound by reading the tiles, runs the AVX2 one-row kernel at AVX-512 too
            // (the same bits): 1 row of the head 5.5–5.6 ms against `unit`'s 7.1 and the row
            // kernels' 5.8–6.0 (`q6k_tile_rate`, AMD EPYC Zen 4).
            Width::Avx512 => [
                unit_avx2_one_row,
                unit::<2>,
                unit::<3>,
                unit::<4>,
                unit::<5>,
                unit::<6>,
                unit::<7>,
                unit::<8>,
            ],
        };
        // SAFETY: `supports` checked AVX2, FMA and F16C, and `Width::Avx512` is only chosen
        // where the CPU level is AVX-512 VNNI.
        unsafe {
            run_tile_kernels(
                (tiles, TILE_COLS),
                (act, Q8K_BYTES),
                (&[], 0),
                (rows, kb, n),
                dst,
                kernels,
            )
        }
    }

    /// `R` activation rows (`act`: `R × kb` Q8K blocks whose quants carry 128 more, as
    /// unsigned bytes) against one column tile's `kb` tiles; writes the `R × 16` results at
    /// `out` (row stride `n`): [`reference`]'s steps in every lane.
    // `m` indexes the rows, their blocks and their sums together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    unsafe fn unit<const R: usize>(
        tiles: &[Tile],
        act: &[u8],
        _: &[f32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let low_bits = _mm512_set1_epi8(0x0F);
        let high_bits = _mm512_set1_epi8(0x30);
        let m32 = _mm512_set1_epi8(32);
        let zero = _mm512_setzero_si512();
        // `a | (b & c)`, in `vpternlogd`'s truth-table form.
        const A_OR_B_AND_C: i32 = 0xF0 | (0xCC & 0xAA);
        let base = act.as_ptr();
        let mut acc = [_mm512_setzero_ps(); R];
        for (b, tile) in tiles.iter().enumerate() {
            let mut sums = [_mm512_setzero_si512(); R];
            for s in 0..SUBS {
                let [lo0, lo1, hi] = tile.quants[s].each_ref().map(|part| part.as_ptr());
                prefetch_ahead(tile, s);
                let lo0 = _mm512_load_si512(lo0 as *const __m512i);
                let lo1 = _mm512_load_si512(lo1 as *const __m512i);
                let hi = _mm512_load_si512(hi as *const __m512i);
                // Values `16s + 4g .. + 4` of every row, `q − 32`: the nibble, with the 2 high
                // bits brought to bits 4-5 (shifts within 16-bit lanes; the bits that cross a
                // byte are masked off).
                let q = [
                    (_mm512_and_si512(lo0, low_bits), _mm512_slli_epi16::<4>(hi)),
                    (
                        _mm512_and_si512(_mm512_srli_epi16::<4>(lo0), low_bits),
                        _mm512_slli_epi16::<2>(hi),
                    ),
                    (_mm512_and_si512(lo1, low_bits), hi),
                    (
                        _mm512_and_si512(_mm512_srli_epi16::<4>(lo1), low_bits),
                        _mm512_srli_epi16::<2>(hi),
                    ),
                ]
                .map(|(low, high)| {
                    _mm512_sub_epi8(
                        _mm512_ternarylogic_epi32::<A_OR_B_AND_C>(low, high, high_bits),
                        m32,
                    )
                });
                let scale = _mm512_cvtepi8_epi32(_mm_loadu_si128(
                    tile.scales[s].as_ptr() as *const __m128i
                ));
                for m in 0..R {
                    let a = base.add((m * kb + b) * Q8K_BYTES + Q8K_QS + 16 * s) as *const i32;
                    let mut t = zero;
                    for g in 0..4 {
                        let a = _mm512_set1_epi32(a.add(g).read_unaligned());
                        t = _mm512_dpbusd_epi32(t, a, q[g]);
                    }
                    sums[m] = _mm512_add_epi32(sums[m], _mm512_mullo_epi32(t, scale));
                }
            }
            let dw = _mm512_cvtph_ps(_mm256_load_si256(tile.d.as_ptr() as *const __m256i));
            let term = _mm512_load_si512(tile.weight_term.as_ptr() as *const __m512i);
            for m in 0..R {
                let da = (base.add((m * kb + b) * Q8K_BYTES) as *const f32).read_unaligned();
                let f = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums[m], term));
                acc[m] = _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(da)), acc[m]);
            }
        }
        for (m, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(m * n), *row);
        }
    }

    /// [`unit`] in 256-bit registers without VNNI, the same bits: each half of the tile (8
    /// columns) in turn, the lines streamed on the first; per row, sub-block and half
    /// [`sub_block_sum_avx2`] forms the exact 32-bit sums [`unit`] forms with `vpdpbusd` and
    /// `vpmulld`.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unit_avx2<const R: usize>(
        tiles: &[Tile],
        act: &[u8],
        _: &[f32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let base = act.as_ptr();
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for (b, tile) in tiles.iter().enumerate() {
            for h in 0..2 {
                let mut sums = [_mm256_setzero_si256(); R];
                for s in 0..SUBS {
                    if h == 0 {
                        prefetch_ahead(tile, s);
                    }
                    let (q, scale) = half_sub_block_avx2(tile, s, h);
                    for m in 0..R {
                        let a = base.add((m * kb + b) * Q8K_BYTES + Q8K_QS + 16 * s);
                        sums[m] = _mm256_add_epi32(sums[m], sub_block_sum_avx2(a, &q, scale));
                    }
                }
                for m in 0..R {
                    let da = (base.add((m * kb + b) * Q8K_BYTES) as *const f32).read_unaligned();
                    acc[m][h] = block_step_avx2(tile, h, sums[m], da, acc[m][h]);
                }
            }
        }
        for (m, row) in acc.iter().enumerate() {
            for (h, half) in row.iter().enumerate() {
                _mm256_storeu_ps(out.add(m * n + HALF * h), *half);
            }
        }
    }

    /// [`unit_avx2`] for one row: both halves of each sub-block in turn, so that each line of
    /// the tile is read once, whole, where [`unit_avx2`]'s two passes each take half of it.
    /// The same operations for each column, in the same order: the same bits.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unit_avx2_one_row(
        tiles: &[Tile],
        act: &[u8],
        _: &[f32],
        _kb: usize,
        out: *mut f32,
        _n: usize,
    ) {
        let base = act.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 2];
        for (b, tile) in tiles.iter().enumerate() {
            let mut sums = [_mm256_setzero_si256(); 2];
            for s in 0..SUBS {
                prefetch_ahead(tile, s);
                let a = base.add(b * Q8K_BYTES + Q8K_QS + 16 * s);
                for (h, sum) in sums.iter_mut().enumerate() {
                    let (q, scale) = half_sub_block_avx2(tile, s, h);
                    *sum = _mm256_add_epi32(*sum, sub_block_sum_avx2(a, &q, scale));
                }
            }
            let da = (base.add(b * Q8K_BYTES) as *const f32).read_unaligned();
            for h in 0..2 {
                acc[h] = block_step_avx2(tile, h, sums[h], da, acc[h]);
            }
        }
        for (h, half) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(HALF * h), *half);
        }
    }

    /// Asks for the lines of sub-block `s` of `tile` [`ask_ahead`]'s distance on in the column
    /// tile's stream, the header's with the first sub-block's: hints only, they never fault.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn prefetch_ahead(tile: &Tile, s: usize) {
        if s == 0 {
            let header = tile as *const Tile as *const u8;
            for line in 0..HEADER_LINES {
                ask_ahead(header.wrapping_add(line * 64));
            }
        }
        for part in &tile.quants[s] {
            ask_ahead(part.as_ptr());
        }
    }

    /// Half `h` (8 columns) of sub-block `s` of a tile: its quants as `q − 32`, values
    /// `16s + 4g .. + 4` of every column in `q[g]`, and the columns' scales, each twice:
    /// `[sc0, sc0, sc1, sc1, ..]` in 16 bits.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn half_sub_block_avx2(tile: &Tile, s: usize, h: usize) -> ([__m256i; 4], __m256i) {
        let low_bits = _mm256_set1_epi8(0x0F);
        let high_bits = _mm256_set1_epi8(0x30);
        let m32 = _mm256_set1_epi8(32);
        // Each part is 64 bytes on a line of its own; `h` is 0 or 1.
        let [lo0, lo1, hi] = tile.quants[s]
            .each_ref()
            .map(|part| _mm256_load_si256(part.as_ptr().add(32 * h) as *const __m256i));
        let q = [
            (_mm256_and_si256(lo0, low_bits), _mm256_slli_epi16::<4>(hi)),
            (
                _mm256_and_si256(_mm256_srli_epi16::<4>(lo0), low_bits),
                _mm256_slli_epi16::<2>(hi),
            ),
            (_mm256_and_si256(lo1, low_bits), hi),
            (
                _mm256_and_si256(_mm256_srli_epi16::<4>(lo1), low_bits),
                _mm256_srli_epi16::<2>(hi),
            ),
        ]
        .map(|(low, high)| {
            _mm256_sub_epi8(_mm256_or_si256(low, _mm256_and_si256(high, high_bits)), m32)
        });
        let sc = _mm_loadl_epi64(tile.scales[s].as_ptr().add(HALF * h) as *const __m128i);
        (q, _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(sc, sc)))
    }

    /// One row's exact sum over a sub-block for 8 columns, `sc · Σ (a + 128)(q − 32)`, from the
    /// row's 16 activation bytes at `a` (each plus 128) and [`half_sub_block_avx2`]'s quants and
    /// scales: 4 `vpmaddubsw` form the products in pairs (at most 16,320 in size, so two of them
    /// add in 16 bits without saturating), two `vpaddw` add them up to 4 products a lane, and
    /// two `vpmaddwd` by the scales give 32-bit sums.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sub_block_sum_avx2(a: *const u8, q: &[__m256i; 4], scale: __m256i) -> __m256i {
        let a = a as *const i32;
        let a = |g: usize| _mm256_set1_epi32(a.add(g).read_unaligned());
        let pairs = |g: usize| {
            _mm256_add_epi16(
                _mm256_maddubs_epi16(a(g), q[g]),
                _mm256_maddubs_epi16(a(g + 1), q[g + 1]),
            )
        };
        _mm256_add_epi32(
            _mm256_madd_epi16(pairs(0), scale),
            _mm256_madd_epi16(pairs(2), scale),
        )
    }

    /// One block's float step for half `h` of a tile and one row: the weights-only term taken
    /// out of the row's exact sums, then `acc + f32(sum) · (d_w · d_a)` ([`reference`]'s).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block_step_avx2(
        tile: &Tile,
        h: usize,
        sums: __m256i,
        da: f32,
        acc: __m256,
    ) -> __m256 {
        let dw = _mm256_cvtph_ps(_mm_load_si128(
            tile.d.as_ptr().add(HALF * h) as *const __m128i
        ));
        let term = _mm256_load_si256(tile.weight_term.as_ptr().add(HALF * h) as *const __m256i);
        let f = _mm256_cvtepi32_ps(_mm256_sub_epi32(sums, term));
        _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_set1_ps(da)), acc)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;
    use crate::models::tile_items::test_support::{
        assert_dequantized_rows, assert_rows_alone, random_rows, widths,
    };

    fn q6k(n: usize, k: usize) -> QTensor {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, GgmlDType::Q6K).unwrap()
    }

    fn ours(tiles: &Q6KTiles, xs: &[f32], rows: usize) -> Vec<f32> {
        ours_at(tiles, xs, rows, Width::current())
    }

    fn ours_at(tiles: &Q6KTiles, xs: &[f32], rows: usize, width: Width) -> Vec<f32> {
        let n = tiles.dims().0;
        let mut dst = vec![0f32; rows * n];
        tiles
            .matmul_columns_at(xs, rows, 0..n, &mut dst, width)
            .unwrap();
        dst
    }

    #[test]
    fn every_result_is_the_reference_arithmetic_bit_for_bit() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (48, 768);
        let w = q6k(n, k);
        let data = w.data().unwrap();
        let tiles = Q6KTiles::pack(&data, n, k).unwrap();
        // Every work-item size (1 to 8 rows), a full item beside a remainder (9, 13).
        for rows in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13] {
            let x = random_rows(rows, k);
            for width in widths() {
                let got = ours_at(&tiles, &x, rows, width);
                for r in 0..rows {
                    for col in 0..n {
                        let want = reference(&data, k, col, &x[r * k..(r + 1) * k]);
                        assert_eq!(
                            got[r * n + col].to_bits(),
                            want.to_bits(),
                            "{width:?}, {rows} rows: row {r}, column {col}: {} against {want}",
                            got[r * n + col]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn extreme_quants_and_scales_stay_exact() {
        if !supports(16, 256) {
            return;
        }
        // Every quant 0 or 63 and every scale -128 or 127, against activations at ±max (Q8K
        // takes the largest to -128): the sums at their bounds.
        let (n, k) = (16, 512);
        let kb = k / QK_K;
        let mut weights = vec![0u8; n * kb * Q6K_BYTES];
        for (i, block) in weights.chunks_exact_mut(Q6K_BYTES).enumerate() {
            let fill = if i % 2 == 0 { 0xFF } else { 0x00 };
            block[..192].fill(fill);
            for s in 0..SUBS {
                block[192 + s] = if (i + s) % 3 == 0 { 0x80 } else { 0x7F };
            }
            block[208..].copy_from_slice(&0x3C00u16.to_le_bytes());
        }
        let tiles = Q6KTiles::pack(&weights, n, k).unwrap();
        for sign in [1f32, -1.0] {
            let x: Vec<f32> = (0..k)
                .map(|i| if i % 5 == 0 { sign } else { -sign })
                .collect();
            for width in widths() {
                let got = ours_at(&tiles, &x, 1, width);
                for (col, got) in got.iter().enumerate() {
                    let want = reference(&weights, k, col, &x);
                    assert_eq!(got.to_bits(), want.to_bits(), "{width:?}, column {col}");
                }
            }
        }
    }

    #[test]
    fn results_agree_with_candles_to_float_rounding() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 1536);
        let w = std::sync::Arc::new(q6k(n, k));
        let tiles = Q6KTiles::pack(&w.data().unwrap(), n, k).unwrap();
        let candle = QMatMul::from_arc(w).unwrap();
        for rows in [1, 8] {
            let x = random_rows(rows, k);
            let got = ours(&tiles, &x, rows);
            let want: Vec<f32> = candle
                .forward(&Tensor::from_vec(x, (rows, k), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * scale, "{g} against candle's {w}");
            }
        }
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_beside_it() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 512);
        let w = q6k(n, k);
        let tiles = Q6KTiles::pack(&w.data().unwrap(), n, k).unwrap();
        assert_rows_alone((n, k), 11, |xs, rows| ours(&tiles, xs, rows));
    }

    /// Multiply-accumulates per second on this machine's pool, on the decode shapes of
    /// Qwen2.5-1.5B Q4_K_M (the tied output head and `ffn_down`) for 1 and 8 rows beside the
    /// row kernels (the decode path before these tiles), and on a 512-row prompt of `ffn_down`
    /// beside candle's own product, alternating:
    /// `cargo test --release --lib q6k_tile_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q6k_tile_rate() {
        if !supports(16, 256) {
            return;
        }
        for (k, n, row_counts) in [(1536, 151_936, &[1, 8][..]), (8960, 1536, &[1, 8, 512][..])] {
            let w = std::sync::Arc::new(q6k(n, k));
            let data = w.data().unwrap().to_vec();
            let tiles = Q6KTiles::pack(&data, n, k).unwrap();
            let candle = QMatMul::from_arc(w).unwrap();
            for &rows in row_counts {
                let x: Vec<f32> = (0..rows * k)
                    .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                    .collect();
                let xt = Tensor::from_vec(x.clone(), (rows, k), &Device::Cpu).unwrap();
                let mut dst = vec![0f32; rows * n];
                let before = |dst: &mut [f32]| {
                    if rows <= 8 {
                        let shape = (rows, k, n);
                        super::super::row_kernels::matmul(GgmlDType::Q6K, &data, shape, &x, dst)
                            .unwrap();
                    } else {
                        candle.forward(&xt).unwrap();
                    }
                };
                let reps = (1_000_000_000 / (rows * n * k)).clamp(3, 20);
                let (mut ours, mut theirs) = (f64::MAX, f64::MAX);
                for _ in 0..3 {
                    tiles.matmul(&x, rows, &mut dst).unwrap();
                    let t = std::time::Instant::now();
                    for _ in 0..reps {
                        tiles.matmul(&x, rows, &mut dst).unwrap();
                    }
                    ours = ours.min(t.elapsed().as_secs_f64() / reps as f64);
                    before(&mut dst);
                    let t = std::time::Instant::now();
                    for _ in 0..reps {
                        before(&mut dst);
                    }
                    theirs = theirs.min(t.elapsed().as_secs_f64() / reps as f64);
                }
                let macs = (rows * n * k) as f64;
                eprintln!(
                    "{rows} x ({k} -> {n}): {:.2} ms, {:.1} GMAC/s, {:.1} GB/s of tiles; {}: {:.2} ms, {:.1} GMAC/s",
                    ours * 1e3,
                    macs / ours / 1e9,
                    (n / TILE_COLS * k / QK_K * std::mem::size_of::<Tile>()) as f64 / ours / 1e9,
                    if rows <= 8 { "row kernels" } else { "candle" },
                    theirs * 1e3,
                    macs / theirs / 1e9
                );
            }
        }
    }

    #[test]
    fn a_dequantized_row_is_candles_bit_for_bit() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 512);
        let w = q6k(n, k);
        let tiles = Q6KTiles::pack(&w.data().unwrap(), n, k).unwrap();
        assert_dequantized_rows(&w, |r| tiles.dequantize_row(r));
    }

    #[test]
    fn shapes_that_do_not_tile_are_refused() {
        assert!(!supports(40, 256));
        assert!(!supports(16, 128));
        assert!(Q6KTiles::pack(&[0u8; 10], 16, 256).is_err());
    }
}
