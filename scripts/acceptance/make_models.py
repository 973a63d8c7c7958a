#!/usr/bin/env python3
"""Makes random-weight stand-ins, at the real sizes, for the default-catalog models that the
acceptance run on ../shared/seeds (vi, de, en, en, ko) needs, laid out file for file like the hub
repos, plus a manifest for local_hub.py and a catalog override (--models) that pins them.

Nothing here is downloaded. What a model costs a CPU depends on its shapes, dtype and
quantization, not on the values of its weights, so these files time the pipeline the way the
real ones would (see README.md for where random weights differ: output lengths).

  make_models.py --out .bench/acceptance/models        # reuses what is already there
  make_models.py --out ... --force                     # rebuilds everything

Per model (shapes from the real config.json; sources in README.md):
  opus-mt-de-en        d_model 512, 6+6 layers, 8 heads, ffn 2048, vocab 58101, swish, float32,
                       model.safetensors laid out like the SFconvertbot file at the pinned revision
  opus-mt-vi-en        same shapes, vocab 53739, float32, pytorch_model.bin in the 2020 layout
                       (no lm_head.weight, sinusoid tables saved)
  opus-mt-zh-en        as vi-en, vocab 65001 (seed 002 quotes Chinese paragraphs)
  opus-mt-tc-big-ko-en d_model 1024, 6+6 layers, 16 heads, ffn 4096, vocab 32001, relu,
                       float16 pytorch_model.bin in the transformers>=4.29 layout (no sinusoids)
  qwen2.5-1.5b-instruct-q4_k_m
                       scripts/bench/make_random_gguf.py (f16) quantized with llama.cpp's own
                       Q4_K_M recipe (scripts/bench/quantize_gguf.py), with the tokenizer below
  all-minilm-l6-v2     BERT 384-wide, 6 layers, 12 heads, ffn 1536, vocab 30522 (story grouping),
                       model.safetensors with the pooler, WordPiece tokenizer.json laid out like
                       bert-base-uncased's, sentence_bert_config.json (max_seq_length 256)
  tokenizer.json       byte-level BPE in Qwen2's format trained on corpus/, padded with unreachable
                       entries to Qwen2.5's 151643 regular tokens, then its 22 special tokens at
                       their real ids (151643..151664)

Sentencepiece models are trained on corpus/ (project-written news sentences, not the seeds) and
vocab.json is padded with dummy pieces to the model's vocabulary so that ids line up.

Needs: torch, transformers, sentencepiece, tokenizers, safetensors, gguf, numpy (this Python) and
llama-cpp-python (QUANT_PYTHON, default: this Python) for the Q4_K_M step; see requirements.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
SEED = 20250101

# Bump when the way a model is made changes, so cached copies are rebuilt.
RECIPE_VERSION = 3

# The translators the seeds need, with the facts of the real repos (README.md cites them).
MARIAN = {
    "opus-mt-de-en": dict(
        repo="Helsinki-NLP/opus-mt-de-en",
        src="de",
        d_model=512,
        layers=6,
        heads=8,
        ffn=2048,
        vocab=58101,
        activation="swish",
        max_positions=512,
        dtype="float32",
        num_beams=4,
        layout="sfconvert",
        files=["config.json", "generation_config.json", "model.safetensors", "source.spm", "target.spm", "vocab.json"],
    ),
    "opus-mt-vi-en": dict(
        repo="Helsinki-NLP/opus-mt-vi-en",
        src="vi",
        d_model=512,
        layers=6,
        heads=8,
        ffn=2048,
        vocab=53739,
        activation="swish",
        max_positions=512,
        dtype="float32",
        num_beams=6,
        layout="bin2020",
        files=["config.json", "pytorch_model.bin", "source.spm", "target.spm", "vocab.json"],
    ),
    # Seed 002 (English) quotes four paragraphs in Chinese; segment-level language detection
    # sends them to the zh translator, so the run needs it too.
    "opus-mt-zh-en": dict(
        repo="Helsinki-NLP/opus-mt-zh-en",
        src="zh",
        d_model=512,
        layers=6,
        heads=8,
        ffn=2048,
        vocab=65001,
        activation="swish",
        max_positions=512,
        dtype="float32",
        num_beams=6,
        layout="bin2020",
        files=["config.json", "pytorch_model.bin", "source.spm", "target.spm", "vocab.json"],
    ),
    "opus-mt-tc-big-ko-en": dict(
        repo="Helsinki-NLP/opus-mt-tc-big-ko-en",
        src="ko",
        d_model=1024,
        layers=6,
        heads=16,
        ffn=4096,
        vocab=32001,
        activation="relu",
        max_positions=1024,
        dtype="float16",
        num_beams=4,
        layout="bin429",
        files=["config.json", "pytorch_model.bin", "source.spm", "target.spm", "vocab.json"],
    ),
}

QWEN = dict(
    id="qwen2.5-1.5b-instruct-q4_k_m",
    repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
    gguf="qwen2.5-1.5b-instruct-q4_k_m.gguf",
    tokenizer_repo="Qwen/Qwen2.5-1.5B-Instruct",
)
# The story-grouping sentence embedder (config.json of sentence-transformers/all-MiniLM-L6-v2).
MINILM = dict(
    id="all-minilm-l6-v2",
    repo="sentence-transformers/all-MiniLM-L6-v2",
    config={
        "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 384,
        "initializer_range": 0.02,
        "intermediate_size": 1536,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": 12,
        "num_hidden_layers": 6,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.8.2",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": 30522,
    },
    files=["config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json"],
)

# Qwen2.5's tokenizer: 151643 regular tokens, then these specials in this order (ids 151643..).
QWEN_REGULAR_TOKENS = 151643
QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
# Not special in Qwen's tokenizer_config.json (special: false), but added tokens all the same.
QWEN_NON_SPECIAL = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Which files the hub stores in Git LFS (their ETag is the sha256, as the hub sends it).
LFS_SUFFIXES = (".bin", ".safetensors", ".spm", ".gguf", ".model", ".h5")


def log(msg: str):
    print(f"[make_models] {msg}", file=sys.stderr, flush=True)


def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: pathlib.Path) -> str:
    data = path.read_bytes()
    h = hashlib.sha1()
    h.update(f"blob {len(data)}\0".encode())
    h.update(data)
    return h.hexdigest()


def stamp_ok(directory: pathlib.Path, spec: dict) -> bool:
    stamp = directory / ".made"
    return stamp.is_file() and json.loads(stamp.read_text()) == spec


def write_stamp(directory: pathlib.Path, spec: dict):
    (directory / ".made").write_text(json.dumps(spec, sort_keys=True))


# --- Marian --------------------------------------------------------------------------------


LINGUA_CRATES = {"en": "english", "de": "german", "vi": "vietnamese", "ko": "korean", "zh": "chinese"}


def lingua_sentences(lang: str) -> pathlib.Path | None:
    """The 1000 news sentences (Leipzig corpora, Apache-2.0) that lingua's language-model crate
    for `lang` ships as test data. lingua is an optional dependency in Cargo.lock (the langid
    benchmark), so `cargo fetch` puts these files in the cargo registry on every machine that
    builds polybrief. More text gives sentencepiece and BPE vocabularies whose pieces are about
    as long as the real models' ones, so sequence lengths (and thus times) are realistic."""
    crate = f"lingua-{LINGUA_CRATES[lang]}-language-model"
    lock = (ROOT / "Cargo.lock").read_text()
    marker = f'name = "{crate}"\nversion = "'
    at = lock.find(marker)
    if at < 0:
        return None
    version = lock[at + len(marker):].split('"', 1)[0]
    cargo_home = pathlib.Path(os.environ.get("CARGO_HOME", pathlib.Path.home() / ".cargo"))
    for src in sorted((cargo_home / "registry" / "src").glob("*")):
        path = src / f"{crate}-{version}" / "testdata" / "sentences.txt"
        if path.is_file():
            return path
    return None


def corpus_lines(lang: str) -> list[str]:
    """corpus/LANG.txt (project-written), plus lingua's test sentences when available."""
    lines = [line.strip() for line in (CORPUS / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    extra = lingua_sentences(lang)
    if extra is None:
        log(f"lingua's {lang} test sentences not found (run `cargo fetch`); training on corpus/{lang}.txt only, "
            f"which gives shorter pieces and longer sequences than the real models")
    else:
        lines += [line.strip() for line in extra.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def train_spm(lang: str, out: pathlib.Path, vocab_size: int):
    """A unigram sentencepiece model like Marian's (its own ids are unused: vocab.json maps pieces)."""
    import sentencepiece as spm

    text = "\n".join(corpus_lines(lang))
    prefix = out.with_suffix("")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        seed_sentencepiece_size=100000,
        num_threads=1,
        minloglevel=2,
    )
    shutil.move(str(prefix) + ".model", out)
    pathlib.Path(str(prefix) + ".vocab").unlink(missing_ok=True)


def spm_pieces(path: pathlib.Path) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(path))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def pseudo_words(prefix: str):
    """Lowercase pronounceable filler words ("bako", "tirelu", ...), endless and distinct, each
    yielded once with `prefix` (a word start) and once without (a word continuation).

    They pad a vocabulary to the real model's size. A random model picks filler as often as
    anything else, so filler must look like what real vocabularies hold (word pieces), not like
    markup or numbers: "<dummy123>" decodes to a string that later tokenizers split into many
    tokens and that the fact checker reads as a number."""
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    length = 2
    while True:
        n = len(syllables) ** length
        for i in range(n):
            parts = []
            for _ in range(length):
                i, r = divmod(i, len(syllables))
                parts.append(syllables[r])
            word = "".join(parts)
            yield prefix + word
            yield word
        length += 1


def marian_vocab(source: pathlib.Path, target: pathlib.Path, size: int) -> dict[str, int]:
    """Joint vocabulary as opus-mt repos ship it: </s> 0, <unk> 1, the pieces of both models,
    then (here) filler pieces up to the model's size, and <pad> last."""
    vocab = {"</s>": 0, "<unk>": 1}
    for piece in spm_pieces(source) + spm_pieces(target):
        if piece in ("<unk>", "<s>", "</s>") or piece in vocab:
            continue
        vocab[piece] = len(vocab)
    if len(vocab) > size - 1:
        raise SystemExit(f"sentencepiece pieces ({len(vocab)}) exceed the vocabulary ({size})")
    filler = pseudo_words("\u2581")
    while len(vocab) < size - 1:
        piece = next(filler)
        if piece not in vocab:
            vocab[piece] = len(vocab)
    vocab["<pad>"] = size - 1
    return vocab


def marian_config(name: str, spec: dict) -> dict:
    """config.json as the real repo has it at the catalog's revision (keys of that era)."""
    v, pad = spec["vocab"], spec["vocab"] - 1
    common = {
        "_name_or_path": f"/tmp/{spec['repo']}",
        "activation_dropout": 0.0,
        "activation_function": spec["activation"],
        "architectures": ["MarianMTModel"],
        "attention_dropout": 0.0,
        "bad_words_ids": [[pad]],
        "bos_token_id": 0,
        "classifier_dropout": 0.0,
        "d_model": spec["d_model"],
        "decoder_attention_heads": spec["heads"],
        "decoder_ffn_dim": spec["ffn"],
        "decoder_layerdrop": 0.0,
        "decoder_layers": spec["layers"],
        "decoder_start_token_id": pad,
        "decoder_vocab_size": v,
        "dropout": 0.1,
        "encoder_attention_heads": spec["heads"],
        "encoder_ffn_dim": spec["ffn"],
        "encoder_layerdrop": 0.0,
        "encoder_layers": spec["layers"],
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": 512,
        "max_position_embeddings": spec["max_positions"],
        "model_type": "marian",
        "normalize_embedding": False,
        "num_beams": spec["num_beams"],
        "num_hidden_layers": spec["layers"],
        "pad_token_id": pad,
        "scale_embedding": True,
        "share_encoder_decoder_embeddings": True,
        "static_position_embeddings": True,
        "torch_dtype": spec["dtype"],
        "use_cache": True,
        "vocab_size": v,
    }
    if spec["layout"] == "bin429":
        common["transformers_version"] = "4.34.0.dev0"
        return dict(sorted(common.items()))
    # 2020 conversions, re-saved in 2022 ("Add TF weights"): BART-era keys kept.
    common.update({
        "add_bias_logits": False,
        "add_final_layer_norm": False,
        "classif_dropout": 0.0,
        "extra_pos_embeddings": v,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
        "normalize_before": False,
        "transformers_version": "4.22.0.dev0",
    })
    return dict(sorted(common.items()))


def generation_config(spec: dict) -> dict:
    pad = spec["vocab"] - 1
    return {
        "_from_model_config": True,
        "bad_words_ids": [[pad]],
        "bos_token_id": 0,
        "decoder_start_token_id": pad,
        "eos_token_id": 0,
        "forced_eos_token_id": 0,
        "max_length": 512,
        "num_beams": spec["num_beams"],
        "pad_token_id": pad,
        "transformers_version": "4.27.0.dev0",
    }


def make_marian(name: str, spec: dict, out: pathlib.Path, force: bool):
    directory = out / spec["repo"]
    recipe = {"recipe": RECIPE_VERSION, **spec}
    if not force and stamp_ok(directory, recipe):
        log(f"{name}: cached at {directory}")
        return
    import torch
    from transformers import MarianConfig, MarianMTModel

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    log(f"{name}: training sentencepiece models on corpus/{spec['src']}.txt and corpus/en.txt")
    train_spm(spec["src"], directory / "source.spm", 16000)
    train_spm("en", directory / "target.spm", 16000)
    vocab = marian_vocab(directory / "source.spm", directory / "target.spm", spec["vocab"])
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    config = marian_config(name, spec)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if "generation_config.json" in spec["files"]:
        (directory / "generation_config.json").write_text(json.dumps(generation_config(spec), indent=2) + "\n")

    log(f"{name}: random weights, {spec['d_model']}-wide, vocab {spec['vocab']}, {spec['dtype']}")
    torch.manual_seed(SEED)
    hf_config = MarianConfig(
        vocab_size=spec["vocab"],
        decoder_vocab_size=spec["vocab"],
        d_model=spec["d_model"],
        encoder_layers=spec["layers"],
        decoder_layers=spec["layers"],
        encoder_attention_heads=spec["heads"],
        decoder_attention_heads=spec["heads"],
        encoder_ffn_dim=spec["ffn"],
        decoder_ffn_dim=spec["ffn"],
        activation_function=spec["activation"],
        max_position_embeddings=spec["max_positions"],
        pad_token_id=spec["vocab"] - 1,
        decoder_start_token_id=spec["vocab"] - 1,
        eos_token_id=0,
        forced_eos_token_id=0,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
    )
    model = MarianMTModel(hf_config).eval()
    dtype = torch.float16 if spec["dtype"] == "float16" else torch.float32
    state = {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()}
    shared = state["model.shared.weight"]
    tied = ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight", "lm_head.weight"]
    positions = ["model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"]
    if spec["layout"] == "sfconvert":
        # The SFconvertbot's convert.py drops the tied names (MarianMTModel._tied_weights_keys)
        # and keeps model.shared.weight; the 2020 .bin it converted had the sinusoid tables.
        from safetensors.torch import save_file

        for k in tied:
            state.pop(k)
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        if spec["layout"] == "bin2020":
            # BartForConditionalGeneration of mid-2020: no lm_head parameter (logits came from
            # model.shared), embeddings tied by storage, sinusoid tables saved.
            state.pop("lm_head.weight")
        else:
            # transformers >= 4.29 save_pretrained: tied names kept (one storage), sinusoid
            # tables in _keys_to_ignore_on_save.
            for k in positions:
                state.pop(k)
        for k in tied:
            if k in state:
                state[k] = shared
        torch.save(state, directory / "pytorch_model.bin")

    missing = [f for f in spec["files"] if not (directory / f).is_file()]
    extra = [p.name for p in directory.iterdir() if p.is_file() and p.name not in spec["files"] and p.name != ".made"]
    if missing or extra:
        raise SystemExit(f"{name}: files differ from the catalog's list: missing {missing}, extra {extra}")
    write_stamp(directory, recipe)
    weights = next(directory / f for f in spec["files"] if f.endswith((".bin", ".safetensors")))
    log(f"{name}: {weights.name} {weights.stat().st_size / 1e6:.1f} MB")


# --- Qwen tokenizer and GGUF ---------------------------------------------------------------


def make_qwen_tokenizer(directory: pathlib.Path):
    """tokenizer.json / tokenizer_config.json in Qwen2.5-Instruct's format and real special ids."""
    import tokenizers
    from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE

    tok = tokenizers.Tokenizer(BPE(dropout=None, unk_token=None, continuing_subword_prefix="",
                                   end_of_word_suffix="", fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=60000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    lines = [line for lang in ("en", "de", "vi", "ko") for line in corpus_lines(lang)]
    tok.train_from_iterator(lines, trainer=trainer)

    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    trained = len(vocab)
    # Entries no merge produces, so the specials get Qwen2.5's real ids. Byte-level BPE writes
    # a leading space as "\u0120" (Ġ); the filler is lowercase words, like most real entries.
    filler = pseudo_words("\u0120")
    while len(vocab) < QWEN_REGULAR_TOKENS:
        token = next(filler)
        if token not in vocab:
            vocab[token] = len(vocab)
    tok = tokenizers.Tokenizer.from_str(json.dumps(data))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in QWEN_SPECIALS])
    for i, t in enumerate(QWEN_SPECIALS):
        assert tok.token_to_id(t) == QWEN_REGULAR_TOKENS + i, t
    tok.save(str(directory / "tokenizer.json"))

    template = (ROOT / "scripts/reference/qwen2_5_chat_template.jinja").read_text()
    decoder = {
        str(QWEN_REGULAR_TOKENS + i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                      "single_word": False, "special": t not in QWEN_NON_SPECIAL}
        for i, t in enumerate(QWEN_SPECIALS)
    }
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": [t for t in QWEN_SPECIALS[1:14]],
        "bos_token": None,
        "chat_template": template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    log(f"qwen tokenizer: {trained} trained tokens, padded to {QWEN_REGULAR_TOKENS}, +{len(QWEN_SPECIALS)} specials")


def quant_python() -> str:
    return os.environ.get("QUANT_PYTHON") or sys.executable


def make_qwen(out: pathlib.Path, force: bool):
    tok_dir = out / QWEN["tokenizer_repo"]
    gguf_dir = out / QWEN["repo"]
    tok_recipe = {"recipe": RECIPE_VERSION, "what": "qwen2.5 tokenizer", "specials": QWEN_SPECIALS}
    if force or not stamp_ok(tok_dir, tok_recipe):
        if tok_dir.exists():
            shutil.rmtree(tok_dir)
        tok_dir.mkdir(parents=True)
        make_qwen_tokenizer(tok_dir)
        write_stamp(tok_dir, tok_recipe)
    else:
        log(f"qwen tokenizer: cached at {tok_dir}")

    gguf_recipe = {"recipe": RECIPE_VERSION, "what": "qwen2.5-1.5b q4_k_m",
                   "tokenizer": sha256_file(tok_dir / "tokenizer.json")}
    if not force and stamp_ok(gguf_dir, gguf_recipe):
        log(f"qwen gguf: cached at {gguf_dir}")
        return
    if gguf_dir.exists():
        shutil.rmtree(gguf_dir)
    gguf_dir.mkdir(parents=True)
    f16 = gguf_dir / "f16.gguf.tmp"
    log("qwen gguf: random f16 weights at Qwen2.5-1.5B's shapes (about 3 GB, a few minutes)")
    subprocess.run([sys.executable, str(ROOT / "scripts/bench/make_random_gguf.py"), "--model", "qwen2.5-1.5b",
                    "--type", "f16", "--seed", "0", "--tokenizer-dir", str(tok_dir), "--out", str(f16)], check=True)
    log(f"qwen gguf: quantizing to Q4_K_M with llama.cpp ({quant_python()})")
    target = gguf_dir / QWEN["gguf"]
    subprocess.run([quant_python(), str(ROOT / "scripts/bench/quantize_gguf.py"), str(f16), str(target), "Q4_K_M"],
                   check=True)
    f16.unlink()
    write_stamp(gguf_dir, gguf_recipe)
    log(f"qwen gguf: {target.stat().st_size / 1e6:.1f} MB")


# --- sentence embedder ---------------------------------------------------------------------


def make_wordpiece_tokenizer(directory: pathlib.Path, size: int):
    """tokenizer.json laid out like bert-base-uncased's (MiniLM uses it): [PAD] 0, [unused0..98]
    1-99, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then characters, ##characters and the
    most frequent lowercased words of the corpora, padded with filler words to `size`."""
    import collections
    import re

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    counts = collections.Counter()
    chars = set()
    for lang in ("en", "de", "vi", "ko", "zh"):
        text = "\n".join(corpus_lines(lang)).lower()
        chars.update(c for c in text if not c.isspace())
        counts.update(re.findall(r"\w+", text))
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted(chars) + ["##" + c for c in sorted(chars)]
    seen = set(vocab)
    for word in sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w)):
        if len(vocab) >= size:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    filler = pseudo_words("##")
    while len(vocab) < size:
        piece = next(filler)
        if piece not in seen:
            vocab.append(piece)
            seen.add(piece)
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]",
                                     max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 101), ("[SEP]", 102)])
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.save(str(directory / "tokenizer.json"))


def make_minilm(out: pathlib.Path, force: bool):
    directory = out / MINILM["repo"]
    recipe = {"recipe": RECIPE_VERSION, **{k: v for k, v in MINILM.items()}}
    if not force and stamp_ok(directory, recipe):
        log(f"{MINILM['id']}: cached at {directory}")
        return
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    cfg = MINILM["config"]
    (directory / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False},
                                                                    indent=2) + "\n")
    make_wordpiece_tokenizer(directory, cfg["vocab_size"])
    torch.manual_seed(SEED)
    model = BertModel(BertConfig(**{k: v for k, v in cfg.items() if not k.startswith("_") and k != "architectures"}),
                      add_pooling_layer=True).eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    write_stamp(directory, recipe)
    log(f"{MINILM['id']}: model.safetensors {(directory / 'model.safetensors').stat().st_size / 1e6:.1f} MB")


# --- manifest and catalog ------------------------------------------------------------------


def catalog_revision(model_id: str) -> tuple[str, list[dict]]:
    """The revision and file list of a default-catalog entry (models/catalog.toml)."""
    import tomllib

    catalog = tomllib.loads((ROOT / "models/catalog.toml").read_text())
    for entry in catalog["model"]:
        if entry["id"] == model_id:
            return entry["revision"], entry["files"]
    raise SystemExit(f"models/catalog.toml has no entry `{model_id}`")


def describe(path: pathlib.Path) -> dict:
    lfs = path.name.endswith(LFS_SUFFIXES) or path.name == "tokenizer.json" or path.stat().st_size > 10_000_000
    sha256 = sha256_file(path)
    return {"size": path.stat().st_size, "sha256": sha256, "etag": sha256 if lfs else git_blob_sha1(path), "lfs": lfs}


def write_manifest_and_catalog(out: pathlib.Path, manifest_path: pathlib.Path, catalog_path: pathlib.Path,
                               local_catalog_path: pathlib.Path | None = None):
    import tomllib

    default = tomllib.loads((ROOT / "models/catalog.toml").read_text())
    by_id = {e["id"]: e for e in default["model"]}
    served = []
    entries = []
    for model_id in list(MARIAN) + [QWEN["id"], MINILM["id"]]:
        entry = dict(by_id[model_id])
        files = []
        for f in entry["files"]:
            repo = f.get("repo", entry["repo"])
            revision = f.get("revision", entry["revision"])
            path = out / repo / f["name"]
            if not path.is_file():
                raise SystemExit(f"{model_id}: the catalog lists {f['name']} but {path} was not made")
            info = describe(path)
            served.append({"repo": repo, "revision": revision, "file": f["name"], "path": str(path), **info})
            pinned = {"name": f["name"], "size": info["size"], "sha256": info["sha256"]}
            if "repo" in f:
                pinned["repo"] = f["repo"]
            if "revision" in f:
                pinned["revision"] = f["revision"]
            files.append(pinned)
        entry["files"] = files
        entries.append(entry)
    # tokenizer_config.json is not in the catalog's list (the GGUF carries the chat template);
    # it is served anyway, like the real repo does.
    extra = out / QWEN["tokenizer_repo"] / "tokenizer_config.json"
    served.append({"repo": QWEN["tokenizer_repo"], "revision": "main", "file": extra.name, "path": str(extra),
                   **describe(extra)})
    manifest_path.write_text(json.dumps({"files": served}, indent=2) + "\n")

    header = [
        "# Written by scripts/acceptance/make_models.py: the default catalog's entries for the seeds'",
        "# languages and the summarizer, same ids, repos and revisions, pinned to the random-weight",
        "# stand-ins' sizes and sha256 (the real files' pins would rightly reject them).",
    ]
    catalog_path.write_text(catalog_text(header, entries))
    if local_catalog_path is not None:
        # The same entries read from local folders (`path`), for offline benchmarks without the
        # local hub (scripts/bench/e2e.sh). A model whose files sit in several repos (the GGUF
        # and its tokenizer) gets one folder of links.
        for e in entries:
            repos = {f.get("repo", e["repo"]) for f in e["files"]}
            folder = out / e["repo"]
            if len(repos) > 1:
                folder = out / "local" / e["id"]
                folder.mkdir(parents=True, exist_ok=True)
                for f in e["files"]:
                    link = folder / f["name"]
                    link.unlink(missing_ok=True)
                    link.symlink_to(out / f.get("repo", e["repo"]) / f["name"])
            e["path"] = str(folder)
            e["files"] = [{k: v for k, v in f.items() if k not in ("repo", "revision")} for f in e["files"]]
        local_header = header[:2] + ["# stand-ins' sizes and sha256, read from local folders."]
        local_catalog_path.write_text(catalog_text(local_header, entries))


def catalog_text(header: list[str], entries: list[dict]) -> str:
    lines = header + ["schema = 1", ""]
    for e in entries:
        lines.append("[[model]]")
        for key in ("id", "tasks", "langs", "fallback", "format", "repo", "revision", "license", "path"):
            if key in e:
                lines.append(f"{key} = {toml_value(e[key])}")
        lines.append("files = [")
        for f in e["files"]:
            inner = ", ".join(f"{k} = {toml_value(v)}" for k, v in f.items())
            lines.append(f"  {{ {inner} }},")
        lines.append("]")
        lines.append("")
    return "\n".join(lines)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, required=True, help="models folder (repo/file layout)")
    parser.add_argument("--manifest", type=pathlib.Path, help="default: OUT/../manifest.json")
    parser.add_argument("--catalog", type=pathlib.Path, help="default: OUT/../catalog.toml")
    parser.add_argument("--local-catalog", type=pathlib.Path,
                        help="also a catalog that reads the models from OUT's folders (path = ...), no hub needed")
    parser.add_argument("--force", action="store_true", help="rebuild even what is cached")
    parser.add_argument("--only", choices=sorted(MARIAN) + ["qwen", "minilm"], action="append",
                        help="make only these (repeatable); the manifest needs all of them")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.only or (list(MARIAN) + ["qwen", "minilm"])
    for name, spec in MARIAN.items():
        if name in wanted:
            revision, files = catalog_revision(name)
            listed = [f["name"] for f in files]
            if listed != spec["files"]:
                raise SystemExit(f"{name}: models/catalog.toml lists {listed}, this script makes {spec['files']}")
            make_marian(name, spec, out, args.force)
    if "qwen" in wanted:
        make_qwen(out, args.force)
    if "minilm" in wanted:
        revision, files = catalog_revision(MINILM["id"])
        if [f["name"] for f in files] != MINILM["files"]:
            raise SystemExit(f"{MINILM['id']}: models/catalog.toml lists {[f['name'] for f in files]}")
        make_minilm(out, args.force)
    if args.only:
        return
    manifest = args.manifest or out.parent / "manifest.json"
    catalog = args.catalog or out.parent / "catalog.toml"
    write_manifest_and_catalog(out, manifest, catalog, args.local_catalog)
    log(f"manifest {manifest}, catalog override {catalog}")


if __name__ == "__main__":
    main()
