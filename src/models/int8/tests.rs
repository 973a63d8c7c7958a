use super::*;

/// A deterministic stream of values in [-1, 1) (xorshift), so failures reproduce.
struct Values(u64);

impl Values {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next()).collect()
    }

    fn bytes(&mut self, len: usize) -> Vec<i8> {
        (0..len)
            .map(|_| (self.next() * 127.5).round().clamp(-127.0, 127.0) as i8)
            .collect()
    }
}

#[test]
fn every_kernel_equals_the_scalar_reference_exactly() {
    let levels = CpuLevel::available();
    assert!(levels.contains(&CpuLevel::detected()), "{levels:?}");
    eprintln!("int8 kernels compared on this CPU: {levels:?}");
    let mut values = Values(0x9E37_79B9_7F4A_7C15);
    for kp in [64, 128, 512, 2048] {
        // One packed tile: 64 weight rows of kp bytes, in kernel layout.
        let w = values.bytes(TILE_COLS * kp);
        // Extremes too: ±127 everywhere is the largest pair sum the AVX2 trick must not
        // saturate on.
        let mut a = values.bytes(4 * kp);
        a[..kp].fill(127);
        a[kp..2 * kp].fill(-127);
        let mut w_extreme = w.clone();
        for k in 0..kp {
            w_extreme[kernels::packed_index(0, k, kp)] = -127;
            w_extreme[kernels::packed_index(17, k, kp)] = 127;
        }
        for w in [&w, &w_extreme] {
            // Column sums and the plain dot products, straight from the packing's definition.
            let column = |j: usize| (0..kp).map(move |k| w[kernels::packed_index(j, k, kp)]);
            let sums: Vec<i32> = (0..TILE_COLS)
                .map(|j| column(j).map(i32::from).sum())
                .collect();
            for rows in 1..=4 {
                let mut want: Tile = [[[0; BLOCK_COLS]; TILE_BLOCKS]; TILE_ROWS];
                kernels::tile_scalar(&a, rows, w, kp, &mut want);
                for i in 0..rows {
                    for j in 0..TILE_COLS {
                        let dot: i32 = column(j)
                            .zip(&a[i * kp..(i + 1) * kp])
                            .map(|(x, &y)| i32::from(x) * i32::from(y))
                            .sum();
                        assert_eq!(want[i][j / 16][j % 16], dot, "scalar, row {i} col {j}");
                    }
                }
                let acts = QuantizedActivations {
                    shifted: a.iter().map(|&q| (q as u8) ^ 0x80).collect(),
                    signed: a.clone(),
                    scales: vec![1.0; 4],
                    rows: 4,
                    kp,
                };
                for level in CpuLevel::available() {
                    let mut got: Tile = [[[0; BLOCK_COLS]; TILE_BLOCKS]; TILE_ROWS];
                    run_tile(level, &acts, 0, rows, w, kp, &mut got);
                    if matches!(level, CpuLevel::AvxVnni | CpuLevel::Avx512Vnni) {
                        for row in got.iter_mut().take(rows) {
                            for (j, g) in row.iter_mut().flatten().enumerate() {
                                *g -= 128 * sums[j];
                            }
                        }
                    }
                    assert_eq!(
                        got[..rows],
                        want[..rows],
                        "{} kernel, kp {kp}, {rows} rows",
                        level.name()
                    );
                }
            }
        }
    }
}

#[test]
fn every_level_gives_the_same_product_bit_for_bit() {
    let mut values = Values(42);
    // Shapes with remainders everywhere: rows not a multiple of 16 or 64, cols not of 64, n
    // not of 4.
    let (rows, cols, n) = (83, 100, 7);
    let w = values.vec(rows * cols);
    let x = values.vec(n * cols);
    let bias = values.vec(rows);
    let m = Int8Matrix::quantize(&w, rows, cols);
    let want = m.matmul_t_at(CpuLevel::Scalar, &x, n, Some(&bias));
    for level in CpuLevel::available() {
        let got = m.matmul_t_at(level, &x, n, Some(&bias));
        assert_eq!(got, want, "{} level", level.name());
    }
}

/// The int8 product differs from the f32 one only by quantization: with row scales `sx`,
/// `sw` each value is off by at most half a step, so
/// `|y8 - y| ≤ sx/2 · ‖w‖₁ + sw/2 · ‖x‖₁ + k · sx · sw / 4` (plus f32 rounding).
#[test]
fn int8_product_is_within_the_quantization_bound_of_f32() {
    let mut values = Values(7);
    let (rows, cols, n) = (64, 512, 5);
    let w = values.vec(rows * cols);
    let x = values.vec(n * cols);
    let m = Int8Matrix::quantize(&w, rows, cols);
    let got = m.matmul_t(&x, n, None);
    let (mut err2, mut norm2) = (0f64, 0f64);
    for i in 0..n {
        let xi = &x[i * cols..(i + 1) * cols];
        let sx = xi.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
        let x1: f32 = xi.iter().map(|v| v.abs()).sum();
        for j in 0..rows {
            let wj = &w[j * cols..(j + 1) * cols];
            let sw = wj.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
            let w1: f32 = wj.iter().map(|v| v.abs()).sum();
            let exact: f32 = xi.iter().zip(wj).map(|(a, b)| a * b).sum();
            let bound = sx / 2.0 * w1 + sw / 2.0 * x1 + cols as f32 * sx * sw / 4.0 + 1e-4;
            let diff = (got[i * rows + j] - exact).abs();
            assert!(diff <= bound, "({i}, {j}): off by {diff}, bound {bound}");
            err2 += f64::from(diff).powi(2);
            norm2 += f64::from(exact).powi(2);
        }
    }
    // And in practice far inside the bound: under 1% relative error overall.
    let relative = (err2 / norm2).sqrt();
    assert!(relative < 0.01, "relative error {relative}");
}

#[test]
fn dequantized_rows_are_within_half_a_step() {
    let mut values = Values(3);
    let (rows, cols) = (5, 70);
    let w = values.vec(rows * cols);
    let m = Int8Matrix::quantize(&w, rows, cols);
    let mut row = vec![0f32; cols];
    for r in 0..rows {
        m.dequantize_row(r, &mut row);
        let wr = &w[r * cols..(r + 1) * cols];
        let step = wr.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
        for (got, want) in row.iter().zip(wr) {
            assert!((got - want).abs() <= step / 2.0 + 1e-7);
        }
    }
}

#[test]
fn a_zero_row_quantizes_to_zero_and_multiplies_to_the_bias() {
    let m = Int8Matrix::quantize(&[0.0; 8], 2, 4);
    let out = m.matmul_t(&[1.0, 2.0, 3.0, 4.0], 1, Some(&[0.5, -0.5]));
    assert_eq!(out, vec![0.5, -0.5]);
    let out = m.matmul_t(&[0.0; 4], 1, None);
    assert_eq!(out, vec![0.0, 0.0]);
}

#[test]
fn quantization_rounds_half_away_from_zero_and_clamps_like_round() {
    let mut values = vec![
        0.5f32, -0.5, 1.5, -1.5, 126.5, -126.5, 127.0, -127.0, 0.0, -0.0,
    ];
    values.extend([
        0.49999997f32,
        -0.49999997,
        2.4999998,
        2.5000002,
        f32::MIN_POSITIVE,
    ]);
    let mut rng = Values(11);
    values.extend((0..10_000).map(|_| rng.next() * 127.5));
    for v in values {
        let expected = v.round().clamp(-QMAX, QMAX) as i32;
        assert_eq!(super::round_half_away(v), expected, "{v}");
    }
    assert_eq!(super::round_half_away(f32::NAN), 0);
    assert_eq!(super::round_half_away(1e9), 127);
}
