//! Throughput harness for scripts/bench/translate.sh: runs polybrief's Marian engine on token
//! ids from a file, in consecutive batches, with a fixed output length, and prints one JSON line
//! `{"seconds": .., "tokens": .., "sentences": .., "ids_digest": ..}` for the timed part (after
//! one warm-up batch); `ids_digest` fingerprints the generated ids, so that two builds can be
//! compared for speed and sameness at once.
//!
//! Usage: bench_translate MODEL_DIR IDS_JSON [--beams N] [--batch B] [--new-tokens N]
//!        [--precision f32|int8] [--device cpu|cuda]
//! where IDS_JSON is `{"sentences": [[id, ..., eos], ...]}`. Threads follow RAYON_NUM_THREADS;
//! the int8 kernels follow POLYBRIEF_CPU_LEVEL (the JSON line names the level used).

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use polybrief::models::cpu_level::CpuLevel;
use polybrief::models::generate::{generate, GenerationParams, MarianDecoding};
use polybrief::models::marian::{MarianMTModel, WeightPrecision};
use polybrief::pipeline::translate::load_marian_with_precision;

#[derive(serde::Deserialize)]
struct Input {
    sentences: Vec<Vec<u32>>,
}

/// Runs one batch; returns the generated ids and the seconds spent in the encoder.
fn run_batch(
    model: &MarianMTModel,
    device: &Device,
    batch: &[Vec<u32>],
    params: &GenerationParams,
    new_tokens: usize,
) -> (Vec<Vec<u32>>, f64) {
    let pad = model.config().pad_token_id;
    let width = batch.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for s in batch {
        ids.extend_from_slice(s);
        ids.extend(std::iter::repeat_n(pad, width - s.len()));
        mask.extend(std::iter::repeat_n(1u8, s.len()));
        mask.extend(std::iter::repeat_n(0u8, width - s.len()));
    }
    let ids = Tensor::from_vec(ids, (batch.len(), width), device).expect("ids");
    let mask = Tensor::from_vec(mask, (batch.len(), width), device).expect("mask");
    let start = Instant::now();
    let encoded = model.encode(&ids, &mask).expect("encode");
    // A GPU runs the encoder asynchronously: wait for it, so its time is its own.
    device.synchronize().expect("synchronize");
    let encode_seconds = start.elapsed().as_secs_f64();
    let cache = model.new_cache(&encoded).expect("cache");
    let mut decoding = MarianDecoding::new(model, cache);
    let out = generate(&mut decoding, params, &vec![new_tokens; batch.len()]).expect("generate");
    (out, encode_seconds)
}

/// FNV-1a over every generated id, sentence by sentence: two builds that print the same
/// digest decoded the same tokens, so a speed comparison is also a check of sameness.
fn ids_digest(outputs: &[Vec<u32>]) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for ids in outputs {
        for byte in ids
            .iter()
            .chain([&u32::MAX])
            .flat_map(|id| id.to_le_bytes())
        {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

fn main() {
    // As `polybrief`'s own main does: the harness measures the program's allocator settings.
    polybrief::allocator::keep_freed_memory_for_reuse();
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_translate MODEL_DIR IDS_JSON [--beams N] [--batch B] \
                 [--new-tokens N] [--precision f32|int8]";
    let model_dir = PathBuf::from(args.next().expect(usage));
    let ids_path = PathBuf::from(args.next().expect(usage));
    let (mut beams, mut batch, mut new_tokens) = (1usize, 1usize, 24usize);
    let mut precision = WeightPrecision::F32;
    let mut device = Device::Cpu;
    while let Some(flag) = args.next() {
        let value = args.next().expect(usage);
        let number = || -> usize { value.parse().expect(usage) };
        if flag == "--device" {
            device = match value.as_str() {
                "cpu" => Device::Cpu,
                "cuda" => {
                    polybrief::device::open(polybrief::device::Gpu::Cuda)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .device
                }
                _ => panic!("{usage}"),
            };
            continue;
        }
        match flag.as_str() {
            "--beams" => beams = number(),
            "--batch" => batch = number(),
            "--new-tokens" => new_tokens = number(),
            "--precision" => {
                precision = match value.as_str() {
                    "f32" => WeightPrecision::F32,
                    "int8" => WeightPrecision::Int8,
                    _ => panic!("{usage}"),
                }
            }
            _ => panic!("{usage}"),
        }
    }
    let input: Input = serde_json::from_str(&std::fs::read_to_string(&ids_path).expect("read ids"))
        .expect("ids json");
    let model =
        load_marian_with_precision(&model_dir, DType::F32, &device, precision).expect("load model");
    // Fixed output length: EOS is forbidden until the last position, where it is forced.
    let params = GenerationParams {
        num_beams: beams,
        min_new_tokens: new_tokens,
        ..GenerationParams::for_marian(model.config())
    };
    let batches: Vec<&[Vec<u32>]> = input.sentences.chunks(batch.max(1)).collect();
    run_batch(&model, &device, batches[0], &params, new_tokens);
    let start = Instant::now();
    let (mut outputs, mut encode_seconds) = (Vec::new(), 0.0);
    for b in &batches {
        let (out, e) = run_batch(&model, &device, b, &params, new_tokens);
        outputs.extend(out);
        encode_seconds += e;
    }
    let tokens: usize = outputs.iter().map(Vec::len).sum();
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "seconds": seconds,
            "encode_seconds": encode_seconds,
            "tokens": tokens,
            "sentences": input.sentences.len(),
            "precision": precision.name(),
            "cpu_level": CpuLevel::current().name(),
            "gemm_level": gemm_level(),
            "ids_digest": ids_digest(&outputs),
        })
    );
}

/// The f32 kernels gemm (candle's matmuls) picks on this CPU and build. Marian on the CPU no
/// longer calls them (its encoder's attention did until it ran on `head_attention`); its
/// linear layers and attention run on polybrief's own kernels, at `cpu_level`.
fn gemm_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cfg!(feature = "avx512-gemm") && std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "portable"
}
