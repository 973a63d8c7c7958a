//! `Σ exp(x - max)` over a row of logits: the normaliser of beam search's log-softmax, taken
//! over the whole target vocabulary (58k tokens for opus-mt) for every hypothesis at every
//! step.
//!
//! Hand-written because libm's `expf` is one scalar call per value and a sequential f32 sum
//! is one long chain of dependent adds: together they were about a tenth of a batched beam-4
//! step. Here `exp` is Cephes' `expf` polynomial (the one most SIMD libraries use), written in
//! plain f32 operations so that the compiler vectorises it, and the sum runs in 16 fixed
//! lanes added in a fixed order. Rust never contracts a multiply and an add into an FMA, so
//! the result is the same bit for bit whatever vector width runs it (the AVX-512 and AVX2
//! entry points only widen the registers): a translation does not depend on the CPU. The
//! polynomial is within 2 ulp of the true exponential on the range that matters
//! (`x - max ≤ 0`); values below e^-87 count as e^-87, which no sum of 58k terms can see.
//! (The crates that offer a vectorised exp either call libm per lane or change with the
//! target's features, which would make beam scores differ between machines.)
//!
//! [`softmax_numerators_body`] is the same loop keeping each exponential, after the row's
//! maximum: the softmaxes of attention (Qwen2's `group_attention` for decode steps and
//! `prompt_attention` for prompts, Marian's `head_attention`) inline it into their own
//! vector-width entry points. [`silu_in_place`] is SiLU, `x / (1 + e^-x)`, on the same
//! exponential: Marian's feed-forward activation, where libm's scalar `expf` was 1.4% of an
//! f32 beam-4 × 16 translation; [`silu_mul`] is Qwen2's, `silu(gate) · up`.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two, so that `x - n·ln2` is exact for the n that occur (Cephes' C1, C2).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5 · 2^23 rounds an f32 of magnitude below 2^22 to an integer.
const ROUNDER: f32 = 12_582_912.0;
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
const LANES: usize = 16;

/// e^x, for finite x up to 88 (larger x are taken as 88; x below -87 as -87).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUNDER) - ROUNDER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((P[0] * r + P[1]) * r + P[2]) * r + P[3]) * r + P[4]) * r + P[5];
    let y = p * (r * r) + r + 1.0;
    // 2^n from its exponent bits. `as i32` would saturate, which does not vectorize; n is an
    // integer within [-126, 127] after the clamp, or NaN (then y is NaN too, and so is the
    // result), which the select turns into 0 first.
    let n = if n.is_nan() { 0.0 } else { n };
    // SAFETY: n is finite and within i32's range.
    let n = unsafe { n.to_int_unchecked::<i32>() };
    y * f32::from_bits(((n + 127) << 23) as u32)
}

#[inline(always)]
fn sum_exp_body(xs: &[f32], max: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += exp(x - max);
        }
    }
    let mut sum = 0f32;
    for lane in lanes {
        sum += lane;
    }
    for &x in rest {
        sum += exp(x - max);
    }
    sum
}

/// `x ← exp(x − m)` for every x of `xs`, `m` their maximum, returning their sum: a softmax's
/// numerators and its normaliser. Inlined so that it runs at the vector width of the caller's
/// entry point (only call it from code compiled for one, or from portable code).
#[inline(always)]
pub(crate) fn softmax_numerators_body(xs: &mut [f32]) -> f32 {
    exp_in_place_body(xs, row_max(xs))
}

/// The largest value of `xs` (NaN ignored, as `fold(f32::max)`; -inf for none), in 16 lanes
/// that vectorize: the maximum is the same in any order. Inlined, as the bodies above, so that
/// it runs at the vector width of its caller.
#[inline(always)]
pub(crate) fn row_max(xs: &[f32]) -> f32 {
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

/// `x ← exp(x - max)` for every x of `xs`, returning their sum: the same exponentials and
/// the same sum, bit for bit, as [`sum_exp`].
#[inline(always)]
fn exp_in_place_body(xs: &mut [f32], max: f32) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *x = exp(*x - max);
            *lane += *x;
        }
    }
    let mut sum = 0f32;
    for lane in lanes {
        sum += lane;
    }
    for x in chunks.into_remainder() {
        *x = exp(*x - max);
        sum += *x;
    }
    sum
}

/// `x ← x / (1 + e^-x)` (SiLU) for every x of `xs`, the same on every CPU. Within a few ulp
/// of the same formula on libm's `expf` (candle's `silu`): e^-x is taken as e^88 below
/// x = -88 and as e^-87 above x = 87, where SiLU is x · e^x (a few 1e-37 at most) and x.
pub(crate) fn silu_in_place(xs: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::cpu_level::CpuLevel;
        match CpuLevel::current() {
            // SAFETY: the level is only reported where the CPU has these instructions.
            CpuLevel::Avx512Vnni => return unsafe { silu_avx512(xs) },
            CpuLevel::Avx2 | CpuLevel::AvxVnni => return unsafe { silu_avx2(xs) },
            CpuLevel::Scalar => {}
        }
    }
    silu_body(xs)
}

/// SiLU of one value: `x / (1 + e^-x)`, as candle writes it.
#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

#[inline(always)]
fn silu_body(xs: &mut [f32]) {
    for x in xs {
        *x = silu(*x);
    }
}

/// `out = silu(gate) · up`, element by element (a SwiGLU MLP's activation), with
/// [`silu_in_place`]'s SiLU, the same on every CPU.
pub(crate) fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::cpu_level::CpuLevel;
        match CpuLevel::current() {
            // SAFETY: the level is only reported where the CPU has these instructions.
            CpuLevel::Avx512Vnni => return unsafe { silu_mul_avx512(gate, up, out) },
            CpuLevel::Avx2 | CpuLevel::AvxVnni => return unsafe { silu_mul_avx2(gate, up, out) },
            CpuLevel::Scalar => {}
        }
    }
    silu_mul_body(gate, up, out)
}

#[inline(always)]
fn silu_mul_body(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu(g) * u;
    }
}

/// # Safety
/// The CPU has avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn silu_mul_avx512(gate: &[f32], up: &[f32], out: &mut [f32]) {
    silu_mul_body(gate, up, out)
}

/// # Safety
/// The CPU has avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn silu_mul_avx2(gate: &[f32], up: &[f32], out: &mut [f32]) {
    silu_mul_body(gate, up, out)
}

/// # Safety
/// The CPU has avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn silu_avx512(xs: &mut [f32]) {
    silu_body(xs)
}

/// # Safety
/// The CPU has avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn silu_avx2(xs: &mut [f32]) {
    silu_body(xs)
}

/// `Σ exp(x - max)` over `xs`, the same on every CPU.
pub(crate) fn sum_exp(xs: &[f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use super::cpu_level::CpuLevel;
        match CpuLevel::current() {
            // SAFETY: the level is only reported where the CPU has these instructions.
            CpuLevel::Avx512Vnni => return unsafe { sum_exp_avx512(xs, max) },
            CpuLevel::Avx2 | CpuLevel::AvxVnni => return unsafe { sum_exp_avx2(xs, max) },
            CpuLevel::Scalar => {}
        }
    }
    sum_exp_body(xs, max)
}

/// # Safety
/// The CPU has avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sum_exp_avx512(xs: &[f32], max: f32) -> f32 {
    sum_exp_body(xs, max)
}

/// # Safety
/// The CPU has avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_exp_avx2(xs: &[f32], max: f32) -> f32 {
    sum_exp_body(xs, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm_on_the_log_softmax_range() {
        let mut x = -87.0f32;
        while x <= 0.5 {
            let (got, want) = (exp(x), x.exp());
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulps <= 2, "exp({x}) = {got}, libm {want}: {ulps} ulp");
            x += 0.000_731;
        }
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn silu_is_within_a_few_ulp_of_libm_and_the_same_on_every_vector_width() {
        let xs: Vec<f32> = (0..40_001).map(|i| i as f32 * 0.005 - 100.0).collect();
        let mut portable = xs.clone();
        silu_body(&mut portable);
        let mut dispatched = xs.clone();
        silu_in_place(&mut dispatched);
        assert_eq!(dispatched, portable);
        for (&x, &got) in xs.iter().zip(&portable) {
            let want = x / (1.0 + (-x).exp());
            if x < -87.0 {
                // SiLU is x · e^x there, below 1e-35: e^-x is capped at e^88.
                assert!(got.abs() < 1e-35 && got <= 0.0, "silu({x}) = {got}");
                continue;
            }
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            assert!(ulps <= 4, "silu({x}) = {got}, libm {want}: {ulps} ulp");
        }
    }

    #[test]
    fn silu_mul_is_silu_times_up_the_same_on_every_vector_width() {
        let gate: Vec<f32> = (0..1_003).map(|i| i as f32 * 0.03 - 15.0).collect();
        let up: Vec<f32> = (0..1_003)
            .map(|i| ((i * 13) % 29) as f32 * 0.1 - 1.4)
            .collect();
        let mut silu = gate.clone();
        silu_body(&mut silu);
        let want: Vec<f32> = silu.iter().zip(&up).map(|(s, u)| s * u).collect();
        let mut portable = vec![0f32; gate.len()];
        silu_mul_body(&gate, &up, &mut portable);
        assert_eq!(portable, want);
        let mut dispatched = vec![0f32; gate.len()];
        silu_mul(&gate, &up, &mut dispatched);
        assert_eq!(dispatched, want);
    }

    #[test]
    fn the_sum_is_the_same_on_every_vector_width() {
        let xs: Vec<f32> = (0..58_101)
            .map(|i| ((i * 7919) % 2003) as f32 * 0.01 - 12.0)
            .collect();
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let portable = sum_exp_body(&xs, max);
        assert_eq!(sum_exp(&xs, max).to_bits(), portable.to_bits());
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: checked just above.
                assert_eq!(
                    unsafe { sum_exp_avx2(&xs, max) }.to_bits(),
                    portable.to_bits()
                );
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: checked just above.
                assert_eq!(
                    unsafe { sum_exp_avx512(&xs, max) }.to_bits(),
                    portable.to_bits()
                );
            }
        }
        let exact: f64 = xs.iter().map(|&x| f64::from(x - max).exp()).sum();
        assert!((f64::from(portable) - exact).abs() / exact < 1e-5);
    }

    #[test]
    fn exp_in_place_keeps_the_exponentials_whose_sum_is_sum_exps() {
        // 37 values: two whole lane blocks and a remainder of 5.
        let xs: Vec<f32> = (0..37)
            .map(|i| ((i * 31) % 17) as f32 * 0.37 - 3.0)
            .collect();
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut kept = xs.clone();
        let sum = exp_in_place_body(&mut kept, max);
        assert_eq!(sum.to_bits(), sum_exp(&xs, max).to_bits());
        for (&e, &x) in kept.iter().zip(&xs) {
            assert_eq!(e.to_bits(), exp(x - max).to_bits());
        }
    }
}
