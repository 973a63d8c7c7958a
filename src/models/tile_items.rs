//! The work items of a product on repacked weight tiles ([`Q4KTiles`](super::q4k_tiles),
//! [`Q6KTiles`](super::q6k_tiles), [`Q8_0VnniTiles`](super::q8_0_vnni_tiles)): one column tile against a group of activation rows each,
//! spread over candle's worker pool (the one its own kernels use), in the order candle's
//! `matmul_tiles` has them: column tile major, so consecutive items reuse one tile from cache;
//! and the shape check and Q8K activation rows that such a product starts from.

/// A `*mut f32` that may cross to the pool's workers: each item writes disjoint outputs.
#[derive(Clone, Copy)]
pub(super) struct Out(pub(super) *mut f32);
// SAFETY: see above; the pointer outlives `execute_chunked`, which returns after every worker.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// Calls `item(tile, first_row, rows, out)` for every column tile `0..tiles` and every group
/// of up to `max_rows` of the `rows` activation rows, `out` pointing at output `(first_row,
/// tile · tile_cols)` of `dst` (row stride `n`). Each call must write only the `rows ×
/// tile_cols` outputs of its own item.
pub(super) fn for_each_item(
    tiles: usize,
    tile_cols: usize,
    rows: usize,
    max_rows: usize,
    n: usize,
    dst: &mut [f32],
    item: impl Fn(usize, usize, usize, *mut f32) + Sync,
) {
    debug_assert!(tiles * tile_cols <= n && dst.len() >= rows * n);
    let row_groups = rows.div_ceil(max_rows);
    let out = Out(dst.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(tiles * row_groups, |range| {
        // The whole wrapper (Sync), not its raw-pointer field, which the closure would capture
        // alone.
        let out = &out;
        for i in range {
            let (t, r0) = (i / row_groups, i % row_groups * max_rows);
            // SAFETY: (r0, t · tile_cols) is inside `dst` (checked above in debug builds; the
            // callers size `dst` as `rows × n`).
            let at = unsafe { out.0.add(r0 * n + t * tile_cols) };
            item(t, r0, max_rows.min(rows - r0), at);
        }
    });
}

/// Checks the shapes of a product of `rows` rows of width `k` (`xs`) against a `(n, k)` weight
/// of `format` in tiles into `dst` (`rows × n`), and quantizes the rows to Q8K blocks (what the
/// Q6K and Q8_0 tile kernels read): `None` when there are no rows.
pub(super) fn q8k_rows_for(
    format: &str,
    (n, k): (usize, usize),
    xs: &[f32],
    rows: usize,
    dst: &[f32],
) -> candle_core::Result<Option<Vec<u8>>> {
    if xs.len() != rows * k || dst.len() != rows * n {
        candle_core::bail!(
            "{format} tiles ({n}, {k}): {} inputs and {} outputs for {rows} rows",
            xs.len(),
            dst.len()
        )
    }
    Ok((rows > 0).then(|| super::q8k_rows::quantize(xs, rows, k)))
}
