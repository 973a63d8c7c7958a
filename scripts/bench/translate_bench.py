#!/usr/bin/env python3
"""Translation throughput: polybrief vs HF transformers vs CTranslate2 (float32, int8).

All tools run the same random-weight MarianMTModel of the exact size of
Helsinki-NLP/opus-mt-de-en (d_model 512, 6+6 layers, 8 heads, ffn 2048, vocab 58101, swish,
sinusoidal positions) on the same input ids, in the same batches, with a fixed output length
(min = max new tokens, so EOS never ends a sentence early), on the same number of threads.
Each tool runs in its own process; peak RSS is that process's, from GNU time (model load included).
Only the decoding loop is timed (after one warm-up batch), once per configuration.

polybrief runs twice, in f32 and in int8 (`polybrief-f32`, `polybrief-int8`). `--isa avx2`
disables AVX-512 in both polybrief's own int8 and f32 kernels (POLYBRIEF_CPU_LEVEL=avx2) and
CTranslate2 (CT2_FORCE_CPU_ISA=AVX2 and its gemm libraries capped), so that one AVX-512 machine
measures the AVX2 kernels too; candle's f32 matmuls (the gemm crate; no longer on Marian's CPU
path, whose encoder attention used them) have no such switch: translate.sh builds the harness
without gemm's AVX-512 kernels for that.

Usage: translate_bench.py --polybrief PATH [--threads 2] [--sentences 64] [--new-tokens 24]
                          [--device cpu|cuda] [--isa native|avx2]
With --device cuda (scripts/gpu/check.sh), polybrief and transformers run on GPU 0; peak RSS
is then host memory only.
Normally run through scripts/bench/translate.sh, which builds everything first.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = 58101
PAD = 58100
EOS = 0
UNK = 1


def build_model(workdir, seed, with_tokenizer=True):
    """Random opus-mt-de-en-sized model + a tokenizer directory CTranslate2's converter accepts
    (the tokenizer only `with_tokenizer`: polybrief and transformers take ids)."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    model_dir = os.path.join(workdir, "model")
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
        return model_dir
    os.makedirs(model_dir, exist_ok=True)
    torch.manual_seed(seed)
    # Field values of Helsinki-NLP/opus-mt-de-en's config.json.
    cfg = MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=512,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
        encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
        activation_function="swish", scale_embedding=True, static_position_embeddings=True,
        pad_token_id=PAD, decoder_start_token_id=PAD, eos_token_id=EOS, forced_eos_token_id=EOS,
        bad_words_ids=[[PAD]], share_encoder_decoder_embeddings=True,
    )
    model = MarianMTModel(cfg).eval()
    with torch.no_grad():
        # As in the real checkpoints the pad row is zero, so the decoder's first input is the
        # zero vector CTranslate2 starts from ("start_from_zero_embedding").
        model.model.shared.weight[PAD].zero_()
    model.save_pretrained(model_dir)
    if with_tokenizer:
        write_tokenizer(model_dir, workdir, seed)
    return model_dir


def write_tokenizer(model_dir, workdir, seed):
    import sentencepiece as spm

    # A small sentencepiece model (MarianTokenizer needs one per side) and a joint vocab.json of
    # the full size: ids are what the benchmark feeds, the pieces are only names.
    text = os.path.join(workdir, "spm.txt")
    rng = random.Random(seed)
    with open(text, "w") as f:
        for _ in range(2000):
            f.write(" ".join("".join(rng.choice("abcdefghij") for _ in range(rng.randint(1, 6)))
                             for _ in range(12)) + "\n")
    spm.SentencePieceTrainer.train(input=text, model_prefix=os.path.join(workdir, "spm"),
                                   vocab_size=64, model_type="unigram", bos_id=-1,
                                   eos_id=0, unk_id=1, pad_id=-1)
    for side in ("source", "target"):
        with open(os.path.join(workdir, "spm.model"), "rb") as src, \
                open(os.path.join(model_dir, f"{side}.spm"), "wb") as dst:
            dst.write(src.read())
    vocab = {"</s>": EOS, "<unk>": UNK}
    for i in range(2, PAD):
        vocab[f"▁t{i}"] = i
    vocab["<pad>"] = PAD
    with open(os.path.join(model_dir, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "MarianTokenizer", "source_lang": "de", "target_lang": "en",
                   "model_max_length": 512}, f)


def convert_ct2(model_dir, workdir, quantization):
    import ctranslate2

    out = os.path.join(workdir, f"ct2-{quantization}")
    if not os.path.exists(os.path.join(out, "model.bin")):
        conv = ctranslate2.converters.TransformersConverter(model_dir)
        conv.convert(out, quantization=quantization, force=True)
    return out


def make_inputs(n, seed):
    """Sentences of 8..48 source tokens (EOS included), sorted by length so that every tool
    gets the same, sensibly packed batches."""
    rng = random.Random(seed)
    sents = []
    for _ in range(n):
        length = rng.randint(8, 48)
        sents.append([rng.randint(2, PAD - 1) for _ in range(length - 1)] + [EOS])
    sents.sort(key=len, reverse=True)
    return sents


def batches(sents, size):
    return [sents[i:i + size] for i in range(0, len(sents), size)]


# --- runners: each is executed in a fresh process (`--run TOOL`) and prints one JSON line ---

def run_hf(args, sents):
    import torch
    from transformers import MarianMTModel

    torch.set_num_threads(args.threads)
    model = MarianMTModel.from_pretrained(args.model_dir).eval().to(args.device)
    kwargs = dict(num_beams=args.beams, do_sample=False, min_new_tokens=args.new_tokens,
                  max_new_tokens=args.new_tokens, early_stopping=True, length_penalty=1.0,
                  bad_words_ids=[[PAD]])

    def one(batch):
        width = max(len(s) for s in batch)
        ids = torch.tensor([s + [PAD] * (width - len(s)) for s in batch], device=args.device)
        mask = (ids != PAD).long()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        # Every row runs to the fixed length; count generated tokens (decoder start excluded).
        return (out[:, 1:] != PAD).sum().item()

    one(sents[:args.batch])
    start = time.perf_counter()
    tokens = sum(one(b) for b in batches(sents, args.batch))
    return time.perf_counter() - start, tokens


def run_ct2(args, sents, compute_type):
    import ctranslate2
    import json as _json

    with open(os.path.join(args.model_dir, "vocab.json")) as f:
        id_to_piece = {i: p for p, i in _json.load(f).items()}
    translator = ctranslate2.Translator(args.ct2_dir, device="cpu", compute_type=compute_type,
                                        inter_threads=1, intra_threads=args.threads)
    # CTranslate2 appends EOS itself.
    token_batches = [[[id_to_piece[i] for i in s[:-1]] for s in b] for b in batches(sents, args.batch)]

    def one(batch):
        results = translator.translate_batch(
            batch, beam_size=args.beams, max_decoding_length=args.new_tokens,
            min_decoding_length=args.new_tokens, max_batch_size=len(batch),
            length_penalty=1.0, return_scores=False)
        # The hypotheses exclude EOS; add it where one ended the sentence, to count like HF.
        return sum(len(r.hypotheses[0]) + (1 if len(r.hypotheses[0]) < args.new_tokens else 0)
                   for r in results)

    one(token_batches[0])
    start = time.perf_counter()
    tokens = sum(one(b) for b in token_batches)
    return time.perf_counter() - start, tokens


def run_polybrief(args, sents, precision):
    ids_file = os.path.join(args.workdir, "ids.json")
    with open(ids_file, "w") as f:
        json.dump({"sentences": sents}, f)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(
        [args.polybrief, args.model_dir, ids_file, "--beams", str(args.beams),
         "--batch", str(args.batch), "--new-tokens", str(args.new_tokens), "--device", args.device,
         "--precision", precision],
        check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["tokens"], (result["cpu_level"], result.get("gemm_level"))


def child_main(args):
    sents = make_inputs(args.sentences, args.seed)
    if args.run == "hf":
        seconds, tokens = run_hf(args, sents)
    elif args.run in ("ct2-float32", "ct2-int8"):
        seconds, tokens = run_ct2(args, sents, args.run.split("-")[1])
    else:
        seconds, tokens, (level, gemm) = run_polybrief(args, sents, args.run.split("-")[1])
        print(json.dumps({"seconds": seconds, "tokens": tokens, "sentences": len(sents),
                          "cpu_level": level, "gemm_level": gemm}))
        return
    print(json.dumps({"seconds": seconds, "tokens": tokens, "sentences": len(sents)}))


def measure(args, tool, beams, batch, ct2_dirs):
    """Runs one tool in a child process; returns its timing and that process tree's peak RSS."""
    cmd = [sys.executable, os.path.abspath(__file__), "--run", tool, "--model-dir", args.model_dir,
           "--workdir", args.workdir, "--polybrief", args.polybrief, "--threads", str(args.threads),
           "--sentences", str(args.sentences), "--new-tokens", str(args.new_tokens),
           "--seed", str(args.seed), "--beams", str(beams), "--batch", str(batch),
           "--device", args.device]
    if tool.startswith("ct2"):
        cmd += ["--ct2-dir", ct2_dirs[tool]]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               RAYON_NUM_THREADS=str(args.threads))
    if args.isa == "avx2":
        # CT2_FORCE_CPU_ISA covers CTranslate2's own kernels only; its gemm libraries pick
        # their code paths themselves (MKL on Intel CPUs, oneDNN on others), so they are
        # capped too.
        env.update(POLYBRIEF_CPU_LEVEL="avx2", CT2_FORCE_CPU_ISA="AVX2",
                   MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2",
                   DNNL_MAX_CPU_ISA="AVX2")
    # Peak RSS through GNU time, which forks the tool from its own small process. Taking
    # ru_maxrss from this script's own fork would be wrong on Linux: a forked child starts with
    # its parent's peak, and this process has torch and ctranslate2 loaded (about 700 MB), so
    # every tool would read at least that. For polybrief the figure is the larger of the small
    # Python wrapper and the binary it waits for, i.e. the binary's.
    # Without GNU time (a bare GPU machine may lack it) the RSS column reads nan.
    rss_file = os.path.join(args.workdir, "peak-rss.txt")
    timer = ["/usr/bin/time", "-f", "%M", "-o", rss_file] if os.path.exists("/usr/bin/time") else []
    proc = subprocess.run(timer + cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed (exit code {proc.returncode})")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = float("nan")
    if timer:
        with open(rss_file) as f:
            result["peak_rss_mb"] = int(f.read().split()[-1]) / 1024
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--polybrief", required=True, help="the bench_translate example binary")
    p.add_argument("--workdir", default=os.path.join(HERE, "..", "..", ".bench", "translate"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sentences", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tools", default="polybrief-f32,polybrief-int8,hf,ct2-float32,ct2-int8")
    p.add_argument("--isa", choices=["native", "avx2"], default="native",
                   help="avx2: disable AVX-512 in polybrief's int8 kernels and in CTranslate2")
    p.add_argument("--configs", default="greedy:1,greedy:16,beam4:1,beam4:16")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where polybrief and transformers run (CTranslate2 stays on the CPU)")
    # Internal: run a single measurement in this process.
    p.add_argument("--run")
    p.add_argument("--model-dir")
    p.add_argument("--ct2-dir")
    p.add_argument("--beams", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args()
    args.polybrief = os.path.abspath(args.polybrief)
    args.workdir = os.path.abspath(args.workdir)

    if args.run:
        child_main(args)
        return

    os.makedirs(args.workdir, exist_ok=True)
    tools = args.tools.split(",")
    args.model_dir = build_model(args.workdir, args.seed, any(t.startswith("ct2") for t in tools))
    ct2_dirs = {t: convert_ct2(args.model_dir, args.workdir, t.split("-")[1])
                for t in tools if t.startswith("ct2")}

    load_before = os.getloadavg()[0]
    rows = []
    for config in args.configs.split(","):
        name, batch = config.split(":")
        beams = 4 if name == "beam4" else 1
        results = {}
        for tool in tools:
            r = measure(args, tool, beams, int(batch), ct2_dirs)
            r["sent_per_s"] = r["sentences"] / r["seconds"]
            r["tok_per_s"] = r["tokens"] / r["seconds"]
            results[tool] = r
            print(f"{name} batch {batch} {tool}: {r['sent_per_s']:.2f} sent/s, "
                  f"{r['tok_per_s']:.1f} tok/s, {r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        rows.append((name, batch, results))
        with open(os.path.join(args.workdir, "results.json"), "w") as f:
            json.dump(rows, f, indent=1)
    load_after = os.getloadavg()[0]

    print(f"\n{cpu_line()}; polybrief int8 kernels: {polybrief_level(rows)}; "
          f"polybrief f32 kernels: {polybrief_level(rows, 'polybrief-f32')} "
          f"(candle's gemm: {polybrief_level(rows, 'polybrief-f32', 'gemm_level')}); "
          f"CTranslate2 ISA: {'AVX2 (forced, MKL and oneDNN capped too)' if args.isa == 'avx2' else 'its own choice'}.")
    print(f"{args.sentences} sentences of 8–48 source tokens, {args.new_tokens} target tokens each, "
          f"{args.threads} threads, {device_label(args.device)}; ratios are relative to polybrief (higher is faster; "
          f"for RSS, higher is more memory). 1-minute load average {load_before:.2f} before, "
          f"{load_after:.2f} after (other processes on the machine slow every tool down).\n")
    print("| decoding | batch | tool | sentences/s | target tokens/s | peak RSS (MB) |")
    print("|---|---:|---|---:|---:|---:|")
    for name, batch, results in rows:
        for tool, r in results.items():
            print(f"| {name} | {batch} | {tool} | {r['sent_per_s']:.2f} | {r['tok_per_s']:.1f} | "
                  f"{r['peak_rss_mb']:.0f} |")
    pairs = [("polybrief-int8", "ct2-int8"), ("polybrief-f32", "ct2-float32")]
    if all(a in tools and b in tools for a, b in pairs):
        print("\n| decoding | batch | polybrief int8 ÷ CT2 int8 (tok/s) | polybrief f32 ÷ CT2 float32 | "
              "RSS polybrief int8 / CT2 int8 (MB) | RSS polybrief f32 / CT2 float32 (MB) |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, batch, r in rows:
            print(f"| {name} | {batch} "
                  f"| {r['polybrief-int8']['tok_per_s'] / r['ct2-int8']['tok_per_s']:.2f}× "
                  f"| {r['polybrief-f32']['tok_per_s'] / r['ct2-float32']['tok_per_s']:.2f}× "
                  f"| {r['polybrief-int8']['peak_rss_mb']:.0f} / {r['ct2-int8']['peak_rss_mb']:.0f} "
                  f"| {r['polybrief-f32']['peak_rss_mb']:.0f} / {r['ct2-float32']['peak_rss_mb']:.0f} |")


def cpu_line():
    """The CPU's model name and the vector extensions that decide the kernels."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ["avx2", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni"]
    return f"CPU: {model} ({', '.join(f for f in wanted if f in flags) or 'no AVX2'})"


def polybrief_level(rows, tool="polybrief-int8", key="cpu_level"):
    levels = {r[t].get(key) for _, _, r in rows for t in r if t == tool}
    return ", ".join(sorted(l for l in levels if l)) or "not run"


def device_label(device):
    if device == "cpu":
        return "CPU"
    import torch
    return f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "GPU"


if __name__ == "__main__":
    main()
