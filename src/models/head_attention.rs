//! Attention of one query row of one head over its keys and values, on plain `f32` slices:
//! Marian's decoding step (`marian_step`) and its encoder on the CPU (`marian_encode`) run
//! it, a row at a time through [`attend_rows`]. (Qwen2's decode step attends a whole group
//! of query heads per key/value head at once: `group_attention`.)
//!
//! Why hand-written: in a decoding step there is one query row per head, and candle runs
//! such a product as a gemm call per batch entry (per head) with its setup cost each time,
//! on one thread. A loop of dot products over the keys, compiled for the CPU's vector width,
//! is what CTranslate2 and llama.cpp do for one row too; callers spread heads over threads.

use rayon::prelude::*;

use super::exp_sum::softmax_numerators_body;

/// Below this many multiply-adds an attention runs on the calling thread: fanning out
/// costs more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 15;

/// Runs `one(row, out)` for every query row into a fresh `(rows, d)` buffer, on the thread
/// pool when the `work` (multiply-adds) is worth it.
pub(crate) fn attend_rows(
    rows: usize,
    d: usize,
    work: usize,
    one: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * d];
    if work < PARALLEL_MIN_WORK || rows == 1 {
        out.chunks_exact_mut(d)
            .enumerate()
            .for_each(|(r, o)| one(r, o));
    } else {
        out.par_chunks_exact_mut(d)
            .enumerate()
            .for_each(|(r, o)| one(r, o));
    }
    out
}

/// One head: `out = softmax(q · kᵀ + mask) · v`, `k` and `v` `(keys, head_dim)` row-major;
/// `out` starts at zero. `scores` is scratch space.
///
/// Compiled for the CPU's vector width (the same arithmetic on every level: Rust never fuses
/// a multiply and an add, so only the speed differs); the level is the int8 kernels' own, so
/// that `POLYBRIEF_CPU_LEVEL=avx2` measures the AVX2 code on an AVX-512 machine.
pub(crate) fn attend_head(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::cpu_level::CpuLevel;
        match CpuLevel::current() {
            // SAFETY: a level is only reported where the CPU has its instructions.
            CpuLevel::Avx512Vnni => {
                return unsafe { attend_head_avx512(q, k, v, mask, scores, out) }
            }
            CpuLevel::Avx2 | CpuLevel::AvxVnni => {
                return unsafe { attend_head_avx2(q, k, v, mask, scores, out) }
            }
            CpuLevel::Scalar => {}
        }
    }
    attend_head_body(q, k, v, mask, scores, out)
}

/// # Safety
/// The CPU has avx512f.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_head_avx512(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    attend_head_body(q, k, v, mask, scores, out)
}

/// # Safety
/// The CPU has avx2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn attend_head_avx2(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    attend_head_body(q, k, v, mask, scores, out)
}

#[inline(always)]
fn attend_head_body(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: Option<&[f32]>,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    let keys = k.len() / hd;
    // Index loops rather than iterator adaptors: an adaptor's `fold` is a function of its
    // own that need not be inlined here, and then runs without this function's vector width.
    scores.clear();
    scores.resize(keys, 0.0);
    for (i, s) in scores.iter_mut().enumerate() {
        *s = dot(q, &k[i * hd..(i + 1) * hd]);
    }
    if let Some(mask) = mask {
        for (s, m) in scores.iter_mut().zip(mask) {
            *s += m;
        }
    }
    let sum = softmax_numerators_body(scores);
    // `out += Σ p · v`, a block of columns at a time held in registers across all the keys;
    // each output element is still the same sum in the same order.
    let mut start = 0;
    while start + COLUMN_BLOCK <= hd {
        let block: &mut [f32; COLUMN_BLOCK] = (&mut out[start..start + COLUMN_BLOCK])
            .try_into()
            .expect("a whole block");
        let mut acc = *block;
        for (t, &p) in scores.iter().enumerate() {
            let p = p / sum;
            let row = &v[t * hd + start..][..COLUMN_BLOCK];
            for j in 0..COLUMN_BLOCK {
                acc[j] += p * row[j];
            }
        }
        *block = acc;
        start += COLUMN_BLOCK;
    }
    if start < hd {
        for (t, &p) in scores.iter().enumerate() {
            let p = p / sum;
            let row = &v[t * hd + start..(t + 1) * hd];
            for (o, &x) in out[start..].iter_mut().zip(row) {
                *o += p * x;
            }
        }
    }
}

/// Output columns accumulated together in [`attend_head_body`]: 8 AVX2 registers.
const COLUMN_BLOCK: usize = 64;

/// `Σ a[i] · b[i]` in 16 independent lanes, which the compiler turns into vector code.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (a_main, a_rest) = a.split_at(a.len() / LANES * LANES);
    let (b_main, b_rest) = b.split_at(a_main.len());
    for (ca, cb) in a_main.chunks_exact(LANES).zip(b_main.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += ca[l] * cb[l];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}
