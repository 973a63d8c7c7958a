//! What the repacked weight tile formats ([`Q4KTiles`](super::q4k_tiles),
//! [`Q6KTiles`](super::q6k_tiles), [`Q8_0VnniTiles`](super::q8_0_vnni_tiles),
//! [`Q8_0Avx2Tiles`](super::q8_0_avx2_tiles)) share: the face a layer sees of each
//! ([`TileWeights`]); the work items of a product, one column tile against a group of
//! activation rows each, spread over candle's worker pool (the one its own kernels use), in the
//! order candle's `matmul_tiles` has them: column tile major, so consecutive items reuse one
//! tile from cache; each item run by the tile format's kernel for its number of rows; and the
//! checks of a product's shapes and columns, which every format's product runs before its own
//! quantizing and kernels (the trait's provided methods).

use std::ops::Range;

use super::cpu_level::Width;

/// A weight repacked into tiles by one of the formats above, which computes its own products:
/// what a layer needs of it, whatever the format. A format says how it quantizes activation
/// rows and runs its kernels; the checks around them are the same for all.
pub(crate) trait TileWeights {
    /// The format's name, for messages.
    const FORMAT: &'static str;
    /// Output columns per tile.
    const TILE_COLS: usize;
    /// Activation rows as the format's kernels read them.
    type Rows;

    /// `(n, k)`.
    fn dims(&self) -> (usize, usize);

    /// `rows` rows of width `k` (`xs`, row-major), quantized for the kernels.
    fn quantize_rows(xs: &[f32], rows: usize, k: usize) -> Self::Rows;

    /// The kernels of `width` on `rows` quantized rows against output columns `columns`
    /// (whole tiles, inside the weight), into `dst` (`rows × columns.len()`): what
    /// [`TileWeights::matmul_columns_at`] runs once it has checked the shapes.
    #[cfg(target_arch = "x86_64")]
    fn run_kernels(
        &self,
        act: &Self::Rows,
        rows: usize,
        columns: Range<usize>,
        dst: &mut [f32],
        width: Width,
    );

    /// `dst = xs · Wᵀ` for `rows` rows of width `k` (`xs`, row-major); `dst` is `(rows, n)`.
    /// Each row's results are computed alone: the same bits whatever rows run beside it.
    fn matmul(&self, xs: &[f32], rows: usize, dst: &mut [f32]) -> candle_core::Result<()> {
        self.matmul_columns(xs, rows, 0..self.dims().0, dst)
    }

    /// [`TileWeights::matmul`] for output columns `columns` only (whole tiles); `dst` is
    /// `(rows, columns.len())`.
    fn matmul_columns(
        &self,
        xs: &[f32],
        rows: usize,
        columns: Range<usize>,
        dst: &mut [f32],
    ) -> candle_core::Result<()> {
        self.matmul_columns_at(xs, rows, columns, dst, Width::current())
    }

    /// [`TileWeights::matmul_columns`] on the kernels of the given width (the same bits).
    fn matmul_columns_at(
        &self,
        xs: &[f32],
        rows: usize,
        columns: Range<usize>,
        dst: &mut [f32],
        width: Width,
    ) -> candle_core::Result<()> {
        let (n, k) = self.dims();
        if columns.end > n
            || !columns.start.is_multiple_of(Self::TILE_COLS)
            || !columns.len().is_multiple_of(Self::TILE_COLS)
        {
            candle_core::bail!(
                "{} tiles ({n}, {k}): no whole tiles for columns {columns:?}",
                Self::FORMAT
            )
        }
        if xs.len() != rows * k || dst.len() != rows * columns.len() {
            candle_core::bail!(
                "{} tiles ({n}, {k}): {} inputs and {} outputs for {rows} rows of columns \
                 {columns:?}",
                Self::FORMAT,
                xs.len(),
                dst.len()
            )
        }
        if rows == 0 || columns.is_empty() {
            return Ok(());
        }
        let act = Self::quantize_rows(xs, rows, k);
        #[cfg(target_arch = "x86_64")]
        self.run_kernels(&act, rows, columns, dst, width);
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (act, width);
            unreachable!("no tile format is supported off x86")
        }
        Ok(())
    }
}

/// A `*mut f32` that may cross to the pool's workers: each item writes disjoint outputs.
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: see above; the pointer outlives `execute_chunked`, which returns after every worker.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// A tile kernel for `R` activation rows against one column tile: `(tiles, act, factors, kb,
/// out, n)`, the column tile's `kb` weight tiles, the rows' activations (`kb` tiles' worth
/// each: Q8K blocks, or Q8_0 blocks for `q8_0_avx2_tiles`) and their
/// per-block factors (of the tile format's type `F`), its `R × tile_cols` results written from
/// `out` with row stride `n`.
pub(super) type TileKernel<T, F = f32> = unsafe fn(&[T], &[u8], &[F], usize, *mut f32, usize);

/// `dst = act · Wᵀ` on `W`'s column tiles (`tiles`: `n / tile_cols` column tiles of `kb` tiles
/// each): for every column tile and every group of up to `N` of the `rows` activation rows, the
/// kernel for the group's size (`kernels[size - 1]`) on the column tile, the group's rows of
/// `act` (`block_bytes` bytes of activations per row and weight tile: one Q8K block where the
/// tiles span 256 values) and their `factors_per_block` factors per block of `factors`; `dst`
/// is `rows × n`.
///
/// # Safety
/// Every kernel must be able to run on this CPU (the callers check its target features).
pub(super) unsafe fn run_tile_kernels<T: Sync, F: Sync, const N: usize>(
    (tiles, tile_cols): (&[T], usize),
    (act, block_bytes): (&[u8], usize),
    (factors, factors_per_block): (&[F], usize),
    (rows, kb, n): (usize, usize, usize),
    dst: &mut [f32],
    kernels: [TileKernel<T, F>; N],
) {
    let column_tiles = n / tile_cols;
    debug_assert!(
        tiles.len() == column_tiles * kb
            && act.len() >= rows * kb * block_bytes
            && factors.len() >= rows * kb * factors_per_block
            && dst.len() >= rows * n
    );
    let row_groups = rows.div_ceil(N);
    let out = Out(dst.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(column_tiles * row_groups, |range| {
        // The whole wrapper (Sync), not its raw-pointer field, which the closure would capture
        // alone.
        let out = &out;
        for i in range {
            let (t, r0) = (i / row_groups, i % row_groups * N);
            let size = N.min(rows - r0);
            let row_blocks = r0 * kb..(r0 + size) * kb;
            // SAFETY: the kernel runs here (the caller's promise); (r0, t · tile_cols) is inside
            // `dst` (checked above in debug builds; the callers size `dst` as `rows × n`), and
            // this item alone writes its `size × tile_cols` outputs.
            unsafe {
                kernels[size - 1](
                    &tiles[t * kb..(t + 1) * kb],
                    &act[row_blocks.start * block_bytes..row_blocks.end * block_bytes],
                    &factors
                        [row_blocks.start * factors_per_block..row_blocks.end * factors_per_block],
                    kb,
                    out.0.add(r0 * n + t * tile_cols),
                    n,
                )
            }
        }
    });
}

/// How far ahead of the quants it reads a tile kernel asks for the next bytes in a decode step
/// ([`ask_ahead`], one request per 64-byte line read). Decoding one sequence reads every weight
/// once per step and is bound by how many misses a core keeps in flight; the hardware
/// prefetcher alone kept too few (the same measure took the Q8_0 row kernel from ~17 to ~33
/// GB/s, `row_kernels.rs`). Two Q6K tiles ahead (6,912 bytes) measured the same.
pub(super) const PREFETCH: usize = 2048;

/// Asks for the line [`PREFETCH`] bytes after `at`: a hint only, which never faults, also past
/// the end of the tiles.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn ask_ahead(at: *const u8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch reads nothing and never faults (SSE, in every x86_64).
    unsafe { _mm_prefetch(at.wrapping_add(PREFETCH) as *const i8, _MM_HINT_T0) }
}

/// The tiles of output columns `columns` (whole tiles of `tile_cols` columns) of a weight laid
/// out column tile after column tile, `spans` tiles each.
pub(super) fn column_tiles<'a, T>(
    tiles: &'a [T],
    columns: &Range<usize>,
    (tile_cols, spans): (usize, usize),
) -> &'a [T] {
    &tiles[columns.start / tile_cols * spans..columns.end / tile_cols * spans]
}

/// Checks that `weights` (the raw bytes a repacking starts from) hold a `(n, k)` weight of
/// `format`: `k / values` blocks of `bytes` bytes for each of its `n` rows.
pub(super) fn check_weight_bytes(
    format: &str,
    weights: &[u8],
    (n, k): (usize, usize),
    (values, bytes): (usize, usize),
) -> candle_core::Result<()> {
    let expected = n * (k / values) * bytes;
    if weights.len() != expected {
        candle_core::bail!(
            "{} bytes of {format} weights for ({n}, {k}): {expected} expected",
            weights.len()
        )
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod test_support {
    use candle_core::quantized::QMatMul;
    use candle_core::{Device, Module, Tensor};

    use crate::models::cpu_level::Width;

    /// The kernel widths this CPU runs: AVX2, and AVX-512 where the level is AVX-512 VNNI.
    pub(in crate::models) fn widths() -> Vec<Width> {
        let mut widths = vec![Width::Avx2];
        if Width::current() == Width::Avx512 {
            widths.push(Width::Avx512);
        }
        widths
    }

    /// `rows` random rows of width `k`, row-major.
    pub(in crate::models) fn random_rows(rows: usize, k: usize) -> Vec<f32> {
        Tensor::randn(0f32, 1.0, (rows, k), &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// Asserts that each of `rows` random rows of width `k` gets the same `n` results from
    /// `ours(xs, rows)` among the others as alone (`ours(row, 1)`), bit for bit.
    pub(in crate::models) fn assert_rows_alone(
        (n, k): (usize, usize),
        rows: usize,
        ours: impl Fn(&[f32], usize) -> Vec<f32>,
    ) {
        let x = random_rows(rows, k);
        let all = ours(&x, rows);
        for r in 0..rows {
            let one = ours(&x[r * k..(r + 1) * k], 1);
            assert!(
                one.iter()
                    .zip(&all[r * n..(r + 1) * n])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "row {r} of {rows}"
            );
        }
    }

    /// Asserts that `got` is `expected` bit for bit (`what` names the case).
    pub(in crate::models) fn assert_same_bits(expected: &[f32], got: &[f32], what: &str) {
        assert_eq!(expected.len(), got.len(), "{what}");
        let differ = expected
            .iter()
            .zip(got)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{what}: {differ} of {} results differ",
            got.len()
        );
    }

    /// Prints the multiply-accumulates per second of `product(copy, xs, rows, dst)` of a
    /// `(n, k)` weight on this machine's pool, for a 512-row prompt and one decode step of 8
    /// sequences and of one: three rounds each, every round repeated long enough (about 2·10⁹
    /// multiply-accumulates, at least 3 and at most 200 products) that timer noise does not
    /// decide it. The products cycle through `copies` copies of the weight (`copy` in
    /// `0..copies`): enough of them that a copy is gone from the last-level cache when it comes
    /// round again, as in a decode step, which reads every layer's weights once. One copy,
    /// repeated, stays in a 32 MiB cache and measures another machine.
    pub(in crate::models) fn print_tile_rates(
        (n, k): (usize, usize),
        copies: usize,
        mut product: impl FnMut(usize, &[f32], usize, &mut [f32]),
    ) {
        for rows in [512, 8, 1] {
            let x: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut dst = vec![0f32; rows * n];
            let reps = (2_000_000_000 / (rows * n * k)).clamp(3, 200);
            for copy in 0..copies {
                product(copy, &x, rows, &mut dst);
            }
            let rates: Vec<String> = (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    for rep in 0..reps {
                        product(rep % copies, &x, rows, &mut dst);
                    }
                    let s = t.elapsed().as_secs_f64() / reps as f64;
                    format!("{:.1}", (rows * n * k) as f64 / s / 1e9)
                })
                .collect();
            eprintln!("{rows}x{k} . {n}x{k}: {} GMAC/s", rates.join(" "));
        }
    }

    /// Asserts that `dequantize_row(r)` gives each row of the weight `w` exactly as candle's
    /// `dequantize` does, and refuses the row past the last.
    pub(in crate::models) fn assert_dequantized_rows(
        w: &candle_core::quantized::QTensor,
        dequantize_row: impl Fn(usize) -> candle_core::Result<Vec<f32>>,
    ) {
        let want = w
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (r, want) in want.iter().enumerate() {
            assert_same_bits(want, &dequantize_row(r).unwrap(), &format!("row {r}"));
        }
        assert!(dequantize_row(want.len()).is_err());
    }

    /// candle's `QMatMul` results for random activations of `rows` rows of width `k`, and the
    /// activations (row-major).
    fn candles_product(candle: &QMatMul, k: usize, rows: usize) -> (Vec<f32>, Vec<f32>) {
        let x = Tensor::randn(0f32, 1.0, (rows, k), &Device::Cpu).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (values(&candle.forward(&x).unwrap()), values(&x))
    }

    /// Asserts that `ours(xs, rows)` gives candle's `QMatMul` results bit for bit, for random
    /// activations of width `k` in each of `row_counts` rows.
    pub(in crate::models) fn assert_candles_bits(
        candle: &QMatMul,
        k: usize,
        row_counts: &[usize],
        ours: impl Fn(&[f32], usize) -> Vec<f32>,
    ) {
        for &rows in row_counts {
            let (expected, xs) = candles_product(candle, k, rows);
            assert_same_bits(&expected, &ours(&xs, rows), &format!("{rows} rows"));
        }
    }

    /// Asserts that `ours(xs, rows)` is within 1e-5 of the largest of candle's `QMatMul`
    /// results for random activations of `rows` rows of width `k`: the same quantized inputs
    /// and exact integer sums, float steps that round elsewhere.
    pub(in crate::models) fn assert_close_to_candles(
        candle: &QMatMul,
        k: usize,
        rows: usize,
        ours: impl Fn(&[f32], usize) -> Vec<f32>,
    ) {
        let (expected, xs) = candles_product(candle, k, rows);
        let got = ours(&xs, rows);
        let largest = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in expected.iter().zip(&got).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * largest,
                "result {i}: candle {a}, ours {b}"
            );
        }
    }
}
