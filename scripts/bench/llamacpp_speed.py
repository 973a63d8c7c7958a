#!/usr/bin/env python3
"""Prompt-processing and generation speed of llama.cpp (through llama-cpp-python) on a GGUF:
the same measurement as polybrief's `bench_llm_tokens_per_second` test. The prompt is PP
token ids (the same ids polybrief feeds), evaluated in batches of 512; then TG tokens are
decoded one at a time after it, greedily, never stopping early. Prints one JSON line with the
median of REPS runs, after WARMUP unmeasured ones (the first run after loading also maps the
weights in); times come from llama.cpp's own counters (llama_perf_context).

  llamacpp_speed.py MODEL.gguf [--pp 512] [--tg 128] [--reps 3] [--warmup 0] [--threads 2]
"""

import argparse
import json
import statistics

import llama_cpp
import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--pp", type=int, default=512)
    parser.add_argument("--tg", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=args.pp + args.tg + 8,
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    # The ids polybrief's benchmark uses: (i * 7919 + 13) % 600.
    prompt = [(i * 7919 + 13) % 600 for i in range(args.pp)]
    n_vocab = llm.n_vocab()

    def argmax_last() -> int:
        logits = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return int(np.ctypeslib.as_array(logits, shape=(n_vocab,)).argmax())

    pp_rates, tg_rates = [], []
    for run in range(args.warmup + args.reps):
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.eval(prompt)
        next_id = argmax_last()
        for _ in range(args.tg - 1):
            llm.eval([next_id])
            next_id = argmax_last()
        perf = llama_cpp.llama_perf_context(llm.ctx)
        if run < args.warmup:
            continue
        pp_rates.append(perf.n_p_eval / (perf.t_p_eval_ms / 1000.0))
        tg_rates.append(perf.n_eval / (perf.t_eval_ms / 1000.0))
    print(json.dumps({
        "engine": "llama.cpp (llama-cpp-python " + llama_cpp.__version__ + ")",
        "gguf": args.model,
        "pp_tokens": args.pp,
        "tg_tokens": args.tg,
        "pp_tps": round(statistics.median(pp_rates), 2),
        "tg_tps": round(statistics.median(tg_rates), 2),
    }))


if __name__ == "__main__":
    main()
