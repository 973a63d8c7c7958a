#!/usr/bin/env python3
"""Builds the tiny Marian (opus-mt) reference fixtures that polybrief's Rust code is checked against.

Writes two fixture directories, laid out like a Helsinki-NLP/opus-mt-* repository on the hub:

  tests/fixtures/marian/tiny/      joint vocabulary (vocab.json shared by source and target,
                                   share_encoder_decoder_embeddings=true), like opus-mt-de-en
  tests/fixtures/marian/tiny-sep/  separate vocabularies (vocab.json + target_vocab.json,
                                   share_encoder_decoder_embeddings=false), like some
                                   opus-mt-tc-big models; greedy outputs only

Each holds sentencepiece models trained on scripts/reference/corpus/, a random tiny MarianMTModel
(safetensors and pytorch_model.bin), and reference.json with what transformers' MarianTokenizer
and MarianMTModel produce (format: see the "Marian reference fixture format" note in the README).

Everything is seeded: running the script twice writes byte-identical files.

Run (creates its own venv from requirements.txt):  scripts/reference/run.sh make_marian_fixtures.py
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import transformers
from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus"
SOURCE_LANGS = ["de", "fr", "es", "vi", "ko", "zh", "ru", "ja"]
SEP_SOURCE_LANGS = ["de", "fr", "es"]
TARGET_LANG = "en"

SEED = 20240611
# Small vocabularies keep the fixture small; the source side covers eight scripts, so it needs more
# pieces than the English-only target side.
SOURCE_VOCAB = 1000
TARGET_VOCAB = 350
# Multilingual opus-mt models carry target-language tokens such as >>fra<< in their vocabulary;
# a few here let the fixtures exercise MarianTokenizer's language-code handling.
LANGUAGE_CODES = [">>deu<<", ">>eng<<", ">>fra<<", ">>spa<<"]

MAX_NEW_TOKENS = 24

# The sentences every model-level check runs on: several scripts, lengths from one word to the
# longest the tiny model handles comfortably, an NFKC-normalised form, a character only the
# target sentencepiece model knows (£), a character no model knows, and a language code.
SENTENCES = [
    ("de", "Die Regierung hat am Montag neue Regeln für den Bahnverkehr beschlossen."),
    ("fr", "Les pompiers ont lutté toute la nuit contre l'incendie près de Marseille."),
    ("es", "El ayuntamiento anunció nuevas ayudas para las familias."),
    ("vi", "Giá gạo xuất khẩu tăng mạnh trong tháng này."),
    ("ko", "정부는 새로운 교통 대책을 발표했다."),
    ("zh", "市政府宣布将建设新的地铁线路。"),
    ("ru", "Правительство объявило о новых мерах поддержки семей."),
    ("ja", "東京で新しい美術館が開館した。"),
    ("de", "Ja."),
    ("de", "Der Preis für ein Ticket stieg auf £120 – ein Rekord, sagte der Sprecher am Freitag in Berlin, "
           "während die Gewerkschaft höhere Löhne, mehr Personal und bessere Arbeitszeiten für alle forderte."),
    ("fr", ">>fra<< Le nouveau tramway entrera en service cet été."),
    ("de", "ＡＢＣ－Nachrichten: Starker Regen 🌧 erwartet ﬁnal"),
]

# Text-only tokenizer cases: edge cases of normalisation, whitespace, special and language tokens.
TOKENIZER_CASES = [
    "",
    "   ",
    "  Viele   Leerzeichen\tund\nZeilenumbrüche  ",
    "Ende </s> mitten im Text",
    "a<unk>b <pad> <s>",
    ">>deu<<",
    ">>deu<<Guten Morgen",
    ">>xyz<< unbekannter Code",
    "kein >>fra<< Code am Anfang",
    "Ǆ ﬀ ㍿ ½ ① Ⅻ ﹖ ｶﾀｶﾅ",
    "Cafe\u0301 cafè naïve",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic",
    "«Hallo», sagte er… „Nein!“ — (sic) [1] {2} 3% #4 @5",
    "龘靐齉 𠀀 🙂🙂 unbekannt",
    "政府は火曜日、新しい経済対策を発表した。",
    "Правительство\u0000управления\u0007",
    "£€$¥",
    "1234567890 3,14 2.718 1/2",
    "ALLCAPS and MiXeD cAsE",
    "literal \u2581 lower block \u2581\u2581x",
    "x\ty\r\nz\u2028w\u0085v",
]

# Fragments that fuzz_texts strings together: words of every corpus script, whitespace of every
# kind, special and language tokens, characters NFKC rewrites, unknown and control characters.
FUZZ_FRAGMENTS = [
    " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2009", "\u200b", "\u2581",
    "</s>", "<unk>", "<pad>", "<s>", ">>fra<<", ">>deu<<", ">>", "<<", ">>xx<<",
    "ﬁ", "ＡＢＣ", "①", "²", "ｶﾞ", "ｱ", "e\u0301", "\u1100\u1161", "Ⅻ", "㍻", "™", "…", "–", "—",
    "🙂", "🌧", "龘", "𠀀", "\u0000", "\u0007", "\ufeff", "\u00ad",
    ".", ",", "!", "?", "«", "»", "„", "“", "'", "(", ")", "%", "£", "€", "$", "0", "42", "3,14",
]


def fuzz_texts(n: int) -> list[str]:
    """Seeded random texts mixing corpus words and FUZZ_FRAGMENTS."""
    rng = np.random.default_rng(SEED + 7)
    words = sorted({w for lang in SOURCE_LANGS + [TARGET_LANG] for line in read_lines(lang) for w in line.split()})
    out = []
    for _ in range(n):
        parts = []
        for _ in range(int(rng.integers(1, 12))):
            if rng.random() < 0.5:
                parts.append(words[int(rng.integers(len(words)))])
            else:
                parts.append(FUZZ_FRAGMENTS[int(rng.integers(len(FUZZ_FRAGMENTS)))])
            if rng.random() < 0.6:
                parts.append(" ")
        out.append("".join(parts))
    return out


def log(msg: str) -> None:
    print(msg, file=sys.stderr)


def read_lines(lang: str) -> list[str]:
    return [line for line in (CORPUS / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if line.strip()]


def train_spm(lines: list[str], vocab_size: int) -> bytes:
    """A unigram sentencepiece model trained the way OPUS-MT-train does (nmt_nfkc, default special ids:
    <unk>=0, <s>=1, </s>=2, so the spm ids differ from the Marian vocab ids, as in real repos)."""
    spm.set_random_generator_seed(SEED)
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=out,
        vocab_size=vocab_size,
        model_type="unigram",
        normalization_rule_name="nmt_nfkc",
        character_coverage=0.9995,
        num_threads=1,
        minloglevel=2,
    )
    return out.getvalue()


def spm_processor(proto: bytes) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_proto=proto)


def normal_pieces(sp: spm.SentencePieceProcessor) -> list[str]:
    return [
        sp.id_to_piece(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i))
    ]


def marian_vocab(pieces_by_freq: Counter, all_pieces: list[str], extra: list[str]) -> dict[str, int]:
    """Marian's vocabulary as convert_marian_to_pytorch.py leaves it: </s>=0, <unk>=1, the pieces in
    order of corpus frequency (marian-vocab sorts that way; ties by piece), then <pad> as the last id."""
    vocab = {"</s>": 0, "<unk>": 1}
    ordered = sorted(set(all_pieces), key=lambda p: (-pieces_by_freq.get(p, 0), p))
    for piece in ordered + extra:
        if piece not in vocab:
            vocab[piece] = len(vocab)
    vocab["<pad>"] = len(vocab)
    return vocab


def count_pieces(sp: spm.SentencePieceProcessor, lines: list[str]) -> Counter:
    counts: Counter = Counter()
    for line in lines:
        counts.update(sp.encode(line, out_type=str))
    return counts


def save_json_like_converter(obj, path: Path) -> None:
    # convert_marian_to_pytorch.save_json: json.dump with default settings (ASCII escapes, no indent).
    path.write_text(json.dumps(obj), encoding="utf-8")


def f32_list(t: torch.Tensor) -> list[float]:
    # Shortest decimal form that round-trips the float32 value: compact and exact.
    return [float(str(np.float32(v))) for v in t.detach().to(torch.float32).reshape(-1).tolist()]


def make_model(vocab_size: int, pad_id: int, separate: bool, eos_bias: float) -> MarianMTModel:
    torch.manual_seed(SEED)
    config = MarianConfig(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        share_encoder_decoder_embeddings=not separate,
        tie_word_embeddings=True,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=128,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=pad_id,
        eos_token_id=0,
        forced_eos_token_id=0,
        bos_token_id=0,
        decoder_start_token_id=pad_id,
        dropout=0.1,
        # Larger than opus-mt's 0.02 so that a 32-wide random model still reacts to its input
        # (otherwise every sentence "translates" to the same tokens).
        init_std=0.3,
    )
    # Keys real opus-mt configs carry; transformers keeps unknown keys as attributes.
    config.static_position_embeddings = True
    config.add_bias_logits = False
    config.normalize_embedding = False
    config.architectures = ["MarianMTModel"]
    model = MarianMTModel(config)
    model.eval()
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        # LayerNorms initialise to (1, 0); perturb them so a loader that ignores them fails parity.
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        # convert_marian_to_pytorch appends an all-zero embedding row (and zero bias) for <pad>.
        model.model.encoder.embed_tokens.weight[pad_id].zero_()
        model.model.decoder.embed_tokens.weight[pad_id].zero_()
        bias = torch.randn((1, vocab_size), generator=g) * 0.5
        bias[0, pad_id] = 0.0
        # The tuning knob: how likely </s> is at every step, so outputs end at different lengths.
        bias[0, 0] = eos_bias
        model.final_logits_bias.copy_(bias)
    model.generation_config = GenerationConfig(
        # What convert_marian_to_pytorch puts into every opus-mt config.
        bad_words_ids=[[pad_id]],
        bos_token_id=0,
        decoder_start_token_id=pad_id,
        eos_token_id=0,
        forced_eos_token_id=0,
        max_length=512,
        num_beams=4,
        pad_token_id=pad_id,
    )
    return model


def generation_kwargs(num_beams: int) -> dict:
    kwargs = dict(num_beams=num_beams, do_sample=False, max_new_tokens=MAX_NEW_TOKENS, no_repeat_ngram_size=0)
    if num_beams > 1:
        kwargs.update(length_penalty=1.0, early_stopping=True)
    return kwargs


@torch.no_grad()
def run_reference(model, tok, sentences, with_beam: bool) -> dict:
    start = model.config.decoder_start_token_id
    out = []
    for lang, text in sentences:
        enc = tok(text, return_tensors="pt")
        ids = enc["input_ids"]
        enc_out = model.get_encoder()(input_ids=ids, attention_mask=enc["attention_mask"])
        hidden = enc_out.last_hidden_state
        logits = model(input_ids=ids, attention_mask=enc["attention_mask"],
                       decoder_input_ids=torch.tensor([[start]])).logits[0, -1]
        greedy = model.generate(**enc, **generation_kwargs(1))[0].tolist()
        item = {
            "lang": lang,
            "text": text,
            "input_ids": ids[0].tolist(),
            "encoder_last_hidden_state": {"shape": list(hidden.shape), "values": f32_list(hidden)},
            "first_step_logits": f32_list(logits),
            "greedy_ids": greedy,
        }
        if with_beam:
            item["beam4_ids"] = model.generate(**enc, **generation_kwargs(4))[0].tolist()
        item["greedy_text"] = tok.decode(greedy, skip_special_tokens=True)
        if with_beam:
            item["beam4_text"] = tok.decode(item["beam4_ids"], skip_special_tokens=True)
        out.append(item)

    texts = [t for _, t in sentences]
    batch = tok(texts, padding=True, return_tensors="pt")
    pad = tok.pad_token_id

    def strip_pad(rows):
        result = []
        for row in rows.tolist():
            while len(row) > 1 and row[-1] == pad:
                row.pop()
            result.append(row)
        return result

    batched = {"greedy_ids": strip_pad(model.generate(**batch, **generation_kwargs(1)))}
    if with_beam:
        batched["beam4_ids"] = strip_pad(model.generate(**batch, **generation_kwargs(4)))
    return {"sentences": out, "batched": batched}


@torch.no_grad()
def eos_margins(model, tok, sentences) -> list[list[float]]:
    """Per sentence and greedy step, with </s> banned (min_new_tokens; bad_words_ids cannot ban
    </s>, transformers drops it from that list): raw logit of </s> minus the best allowed
    other logit, not counting the </s> entry of final_logits_bias.

    The </s> bias changes nothing but the </s> decision, so greedy decoding with bias b follows
    the banned run until the first step where margin + b > 0, and stops there. That predicts
    every greedy length for every b from one run per sentence."""
    pad = model.config.pad_token_id
    eos_bias = model.final_logits_bias[0, 0].item()
    out = []
    for _, text in sentences:
        enc = tok(text, return_tensors="pt")
        gen = model.generate(**enc, **generation_kwargs(1), min_new_tokens=MAX_NEW_TOKENS,
                             output_logits=True, return_dict_in_generate=True)
        margins = []
        # The last step is forced to </s> (forced_eos_token_id), so it decides nothing.
        for logits in gen.logits[:-1]:
            row = logits[0].clone()
            eos = row[0].item() - eos_bias
            row[0] = row[pad] = float("-inf")
            margins.append(eos - row.max().item())
        out.append(margins)
    return out


def greedy_lengths(margins: list[list[float]], bias: float) -> tuple[list[int], float]:
    """Predicted greedy output lengths (with the start token) for a </s> bias, and the smallest
    distance of any decision from the threshold (how robust the prediction, and parity, is)."""
    lengths, closest = [], float("inf")
    for per_step in margins:
        length = 1 + MAX_NEW_TOKENS
        for step, m in enumerate(per_step):
            closest = min(closest, abs(m + bias))
            if m + bias > 0:
                length = step + 2  # start token + tokens before + </s>
                break
        lengths.append(length)
    return lengths, closest


def lengths_vary(lengths: list[int]) -> bool:
    """Some outputs stop at </s> right away, at least one part-way, some run to the limit."""
    limit = 1 + MAX_NEW_TOKENS
    early = sum(1 for n in lengths if n <= limit - 3)
    mid = sum(1 for n in lengths if 4 <= n <= limit - 4)
    full = sum(1 for n in lengths if n == limit)
    return early >= 3 and mid >= 1 and full >= 2 and len(set(lengths)) >= 3


# Every greedy </s> decision must clear the threshold by this much, so that float differences
# between implementations (~1e-5) cannot flip where a sequence ends.
MIN_DECISION_MARGIN = 0.2


def best_eos_bias(margins: list[list[float]]):
    """The </s> bias giving varied greedy lengths with the safest decisions, or None."""
    best = None
    for bias in np.arange(-30.0, 30.0, 0.01):
        bias = round(float(bias), 2)
        lengths, closest = greedy_lengths(margins, bias)
        if lengths_vary(lengths) and closest >= MIN_DECISION_MARGIN:
            # Most distinct lengths, then most non-empty outputs, then the safest decisions.
            key = (len(set(lengths)), sum(1 for n in lengths if n > 2), closest)
            if best is None or key > best[0]:
                best = (key, bias, closest, lengths)
    return None if best is None else best[1:]


@torch.no_grad()
def set_eos_row(model, direction: torch.Tensor | None) -> None:
    """Replace the </s> row of the (tied) embedding, i.e. how </s>'s logit reacts to the state."""
    if direction is not None:
        # Tied weights may or may not share storage; writing each keeps them equal either way.
        for emb in (model.model.encoder.embed_tokens, model.model.decoder.embed_tokens, model.lm_head):
            emb.weight[0].copy_(direction)


@torch.no_grad()
def eos_row_candidates(model, tok, sentences) -> list[tuple[str, torch.Tensor | None]]:
    """The random </s> row first; then rows along the directions in which the decoder's final
    states vary most (principal components), which make the </s> logit vary most across
    sentences and steps. A random tiny model otherwise tends to repeat one token with a nearly
    constant </s> margin."""
    pad = model.config.pad_token_id
    states = []
    for _, text in sentences:
        enc = tok(text, return_tensors="pt")
        gen = model.generate(**enc, **generation_kwargs(1), min_new_tokens=MAX_NEW_TOKENS,
                             output_hidden_states=True, return_dict_in_generate=True)
        states += [step[-1][0, -1] for step in gen.decoder_hidden_states]
    h = torch.stack(states)
    components = torch.linalg.svd(h - h.mean(0), full_matrices=False).Vh
    out: list[tuple[str, torch.Tensor | None]] = [("random", None)]
    for pc in range(3):
        for scale in (2.0, 4.0, 8.0, 16.0):
            for sign in (1.0, -1.0):
                out.append((f"pc{pc}*{sign * scale}", sign * scale * components[pc].clone()))
    return out


def tune(vocab_size, pad_id, separate, tok, sentences, with_beam):
    """Find a </s> row and bias for which outputs end at different lengths (see lengths_vary),
    then confirm on the real greedy, beam and batched runs. Deterministic: candidates are
    ranked by (distinct greedy lengths, non-empty outputs, safety margin), then their fixed order."""
    base = make_model(vocab_size, pad_id, separate, 0.0)
    ranked = []
    for order, (name, row) in enumerate(eos_row_candidates(base, tok, sentences)):
        model = make_model(vocab_size, pad_id, separate, 0.0)
        set_eos_row(model, row)
        found = best_eos_bias(eos_margins(model, tok, sentences))
        if found is not None:
            bias, closest, lengths = found
            key = (-len(set(lengths)), -sum(1 for n in lengths if n > 2), -closest, order)
            ranked.append((key, name, row, bias, closest, lengths))
    ranked.sort(key=lambda r: r[0])
    for _, name, row, bias, closest, predicted in ranked:
        model = make_model(vocab_size, pad_id, separate, bias)
        set_eos_row(model, row)
        ref = run_reference(model, tok, sentences, with_beam)
        greedy = [len(s["greedy_ids"]) for s in ref["sentences"]]
        batched_same = ref["batched"]["greedy_ids"] == [s["greedy_ids"] for s in ref["sentences"]]
        ok = greedy == predicted and batched_same
        summary = f"  {name} bias {bias} (closest decision {closest:.3f}): greedy {greedy}"
        if with_beam:
            beam = [len(s["beam4_ids"]) for s in ref["sentences"]]
            ok = ok and len(set(beam)) >= 2
            summary += f", beam {beam}"
        log(summary + ("" if ok else "  -> rejected"))
        if ok:
            return model, {"eos_row": name, "final_logits_bias_eos": bias,
                           "closest_greedy_eos_decision": round(closest, 4)}
    raise SystemExit("no </s> row and bias give varied output lengths; extend eos_row_candidates")


def tokenizer_cases(tok) -> list[dict]:
    cases = []
    for text in TOKENIZER_CASES + fuzz_texts(150):
        cases.append({"text": text, "pieces": tok.tokenize(text), "input_ids": tok(text)["input_ids"]})
    return cases


def decode_cases(tok, vocab: dict[str, int], source_pieces: set[str], pad: int) -> list[dict]:
    """Id sequences that exercise decode: special ids in the middle, language codes, pieces only the
    target side knows, a piece-initial word boundary after a special id."""
    rng = np.random.default_rng(SEED)
    id_of = vocab.get
    target_only = [p for p in vocab if p not in source_pieces and p not in ("</s>", "<unk>", "<pad>")
                   and not p.startswith(">>")][:3]
    random_ids = lambda n: [int(x) for x in rng.integers(2, len(vocab) - 1, size=n)]  # noqa: E731
    code = [id_of(">>fra<<")] if ">>fra<<" in vocab else []
    seqs = [
        [pad, 0],
        [pad] + [id_of(p) for p in target_only] + [0],
        [pad] + code + random_ids(6) + [0],
        [pad] + random_ids(5) + [1] + random_ids(5) + [0, pad, pad],
        [int(x) for x in rng.integers(0, len(vocab), size=12)],
    ]
    return [{"ids": s, "text": tok.decode(s, skip_special_tokens=True)} for s in seqs]


def compact_json(obj) -> str:
    """Indented JSON with lists of numbers kept on one line (keeps the fixture small and diffable)."""
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    return re.sub(r"\[\s*(-?[0-9][-0-9.eE+,\s]*?)\s*\]",
                  lambda m: "[" + ",".join(x.strip() for x in m.group(1).split(",")) + "]", text) + "\n"


def write_model(model: MarianMTModel, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    # The .bin loading path (older opus-mt repos ship only pytorch_model.bin): the same tensors
    # as the safetensors file, plus the static sinusoidal position tables that checkpoints saved
    # by transformers 4.x carry (current transformers leaves them out; a loader must accept
    # both, and may check them against the tables it computes).
    from safetensors.torch import load_file

    tensors = load_file(str(out / "model.safetensors"))
    for side in ("encoder", "decoder"):
        tensors[f"model.{side}.embed_positions.weight"] = getattr(model.model, side).embed_positions.weight.detach()
    state = {k: tensors[k].contiguous() for k in sorted(tensors)}
    buf = io.BytesIO()
    torch.save(state, buf)
    (out / "pytorch_model.bin").write_bytes(buf.getvalue())


def build(out: Path, separate: bool, with_beam: bool) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    # The separate-vocabulary fixture needs equal source and target sizes, and 350 pieces cannot
    # cover eight scripts, so its source side is trained on the Latin-script languages only.
    source_langs = SEP_SOURCE_LANGS if separate else SOURCE_LANGS
    source_lines = [line for lang in source_langs for line in read_lines(lang)]
    target_lines = read_lines(TARGET_LANG)
    src_proto = train_spm(source_lines, SOURCE_VOCAB if not separate else TARGET_VOCAB)
    tgt_proto = train_spm(target_lines, TARGET_VOCAB)
    (out / "source.spm").write_bytes(src_proto)
    (out / "target.spm").write_bytes(tgt_proto)
    src_sp, tgt_sp = spm_processor(src_proto), spm_processor(tgt_proto)
    src_counts = count_pieces(src_sp, source_lines)
    tgt_counts = count_pieces(tgt_sp, target_lines)

    if separate:
        # Separate Marian vocabularies; convert_marian_to_pytorch requires both sides to have the
        # same size (it checks dim-vocabs), which equal spm vocab sizes give.
        vocab = marian_vocab(src_counts, normal_pieces(src_sp), [])
        target_vocab = marian_vocab(tgt_counts, normal_pieces(tgt_sp), [])
        assert len(vocab) == len(target_vocab), (len(vocab), len(target_vocab))
        save_json_like_converter(vocab, out / "vocab.json")
        save_json_like_converter(target_vocab, out / "target_vocab.json")
    else:
        vocab = marian_vocab(src_counts + tgt_counts, normal_pieces(src_sp) + normal_pieces(tgt_sp), LANGUAGE_CODES)
        save_json_like_converter(vocab, out / "vocab.json")
    # What convert_marian_to_pytorch.save_tokenizer_config writes.
    save_json_like_converter(
        {"target_lang": TARGET_LANG, "source_lang": "mul", "separate_vocabs": separate},
        out / "tokenizer_config.json",
    )

    tok = MarianTokenizer.from_pretrained(str(out))
    vocab_size = len(vocab)
    pad_id = vocab["<pad>"]
    assert tok.pad_token_id == pad_id and tok.eos_token_id == 0 and tok.unk_token_id == 1

    # tiny-sep: its languages, plus Chinese (all unknown to its source model) and the £ sentence.
    sentences = SENTENCES if not separate else SENTENCES[:3] + SENTENCES[5:6] + SENTENCES[8:10]
    model, tuning = tune(vocab_size, pad_id, separate, tok, sentences, with_beam)

    write_model(model, out)
    # Keep the tokenizer files exactly as the converter writes them, but also store what
    # save_pretrained adds (special tokens, model_max_length), as hub repos converted later have it.
    tok.save_pretrained(str(out))
    # save_pretrained re-dumps vocab.json with indent=2; restore the converter's form.
    if separate:
        save_json_like_converter(vocab, out / "vocab.json")
        save_json_like_converter(target_vocab, out / "target_vocab.json")
    else:
        save_json_like_converter(vocab, out / "vocab.json")

    tok = MarianTokenizer.from_pretrained(str(out))
    reference = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "sentencepiece_version": spm.__version__,
        "generation": {
            "max_new_tokens": MAX_NEW_TOKENS,
            "num_beams": 4,
            "length_penalty": 1.0,
            "early_stopping": True,
            "no_repeat_ngram_size": 0,
            # From generation_config.json, applied by generate() as in every opus-mt repo.
            "bad_words_ids": [[pad_id]],
            "forced_eos_token_id": 0,
            "decoder_start_token_id": pad_id,
            "eos_token_id": 0,
            "pad_token_id": pad_id,
        },
        "tuning": {**tuning, "init_std": 0.3, "seed": SEED},
        **run_reference(model, tok, sentences, with_beam),
        "tokenizer_cases": tokenizer_cases(tok),
    }
    if not separate:
        reference["decode_cases"] = decode_cases(tok, vocab, set(normal_pieces(src_sp)), pad_id)
    else:
        reference["decode_cases"] = decode_cases(tok, target_vocab, set(vocab), pad_id)
    (out / "reference.json").write_text(compact_json(reference), encoding="utf-8")
    check_fixture_covers_cases(out, reference, vocab, src_sp)


def check_fixture_covers_cases(out: Path, reference: dict, vocab: dict[str, int], src_sp) -> None:
    """Fail loudly if the fixture stopped exercising what it exists for."""
    unk = vocab["<unk>"]
    all_ids = [i for s in reference["sentences"] for i in s["input_ids"]]
    assert unk in all_ids, f"{out.name}: no fixture sentence maps to <unk>"
    if out.name == "tiny":
        inv = {v: k for k, v in vocab.items()}
        src_known = set(normal_pieces(src_sp))
        target_only = [inv[i] for i in all_ids if inv[i] not in src_known and inv[i] not in ("</s>", "<unk>")
                       and not inv[i].startswith(">>")]
        assert target_only, "tiny: no source piece maps to a target-only vocab entry (the £ case)"
        assert vocab[">>fra<<"] in all_ids, "tiny: the language code sentence lost its code token"
    size = sum(p.stat().st_size for p in out.iterdir())
    assert size < 2 * 1024 * 1024, f"{out.name} is {size} bytes; keep fixtures under 2 MB"
    digest = hashlib.sha256(b"".join((out / n).read_bytes() for n in sorted(p.name for p in out.iterdir()))).hexdigest()
    log(f"{out.name}: {size} bytes, content sha256 {digest[:16]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "marian")
    parser.add_argument("--skip-sep", action="store_true", help="only build tiny/")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    build(args.out / "tiny", separate=False, with_beam=True)
    if not args.skip_sep:
        build(args.out / "tiny-sep", separate=True, with_beam=False)


if __name__ == "__main__":
    main()
