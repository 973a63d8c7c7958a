//! A prompt chunk's causal attention on the CPU, `softmax(q · kᵀ / √d) · v` for every query
//! head over the keys it may see, in which each query row's result depends only on its own
//! query and the keys and values up to its position: never on how the prompt was cut into
//! chunks nor on which other rows ran beside it. With the products of the layers also
//! computing each row alone (`RowLinear::rows_independent_in_prompts`), a prompt's keys and
//! values are then the same bits however it is fed, which is what lets a batch take the
//! positions it shares with another prompt from that prompt's cache (`llm::batch`) and still
//! give the replies one-by-one generation gives.
//!
//! Why hand-written: candle's matmul (the gemm crate) sums a row's `p · v` in blocks whose
//! size it derives from the number of keys, so the same query summed its values in another
//! order when the chunk held more or fewer keys; and its scores are a `(heads × chunk × keys)`
//! tensor written, normalized in place (`CausalSoftmax`) and read again. Here an item is one
//! key/value head and a block of query positions, so the `n_rep` query heads that read one key
//! and value head (grouped-query attention) share every key and value row loaded; keys and
//! values stream through in blocks that stay in L1 while all the item's rows use them.
//!
//! Arithmetic per query row (the same for every row, whatever its neighbours): each score is
//! one 8-lane fused multiply-add chain over the head dimension reduced in a fixed order, times
//! `1/√d`; the weights are `exp(s − max)` by [`exp_sum`](super::exp_sum)'s polynomial, summed
//! in its fixed lanes in key order; each output element is one fused multiply-add chain over the keys
//! in order, times `1/sum`. The portable path (CPUs without AVX2 and FMA) does the same sums
//! with separate multiplies and adds: its results are its own, and as independent of the
//! chunking.

use std::ops::Range;

use super::cpu_level::CpuLevel;
use super::exp_sum::softmax_numerators_body;

/// Query positions per work item: with Qwen2.5-1.5B's 6 query heads per key/value head, 96
/// query rows share each key and value row read.
const POSITIONS_PER_ITEM: usize = 16;
/// Keys per block: 64 keys of a 128-wide head are 32 KB (L1).
const KEY_BLOCK: usize = 64;
/// Query rows per register tile.
const ROW_TILE: usize = 4;

/// The shape of one prompt chunk's attention.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkShape {
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
    /// Positions before the chunk: its first query's position.
    pub(crate) past: usize,
    /// Queries in the chunk.
    pub(crate) rows: usize,
    /// Positions each key and value head holds (the cache's stride between heads).
    pub(crate) capacity: usize,
}

/// A `*mut f32` that may cross to the pool's workers: each item writes disjoint outputs.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: see above; the pointer outlives `execute_chunked`, which returns after every worker.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `out` `(rows, heads · head_dim)` = each query's attention over keys `0..=past + row`:
/// `queries` `(heads, rows, head_dim)`, `keys` and `values` `(kv_heads, capacity, head_dim)`
/// with positions `0..past + rows` filled. Query head `h` reads key/value head `h / n_rep`.
pub(crate) fn causal_attention(
    shape: ChunkShape,
    queries: &[f32],
    keys: &[f32],
    values: &[f32],
    out: &mut [f32],
) -> candle_core::Result<()> {
    let ChunkShape {
        heads,
        kv_heads,
        head_dim: d,
        past,
        rows,
        capacity,
    } = shape;
    if kv_heads == 0
        || heads % kv_heads != 0
        || d == 0
        || past + rows > capacity
        || queries.len() < heads * rows * d
        || keys.len() < kv_heads * capacity * d
        || values.len() < kv_heads * capacity * d
        || out.len() < rows * heads * d
    {
        candle_core::bail!("prompt attention: inconsistent shapes {shape:?}")
    }
    let blocks = rows.div_ceil(POSITIONS_PER_ITEM);
    let out_ptr = Out(out.as_mut_ptr());
    let level = Level::current(d);
    candle_core::utils::barrier_pool().execute_chunked(kv_heads * blocks, |items| {
        let out_ptr = &out_ptr;
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for i in items {
                // The last blocks see the most keys: they go first, so that the cheap ones
                // even out the threads' shares at the end.
                let (g, b) = (i % kv_heads, blocks - 1 - i / kv_heads);
                let first = b * POSITIONS_PER_ITEM;
                let item = Item {
                    shape,
                    group: g,
                    first,
                    positions: POSITIONS_PER_ITEM.min(rows - first),
                };
                // SAFETY: item (g, b) alone writes the outputs of heads `g·n_rep..(g+1)·n_rep`
                // at positions `first..first + positions`, inside `out` (checked above).
                unsafe { item.run(level, queries, keys, values, out_ptr.0, &mut scratch) };
            }
        });
    });
    Ok(())
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// An item's scores (then weights) `(item rows, keys)` and output sums `(item rows, d)`.
#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    sums: Vec<f32>,
    inverse: Vec<f32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Portable,
    /// AVX2 with FMA, for head dimensions that are multiples of 16.
    Avx2,
}

impl Level {
    fn current(head_dim: usize) -> Level {
        if head_dim.is_multiple_of(16) && CpuLevel::current() >= CpuLevel::Avx2 {
            Level::Avx2
        } else {
            Level::Portable
        }
    }
}

/// One key/value head and a block of query positions.
struct Item {
    shape: ChunkShape,
    group: usize,
    /// The block's first query (within the chunk).
    first: usize,
    positions: usize,
}

impl Item {
    /// # Safety
    /// `out` points at a `(rows, heads · d)` output of which this item's outputs are written by
    /// no one else meanwhile; at `Level::Avx2` the CPU has AVX2 and FMA.
    unsafe fn run(
        &self,
        level: Level,
        queries: &[f32],
        keys: &[f32],
        values: &[f32],
        out: *mut f32,
        scratch: &mut Scratch,
    ) {
        let ChunkShape {
            heads,
            kv_heads,
            head_dim: d,
            past,
            rows,
            capacity,
        } = self.shape;
        let n_rep = heads / kv_heads;
        let n = n_rep * self.positions;
        // Keys the item's last query sees; item row r is head `group·n_rep + r / positions`
        // at position `first + r % positions`.
        let width = past + self.first + self.positions;
        let limit = |r: usize| past + self.first + r % self.positions + 1;
        let query: Vec<&[f32]> = (0..n)
            .map(|r| {
                let h = self.group * n_rep + r / self.positions;
                &queries[(h * rows + self.first + r % self.positions) * d..][..d]
            })
            .collect();
        let base = self.group * capacity * d;
        let keys = &keys[base..base + width * d];
        let values = &values[base..base + width * d];
        let Scratch {
            scores,
            sums,
            inverse,
        } = scratch;
        scores.clear();
        scores.resize(n * width, 0.0);
        sums.clear();
        sums.resize(n * d, 0.0);
        inverse.clear();
        let scale = (1.0 / (d as f64).sqrt()) as f32;

        // Scores, a block of keys at a time for every row that sees any of them.
        for_each_tile(n, width, limit, |rows, key_range| {
            let tile = (&query[..], rows, key_range);
            match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Level::Avx2` is only chosen where the CPU has AVX2 and FMA.
                Level::Avx2 => unsafe { avx2::scores(tile, keys, d, scale, scores, width) },
                _ => portable::scores(tile, keys, d, scale, scores, width),
            }
        });

        // Weights: exp(s − max) over the keys a row sees, zero beyond.
        for r in 0..n {
            let row = &mut scores[r * width..(r + 1) * width];
            let (seen, unseen) = row.split_at_mut(limit(r));
            let sum = match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Level::Avx2 => unsafe { avx2::weights(seen) },
                _ => softmax_numerators_body(seen),
            };
            unseen.fill(0.0);
            inverse.push(1.0 / sum);
        }

        // Σ weight · value over the same tiles; each row's sums stay in `sums` between blocks
        // of keys (stored and reloaded exactly).
        for_each_tile(n, width, limit, |rows, key_range| {
            let tile = (rows, key_range);
            match level {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                Level::Avx2 => unsafe {
                    avx2::weighted_values(scores, width, values, d, tile, sums)
                },
                _ => portable::weighted_values(scores, width, values, d, tile, sums),
            }
        });

        for r in 0..n {
            let h = self.group * n_rep + r / self.positions;
            let t = self.first + r % self.positions;
            // SAFETY: (t, h) is one of this item's outputs (the caller's contract).
            let dst = unsafe { std::slice::from_raw_parts_mut(out.add((t * heads + h) * d), d) };
            for (o, &s) in dst.iter_mut().zip(&sums[r * d..(r + 1) * d]) {
                *o = s * inverse[r];
            }
        }
    }
}

/// Runs `tile(rows, keys)` for an item's tiles, a block of keys at a time for every tile of
/// rows that sees any of it, the keys cut at the last that one of the rows sees (`limit(r)`
/// is how many keys row `r` sees, of `width`). Plain loops around a closure, inlined: the
/// same walk as an iterator of `flat_map` and `filter_map` (session 12's `tiles`, since
/// reverted) ran a 512-token Qwen2.5-1.5B prompt at 85 against 88–89 tok/s.
#[inline(always)]
fn for_each_tile(
    n: usize,
    width: usize,
    limit: impl Fn(usize) -> usize,
    mut tile: impl FnMut(Range<usize>, Range<usize>),
) {
    for start in (0..width).step_by(KEY_BLOCK) {
        let end = width.min(start + KEY_BLOCK);
        for r0 in (0..n).step_by(ROW_TILE) {
            let r1 = n.min(r0 + ROW_TILE);
            let seen = (r0..r1).map(&limit).max().unwrap_or(0).min(end);
            if seen > start {
                tile(r0..r1, start..seen);
            }
        }
    }
}

/// The fixed reduction of 8 lanes, the order `avx2::hsum` adds them in.
#[inline(always)]
fn reduce8(l: [f32; 8]) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// Rows' queries, the rows and the keys of one tile of scores.
type ScoresTile<'a, 'q> = (&'a [&'q [f32]], Range<usize>, Range<usize>);
/// The rows and the keys of one tile of weighted values.
type ValuesTile = (Range<usize>, Range<usize>);

/// Portable Rust: the same sums with separate multiplies and adds.
mod portable {
    use super::{reduce8, ScoresTile, ValuesTile};

    /// `scores[r][j] = (q_r · k_j) · scale` for the tile's rows and keys.
    pub(super) fn scores(
        (query, rows, key_range): ScoresTile<'_, '_>,
        keys: &[f32],
        d: usize,
        scale: f32,
        scores: &mut [f32],
        width: usize,
    ) {
        for r in rows {
            let q = query[r];
            for j in key_range.clone() {
                let k = &keys[j * d..(j + 1) * d];
                let mut lanes = [0f32; 8];
                for (c, (&a, &b)) in q.iter().zip(k).enumerate() {
                    lanes[c % 8] += a * b;
                }
                scores[r * width + j] = reduce8(lanes) * scale;
            }
        }
    }

    /// `sums[r] += Σ_j scores[r][j] · v_j` over the tile's keys, in key order.
    pub(super) fn weighted_values(
        scores: &[f32],
        width: usize,
        values: &[f32],
        d: usize,
        (rows, key_range): ValuesTile,
        sums: &mut [f32],
    ) {
        for r in rows {
            let acc = &mut sums[r * d..(r + 1) * d];
            for j in key_range.clone() {
                let p = scores[r * width + j];
                for (a, &v) in acc.iter_mut().zip(&values[j * d..(j + 1) * d]) {
                    *a += p * v;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{ScoresTile, ValuesTile};

    /// [`super::portable::scores`] with fused multiply-adds, 4 rows × 2 keys at a time.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `d` is a multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn scores(
        (query, rows, key_range): ScoresTile<'_, '_>,
        keys: &[f32],
        d: usize,
        scale: f32,
        scores: &mut [f32],
        width: usize,
    ) {
        let kp = keys.as_ptr();
        let mut r = rows.start;
        while r + 4 <= rows.end {
            let q: [*const f32; 4] = std::array::from_fn(|i| query[r + i].as_ptr());
            let mut j = key_range.start;
            while j + 2 <= key_range.end {
                let s = dots::<4, 2>(q, [kp.add(j * d), kp.add((j + 1) * d)], d);
                for (i, row) in s.iter().enumerate() {
                    scores[(r + i) * width + j] = row[0] * scale;
                    scores[(r + i) * width + j + 1] = row[1] * scale;
                }
                j += 2;
            }
            if j < key_range.end {
                let s = dots::<4, 1>(q, [kp.add(j * d)], d);
                for (i, row) in s.iter().enumerate() {
                    scores[(r + i) * width + j] = row[0] * scale;
                }
            }
            r += 4;
        }
        for r in r..rows.end {
            let q = [query[r].as_ptr()];
            for j in key_range.clone() {
                scores[r * width + j] = dots::<1, 1>(q, [kp.add(j * d)], d)[0][0] * scale;
            }
        }
    }

    /// `R × K` dot products of `d` values: one 8-lane fused multiply-add chain each, reduced
    /// by [`hsum`]. Every (row, key) gets the same operations whatever `R` and `K` are.
    #[inline(always)]
    unsafe fn dots<const R: usize, const K: usize>(
        q: [*const f32; R],
        k: [*const f32; K],
        d: usize,
    ) -> [[f32; K]; R] {
        let mut acc = [[_mm256_setzero_ps(); K]; R];
        for c in (0..d).step_by(8) {
            let kv: [__m256; K] = std::array::from_fn(|x| _mm256_loadu_ps(k[x].add(c)));
            for (row, &qp) in acc.iter_mut().zip(&q) {
                let qv = _mm256_loadu_ps(qp.add(c));
                for (a, &kx) in row.iter_mut().zip(&kv) {
                    *a = _mm256_fmadd_ps(qv, kx, *a);
                }
            }
        }
        acc.map(|row| row.map(|a| hsum(a)))
    }

    /// The lanes' sum in [`super::reduce8`]'s order.
    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        // (l0+l4, l1+l5, l2+l6, l3+l7), then (·0 + ·2, ·1 + ·3), then the two.
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }

    /// [`softmax_numerators_body`](super::softmax_numerators_body) compiled for AVX2 (the
    /// same bits: Rust never fuses its operations).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weights(seen: &mut [f32]) -> f32 {
        super::softmax_numerators_body(seen)
    }

    /// Columns per register tile of [`columns`]: 4 rows × 16 columns are 8 of AVX2's 16
    /// registers, with the values' 2 and a broadcast weight beside them.
    const COLUMNS: usize = 16;

    /// [`super::portable::weighted_values`] with fused multiply-adds, 4 rows × 16 columns at
    /// a time.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `d` is a multiple of 16.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weighted_values(
        scores: &[f32],
        width: usize,
        values: &[f32],
        d: usize,
        (rows, key_range): ValuesTile,
        sums: &mut [f32],
    ) {
        let (sp, vp, op) = (scores.as_ptr(), values.as_ptr(), sums.as_mut_ptr());
        let mut r = rows.start;
        while r < rows.end {
            let tile = if r + 4 <= rows.end { 4 } else { 1 };
            for c in (0..d).step_by(COLUMNS) {
                let at = Tile {
                    sp,
                    width,
                    vp,
                    d,
                    op,
                    r,
                    c,
                };
                if tile == 4 {
                    at.accumulate::<4>(key_range.clone());
                } else {
                    at.accumulate::<1>(key_range.clone());
                }
            }
            r += tile;
        }
    }

    /// Where one register tile of weighted values reads and writes.
    struct Tile {
        sp: *const f32,
        width: usize,
        vp: *const f32,
        d: usize,
        op: *mut f32,
        r: usize,
        c: usize,
    }

    impl Tile {
        /// Rows `r..r + R`, columns `c..c + 16`: `sums += Σ_j p · v_j` in key order.
        #[inline(always)]
        unsafe fn accumulate<const R: usize>(&self, key_range: Range<usize>) {
            let at = |i: usize, x: usize| self.op.add((self.r + i) * self.d + self.c + 8 * x);
            let mut acc: [[__m256; 2]; R] =
                std::array::from_fn(|i| std::array::from_fn(|x| _mm256_loadu_ps(at(i, x))));
            for j in key_range {
                let v0 = _mm256_loadu_ps(self.vp.add(j * self.d + self.c));
                let v1 = _mm256_loadu_ps(self.vp.add(j * self.d + self.c + 8));
                for (i, row) in acc.iter_mut().enumerate() {
                    let p = _mm256_broadcast_ss(&*self.sp.add((self.r + i) * self.width + j));
                    row[0] = _mm256_fmadd_ps(p, v0, row[0]);
                    row[1] = _mm256_fmadd_ps(p, v1, row[1]);
                }
            }
            for (i, row) in acc.iter().enumerate() {
                _mm256_storeu_ps(at(i, 0), row[0]);
                _mm256_storeu_ps(at(i, 1), row[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-2, 2).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let v = super::super::quant_blocks::seeded_test_values(seed, n);
        v.into_iter().map(|x| 2.0 * x).collect()
    }

    struct Case {
        heads: usize,
        kv_heads: usize,
        d: usize,
        capacity: usize,
        keys: Vec<f32>,
        values: Vec<f32>,
        /// Queries for every position `0..capacity`, `(heads, capacity, d)`.
        queries: Vec<f32>,
    }

    impl Case {
        fn new(heads: usize, kv_heads: usize, d: usize, capacity: usize) -> Case {
            Case {
                heads,
                kv_heads,
                d,
                capacity,
                keys: values(kv_heads * capacity * d, 1),
                values: values(kv_heads * capacity * d, 2),
                queries: values(heads * capacity * d, 3),
            }
        }

        /// The chunk of queries at positions `past..past + rows`, `(rows, heads · d)`.
        fn chunk(&self, past: usize, rows: usize) -> Vec<f32> {
            let d = self.d;
            let mut q = Vec::with_capacity(self.heads * rows * d);
            for h in 0..self.heads {
                let start = (h * self.capacity + past) * d;
                q.extend_from_slice(&self.queries[start..start + rows * d]);
            }
            let shape = ChunkShape {
                heads: self.heads,
                kv_heads: self.kv_heads,
                head_dim: d,
                past,
                rows,
                capacity: self.capacity,
            };
            let mut out = vec![f32::NAN; rows * self.heads * d];
            causal_attention(shape, &q, &self.keys, &self.values, &mut out).unwrap();
            out
        }

        /// softmax(q · kᵀ / √d) · v in f64 for the query of head `h` at position `t`.
        fn reference(&self, h: usize, t: usize) -> Vec<f64> {
            let d = self.d;
            let g = h / (self.heads / self.kv_heads);
            let q = &self.queries[(h * self.capacity + t) * d..][..d];
            let row = |m: &[f32], j: usize| m[(g * self.capacity + j) * d..][..d].to_vec();
            let scores: Vec<f64> = (0..=t)
                .map(|j| {
                    let k = row(&self.keys, j);
                    q.iter()
                        .zip(&k)
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum::<f64>()
                        / (d as f64).sqrt()
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            let mut out = vec![0f64; d];
            for (j, p) in e.iter().enumerate() {
                for (o, &v) in out.iter_mut().zip(&row(&self.values, j)) {
                    *o += p / sum * v as f64;
                }
            }
            out
        }
    }

    #[test]
    fn attention_equals_a_float64_softmax_of_the_scaled_scores() {
        // Qwen2.5-1.5B's grouping (6 query heads per key/value head), 0.5B's (7), and head
        // sizes the vector path takes (64, 128) and leaves to the portable path (24).
        for (heads, kv_heads, d, past, rows) in [
            (12, 2, 128, 0, 37),
            (14, 2, 64, 5, 1),
            (4, 4, 24, 3, 9),
            (6, 1, 128, 70, 20),
            (4, 2, 64, 0, 25),
            (4, 2, 64, 25, 12),
        ] {
            let case = Case::new(heads, kv_heads, d, past + rows + 3);
            let out = case.chunk(past, rows);
            for t in 0..rows {
                for h in 0..heads {
                    let want = case.reference(h, past + t);
                    let got = &out[(t * heads + h) * d..][..d];
                    for (c, (&g, &w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g as f64 - w).abs() < 1e-5,
                            "{heads}/{kv_heads} heads, d {d}, position {}, head {h}, column {c}: {g} vs {w}",
                            past + t
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_querys_result_is_the_same_bits_however_the_prompt_is_chunked() {
        // 150 positions in one chunk, then cut at 1, 63 and 100, then in pieces of 17: more
        // than one block of keys and of positions, rows of a tile split differently each time.
        let (heads, kv_heads, d, n) = (12, 2, 128, 150);
        let case = Case::new(heads, kv_heads, d, n);
        let whole = case.chunk(0, n);
        let cuts: [&[usize]; 2] = [
            &[0, 1, 63, 100, n],
            &[0, 17, 34, 51, 68, 85, 102, 119, 136, n],
        ];
        for cut in cuts {
            let mut pieces = Vec::with_capacity(whole.len());
            for w in cut.windows(2) {
                pieces.extend(case.chunk(w[0], w[1] - w[0]));
            }
            let differing = whole
                .iter()
                .zip(&pieces)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(differing, 0, "cut at {cut:?}");
        }
    }

    #[test]
    fn the_portable_path_gives_a_querys_result_however_the_prompt_is_chunked() {
        // A head size the vector path does not take: the portable path, on every CPU.
        let (heads, kv_heads, d, n) = (4, 2, 24, 90);
        let case = Case::new(heads, kv_heads, d, n);
        let whole = case.chunk(0, n);
        let mut pieces = case.chunk(0, 41);
        pieces.extend(case.chunk(41, n - 41));
        assert!(whole
            .iter()
            .zip(&pieces)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn inconsistent_shapes_are_an_error_not_a_read_out_of_bounds() {
        let shape = ChunkShape {
            heads: 2,
            kv_heads: 1,
            head_dim: 16,
            past: 4,
            rows: 4,
            capacity: 6,
        };
        let q = vec![0f32; 2 * 4 * 16];
        let kv = vec![0f32; 6 * 16];
        let mut out = vec![0f32; 4 * 2 * 16];
        let err = causal_attention(shape, &q, &kv, &kv, &mut out).unwrap_err();
        assert!(err.to_string().contains("inconsistent shapes"), "{err}");
    }
}
