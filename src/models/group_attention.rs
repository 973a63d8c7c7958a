//! Attention of a group of query heads that share one key/value head, one query row each:
//! the decode step of Qwen2's grouped-query attention (`qwen2_batched`), on plain `f32`
//! slices.
//!
//! Why hand-written: Qwen2.5 gives each key/value head 6 (1.5B) or 7 (0.5B) query heads, and
//! a decode step's attention is bound by reading the cache (about 1 MB of keys and values per
//! head per layer at 1,000 positions, twice a core's L2), not by arithmetic. Attending head by
//! head (`head_attention`, which Marian keeps) reads every key and value row once per query
//! head; here each key row, and each block of value rows, is read once for the whole group:
//! the group's dot products with a key run in one pass over it, and the group's weighted sums
//! of a block of values run with all their accumulators in registers. candle would repeat the
//! cache per query head (`repeat_kv`) and run a gemm per head; llama.cpp's CPU path also
//! attends head by head. The softmax takes Cephes' vectorised exp of `exp_sum` (libm's `expf`
//! is one scalar call per key), and each head's sums are divided by its normaliser once at
//! the end instead of every weight being divided on the way. Measured against
//! `head_attention::attend_head` under `attend_rows_cpu` (scripts/bench/README.md,
//! "Session 12").
//!
//! The result is the same bit for bit on every CPU level (Rust never contracts a multiply and
//! an add, and every sum runs in fixed lanes in a fixed order: the AVX-512 and AVX2 entry
//! points only widen the registers), and a head's result does not depend on which or how many
//! heads share its group.

use super::exp_sum::exp_in_place_body;

/// Query heads that one pass over a key row (or a block of value rows) serves with their
/// accumulators in registers: 6 heads × 16 lanes is 12 AVX2 registers. Larger groups (7 for
/// Qwen2.5-0.5B) are split into near-equal parts that take turns on each block of keys while
/// it is in L1.
const MAX_PASS: usize = 6;
/// The lanes of every dot product and of every block of value columns.
const LANES: usize = 16;
/// Keys per block: a block of 128-wide rows (32 KB of keys or values) stays in L1/L2 while
/// every part of the group passes over it.
const KEY_BLOCK: usize = 64;

/// `out[h] = softmax(q[h] · kᵀ) · v` for each of the `n_rep` query heads of one key/value
/// head: `q` and `out` are `(n_rep, head_dim)`, `k` and `v` `(keys, head_dim)`, all
/// row-major; `q` is already scaled (by 1/√head_dim), and `out` is overwritten. `scratch`
/// holds the weights between the passes.
///
/// Dispatched on the kernels' own [`CpuLevel`](super::cpu_level::CpuLevel), so that
/// `POLYBRIEF_CPU_LEVEL=avx2` measures the AVX2 code on an AVX-512 machine.
pub(crate) fn attend_group(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_rep: usize,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::cpu_level::CpuLevel;
        match CpuLevel::current() {
            // SAFETY: a level is only reported where the CPU has its instructions.
            CpuLevel::Avx512Vnni => {
                return unsafe { attend_group_avx512(q, k, v, n_rep, scratch, out) }
            }
            CpuLevel::Avx2 | CpuLevel::AvxVnni => {
                return unsafe { attend_group_avx2(q, k, v, n_rep, scratch, out) }
            }
            CpuLevel::Scalar => {}
        }
    }
    attend_group_body(q, k, v, n_rep, scratch, out)
}

/// # Safety
/// The CPU has avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_group_avx512(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_rep: usize,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    attend_group_body(q, k, v, n_rep, scratch, out)
}

/// # Safety
/// The CPU has avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn attend_group_avx2(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_rep: usize,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    attend_group_body(q, k, v, n_rep, scratch, out)
}

/// Calls `$f::<R>($args)` for the pass size `R` given at run time (1 to [`MAX_PASS`]), so
/// that each size gets its own unrolled loops.
macro_rules! with_pass_size {
    ($size:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $size {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            size => unreachable!("a pass of {size} heads"),
        }
    };
}

#[inline(always)]
fn attend_group_body(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_rep: usize,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    assert!(
        n_rep > 0 && q.len() % n_rep == 0,
        "{} values for {n_rep} heads",
        q.len()
    );
    let d = q.len() / n_rep;
    let keys = k.len() / d;
    assert!(
        d > 0 && k.len() == keys * d && v.len() == k.len() && out.len() == q.len(),
        "q {}, k {}, v {}, out {} for head_dim {d}",
        q.len(),
        k.len(),
        v.len(),
        out.len()
    );
    out.fill(0.0);
    if keys == 0 {
        return;
    }
    // The group in near-equal passes of at most MAX_PASS heads: (first head, heads).
    let n_pass = n_rep.div_ceil(MAX_PASS);
    let passes = (0..n_pass).map(|p| {
        let (first, end) = (p * n_rep / n_pass, (p + 1) * n_rep / n_pass);
        (first, end - first)
    });
    // Weights `(n_rep, keys)`, then one normaliser per head.
    scratch.clear();
    scratch.resize(n_rep * keys + n_rep, 0.0);
    let (weights, sums) = scratch.split_at_mut(n_rep * keys);

    let mut t0 = 0;
    while t0 < keys {
        let block = KEY_BLOCK.min(keys - t0);
        let k_block = &k[t0 * d..(t0 + block) * d];
        for (first, size) in passes.clone() {
            let q_pass = &q[first * d..(first + size) * d];
            with_pass_size!(size, scores_pass(q_pass, k_block, weights, keys, first, t0));
        }
        t0 += block;
    }

    for (row, sum) in weights.chunks_exact_mut(keys).zip(sums.iter_mut()) {
        let max = max_of(row);
        *sum = exp_in_place_body(row, max);
    }

    let mut t0 = 0;
    while t0 < keys {
        let block = KEY_BLOCK.min(keys - t0);
        let v_block = &v[t0 * d..(t0 + block) * d];
        for (first, size) in passes.clone() {
            let out_pass = &mut out[first * d..(first + size) * d];
            with_pass_size!(
                size,
                values_pass(weights, keys, first, t0, v_block, out_pass)
            );
        }
        t0 += block;
    }

    for (row, &sum) in out.chunks_exact_mut(d).zip(sums.iter()) {
        for o in row {
            *o /= sum;
        }
    }
}

/// `weights[(first + h) · keys + t0 + i] = q[h] · k[i]` for the `R` heads of `q` (`(R, d)`)
/// and every key row `i` of the block `k`: each key row is loaded once for all `R` products,
/// each product summed in 16 lanes (lane `l` takes the elements `≡ l mod 16` in order), the
/// lanes added pairwise, then the columns past the last whole 16.
#[inline(always)]
fn scores_pass<const R: usize>(
    q: &[f32],
    k: &[f32],
    weights: &mut [f32],
    keys: usize,
    first: usize,
    t0: usize,
) {
    let d = q.len() / R;
    let whole = d / LANES * LANES;
    for (i, key) in k.chunks_exact(d).enumerate() {
        let mut acc = [[0f32; LANES]; R];
        for c in (0..whole).step_by(LANES) {
            let kc: &[f32; LANES] = key[c..c + LANES].try_into().expect("a whole chunk");
            for (h, acc) in acc.iter_mut().enumerate() {
                let qc: &[f32; LANES] = q[h * d + c..h * d + c + LANES]
                    .try_into()
                    .expect("a whole chunk");
                for l in 0..LANES {
                    acc[l] += qc[l] * kc[l];
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            let mut s = pairwise_sum(acc);
            for j in whole..d {
                s += q[h * d + j] * key[j];
            }
            weights[(first + h) * keys + t0 + i] = s;
        }
    }
}

/// `out[h] += Σ_i weights[(first + h) · keys + t0 + i] · v[i]` for the `R` heads of `out`
/// (`(R, d)`) over the value rows of the block `v`, 16 columns at a time with the `R` heads'
/// accumulators in registers across the block: each value row is loaded once for all `R`
/// heads. Each output element is the same sum in key order whatever the block and pass.
#[inline(always)]
fn values_pass<const R: usize>(
    weights: &[f32],
    keys: usize,
    first: usize,
    t0: usize,
    v: &[f32],
    out: &mut [f32],
) {
    let d = out.len() / R;
    let rows = v.len() / d;
    let weight = |h: usize, i: usize| weights[(first + h) * keys + t0 + i];
    let whole = d / LANES * LANES;
    for c in (0..whole).step_by(LANES) {
        let mut acc = [[0f32; LANES]; R];
        for (h, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&out[h * d + c..h * d + c + LANES]);
        }
        for i in 0..rows {
            let vc: &[f32; LANES] = v[i * d + c..i * d + c + LANES]
                .try_into()
                .expect("a whole chunk");
            for (h, acc) in acc.iter_mut().enumerate() {
                let p = weight(h, i);
                for l in 0..LANES {
                    acc[l] += p * vc[l];
                }
            }
        }
        for (h, acc) in acc.iter().enumerate() {
            out[h * d + c..h * d + c + LANES].copy_from_slice(acc);
        }
    }
    if whole < d {
        for h in 0..R {
            for i in 0..rows {
                let p = weight(h, i);
                let row = &v[i * d + whole..(i + 1) * d];
                for (o, &x) in out[h * d + whole..(h + 1) * d].iter_mut().zip(row) {
                    *o += p * x;
                }
            }
        }
    }
}

/// The sum of 16 lanes as a tree of vector-wide adds (8 + 8, 4 + 4, 2 + 2, 1 + 1).
#[inline(always)]
fn pairwise_sum(lanes: &[f32; LANES]) -> f32 {
    let mut x = *lanes;
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            x[l] += x[l + width];
        }
        width /= 2;
    }
    x[0]
}

/// The largest value of `xs` (none NaN), in 16 lanes: the maximum is the same in any order.
#[inline(always)]
fn max_of(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = m.max(x);
        }
    }
    lanes
        .iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in about [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `softmax(q[h] · kᵀ) · v` in f64, per head.
    fn reference(q: &[f32], k: &[f32], v: &[f32], n_rep: usize) -> Vec<f64> {
        let d = q.len() / n_rep;
        let keys = k.len() / d;
        let mut out = vec![0f64; q.len()];
        for h in 0..n_rep {
            let scores: Vec<f64> = (0..keys)
                .map(|t| {
                    (0..d)
                        .map(|j| f64::from(q[h * d + j]) * f64::from(k[t * d + j]))
                        .sum()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let p: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = p.iter().sum();
            for (t, p) in p.iter().enumerate() {
                for j in 0..d {
                    out[h * d + j] += p / sum * f64::from(v[t * d + j]);
                }
            }
        }
        out
    }

    /// A case's inputs: the query scaled by 1/√d as the caller does, and sharper scores
    /// (×4) so that the softmax is far from uniform.
    fn case(n_rep: usize, d: usize, keys: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let scale = 4.0 / (d as f32).sqrt();
        let q = values(n_rep * d, (n_rep * 1000 + d) as u64)
            .into_iter()
            .map(|x| x * scale)
            .collect();
        (
            q,
            values(keys * d, keys as u64 + 7),
            values(keys * d, keys as u64 + 11),
        )
    }

    fn run(q: &[f32], k: &[f32], v: &[f32], n_rep: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; q.len()];
        attend_group(q, k, v, n_rep, &mut Vec::new(), &mut out);
        out
    }

    #[test]
    fn equals_an_f64_softmax_of_scaled_dot_products_times_values() {
        for n_rep in [1, 2, 6, 7, 8, 13] {
            for d in [64, 128, 40] {
                for keys in [1, 7, 8, 9, 1000] {
                    let (q, k, v) = case(n_rep, d, keys);
                    let got = run(&q, &k, &v, n_rep);
                    let want = reference(&q, &k, &v, n_rep);
                    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(g) - w).abs() <= 1e-5 + 1e-5 * w.abs(),
                            "n_rep {n_rep}, d {d}, keys {keys}, element {i}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn output_is_the_same_bit_for_bit_at_every_cpu_level() {
        for (n_rep, d, keys) in [(6, 128, 1000), (7, 64, 333), (8, 40, 9)] {
            let (q, k, v) = case(n_rep, d, keys);
            let mut portable = vec![0f32; q.len()];
            attend_group_body(&q, &k, &v, n_rep, &mut Vec::new(), &mut portable);
            let same = |got: &[f32]| {
                got.iter()
                    .zip(&portable)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            };
            assert!(same(&run(&q, &k, &v, n_rep)), "the dispatched level");
            #[cfg(target_arch = "x86_64")]
            {
                let mut out = vec![0f32; q.len()];
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: checked just above.
                    unsafe { attend_group_avx2(&q, &k, &v, n_rep, &mut Vec::new(), &mut out) };
                    assert!(same(&out), "avx2, n_rep {n_rep}");
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: checked just above.
                    unsafe { attend_group_avx512(&q, &k, &v, n_rep, &mut Vec::new(), &mut out) };
                    assert!(same(&out), "avx512, n_rep {n_rep}");
                }
            }
        }
    }

    #[test]
    fn a_heads_output_does_not_depend_on_the_heads_that_share_its_group() {
        let (n_rep, d, keys) = (7, 128, 150);
        let (q, k, v) = case(n_rep, d, keys);
        let group = run(&q, &k, &v, n_rep);
        for h in 0..n_rep {
            let alone = run(&q[h * d..(h + 1) * d], &k, &v, 1);
            assert!(
                alone
                    .iter()
                    .zip(&group[h * d..(h + 1) * d])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "head {h}"
            );
        }
    }
}
