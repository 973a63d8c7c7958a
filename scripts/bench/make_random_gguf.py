#!/usr/bin/env python3
"""Writes a GGUF with random weights at the real size of a candidate summarizer model, for
speed measurements: the time a CPU spends on a model depends on its shapes and quantization,
not on the values of its weights.

Shapes are those of the models' config.json on the hub (cited in scripts/bench/README.md).
The tokenizer metadata is the tiny fixture tokenizer's (tests/fixtures/qwen2/tiny), padded to
the real vocabulary size, which is enough for llama.cpp to load the file; benchmarks feed
token ids, never text.

  make_random_gguf.py --model qwen2.5-1.5b --type f16 --out /tmp/q15-f16.gguf
  make_random_gguf.py --model qwen2.5-1.5b --type q8_0 --out /tmp/q15-q8_0.gguf

Q4_K_M is made from the f16 file with llama.cpp's own quantizer (quantize_gguf.py), so its
mix of Q4_K / Q6_K / fallback types is exactly what a published Q4_K_M file has.
"""

import argparse
import json
import pathlib

import gguf
import numpy as np
from gguf.quants import quantize

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
TINY = ROOT / "tests/fixtures/qwen2/tiny"

# From each model's config.json on the hub.
MODELS = {
    "qwen2.5-0.5b": dict(arch="qwen2", hidden=896, ffn=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
                         vocab=151936, context=32768, rope=1e6, tied=True),
    "qwen2.5-1.5b": dict(arch="qwen2", hidden=1536, ffn=8960, layers=28, heads=12, kv_heads=2, head_dim=128,
                         vocab=151936, context=32768, rope=1e6, tied=True),
    "qwen3-0.6b": dict(arch="qwen3", hidden=1024, ffn=3072, layers=28, heads=16, kv_heads=8, head_dim=128,
                       vocab=151936, context=40960, rope=1e6, tied=True),
    "qwen3-1.7b": dict(arch="qwen3", hidden=2048, ffn=6144, layers=28, heads=16, kv_heads=8, head_dim=128,
                       vocab=151936, context=40960, rope=1e6, tied=True),
}


def tokenizer_metadata(w: gguf.GGUFWriter, vocab_size: int, tokenizer_dir: pathlib.Path = TINY):
    tok = json.loads((tokenizer_dir / "tokenizer.json").read_text())
    vocab = dict(tok["model"]["vocab"])
    for added in tok["added_tokens"]:
        vocab[added["content"]] = added["id"]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    specials = {a["content"] for a in tok["added_tokens"]}
    tokens = [t for t, _ in by_id] + [f"[PAD{i}]" for i in range(len(by_id), vocab_size)]
    types = [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t, _ in by_id]
    types += [gguf.TokenType.UNUSED] * (vocab_size - len(by_id))
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    w.add_chat_template(config["chat_template"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--type", choices=["f16", "q8_0"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    # A folder with tokenizer.json and tokenizer_config.json whose vocabulary, merges, special
    # ids and chat template go into the GGUF (scripts/acceptance/ passes a Qwen2-format tokenizer
    # at the real vocabulary size, so the GGUF's eos id names the same token as tokenizer.json).
    parser.add_argument("--tokenizer-dir", type=pathlib.Path, default=TINY)
    args = parser.parse_args()
    m = MODELS[args.model]
    rng = np.random.default_rng(args.seed)
    qtype = gguf.GGMLQuantizationType.F16 if args.type == "f16" else gguf.GGMLQuantizationType.Q8_0

    w = gguf.GGUFWriter(args.out, arch=m["arch"])
    w.add_name(f"random {args.model} ({args.type})")
    w.add_context_length(m["context"])
    w.add_embedding_length(m["hidden"])
    w.add_block_count(m["layers"])
    w.add_feed_forward_length(m["ffn"])
    w.add_head_count(m["heads"])
    w.add_head_count_kv(m["kv_heads"])
    w.add_rope_freq_base(m["rope"])
    w.add_layer_norm_rms_eps(1e-6)
    if m["arch"] == "qwen3":
        w.add_key_length(m["head_dim"])
        w.add_value_length(m["head_dim"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if args.type == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    tokenizer_metadata(w, m["vocab"], args.tokenizer_dir)

    def matrix(name, rows, cols):
        data = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02)
        if qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, data.astype(np.float16))
        else:
            w.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)

    def vector(name, n, value=None):
        data = np.full(n, value, dtype=np.float32) if value is not None else rng.standard_normal(n, dtype=np.float32) * 0.02
        w.add_tensor(name, data)

    h, q_dim, kv_dim = m["hidden"], m["heads"] * m["head_dim"], m["kv_heads"] * m["head_dim"]
    matrix("token_embd.weight", m["vocab"], h)
    vector("output_norm.weight", h, 1.0)
    if not m["tied"]:
        matrix("output.weight", m["vocab"], h)
    for i in range(m["layers"]):
        p = f"blk.{i}"
        vector(f"{p}.attn_norm.weight", h, 1.0)
        vector(f"{p}.ffn_norm.weight", h, 1.0)
        matrix(f"{p}.attn_q.weight", q_dim, h)
        matrix(f"{p}.attn_k.weight", kv_dim, h)
        matrix(f"{p}.attn_v.weight", kv_dim, h)
        matrix(f"{p}.attn_output.weight", h, q_dim)
        if m["arch"] == "qwen2":
            vector(f"{p}.attn_q.bias", q_dim)
            vector(f"{p}.attn_k.bias", kv_dim)
            vector(f"{p}.attn_v.bias", kv_dim)
        else:
            vector(f"{p}.attn_q_norm.weight", m["head_dim"], 1.0)
            vector(f"{p}.attn_k_norm.weight", m["head_dim"], 1.0)
        matrix(f"{p}.ffn_gate.weight", m["ffn"], h)
        matrix(f"{p}.ffn_up.weight", m["ffn"], h)
        matrix(f"{p}.ffn_down.weight", h, m["ffn"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"{args.out}: {pathlib.Path(args.out).stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
