#!/usr/bin/env python3
"""Generation throughput of llama.cpp's own parallel decoding (several sequences in one
context, through llama-cpp-python's low-level API): the same measurement as polybrief's
`bench_llm_batched_tokens_per_second` test. For each N in --sequences, N distinct prompts of
PP token ids (the ids polybrief feeds: (i * 7919 + 13 + s * 101) % 600 for sequence s) are
prefilled, each as its own sequence of one context with n_seq_max = N; then every decode step
is one llama_decode of a batch holding the next token of all N sequences (each at its own
position), and each sequence's next token is the argmax of its logits, never stopping early.
Tokens/s is every sequence's decode steps, N * (TG - 1), over the wall time of the decode
loop (sampling included, as in polybrief's), median of REPS rounds; each round runs every N in
turn (one context per N, made once), so that ratios between counts can be taken within a round.
Prints one JSON line per N, with each round's rate in "rounds".

  llamacpp_parallel.py MODEL.gguf [--pp 128] [--tg 64] [--reps 3] [--threads 2] [--sequences 1,4,8]
"""

import argparse
import json
import statistics
import time

import llama_cpp
import llama_cpp._logger
import numpy as np


class Parallel:
    """One context of N sequences, and one round of prefill and decode on it."""

    def __init__(self, model, n_seq: int, args):
        params = llama_cpp.llama_context_default_params()
        # Each sequence gets n_ctx / n_seq_max positions, whole multiples of 256 as llama.cpp pads.
        params.n_ctx = n_seq * -(-(args.pp + args.tg + 8) // 256) * 256
        params.n_batch = 512
        params.n_ubatch = 512
        params.n_seq_max = n_seq
        params.n_threads = args.threads
        params.n_threads_batch = args.threads
        self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise SystemExit(f"llama.cpp could not make a context for {n_seq} sequences")
        vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(max(512, n_seq), 0, 1)
        self.n_seq = n_seq
        self.args = args

    def decode(self, entries):
        """entries: (token, position, sequence, wants logits)."""
        batch = self.batch
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        if llama_cpp.llama_decode(self.ctx, batch) != 0:
            raise SystemExit("llama_decode failed")

    def argmax(self, i: int) -> int:
        logits = llama_cpp.llama_get_logits_ith(self.ctx, i)
        return int(np.ctypeslib.as_array(logits, shape=(self.n_vocab,)).argmax())

    def round(self) -> float:
        """Tokens/s of one round's decode loop."""
        args, n_seq = self.args, self.n_seq
        prompts = [[(i * 7919 + 13 + s * 101) % 600 for i in range(args.pp)] for s in range(n_seq)]
        llama_cpp.llama_memory_clear(self.memory, True)
        next_ids = []
        for s, prompt in enumerate(prompts):
            for start in range(0, len(prompt), 512):
                piece = prompt[start:start + 512]
                last = start + len(piece) == len(prompt)
                self.decode([(t, start + j, s, last and j == len(piece) - 1) for j, t in enumerate(piece)])
            next_ids.append(self.argmax(-1))
        started = time.perf_counter()
        for step in range(args.tg - 1):
            self.decode([(next_ids[s], args.pp + step, s, True) for s in range(n_seq)])
            next_ids = [self.argmax(s) for s in range(n_seq)]
        return n_seq * (args.tg - 1) / (time.perf_counter() - started)

    def free(self):
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--pp", type=int, default=128)
    parser.add_argument("--tg", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sequences", default="1,4,8")
    args = parser.parse_args()

    # Errors only (llama.cpp logs every context it makes), as `Llama(verbose=False)` sets it.
    llama_cpp._logger.set_verbose(False)
    llama_cpp.llama_backend_init()
    model_params = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(args.model.encode(), model_params)
    if not model:
        raise SystemExit(f"llama.cpp could not load {args.model}")
    counts = [int(n) for n in args.sequences.split(",")]
    contexts = [Parallel(model, n_seq, args) for n_seq in counts]
    rounds = [[] for _ in counts]
    for _ in range(args.reps):
        for context, rates in zip(contexts, rounds):
            rates.append(context.round())
    for n_seq, context, rates in zip(counts, contexts, rounds):
        context.free()
        tps = statistics.median(rates)
        print(json.dumps({
            "engine": "llama.cpp (llama-cpp-python " + llama_cpp.__version__ + ")",
            "gguf": args.model,
            "sequences": n_seq,
            "pp_tokens": args.pp,
            "tg_tokens": args.tg,
            "tg_tps": round(tps, 2),
            "rounds": [round(r, 2) for r in rates],
        }), flush=True)
    llama_cpp.llama_model_free(model)


if __name__ == "__main__":
    main()
