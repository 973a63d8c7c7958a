"""Tiny random BERT sentence embedder fixtures for tests/integration/embed_parity.rs.

Writes tests/fixtures/bert/tiny/{config.json, model.safetensors, tokenizer.json,
sentence_bert_config.json, reference.json}.
The reference embeddings are what sentence-transformers/all-MiniLM-L6-v2 computes
(modules.json: Transformer -> Pooling(mean) -> Normalize): transformers' BertModel last hidden
state, mean-pooled over the attention mask, then L2-normalised. The pooling is written out by
hand (as sentence_transformers.models.Pooling does) so sentence-transformers is not needed.

Run from the repo root: /tmp/refvenv/bin/python scripts/reference/make_bert_fixtures.py
"""

import collections
import glob
import json
import os
import re

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders
from transformers import BertConfig, BertModel

OUT = "tests/fixtures/bert/tiny"
MAX_SEQ = 48
SENTENCES = [
    "The central bank raised interest rates by a quarter point on Tuesday.",
    "Floods forced thousands of residents to leave their homes.",
    "Die Zentralbank erhöhte am Dienstag die Zinsen.",
    "Rates went up.",
    "A very long sentence about the election, the parliament, the budget, the ministers and the "
    "opposition parties, who all disagreed about what should happen next in the capital city.",
    "Les inondations ont forcé des milliers d'habitants à quitter leurs maisons.",
]


def build_tokenizer():
    # WordPieceTrainer breaks frequency ties in hash order, so its vocabulary changes from run
    # to run; the vocabulary is built here instead, deterministically: specials, every
    # character (alone and as a ##continuation), then the most frequent lowercased words.
    counts = collections.Counter()
    chars = set()
    for path in sorted(glob.glob("scripts/reference/corpus/*.txt")):
        text = open(path, encoding="utf-8").read().lower()
        chars.update(c for c in text if not c.isspace())
        counts.update(re.findall(r"\w+", text))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += sorted(chars) + ["##" + c for c in sorted(chars)]
    words = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))
    vocab += [w for w in words if w not in vocab][:200]
    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    tok = build_tokenizer()
    tok.save(os.path.join(OUT, "tokenizer.json"))
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_act="gelu",
        pad_token_id=0,
    )
    model = BertModel(config, add_pooling_layer=False).eval()
    # Random init draws tiny weights; widen them so differences are not lost in rounding.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    config.save_pretrained(OUT)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})

    # sentence-transformers truncates to sentence_bert_config.json's max_seq_length (256 for
    # all-MiniLM-L6-v2), counting [CLS] and [SEP]; the long sentence exercises that.
    with open(os.path.join(OUT, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": MAX_SEQ, "do_lower_case": False}, f)
        f.write("\n")
    tok.enable_truncation(max_length=MAX_SEQ)
    cases = []
    with torch.no_grad():
        for text in SENTENCES:
            enc = tok.encode(text)
            ids = torch.tensor([enc.ids])
            mask = torch.ones_like(ids)
            hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            emb = torch.nn.functional.normalize(pooled, p=2, dim=1)[0]
            cases.append({"text": text, "ids": enc.ids, "embedding": [round(float(x), 7) for x in emb]})
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump({"max_length": MAX_SEQ, "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
