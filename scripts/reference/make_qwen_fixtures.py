#!/usr/bin/env python3
"""Writes the tiny Qwen2 reference fixtures that tests/integration/llm_parity.rs reproduces.

Everything is made here from fixed seeds and project-written text; nothing is downloaded.

tests/fixtures/qwen2/tiny/  (hidden 64, 2 layers, 4 heads, 2 kv heads, tied embeddings like Qwen2.5-0.5B)
  config.json, model.safetensors   Qwen2ForCausalLM as transformers saves it (float32)
  tokenizer.json                   byte-level BPE trained with `tokenizers` on the text below, with
                                   Qwen2's normalizer / pre-tokenizer / decoder and the special tokens
                                   <|endoftext|>, <|im_start|>, <|im_end|>
  tokenizer_config.json            laid out like Qwen2.5-Instruct's, with its real chat template
  model-q8_0.gguf                  the same weights as llama.cpp's converter lays them out, 2-D tensors Q8_0
  reference.json                   per prompt: messages, rendered chat text, its ids, first-step logits,
                                   greedy ids; and the first-step logits of the Q8_0 GGUF's *dequantized*
                                   weights run in transformers, plain and with every linear layer's
                                   input rounded to Q8_0 as the quantized matmul does
tests/fixtures/qwen2/tiny-q4k/  (hidden 256, untied lm_head: Q4_K needs rows that are multiples of 256)
  model-q4_k.gguf, reference.json  (first-step logits of the dequantized weights, in transformers)

Run from the repository root:  /tmp/refvenv/bin/python scripts/reference/make_qwen_fixtures.py
"""

import argparse
import json
import pathlib

import gguf
import numpy as np
import safetensors.torch
import tokenizers
import torch
import transformers
from gguf.quants import dequantize, quantize
from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# The pre-tokenizer regex of Qwen2's tokenizer (transformers/models/qwen2/tokenization_qwen2.py).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOKENIZER_VOCAB = 600  # trained tokens incl. the 256 bytes; specials come after
MODEL_VOCAB = 640  # padded like Qwen2.5 (151936 > 151665 tokens)
GREEDY_STEPS = 24

# Project-written training text: news-like English with numbers, dates, names and punctuation.
CORPUS = """
The river Inn rose 3.2 metres overnight in Passau, and the city council opened two shelters on Tuesday.
About 1,200 residents left their homes; the mayor, Jürgen Dupper, said no one had been hurt.
Rescue teams from Bavaria and Upper Austria worked through the night of 14 May 2024.
Prices for rice rose by 12 percent in Hanoi last month, the statistics office reported on Friday.
The central bank kept its main rate at 4.5% and said inflation would fall to 3% by December.
Officials in Lagos said the new bridge would open in March, two years later than planned.
"We expect the work to be finished before the rainy season," the minister told reporters.
A magnitude 6.1 earthquake struck off the coast of Chile at 03:40 local time, the survey said.
No tsunami warning was issued. Schools in Valparaíso stayed open.
The election commission counted 48.7 million ballots; turnout was 61 percent, up from 55 in 2019.
Farmers blocked roads near Lyon for a third day, demanding lower diesel taxes.
The company, which employs 8,400 people, will close its plant in Turin by the end of 2025.
Talks between the two governments resumed in Geneva on Monday and will continue on Wednesday.
Heavy snow cut power to 30,000 homes in Hokkaido; trains between Sapporo and Asahikawa were cancelled.
The summit ended without a joint statement, diplomats said, after a dispute over the final text.
Summarize the article in two sentences. Keep every number exactly as written.
You write short, factual news summaries for a daily brief.
"""

PROMPTS = [
    {
        "messages": [
            {"role": "system", "content": "You write short, factual news summaries for a daily brief."},
            {
                "role": "user",
                "content": "Summarize the article in two sentences.\n\nThe river Inn rose 3.2 metres "
                "overnight in Passau, and the city council opened two shelters on Tuesday.",
            },
        ]
    },
    # No system message: the template inserts Qwen's default one.
    {"messages": [{"role": "user", "content": "Prices for rice rose by 12 percent in Hanoi."}]},
]


def train_tokenizer() -> tokenizers.Tokenizer:
    tok = tokenizers.Tokenizer(
        BPE(
            dropout=None,
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    lines = [line for line in CORPUS.strip().splitlines() if line.strip()]
    tok.train_from_iterator(lines * 4, trainer=trainer)
    # Specials after the trained vocabulary, as in Qwen2 (151643..151645).
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def tokenizer_config(chat_template: str) -> dict:
    """Laid out like Qwen/Qwen2.5-*-Instruct's tokenizer_config.json (only the tokens differ)."""
    n = TOKENIZER_VOCAB
    decoder = {
        str(n + i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for i, t in enumerate(SPECIAL_TOKENS)
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": decoder,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def qwen2_config(hidden: int, intermediate: int, tied: bool) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=MODEL_VOCAB,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        tie_word_embeddings=tied,
        use_sliding_window=False,
        sliding_window=None,
        max_window_layers=2,
        bos_token_id=TOKENIZER_VOCAB,
        eos_token_id=TOKENIZER_VOCAB + 2,
        attention_dropout=0.0,
    )


def random_model(config: Qwen2Config, seed: int) -> Qwen2ForCausalLM:
    """Weights far from transformers' 0.02 init, so logits are spread and greedy choices are not ties."""
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn_like(p))
            elif "embed_tokens" in name or "lm_head" in name:
                p.copy_(0.5 * torch.randn_like(p))
            elif "o_proj" in name or "down_proj" in name:
                # Larger layer outputs, so the next token is not just the tied embedding's
                # self-similarity (which makes a random model repeat its input token at once).
                p.copy_(3.0 * torch.randn_like(p) / np.sqrt(p.shape[1]))
            else:
                p.copy_(torch.randn_like(p) / np.sqrt(p.shape[1]))
    return model


# --- GGUF, laid out as llama.cpp's convert_hf_to_gguf.py writes Qwen2 (no q/k permutation) ---

def gguf_name(hf_name: str) -> str:
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return "output.weight"
    parts = hf_name.split(".")  # model.layers.N.<module>.<sub>.weight
    layer, rest = parts[2], ".".join(parts[3:])
    table = {
        "input_layernorm.weight": "attn_norm.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.o_proj.weight": "attn_output.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    return f"blk.{layer}.{table[rest]}"


def quantize_q4_k(rows: np.ndarray) -> np.ndarray:
    """A plain Q4_K encoder (gguf-py decodes Q4_K but cannot encode it).

    Per 32-value sub-block: scale = (max - min) / 15 and offset = -min (min clamped to <= 0), both
    quantized to 6 bits against per-256 super-block f16 factors d and dmin; values then rounded to
    4 bits. Not llama.cpp's iterative search, but a valid block_q4_K: any reader decodes the same
    numbers, which is all a dequantized reference needs.
    """
    assert rows.ndim == 2 and rows.shape[1] % 256 == 0
    x = rows.astype(np.float32).reshape(-1, 8, 32)
    n = x.shape[0]
    xmin = np.minimum(x.min(axis=2), 0.0)
    xmax = x.max(axis=2)
    scale = (xmax - xmin) / 15.0
    offset = -xmin
    d = (scale.max(axis=1) / 63.0).astype(np.float16)
    dmin = (offset.max(axis=1) / 63.0).astype(np.float16)
    d32, dmin32 = d.astype(np.float32), dmin.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d32[:, None] > 0, np.rint(scale / d32[:, None]), 0).clip(0, 63).astype(np.uint8)
        mn = np.where(dmin32[:, None] > 0, np.rint(offset / dmin32[:, None]), 0).clip(0, 63).astype(np.uint8)
        eff_scale = d32[:, None] * sc
        eff_min = dmin32[:, None] * mn
        q = np.where(eff_scale[:, :, None] > 0, np.rint((x + eff_min[:, :, None]) / eff_scale[:, :, None]), 0)
    q = q.clip(0, 15).astype(np.uint8)
    packed_scales = np.zeros((n, 12), dtype=np.uint8)
    for j in range(4):
        packed_scales[:, j] = (sc[:, j] & 0x3F) | ((sc[:, j + 4] >> 4) << 6)
        packed_scales[:, j + 4] = (mn[:, j] & 0x3F) | ((mn[:, j + 4] >> 4) << 6)
        packed_scales[:, j + 8] = (sc[:, j + 4] & 0x0F) | ((mn[:, j + 4] & 0x0F) << 4)
    # 4 groups of 32 bytes: low nibbles are sub-block 2g, high nibbles sub-block 2g+1.
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(n, 128)
    blocks = np.concatenate([d.view(np.uint8).reshape(n, 2), dmin.view(np.uint8).reshape(n, 2), packed_scales, qs], axis=1)
    return blocks.reshape(rows.shape[0], -1)


def write_gguf(path: pathlib.Path, model: Qwen2ForCausalLM, tok: tokenizers.Tokenizer, chat_template: str, qtype):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch="qwen2")
    w.add_name("polybrief tiny random Qwen2")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(float(rope_theta(cfg)))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if qtype == gguf.GGMLQuantizationType.Q8_0 else gguf.LlamaFileType.MOSTLY_Q4_K_M)
    # Tokenizer metadata as llama.cpp expects it, padded to the model's vocabulary.
    vocab = tok.get_vocab(with_added_tokens=True)
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in by_id] + [f"[PAD{i}]" for i in range(len(by_id), cfg.vocab_size)]
    types = [gguf.TokenType.CONTROL if t in SPECIAL_TOKENS else gguf.TokenType.NORMAL for t, _ in by_id]
    types += [gguf.TokenType.UNUSED] * (cfg.vocab_size - len(by_id))
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_pad_token_id(vocab["<|endoftext|>"])
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    w.add_chat_template(chat_template)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        data = tensor.detach().float().numpy()
        if data.ndim == 1:
            w.add_tensor(gguf_name(name), data)
        elif qtype == gguf.GGMLQuantizationType.Q4_K:
            w.add_tensor(gguf_name(name), quantize_q4_k(data), raw_dtype=qtype)
        else:
            w.add_tensor(gguf_name(name), quantize(data, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def dequantized_model(path: pathlib.Path, config: Qwen2Config) -> Qwen2ForCausalLM:
    """The GGUF's weights decoded by gguf-py, in a transformers model: the quantized path's reference."""
    reader = gguf.GGUFReader(str(path))
    tensors = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type)
        shape = tuple(int(d) for d in reversed(t.shape))  # ggml's ne order is reversed
        tensors[t.name] = torch.from_numpy(np.array(values.reshape(shape), dtype=np.float32))
    model = Qwen2ForCausalLM(config).eval()
    state = {}
    for name in model.state_dict():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        state[name] = tensors[gguf_name(name)]
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(m == "lm_head.weight" for m in missing), (missing, unexpected)
    if config.tie_word_embeddings:
        model.tie_weights()
    return model


def rope_theta(cfg) -> float:
    theta = getattr(cfg, "rope_theta", None)
    if theta is None:
        theta = cfg.rope_parameters["rope_theta"]
    return theta


def fake_quantize_activations(model: Qwen2ForCausalLM, qtype) -> Qwen2ForCausalLM:
    """Rounds every linear layer's input the way candle's CPU quantized matmul does before its
    integer dot products (candle-core 0.11 k_quants.rs, BlockQ8_0/BlockQ8K::from_float): to Q8_0
    (blocks of 32, f16 scale amax/127) for Q8_0 weights, to Q8_K (blocks of 256, f32 scale
    max/-127 with the sign of the largest value; ggml itself uses -128) for k-quant weights.
    With this, transformers computes what a correct quantized kernel computes, up to float
    summation order; without it, the difference is the activation rounding itself."""

    def q8_0(x):
        b = x.reshape(-1, 32)
        d = b.abs().amax(dim=1, keepdim=True) / 127.0
        inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
        q = torch.sign(b * inv) * torch.floor((b * inv).abs() + 0.5)  # roundf: half away from zero
        return (q * d.half().float()).reshape(x.shape)

    def q8_k(x):
        b = x.reshape(-1, 256)
        idx = b.abs().argmax(dim=1, keepdim=True)
        mx = torch.gather(b, 1, idx)
        iscale = torch.where(mx != 0, -127.0 / mx, torch.zeros_like(mx))
        v = iscale * b
        q = (torch.sign(v) * torch.floor(v.abs() + 0.5)).clamp(-128, 127)  # f32::round: half away from zero
        d = torch.where(iscale != 0, 1.0 / iscale, torch.zeros_like(iscale))
        return (q * d).reshape(x.shape)

    fake = q8_0 if qtype == gguf.GGMLQuantizationType.Q8_0 else q8_k
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.register_forward_pre_hook(lambda _m, args: (fake(args[0]),) + tuple(args[1:]))
    return model


@torch.no_grad()
def last_logits(model, ids) -> list:
    return model(torch.tensor([ids])).logits[0, -1].tolist()


@torch.no_grad()
def greedy(model, ids, steps):
    """Plain argmax decoding (full forward each step, no cache, no eos stop): what the Rust
    greedy loop must reproduce token for token. Also returns each step's top-5 (id, logit), so a
    cached decoding step is checked by value, not only by its argmax, and the smallest
    top-1/top-2 gap seen, so a fixture with a near-tie (where float noise could flip a choice)
    is rejected."""
    ids = list(ids)
    out, top5, min_gap = [], [], float("inf")
    for _ in range(steps):
        logits = model(torch.tensor([ids])).logits[0, -1]
        values, indices = torch.topk(logits, 5)
        min_gap = min(min_gap, float(values[0] - values[1]))
        top5.append([[int(i), float(v)] for i, v in zip(indices, values)])
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        ids.append(nxt)
    return out, top5, min_gap


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "tests/fixtures/qwen2"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    tiny, tiny_q4k = out / "tiny", out / "tiny-q4k"
    tiny.mkdir(parents=True, exist_ok=True)
    tiny_q4k.mkdir(parents=True, exist_ok=True)

    chat_template = (HERE / "qwen2_5_chat_template.jinja").read_text()
    tok = train_tokenizer()
    assert tok.get_vocab_size(with_added_tokens=True) == TOKENIZER_VOCAB + len(SPECIAL_TOKENS)
    tok.save(str(tiny / "tokenizer.json"))
    (tiny / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(chat_template), indent=2, ensure_ascii=False) + "\n")

    config = qwen2_config(hidden=64, intermediate=128, tied=True)
    model = random_model(config, seed=2)
    model.save_pretrained(str(tiny), safe_serialization=True)
    # save_pretrained may also write generation_config.json; the fixture does not need it.
    (tiny / "generation_config.json").unlink(missing_ok=True)

    hf_tok = AutoTokenizer.from_pretrained(str(tiny))
    raw_tok = tokenizers.Tokenizer.from_file(str(tiny / "tokenizer.json"))
    write_gguf(tiny / "model-q8_0.gguf", model, tok, chat_template, gguf.GGMLQuantizationType.Q8_0)
    q8_model = dequantized_model(tiny / "model-q8_0.gguf", config)
    q8_model_aq = fake_quantize_activations(dequantized_model(tiny / "model-q8_0.gguf", config), gguf.GGMLQuantizationType.Q8_0)

    prompts = []
    for p in PROMPTS:
        rendered = hf_tok.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True)
        ids = hf_tok.apply_chat_template(p["messages"], tokenize=True, add_generation_prompt=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ids = [int(i) for i in ids]
        # transformers and the bare tokenizers pipeline (what the Rust side uses) must agree.
        assert ids == raw_tok.encode(rendered, add_special_tokens=False).ids, "HF and tokenizers disagree"
        greedy_ids, greedy_top5, min_gap = greedy(model, ids, GREEDY_STEPS)
        assert min_gap > 1e-2, f"near-tie in greedy decoding (gap {min_gap}); change the seed"
        prompts.append(
            {
                "messages": p["messages"],
                "rendered": rendered,
                "input_ids": ids,
                "first_step_logits": last_logits(model, ids),
                "greedy_ids": greedy_ids,
                "greedy_step_top5": greedy_top5,
                "greedy_min_top2_gap": min_gap,
                "q8_0_dequantized_first_step_logits": last_logits(q8_model, ids),
                "q8_0_dequantized_quantized_activations_first_step_logits": last_logits(q8_model_aq, ids),
            }
        )

    versions = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "tokenizers_version": tokenizers.__version__,
        "gguf_version": getattr(gguf, "__version__", "unknown"),
    }
    reference = {
        **versions,
        "eos_token": "<|im_end|>",
        "greedy_steps": GREEDY_STEPS,
        "prompts": prompts,
    }
    (tiny / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")

    # Q4_K: a 256-wide model (k-quant rows are 256 values), untied lm_head, same tokenizer.
    config_q4k = qwen2_config(hidden=256, intermediate=256, tied=False)
    model_q4k = random_model(config_q4k, seed=20240515)
    write_gguf(tiny_q4k / "model-q4_k.gguf", model_q4k, tok, chat_template, gguf.GGMLQuantizationType.Q4_K)
    q4k_model = dequantized_model(tiny_q4k / "model-q4_k.gguf", config_q4k)
    # Sanity of the encoder: the decoded weights must be close to the originals.
    w_orig = model_q4k.model.layers[0].mlp.down_proj.weight
    w_deq = q4k_model.model.layers[0].mlp.down_proj.weight
    rel = float((w_orig - w_deq).detach().norm() / w_orig.detach().norm())
    assert rel < 0.15, f"Q4_K encoder too lossy: relative error {rel}"
    reference_q4k = {
        **versions,
        "note": "first-step logits of transformers on the Q4_K GGUF's weights decoded by gguf-py",
        "weight_relative_error_layer0_down_proj": rel,
        "prompts": [
            {
                "input_ids": p["input_ids"],
                "dequantized_first_step_logits": last_logits(q4k_model, p["input_ids"]),
            }
            for p in prompts
        ],
    }
    (tiny_q4k / "reference.json").write_text(json.dumps(reference_q4k, indent=1) + "\n")
    for f in sorted(list(tiny.iterdir()) + list(tiny_q4k.iterdir())):
        print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
