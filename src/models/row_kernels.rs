//! Quantized products of several activation rows against Q8_0 and Q6K weights on AVX2 (Q6K
//! also on AVX-512), for batched decoding: each weight block is loaded (and, for Q6K,
//! unpacked from its 6-bit layout with its scales) once for a tile of rows ([`ROW_TILE`] for
//! Q8_0, [`Q6K_ROW_TILE`] for Q6K), instead of once per row. Q8_0 also runs single-sequence decoding here, which is bound by reading the weights:
//! a tile reads one weight row as one sequential stream, prefetched well ahead (llama.cpp's
//! `ggml_vec_dot_q8_0_q8_0` also reads one weight row per call; two weight rows read side by
//! side per tile streamed at about half the rate). Q8_0 products of a chunk of rows or more
//! (prompts) go to [`super::q8_0_tiles`], the same arithmetic in tiles of 4 rows × 2 columns.
//! Since Q8_0 weights have tiles of their own at every level (`q8_0_avx2_tiles`, which below
//! AVX-512 VNNI also hold tied embeddings and give their rows to the embedding lookup;
//! `q8_0_vnni_tiles`), Q8_0 runs here for tied embeddings used as the output head at the
//! AVX-512 VNNI level (kept as they are, for the embedding lookup) and shapes that do not tile.
//!
//! candle 0.11.1 computes Q6K (always, since its repacked tiles would make a row's result
//! depend on the row count, see `row_linear.rs`) and Q8_0 (whenever the CPU lacks VNNI) with
//! one `vec_dot` per row and column (`k_quants::matmul`). With 8 decode rows that repeats the
//! weight unpacking, the scale conversions and the weight-side sign work 8 times per block, and
//! the decode step becomes arithmetic-bound long before it is bound by reading the weights.
//! Q4K has tiles of its own (`q4k_tiles`), which share each weight load across rows: a row
//! kernel of this kind for it took 20-60% more CPU time per token on Q4_K_M (AMD EPYC).
//!
//! Each (row, column) here is computed exactly as candle's AVX2 `vec_dot_q8_0_q8_0` and
//! `vec_dot_q6k_q8k` compute it: the same activation quantization (candle's `from_float`, to
//! the bit, in [`super::q8_0_rows`] and [`super::q8k_rows`]), the same exact integer block sums, the same per-block scale product, the
//! same fused multiply-adds in block order and the same horizontal sum. So a row's result is
//! bit for bit the same whichever rows run beside it, and equal to candle's single-row result
//! (the tests check both against `k_quants::matmul`).
//!
//! Q6K tiles take up to [`Q6K_ROW_TILE`] rows (8: all of an 8-sequence decode step), not
//! [`ROW_TILE`], and from [`WEIGHT_TERM_ROWS`] rows on they turn `vpmaddubsw`'s operands round:
//! signed weights `q - 32` against unsigned activations `y + 128`, the weights-only term
//! `128·Σ (q - 32)` taken out once per block for all the tile's rows, where candle takes
//! `32·Σ y` out once per row and block. Per row and 32 quants that leaves one load,
//! `vpmaddubsw`, `vpmaddwd` and an add (candle's form: two loads, those and a subtraction), and
//! each block's unpacking is shared by twice the rows. The 32-bit lanes hold the same exact
//! integers either way (no 16-bit sum can saturate), so every result is unchanged bit for bit.
//! In an 8-sequence Qwen2.5-1.5B Q4_K_M decode step the Q6K kernel (its layers and the tied
//! 151,936-row output head) was 26% of the time against 47% for the Q4K tiles, which do ~2.6×
//! its multiply-adds (perf; 21% against 49% now). On 8 rows of that head (2 threads, AMD EPYC,
//! AVX2) this form ran 81 GMAC/s, 8-row tiles in candle's form 65 and the former 4-row tiles
//! 57; on 8 rows of `ffn_down` (8,960 inputs) 84, 58 and 60 (`q6k_row_rate`;
//! scripts/bench/README.md, "Session 11"). Every Q6K tile also prefetches its weights, as one
//! sequence's always did: without it the first read of each block took 23% of the kernel's
//! time in that step (perf annotate).
//!
//! On every CPU with AVX2, Q6K weights of whole 16-column tiles run on [`super::q6k_tiles`]
//! instead (columns side by side, one integer per block: 1.7–2× this kernel's rate on 8 rows,
//! at AVX2 and at AVX-512); the rest (other shapes) stay here.
//!
//! Where the kernels' level is AVX-512 VNNI ([`Width::Avx512`]) the Q6K tiles run in 512-bit
//! registers (`x86::q6k_tile_avx512`): two quarters of 32 quants per register, each
//! `vpmaddubsw` pair sum times its scale added into 32-bit lanes by one `vpdpwssd`, the
//! register's halves added at the end of each block into the AVX2 kernel's 8 exact integers,
//! so the results are the same bits (tested against candle at both widths). On 8 rows of the
//! tied head it ran 111-113 GMAC/s against 94-96 for the AVX2 kernel, on 8 rows of `ffn_down`
//! 117-118 against 100-104 (AMD EPYC Zen 4, 2 threads, `q6k_row_rate`, alternating runs;
//! scripts/bench/README.md, "Session 16").

use candle_core::quantized::k_quants::QK_K;
use candle_core::quantized::GgmlDType;

use super::cpu_level::Width;
use super::quant_blocks::{as_bytes, has_avx2, Q6K_BYTES, Q8K_BYTES, Q8_0_BYTES};

/// Activation rows that share one load of a Q8_0 weight block.
pub(crate) const ROW_TILE: usize = 4;

/// Activation rows that share one unpacking of a Q6K weight block: all 8 of an 8-sequence
/// decode step (see `x86::q6k_tile`).
const Q6K_ROW_TILE: usize = 8;

/// Q6K tiles of this many rows or more take each block's offset of 32 out once for all
/// rows rather than once per row (see `x86::q6k_tile`).
const WEIGHT_TERM_ROWS: usize = 4;

/// Rows per work item of a long (prompt) product: their quantized activations (about 100 KB
/// at Qwen2.5-1.5B's widths) stay in the core's L2 cache while its columns stream past.
const ROW_CHUNK: usize = 64;

/// Values per Q8_0 block.
const Q8_0_VALUES: usize = 32;

/// Whether [`matmul`] runs `dtype` with `k` inputs on this CPU.
pub(crate) fn supports(dtype: GgmlDType, k: usize) -> bool {
    let block = match dtype {
        GgmlDType::Q8_0 => Q8_0_VALUES,
        GgmlDType::Q6K => QK_K,
        _ => return false,
    };
    k > 0 && k.is_multiple_of(block) && has_avx2()
}

/// `dst = xs · Wᵀ` for `rows` input rows of width `k` (`xs`, row-major) and `n` weight rows
/// of `weights` (the raw bytes of a `(n, k)` Q8_0 or Q6K tensor); `dst` is `(rows, n)`.
/// Callers check [`supports`] first.
pub(crate) fn matmul(
    dtype: GgmlDType,
    weights: &[u8],
    (rows, k, n): (usize, usize, usize),
    xs: &[f32],
    dst: &mut [f32],
) -> candle_core::Result<()> {
    if !supports(dtype, k) {
        candle_core::bail!("no row kernel for {dtype:?} with {k} inputs on this CPU")
    }
    let (values, bytes) = match dtype {
        GgmlDType::Q8_0 => (Q8_0_VALUES, Q8_0_BYTES),
        _ => (QK_K, Q6K_BYTES),
    };
    let kb = k / values;
    if weights.len() != n * kb * bytes || xs.len() != rows * k || dst.len() != rows * n {
        candle_core::bail!(
            "row kernel shapes: {} weight bytes, {} inputs, {} outputs for ({rows}, {k}, {n}) {dtype:?}",
            weights.len(),
            xs.len(),
            dst.len()
        )
    }
    if rows == 0 || n == 0 {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    match dtype {
        GgmlDType::Q8_0 => x86::q8_0(weights, rows, k, n, xs, dst),
        _ => x86::q6k(weights, (rows, k, n), xs, dst, Width::current()),
    }
    Ok(())
}

/// Runs `f` over ranges of `0..items` on candle's CPU worker pool (the one its own kernels
/// use, so the two never compete for the cores).
fn parallel(items: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(items, f);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::*;
    use crate::models::quant_blocks::x86::{f16_to_f32, hsum, q8_0_scales};
    use crate::models::tile_items::Out;

    /// How far ahead of the block being read a Q8_0 tile asks for its weight rows (bytes,
    /// about 60 blocks). Decoding reads every weight once per step, and a core streams at the
    /// rate its outstanding misses allow: at ~100 ns from memory, ~15 GB/s per core needs
    /// ~1.5 KB in flight, more than the hardware prefetcher kept ahead of two weight rows read
    /// side by side (1 activation row against 2 weight rows per tile streamed at ~17 GB/s on 2
    /// AMD EPYC cores; against 1 weight row with this prefetch at ~33 GB/s, as fast as a bare
    /// read of the same bytes).
    const Q8_0_PREFETCH: usize = 2048;

    pub(super) fn q8_0(
        weights: &[u8],
        rows: usize,
        k: usize,
        n: usize,
        xs: &[f32],
        dst: &mut [f32],
    ) {
        let kb = k / Q8_0_VALUES;
        let act = crate::models::q8_0_rows::quantize(xs, rows, k);
        let act = as_bytes(&act);
        if rows >= ROW_CHUNK {
            return crate::models::q8_0_tiles::matmul(weights, act, (rows, kb, n), dst);
        }
        // SAFETY: `supports` checked AVX2, FMA and F16C.
        let scales = unsafe { q8_0_scales(act, rows * kb) };
        let out = Out(dst.as_mut_ptr());
        // Decode rows (fewer than a chunk) read each weight row from memory once per tile of
        // rows: one weight row per tile keeps that a single sequential stream, which the
        // prefetch in `q8_0_tile` keeps ahead of (measured at `Q8_0_PREFETCH`).
        parallel(n, |range| {
            // The whole wrapper (Sync), not its raw-pointer field, which the closure would capture alone.
            let out = &out;
            for col in range {
                let w = &weights[col * kb * Q8_0_BYTES..(col + 1) * kb * Q8_0_BYTES];
                for r0 in (0..rows).step_by(ROW_TILE) {
                    let tile_rows = ROW_TILE.min(rows - r0);
                    let a = &act[r0 * kb * Q8_0_BYTES..(r0 + tile_rows) * kb * Q8_0_BYTES];
                    let s = &scales[r0 * kb..(r0 + tile_rows) * kb];
                    // SAFETY: `w`, `a` and `s` hold one column and `tile_rows` rows of `kb`
                    // blocks; the outputs (r0.., col) are inside `dst` and written by this
                    // tile only.
                    unsafe {
                        let o = out.0.add(r0 * n + col);
                        match tile_rows {
                            4 => q8_0_tile::<4>(w, a, s, kb, o, n),
                            3 => q8_0_tile::<3>(w, a, s, kb, o, n),
                            2 => q8_0_tile::<2>(w, a, s, kb, o, n),
                            _ => q8_0_tile::<1>(w, a, s, kb, o, n),
                        }
                    }
                }
            }
        });
    }

    /// `R` rows of one column of a Q8_0 product. `w`: the column's `kb` blocks; `a`: `R`
    /// activation rows of `kb` blocks, `s` their scales; `out[r * n]`.
    ///
    /// Per (row, block) the arithmetic of candle's `vec_dot_q8_0_q8_0`: `|w|` times the
    /// activations carrying `w`'s sign (`vpmaddubsw` never saturates: `|w| ≤ 128`, `|a| ≤
    /// 127`), pairs summed to i32, converted, and `acc += (d_w · d_a) · sum`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_tile<const R: usize>(
        w: &[u8],
        a: &[u8],
        s: &[f32],
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        let wp = w.as_ptr();
        let ap = a.as_ptr();
        for b in 0..kb {
            let block = wp.add(b * Q8_0_BYTES);
            // A hint only: it never faults, also past the end of the weights.
            _mm_prefetch(block.wrapping_add(Q8_0_PREFETCH) as *const i8, _MM_HINT_T0);
            let wq = _mm256_loadu_si256(block.add(2) as *const __m256i);
            let wabs = _mm256_sign_epi8(wq, wq);
            let wd = f16_to_f32(u16::from_le_bytes([*block, *block.add(1)]));
            for (r, acc) in acc.iter_mut().enumerate() {
                let y = _mm256_loadu_si256(ap.add((r * kb + b) * Q8_0_BYTES + 2) as *const __m256i);
                let signed = _mm256_sign_epi8(y, wq);
                let pairs = _mm256_maddubs_epi16(wabs, signed);
                let q = _mm256_cvtepi32_ps(_mm256_madd_epi16(ones, pairs));
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(wd * s[r * kb + b]), q, *acc);
            }
        }
        for (r, &v) in acc.iter().enumerate() {
            *out.add(r * n) = hsum(v);
        }
    }

    pub(super) fn q6k(
        weights: &[u8],
        (rows, k, n): (usize, usize, usize),
        xs: &[f32],
        dst: &mut [f32],
        width: Width,
    ) {
        let kb = k / QK_K;
        let act = crate::models::q8k_rows::quantize(xs, rows, k);
        let act = act.as_slice();
        // Both forms of each row's quants (see `q6k_tile`); a few KB per row. The 512-bit
        // kernel reads the unsigned form only.
        let offsets = match width {
            // SAFETY: `supports` checked AVX2, FMA and F16C.
            Width::Avx2 => unsafe { q6k_offsets(act, rows * kb) },
            Width::Avx512 => Vec::new(),
        };
        let unsigned = q8k_unsigned(act, rows * kb);
        // The kernel for each tile size, 1 to `Q6K_ROW_TILE` rows.
        let kernels: [Q6KTileKernel; Q6K_ROW_TILE] = match width {
            Width::Avx2 => [
                q6k_tile::<1>,
                q6k_tile::<2>,
                q6k_tile::<3>,
                q6k_tile::<4>,
                q6k_tile::<5>,
                q6k_tile::<6>,
                q6k_tile::<7>,
                q6k_tile::<8>,
            ],
            Width::Avx512 => [
                q6k_tile_avx512::<1>,
                q6k_tile_avx512::<2>,
                q6k_tile_avx512::<3>,
                q6k_tile_avx512::<4>,
                q6k_tile_avx512::<5>,
                q6k_tile_avx512::<6>,
                q6k_tile_avx512::<7>,
                q6k_tile_avx512::<8>,
            ],
        };
        let out = Out(dst.as_mut_ptr());
        parallel(rows.div_ceil(ROW_CHUNK) * n, |range| {
            // The whole wrapper (Sync), not its raw-pointer field, which the closure would capture alone.
            let out = &out;
            for item in range {
                let (chunk, col) = (item / n, item % n);
                let w = &weights[col * kb * Q6K_BYTES..(col + 1) * kb * Q6K_BYTES];
                let chunk_rows = chunk * ROW_CHUNK..rows.min((chunk + 1) * ROW_CHUNK);
                for r0 in chunk_rows.clone().step_by(Q6K_ROW_TILE) {
                    let tile_rows = Q6K_ROW_TILE.min(chunk_rows.end - r0);
                    let a = &act[r0 * kb * Q8K_BYTES..(r0 + tile_rows) * kb * Q8K_BYTES];
                    let off = match width {
                        Width::Avx2 => {
                            &offsets[r0 * kb * QK_K / 2..(r0 + tile_rows) * kb * QK_K / 2]
                        }
                        Width::Avx512 => &[],
                    };
                    let u = &unsigned[r0 * kb * QK_K..(r0 + tile_rows) * kb * QK_K];
                    let tile = Q6KRows { a, off, u };
                    // SAFETY: as in `q8_0`, for one column; `Width::Avx512` is only chosen
                    // where the CPU has AVX-512 BW and VNNI.
                    unsafe { kernels[tile_rows - 1](w, tile, kb, out.0.add(r0 * n + col), n) }
                }
            }
        });
    }

    /// A Q6K row tile of one column: weights, activation rows, `kb`, outputs, their row stride.
    type Q6KTileKernel = unsafe fn(&[u8], Q6KRows, usize, *mut f32, usize);

    /// A tile's activation rows, each in `kb` blocks: the Q8K blocks, their
    /// [`q6k_offsets`] (none for the 512-bit kernel) and their [`q8k_unsigned`] quants.
    #[derive(Clone, Copy)]
    struct Q6KRows<'a> {
        a: &'a [u8],
        off: &'a [i16],
        u: &'a [u8],
    }

    /// Per Q8K block, `32 · (q[2i] + q[2i + 1])` for each pair `i` (i16, 128 per block): the
    /// term that takes Q6K's offset of 32 out of `vpmaddubsw` on the unsigned quants (candle's
    /// form, for tiles of few rows). It depends on the activations only, so it is computed
    /// once per row, not per column.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn q6k_offsets(act: &[u8], blocks: usize) -> Vec<i16> {
        let mut offsets = vec![0i16; blocks * QK_K / 2];
        let m32s = _mm256_set1_epi8(32);
        for b in 0..blocks {
            for chunk in 0..QK_K / 32 {
                // SAFETY: 32 bytes of block `b`'s quants; 16 i16 of its offsets.
                unsafe {
                    let q8 = _mm256_loadu_si256(
                        act.as_ptr().add(b * Q8K_BYTES + 4 + chunk * 32) as *const __m256i
                    );
                    _mm256_storeu_si256(
                        offsets.as_mut_ptr().add(b * QK_K / 2 + chunk * 16) as *mut __m256i,
                        _mm256_maddubs_epi16(m32s, q8),
                    );
                }
            }
        }
        offsets
    }

    /// The quants of `blocks` Q8K blocks plus 128, as unsigned bytes (256 per block): the
    /// unsigned operand of `vpmaddubsw` against the signed weights `q - 32` (the form of
    /// [`q6k_tile`] for tiles of many rows).
    fn q8k_unsigned(act: &[u8], blocks: usize) -> Vec<u8> {
        let mut unsigned = vec![0u8; blocks * QK_K];
        for (block, out) in act
            .chunks_exact(Q8K_BYTES)
            .zip(unsigned.chunks_exact_mut(QK_K))
            .take(blocks)
        {
            for (u, &q) in out.iter_mut().zip(&block[4..4 + QK_K]) {
                *u = q ^ 0x80;
            }
        }
        unsigned
    }

    /// candle's `get_scale_shuffle`: bytes `2i` (×8) and `2i + 1` (×8) of the scales.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scale_shuffle(i: usize) -> __m128i {
        let lo = (2 * i) as i8;
        let hi = lo + 1;
        _mm_setr_epi8(
            lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi,
        )
    }

    /// The start of a Q6K tile's work on the block at `x` (210 readable bytes): asks for the
    /// block [`Q8_0_PREFETCH`] bytes ahead, and returns this block's factor `d`. One sequence's
    /// decode is bound by reading the weights (see [`Q8_0_PREFETCH`]). Several rows' are not,
    /// but in an 8-sequence decode step 23% of the AVX2 kernel's time still went to the first
    /// read of each block without the hint (perf annotate). A hint only: it never faults past
    /// the end.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q6k_block_start(x: *const u8) -> f32 {
        for line in 0..Q6K_BYTES.div_ceil(64) {
            let ahead = x.wrapping_add(Q8_0_PREFETCH + line * 64);
            _mm_prefetch(ahead as *const i8, _MM_HINT_T0);
        }
        f16_to_f32(u16::from_le_bytes([*x.add(208), *x.add(209)]))
    }

    /// `R` rows of one column of a Q6K product: per (row, block) the exact integer sums of
    /// candle's `vec_dot_q6k_q8k`, lane for lane, then its float arithmetic in its order.
    /// `w`: the column's `kb` blocks; `rows`: `R` activation rows; `out[r * n]`.
    ///
    /// candle multiplies the unsigned 6-bit quants `q` by the signed activations `y` and
    /// takes `32·y` out again per row (`vpmaddubsw` wants one unsigned operand): per row and
    /// 32 quants two loads, `vpmaddubsw`, a subtraction, `vpmaddwd` and an add. Tiles of
    /// [`WEIGHT_TERM_ROWS`] rows or more turn the operands round: the weights signed,
    /// `q - 32` in [-32, 31], the activations unsigned, `y + 128` in [0, 255], and
    /// `Σ (y + 128)(q - 32) = Σ y(q - 32) + 128 Σ (q - 32)`, whose last term depends on the
    /// weights only and is taken out once per block for all `R` rows: per row one load,
    /// `vpmaddubsw`, `vpmaddwd` and an add. No 16-bit value can saturate either way (a pair
    /// is at most 255·32·2 < 2^15 in size), so each 32-bit lane holds exactly candle's
    /// integer whichever form runs.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q6k_tile<const R: usize>(
        w: &[u8],
        rows: Q6KRows,
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let weight_side = R >= WEIGHT_TERM_ROWS;
        let m4 = _mm256_set1_epi8(0xF);
        let m2 = _mm256_set1_epi8(0x30);
        let m32 = _mm256_set1_epi8(32);
        let m128 = _mm256_set1_epi8(-128);
        let mut acc = [_mm256_setzero_ps(); R];
        let wp = w.as_ptr();
        let ap = rows.a.as_ptr();
        let op = rows.off.as_ptr();
        let up = rows.u.as_ptr();
        for b in 0..kb {
            let x = wp.add(b * Q6K_BYTES);
            let xd = q6k_block_start(x);
            let scales = _mm_loadu_si128(x.add(192) as *const __m128i);
            let mut weight_term = _mm256_setzero_si256();
            let mut sumi = [_mm256_setzero_si256(); R];
            for j in 0..QK_K / 128 {
                let ql1 = _mm256_loadu_si256(x.add(j * 64) as *const __m256i);
                let ql2 = _mm256_loadu_si256(x.add(j * 64 + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(x.add(128 + j * 32) as *const __m256i);
                // candle's four quarters: the low nibbles of the two `ql` halves, then their
                // high nibbles, each with the next 2 bits of `qh` as bits 4-5 (shifted within
                // 16-bit lanes; the bits that cross a byte are masked off).
                let q = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql2, m4),
                        _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                        _mm256_and_si256(qh, m2),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql2, 4), m4),
                        _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2),
                    ),
                ];
                for (i, &q) in q.iter().enumerate() {
                    let scale =
                        _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, scale_shuffle(j * 4 + i)));
                    let at = j * 128 + i * 32;
                    if weight_side {
                        let q = _mm256_sub_epi8(q, m32);
                        weight_term = _mm256_add_epi32(
                            weight_term,
                            _mm256_madd_epi16(scale, _mm256_maddubs_epi16(m128, q)),
                        );
                        for (r, sum) in sumi.iter_mut().enumerate() {
                            let y = _mm256_loadu_si256(
                                up.add((r * kb + b) * QK_K + at) as *const __m256i
                            );
                            let p = _mm256_madd_epi16(scale, _mm256_maddubs_epi16(y, q));
                            *sum = _mm256_add_epi32(*sum, p);
                        }
                    } else {
                        for (r, sum) in sumi.iter_mut().enumerate() {
                            let y = _mm256_loadu_si256(
                                ap.add((r * kb + b) * Q8K_BYTES + 4 + at) as *const __m256i
                            );
                            let ys = _mm256_loadu_si256(
                                op.add((r * kb + b) * QK_K / 2 + at / 2) as *const __m256i
                            );
                            let prod = _mm256_sub_epi16(_mm256_maddubs_epi16(q, y), ys);
                            *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(scale, prod));
                        }
                    }
                }
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let yd = std::ptr::read_unaligned(ap.add((r * kb + b) * Q8K_BYTES) as *const f32);
                let d = yd * xd;
                let sum = if weight_side {
                    _mm256_sub_epi32(sumi[r], weight_term)
                } else {
                    sumi[r]
                };
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), *acc);
            }
        }
        for (r, &v) in acc.iter().enumerate() {
            *out.add(r * n) = hsum(v);
        }
    }

    /// [`q6k_tile`] in 512-bit registers, always in its weight-side form: two 32-quant
    /// quarters per register, each pair of `vpmaddubsw` sums times its scale added into 32-bit
    /// lanes by one VNNI `vpdpwssd` (where [`q6k_tile`] needs `vpmaddwd` and an add). Lane
    /// `l` of a register's lower half holds the 4 products that lane `l` of [`q6k_tile`]'s
    /// sum holds for the register's first quarter, lane `8 + l` those of its second, so
    /// adding the halves at the end of a block gives exactly [`q6k_tile`]'s 8 integers, and
    /// the float arithmetic after them is [`q6k_tile`]'s own: every result is the same bits
    /// (tested).
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    unsafe fn q6k_tile_avx512<const R: usize>(
        w: &[u8],
        rows: Q6KRows,
        kb: usize,
        out: *mut f32,
        n: usize,
    ) {
        let m4 = _mm512_set1_epi8(0xF);
        let m2 = _mm512_set1_epi8(0x30);
        let m32 = _mm512_set1_epi8(32);
        let m128 = _mm512_set1_epi8(-128);
        // Per 16-bit lane, the shift that brings a quarter's 2 high bits from `qh` to bits 4-5:
        // quarters 0 and 1 in the register of the low nibbles, 2 and 3 in that of the high.
        let shift_low_nibbles = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        let shift_high_nibbles =
            _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        // Register `z` covers scales 4z to 4z + 3, each over 8 of its 16-bit pair sums.
        let scale_index: [__m512i; 4] = std::array::from_fn(|z| {
            let idx: [i16; 32] = std::array::from_fn(|t| (4 * z + t / 8) as i16);
            _mm512_loadu_si512(idx.as_ptr() as *const __m512i)
        });
        let mut acc = [_mm256_setzero_ps(); R];
        let wp = w.as_ptr();
        let ap = rows.a.as_ptr();
        let up = rows.u.as_ptr();
        for b in 0..kb {
            let x = wp.add(b * Q6K_BYTES);
            let xd = q6k_block_start(x);
            let scales = _mm512_cvtepi8_epi16(_mm256_castsi128_si256(_mm_loadu_si128(
                x.add(192) as *const __m128i
            )));
            let mut weight_term = _mm512_setzero_si512();
            let mut sumi = [_mm512_setzero_si512(); R];
            for j in 0..QK_K / 128 {
                let ql = _mm512_loadu_si512(x.add(j * 64) as *const __m512i);
                let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                    x.add(128 + j * 32) as *const __m256i
                ));
                // [`q6k_tile`]'s quarters 0 and 1, then 2 and 3, side by side.
                let q = [
                    _mm512_or_si512(
                        _mm512_and_si512(ql, m4),
                        _mm512_and_si512(_mm512_sllv_epi16(qh, shift_low_nibbles), m2),
                    ),
                    _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                        _mm512_and_si512(_mm512_srlv_epi16(qh, shift_high_nibbles), m2),
                    ),
                ];
                for (h, &q) in q.iter().enumerate() {
                    let z = j * 2 + h;
                    let scale = _mm512_permutexvar_epi16(scale_index[z], scales);
                    let q = _mm512_sub_epi8(q, m32);
                    weight_term =
                        _mm512_dpwssd_epi32(weight_term, _mm512_maddubs_epi16(m128, q), scale);
                    for r in 0..R {
                        let y = _mm512_loadu_si512(
                            up.add((r * kb + b) * QK_K + z * 64) as *const __m512i
                        );
                        sumi[r] = _mm512_dpwssd_epi32(sumi[r], _mm512_maddubs_epi16(y, q), scale);
                    }
                }
            }
            for r in 0..R {
                let yd = std::ptr::read_unaligned(ap.add((r * kb + b) * Q8K_BYTES) as *const f32);
                let d = yd * xd;
                let s = _mm512_sub_epi32(sumi[r], weight_term);
                let sum =
                    _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64::<1>(s));
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc[r]);
            }
        }
        for (r, &v) in acc.iter().enumerate() {
            *out.add(r * n) = hsum(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::k_quants::{BlockQ6K, BlockQ8_0, GgmlType};
    use candle_core::quantized::{k_quants, QTensor};
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::models::cpu_level::CpuLevel;

    /// Weights of `dtype`, `(n, k)`, random, and their raw bytes.
    fn weights(dtype: GgmlDType, n: usize, k: usize) -> QTensor {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, dtype).unwrap()
    }

    /// candle's compact kernel for one row: what single-sequence decoding computes.
    fn candle_row<B: GgmlType>(w: &QTensor, row: &[f32], n: usize) -> Vec<f32> {
        let data = w.data().unwrap();
        let blocks: &[B] = unsafe {
            std::slice::from_raw_parts(
                data.as_ptr() as *const B,
                data.len() / std::mem::size_of::<B>(),
            )
        };
        let mut out = vec![0f32; n];
        k_quants::matmul((1, row.len(), n), row, blocks, &mut out).unwrap();
        out
    }

    #[test]
    fn every_row_equals_candles_single_row_kernel_bit_for_bit() {
        if !has_avx2() {
            return;
        }
        // Widths of Qwen2.5's projections (several blocks), column counts that leave a
        // remainder tile, row counts around the row tile.
        for (dtype, k, n) in [
            (GgmlDType::Q8_0, 1536, 38),
            (GgmlDType::Q8_0, 64, 5),
            (GgmlDType::Q6K, 1536, 21),
            (GgmlDType::Q6K, 256, 3),
        ] {
            let w = weights(dtype, n, k);
            let data = w.data().unwrap();
            // Every Q6K tile size (1 to 8 rows, in both of `q6k_tile`'s forms), a tile
            // beside a remainder (9, 12), two full tiles (16: the most decode rows per
            // call), and chunks of 64 rows.
            for rows in [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 65, 67, 70] {
                let xs = Tensor::randn(0f32, 1.0, (rows, k), &Device::Cpu)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                let mut got = vec![0f32; rows * n];
                matmul(dtype, &data, (rows, k, n), &xs, &mut got).unwrap();
                for r in 0..rows {
                    let row = &xs[r * k..(r + 1) * k];
                    let want = match dtype {
                        GgmlDType::Q8_0 => candle_row::<BlockQ8_0>(&w, row, n),
                        _ => candle_row::<BlockQ6K>(&w, row, n),
                    };
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got[r * n..(r + 1) * n]),
                        bits(&want),
                        "{dtype:?} ({n}, {k}), row {r} of {rows}"
                    );
                }
            }
        }
    }

    /// Multiply-accumulates per second of prompt-sized Q8_0 products (Qwen2.5-1.5B's MLP
    /// widths, both directions, and 4 × 8,960 columns: 55 MB of weights, more than the L3
    /// cache holds, as a model's layers are read from memory) on this machine's pool:
    /// `cargo test --release --lib q8_0_prompt_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q8_0_prompt_rate() {
        if !has_avx2() {
            return;
        }
        for (rows, n, k) in [(512, 8960, 1536), (512, 1536, 8960), (512, 4 * 8960, 1536)] {
            let w = weights(GgmlDType::Q8_0, n, k);
            let data = w.data().unwrap();
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut dst = vec![0f32; rows * n];
            matmul(GgmlDType::Q8_0, &data, (rows, k, n), &x, &mut dst).unwrap();
            for _ in 0..3 {
                let t = std::time::Instant::now();
                matmul(GgmlDType::Q8_0, &data, (rows, k, n), &x, &mut dst).unwrap();
                let s = t.elapsed().as_secs_f64();
                eprintln!(
                    "{rows}x{k} . {n}x{k}: {:.3} s, {:.1} GMAC/s",
                    s,
                    (rows * n * k) as f64 / s / 1e9
                );
            }
        }
    }

    /// Multiply-adds per second of the Q8_0 row kernel on the decode shapes of Qwen2.5-1.5B
    /// Q8_0 (the tied output head, `ffn_up`, `ffn_down`), for 1, 4 and 8 rows, on this
    /// machine's pool: `cargo test --release --lib q8_0_row_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q8_0_row_rate() {
        if !has_avx2() {
            return;
        }
        for (k, n) in [(1536, 151_936), (1536, 8960), (8960, 1536)] {
            let w = weights(GgmlDType::Q8_0, n, k);
            report_row_rates(GgmlDType::Q8_0, &w.data().unwrap(), k, n);
        }
    }

    /// Times [`matmul`] of 1, 4 and 8 rows against `weights` (`(n, k)` of `dtype`) and prints
    /// its multiply-adds and weight bytes per second.
    fn report_row_rates(dtype: GgmlDType, weights: &[u8], k: usize, n: usize) {
        for rows in [1, 4, 8] {
            let xs: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut dst = vec![0f32; rows * n];
            matmul(dtype, weights, (rows, k, n), &xs, &mut dst).unwrap();
            // A product takes from a fraction of a ms to tens: more passes for the short ones.
            let reps = (200_000_000 / (rows * n * k)).clamp(5, 40);
            let t = std::time::Instant::now();
            for _ in 0..reps {
                matmul(dtype, weights, (rows, k, n), &xs, &mut dst).unwrap();
            }
            let s = t.elapsed().as_secs_f64() / reps as f64;
            eprintln!(
                "{rows} x ({k} -> {n}): {:.2} ms, {:.1} GMAC/s, {:.1} GB/s of weights",
                s * 1e3,
                (rows * n * k) as f64 / s / 1e9,
                weights.len() as f64 / s / 1e9
            );
        }
    }

    #[test]
    fn q6k_rows_equal_candles_kernel_on_extreme_quants_and_scales() {
        if !has_avx2() {
            return;
        }
        // Random bytes make Q6K blocks whose quants (0 to 63) and scales (-128 to 127) span
        // their whole range, which quantizing normal weights seldom reaches: where a 16-bit
        // sum would saturate if the kernel's bounds were wrong. Each f16 factor is set to a
        // finite value.
        let (n, k) = (19, 512);
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut weights: Vec<u8> = (0..n * k / QK_K * Q6K_BYTES)
            .map(|_| next() as u8)
            .collect();
        for block in weights.chunks_exact_mut(Q6K_BYTES) {
            block[208..].copy_from_slice(&0x3C00u16.to_le_bytes());
        }
        // Even rows spread their quants over all of [-127, 127]; odd rows hold small values
        // beside one of ±100 each side per block (quants ±127).
        let rows = 9;
        let xs: Vec<f32> = (0..rows * k)
            .map(|i| match (i % 256, i / k) {
                (0, _) => 100.0,
                (1, _) => -100.0,
                (_, r) if r % 2 == 0 => (next() % 255) as f32 - 127.0,
                _ => ((next() % 2001) as f32 - 1000.0) / 1000.0,
            })
            .collect();
        let mut blocks = vec![BlockQ6K::zeros(); n * k / QK_K];
        // SAFETY: `weights` holds exactly the bytes of `blocks` (plain `repr(C)` data).
        unsafe {
            std::ptr::copy_nonoverlapping(
                weights.as_ptr(),
                blocks.as_mut_ptr() as *mut u8,
                weights.len(),
            )
        };
        // Both register widths where the CPU has AVX-512, whichever this process runs.
        let mut widths = vec![Width::Avx2];
        if CpuLevel::detected() == CpuLevel::Avx512Vnni {
            widths.push(Width::Avx512);
        }
        // Every tile size, in both of `q6k_tile`'s forms, then a tile beside a remainder.
        for (width, rows) in widths
            .into_iter()
            .flat_map(|w| (1..=rows).map(move |r| (w, r)))
        {
            let mut got = vec![0f32; rows * n];
            x86::q6k(
                as_bytes(&blocks),
                (rows, k, n),
                &xs[..rows * k],
                &mut got,
                width,
            );
            for r in 0..rows {
                let mut want = vec![0f32; n];
                k_quants::matmul((1, k, n), &xs[r * k..(r + 1) * k], &blocks, &mut want).unwrap();
                for c in 0..n {
                    assert_eq!(
                        got[r * n + c].to_bits(),
                        want[c].to_bits(),
                        "{width:?}, row {r} of {rows}, column {c}"
                    );
                }
            }
        }
    }

    /// Multiply-adds per second of the Q6K row kernel on the decode shapes of Qwen2.5-1.5B
    /// Q4_K_M (the tied output head and `ffn_down`), for 1, 4 and 8 rows, on this machine's pool:
    /// `cargo test --release --lib q6k_row_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q6k_row_rate() {
        if !has_avx2() {
            return;
        }
        for (k, n) in [(1536, 151_936), (8960, 1536)] {
            // Random bytes make valid Q6K blocks once each f16 factor is a finite value.
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            let mut weights: Vec<u8> = (0..n * k / QK_K * Q6K_BYTES)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 56) as u8
                })
                .collect();
            for block in weights.chunks_exact_mut(Q6K_BYTES) {
                block[208..].copy_from_slice(&0x1C00u16.to_le_bytes());
            }
            report_row_rates(GgmlDType::Q6K, &weights, k, n);
        }
    }

    #[test]
    fn shapes_that_do_not_fit_are_refused() {
        let w = weights(GgmlDType::Q8_0, 4, 64);
        let data = w.data().unwrap();
        let mut dst = vec![0f32; 4];
        // Three inputs for a width of 64.
        assert!(matmul(GgmlDType::Q8_0, &data, (1, 64, 4), &[0.0; 3], &mut dst).is_err());
        // Weights of 4 rows read as 5.
        assert!(matmul(
            GgmlDType::Q8_0,
            &data,
            (1, 64, 5),
            &[0.0; 64],
            &mut [0.0; 5]
        )
        .is_err());
        assert!(!supports(GgmlDType::Q4K, 256));
        assert!(!supports(GgmlDType::Q6K, 128));
    }
}
