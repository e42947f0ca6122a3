"""A tiny random model of a real architecture, built in well under a second without torch.

Unit tests and quick checks use it: same graph, same head, same runtime as the real model, just small.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from confroute.bundle.manifest import SourceInfo
from confroute.modelkit.sources import LoadedSource
from confroute.modelkit.spec import DecoderSpec, Family
from confroute.modelkit.weights import Weights

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "What is two plus two? Two plus two is four.",
    "Paris is the capital of France.", "A question, an answer, and a confidence score.",
    "Edge devices answer easy questions; the cloud answers hard ones.",
]


def tiny_spec(model_type: str = "llama", vocab_size: int = 320) -> DecoderSpec:
    family: Family = "gpt2" if model_type == "gpt2" else "llama"
    return DecoderSpec(model_type=model_type, family=family, vocab_size=vocab_size, hidden_size=64,
                       num_layers=4, num_heads=4, num_kv_heads=4 if family == "gpt2" else 2, head_dim=16,
                       intermediate_size=128, norm_eps=1e-5, max_positions=256,
                       qkv_bias=model_type in ("qwen2", "gpt2"), tie_embeddings=model_type != "qwen2")


def tiny_tokenizer_json(vocab_size: int = 320) -> str:
    """A byte-level BPE tokenizer trained on a few sentences, with ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    return str(tok.to_str())


def tiny_weights(spec: DecoderSpec, seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.08).astype(np.float32)

    h, inter = spec.hidden_size, spec.intermediate_size
    qkv = spec.q_size + 2 * spec.kv_size
    w: Weights = {"embed": normal(spec.vocab_size, h), "final_norm.w": np.ones(h, np.float32)}
    for i in range(spec.num_layers):
        w[f"L{i}.attn_norm.w"] = np.ones(h, np.float32)
        w[f"L{i}.mlp_norm.w"] = np.ones(h, np.float32)
        w[f"L{i}.qkv.w"] = normal(h, qkv)
        w[f"L{i}.o.w"] = normal(spec.q_size, h)
        if spec.family == "gpt2":
            w.update({f"L{i}.fc.w": normal(h, inter), f"L{i}.proj.w": normal(inter, h)})
            for name, size in (("attn_norm", h), ("mlp_norm", h), ("o", h), ("fc", inter), ("proj", h)):
                w[f"L{i}.{name}.b"] = np.zeros(size, np.float32)
        else:
            w.update({f"L{i}.gate.w": normal(h, inter), f"L{i}.up.w": normal(h, inter),
                      f"L{i}.down.w": normal(inter, h)})
        if spec.qkv_bias:
            w[f"L{i}.qkv.b"] = normal(qkv)
    if spec.family == "gpt2":
        w.update({"pos_embed": normal(spec.max_positions, h), "final_norm.b": np.zeros(h, np.float32)})
    if not spec.tie_embeddings:
        w["lm_head.w"] = normal(h, spec.vocab_size)
    return w


def tiny_source(model_type: str = "llama", seed: int = 0) -> LoadedSource:
    spec = tiny_spec(model_type)
    return LoadedSource(model_id=f"tiny-random-{model_type}", spec=spec, weights=tiny_weights(spec, seed),
                        tokenizer_json=tiny_tokenizer_json(spec.vocab_size), chat_template=CHATML_TEMPLATE,
                        eos_token_ids=(2,), info=SourceInfo(kind="tiny-random", ref=f"{model_type}:seed={seed}"))


#: The grid types of a tiny GGUF-like source: Q4_1 matmuls (SmolLM2's source) and a Q8_0 embedding.
TINY_GRID_TYPES = {"embed": "Q8_0", "lm_head": "Q8_0"}


def tiny_grid_source(model_type: str = "llama", types: Mapping[str, str] | None = None, seed: int = 0,
                     spec: DecoderSpec | None = None) -> LoadedSource:
    """:func:`tiny_source`'s model as a GGUF source loads: every matmul weight on a source grid (``types``
    maps a grid name -- ``embed``, ``L0.q``, ``down`` for every layer's -- to a GGUF type; default Q4_1,
    embedding Q8_0) and the float32 weights replaced by the grid's values. K-quant types need input sizes
    that are multiples of 256 (pass a ``spec``) and get random blocks."""
    from confroute.modelkit.gguf_grids import expected_rows
    from confroute.modelkit.grid import decode

    source = tiny_source(model_type, seed)
    spec = spec or source.spec
    w = dict(tiny_weights(spec, seed) if spec != source.spec else source.weights)
    rng = np.random.default_rng(seed + 1)
    grids = {}
    for name in _grid_names(spec):
        kind = (types or {}).get(name) or (types or {}).get(name.split(".")[-1]) or TINY_GRID_TYPES.get(name, "Q4_1")
        rows = expected_rows(spec, w, name)
        grid = decode(kind, gguf_blocks(kind, rows, rng), rows.shape[1])
        assert grid is not None
        grids[name] = grid
        _write_back(spec, w, name, grid.dequantize())
    return dataclasses.replace(source, spec=spec, weights=w, grids=grids, model_id=f"tiny-grid-{model_type}")


def _grid_names(spec: DecoderSpec) -> list[str]:
    layers = [f"L{i}.{p}" for i in range(spec.num_layers) for p in ("q", "k", "v", "o", "gate", "up", "down")]
    return ["embed", *layers, *([] if spec.tie_embeddings else ["lm_head"])]


def gguf_blocks(kind: str, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GGUF blocks of type ``kind`` for rows [N, K]: quantized by gguf's reference code, or random blocks
    with small scales for the K-quants (gguf has no numpy quantizer for them)."""
    from gguf import GGMLQuantizationType, quants
    from gguf.constants import GGML_QUANT_SIZES

    qtype = GGMLQuantizationType[kind]
    if not kind.endswith("_K"):
        return np.asarray(quants.quantize(rows, qtype))
    values, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (rows.shape[0] * rows.shape[1] // values, size), dtype=np.uint8)
    scale = rng.uniform(2e-5, 2e-4, (raw.shape[0], 2)).astype(np.float16).view(np.uint8)
    if kind == "Q6_K":  # d, scaled by int8 sub-block scales up to 127 and codes up to 31
        d = np.asarray(rng.uniform(1e-5, 4e-5, raw.shape[0]), dtype=np.float16)
        raw[:, 208:210] = d.view(np.uint8).reshape(-1, 2)
    else:
        raw[:, 0:4] = scale
    return raw.reshape(rows.shape[0], -1)


def _write_back(spec: DecoderSpec, w: Weights, name: str, rows: np.ndarray) -> None:
    """Stores a grid's values [out, in] over the canonical float32 weight they stand for."""
    if name == "embed":
        w["embed"] = rows
    elif name == "lm_head":
        w["lm_head.w"] = np.ascontiguousarray(rows.T)
    else:
        layer, part = name.split(".")
        if part in ("q", "k", "v"):
            start = {"q": 0, "k": spec.q_size, "v": spec.q_size + spec.kv_size}[part]
            w[f"{layer}.qkv.w"][:, start:start + rows.shape[0]] = rows.T
        else:
            w[f"{layer}.{part}.w"] = np.ascontiguousarray(rows.T)
