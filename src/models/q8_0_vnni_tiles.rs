//! Q8_0 products on AVX-512 VNNI, on weights repacked once at load into tiles of 16 output
//! columns, header first and on whole cache lines: for decoding one sequence or several, and
//! for prompts, bit for bit what candle's own VNNI tiles give.
//!
//! Where the CPU has AVX-512 VNNI, candle 0.11.1 runs every Q8_0 product on its repacked tiles
//! (`repack_x86`: weights as `q + 128` in u8, 16 columns side by side, 64 products per
//! `vpdpbusd`). They compute several rows well, but read one sequence's weights slowly: their
//! 544-byte tiles straddle cache lines and nothing asks for the next bytes ahead. Qwen2.5-1.5B
//! Q8_0 decoded 14.3–16.2 tok/s on them; polybrief's AVX2 row kernel (one weight row as one
//! prefetched stream) decoded 19–23, but 8 sequences at 41.6 tok/s against 47.5 on candle's
//! tiles, bound by `vpmaddubsw` (AMD EPYC Zen 4, 2 threads; scripts/bench/README.md,
//! "Session 15"). These tiles keep candle's quant layout and arithmetic, with each 256-value
//! span's eight block factors in front of its quants, each span on its own lines, up to 8
//! rows per work item, and the quants ahead asked for in a decode step (8 batched sequences'
//! rows of an 8,960 × 1,536 weight from 120–162 to 152–211 GMAC/s, AMD EPYC Zen 4, 2 threads;
//! scripts/bench/README.md, "Session 22").
//!
//! The arithmetic is candle's `q8_0_tile2` in its order: activations quantized to Q8K (the
//! same bytes as candle's, [`super::q8k_rows`]), each block's exact integer sum
//! `Σ (q + 128)·a` by `vpdpbusd`, `128 · Σ a` taken out in f32 (both exact below 2^24), then
//! `acc += sum · (d_w · d_a)` block by block. So every result is candle's bit for bit
//! (tested), and a row's result never depends on the rows run beside it.

use candle_core::quantized::k_quants::QK_K;
use rayon::prelude::*;

use super::cpu_level::CpuLevel;
use super::quant_blocks::{Q8K_BSUMS, Q8K_BYTES, Q8K_QS, Q8_0_BYTES};
use super::tile_items::TileWeights;

/// Output columns per tile: candle's `TILE_N`.
const TILE_COLS: usize = 16;
/// Values per Q8_0 block.
const BLOCK: usize = 32;
/// Q8_0 blocks per 256-value span (one Q8K activation block).
const BLOCKS: usize = QK_K / BLOCK;
/// Activation rows per work item: twice candle's `MAX_MT`, so that a decode step of 8
/// sequences reads each tile once, from memory, where two groups of 4 read it twice.
const MAX_ROWS: usize = 8;

/// One 256-value span of 16 weight rows: 68 cache lines.
#[repr(C, align(64))]
#[derive(Clone)]
struct Tile {
    /// Block `b`'s factor for row `r`: `d[b][r]`, f16 bits.
    d: [[u16; TILE_COLS]; BLOCKS],
    /// Block `b`: `[group of 4 values (8)][row (16)][4 bytes]`, each byte `q + 128`.
    qs: [[u8; BLOCK * TILE_COLS]; BLOCKS],
}

const _: () = assert!(std::mem::size_of::<Tile>() == 68 * 64);

/// A `(n, k)` Q8_0 weight in tiles: column tile `t`'s spans `0..k/256` in order, then `t + 1`'s.
pub(crate) struct Q8_0VnniTiles {
    tiles: Vec<Tile>,
    n: usize,
    k: usize,
}

/// Whether [`Q8_0VnniTiles`] can hold a `(n, k)` weight and run: the kernels' own CPU level is
/// AVX-512 VNNI, whole tiles and spans.
pub(crate) fn supports(n: usize, k: usize) -> bool {
    n > 0
        && k > 0
        && n.is_multiple_of(TILE_COLS)
        && k.is_multiple_of(QK_K)
        && CpuLevel::current() == CpuLevel::Avx512Vnni
}

impl Q8_0VnniTiles {
    /// Packs the raw bytes of a `(n, k)` GGUF Q8_0 tensor (row-major blocks). Callers check
    /// [`supports`] first.
    pub(crate) fn pack(weights: &[u8], n: usize, k: usize) -> candle_core::Result<Self> {
        if !supports(n, k) {
            candle_core::bail!("no Q8_0 VNNI tiles for ({n}, {k}) on this CPU")
        }
        let (kb, spans) = (k / BLOCK, k / QK_K);
        super::tile_items::check_weight_bytes("Q8_0", weights, (n, k), (BLOCK, Q8_0_BYTES))?;
        let empty = Tile {
            d: [[0; TILE_COLS]; BLOCKS],
            qs: [[0; BLOCK * TILE_COLS]; BLOCKS],
        };
        let mut tiles = super::huge_pages::filled(empty, n / TILE_COLS * spans);
        tiles.par_iter_mut().enumerate().for_each(|(i, tile)| {
            let (t, span) = (i / spans, i % spans);
            for r in 0..TILE_COLS {
                for b in 0..BLOCKS {
                    let at = ((t * TILE_COLS + r) * kb + span * BLOCKS + b) * Q8_0_BYTES;
                    let block = &weights[at..at + Q8_0_BYTES];
                    tile.d[b][r] = u16::from_le_bytes([block[0], block[1]]);
                    for g in 0..BLOCK / 4 {
                        for j in 0..4 {
                            let q = block[2 + g * 4 + j] as i8;
                            tile.qs[b][(g * TILE_COLS + r) * 4 + j] = (q as i16 + 128) as u8;
                        }
                    }
                }
            }
        });
        Ok(Q8_0VnniTiles { tiles, n, k })
    }
}

impl TileWeights for Q8_0VnniTiles {
    const FORMAT: &'static str = "Q8_0";
    const TILE_COLS: usize = TILE_COLS;
    type Rows = Vec<u8>;

    fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    fn quantize_rows(xs: &[f32], rows: usize, k: usize) -> Vec<u8> {
        super::q8k_rows::quantize(xs, rows, k)
    }

    /// At AVX-512 VNNI only, whatever `width` says: [`supports`] checked that level.
    #[cfg(target_arch = "x86_64")]
    fn run_kernels(
        &self,
        act: &Vec<u8>,
        rows: usize,
        columns: std::ops::Range<usize>,
        dst: &mut [f32],
        _width: super::cpu_level::Width,
    ) {
        let spans = self.k / QK_K;
        let tiles = super::tile_items::column_tiles(&self.tiles, &columns, (TILE_COLS, spans));
        x86::matmul(tiles, act, rows, spans, columns.len(), dst);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::tile_items::{ask_ahead, run_tile_kernels, TileKernel};
    use super::*;

    /// One work item per column tile and group of up to [`MAX_ROWS`] rows
    /// ([`run_tile_kernels`]).
    pub(super) fn matmul(
        tiles: &[Tile],
        act: &[u8],
        rows: usize,
        spans: usize,
        n: usize,
        dst: &mut [f32],
    ) {
        let offsets = offsets(act, rows * spans);
        let kernels = if rows <= MAX_ROWS {
            kernels::<true>()
        } else {
            kernels::<false>()
        };
        // SAFETY: `supports` checked the kernels' level (AVX-512 VNNI).
        unsafe {
            run_tile_kernels(
                (tiles, TILE_COLS),
                (act, Q8K_BYTES),
                (&offsets, BLOCKS),
                (rows, spans, n),
                dst,
                kernels,
            )
        }
    }

    /// The kernels for 1 to [`MAX_ROWS`] rows, asking ahead with `NEXT`.
    fn kernels<const NEXT: bool>() -> [TileKernel<Tile>; MAX_ROWS] {
        [
            unit::<1, NEXT>,
            unit::<2, NEXT>,
            unit::<3, NEXT>,
            unit::<4, NEXT>,
            unit::<5, NEXT>,
            unit::<6, NEXT>,
            unit::<7, NEXT>,
            unit::<8, NEXT>,
        ]
    }

    /// Each Q8K block's `128 · Σ a` over each 32-value Q8_0 block, as candle's tile kernel
    /// forms it (from the block's two 16-value sums, in f32): once per activation row here
    /// rather than once per column tile.
    fn offsets(act: &[u8], blocks: usize) -> Vec<f32> {
        let mut offsets = Vec::with_capacity(blocks * BLOCKS);
        for block in act.chunks_exact(Q8K_BYTES).take(blocks) {
            let sums = &block[Q8K_BSUMS..];
            for b in 0..BLOCKS {
                let sum = i16::from_le_bytes([sums[4 * b], sums[4 * b + 1]]) as i32
                    + i16::from_le_bytes([sums[4 * b + 2], sums[4 * b + 3]]) as i32;
                offsets.push(128.0 * sum as f32);
            }
        }
        offsets
    }

    /// `R` activation rows (`act`: `R × spans` Q8K blocks, `offsets` their [`offsets`])
    /// against one column tile's `spans` tiles; writes the `R × 16` results at `out` (row
    /// stride `n`). Per block and output: candle's `q8_0_tile2`. With `NEXT` (a decode step)
    /// each line of quants asks for one further on (`ask_ahead`).
    // `m` indexes the rows, their blocks and their accumulators together.
    #[allow(clippy::needless_range_loop)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    unsafe fn unit<const R: usize, const NEXT: bool>(
        tiles: &[Tile],
        act: &[u8],
        offsets: &[f32],
        spans: usize,
        out: *mut f32,
        n: usize,
    ) {
        let base = act.as_ptr();
        let mut acc = [_mm512_setzero_ps(); R];
        for (s, tile) in tiles.iter().enumerate() {
            let mut d = [0f32; R];
            for m in 0..R {
                d[m] = (base.add((m * spans + s) * Q8K_BYTES) as *const f32).read_unaligned();
            }
            for b in 0..BLOCKS {
                let qs = tile.qs[b].as_ptr();
                let mut sums = [_mm512_setzero_si512(); R];
                for g in 0..BLOCK / 4 {
                    let at = qs.add(g * TILE_COLS * 4);
                    if NEXT {
                        ask_ahead(at);
                    }
                    let w = _mm512_loadu_si512(at as *const __m512i);
                    for m in 0..R {
                        let a = base.add((m * spans + s) * Q8K_BYTES + Q8K_QS + b * BLOCK + g * 4);
                        let a = _mm512_set1_epi32((a as *const i32).read_unaligned());
                        sums[m] = _mm512_dpbusd_epi32(sums[m], w, a);
                    }
                }
                let dw = _mm512_cvtph_ps(_mm256_loadu_si256(tile.d[b].as_ptr() as *const __m256i));
                for m in 0..R {
                    // SAFETY: `offsets` holds `BLOCKS` values for each of the `R × spans`
                    // activation blocks.
                    let offset = *offsets.get_unchecked((m * spans + s) * BLOCKS + b);
                    let f = _mm512_sub_ps(_mm512_cvtepi32_ps(sums[m]), _mm512_set1_ps(offset));
                    acc[m] = _mm512_fmadd_ps(f, _mm512_mul_ps(dw, _mm512_set1_ps(d[m])), acc[m]);
                }
            }
        }
        for (m, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(m * n), *row);
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::models::tile_items::test_support::{
        assert_candles_bits, assert_rows_alone, print_tile_rates,
    };

    fn q8_0(n: usize, k: usize) -> QTensor {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()
    }

    fn ours(tiles: &Q8_0VnniTiles, xs: &[f32], rows: usize) -> Vec<f32> {
        let mut dst = vec![0f32; rows * tiles.dims().0];
        tiles.matmul(xs, rows, &mut dst).unwrap();
        dst
    }

    #[test]
    fn every_result_is_candles_vnni_tiles_bit_for_bit() {
        // candle runs its VNNI tiles where the CPU has AVX-512 VNNI (unless told otherwise).
        if !supports(16, 256) || std::env::var("MISTRALRS_FORCE_AVX2").as_deref() == Ok("1") {
            return;
        }
        let (n, k) = (48, 768);
        let w = std::sync::Arc::new(q8_0(n, k));
        let tiles = Q8_0VnniTiles::pack(&w.data().unwrap(), n, k).unwrap();
        let candle = QMatMul::from_arc(w).unwrap();
        assert_candles_bits(&candle, k, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 13], |xs, rows| {
            ours(&tiles, xs, rows)
        });
    }

    #[test]
    fn a_rows_result_does_not_depend_on_the_rows_beside_it() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (32, 512);
        let w = q8_0(n, k);
        let tiles = Q8_0VnniTiles::pack(&w.data().unwrap(), n, k).unwrap();
        assert_rows_alone((n, k), 11, |xs, rows| ours(&tiles, xs, rows));
    }

    /// Multiply-accumulates per second on this machine's pool, for a prompt and for 8 and 1
    /// decode rows (`print_tile_rates`):
    /// `cargo test --release --lib q8_0_vnni_tile_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a speed measure, not a check"]
    fn q8_0_vnni_tile_rate() {
        if !supports(16, 256) {
            return;
        }
        let (n, k) = (8960, 1536);
        let w = q8_0(n, k);
        let data = w.data().unwrap();
        // 5 copies of 14.6 MB: more than twice a 32 MiB last-level cache.
        let copies: Vec<Q8_0VnniTiles> = (0..5)
            .map(|_| Q8_0VnniTiles::pack(&data, n, k).unwrap())
            .collect();
        print_tile_rates((n, k), copies.len(), |copy, x, rows, dst| {
            copies[copy].matmul(x, rows, dst).unwrap()
        });
    }

    #[test]
    fn shapes_that_do_not_tile_are_refused() {
        assert!(!supports(40, 256));
        assert!(!supports(16, 128));
        assert!(Q8_0VnniTiles::pack(&[0u8; 10], 16, 256).is_err());
    }
}
