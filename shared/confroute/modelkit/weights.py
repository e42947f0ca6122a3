"""Canonical weight names, and the mapping from Hugging Face state dicts to them.

Canonical layout (float32 numpy arrays, matmul weights stored ``[in, out]``):
``embed`` [V, H]; ``pos_embed`` [P, H] (gpt2); per layer ``L{i}.attn_norm.w`` (``.b``), ``L{i}.qkv.w``
[H, q + 2 kv] (``.b``), ``L{i}.o.w`` (``.b``), ``L{i}.mlp_norm.w`` (``.b``); llama MLP ``L{i}.gate.w``,
``L{i}.up.w`` [H, I] and ``L{i}.down.w``; gpt2 MLP ``L{i}.fc.w/.b`` and ``L{i}.proj.w/.b``;
``final_norm.w`` (``.b``); ``lm_head.w`` [H, V] only when the output layer is not tied to ``embed``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from confroute.errors import SourceIntegrityError
from confroute.modelkit.spec import DecoderSpec

Weights = dict[str, np.ndarray]


def canonical_from_hf(spec: DecoderSpec, sd: Mapping[str, np.ndarray]) -> Weights:
    """Maps a Hugging Face state dict (numpy arrays, HF names) onto canonical names."""
    try:
        if spec.family == "gpt2":
            return _from_gpt2(spec, sd)
        return _from_llama(spec, sd)
    except KeyError as exc:
        raise SourceIntegrityError(f"weight {exc.args[0]!r} is missing from the model's state dict") from exc


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _from_llama(spec: DecoderSpec, sd: Mapping[str, np.ndarray]) -> Weights:
    w: Weights = {"embed": _f32(sd["model.embed_tokens.weight"]), "final_norm.w": _f32(sd["model.norm.weight"])}
    for i in range(spec.num_layers):
        p = f"model.layers.{i}."
        qkv = [sd[f"{p}self_attn.{n}_proj.weight"] for n in ("q", "k", "v")]
        w[f"L{i}.qkv.w"] = _f32(np.concatenate(qkv, axis=0).T)
        if spec.qkv_bias:
            w[f"L{i}.qkv.b"] = _f32(np.concatenate([sd[f"{p}self_attn.{n}_proj.bias"] for n in "qkv"]))
        w[f"L{i}.o.w"] = _f32(sd[f"{p}self_attn.o_proj.weight"].T)
        w[f"L{i}.attn_norm.w"] = _f32(sd[f"{p}input_layernorm.weight"])
        w[f"L{i}.mlp_norm.w"] = _f32(sd[f"{p}post_attention_layernorm.weight"])
        w[f"L{i}.gate.w"] = _f32(sd[f"{p}mlp.gate_proj.weight"].T)
        w[f"L{i}.up.w"] = _f32(sd[f"{p}mlp.up_proj.weight"].T)
        w[f"L{i}.down.w"] = _f32(sd[f"{p}mlp.down_proj.weight"].T)
    if not spec.tie_embeddings:
        w["lm_head.w"] = _f32(sd["lm_head.weight"].T)
    return w


def _from_gpt2(spec: DecoderSpec, sd: Mapping[str, np.ndarray]) -> Weights:
    def get(name: str) -> np.ndarray:
        return sd[name] if name in sd else sd[f"transformer.{name}"]

    w: Weights = {
        "embed": _f32(get("wte.weight")),
        "pos_embed": _f32(get("wpe.weight")),
        "final_norm.w": _f32(get("ln_f.weight")),
        "final_norm.b": _f32(get("ln_f.bias")),
    }
    for i in range(spec.num_layers):
        p = f"h.{i}."
        # GPT-2's Conv1D already stores weights [in, out].
        for ours, theirs in (("attn_norm", "ln_1"), ("mlp_norm", "ln_2")):
            w[f"L{i}.{ours}.w"] = _f32(get(f"{p}{theirs}.weight"))
            w[f"L{i}.{ours}.b"] = _f32(get(f"{p}{theirs}.bias"))
        for ours, theirs in (("qkv", "attn.c_attn"), ("o", "attn.c_proj"), ("fc", "mlp.c_fc"), ("proj", "mlp.c_proj")):
            w[f"L{i}.{ours}.w"] = _f32(get(f"{p}{theirs}.weight"))
            w[f"L{i}.{ours}.b"] = _f32(get(f"{p}{theirs}.bias"))
    return w


def lm_head_rows(spec: DecoderSpec, w: Weights) -> np.ndarray:
    """The output projection as [V, H] rows (the embedding itself when tied)."""
    return w["embed"] if spec.tie_embeddings else np.ascontiguousarray(w["lm_head.w"].T)
