#!/usr/bin/env python3
"""HF transformers' prompt and decode speed on a GGUF, as polybrief's
`bench_llm_tokens_per_second` measures its own: the same prompt ids ((i * 7919 + 13) % 600),
one forward pass over the prompt, then TG greedy steps one token at a time through the KV
cache, never stopping early; medians of REPS runs. transformers dequantizes the GGUF when it
loads it (to --dtype), so this is transformers on the same weights, not on the same kernels.

  hf_llm_speed.py MODEL.gguf [--pp 512] [--tg 128] [--reps 3] [--device cuda] [--dtype float16]

Prints one JSON line: {"engine": "transformers", "pp_tps": .., "tg_tps": ..}.
Needs torch, transformers and gguf (transformers reads GGUF files through it).
"""

import argparse
import json
import os
import statistics
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gguf")
    p.add_argument("--pp", type=int, default=512)
    p.add_argument("--tg", type=int, default=128)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    args = p.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, args.dtype)
    path = os.path.abspath(args.gguf)
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), torch_dtype=dtype).to(args.device).eval()
    prompt = torch.tensor([[(i * 7919 + 13) % 600 for i in range(args.pp)]], device=args.device)

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    pp_rates, tg_rates = [], []
    with torch.inference_mode():
        for _ in range(args.reps):
            sync()
            start = time.perf_counter()
            out = model(input_ids=prompt, use_cache=True)
            sync()
            pp_seconds = time.perf_counter() - start
            past, logits = out.past_key_values, out.logits[:, -1, :]
            start = time.perf_counter()
            for _ in range(args.tg):
                next_id = logits.argmax(dim=-1, keepdim=True)
                out = model(input_ids=next_id, past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[:, -1, :]
            sync()
            tg_seconds = time.perf_counter() - start
            pp_rates.append(args.pp / pp_seconds)
            tg_rates.append(args.tg / tg_seconds)
    print(json.dumps({"engine": "transformers", "dtype": args.dtype, "pp_tps": statistics.median(pp_rates),
                      "tg_tps": statistics.median(tg_rates)}))


if __name__ == "__main__":
    main()
