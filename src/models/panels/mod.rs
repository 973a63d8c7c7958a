//! f32 matrix products for the CPU on weights packed once at load: `x · Wᵀ + b` for the few
//! rows a decoding step has (and the many an encoder pass has), on polybrief's own kernels.
//!
//! The weight `(rows, cols)` is stored as panels of [`PANEL`] rows, each panel `cols × 16`
//! with a depth's 16 weights side by side, the layout CTranslate2 and oneDNN pack their
//! weights into for the same reason: the kernels ([`kernels`]) read each panel front to back
//! exactly once per block of activation rows, with 16 output columns per register.
//!
//! Hand-written rather than gemm (which the f32 path used before): gemm repacks or strides
//! through a weight it is handed per call, and its AVX2 kernel ran Marian's decoding products
//! at 0.59–0.72× of CTranslate2 float32 on an AMD EPYC (scripts/bench/README.md, "Session
//! 6"); candle's matmul is gemm. Which kernel runs is [`CpuLevel::current`]'s choice.

pub(crate) mod kernels;

use rayon::prelude::*;

use super::cpu_level::CpuLevel;
use kernels::{Tile, PANEL, TILE_PANELS, TILE_ROWS};

/// Bytes of activations that a group of panels is multiplied by before the next group: the
/// weights are read from memory once per block of rows, so the block is tall enough that a
/// decoding step's rows are one block at every depth (512 rows at depth 512, 128 at 2,048: a
/// 64-row beam step reads each weight once). At 256 KB, what fits Zen 3's L2, the 64 rows of
/// a beam-4 × 16 step were three blocks at depth 2,048 (30, 30 and 4 rows), each reading the
/// 4 MB weight again; the rows come from L3 now, and that product (the decoder's second
/// feed-forward layer) took 7% less time (0.95–0.96 → 0.88–0.89 CPU-seconds in a run).
const ROW_BLOCK_BYTES: usize = 1 << 20;

/// Rows per block at depth `cols`: a multiple of the tile height.
fn row_block(cols: usize) -> usize {
    (ROW_BLOCK_BYTES / (4 * cols.max(1)) / TILE_ROWS).max(1) * TILE_ROWS
}

/// Panels per tile (and per group of panels that a block's tiles run through together) at
/// `level` for blocks whose tallest tile has `rows` rows.
fn group_panels(level: CpuLevel, rows: usize) -> usize {
    match level {
        CpuLevel::Avx2 | CpuLevel::AvxVnni => kernels::avx2_panels(rows),
        CpuLevel::Scalar | CpuLevel::Avx512Vnni => TILE_PANELS,
    }
}

/// A `(rows, cols)` f32 matrix packed in panels of 16 rows: panel `p`, depth `k`, row
/// `16p + c` at `(p · cols + k) · 16 + c`. The row count is padded with zero rows to a
/// multiple of 16.
#[derive(Debug)]
pub(crate) struct PanelMatrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl PanelMatrix {
    /// Packs a row-major `(rows, cols)` matrix.
    pub(crate) fn from_row_major(values: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(values.len(), rows * cols, "matrix is not rows × cols");
        let panels = rows.div_ceil(PANEL);
        let mut data = vec![0f32; panels * cols * PANEL];
        if cols > 0 {
            data.par_chunks_mut(cols * PANEL)
                .enumerate()
                .for_each(|(p, panel)| {
                    for c in 0..PANEL.min(rows - p * PANEL) {
                        let row = &values[(p * PANEL + c) * cols..][..cols];
                        for (k, &v) in row.iter().enumerate() {
                            panel[k * PANEL + c] = v;
                        }
                    }
                });
        }
        Self { data, rows, cols }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Copies row `r` into `out` (`cols` long): an embedding lookup.
    pub(crate) fn copy_row(&self, r: usize, out: &mut [f32]) {
        let panel = &self.data[(r / PANEL) * self.cols * PANEL..][..self.cols * PANEL];
        for (o, depth) in out.iter_mut().zip(panel.chunks_exact(PANEL)) {
            *o = depth[r % PANEL];
        }
    }

    /// `x · selfᵀ (+ bias)` with `x` `(n, cols)` row-major; returns `(n, rows)` row-major,
    /// on the kernels of [`CpuLevel::current`].
    pub(crate) fn matmul_t(&self, x: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f32> {
        self.matmul_t_at(CpuLevel::current(), x, n, bias)
    }

    /// [`matmul_t`](Self::matmul_t) on the kernels of `level` (which this CPU must have).
    pub(crate) fn matmul_t_at(
        &self,
        level: CpuLevel,
        x: &[f32],
        n: usize,
        bias: Option<&[f32]>,
    ) -> Vec<f32> {
        assert_eq!(x.len(), n * self.cols, "activations are not n × cols");
        if let Some(bias) = bias {
            assert_eq!(bias.len(), self.rows, "one bias per output column");
        }
        let len = n * self.rows;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        if self.cols == 0 {
            out.extend((0..n).flat_map(|_| (0..self.rows).map(|j| bias.map_or(0.0, |b| b[j]))));
            return out;
        }
        let panels = self.rows.div_ceil(PANEL);
        // A few jobs per thread balance the load without many tiny ones; whole groups of
        // panels each, so that every job runs the widest tiles.
        let per_job = panels
            .div_ceil(4 * rayon::current_num_threads())
            .div_ceil(TILE_PANELS)
            .max(1)
            * TILE_PANELS;
        let out_addr = out.as_mut_ptr() as usize;
        (0..panels)
            .into_par_iter()
            .step_by(per_job)
            .for_each(|first| {
                let last = (first + per_job).min(panels);
                // SAFETY: `out` has room for n × rows values and outlives the loop; this job
                // writes columns 16·first .. 16·last (those below `rows`) of each row, which
                // no other job touches.
                unsafe { self.panel_range(level, x, n, first, last, bias, out_addr as *mut f32) };
            });
        // SAFETY: the jobs together wrote every one of the n × rows values.
        unsafe { out.set_len(len) };
        out
    }

    /// Outputs of panels `first..last` for every activation row, biased, written straight
    /// into the `(n, rows)` row-major output at `out`.
    ///
    /// # Safety
    /// `out` points to `n × rows` writable f32 that no one else writes in these columns.
    #[allow(clippy::too_many_arguments)]
    unsafe fn panel_range(
        &self,
        level: CpuLevel,
        x: &[f32],
        n: usize,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        // SAFETY (all): the caller's contract; a level's instructions are present.
        #[cfg(target_arch = "x86_64")]
        match level {
            CpuLevel::Avx512Vnni => {
                return unsafe { self.panel_range_avx512(level, x, n, first, last, bias, out) }
            }
            CpuLevel::Avx2 | CpuLevel::AvxVnni => {
                return unsafe { self.panel_range_avx2(level, x, n, first, last, bias, out) }
            }
            CpuLevel::Scalar => {}
        }
        unsafe { self.panel_range_any(level, x, n, first, last, bias, out) }
    }

    /// [`panel_range`](Self::panel_range) compiled for AVX-512, so that the epilogue's
    /// 16-column loops become one register each.
    ///
    /// # Safety
    /// As for `panel_range`; the CPU has avx512f.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn panel_range_avx512(
        &self,
        level: CpuLevel,
        x: &[f32],
        n: usize,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.panel_range_any(level, x, n, first, last, bias, out) }
    }

    /// [`panel_range`](Self::panel_range) compiled for AVX2.
    ///
    /// # Safety
    /// As for `panel_range`; the CPU has avx2 and fma.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn panel_range_avx2(
        &self,
        level: CpuLevel,
        x: &[f32],
        n: usize,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.panel_range_any(level, x, n, first, last, bias, out) }
    }

    /// The body of [`panel_range`](Self::panel_range), for whatever instructions its caller
    /// was compiled with: rows in blocks, each block against one group of panels at a time
    /// (which stays in L2 while the block's tiles pass; the first tile fetches the next
    /// group meanwhile).
    ///
    /// # Safety
    /// As for `panel_range`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn panel_range_any(
        &self,
        level: CpuLevel,
        x: &[f32],
        n: usize,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        let cols = self.cols;
        let panel_len = cols * PANEL;
        let block = row_block(cols);
        let mut tile: Tile = [[0.0; PANEL * TILE_PANELS]; TILE_ROWS];
        for row0 in (0..n).step_by(block) {
            let row_end = (row0 + block).min(n);
            let width = group_panels(level, TILE_ROWS.min(row_end - row0));
            for group in (first..last).step_by(width) {
                let group_end = (group + width).min(last);
                for i0 in (row0..row_end).step_by(TILE_ROWS) {
                    let rows = TILE_ROWS.min(row_end - i0);
                    let xs = &x[i0 * cols..];
                    let mut p = group;
                    while p < group_end {
                        let panels = if group_end - p == width { width } else { 1 };
                        let w = &self.data[p * panel_len..(p + panels) * panel_len];
                        // The block's first tile fetches the next group (spreading the fetches
                        // over all the block's tiles measured no different).
                        let next = (i0 == row0 && panels == width && group_end < last)
                            .then(|| self.data[group_end * panel_len..].as_ptr());
                        run_tile(level, xs, cols, rows, w, panel_len, panels, next, &mut tile);
                        // SAFETY: rows i0.. i0 + rows < n, panels p.. p + panels of this job.
                        unsafe { self.store(&tile, i0, rows, p, panels, bias, out) };
                        p += panels;
                    }
                }
            }
        }
    }

    /// Adds the bias to a tile's sums and writes them to output rows `i0..i0 + rows`,
    /// columns of panels `p..p + panels` (those below `self.rows`).
    ///
    /// # Safety
    /// As for `panel_range`, with these rows and panels inside the job's.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn store(
        &self,
        tile: &Tile,
        i0: usize,
        rows: usize,
        p: usize,
        panels: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        for (di, tile_row) in tile.iter().enumerate().take(rows) {
            let i = i0 + di;
            for q in 0..panels {
                let j0 = (p + q) * PANEL;
                if j0 >= self.rows {
                    break;
                }
                let sums: &[f32; PANEL] =
                    tile_row[q * PANEL..(q + 1) * PANEL].try_into().expect("16");
                let width = PANEL.min(self.rows - j0);
                if width == PANEL {
                    // A whole panel: fixed-size arrays, so the adds and stores vectorize.
                    // SAFETY: i < n and j0 + 16 <= rows, columns of this job.
                    let dst = unsafe { &mut *out.add(i * self.rows + j0).cast::<[f32; PANEL]>() };
                    match bias {
                        Some(bias) => {
                            let bias: &[f32; PANEL] = bias[j0..j0 + PANEL].try_into().expect("16");
                            for c in 0..PANEL {
                                dst[c] = sums[c] + bias[c];
                            }
                        }
                        None => *dst = *sums,
                    }
                    continue;
                }
                // SAFETY: i < n and j0 + width <= rows, columns of this job.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(out.add(i * self.rows + j0), width) };
                for (c, d) in dst.iter_mut().enumerate() {
                    *d = sums[c] + bias.map_or(0.0, |b| b[j0 + c]);
                }
            }
        }
    }
}

/// Runs one tile on `level`'s kernel: activation rows `x[0..rows]` (`stride` apart) against
/// `panels` packed panels `w`, prefetching the weights at `next` meanwhile.
#[allow(clippy::too_many_arguments)]
fn run_tile(
    level: CpuLevel,
    x: &[f32],
    stride: usize,
    rows: usize,
    w: &[f32],
    panel_len: usize,
    panels: usize,
    next: Option<*const f32>,
    tile: &mut Tile,
) {
    let depth = panel_len / PANEL;
    // The kernels read through raw pointers: this check is what keeps them in bounds.
    assert!(rows >= 1 && x.len() >= (rows - 1) * stride + depth && w.len() >= panels * panel_len);
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY (both): `CpuLevel::current`/`available` only yield a level whose
        // instructions the CPU has; `x` holds the rows and `w` the panels (checked above).
        CpuLevel::Avx512Vnni => unsafe {
            kernels::tile_avx512(
                x.as_ptr(),
                stride,
                rows,
                w.as_ptr(),
                panel_len,
                panels,
                depth,
                next,
                tile,
            )
        },
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx2 | CpuLevel::AvxVnni => unsafe {
            kernels::tile_avx2(
                x.as_ptr(),
                stride,
                rows,
                w.as_ptr(),
                panel_len,
                panels,
                depth,
                next,
                tile,
            )
        },
        _ => kernels::tile_portable(x, stride, rows, w, panel_len, panels, depth, tile),
    }
}

#[cfg(test)]
mod tests;
