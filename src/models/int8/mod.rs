//! Int8 matrix products for the CPU: weights quantized once at load, activations on the fly.
//!
//! The scheme is CTranslate2's `int8` compute type (`ops/quantize.cc`, `ops/gemm.cc`):
//! symmetric quantization per output row of the weight (`scale = max|w| / 127`), symmetric
//! quantization per row of the activations, the product accumulated in i32, and the result
//! dequantized with the two row scales. The kernels ([`kernels`]) follow CTranslate2/oneDNN
//! (VNNI with the u8 shift and a precomputed `128 · Σ w` correction) and llama.cpp's ggml
//! (AVX2 with the sign trick); which one runs is decided at run time ([`CpuLevel`]).
//!
//! Hand-written rather than a crate: candle 0.11 has no int8 × int8 matmul (its quantized
//! types multiply against f32 or q8 blocks of 32 with f16 scales, which is neither
//! CTranslate2's per-row scheme nor as fast for Marian's 512-wide rows), and the gemm crate
//! has no integer kernels.

pub(crate) mod kernels;
mod linear;

use rayon::prelude::*;

use super::cpu_level::CpuLevel;
use kernels::{packed_index, Tile, BLOCK_COLS, K_ALIGN, TILE_BLOCKS, TILE_COLS, TILE_ROWS};
pub use linear::Int8Linear;

/// The largest quantized magnitude: -128 is never produced, which the AVX2 sign trick needs.
const QMAX: f32 = 127.0;

/// A `(rows, cols)` f32 matrix quantized to i8 per row, laid out for the kernels: each row
/// padded with zeros to a multiple of 64 bytes, the row count padded to a multiple of 64,
/// packed in blocks of 16 rows ([`kernels::packed_index`]).
#[derive(Clone, Debug)]
pub struct Int8Matrix {
    data: Vec<i8>,
    /// `max|row| / 127` per row (0 for an all-zero row).
    scales: Vec<f32>,
    /// `Σ_k q[row][k]` per padded row: the VNNI kernels' offset correction.
    sums: Vec<i32>,
    rows: usize,
    cols: usize,
    /// Padded row length.
    kp: usize,
}

/// Quantizes `row` into `out` (at least as long) and returns its scale.
#[inline(always)]
fn quantize_row(row: &[f32], out: &mut [i8]) -> f32 {
    let amax = row.iter().fold(0f32, |m, &v| m.max(v.abs()));
    if amax == 0.0 || !amax.is_finite() {
        out[..row.len()].fill(0);
        return if amax.is_finite() { 0.0 } else { f32::NAN };
    }
    let inv = QMAX / amax;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = round_half_away(v * inv) as i8;
    }
    amax / QMAX
}

/// `x.round() as i32` for |x| below 2^31, in instructions that vectorize: `round` is a libm
/// call per value on x86-64 (no instruction rounds half away from zero), which made
/// activation quantization a visible share of a decoding step. Truncation is one instruction,
/// and `x - trunc(x)` is exact, so the result is the same.
#[inline(always)]
pub(crate) fn round_half_away(x: f32) -> i32 {
    // NaN quantizes to 0, as `NaN as i8` did; the clamp keeps the truncation in range.
    // (`as i32` would saturate, which does not vectorize.)
    let x = if x.is_nan() {
        0.0
    } else {
        x.clamp(-QMAX, QMAX)
    };
    // SAFETY: x is finite and within ±127.
    let t = unsafe { x.to_int_unchecked::<i32>() };
    let fraction = x - t as f32;
    t + i32::from(fraction >= 0.5) - i32::from(fraction <= -0.5)
}

impl Int8Matrix {
    /// Quantizes a row-major `(rows, cols)` matrix.
    pub fn quantize(values: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(values.len(), rows * cols, "matrix is not rows × cols");
        let mut matrix = Self::zeros(rows, cols);
        matrix.quantize_rows(0, values);
        matrix
    }

    /// Quantizes a `(rows, cols)` matrix read a block of rows at a time: `read(first, out)`
    /// fills `out` with whole rows from row `first` on. Only one block is held in f32 (for a
    /// 58k × 512 embedding, 2 MB instead of the 119 MB matrix beside its int8 copy).
    pub fn quantize_read<E>(
        rows: usize,
        cols: usize,
        mut read: impl FnMut(usize, &mut [f32]) -> Result<(), E>,
    ) -> Result<Self, E> {
        /// Rows per read: a multiple of the packed blocks, about 2 MB of f32 at d_model 512.
        const READ_ROWS: usize = 64 * BLOCK_COLS;
        let mut matrix = Self::zeros(rows, cols);
        let mut block = vec![0f32; READ_ROWS.min(rows) * cols];
        for first in (0..rows).step_by(READ_ROWS) {
            let values = &mut block[..READ_ROWS.min(rows - first) * cols];
            read(first, values)?;
            matrix.quantize_rows(first, values);
        }
        Ok(matrix)
    }

    /// An all-zero matrix with the padded layout.
    fn zeros(rows: usize, cols: usize) -> Self {
        let kp = cols.div_ceil(K_ALIGN).max(1) * K_ALIGN;
        let padded_rows = rows.div_ceil(TILE_COLS) * TILE_COLS;
        Self {
            data: vec![0i8; padded_rows * kp],
            scales: vec![0f32; padded_rows],
            sums: vec![0i32; padded_rows],
            rows,
            cols,
            kp,
        }
    }

    /// Quantizes and packs rows `first..` from their row-major `values`; `first` is a
    /// multiple of the packed block.
    fn quantize_rows(&mut self, first: usize, values: &[f32]) {
        debug_assert_eq!(first % BLOCK_COLS, 0);
        let (cols, kp) = (self.cols, self.kp);
        let count = values.len().checked_div(cols).unwrap_or(0);
        let blocks = count.div_ceil(BLOCK_COLS);
        let first_block = first / BLOCK_COLS;
        let data = &mut self.data[first_block * BLOCK_COLS * kp..][..blocks * BLOCK_COLS * kp];
        let scales = &mut self.scales[first..][..blocks * BLOCK_COLS];
        let sums = &mut self.sums[first..][..blocks * BLOCK_COLS];
        data.par_chunks_mut(BLOCK_COLS * kp)
            .zip(scales.par_chunks_mut(BLOCK_COLS))
            .zip(sums.par_chunks_mut(BLOCK_COLS))
            .enumerate()
            .for_each(|(block, ((packed, scales), sums))| {
                let mut row = vec![0i8; kp];
                for c in 0..BLOCK_COLS {
                    let j = block * BLOCK_COLS + c;
                    if j >= count {
                        break;
                    }
                    scales[c] = quantize_row(&values[j * cols..(j + 1) * cols], &mut row);
                    sums[c] = row.iter().map(|&q| i32::from(q)).sum();
                    for (k, &q) in row.iter().enumerate() {
                        packed[packed_index(c, k, kp)] = q;
                    }
                }
            });
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held (what the weights cost in memory).
    pub fn bytes(&self) -> usize {
        self.data.len() + 4 * (self.scales.len() + self.sums.len())
    }

    /// Writes the dequantized row `r` into `out` (`cols` long): an embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let scale = self.scales[r];
        for (k, o) in out.iter_mut().enumerate().take(self.cols) {
            *o = f32::from(self.data[packed_index(r, k, self.kp)]) * scale;
        }
    }

    /// `x · self^T (+ bias)` with `x` `(n, cols)` row-major; returns `(n, rows)` row-major,
    /// on the kernels of [`CpuLevel::current`].
    pub fn matmul_t(&self, x: &[f32], n: usize, bias: Option<&[f32]>) -> Vec<f32> {
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
        let acts = QuantizedActivations::new(x, n, self.cols, self.kp, level);
        let tiles = self.data.len() / (TILE_COLS * self.kp).max(1);
        // A few jobs per thread balance the load without many tiny ones.
        let per_job = tiles.div_ceil(4 * rayon::current_num_threads()).max(1);
        let len = n * self.rows;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        let out_addr = out.as_mut_ptr() as usize;
        (0..tiles)
            .into_par_iter()
            .step_by(per_job)
            .for_each(|first| {
                let last = (first + per_job).min(tiles);
                // SAFETY: `out` has room for n × rows values and outlives the loop; this job
                // writes columns 64·first .. 64·last (those below `rows`) of each row, which
                // no other job touches.
                unsafe { self.tile_range(level, &acts, first, last, bias, out_addr as *mut f32) };
            });
        // SAFETY: the jobs together wrote every one of the n × rows values.
        unsafe { out.set_len(len) };
        out
    }

    /// Outputs of weight tiles `first..last` for every activation row, dequantized and
    /// biased, written straight into the `(n, rows)` row-major output at `out`.
    ///
    /// # Safety
    /// `out` points to `n × rows` writable f32 that no one else writes in these columns.
    unsafe fn tile_range(
        &self,
        level: CpuLevel,
        acts: &QuantizedActivations,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        // SAFETY (all): the caller's contract; a level's instructions are present.
        #[cfg(target_arch = "x86_64")]
        match level {
            CpuLevel::Avx512Vnni => {
                return unsafe { self.tile_range_avx512(level, acts, first, last, bias, out) }
            }
            CpuLevel::Avx2 | CpuLevel::AvxVnni => {
                return unsafe { self.tile_range_avx2(level, acts, first, last, bias, out) }
            }
            CpuLevel::Scalar => {}
        }
        unsafe { self.tile_range_any(level, acts, first, last, bias, out) }
    }

    /// [`tile_range`](Self::tile_range) compiled for AVX-512, so that the epilogue's loops
    /// over 16 columns become one register each.
    ///
    /// # Safety
    /// As for `tile_range`; the CPU has avx512f.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn tile_range_avx512(
        &self,
        level: CpuLevel,
        acts: &QuantizedActivations,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.tile_range_any(level, acts, first, last, bias, out) }
    }

    /// [`tile_range`](Self::tile_range) compiled for AVX2.
    ///
    /// # Safety
    /// As for `tile_range`; the CPU has avx2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_range_avx2(
        &self,
        level: CpuLevel,
        acts: &QuantizedActivations,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        // SAFETY: the caller's contract.
        unsafe { self.tile_range_any(level, acts, first, last, bias, out) }
    }

    /// The body of [`tile_range`](Self::tile_range), for whatever instructions its caller
    /// was compiled with. Rust never fuses a multiply and an add on its own, so every
    /// variant computes the same values.
    ///
    /// # Safety
    /// As for `tile_range`.
    #[inline(always)]
    unsafe fn tile_range_any(
        &self,
        level: CpuLevel,
        acts: &QuantizedActivations,
        first: usize,
        last: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
    ) {
        let n = acts.rows;
        let mut tile: Tile = [[[0; BLOCK_COLS]; TILE_BLOCKS]; TILE_ROWS];
        let shifted = !acts.shifted.is_empty();
        // Activation rows in blocks that stay in L2 while the job's weights stream past.
        const ROW_BLOCK: usize = 32;
        for row0 in (0..n).step_by(ROW_BLOCK) {
            let row_end = (row0 + ROW_BLOCK).min(n);
            for t in first..last {
                let w = &self.data[t * TILE_COLS * self.kp..][..TILE_COLS * self.kp];
                for i0 in (row0..row_end).step_by(TILE_ROWS) {
                    let rows = TILE_ROWS.min(row_end - i0);
                    run_tile(level, acts, i0, rows, w, self.kp, &mut tile);
                    for (di, tile_row) in tile.iter().enumerate().take(rows) {
                        let i = i0 + di;
                        for (b, sums) in tile_row.iter().enumerate() {
                            let j0 = t * TILE_COLS + b * BLOCK_COLS;
                            if j0 >= self.rows {
                                break;
                            }
                            let width = BLOCK_COLS.min(self.rows - j0);
                            // Whole blocks of 16: fixed-size arrays the compiler vectorizes.
                            let w_sums: &[i32; BLOCK_COLS] =
                                self.sums[j0..j0 + BLOCK_COLS].try_into().expect("16");
                            let w_scales: &[f32; BLOCK_COLS] =
                                self.scales[j0..j0 + BLOCK_COLS].try_into().expect("16");
                            let a_scale = acts.scales[i];
                            let mut values = [0f32; BLOCK_COLS];
                            for c in 0..BLOCK_COLS {
                                let exact = if shifted {
                                    sums[c] - 128 * w_sums[c]
                                } else {
                                    sums[c]
                                };
                                values[c] = exact as f32 * (a_scale * w_scales[c]);
                            }
                            if width == BLOCK_COLS {
                                // A whole block: fixed-size arrays, so the stores vectorize.
                                // SAFETY: i < n and j0 + 16 <= rows, columns of this job.
                                let dst = unsafe {
                                    &mut *out.add(i * self.rows + j0).cast::<[f32; BLOCK_COLS]>()
                                };
                                match bias {
                                    Some(bias) => {
                                        let bias: &[f32; BLOCK_COLS] =
                                            bias[j0..j0 + BLOCK_COLS].try_into().expect("16");
                                        for c in 0..BLOCK_COLS {
                                            dst[c] = values[c] + bias[c];
                                        }
                                    }
                                    None => {
                                        for c in 0..BLOCK_COLS {
                                            dst[c] = values[c] + 0.0;
                                        }
                                    }
                                }
                                continue;
                            }
                            // SAFETY: i < n and j0 + width <= rows, columns of this job.
                            let dst = unsafe {
                                std::slice::from_raw_parts_mut(out.add(i * self.rows + j0), width)
                            };
                            match bias {
                                Some(bias) => {
                                    for ((d, v), b) in dst.iter_mut().zip(values).zip(&bias[j0..]) {
                                        *d = v + b;
                                    }
                                }
                                None => {
                                    for (d, v) in dst.iter_mut().zip(values) {
                                        *d = v + 0.0;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Activations quantized per row, padded like the weights; for the VNNI levels also shifted
/// into u8 (`q + 128`).
struct QuantizedActivations {
    signed: Vec<i8>,
    shifted: Vec<u8>,
    scales: Vec<f32>,
    rows: usize,
    kp: usize,
}

impl QuantizedActivations {
    fn new(x: &[f32], rows: usize, cols: usize, kp: usize, level: CpuLevel) -> Self {
        let signed = vec![0i8; rows * kp];
        let scales = vec![0f32; rows];
        let shifted = match level {
            CpuLevel::AvxVnni | CpuLevel::Avx512Vnni => vec![0u8; rows * kp],
            CpuLevel::Scalar | CpuLevel::Avx2 => Vec::new(),
        };
        let mut acts = Self {
            signed,
            shifted,
            scales,
            rows,
            kp,
        };
        // The same arithmetic on every level; the wider registers only make it faster (this
        // runs for every linear layer of every decoding step).
        #[cfg(target_arch = "x86_64")]
        match level {
            // SAFETY: a level is only reported where the CPU has its instructions.
            CpuLevel::Avx512Vnni => unsafe { acts.quantize_avx512(x, cols) },
            CpuLevel::Avx2 | CpuLevel::AvxVnni => unsafe { acts.quantize_avx2(x, cols) },
            CpuLevel::Scalar => acts.quantize(x, cols),
        }
        #[cfg(not(target_arch = "x86_64"))]
        acts.quantize(x, cols);
        acts
    }

    /// Fills `signed` and `scales` (and `shifted`, `q + 128`, where the level uses it).
    #[inline(always)]
    fn quantize(&mut self, x: &[f32], cols: usize) {
        for (r, ((out, scale), row)) in self
            .signed
            .chunks_mut(self.kp)
            .zip(self.scales.iter_mut())
            .zip(x.chunks(cols.max(1)))
            .enumerate()
        {
            *scale = quantize_row(row, out);
            if !self.shifted.is_empty() {
                for (u, &q) in self.shifted[r * self.kp..(r + 1) * self.kp]
                    .iter_mut()
                    .zip(&*out)
                {
                    *u = (q as u8) ^ 0x80;
                }
            }
        }
    }

    /// # Safety
    /// The CPU has avx512f and avx512bw.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn quantize_avx512(&mut self, x: &[f32], cols: usize) {
        self.quantize(x, cols)
    }

    /// # Safety
    /// The CPU has avx2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn quantize_avx2(&mut self, x: &[f32], cols: usize) {
        self.quantize(x, cols)
    }
}

/// Runs one tile on `level`'s kernel: activation rows `i0..i0 + rows` against the 64 packed
/// weight rows `w`. VNNI results still carry the `+128 · Σ w` offset.
fn run_tile(
    level: CpuLevel,
    acts: &QuantizedActivations,
    i0: usize,
    rows: usize,
    w: &[i8],
    kp: usize,
    tile: &mut Tile,
) {
    debug_assert_eq!(acts.kp, kp);
    let signed = &acts.signed[i0 * kp..(i0 + rows) * kp];
    match level {
        CpuLevel::Scalar => kernels::tile_scalar(signed, rows, w, kp, tile),
        #[cfg(target_arch = "x86_64")]
        // SAFETY (all three): `CpuLevel::current`/`available` only yield a level whose
        // instructions the CPU has; the slices hold `rows` rows (resp. one tile) of `kp` bytes, kp a
        // multiple of 64; quantization never produces -128.
        CpuLevel::Avx2 => unsafe { kernels::tile_avx2(signed, rows, w, kp, tile) },
        #[cfg(target_arch = "x86_64")]
        CpuLevel::AvxVnni => unsafe {
            kernels::tile_avx_vnni(&acts.shifted[i0 * kp..(i0 + rows) * kp], rows, w, kp, tile)
        },
        #[cfg(target_arch = "x86_64")]
        CpuLevel::Avx512Vnni => unsafe {
            kernels::tile_avx512_vnni(&acts.shifted[i0 * kp..(i0 + rows) * kp], rows, w, kp, tile)
        },
        #[cfg(not(target_arch = "x86_64"))]
        _ => kernels::tile_scalar(signed, rows, w, kp, tile),
    }
}

#[cfg(test)]
mod tests;
