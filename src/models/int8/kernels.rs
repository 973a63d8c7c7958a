//! Integer dot-product kernels: one tile of up to 4 activation rows × 64 weight rows
//! (output columns), summed over the (padded) depth into exact i32 dot products of signed
//! 8-bit values.
//!
//! The weights are packed the way oneDNN's and CTranslate2's int8 gemm packs them, so that a
//! register holds 16 output columns: in blocks of 16 weight rows, each block a run of
//! 4-byte groups, group `g` holding bytes `4g..4g + 4` of the 16 rows side by side
//! ([`packed_index`]). One `vpdpbusd` then adds 4 products into each of 16 column sums, with
//! the 4 activation bytes broadcast; the sums never need a horizontal reduction, and the
//! epilogue (offset, scales, bias) runs on whole registers of columns.
//!
//! The tricks are the ones CTranslate2 (through oneDNN's `gemm_s8u8s32`) and llama.cpp's ggml
//! CPU kernels (`mul_sum_i8_pairs` in `ggml-cpu/arch/x86/quants.c`) use:
//! - VNNI (`vpdpbusd`) multiplies unsigned by signed bytes, so activations are shifted into
//!   u8 (`a + 128`) and the caller subtracts `128 · Σ_k w[j][k]`, precomputed per weight row.
//! - Plain AVX2 (`vpmaddubsw`) saturates its 16-bit pair sums, so instead of the shift it
//!   multiplies `|a|` by `w` carrying the sign of `a` (ggml's sign trick): with both sides in
//!   [-127, 127] a pair sum is at most 2·127² = 32258 and never saturates.
//!
//! Every kernel returns exactly what [`tile_scalar`] returns; the tests check it.

/// Depth (k) is padded to a multiple of this: one AVX-512 register of bytes.
pub(crate) const K_ALIGN: usize = 64;

/// Weight rows per packed block: one 512-bit register of i32 column sums.
pub(crate) const BLOCK_COLS: usize = 16;

/// Blocks per tile.
pub(crate) const TILE_BLOCKS: usize = 4;

/// Weight rows (output columns) per tile; weight matrices are padded to a multiple of it.
pub(crate) const TILE_COLS: usize = BLOCK_COLS * TILE_BLOCKS;

/// Activation rows per tile (a remainder tile has fewer).
pub(crate) const TILE_ROWS: usize = 4;

/// A tile's exact sums: `[activation row][block][column in block]`.
pub(crate) type Tile = [[[i32; BLOCK_COLS]; TILE_BLOCKS]; TILE_ROWS];

/// Where byte `k` of weight row `j` lives in a packed matrix of padded depth `kp`.
pub(crate) fn packed_index(j: usize, k: usize, kp: usize) -> usize {
    (j / BLOCK_COLS) * BLOCK_COLS * kp + (k / 4) * (4 * BLOCK_COLS) + (j % BLOCK_COLS) * 4 + k % 4
}

/// The portable reference: `out[i][b][c] = Σ_k a[i·kp + k] · w[row 16b + c][k]`, with `w`
/// one tile (4 packed blocks, `64 · kp` bytes).
pub(crate) fn tile_scalar(a: &[i8], rows: usize, w: &[i8], kp: usize, out: &mut Tile) {
    for (i, out_row) in out.iter_mut().enumerate().take(rows) {
        let a_row = &a[i * kp..(i + 1) * kp];
        for (b, out_block) in out_row.iter_mut().enumerate() {
            let block = &w[b * BLOCK_COLS * kp..(b + 1) * BLOCK_COLS * kp];
            *out_block = [0; BLOCK_COLS];
            for (group, a4) in block
                .chunks_exact(4 * BLOCK_COLS)
                .zip(a_row.chunks_exact(4))
            {
                for (o, w4) in out_block.iter_mut().zip(group.chunks_exact(4)) {
                    *o += a4
                        .iter()
                        .zip(w4)
                        .map(|(&x, &y)| i32::from(x) * i32::from(y))
                        .sum::<i32>();
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{tile_avx2, tile_avx512_vnni, tile_avx_vnni};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Tile, BLOCK_COLS, TILE_BLOCKS};

    /// Bytes of one packed block (16 weight rows) per 4 bytes of depth.
    const GROUP: usize = 4 * BLOCK_COLS;

    /// The 4 activation bytes `a[4g..4g + 4]` of one row, broadcast to every i32 lane.
    ///
    /// # Safety
    /// `a` points to at least 4 readable bytes.
    #[inline(always)]
    unsafe fn broadcast4_512(a: *const u8) -> __m512i {
        // SAFETY: the caller's contract; an unaligned read.
        _mm512_set1_epi32(unsafe { a.cast::<i32>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn broadcast4_256(a: *const u8) -> __m256i {
        // SAFETY: as for `broadcast4_512`.
        _mm256_set1_epi32(unsafe { a.cast::<i32>().read_unaligned() })
    }

    /// AVX-512 VNNI: `a_u8` holds the activations plus 128; the result carries
    /// `+128 · Σ_k w[j][k]`, which the caller removes.
    ///
    /// # Safety
    /// The CPU has avx512f, avx512bw and avx512vnni; `a_u8` holds `rows · kp` bytes and `w`
    /// one tile (`64 · kp` bytes), with `kp` a multiple of 64.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn tile_avx512_vnni(
        a_u8: &[u8],
        rows: usize,
        w: &[i8],
        kp: usize,
        out: &mut Tile,
    ) {
        match rows {
            1 => tile_avx512_n::<1>(a_u8, w, kp, out),
            2 => tile_avx512_n::<2>(a_u8, w, kp, out),
            3 => tile_avx512_n::<3>(a_u8, w, kp, out),
            _ => tile_avx512_n::<4>(a_u8, w, kp, out),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_avx512_n<const R: usize>(a: &[u8], w: &[i8], kp: usize, out: &mut Tile) {
        debug_assert!(a.len() >= R * kp && w.len() >= TILE_BLOCKS * BLOCK_COLS * kp);
        let (a, w) = (a.as_ptr(), w.as_ptr());
        let block = BLOCK_COLS * kp;
        let mut acc = [[_mm512_setzero_si512(); TILE_BLOCKS]; R];
        for g in 0..kp / 4 {
            // SAFETY (loads): g < kp / 4, so every read stays inside the R activation rows
            // and the tile's 4 blocks.
            let wv: [__m512i; TILE_BLOCKS] = std::array::from_fn(|b| unsafe {
                _mm512_loadu_si512(w.add(b * block + g * GROUP).cast())
            });
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let x = unsafe { broadcast4_512(a.add(i * kp + 4 * g)) };
                for (acc, wv) in acc_row.iter_mut().zip(wv) {
                    *acc = _mm512_dpbusd_epi32(*acc, x, wv);
                }
            }
        }
        for (out_row, acc_row) in out.iter_mut().zip(acc) {
            for (o, acc) in out_row.iter_mut().zip(acc_row) {
                // SAFETY: `o` is 16 i32, an unaligned store is allowed.
                unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), acc) };
            }
        }
    }

    /// AVX-VNNI on 256-bit registers; same contract as [`tile_avx512_vnni`].
    ///
    /// # Safety
    /// The CPU has avx2 and avxvnni; slice sizes as for [`tile_avx512_vnni`].
    #[target_feature(enable = "avx2,avxvnni")]
    pub(crate) unsafe fn tile_avx_vnni(
        a_u8: &[u8],
        rows: usize,
        w: &[i8],
        kp: usize,
        out: &mut Tile,
    ) {
        match rows {
            1 => tile_avx_vnni_n::<1>(a_u8, w, kp, out),
            2 => tile_avx_vnni_n::<2>(a_u8, w, kp, out),
            3 => tile_avx_vnni_n::<3>(a_u8, w, kp, out),
            _ => tile_avx_vnni_n::<4>(a_u8, w, kp, out),
        }
    }

    /// One block at a time (16 columns in two registers), so that R × 2 accumulators fit
    /// the 16 registers.
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn tile_avx_vnni_n<const R: usize>(a: &[u8], w: &[i8], kp: usize, out: &mut Tile) {
        debug_assert!(a.len() >= R * kp && w.len() >= TILE_BLOCKS * BLOCK_COLS * kp);
        let a = a.as_ptr();
        for b in 0..TILE_BLOCKS {
            // SAFETY: block b of the tile.
            let w = unsafe { w.as_ptr().add(b * BLOCK_COLS * kp) };
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for g in 0..kp / 4 {
                // SAFETY (loads): inside the block and the R activation rows, as above.
                let wv = unsafe {
                    [
                        _mm256_loadu_si256(w.add(g * GROUP).cast()),
                        _mm256_loadu_si256(w.add(g * GROUP + 32).cast()),
                    ]
                };
                for (i, acc_row) in acc.iter_mut().enumerate() {
                    let x = unsafe { broadcast4_256(a.add(i * kp + 4 * g)) };
                    for (acc, wv) in acc_row.iter_mut().zip(wv) {
                        *acc = _mm256_dpbusd_avx_epi32(*acc, x, wv);
                    }
                }
            }
            for (out_row, acc_row) in out.iter_mut().zip(acc) {
                for (half, acc) in acc_row.into_iter().enumerate() {
                    // SAFETY: 8 i32 of the 16 in this block's output.
                    unsafe { _mm256_storeu_si256(out_row[b][8 * half..].as_mut_ptr().cast(), acc) };
                }
            }
        }
    }

    /// Plain AVX2 on signed activations with the sign trick; exact, no offset to correct.
    ///
    /// # Safety
    /// The CPU has avx2; `a` holds `rows · kp` bytes and `w` one tile, with `kp` a multiple
    /// of 64; no value is -128.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn tile_avx2(a: &[i8], rows: usize, w: &[i8], kp: usize, out: &mut Tile) {
        match rows {
            1 => tile_avx2_n::<1>(a, w, kp, out),
            2 => tile_avx2_n::<2>(a, w, kp, out),
            3 => tile_avx2_n::<3>(a, w, kp, out),
            _ => tile_avx2_n::<4>(a, w, kp, out),
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn tile_avx2_n<const R: usize>(a: &[i8], w: &[i8], kp: usize, out: &mut Tile) {
        debug_assert!(a.len() >= R * kp && w.len() >= TILE_BLOCKS * BLOCK_COLS * kp);
        let a = a.as_ptr().cast::<u8>();
        let ones = _mm256_set1_epi16(1);
        for b in 0..TILE_BLOCKS {
            // SAFETY: block b of the tile.
            let w = unsafe { w.as_ptr().add(b * BLOCK_COLS * kp) };
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            for g in 0..kp / 4 {
                // SAFETY (loads): inside the block and the R activation rows, as above.
                let wv = unsafe {
                    [
                        _mm256_loadu_si256(w.add(g * GROUP).cast()),
                        _mm256_loadu_si256(w.add(g * GROUP + 32).cast()),
                    ]
                };
                for (i, acc_row) in acc.iter_mut().enumerate() {
                    let x = unsafe { broadcast4_256(a.add(i * kp + 4 * g)) };
                    let ax = _mm256_sign_epi8(x, x);
                    for (acc, wv) in acc_row.iter_mut().zip(wv) {
                        let pairs = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, x));
                        *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
            for (out_row, acc_row) in out.iter_mut().zip(acc) {
                for (half, acc) in acc_row.into_iter().enumerate() {
                    // SAFETY: 8 i32 of the 16 in this block's output.
                    unsafe { _mm256_storeu_si256(out_row[b][8 * half..].as_mut_ptr().cast(), acc) };
                }
            }
        }
    }
}
