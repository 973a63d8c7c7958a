//! A quantized linear layer (`y = x·Wᵀ`, like candle's `QMatMul`) whose result for one input
//! row never depends on the other rows fed with it: what batched decoding needs for its
//! output to equal one-by-one decoding token for token.
//!
//! candle 0.11.1's CPU quantized matmul picks its kernel by the number of rows `m`, and two
//! of its choices would make a row's result depend on how many rows run together (measured by
//! `rows_are_independent_of_the_batch` below, bit for bit):
//! - Q6K weights take the compact `k_quants::matmul` for `m = 1` but the repacked x86 tiles for
//!   `m > 1`; the two sum the same products in a different order. Q6K weights of whole tiles
//!   (the tied output head included) run on [`Q6KTiles`] instead, on every CPU with AVX2,
//!   prompts and decode rows alike: their own arithmetic (one exact integer per block, not
//!   candle's eight parts), each row alone, the same bits at AVX2 and AVX-512; on 8 decode
//!   rows 1.7–2× the rate of the row kernels that reproduced candle's compact kernel. Other
//!   shapes' decode rows go through those [`row_kernels`] (each (row, column) bit for bit what
//!   candle's compact single-row kernel computes), and without AVX2 through
//!   `k_quants::matmul` directly, which computes every (row, column) with the same `vec_dot`
//!   whatever `m` is.
//! - Q4K weights switch to AMX tiles from 32 rows on (on CPUs with AMX). Q4K runs on
//!   [`Q4KTiles`] instead, prompts and decode rows alike, on every CPU with AVX2: one exact
//!   integer per super-block (as ggml's `vec_dot_q4_K_q8_K`), each row alone, the same bits at
//!   AVX2 and AVX-512, from tiles a quarter smaller than candle's (what decoding one sequence
//!   is bound by).
//!
//! - f16/f32 weights are dequantized to a plain matmul, and gemm's kernel for one row differs
//!   from its kernel for several: those rows are fed one at a time.
//!
//! Every other case (Q4K and Q8_0 repacked tiles, the compact kernels of the other formats)
//! computes each row alone already. Measured on AVX-512 VNNI, and on the AVX2 path
//! (`MISTRALRS_FORCE_AVX2=1`), with candle's own kernels (`candle_kernels_by_row_count`): Q6K
//! and f16 differ in up to 1 result in 6 from 2 rows on; Q4K, Q5K, Q8_0 and Q4_0 never.
//!
//! Q8_0 without VNNI, where candle has no tiles and runs one `vec_dot` per row and column (on 8
//! decode rows of a Q8_0 Qwen2.5-1.5B its per-row dot products were 84% of the step; perf, AMD
//! EPYC, AVX2): Q8_0 weights run on [`Q8_0Avx2Tiles`] (8 columns side by side, one exact
//! integer per block), prompts and decode rows alike, tied embeddings used as the output head
//! included: the embeddings are then looked up in the tiles ([`RowLinear::weight_rows`]), held
//! once. Where the level is AVX-512 VNNI, a layer's own Q8_0 weights run on [`Q8_0VnniTiles`]
//! (candle's VNNI tiles' results, faster), and the tied head, whose compact rows the embedding
//! lookup reads, decodes on the [`row_kernels`] (candle's `vec_dot` bits).

use std::sync::Arc;

use candle_core::quantized::k_quants::{self, BlockQ6K};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};

use super::cpu_level::CpuLevel;
use super::q4k_tiles::{self, Q4KTiles};
use super::q6k_tiles::{self, Q6KTiles};
use super::q8_0_avx2_tiles::{self, Q8_0Avx2Tiles};
use super::q8_0_vnni_tiles::{self, Q8_0VnniTiles};
use super::row_kernels;
use super::tile_items::TileWeights;

/// Rows per quantized matmul call in [`RowLinear::forward_rows`]: below every threshold at
/// which candle changes kernel by row count (AMX from 32).
pub(crate) const MAX_ROWS_PER_CALL: usize = 16;

pub(crate) struct RowLinear {
    kind: Kind,
}

enum Kind {
    /// candle's product; the weights are kept for the Q8_0 and Q6K row kernels.
    Candle {
        matmul: QMatMul,
        weights: Option<Arc<QTensor>>,
    },
    /// Q4K: [`Q4KTiles`], one exact integer per super-block in less memory than candle's
    /// tiles, for prompts and decode rows alike.
    Q4KTiles(Q4KTiles),
    /// Q8_0 where the kernels' level is AVX-512 VNNI: [`Q8_0VnniTiles`], the same results as
    /// candle's VNNI tiles, faster, for prompts and decode rows alike.
    Q8_0VnniTiles(Q8_0VnniTiles),
    /// Q8_0 of a layer's own at other levels with AVX2: [`Q8_0Avx2Tiles`], for prompts and
    /// decode rows alike.
    Q8_0Avx2Tiles(Q8_0Avx2Tiles),
    /// Q6K on every CPU with AVX2: [`Q6KTiles`], for prompts and decode rows alike.
    Q6KTiles(Q6KTiles),
}

impl RowLinear {
    pub(crate) fn new(weights: QTensor) -> Result<Self> {
        if weights.dtype() == GgmlDType::Q8_0 && matches!(weights.device(), Device::Cpu) {
            let (n, k) = weights.shape().dims2()?;
            if q8_0_vnni_tiles::supports(n, k) {
                // Only for weights of the layer's own (not tied embeddings, which would then
                // be held twice): the tiles hold everything.
                let tiles = Q8_0VnniTiles::pack(&weights.data()?, n, k)?;
                return Ok(RowLinear {
                    kind: Kind::Q8_0VnniTiles(tiles),
                });
            }
        }
        Self::from_arc(Arc::new(weights))
    }

    /// A layer on weights that something else may hold too (tied embeddings).
    pub(crate) fn from_arc(weights: Arc<QTensor>) -> Result<Self> {
        if weights.dtype() == GgmlDType::Q4K && matches!(weights.device(), Device::Cpu) {
            let (n, k) = weights.shape().dims2()?;
            if q4k_tiles::supports(n, k) {
                // The layer's hold on the compact weights ends here: the tiles hold everything.
                let tiles = Q4KTiles::pack(&weights.data()?, n, k)?;
                return Ok(RowLinear {
                    kind: Kind::Q4KTiles(tiles),
                });
            }
        }
        if weights.dtype() == GgmlDType::Q8_0 && matches!(weights.device(), Device::Cpu) {
            let (n, k) = weights.shape().dims2()?;
            if CpuLevel::current() != CpuLevel::Avx512Vnni && q8_0_avx2_tiles::supports(n, k) {
                // Tied embeddings too: they are then looked up in these tiles.
                let tiles = Q8_0Avx2Tiles::pack(&weights.data()?, n, k)?;
                return Ok(RowLinear {
                    kind: Kind::Q8_0Avx2Tiles(tiles),
                });
            }
        }
        if weights.dtype() == GgmlDType::Q6K && matches!(weights.device(), Device::Cpu) {
            let (n, k) = weights.shape().dims2()?;
            if q6k_tiles::supports(n, k) {
                let tiles = Q6KTiles::pack(&weights.data()?, n, k)?;
                return Ok(RowLinear {
                    kind: Kind::Q6KTiles(tiles),
                });
            }
        }
        let matmul = QMatMul::from_arc(weights.clone())?;
        let weights = matches!(matmul, QMatMul::QTensor(_)).then_some(weights);
        Ok(RowLinear {
            kind: Kind::Candle { matmul, weights },
        })
    }

    /// `xs · Wᵀ` by the fastest kernel for a prompt's rows. That is candle's, except on
    /// polybrief's own tiles (Q4K, Q6K, Q8_0 at AVX-512 VNNI) and for Q8_0 where candle has no
    /// tiles for it (AVX2 without VNNI): there candle's prompt product is one `vec_dot` per row
    /// and column, and the row kernels' tiles are several times faster.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (matmul, weights) = match &self.kind {
            Kind::Q4KTiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Q8_0VnniTiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Q8_0Avx2Tiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Q6KTiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Candle { matmul, weights } => (matmul, weights),
        };
        match weights {
            Some(w) if q8_0_prompts_on_row_kernels(w) && xs.rank() == 2 => {
                let (rows, k) = xs.dims2()?;
                own_matmul(w, &xs.contiguous()?, rows, k)
            }
            _ => matmul.forward(xs),
        }
    }

    /// Whether [`RowLinear::forward`] computes each `(rows, k)` row alone, the same bits
    /// whatever rows run beside it: on polybrief's own kernels (the Q4K and Q6K tiles, Q8_0's
    /// row kernels, each row alone by construction and by their tests). candle's own prompt
    /// kernels pick their arithmetic by the number of rows (the module header), and gemm too.
    pub(crate) fn rows_independent_in_prompts(&self) -> bool {
        match &self.kind {
            Kind::Q4KTiles(_)
            | Kind::Q8_0VnniTiles(_)
            | Kind::Q8_0Avx2Tiles(_)
            | Kind::Q6KTiles(_) => true,
            Kind::Candle {
                weights: Some(w), ..
            } => q8_0_prompts_on_row_kernels(w),
            Kind::Candle { weights: None, .. } => false,
        }
    }

    /// Whether [`RowLinear::weight_rows`] can give the weight's rows: where the layer keeps
    /// them in [`Q6KTiles`] or [`Q8_0Avx2Tiles`] only.
    pub(crate) fn holds_weight_rows(&self) -> bool {
        matches!(self.kind, Kind::Q6KTiles(_) | Kind::Q8_0Avx2Tiles(_))
    }

    /// Rows `ids` of the weight, `(ids.len(), k)`, each exactly as candle's `dequantize`
    /// gives it (tied embeddings looked up in the output head). Only where
    /// [`RowLinear::holds_weight_rows`].
    pub(crate) fn weight_rows(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        match &self.kind {
            Kind::Q6KTiles(tiles) => {
                looked_up_rows(ids, tiles.dims(), device, |r| tiles.dequantize_row(r))
            }
            Kind::Q8_0Avx2Tiles(tiles) => {
                looked_up_rows(ids, tiles.dims(), device, |r| tiles.dequantize_row(r))
            }
            _ => candle_core::bail!("this layer does not keep its weight's rows"),
        }
    }

    /// `xs · Wᵀ` for `(rows, k)` inputs, each row's result independent of the others.
    pub(crate) fn forward_rows(&self, xs: &Tensor) -> Result<Tensor> {
        let (matmul, weights) = match &self.kind {
            Kind::Q4KTiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Q8_0VnniTiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Q8_0Avx2Tiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Q6KTiles(tiles) => return tiles_matmul(tiles, xs),
            Kind::Candle {
                matmul, weights, ..
            } => (matmul, weights),
        };
        let (rows, k) = xs.dims2()?;
        let cpu = matches!(xs.device(), Device::Cpu);
        match weights {
            Some(w) if cpu && own_kernel(w.dtype(), k) => own_matmul(w, &xs.contiguous()?, rows, k),
            Some(w) if w.dtype() == GgmlDType::Q6K && cpu => {
                q6k_matmul(w, &xs.contiguous()?, rows, k)
            }
            Some(_) if rows > MAX_ROWS_PER_CALL => {
                let mut parts = Vec::with_capacity(rows.div_ceil(MAX_ROWS_PER_CALL));
                for start in (0..rows).step_by(MAX_ROWS_PER_CALL) {
                    let len = MAX_ROWS_PER_CALL.min(rows - start);
                    parts.push(matmul.forward(&xs.narrow(0, start, len)?)?);
                }
                Tensor::cat(&parts, 0)
            }
            Some(_) => matmul.forward(xs),
            // f16/f32 weights, dequantized to a plain matmul: gemm picks another kernel for one
            // row than for several, so each row goes alone.
            None if rows > 1 => {
                let parts = (0..rows)
                    .map(|r| matmul.forward(&xs.narrow(0, r, 1)?))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)
            }
            None => matmul.forward(xs),
        }
    }
}

/// Several layers fed the same input (a block's query, key and value projections; its gate
/// and up projections), run as few products as the weights allow: adjacent weights held in
/// [`Q4KTiles`] are packed into one set of tiles, so one product quantizes the input once and
/// wakes the worker pool once for all of them (in a decode step each wake-up ends in a wait for
/// the slowest thread). Each weight's output is what its own [`RowLinear`] gives, bit for bit:
/// tiles hold whole output columns, each computed alone.
pub(crate) struct SharedInputLinear {
    /// The products in order, each with the output widths of the weights it holds.
    groups: Vec<(RowLinear, Vec<usize>)>,
}

impl SharedInputLinear {
    pub(crate) fn new(weights: Vec<QTensor>) -> Result<Self> {
        let mut groups: Vec<(RowLinear, Vec<usize>)> = Vec::new();
        for w in weights {
            let width = w.shape().dims2()?.0;
            let layer = RowLinear::new(w)?;
            match (groups.last_mut(), layer.kind) {
                (Some((previous, widths)), Kind::Q4KTiles(tiles)) if matches!(&previous.kind, Kind::Q4KTiles(p) if p.dims().1 == tiles.dims().1) =>
                {
                    let Kind::Q4KTiles(previous) = &mut previous.kind else {
                        unreachable!("matched above")
                    };
                    previous.append(tiles)?;
                    widths.push(width);
                }
                (_, kind) => groups.push((RowLinear { kind }, vec![width])),
            }
        }
        Ok(SharedInputLinear { groups })
    }

    /// Each weight's [`RowLinear::forward`], in order. For a prompt's many rows each weight
    /// of a packed group runs as its own product over its own columns: its output is then
    /// contiguous, where a slice of the group's output would leave the element-wise operations
    /// after it on strided data (which cost more than the products saved).
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::new();
        for (layer, widths) in &self.groups {
            match &layer.kind {
                Kind::Q4KTiles(tiles) if widths.len() > 1 => {
                    let mut start = 0;
                    for &width in widths {
                        outputs.push(tiles_columns_matmul(tiles, xs, start..start + width)?);
                        start += width;
                    }
                }
                _ => outputs.push(layer.forward(xs)?),
            }
        }
        Ok(outputs)
    }

    /// Whether every product computes each prompt row alone
    /// ([`RowLinear::rows_independent_in_prompts`]).
    pub(crate) fn rows_independent_in_prompts(&self) -> bool {
        self.groups
            .iter()
            .all(|(layer, _)| layer.rows_independent_in_prompts())
    }

    /// Each weight's [`RowLinear::forward_rows`], in order: one product per group.
    pub(crate) fn forward_rows(&self, xs: &Tensor) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::new();
        for (layer, widths) in &self.groups {
            let ys = layer.forward_rows(xs)?;
            if widths.len() == 1 {
                outputs.push(ys);
                continue;
            }
            let mut start = 0;
            for &width in widths {
                outputs.push(ys.narrow(candle_core::D::Minus1, start, width)?);
                start += width;
            }
        }
        Ok(outputs)
    }
}

/// `xs · Wᵀ` on weights in tiles, for inputs of any rank whose last dimension is `k`.
fn tiles_matmul<T: TileWeights>(tiles: &T, xs: &Tensor) -> Result<Tensor> {
    let (n, k) = tiles.dims();
    on_rows(xs, T::FORMAT, (n, k), n, |lhs, rows, dst| {
        tiles.matmul(lhs, rows, dst)
    })
}

/// [`tiles_matmul`] for the output columns `columns` only (one weight of several packed
/// together, [`SharedInputLinear`]).
fn tiles_columns_matmul<T: TileWeights>(
    tiles: &T,
    xs: &Tensor,
    columns: std::ops::Range<usize>,
) -> Result<Tensor> {
    let (n, k) = tiles.dims();
    on_rows(xs, T::FORMAT, (n, k), columns.len(), |lhs, rows, dst| {
        tiles.matmul_columns(lhs, rows, columns, dst)
    })
}

/// Rows `ids` of a `(n, k)` weight, `(ids.len(), k)`, each from `dequantize_row`; an id past
/// the vocabulary is an error naming it.
fn looked_up_rows(
    ids: &[u32],
    (n, k): (usize, usize),
    device: &Device,
    dequantize_row: impl Fn(usize) -> Result<Vec<f32>>,
) -> Result<Tensor> {
    let mut rows = Vec::with_capacity(ids.len() * k);
    for &id in ids {
        if id as usize >= n {
            candle_core::bail!("token id {id} is outside the vocabulary of {n}")
        }
        rows.extend(dequantize_row(id as usize)?);
    }
    Tensor::from_vec(rows, (ids.len(), k), device)
}

/// Runs `product(lhs, rows, dst)` of a `(n, k)` `dtype` weight on `xs`'s rows (any rank, last
/// dimension `k`) into `width` outputs a row, and returns them in `xs`'s shape with the last
/// dimension `width`.
fn on_rows(
    xs: &Tensor,
    dtype: &str,
    (n, k): (usize, usize),
    width: usize,
    product: impl FnOnce(&[f32], usize, &mut [f32]) -> Result<()>,
) -> Result<Tensor> {
    let mut out_dims = xs.dims().to_vec();
    if out_dims.last() != Some(&k) {
        candle_core::bail!(
            "input of shape {:?} for {dtype} weights of shape ({n}, {k})",
            xs.dims()
        )
    }
    let rows = xs.elem_count() / k;
    let lhs = xs.flatten_all()?.to_vec1::<f32>()?;
    let mut dst = vec![0f32; rows * width];
    product(&lhs, rows, &mut dst)?;
    *out_dims.last_mut().expect("checked above") = width;
    Tensor::from_vec(dst, out_dims, xs.device())
}

/// Whether decode rows of `dtype` weights go through polybrief's [`row_kernels`]: Q6K and
/// Q8_0 whenever the CPU has them. For Q6K candle's alternative is one compact `vec_dot` per
/// row; for Q8_0 it is one `vec_dot` per row and column without VNNI, and with VNNI its
/// repacked tiles, which read one sequence's weights far slower than the row kernel's single
/// prefetched stream: Qwen2.5-1.5B Q8_0 decoded 14.3–16.2 tok/s on them against 19.1–22.9
/// (AMD EPYC Zen 4, AVX-512 VNNI, 2 threads; scripts/bench/README.md, "Session 15").
fn own_kernel(dtype: GgmlDType, k: usize) -> bool {
    row_kernels::supports(dtype, k) && matches!(dtype, GgmlDType::Q6K | GgmlDType::Q8_0)
}

/// Whether [`RowLinear::forward`] runs `w`'s prompt products on the [`row_kernels`]: Q8_0 on
/// the CPU where candle has no VNNI tiles for it (its VNNI tiles read prompts faster).
fn q8_0_prompts_on_row_kernels(w: &QTensor) -> bool {
    w.dtype() == GgmlDType::Q8_0
        && matches!(w.device(), Device::Cpu)
        && !candle_has_vnni_tiles()
        && w.shape()
            .dims2()
            .is_ok_and(|(_, k)| own_kernel(GgmlDType::Q8_0, k))
}

/// Whether candle 0.11.1 runs Q8_0 products on its repacked VNNI tiles (`repack_x86::level`:
/// AVX-512 VNNI or AVX-VNNI, unless `MISTRALRS_FORCE_AVX2=1`, and AVX-VNNI also where
/// `MISTRALRS_FORCE_AVXVNNI=1`; its plain-AVX2 tiles cannot take Q8_0's full byte range).
/// Mirrors candle's own choice, switches included: with `MISTRALRS_FORCE_AVX2=1` on a VNNI
/// CPU, candle runs Q8_0 one `vec_dot` per row and column, and prompts go to the row kernels.
pub(super) fn candle_has_vnni_tiles() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let forced = |name: &str| std::env::var(name).as_deref() == Ok("1");
        if forced("MISTRALRS_FORCE_AVX2") {
            return false;
        }
        let avx512 = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni");
        let avxvnni = forced("MISTRALRS_FORCE_AVXVNNI") || is_x86_feature_detected!("avxvnni");
        avx512 || (avxvnni && is_x86_feature_detected!("avx2"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `xs · Wᵀ` by [`row_kernels::matmul`].
fn own_matmul(w: &QTensor, xs: &Tensor, rows: usize, k: usize) -> Result<Tensor> {
    let (n, wk) = w.shape().dims2()?;
    if wk != k {
        candle_core::bail!("input of width {k} for weights of shape ({n}, {wk})")
    }
    let lhs = xs.flatten_all()?.to_vec1::<f32>()?;
    let mut dst = vec![0f32; rows * n];
    row_kernels::matmul(w.dtype(), &w.data()?, (rows, k, n), &lhs, &mut dst)?;
    Tensor::from_vec(dst, (rows, n), xs.device())
}

/// candle's compact Q6K matmul, called directly so that it runs for any number of rows.
fn q6k_matmul(w: &QTensor, xs: &Tensor, rows: usize, k: usize) -> Result<Tensor> {
    let (n, wk) = w.shape().dims2()?;
    if wk != k {
        candle_core::bail!("input of width {k} for weights of shape ({n}, {wk})")
    }
    let data = w.data()?;
    let block = std::mem::size_of::<BlockQ6K>();
    let aligned = (data.as_ptr() as usize).is_multiple_of(std::mem::align_of::<BlockQ6K>());
    if !data.len().is_multiple_of(block) || !aligned {
        candle_core::bail!("Q6K weights are not a whole number of aligned blocks")
    }
    // SAFETY: CPU storage of a Q6K tensor is a `Vec<BlockQ6K>` (size and alignment checked
    // above); `data` borrows it for the duration of this call.
    let blocks: &[BlockQ6K] =
        unsafe { std::slice::from_raw_parts(data.as_ptr() as *const BlockQ6K, data.len() / block) };
    let lhs = xs.flatten_all()?.to_vec1::<f32>()?;
    let mut dst = vec![0f32; rows * n];
    k_quants::matmul((rows, k, n), &lhs, blocks, &mut dst)?;
    Tensor::from_vec(dst, (rows, n), xs.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cpu_level::CpuLevel;

    /// Each row of an `m`-row product by `product`, compared bit for bit with the same row
    /// alone.
    fn differing(product: impl Fn(&Tensor) -> Result<Tensor>, k: usize, m: usize) -> usize {
        let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
        let run = |x: &Tensor| product(x).unwrap().to_vec2::<f32>().unwrap();
        let all = run(&x);
        (0..m)
            .map(|r| {
                let one = run(&x.narrow(0, r, 1).unwrap());
                one[0]
                    .iter()
                    .zip(&all[r])
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count()
            })
            .sum()
    }

    const DTYPES: [GgmlDType; 6] = [
        GgmlDType::Q4K,
        GgmlDType::Q6K,
        GgmlDType::Q8_0,
        GgmlDType::Q5K,
        GgmlDType::Q4_0,
        GgmlDType::F16,
    ];

    #[test]
    fn rows_are_independent_of_the_batch() {
        // Shapes the repacked kernels accept (k a multiple of 256, n of 16) and one they do
        // not; row counts around every tile size (4, 16) and the AMX threshold (32).
        for (k, n) in [(512, 160), (256, 40)] {
            for dtype in DTYPES {
                let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
                let linear = RowLinear::new(QTensor::quantize(&w, dtype).unwrap()).unwrap();
                for m in [2, 3, 4, 5, 8, 16, 17, 33] {
                    assert_eq!(
                        differing(|x| linear.forward_rows(x), k, m),
                        0,
                        "{dtype:?} ({n}, {k}), {m} rows"
                    );
                }
            }
        }
    }

    #[test]
    fn prompt_rows_are_independent_where_the_layer_says_so() {
        // Row counts around the tiles (4, 8) and Q8_0's switch to its prompt tiles (64).
        for dtype in DTYPES {
            let (k, n) = (512, 160);
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            let linear = RowLinear::new(QTensor::quantize(&w, dtype).unwrap()).unwrap();
            let claimed = linear.rows_independent_in_prompts();
            // Where polybrief's own kernels run the prompt products (at the AVX2 level the Q4K,
            // Q6K and Q8_0 tiles of a layer's own weights), the claim is made.
            if CpuLevel::current() == CpuLevel::Avx2 {
                let own = matches!(dtype, GgmlDType::Q4K | GgmlDType::Q6K | GgmlDType::Q8_0);
                assert_eq!(claimed, own, "{dtype:?}");
            }
            if !claimed {
                continue;
            }
            for m in [2, 3, 5, 9, 63, 64, 70] {
                assert_eq!(
                    differing(|x| linear.forward(x), k, m),
                    0,
                    "{dtype:?}, {m} rows"
                );
            }
        }
    }

    #[test]
    fn weights_packed_together_give_each_weights_own_results_bit_for_bit() {
        let k = 512;
        let weights: Vec<Tensor> = [48, 16, 32]
            .into_iter()
            .map(|n| Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap())
            .collect();
        // Q4K, Q4K, then Q6K: the first two share a product, the third runs alone.
        let dtypes = [GgmlDType::Q4K, GgmlDType::Q4K, GgmlDType::Q6K];
        let quantized = || -> Vec<QTensor> {
            weights
                .iter()
                .zip(dtypes)
                .map(|(w, dtype)| QTensor::quantize(w, dtype).unwrap())
                .collect()
        };
        let shared = SharedInputLinear::new(quantized()).unwrap();
        let alone: Vec<RowLinear> = quantized()
            .into_iter()
            .map(|w| RowLinear::new(w).unwrap())
            .collect();
        let bits = |t: &Tensor| -> Vec<u32> {
            let t = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            t.into_iter().map(f32::to_bits).collect()
        };
        for m in [1, 3, 8] {
            let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
            let prompt = shared.forward(&x).unwrap();
            let rows = shared.forward_rows(&x).unwrap();
            assert_eq!((prompt.len(), rows.len()), (3, 3));
            for (i, layer) in alone.iter().enumerate() {
                assert_eq!(
                    bits(&prompt[i]),
                    bits(&layer.forward(&x).unwrap()),
                    "{i}, {m}"
                );
                assert_eq!(
                    bits(&rows[i]),
                    bits(&layer.forward_rows(&x).unwrap()),
                    "{i}, {m}"
                );
            }
        }
    }

    #[test]
    fn prompt_products_of_q4k_agree_with_candles() {
        // Q4K's and Q6K's tiles compute their own arithmetic, one exact integer per
        // super-block: their tests hold them to a plain reference bit for bit, and to candle
        // within rounding. Here: a prompt's `(1, rows, k)` shape as the model feeds it.
        let (k, n) = (512, 160);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let w = Arc::new(QTensor::quantize(&w, GgmlDType::Q4K).unwrap());
        let candle = QMatMul::from_arc(w.clone()).unwrap();
        let linear = RowLinear::from_arc(w).unwrap();
        for rows in [2, 5, 9] {
            let x = Tensor::randn(0f32, 1.0, (1, rows, k), &Device::Cpu).unwrap();
            let ours = linear.forward(&x).unwrap();
            assert_eq!(ours.dims(), &[1, rows, n]);
            let values = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
            let (ours, theirs) = (values(ours), values(candle.forward(&x).unwrap()));
            let largest = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * largest,
                    "{rows} rows, result {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn weight_rows_are_the_dequantized_rows_where_the_layer_keeps_them() {
        let (n, k) = (48, 512);
        for dtype in [GgmlDType::Q6K, GgmlDType::Q8_0] {
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            let w = QTensor::quantize(&w, dtype).unwrap();
            let want = w.dequantize(&Device::Cpu).unwrap();
            let linear = RowLinear::from_arc(Arc::new(w)).unwrap();
            if !linear.holds_weight_rows() {
                assert!(linear.weight_rows(&[0], &Device::Cpu).is_err());
                continue;
            }
            let ids = [5u32, 0, 47, 5];
            let got = linear.weight_rows(&ids, &Device::Cpu).unwrap();
            let want = want
                .index_select(&Tensor::new(&ids[..], &Device::Cpu).unwrap(), 0)
                .unwrap();
            let bits = |t: &Tensor| -> Vec<u32> {
                let t = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                t.into_iter().map(f32::to_bits).collect()
            };
            assert_eq!(bits(&got), bits(&want), "{dtype:?}");
            let err = linear.weight_rows(&[48], &Device::Cpu).unwrap_err();
            // candle's messages carry a backtrace after the first line where one is enabled.
            assert_eq!(
                err.to_string().lines().next(),
                Some("token id 48 is outside the vocabulary of 48")
            );
        }
    }

    /// What the module header states about candle's kernels: if an update makes Q6K or f16
    /// rows independent, or breaks another format's, this says so.
    #[test]
    fn candle_kernels_by_row_count() {
        for dtype in DTYPES {
            let (k, n) = (512, 160);
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            // candle's own kernel, whatever `RowLinear` routes elsewhere.
            let candle = QMatMul::from_qtensor(QTensor::quantize(&w, dtype).unwrap()).unwrap();
            let differ: usize = [2, 5, 17]
                .into_iter()
                .map(|m| differing(|x| candle.forward(x), k, m))
                .sum();
            let depends = matches!(dtype, GgmlDType::Q6K | GgmlDType::F16);
            let repacked_q6k =
                !(cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("avx2"));
            if depends && !(dtype == GgmlDType::Q6K && repacked_q6k) {
                assert!(differ > 0, "{dtype:?}: rows came out independent");
            } else if !depends {
                assert_eq!(differ, 0, "{dtype:?}: rows depend on each other");
            }
        }
    }
}
