//! Integer dot-product kernels: one tile of up to 4 activation rows × 4 weight rows, summed
//! over the (padded) depth into exact i32 dot products of signed 8-bit values.
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

/// Weight rows per tile; weight matrices are padded to a multiple of it.
pub(crate) const TILE_COLS: usize = 4;

/// Activation rows per tile (a remainder tile has fewer).
pub(crate) const TILE_ROWS: usize = 4;

/// The portable reference: `out[i][j] = Σ_k a[i·kp + k] · w[j·kp + k]`.
pub(crate) fn tile_scalar(a: &[i8], rows: usize, w: &[i8], kp: usize, out: &mut [[i32; 4]; 4]) {
    for (i, out_row) in out.iter_mut().enumerate().take(rows) {
        let a_row = &a[i * kp..(i + 1) * kp];
        for (j, o) in out_row.iter_mut().enumerate() {
            let w_row = &w[j * kp..(j + 1) * kp];
            *o = a_row
                .iter()
                .zip(w_row)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{tile_avx2, tile_avx512_vnni, tile_avx_vnni};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The lane sums of four registers at once, `[Σ v[0], Σ v[1], Σ v[2], Σ v[3]]`: two
    /// rounds of pairwise adds serve all four, about a third of four separate reductions
    /// (which otherwise cost as much as the products for 512-wide rows).
    #[target_feature(enable = "avx2")]
    fn hsum4_256(v: [__m256i; 4]) -> [i32; 4] {
        let pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        let sums = _mm_add_epi32(
            _mm256_castsi256_si128(pairs),
            _mm256_extracti128_si256::<1>(pairs),
        );
        let mut out = [0i32; 4];
        // SAFETY: `out` is 16 bytes, an unaligned store is allowed.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), sums) };
        out
    }

    /// [`hsum4_256`] for 512-bit registers: their halves are added first.
    #[target_feature(enable = "avx512f,avx2")]
    fn hsum4_512(v: [__m512i; 4]) -> [i32; 4] {
        hsum4_256(v.map(|x| {
            _mm256_add_epi32(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64::<1>(x))
        }))
    }

    /// AVX-512 VNNI: `a_u8` holds the activations plus 128; the result carries
    /// `+128 · Σ_k w[j][k]`, which the caller removes.
    ///
    /// # Safety
    /// The CPU has avx512f, avx512bw and avx512vnni; `a_u8` holds `rows · kp` bytes and `w`
    /// `4 · kp`, with `kp` a multiple of 64.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn tile_avx512_vnni(
        a_u8: &[u8],
        rows: usize,
        w: &[i8],
        kp: usize,
        out: &mut [[i32; 4]; 4],
    ) {
        match rows {
            1 => tile_avx512_n::<1>(a_u8, w, kp, out),
            2 => tile_avx512_n::<2>(a_u8, w, kp, out),
            3 => tile_avx512_n::<3>(a_u8, w, kp, out),
            _ => tile_avx512_n::<4>(a_u8, w, kp, out),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile_avx512_n<const R: usize>(
        a: &[u8],
        w: &[i8],
        kp: usize,
        out: &mut [[i32; 4]; 4],
    ) {
        debug_assert!(a.len() >= R * kp && w.len() >= 4 * kp && kp.is_multiple_of(64));
        let (a, w) = (a.as_ptr(), w.as_ptr());
        let mut acc = [[_mm512_setzero_si512(); 4]; R];
        let mut k = 0;
        while k < kp {
            // SAFETY: k + 64 <= kp, and the slices hold R (resp. 4) rows of kp bytes.
            let wv = unsafe {
                [
                    _mm512_loadu_si512(w.add(k).cast()),
                    _mm512_loadu_si512(w.add(kp + k).cast()),
                    _mm512_loadu_si512(w.add(2 * kp + k).cast()),
                    _mm512_loadu_si512(w.add(3 * kp + k).cast()),
                ]
            };
            for (i, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = unsafe { _mm512_loadu_si512(a.add(i * kp + k).cast()) };
                for (acc, wv) in acc_row.iter_mut().zip(wv) {
                    *acc = _mm512_dpbusd_epi32(*acc, x, wv);
                }
            }
            k += 64;
        }
        for (out_row, acc_row) in out.iter_mut().zip(acc) {
            *out_row = hsum4_512(acc_row);
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
        out: &mut [[i32; 4]; 4],
    ) {
        match rows {
            1 => tile_avx_vnni_n::<1>(a_u8, w, kp, out),
            2 => tile_avx_vnni_n::<2>(a_u8, w, kp, out),
            3 => tile_avx_vnni_n::<3>(a_u8, w, kp, out),
            _ => tile_avx_vnni_n::<4>(a_u8, w, kp, out),
        }
    }

    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn tile_avx_vnni_n<const R: usize>(
        a: &[u8],
        w: &[i8],
        kp: usize,
        out: &mut [[i32; 4]; 4],
    ) {
        debug_assert!(a.len() >= R * kp && w.len() >= 4 * kp && kp.is_multiple_of(32));
        let (a, w) = (a.as_ptr(), w.as_ptr());
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        let mut k = 0;
        while k < kp {
            // SAFETY: k + 32 <= kp, and the slices hold R (resp. 4) rows of kp bytes.
            let wv = unsafe {
                [
                    _mm256_loadu_si256(w.add(k).cast()),
                    _mm256_loadu_si256(w.add(kp + k).cast()),
                    _mm256_loadu_si256(w.add(2 * kp + k).cast()),
                    _mm256_loadu_si256(w.add(3 * kp + k).cast()),
                ]
            };
            for (i, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = unsafe { _mm256_loadu_si256(a.add(i * kp + k).cast()) };
                for (acc, wv) in acc_row.iter_mut().zip(wv) {
                    *acc = _mm256_dpbusd_avx_epi32(*acc, x, wv);
                }
            }
            k += 32;
        }
        for (out_row, acc_row) in out.iter_mut().zip(acc) {
            *out_row = hsum4_256(acc_row);
        }
    }

    /// Plain AVX2 on signed activations with the sign trick; exact, no offset to correct.
    ///
    /// # Safety
    /// The CPU has avx2; `a` holds `rows · kp` bytes and `w` `4 · kp`, with `kp` a multiple
    /// of 32; no value is -128.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn tile_avx2(
        a: &[i8],
        rows: usize,
        w: &[i8],
        kp: usize,
        out: &mut [[i32; 4]; 4],
    ) {
        match rows {
            1 => tile_avx2_n::<1>(a, w, kp, out),
            2 => tile_avx2_n::<2>(a, w, kp, out),
            3 => tile_avx2_n::<3>(a, w, kp, out),
            _ => tile_avx2_n::<4>(a, w, kp, out),
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn tile_avx2_n<const R: usize>(a: &[i8], w: &[i8], kp: usize, out: &mut [[i32; 4]; 4]) {
        debug_assert!(a.len() >= R * kp && w.len() >= 4 * kp && kp.is_multiple_of(32));
        let (a, w) = (a.as_ptr(), w.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        let mut k = 0;
        while k < kp {
            // SAFETY: k + 32 <= kp, and the slices hold R (resp. 4) rows of kp bytes.
            let wv = unsafe {
                [
                    _mm256_loadu_si256(w.add(k).cast()),
                    _mm256_loadu_si256(w.add(kp + k).cast()),
                    _mm256_loadu_si256(w.add(2 * kp + k).cast()),
                    _mm256_loadu_si256(w.add(3 * kp + k).cast()),
                ]
            };
            for (i, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = unsafe { _mm256_loadu_si256(a.add(i * kp + k).cast()) };
                let ax = _mm256_sign_epi8(x, x);
                for (acc, wv) in acc_row.iter_mut().zip(wv) {
                    let pairs = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, x));
                    *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(pairs, ones));
                }
            }
            k += 32;
        }
        for (out_row, acc_row) in out.iter_mut().zip(acc) {
            *out_row = hsum4_256(acc_row);
        }
    }
}
