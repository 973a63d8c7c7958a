//! f32 dot-product kernels: one tile of up to 6 activation rows × up to 4 panels of 16
//! weight rows (output columns), summed over the whole depth.
//!
//! A panel holds, for each depth `k`, its 16 weights side by side ([`super::PanelMatrix`]),
//! so a register (two on AVX2) holds 16 output columns, the activation value `x[i][k]` is
//! broadcast, and one fused multiply-add per register advances 16 column sums: no horizontal
//! reduction, no repacking of either side per call (gemm's microkernel is the same shape, but
//! gemm is handed the weights as a strided matrix and reads one cache line per depth step
//! 2–8 KB apart, which its AVX2 kernel did at 0.4–0.6× of CTranslate2's float32).
//!
//! Every kernel computes each column sum as the same chain, `acc = fma(x[k], w[k], acc)` for
//! `k = 0, 1, …` from 0, so the AVX-512, AVX2 and portable kernels return the same bits (the
//! tests check it), and `POLYBRIEF_CPU_LEVEL` changes speed, not output.

/// Output columns per panel: one AVX-512 register of f32.
pub(crate) const PANEL: usize = 16;

/// The most panels one tile covers.
pub(crate) const TILE_PANELS: usize = 4;

/// The most activation rows one tile covers.
pub(crate) const TILE_ROWS: usize = 6;

/// A tile's sums: `[activation row][column within the tile's panels]`.
pub(crate) type Tile = [[f32; PANEL * TILE_PANELS]; TILE_ROWS];

/// Panels per tile for `rows` rows on AVX2: two for one or two rows (at least four chains
/// of sums, so that the multiply-adds' latency is hidden), one from three rows on, so that
/// accumulators, weights and the broadcast value fit the 16 registers (3 rows × 2 panels
/// spill, and ran at 40% of the 6 × 1 tile's rate).
pub(crate) const fn avx2_panels(rows: usize) -> usize {
    if rows <= 2 {
        2
    } else {
        1
    }
}

/// The portable reference: `out[i][16p + c] = Σ_k x[i·stride + k] · panel_p[16k + c]`, as
/// one fused chain per column, for `rows` rows and `panels` panels starting at `w` (each
/// `16 · depth` values, `panel_len` apart).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tile_portable(
    x: &[f32],
    stride: usize,
    rows: usize,
    w: &[f32],
    panel_len: usize,
    panels: usize,
    depth: usize,
    out: &mut Tile,
) {
    for (i, out_row) in out.iter_mut().enumerate().take(rows) {
        let x_row = &x[i * stride..i * stride + depth];
        for p in 0..panels {
            let panel = &w[p * panel_len..p * panel_len + depth * PANEL];
            let mut acc = [0f32; PANEL];
            for (&xk, wk) in x_row.iter().zip(panel.chunks_exact(PANEL)) {
                for (a, &wv) in acc.iter_mut().zip(wk) {
                    *a = xk.mul_add(wv, *a);
                }
            }
            out_row[p * PANEL..(p + 1) * PANEL].copy_from_slice(&acc);
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{tile_avx2, tile_avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Tile, PANEL, TILE_PANELS};

    /// Fetches depth step `k` (16 values, one 64-byte line) of `P` panels from `next` into
    /// L2.
    #[inline]
    #[target_feature(enable = "sse")]
    fn prefetch<const P: usize>(next: *const f32, panel_len: usize, k: usize) {
        for p in 0..P {
            // A prefetch never faults, wherever it points; wrapping arithmetic keeps the
            // address computation defined.
            _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(p * panel_len + k * PANEL).cast());
        }
    }

    /// AVX-512: `rows` (1–6) rows × `panels` (1–4) panels. With `next` given, the `panels`
    /// panels from there (the next group's weights) are fetched into L2 meanwhile, one line
    /// per panel and depth step, so that the next group's tiles do not wait on memory
    /// (about 12% of an AVX2 beam-4 × 16 run).
    ///
    /// # Safety
    /// The CPU has avx512f; `x` holds `rows` rows of `depth` values `stride` apart, `w`
    /// `panels` panels of `16 · depth` values `panel_len` apart. `next` may point anywhere
    /// (prefetches do not fault).
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn tile_avx512(
        x: *const f32,
        stride: usize,
        rows: usize,
        w: *const f32,
        panel_len: usize,
        panels: usize,
        depth: usize,
        next: Option<*const f32>,
        out: &mut Tile,
    ) {
        // SAFETY (all): the caller's contract.
        unsafe {
            match (rows, panels) {
                (1, 4) => avx512_n::<1, 4>(x, stride, w, panel_len, depth, next, out),
                (2, 4) => avx512_n::<2, 4>(x, stride, w, panel_len, depth, next, out),
                (3, 4) => avx512_n::<3, 4>(x, stride, w, panel_len, depth, next, out),
                (4, 4) => avx512_n::<4, 4>(x, stride, w, panel_len, depth, next, out),
                (5, 4) => avx512_n::<5, 4>(x, stride, w, panel_len, depth, next, out),
                (6, 4) => avx512_n::<6, 4>(x, stride, w, panel_len, depth, next, out),
                (1, _) => avx512_n::<1, 1>(x, stride, w, panel_len, depth, next, out),
                (2, _) => avx512_n::<2, 1>(x, stride, w, panel_len, depth, next, out),
                (3, _) => avx512_n::<3, 1>(x, stride, w, panel_len, depth, next, out),
                (4, _) => avx512_n::<4, 1>(x, stride, w, panel_len, depth, next, out),
                (5, _) => avx512_n::<5, 1>(x, stride, w, panel_len, depth, next, out),
                _ => avx512_n::<6, 1>(x, stride, w, panel_len, depth, next, out),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn avx512_n<const R: usize, const P: usize>(
        x: *const f32,
        stride: usize,
        w: *const f32,
        panel_len: usize,
        depth: usize,
        next: Option<*const f32>,
        out: &mut Tile,
    ) {
        match next {
            // SAFETY (both): the caller's contract.
            Some(next) => unsafe {
                avx512_n_body::<R, P, true>(x, stride, w, panel_len, depth, next, out)
            },
            None => unsafe { avx512_n_body::<R, P, false>(x, stride, w, panel_len, depth, w, out) },
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx512_n_body<const R: usize, const P: usize, const PREFETCH: bool>(
        x: *const f32,
        stride: usize,
        w: *const f32,
        panel_len: usize,
        depth: usize,
        next: *const f32,
        out: &mut Tile,
    ) {
        debug_assert!(P <= TILE_PANELS);
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for k in 0..depth {
            if PREFETCH {
                prefetch::<P>(next, panel_len, k);
            }
            // SAFETY (loads): k < depth, so each read is inside panel p or row i.
            let wv: [__m512; P] = std::array::from_fn(|p| unsafe {
                _mm512_loadu_ps(w.add(p * panel_len + k * PANEL))
            });
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(unsafe { *x.add(i * stride + k) });
                for (a, wv) in acc_row.iter_mut().zip(wv) {
                    *a = _mm512_fmadd_ps(xv, wv, *a);
                }
            }
        }
        for (out_row, acc_row) in out.iter_mut().zip(acc) {
            for (p, a) in acc_row.into_iter().enumerate() {
                // SAFETY: 16 f32 of the tile row.
                unsafe { _mm512_storeu_ps(out_row[p * PANEL..].as_mut_ptr(), a) };
            }
        }
    }

    /// Depth steps (64-byte lines of a panel) ahead of its multiply-adds that the AVX2 kernel
    /// fetches its panels into L1. A 512-deep panel is 32 KB, Zen 3's whole L1, so it does
    /// not stay there beside the rows across a block's tiles and each tile reads it again
    /// from L2; the hardware's prefetch alone left the multiply-adds waiting (the LM head's
    /// product of 64 rows, 2 cores: 155–165 → 174 GFLOPS in a micro-benchmark; in f32 beam
    /// 4 × 16, its time 4.7–5.1 → 4.6–4.7 CPU-seconds). A prefetch never faults, wherever it
    /// points, so the panel's last lines may point past it.
    const L1_AHEAD: usize = 4;

    /// AVX2 with FMA: `rows` (1–6) rows × `panels` panels, `panels` being
    /// [`super::avx2_panels`]`(rows)` or 1.
    ///
    /// # Safety
    /// The CPU has avx2 and fma; slices as for [`tile_avx512`].
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn tile_avx2(
        x: *const f32,
        stride: usize,
        rows: usize,
        w: *const f32,
        panel_len: usize,
        panels: usize,
        depth: usize,
        next: Option<*const f32>,
        out: &mut Tile,
    ) {
        // SAFETY (all): the caller's contract.
        unsafe {
            match (rows, panels) {
                (1, 2) => avx2_n::<1, 2>(x, stride, w, panel_len, depth, next, out),
                (2, 2) => avx2_n::<2, 2>(x, stride, w, panel_len, depth, next, out),
                (1, _) => avx2_n::<1, 1>(x, stride, w, panel_len, depth, next, out),
                (2, _) => avx2_n::<2, 1>(x, stride, w, panel_len, depth, next, out),
                (3, _) => avx2_n::<3, 1>(x, stride, w, panel_len, depth, next, out),
                (4, _) => avx2_n::<4, 1>(x, stride, w, panel_len, depth, next, out),
                (5, _) => avx2_n::<5, 1>(x, stride, w, panel_len, depth, next, out),
                _ => avx2_n::<6, 1>(x, stride, w, panel_len, depth, next, out),
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_n<const R: usize, const P: usize>(
        x: *const f32,
        stride: usize,
        w: *const f32,
        panel_len: usize,
        depth: usize,
        next: Option<*const f32>,
        out: &mut Tile,
    ) {
        match next {
            // SAFETY (both): the caller's contract.
            Some(next) => unsafe {
                avx2_n_body::<R, P, true>(x, stride, w, panel_len, depth, next, out)
            },
            None => unsafe { avx2_n_body::<R, P, false>(x, stride, w, panel_len, depth, w, out) },
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx2_n_body<const R: usize, const P: usize, const PREFETCH: bool>(
        x: *const f32,
        stride: usize,
        w: *const f32,
        panel_len: usize,
        depth: usize,
        next: *const f32,
        out: &mut Tile,
    ) {
        debug_assert!(P <= TILE_PANELS);
        let mut acc = [[[_mm256_setzero_ps(); 2]; P]; R];
        for k in 0..depth {
            if PREFETCH {
                prefetch::<P>(next, panel_len, k);
            }
            // This tile's own panels a few lines ahead, into L1: see `L1_AHEAD`.
            for p in 0..P {
                _mm_prefetch::<_MM_HINT_T0>(
                    w.wrapping_add(p * panel_len + (k + L1_AHEAD) * PANEL)
                        .cast(),
                );
            }
            // SAFETY (loads): k < depth, so each read is inside panel p or row i.
            let wv: [[__m256; 2]; P] = std::array::from_fn(|p| unsafe {
                let at = w.add(p * panel_len + k * PANEL);
                [_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8))]
            });
            for (i, acc_row) in acc.iter_mut().enumerate() {
                let xv = _mm256_set1_ps(unsafe { *x.add(i * stride + k) });
                for (a, wv) in acc_row.iter_mut().zip(wv) {
                    a[0] = _mm256_fmadd_ps(xv, wv[0], a[0]);
                    a[1] = _mm256_fmadd_ps(xv, wv[1], a[1]);
                }
            }
        }
        for (out_row, acc_row) in out.iter_mut().zip(acc) {
            for (p, a) in acc_row.into_iter().enumerate() {
                // SAFETY: 2 × 8 f32 of the tile row.
                unsafe {
                    _mm256_storeu_ps(out_row[p * PANEL..].as_mut_ptr(), a[0]);
                    _mm256_storeu_ps(out_row[p * PANEL + 8..].as_mut_ptr(), a[1]);
                }
            }
        }
    }
}
