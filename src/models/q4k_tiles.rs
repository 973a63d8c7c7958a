//! Q4K products on AVX2 and AVX-512 VNNI, on weights repacked once at load into tiles that
//! keep the GGUF's compact scales: for prompts and decoding alike, each super-block summed
//! exactly in integers, the same bits at either width.
//!
//! candle 0.11.1 runs Q4K products on AVX2 on its repacked x86 tiles (`repack_x86`): the
//! quants of 16 weight rows side by side per super-block, so one load of 4 quant bytes serves
//! 16 output columns and several activation rows. But its tiles hold each sub-block's scale and
//! min as an f32 per row (1,024 of a tile's 3,072 bytes): 6 bits per weight where the GGUF has
//! 4.5, and it keeps them beside the compact weights. Decoding one sequence reads every weight
//! once per token and is bound by memory: on Qwen2.5-1.5B Q4_K_M candle's tiles decoded 13.1-13.7
//! tok/s where its compact kernel (one `vec_dot` per row and column) decoded 17.3-18.1; but the
//! compact kernel repeats the unpacking for every row, and 8 batched sequences ran at 25 tok/s
//! on it against 40 on the tiles (AMD EPYC, AVX2, 2 threads; scripts/bench/README.md,
//! "Session 8").
//!
//! These tiles keep candle's layout for the quants, and the 6-bit scales and mins as bytes
//! with each row's two f16 super-block factors (2,368 bytes a tile: 4.6 bits per weight). The
//! layer keeps only these tiles: the compact weights are dropped once packed.
//!
//! The arithmetic is ggml's `vec_dot_q4_K_q8_K`'s and the Q6K tiles' (`q6k_tiles`): per column
//! and super-block two exact integers, `Σ_s scale_s · Σ q·a` and `Σ_s min_s · Σ a`, then one
//! float step (`super_block_step`). candle's tiles instead scale every sub-block's sum in f32,
//! a float multiply-add per 32 products and row that was the most of the AVX2 kernel's
//! arithmetic. Results agree with candle's to 1e-5 of the largest (tested); every kernel, at
//! AVX2 and AVX-512 and for any number of rows, gives the same bits as a plain scalar product
//! (tested). On a 512-row prompt product the AVX2 kernel went from 137 to 214 GMAC/s and the
//! AVX-512 one from 250 to 300 (`q4k_tile_rate`, AMD EPYC Zen 4, 2 threads;
//! scripts/bench/README.md, "Session 20").
//!
//! Where the kernels' level is AVX-512 VNNI the same tiles run in 512-bit registers
//! (`unit_avx512`: VNNI sums) for two rows and more, up to 8 rows in one pass. candle's own AVX-512 tiles, with their f32
//! scales, decoded Qwen2.5-1.5B Q4_K_M at 18.2 tok/s where these tiles (with the tile header
//! first and line-aligned tiles) decoded at 27.7–29.0 (AMD EPYC Zen 4, 2 threads;
//! scripts/bench/README.md, "Session 15").

use candle_core::quantized::k_quants::QK_K;
use rayon::prelude::*;

use super::cpu_level::Width;
use super::quant_blocks::{has_avx2, Q8K_BSUMS, Q8K_BYTES, Q8K_QS};
use super::tile_items::TileWeights;

/// Output columns per tile: candle's `TILE_N`.
pub(crate) const TILE_COLS: usize = 16;
/// Sub-blocks of 32 values per super-block.
const SUBS: usize = QK_K / 32;
/// Bytes of a GGUF Q4K super-block: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins,
/// 128 bytes of nibbles.
const Q4K_BYTES: usize = 144;
/// Activation rows per work item of the AVX2 kernels in a prompt (candle's `MAX_MT`): four
/// rows' sums and accumulators fit the 16 registers.
const MAX_ROWS: usize = 4;
/// Up to how many activation rows (a decode step's sequences) a product runs one work item per
/// column tile, at either width, that asks for the quants ahead (`tile_items::ask_ahead`): so each
/// tile is read from memory once, its lines asked for in time, where two groups of 4 read it
/// twice, the first pass from memory with only the hardware prefetcher ahead. 8 rows of an
/// 8,960 × 1,536 weight streamed from memory ran 172–188 GMAC/s at AVX-512, now 267–298, and
/// 145–155 at AVX2 (asking for the next column tile), now 160–192; 8 batched sequences of
/// Qwen2.5-1.5B Q4_K_M at AVX-512 decoded 102–108 tok/s, now 131–135 (AMD EPYC Zen 4, 2
/// threads, alternating runs; scripts/bench/README.md, "Session 22"). At AVX2 eight rows'
/// sums fill 8 of the 16 registers and their accumulators wait in memory. Prompts, whose many
/// row groups read each tile from cache, do not ask.
const DECODE_ROWS: usize = 8;
/// Activation rows per work item of the AVX-512 kernels: 32 registers hold 8 rows' sums and
/// accumulators, in a prompt as in a decode step.
const MAX_ROWS_AVX512: usize = DECODE_ROWS;
/// Words of sub-block sum pairs per Q8K block (`x86::sub_block_sum_pairs`).
const PAIRS: usize = SUBS / 2;

/// One super-block (256 values) of 16 weight rows, on a cache line of its own (its size is 37
/// lines), so that no 64-byte load of its quants straddles two.
#[repr(C, align(64))]
#[derive(Clone)]
struct Tile {
    /// Each row's super-block factors, f16 bits. First in the tile, which the kernels read
    /// first, so that one pass reads a weight's tiles front to back: with the factors at the
    /// end, a one-row product missed the cache on every tile's first read (28% of the kernel's
    /// time, `perf annotate`, AMD EPYC Zen 4).
    d: [u16; TILE_COLS],
    dmin: [u16; TILE_COLS],
    /// 6-bit scale of sub-block `s` of row `r`: `scales[s][r]`.
    scales: [[u8; TILE_COLS]; SUBS],
    mins: [[u8; TILE_COLS]; SUBS],
    /// candle's layout: `[group of 8 values (32)][row (16)][4 bytes]`, byte `j` of a group
    /// holding value `j` in its low nibble and value `j + 4` in its high nibble.
    qs: [u8; QK_K / 8 * TILE_COLS * 4],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 2368);

/// A `(n, k)` Q4K weight in tiles: tile `t`'s super-blocks `0..k/256` in order, then `t + 1`'s.
pub(crate) struct Q4KTiles {
    tiles: Vec<Tile>,
    n: usize,
    k: usize,
}

/// Whether [`Q4KTiles`] can hold a `(n, k)` weight and run on this CPU.
pub(crate) fn supports(n: usize, k: usize) -> bool {
    n > 0 && k > 0 && n.is_multiple_of(TILE_COLS) && k.is_multiple_of(QK_K) && has_avx2()
}

/// ggml's 6-bit scale and min of sub-block `j` (`get_scale_min_k4`).
fn scale_min(j: usize, scales: &[u8]) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

impl Q4KTiles {
    /// Packs the raw bytes of a `(n, k)` GGUF Q4K tensor (row-major super-blocks). Callers
    /// check [`supports`] first.
    pub(crate) fn pack(weights: &[u8], n: usize, k: usize) -> candle_core::Result<Q4KTiles> {
        if !supports(n, k) {
            candle_core::bail!("no Q4K tiles for ({n}, {k}) on this CPU")
        }
        let kb = k / QK_K;
        super::tile_items::check_weight_bytes("Q4K", weights, (n, k), (QK_K, Q4K_BYTES))?;
        let empty = Tile {
            qs: [0; QK_K / 8 * TILE_COLS * 4],
            scales: [[0; TILE_COLS]; SUBS],
            mins: [[0; TILE_COLS]; SUBS],
            d: [0; TILE_COLS],
            dmin: [0; TILE_COLS],
        };
        let mut tiles = super::huge_pages::filled(empty, n / TILE_COLS * kb);
        tiles.par_iter_mut().enumerate().for_each(|(i, tile)| {
            let (t, b) = (i / kb, i % kb);
            for r in 0..TILE_COLS {
                let at = ((t * TILE_COLS + r) * kb + b) * Q4K_BYTES;
                let block = &weights[at..at + Q4K_BYTES];
                tile.d[r] = u16::from_le_bytes([block[0], block[1]]);
                tile.dmin[r] = u16::from_le_bytes([block[2], block[3]]);
                for s in 0..SUBS {
                    let (scale, min) = scale_min(s, &block[4..16]);
                    tile.scales[s][r] = scale;
                    tile.mins[s][r] = min;
                }
                // Q4K nibbles: 32-byte chunk `c` holds values [64c, 64c + 32) in its low
                // nibbles and [64c + 32, 64c + 64) in its high ones.
                let qs = &block[16..];
                let mut values = [0u8; QK_K];
                for c in 0..4 {
                    for j in 0..32 {
                        let byte = qs[c * 32 + j];
                        values[c * 64 + j] = byte & 0x0F;
                        values[c * 64 + 32 + j] = byte >> 4;
                    }
                }
                for g in 0..QK_K / 8 {
                    for j in 0..4 {
                        tile.qs[(g * TILE_COLS + r) * 4 + j] =
                            values[g * 8 + j] | (values[g * 8 + j + 4] << 4);
                    }
                }
            }
        });
        Ok(Q4KTiles { tiles, n, k })
    }

    /// Appends `other`'s output columns after this weight's: one `(n + n', k)` weight whose
    /// product is both products side by side (tiles hold whole columns, so each output is
    /// computed exactly as before). Refuses weights of another width.
    pub(crate) fn append(&mut self, other: Q4KTiles) -> candle_core::Result<()> {
        if other.k != self.k {
            candle_core::bail!(
                "cannot put Q4K weights of width {} beside weights of width {}",
                other.k,
                self.k
            )
        }
        self.tiles = super::huge_pages::joined(std::mem::take(&mut self.tiles), other.tiles);
        self.n += other.n;
        Ok(())
    }
}

impl TileWeights for Q4KTiles {
    const FORMAT: &'static str = "Q4K";
    const TILE_COLS: usize = TILE_COLS;
    type Rows = Vec<u8>;

    fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn quantize_rows(xs: &[f32], rows: usize, k: usize) -> Vec<u8> {
        super::q8k_rows::quantize(xs, rows, k)
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::tile_items::{ask_ahead, run_tile_kernels, TileKernel};
    use super::*;

    /// One work item per column tile and group of up to [`DECODE_ROWS`] rows in a decode step
    /// and at AVX-512, [`MAX_ROWS`] in a prompt at AVX2 ([`run_tile_kernels`]), on the kernels
    /// of `width`.
    pub(super) fn matmul(
        tiles: &[Tile],
        act: &[u8],
        rows: usize,
        kb: usize,
        n: usize,
        dst: &mut [f32],
        width: Width,
    ) {
        let pairs = sub_block_sum_pairs(act, rows * kb);
        // One row runs the AVX2 kernel at either width: it reads each tile once, in the order
        // it lies, and is bound by memory; in 512-bit registers it decoded Qwen2.5-1.5B Q4_K_M
        // at 18-22 tok/s against 26-36 (AMD EPYC Zen 4, 2 threads, alternating runs).
        let avx2_decode: [TileKernel<Tile, u32>; DECODE_ROWS] = [
            unit_one_row,
            unit::<2, true>,
            unit::<3, true>,
            unit::<4, true>,
            unit::<5, true>,
            unit::<6, true>,
            unit::<7, true>,
            unit::<8, true>,
        ];
        let avx2: [TileKernel<Tile, u32>; MAX_ROWS] = [
            unit_one_row,
            unit::<2, false>,
            unit::<3, false>,
            unit::<4, false>,
        ];
        let avx512 = if rows <= DECODE_ROWS {
            avx512_kernels::<true>()
        } else {
            avx512_kernels::<false>()
        };
        let (tiles, act, pairs) = ((tiles, TILE_COLS), (act, Q8K_BYTES), (&pairs[..], PAIRS));
        // SAFETY: `supports` checked AVX2, FMA and F16C, and `Width::Avx512` is only chosen
        // where the CPU level is AVX-512 VNNI.
        unsafe {
            match width {
                Width::Avx2 if rows <= DECODE_ROWS => {
                    run_tile_kernels(tiles, act, pairs, (rows, kb, n), dst, avx2_decode)
                }
                Width::Avx2 => run_tile_kernels(tiles, act, pairs, (rows, kb, n), dst, avx2),
                Width::Avx512 => run_tile_kernels(tiles, act, pairs, (rows, kb, n), dst, avx512),
            }
        }
    }

    /// The AVX-512 kernels for 1 to [`MAX_ROWS_AVX512`] rows, asking ahead with `NEXT`.
    fn avx512_kernels<const NEXT: bool>() -> [TileKernel<Tile, u32>; MAX_ROWS_AVX512] {
        [
            unit_one_row,
            unit_avx512::<2, NEXT>,
            unit_avx512::<3, NEXT>,
            unit_avx512::<4, NEXT>,
            unit_avx512::<5, NEXT>,
            unit_avx512::<6, NEXT>,
            unit_avx512::<7, NEXT>,
            unit_avx512::<8, NEXT>,
        ]
    }

    /// Each Q8K block's sums of its 8 sub-blocks' quants (at most 32 · 128 in magnitude: an
    /// i16), two sub-blocks to a word (`s` low, `s + 1` high): what the min term's
    /// `vpmaddwd` takes, once per activation row rather than once per column tile.
    fn sub_block_sum_pairs(act: &[u8], blocks: usize) -> Vec<u32> {
        let mut pairs = Vec::with_capacity(blocks * PAIRS);
        for block in act.chunks_exact(Q8K_BYTES).take(blocks) {
            let sums = &block[Q8K_BSUMS..];
            let sub_block = |s: usize| {
                i16::from_le_bytes([sums[4 * s], sums[4 * s + 1]])
                    + i16::from_le_bytes([sums[4 * s + 2], sums[4 * s + 3]])
            };
            for p in 0..PAIRS {
                let (lo, hi) = (sub_block(2 * p) as u16, sub_block(2 * p + 1) as u16);
                pairs.push(lo as u32 | (hi as u32) << 16);
            }
        }
        pairs
    }

    /// 8 f16 bits to f32 lanes, exactly (as `half::f16::to_f32`).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16_to_f32(bits: &[u16]) -> __m256 {
        debug_assert!(bits.len() >= 8);
        // SAFETY: 8 readable u16 (the slices are rows of 16).
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bits.as_ptr() as *const __m128i) })
    }

    /// 8 columns' 6-bit scales, each in both i16 lanes of its column's i32 lane: the
    /// `vpmaddwd` operand that scales a sub-block's pair sums and adds them in one.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scale_words(scales: &[u8]) -> __m256i {
        debug_assert!(scales.len() >= 8);
        // SAFETY: 8 readable bytes (the slices are rows of 16).
        let b = unsafe { _mm_loadl_epi64(scales.as_ptr() as *const __m128i) };
        _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(b, b))
    }

    /// 8 columns' mins of sub-blocks `2p` and `2p + 1` as the i16 pair of each column's i32
    /// lane, against [`sub_block_sum_pairs`]' words.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn min_words(tile: &Tile, p: usize, h: usize) -> __m256i {
        // SAFETY: 8 readable bytes of each row of 16.
        let (lo, hi) = unsafe {
            (
                _mm_loadl_epi64(tile.mins[2 * p][h * 8..].as_ptr() as *const __m128i),
                _mm_loadl_epi64(tile.mins[2 * p + 1][h * 8..].as_ptr() as *const __m128i),
            )
        };
        _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(lo, hi))
    }

    /// One activation row's min term for 8 columns of a super-block: `Σ_s min_s · bsum_s`,
    /// exact in i32 (at most 8 · 63 · 4096).
    #[target_feature(enable = "avx2,fma,f16c")]
    fn min_sums(mins: &[__m256i; PAIRS], pairs: &[u32]) -> __m256i {
        let mut sum = _mm256_setzero_si256();
        for p in 0..PAIRS {
            let pair = _mm256_set1_epi32(pairs[p] as i32);
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(mins[p], pair));
        }
        sum
    }

    /// The float step of a super-block for 8 columns and one activation row, the one place
    /// results round: `acc + sumi · (d · d_a) − summ · (dmin · d_a)`, each product of the
    /// weights' factors and the row's `d_a` rounded once and each multiply-add fused, in this
    /// order. [`super_block_step_avx512`] is the same for 16 columns, so both widths give the
    /// same bits.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn super_block_step(
        acc: __m256,
        (sumi, summ): (__m256i, __m256i),
        (d, dmin): (__m256, __m256),
        d_act: f32,
    ) -> __m256 {
        let d_act = _mm256_set1_ps(d_act);
        let acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_mul_ps(d, d_act), acc);
        _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dmin, d_act), acc)
    }

    /// `R` activation rows (`act`: `R × kb` Q8K blocks, `pairs` their
    /// [`sub_block_sum_pairs`]) against one column tile's `kb` super-blocks; writes the `R × 16`
    /// results at `out` (row stride `n`). Each super-block's weighted sum `Σ_s scale_s ·
    /// Σ q·a` is formed exactly in i32: a sub-block's u8 × i8 products summed in i16 lanes
    /// (each lane 16 products of at most 15 · 128: at most 30,720 < 2^15), then scaled and
    /// widened by one `vpmaddwd`; one float step per super-block ([`super_block_step`]). One
    /// half of the tile's columns at a time over all its super-blocks, so that four rows'
    /// sums fit the 16 registers. With `NEXT` the first half's pass asks for the quants
    /// ahead (`tile_items::ask_ahead`, [`DECODE_ROWS`]).
    // `m` indexes the rows, their blocks, sums and accumulators together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unit<const R: usize, const NEXT: bool>(
        tiles: &[Tile],
        act: &[u8],
        pairs: &[u32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let mask = _mm256_set1_epi8(0x0F);
        let base = act.as_ptr();
        for h in 0..2 {
            let mut acc = [_mm256_setzero_ps(); R];
            for (b, tile) in tiles.iter().enumerate() {
                let qs = tile.qs.as_ptr().add(h * 32);
                let mut sumi = [_mm256_setzero_si256(); R];
                for s in 0..SUBS {
                    let mut sums16 = [_mm256_setzero_si256(); R];
                    for g4 in 0..4 {
                        let g = s * 4 + g4;
                        let at = qs.add(g * TILE_COLS * 4);
                        if NEXT && h == 0 {
                            ask_ahead(at);
                        }
                        let w = _mm256_loadu_si256(at as *const __m256i);
                        let lo = _mm256_and_si256(w, mask);
                        let hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
                        for m in 0..R {
                            let a = base.add((m * kb + b) * Q8K_BYTES + Q8K_QS + g * 8);
                            let a_lo = _mm256_set1_epi32((a as *const i32).read_unaligned());
                            let a_hi = _mm256_set1_epi32((a.add(4) as *const i32).read_unaligned());
                            let products = _mm256_add_epi16(
                                _mm256_maddubs_epi16(lo, a_lo),
                                _mm256_maddubs_epi16(hi, a_hi),
                            );
                            sums16[m] = _mm256_add_epi16(sums16[m], products);
                        }
                    }
                    let scale = scale_words(&tile.scales[s][h * 8..]);
                    for m in 0..R {
                        sumi[m] = _mm256_add_epi32(sumi[m], _mm256_madd_epi16(sums16[m], scale));
                    }
                }
                let mins = std::array::from_fn(|p| min_words(tile, p, h));
                let factors = (
                    f16_to_f32(&tile.d[h * 8..]),
                    f16_to_f32(&tile.dmin[h * 8..]),
                );
                for m in 0..R {
                    let block = (m * kb + b) * Q8K_BYTES;
                    let d_act = (base.add(block) as *const f32).read_unaligned();
                    // SAFETY: `pairs` holds `PAIRS` words for each of the `R × kb` blocks.
                    let summ = min_sums(&mins, pairs.get_unchecked((m * kb + b) * PAIRS..));
                    acc[m] = super_block_step(acc[m], (sumi[m], summ), factors, d_act);
                }
            }
            for (m, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(out.add(m * n + h * 8), *row);
            }
        }
    }

    /// [`unit`] for one row, at either width, both halves of the tile in one pass: each line of
    /// quants is read once, whole, where [`unit`]'s two passes each take half of it (the second
    /// from a nearer cache). The same operations for each column, in the same order: the same
    /// bits. It asks for its lines ahead (`ask_ahead`) also in a prompt, for a group of one
    /// row left over.
    // `h` indexes the halves' quants, sums and accumulators together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unit_one_row(
        tiles: &[Tile],
        act: &[u8],
        pairs: &[u32],
        _kb: usize,
        out: *mut f32,
        _n: usize,
    ) {
        let mask = _mm256_set1_epi8(0x0F);
        let base = act.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 2];
        for (b, tile) in tiles.iter().enumerate() {
            let qs = tile.qs.as_ptr();
            let mut sumi = [_mm256_setzero_si256(); 2];
            for s in 0..SUBS {
                let mut sums16 = [_mm256_setzero_si256(); 2];
                for g4 in 0..4 {
                    let g = s * 4 + g4;
                    let line = qs.add(g * TILE_COLS * 4);
                    ask_ahead(line);
                    let a = base.add(b * Q8K_BYTES + Q8K_QS + g * 8);
                    let a_lo = _mm256_set1_epi32((a as *const i32).read_unaligned());
                    let a_hi = _mm256_set1_epi32((a.add(4) as *const i32).read_unaligned());
                    for h in 0..2 {
                        let w = _mm256_loadu_si256(line.add(h * 32) as *const __m256i);
                        let lo = _mm256_and_si256(w, mask);
                        let hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), mask);
                        let products = _mm256_add_epi16(
                            _mm256_maddubs_epi16(lo, a_lo),
                            _mm256_maddubs_epi16(hi, a_hi),
                        );
                        sums16[h] = _mm256_add_epi16(sums16[h], products);
                    }
                }
                for h in 0..2 {
                    let scale = scale_words(&tile.scales[s][h * 8..]);
                    sumi[h] = _mm256_add_epi32(sumi[h], _mm256_madd_epi16(sums16[h], scale));
                }
            }
            let d_act = (base.add(b * Q8K_BYTES) as *const f32).read_unaligned();
            for h in 0..2 {
                let mins = std::array::from_fn(|p| min_words(tile, p, h));
                // SAFETY: `pairs` holds `PAIRS` words for each of the row's `kb` blocks.
                let summ = min_sums(&mins, pairs.get_unchecked(b * PAIRS..));
                let factors = (
                    f16_to_f32(&tile.d[h * 8..]),
                    f16_to_f32(&tile.dmin[h * 8..]),
                );
                acc[h] = super_block_step(acc[h], (sumi[h], summ), factors, d_act);
            }
        }
        for (h, half) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(h * 8), *half);
        }
    }

    /// [`unit`] in 512-bit registers: all 16 columns of the tile at once, and each sub-block's
    /// u8 × i8 products summed by VNNI's `vpdpbusd` straight into i32 lanes, then scaled by one
    /// `vpmulld`. Those are the same exact integer sums, and the float step is
    /// [`super_block_step`]'s, so every result is [`unit`]'s, bit for bit (tested). Where
    /// [`unit`] needs two multiplies and two adds per 32 products and row, this needs one
    /// instruction per 64. With `NEXT` each line of quants asks for one further on
    /// (`ask_ahead`, [`DECODE_ROWS`]).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    unsafe fn unit_avx512<const R: usize, const NEXT: bool>(
        tiles: &[Tile],
        act: &[u8],
        pairs: &[u32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let mask = _mm512_set1_epi8(0x0F);
        let base = act.as_ptr();
        let mut acc = [_mm512_setzero_ps(); R];
        for (b, tile) in tiles.iter().enumerate() {
            let qs = tile.qs.as_ptr();
            let mut sumi = [_mm512_setzero_si512(); R];
            for s in 0..SUBS {
                let mut sums = [_mm512_setzero_si512(); R];
                for g4 in 0..4 {
                    let g = s * 4 + g4;
                    let at = qs.add(g * TILE_COLS * 4);
                    if NEXT {
                        ask_ahead(at);
                    }
                    let w = _mm512_loadu_si512(at as *const __m512i);
                    let lo = _mm512_and_si512(w, mask);
                    let hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), mask);
                    for m in 0..R {
                        let a = base.add((m * kb + b) * Q8K_BYTES + Q8K_QS + g * 8);
                        let a_lo = _mm512_set1_epi32((a as *const i32).read_unaligned());
                        let a_hi = _mm512_set1_epi32((a.add(4) as *const i32).read_unaligned());
                        sums[m] = _mm512_dpbusd_epi32(sums[m], lo, a_lo);
                        sums[m] = _mm512_dpbusd_epi32(sums[m], hi, a_hi);
                    }
                }
                let scale = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                    tile.scales[s].as_ptr() as *const __m128i
                ));
                for m in 0..R {
                    sumi[m] = _mm512_add_epi32(sumi[m], _mm512_mullo_epi32(sums[m], scale));
                }
            }
            let mins: [__m512i; PAIRS] = std::array::from_fn(|p| min_words_avx512(tile, p));
            let d = _mm512_cvtph_ps(_mm256_loadu_si256(tile.d.as_ptr() as *const __m256i));
            let dmin = _mm512_cvtph_ps(_mm256_loadu_si256(tile.dmin.as_ptr() as *const __m256i));
            for m in 0..R {
                let block = (m * kb + b) * Q8K_BYTES;
                let d_act = (base.add(block) as *const f32).read_unaligned();
                // SAFETY: `pairs` holds `PAIRS` words for each of the `R × kb` blocks.
                let pairs = pairs.get_unchecked((m * kb + b) * PAIRS..);
                let mut summ = _mm512_setzero_si512();
                for p in 0..PAIRS {
                    let pair = _mm512_set1_epi32(pairs[p] as i32);
                    summ = _mm512_add_epi32(summ, _mm512_madd_epi16(mins[p], pair));
                }
                acc[m] = super_block_step_avx512(acc[m], (sumi[m], summ), (d, dmin), d_act);
            }
        }
        for (m, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(m * n), *row);
        }
    }

    /// [`min_words`] for all 16 columns.
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    fn min_words_avx512(tile: &Tile, p: usize) -> __m512i {
        // SAFETY: rows of 16 readable bytes.
        let (lo, hi) = unsafe {
            (
                _mm_loadu_si128(tile.mins[2 * p].as_ptr() as *const __m128i),
                _mm_loadu_si128(tile.mins[2 * p + 1].as_ptr() as *const __m128i),
            )
        };
        let interleaved = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
        _mm512_cvtepu8_epi16(interleaved)
    }

    /// [`super_block_step`] for 16 columns: the same operations in the same order.
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    fn super_block_step_avx512(
        acc: __m512,
        (sumi, summ): (__m512i, __m512i),
        (d, dmin): (__m512, __m512),
        d_act: f32,
    ) -> __m512 {
        let d_act = _mm512_set1_ps(d_act);
        let acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, d_act), acc);
        _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dmin, d_act), acc)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::models::tile_items::test_support::{
        assert_close_to_candles, assert_rows_alone, assert_same_bits, print_tile_rates,
        random_rows, widths,
    };

    fn q4k(n: usize, k: usize) -> QTensor {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, GgmlDType::Q4K).unwrap()
    }

    fn ours(w: &QTensor, xs: &[f32], rows: usize) -> Vec<f32> {
        let (n, k) = w.shape().dims2().unwrap();
        let tiles = Q4KTiles::pack(&w.data().unwrap(), n, k).unwrap();
        let mut dst = vec![0f32; rows * n];
        tiles.matmul_columns(xs, rows, 0..n, &mut dst).unwrap();
        dst
    }

    /// The product of `rows` rows against a `(n, k)` GGUF Q4K weight, written plainly from the
    /// GGUF's blocks and the rows' Q8K blocks: per column and super-block the exact integer
    /// sums `Σ_s scale_s · Σ q·a` and `Σ_s min_s · Σ a`, then the kernels' float step.
    fn plain_product(weights: &[u8], (n, k): (usize, usize), xs: &[f32], rows: usize) -> Vec<f32> {
        let act = crate::models::q8k_rows::quantize(xs, rows, k);
        let kb = k / QK_K;
        // SAFETY: the callers run this where `supports` holds (AVX2, F16C).
        let f16 = |bits: [u8; 2]| unsafe {
            crate::models::quant_blocks::x86::f16_to_f32(u16::from_le_bytes(bits))
        };
        let mut dst = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let mut acc = 0f32;
                for b in 0..kb {
                    let w = &weights[(c * kb + b) * Q4K_BYTES..][..Q4K_BYTES];
                    let a = &act[(r * kb + b) * Q8K_BYTES..][..Q8K_BYTES];
                    let d_act = f32::from_le_bytes([a[0], a[1], a[2], a[3]]);
                    let (mut sumi, mut summ) = (0i32, 0i32);
                    for s in 0..SUBS {
                        let (scale, min) = scale_min(s, &w[4..16]);
                        let (mut dot, mut sum) = (0i32, 0i32);
                        for j in 0..32 {
                            let at = s * 32 + j;
                            let byte = w[16 + at / 64 * 32 + at % 32];
                            let q = if at % 64 < 32 { byte & 0x0F } else { byte >> 4 };
                            let x = a[Q8K_QS + at] as i8 as i32;
                            dot += q as i32 * x;
                            sum += x;
                        }
                        sumi += scale as i32 * dot;
                        summ += min as i32 * sum;
                    }
                    let (d, dmin) = (f16([w[0], w[1]]), f16([w[2], w[3]]));
                    acc = (sumi as f32).mul_add(d * d_act, acc);
                    acc = (-(summ as f32)).mul_add(dmin * d_act, acc);
                }
                dst[r * n + c] = acc;
            }
        }
        dst
    }

    #[test]
    fn every_kernel_gives_the_plain_products_bits() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (48, 768);
        let w = q4k(n, k);
        let bytes = w.data().unwrap();
        let tiles = Q4KTiles::pack(&bytes, n, k).unwrap();
        for width in widths() {
            for rows in [1, 2, 3, 4, 5, 6, 7, 8, 9, 13] {
                let x = random_rows(rows, k);
                let expected = plain_product(&bytes, (n, k), &x, rows);
                let mut got = vec![0f32; rows * n];
                tiles
                    .matmul_columns_at(&x, rows, 0..n, &mut got, width)
                    .unwrap();
                assert_same_bits(&expected, &got, &format!("{width:?}, {rows} rows"));
            }
        }
    }

    #[test]
    fn results_agree_with_candles_q4k_product() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (48, 768);
        let w = std::sync::Arc::new(q4k(n, k));
        let candle = QMatMul::from_arc(w.clone()).unwrap();
        // candle scales each sub-block's sum in f32.
        assert_close_to_candles(&candle, k, 5, |xs, rows| ours(&w, xs, rows));
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_beside_it() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 512);
        let w = q4k(n, k);
        assert_rows_alone((n, k), 11, |xs, rows| ours(&w, xs, rows));
    }

    /// Multiply-accumulates per second on this machine's pool, for a prompt and for 8 and 1
    /// decode rows (`print_tile_rates`):
    /// `cargo test --release --lib q4k_tile_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q4k_tile_rate() {
        let (n, k) = (8960, 1536);
        let w = q4k(n, k);
        let data = w.data().unwrap();
        // 8 copies of 8 MB: four times a 32 MiB last-level cache.
        let copies: Vec<Q4KTiles> = (0..8)
            .map(|_| Q4KTiles::pack(&data, n, k).unwrap())
            .collect();
        print_tile_rates((n, k), copies.len(), |copy, x, rows, dst| {
            copies[copy].matmul_columns(x, rows, 0..n, dst).unwrap()
        });
    }

    #[test]
    fn shapes_that_do_not_tile_are_refused() {
        assert!(!supports(40, 256));
        assert!(!supports(16, 128));
        assert!(Q4KTiles::pack(&[0u8; 10], 16, 256).is_err());
    }

    #[test]
    fn a_product_of_wrong_lengths_or_part_of_a_tile_is_refused_naming_both() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 256);
        let tiles = Q4KTiles::pack(&q4k(n, k).data().unwrap(), n, k).unwrap();
        // candle's messages carry a backtrace after the first line where one is enabled.
        let refusal = |xs: &[f32], rows, columns, dst: &mut [f32]| {
            let err = tiles.matmul_columns(xs, rows, columns, dst).unwrap_err();
            err.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            refusal(&[0.0; 256], 1, 8..24, &mut [0.0; 16]),
            "Q4K tiles (32, 256): no whole tiles for columns 8..24"
        );
        assert_eq!(
            refusal(&[0.0; 256], 1, 16..48, &mut [0.0; 32]),
            "Q4K tiles (32, 256): no whole tiles for columns 16..48"
        );
        assert_eq!(
            refusal(&[0.0; 255], 1, 0..16, &mut [0.0; 16]),
            "Q4K tiles (32, 256): 255 inputs and 16 outputs for 1 rows of columns 0..16"
        );
        assert_eq!(
            refusal(&[0.0; 512], 2, 0..32, &mut [0.0; 32]),
            "Q4K tiles (32, 256): 512 inputs and 32 outputs for 2 rows of columns 0..32"
        );
    }
}
