use super::kernels::{tile_portable, Tile, PANEL, TILE_PANELS, TILE_ROWS};
use super::*;

/// Values in [-2, 2] that vary with `seed`, with no two neighbours alike.
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 1009) as f32 - 504.0) / 252.0)
        .collect()
}

/// `x · wᵀ + bias` in f64, the reference every level must approach.
fn plain_product(
    x: &[f32],
    n: usize,
    w: &[f32],
    rows: usize,
    cols: usize,
    bias: &[f32],
) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * rows);
    for i in 0..n {
        for j in 0..rows {
            let dot: f64 = (0..cols)
                .map(|k| f64::from(x[i * cols + k]) * f64::from(w[j * cols + k]))
                .sum();
            out.push(dot + f64::from(bias[j]));
        }
    }
    out
}

#[test]
fn every_level_gives_the_plain_product_within_rounding() {
    // 37 rows: two whole panels and a partial one; 1..13 activation rows cover every tile
    // height and a second row block's remainder.
    let (rows, cols) = (37, 19);
    let w = values(rows * cols, 1);
    let bias = values(rows, 2);
    let m = PanelMatrix::from_row_major(&w, rows, cols);
    for n in [1, 2, 3, 4, 5, 6, 7, 13] {
        let x = values(n * cols, n);
        let want = plain_product(&x, n, &w, rows, cols, &bias);
        for level in CpuLevel::available() {
            let got = m.matmul_t_at(level, &x, n, Some(&bias));
            for (at, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(*g) - w).abs() < 1e-4,
                    "{level:?}, {n} rows, value {at}: {g} against {w}"
                );
            }
        }
    }
}

#[test]
fn every_level_gives_the_very_bits_of_the_portable_kernel() {
    // Many panels (so that 4-wide groups, their remainders and two jobs all occur) and a
    // depth long enough for rounding to differ if any level summed in another order.
    let (rows, cols) = (16 * 9 + 5, 515);
    let w = values(rows * cols, 3);
    let bias = values(rows, 4);
    let m = PanelMatrix::from_row_major(&w, rows, cols);
    for n in [1, 2, 3, 4, 6, 11, 64] {
        let x = values(n * cols, 10 + n);
        let reference = m.matmul_t_at(CpuLevel::Scalar, &x, n, Some(&bias));
        for level in CpuLevel::available() {
            let got = m.matmul_t_at(level, &x, n, Some(&bias));
            assert!(
                got.iter()
                    .zip(&reference)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{level:?} differs from the portable kernel with {n} rows"
            );
        }
        let unbiased = m.matmul_t_at(CpuLevel::current(), &x, n, None);
        for (at, (u, b)) in unbiased.iter().zip(&reference).enumerate() {
            assert_eq!(u + bias[at % rows], *b, "{n} rows, value {at}");
        }
    }
}

#[test]
fn each_sum_is_one_fused_chain_over_the_depth() {
    // 1 + 2^-24 · k terms: summed in another order, or with separate multiplies and adds,
    // the low bits would differ.
    let depth = 40;
    let x: Vec<f32> = (0..depth).map(|k| 1.0 + k as f32 * f32::EPSILON).collect();
    let w: Vec<f32> = (0..depth * PANEL)
        .map(|i| 1.0 - (i / PANEL) as f32 * f32::EPSILON / 2.0)
        .collect();
    let mut tile: Tile = [[0.0; PANEL * TILE_PANELS]; TILE_ROWS];
    tile_portable(&x, depth, 1, &w, depth * PANEL, 1, depth, &mut tile);
    let mut chain = 0f32;
    for k in 0..depth {
        chain = x[k].mul_add(w[k * PANEL], chain);
    }
    assert_eq!(tile[0][0].to_bits(), chain.to_bits());
}

#[test]
fn a_copied_row_is_the_packed_row() {
    let (rows, cols) = (21, 5);
    let w = values(rows * cols, 5);
    let m = PanelMatrix::from_row_major(&w, rows, cols);
    let mut row = vec![0f32; cols];
    for r in [0, 15, 16, 20] {
        m.copy_row(r, &mut row);
        assert_eq!(row, w[r * cols..(r + 1) * cols], "row {r}");
    }
}

#[test]
fn no_rows_and_no_depth_give_empty_and_bias_only_outputs() {
    let m = PanelMatrix::from_row_major(&values(3 * 4, 6), 3, 4);
    assert!(m.matmul_t(&[], 0, None).is_empty());
    let shallow = PanelMatrix::from_row_major(&[], 3, 0);
    assert_eq!(
        shallow.matmul_t(&[], 2, Some(&[1.0, 2.0, 3.0])),
        vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    );
}
