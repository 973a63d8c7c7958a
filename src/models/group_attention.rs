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
//! an add, and every sum runs in fixed lanes in a fixed order: the portable and AVX forms of
//! [`F32x8`] do the same operations, and the AVX-512 entry point runs the AVX form), and a
//! head's result does not depend on which or how many heads share its group.

use super::exp_sum::softmax_numerators_body;

/// Query heads that one pass over a key row (or a block of value rows) serves with their
/// accumulators in registers: 6 heads × 16 lanes is 12 AVX2 registers. Larger groups (7 for
/// Qwen2.5-0.5B) are split into near-equal parts that take turns on each block of keys while
/// it is in L1.
const MAX_PASS: usize = 6;
/// The lanes of every dot product and of every block of value columns: two [`F32x8`].
const LANES: usize = 16;
/// Keys per block: a block of 128-wide rows (16 KB of keys or values) stays in L1 while every
/// part of the group passes over it, beside the next block being prefetched. (On the Zen 3
/// of scripts/bench/README.md's session 12, 16 and 32 keys ran alike, 64 and 128 about 10%
/// slower.)
const KEY_BLOCK: usize = 32;

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
    attend_group_body::<Portable>(q, k, v, n_rep, scratch, out)
}

/// # Safety
/// The CPU has avx512f (which includes avx2).
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
    attend_group_body::<x86::Avx>(q, k, v, n_rep, scratch, out)
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
    attend_group_body::<x86::Avx>(q, k, v, n_rep, scratch, out)
}

/// Eight `f32` lanes, added and multiplied lane by lane with IEEE rounding, never fused: the
/// portable form and the AVX one give the same bits. Written as a type rather than left to
/// the auto-vectoriser, which (tried first) kept the 6 heads' accumulators on the stack or
/// vectorised across heads with shuffles, and ran no faster than head by head.
trait F32x8: Copy {
    fn zero() -> Self;
    fn splat(x: f32) -> Self;
    fn load(x: &[f32; 8]) -> Self;
    fn store(self, x: &mut [f32; 8]);
    fn add(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
}

#[derive(Clone, Copy)]
struct Portable([f32; 8]);

impl F32x8 for Portable {
    #[inline(always)]
    fn zero() -> Self {
        Portable([0.0; 8])
    }
    #[inline(always)]
    fn splat(x: f32) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    fn load(x: &[f32; 8]) -> Self {
        Portable(*x)
    }
    #[inline(always)]
    fn store(self, x: &mut [f32; 8]) {
        *x = self.0;
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        Portable(std::array::from_fn(|l| self.0[l] + other.0[l]))
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        Portable(std::array::from_fn(|l| self.0[l] * other.0[l]))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// AVX's eight lanes. Only `attend_group_avx2` and `attend_group_avx512` run code with
    /// this type (the body is generic over [`super::F32x8`] and each entry point picks its
    /// form), so every method runs where the CPU has AVX; `#[inline(always)]` puts them into
    /// those entry points, where the intrinsics inline.
    #[derive(Clone, Copy)]
    pub(super) struct Avx(__m256);

    impl super::F32x8 for Avx {
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: see the type.
            Avx(unsafe { _mm256_setzero_ps() })
        }
        #[inline(always)]
        fn splat(x: f32) -> Self {
            // SAFETY: see the type.
            Avx(unsafe { _mm256_set1_ps(x) })
        }
        #[inline(always)]
        fn load(x: &[f32; 8]) -> Self {
            // SAFETY: eight floats to read; AVX, see the type.
            Avx(unsafe { _mm256_loadu_ps(x.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, x: &mut [f32; 8]) {
            // SAFETY: eight floats to write; AVX, see the type.
            unsafe { _mm256_storeu_ps(x.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: see the type.
            Avx(unsafe { _mm256_add_ps(self.0, other.0) })
        }
        #[inline(always)]
        fn mul(self, other: Self) -> Self {
            // SAFETY: see the type.
            Avx(unsafe { _mm256_mul_ps(self.0, other.0) })
        }
    }
}

/// Calls `$f::<V, R>($args)` for the pass size `R` given at run time (1 to [`MAX_PASS`]), so
/// that each size gets its own unrolled loops.
macro_rules! with_pass_size {
    ($size:expr, $f:ident::<$v:ident>($($arg:expr),* $(,)?)) => {
        match $size {
            1 => $f::<$v, 1>($($arg),*),
            2 => $f::<$v, 2>($($arg),*),
            3 => $f::<$v, 3>($($arg),*),
            4 => $f::<$v, 4>($($arg),*),
            5 => $f::<$v, 5>($($arg),*),
            6 => $f::<$v, 6>($($arg),*),
            size => unreachable!("a pass of {size} heads"),
        }
    };
}

/// Runs `$body` with `$h` bound to each head index below `$r` (at most [`MAX_PASS`]), written
/// out rather than looped, so that each head's accumulators are named registers.
macro_rules! for_each_head {
    ($r:expr, |$h:ident| $body:block) => {{
        const _: () = assert!(MAX_PASS == 6);
        if 0 < $r {
            let $h = 0;
            $body
        }
        if 1 < $r {
            let $h = 1;
            $body
        }
        if 2 < $r {
            let $h = 2;
            $body
        }
        if 3 < $r {
            let $h = 3;
            $body
        }
        if 4 < $r {
            let $h = 4;
            $body
        }
        if 5 < $r {
            let $h = 5;
            $body
        }
    }};
}

#[inline(always)]
fn attend_group_body<V: F32x8>(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_rep: usize,
    scratch: &mut Vec<f32>,
    out: &mut [f32],
) {
    assert!(
        n_rep > 0 && q.len().is_multiple_of(n_rep),
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
        let (k_block, k_next) = k[t0 * d..].split_at(block * d);
        for (first, size) in passes.clone() {
            let q_pass = &q[first * d..(first + size) * d];
            // The first pass asks for the next block while this one is computed.
            let next = if first == 0 { k_next } else { &[] };
            with_pass_size!(
                size,
                scores_pass::<V>(q_pass, k_block, next, weights, keys, first, t0)
            );
        }
        t0 += block;
    }

    for (row, sum) in weights.chunks_exact_mut(keys).zip(sums.iter_mut()) {
        *sum = softmax_numerators_body(row);
    }

    let mut t0 = 0;
    while t0 < keys {
        let block = KEY_BLOCK.min(keys - t0);
        let (v_block, v_next) = v[t0 * d..].split_at(block * d);
        for (first, size) in passes.clone() {
            let out_pass = &mut out[first * d..(first + size) * d];
            let next = if first == 0 { v_next } else { &[] };
            with_pass_size!(
                size,
                values_pass::<V>(weights, keys, first, t0, v_block, next, out_pass)
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

/// Asks the CPU to bring `row` (if any) into the cache; changes no result.
#[inline(always)]
fn prefetch(row: Option<&[f32]>) {
    #[cfg(target_arch = "x86_64")]
    if let Some(row) = row {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in row.chunks(16) {
            // SAFETY: a prefetch reads nothing architecturally; SSE is in every x86_64 CPU.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// The two halves of 16 lanes.
#[inline(always)]
fn halves(x: &[f32; LANES]) -> (&[f32; 8], &[f32; 8]) {
    let (lo, hi) = x.split_at(8);
    (
        lo.try_into().expect("8 lanes"),
        hi.try_into().expect("8 lanes"),
    )
}

/// `weights[(first + h) · keys + t0 + i] = q[h] · k[i]` for the `R` heads of `q` (`(R, d)`)
/// and every key row `i` of the block `k`: each key row is loaded once for all `R` products,
/// each product summed in 16 lanes (lane `l` takes the elements `≡ l mod 16` in order), the
/// lanes added pairwise, then the columns past the last whole 16.
#[inline(always)]
fn scores_pass<V: F32x8, const R: usize>(
    q: &[f32],
    k: &[f32],
    next: &[f32],
    weights: &mut [f32],
    keys: usize,
    first: usize,
    t0: usize,
) {
    let d = q.len() / R;
    let whole = d / LANES * LANES;
    // Whole chunks as arrays, so that the loop below indexes nothing it must check.
    let qs: [&[[f32; LANES]]; R] =
        std::array::from_fn(|h| q[h * d..h * d + whole].as_chunks::<LANES>().0);
    for (i, key) in k.chunks_exact(d).enumerate() {
        prefetch(next.get(i * d..(i + 1) * d));
        let (kcs, key_rest) = key.as_chunks::<LANES>();
        let mut lo = [V::zero(); R];
        let mut hi = [V::zero(); R];
        for (c, kc) in kcs.iter().enumerate() {
            let (k0, k1) = halves(kc);
            let (k0, k1) = (V::load(k0), V::load(k1));
            for_each_head!(R, |h| {
                let (q0, q1) = halves(&qs[h][c]);
                lo[h] = lo[h].add(V::load(q0).mul(k0));
                hi[h] = hi[h].add(V::load(q1).mul(k1));
            });
        }
        for_each_head!(R, |h| {
            let mut x = [0f32; LANES];
            let (x0, x1) = x.split_at_mut(8);
            lo[h].store(x0.try_into().expect("8 lanes"));
            hi[h].store(x1.try_into().expect("8 lanes"));
            let mut s = pairwise_sum(x);
            for (&a, &b) in q[h * d + whole..(h + 1) * d].iter().zip(key_rest) {
                s += a * b;
            }
            weights[(first + h) * keys + t0 + i] = s;
        });
    }
}

/// `out[h] += Σ_i weights[(first + h) · keys + t0 + i] · v[i]` for the `R` heads of `out`
/// (`(R, d)`) over the value rows of the block `v`, 16 columns at a time with the `R` heads'
/// accumulators in registers across the block: each value row is loaded once for all `R`
/// heads. Each output element is the same sum in key order whatever the block and pass.
#[inline(always)]
fn values_pass<V: F32x8, const R: usize>(
    weights: &[f32],
    keys: usize,
    first: usize,
    t0: usize,
    v: &[f32],
    next: &[f32],
    out: &mut [f32],
) {
    let d = out.len() / R;
    let rows = v.len() / d;
    let ps: [&[f32]; R] = std::array::from_fn(|h| {
        let start = (first + h) * keys + t0;
        &weights[start..start + rows]
    });
    let whole = d / LANES * LANES;
    for c in (0..whole).step_by(LANES) {
        let mut lo = [V::zero(); R];
        let mut hi = [V::zero(); R];
        for_each_head!(R, |h| {
            let o: &[f32; LANES] = out[h * d + c..h * d + c + LANES]
                .try_into()
                .expect("a whole chunk");
            let (o0, o1) = halves(o);
            (lo[h], hi[h]) = (V::load(o0), V::load(o1));
        });
        for (i, row) in v.chunks_exact(d).enumerate() {
            // Column strips of 512-byte rows defeat the hardware prefetchers (waiting on
            // these loads was half the kernel's time without this): the first strip asks
            // for the next block's rows, whole.
            if c == 0 {
                prefetch(next.get(i * d..(i + 1) * d));
            }
            let vc: &[f32; LANES] = row[c..c + LANES].try_into().expect("a whole chunk");
            let (v0, v1) = halves(vc);
            let (v0, v1) = (V::load(v0), V::load(v1));
            for_each_head!(R, |h| {
                let p = V::splat(ps[h][i]);
                lo[h] = lo[h].add(p.mul(v0));
                hi[h] = hi[h].add(p.mul(v1));
            });
        }
        for_each_head!(R, |h| {
            let (o0, o1) = out[h * d + c..h * d + c + LANES].split_at_mut(8);
            lo[h].store(o0.try_into().expect("8 lanes"));
            hi[h].store(o1.try_into().expect("8 lanes"));
        });
    }
    if whole < d {
        for (h, p) in ps.iter().enumerate() {
            for (&p, row) in p.iter().zip(v.chunks_exact(d)) {
                for (o, &x) in out[h * d + whole..(h + 1) * d]
                    .iter_mut()
                    .zip(&row[whole..])
                {
                    *o += p * x;
                }
            }
        }
    }
}

/// The sum of 16 lanes as a tree of vector-wide adds (8 + 8, 4 + 4, 2 + 2, 1 + 1).
#[inline(always)]
fn pairwise_sum(mut x: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            x[l] += x[l + width];
        }
        width /= 2;
    }
    x[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        super::super::quant_blocks::seeded_test_values(seed, n)
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
            attend_group_body::<Portable>(&q, &k, &v, n_rep, &mut Vec::new(), &mut portable);
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

    /// One thread's decode-step attention over a cache too large for any cache level (28
    /// layers × 2 key/value heads of 1,000 positions: 57 MB at head_dim 128), this kernel
    /// against `head_attention::attend_head` run once per query head:
    /// `cargo test --release --lib group_attention_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn group_attention_rate() {
        use super::super::head_attention::attend_head;
        let (layers, n_kv, keys) = (28, 2, 1000);
        for (n_rep, d) in [(6, 128), (7, 64)] {
            let q = case(n_rep, d, 1).0;
            let caches: Vec<(Vec<f32>, Vec<f32>)> = (0..layers * n_kv)
                .map(|i| {
                    (
                        values(keys * d, 2 * i as u64),
                        values(keys * d, 2 * i as u64 + 1),
                    )
                })
                .collect();
            let mut out = vec![0f32; n_rep * d];
            let mut scratch = Vec::new();
            for round in 0..6 {
                let grouped = round % 2 == 0;
                let steps = 20;
                let t = std::time::Instant::now();
                for _ in 0..steps {
                    for (k, v) in &caches {
                        if grouped {
                            attend_group(&q, k, v, n_rep, &mut scratch, &mut out);
                        } else {
                            for (q, out) in q.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
                                out.fill(0.0);
                                attend_head(q, k, v, None, &mut scratch, out);
                            }
                        }
                    }
                }
                let step = t.elapsed().as_secs_f64() / steps as f64;
                let bytes = (2 * layers * n_kv * keys * d * 4) as f64;
                eprintln!(
                    "{n_rep} heads x {d}, {keys} keys, {}: {:.2} ms per step, {:.1} GB/s",
                    if grouped {
                        "attend_group"
                    } else {
                        "attend_head per head"
                    },
                    step * 1e3,
                    bytes / step / 1e9
                );
            }
        }
    }
}
