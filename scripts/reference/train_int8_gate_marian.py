#!/usr/bin/env python3
"""Trains a small Marian on a synthetic task: the fixture of polybrief's int8 quality gate.

Random weights cannot test int8: a random model's next-token distributions are nearly flat, so
the small error of int8 flips its argmax all the time and agreement says nothing about a real
model. A trained model's distributions are peaked, as a real opus-mt's are. This script trains
one for a few minutes on a synthetic "translation" (each source token is mapped through a fixed
permutation of the vocabulary, so the decoder has to learn both the lookup and to attend to the
right source position), then writes:

  tests/fixtures/marian/trained-synthetic/
    config.json, generation_config.json, model.safetensors   the model (about 1 MB)
    reference.json   held-out source ids with transformers' float32 greedy and beam-4 outputs,
                     the training log, and (when ctranslate2 is installed) CTranslate2 int8's
                     agreement with CTranslate2 float32 on the same model and sentences

The Rust test `int8_agrees_with_f32_on_a_trained_model` (tests/integration/marian_int8.rs)
decodes the same sources with polybrief in int8 and compares. Everything is seeded; the
training runs a fixed number of steps, so the result does not depend on the machine's speed.

Run: scripts/reference/run.sh train_int8_gate_marian.py [--steps 600] [--threads 1]
(ctranslate2 comes from scripts/bench/requirements-translate.txt; without it the CTranslate2
figure is left out).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import GenerationConfig, MarianConfig, MarianMTModel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT = REPO / "tests" / "fixtures" / "marian" / "trained-synthetic"

SEED = 20261201
VOCAB = 96
EOS, UNK, PAD = 0, 1, VOCAB - 1
CONTENT = list(range(2, PAD))  # 93 content tokens
MAX_NEW_TOKENS = 24
EVAL_SENTENCES = 300


def task():
    """The fixed permutation of the content tokens."""
    rng = random.Random(SEED)
    targets = CONTENT[:]
    rng.shuffle(targets)
    return dict(zip(CONTENT, targets))


def make_pair(rng, mapping, min_len=3, max_len=12):
    src = [rng.choice(CONTENT) for _ in range(rng.randint(min_len, max_len))]
    return src + [EOS], [mapping[t] for t in src] + [EOS]


def config():
    return MarianConfig(
        vocab_size=VOCAB, decoder_vocab_size=VOCAB, d_model=64,
        encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=256, decoder_ffn_dim=256, max_position_embeddings=128,
        activation_function="swish", scale_embedding=True, static_position_embeddings=True,
        pad_token_id=PAD, decoder_start_token_id=PAD, eos_token_id=EOS, forced_eos_token_id=EOS,
        share_encoder_decoder_embeddings=True, dropout=0.0, attention_dropout=0.0,
        # Larger than Marian's 0.02 so that, at d_model 64, token embeddings are not drowned by
        # the sinusoidal positions and a few hundred steps learn the task.
        init_std=0.1,
    )


def pad_batch(seqs, value):
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def train(model, steps, batch, log):
    mapping = task()
    rng = random.Random(SEED + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / steps))
    model.train()
    start = time.time()
    for step in range(steps):
        pairs = [make_pair(rng, mapping) for _ in range(batch)]
        ids = pad_batch([p[0] for p in pairs], PAD)
        labels = pad_batch([p[1] for p in pairs], -100)
        out = model(input_ids=ids, attention_mask=(ids != PAD).long(), labels=labels)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            # Kept zero throughout: the decoder's first input is the pad (start) token, and
            # CTranslate2 starts Marian from a zero vector instead ("start_from_zero_embedding");
            # with this row zero both decode the same model.
            model.model.shared.weight[PAD].zero_()
        if step % 50 == 0 or step == steps - 1:
            line = f"step {step}: loss {out.loss.item():.4f} ({time.time() - start:.0f} s)"
            print(line, file=sys.stderr, flush=True)
            log.append(line)
    model.eval()
    return time.time() - start


def generate(model, sources, num_beams):
    kwargs = dict(num_beams=num_beams, do_sample=False, max_new_tokens=MAX_NEW_TOKENS,
                  no_repeat_ngram_size=0)
    if num_beams > 1:
        kwargs.update(length_penalty=1.0, early_stopping=True)
    outs = []
    with torch.inference_mode():
        for src in sources:
            ids = torch.tensor([src])
            outs.append(model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                       **kwargs)[0].tolist())
    return outs


def ct2_agreement(model_dir, sources, greedy, beam4):
    """CTranslate2 int8 against CTranslate2 float32 on the same model: the figure the README
    puts beside polybrief's. None when ctranslate2 is not installed."""
    try:
        import ctranslate2
        import sentencepiece as spm
    except ImportError:
        return None
    work = Path(tempfile.mkdtemp())
    try:
        conv_dir = work / "hf"
        shutil.copytree(model_dir, conv_dir)
        # The converter reads a MarianTokenizer: a throwaway sentencepiece model, and a vocab
        # whose pieces name the ids (ids are what is fed, pieces only their names).
        text = work / "spm.txt"
        rng = random.Random(SEED)
        text.write_text("\n".join(" ".join("".join(rng.choice("abcdefgh") for _ in range(4))
                                           for _ in range(10)) for _ in range(500)))
        spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(work / "spm"),
                                       vocab_size=40, model_type="unigram", bos_id=-1,
                                       eos_id=0, unk_id=1, pad_id=-1)
        for side in ("source", "target"):
            shutil.copy(work / "spm.model", conv_dir / f"{side}.spm")
        vocab = {"</s>": EOS, "<unk>": UNK, "<pad>": PAD}
        for i in CONTENT:
            vocab[f"▁t{i}"] = i
        (conv_dir / "vocab.json").write_text(json.dumps(vocab))
        (conv_dir / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "MarianTokenizer", "source_lang": "de", "target_lang": "en"}))
        piece = {i: p for p, i in vocab.items()}
        results = {}
        for quant in ("float32", "int8"):
            out = work / f"ct2-{quant}"
            ctranslate2.converters.TransformersConverter(str(conv_dir)).convert(
                str(out), quantization=quant, force=True)
            translator = ctranslate2.Translator(str(out), device="cpu", compute_type=quant,
                                                intra_threads=2)
            batch = [[piece[i] for i in s[:-1]] for s in sources]
            for beams in (1, 4):
                res = translator.translate_batch(batch, beam_size=beams,
                                                 max_decoding_length=MAX_NEW_TOKENS,
                                                 length_penalty=1.0)
                results[(quant, beams)] = [r.hypotheses[0] for r in res]

        def agree(a, b):
            return sum(x == y for x, y in zip(a, b)) / len(a)

        def as_ids(hyps):
            return [[vocab[p] for p in h] for h in hyps]

        # CTranslate2 float32 against transformers (a check that the conversion is faithful):
        # transformers' ids carry the decoder start token and the final EOS, CT2's neither.
        hf_greedy = [g[1:-1] if g[-1] == EOS else g[1:] for g in greedy]
        hf_beam = [g[1:-1] if g[-1] == EOS else g[1:] for g in beam4]
        return {
            "version": ctranslate2.__version__,
            "int8_vs_float32_greedy": agree(results[("int8", 1)], results[("float32", 1)]),
            "int8_vs_float32_beam4": agree(results[("int8", 4)], results[("float32", 4)]),
            "float32_vs_transformers_greedy": agree(as_ids(results[("float32", 1)]), hf_greedy),
            "float32_vs_transformers_beam4": agree(as_ids(results[("float32", 4)]), hf_beam),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)

    model = MarianMTModel(config())
    with torch.no_grad():
        # As in real checkpoints (and as CTranslate2 assumes) the pad row is zero.
        model.model.shared.weight[PAD].zero_()
    log = []
    seconds = train(model, args.steps, args.batch, log)
    model.generation_config = GenerationConfig(
        bad_words_ids=[[PAD]], bos_token_id=0, decoder_start_token_id=PAD, eos_token_id=EOS,
        forced_eos_token_id=EOS, max_length=128, num_beams=4, pad_token_id=PAD)

    mapping = task()
    rng = random.Random(SEED + 2)
    pairs = [make_pair(rng, mapping) for _ in range(EVAL_SENTENCES)]
    sources = [s for s, _ in pairs]
    greedy = generate(model, sources, 1)
    beam4 = generate(model, sources, 4)
    # How well the model learnt the task (greedy output = the rule's output).
    exact = sum(g[1:] == t for g, (_, t) in zip(greedy, pairs)) / len(pairs)
    print(f"greedy exact match with the task's rule: {exact:.3f}", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    ct2 = ct2_agreement(args.out, sources, greedy, beam4)
    reference = {
        "generation": {"max_new_tokens": MAX_NEW_TOKENS, "num_beams": 4, "length_penalty": 1.0,
                       "early_stopping": True, "no_repeat_ngram_size": 0},
        "training": {"steps": args.steps, "batch": args.batch, "seconds": round(seconds),
                     "log": log, "greedy_exact_match_with_rule": exact,
                     "torch": torch.__version__},
        "ctranslate2": ct2,
        "sentences": [{"input_ids": s, "greedy_ids": g, "beam4_ids": b}
                      for s, g, b in zip(sources, greedy, beam4)],
    }
    (args.out / "reference.json").write_text(json.dumps(reference, separators=(",", ":")) + "\n")
    print(json.dumps({k: v for k, v in reference.items() if k != "sentences"}, indent=1))


if __name__ == "__main__":
    main()
