"""The architecture description the graph builder works from, independent of where weights came from."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from confroute.errors import UnsupportedArchitecture

Family = Literal["llama", "gpt2"]

#: Hugging Face ``model_type`` values the exporter can build, and the graph family each maps to.
SUPPORTED_MODEL_TYPES: dict[str, Family] = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "gpt2": "gpt2",
}


@dataclasses.dataclass(frozen=True)
class DecoderSpec:
    """A decoder-only transformer, as much of it as the graph needs."""

    model_type: str
    family: Family
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    norm_eps: float
    max_positions: int
    rope_theta: float = 10000.0
    qkv_bias: bool = False
    tie_embeddings: bool = True

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def spec_from_hf_config(config: dict[str, Any]) -> DecoderSpec:
    """Reads a Hugging Face ``config.json`` (as a dict) into a spec, or says why it cannot."""
    model_type = str(config.get("model_type", ""))
    family = SUPPORTED_MODEL_TYPES.get(model_type)
    if family is None:
        supported = ", ".join(sorted(SUPPORTED_MODEL_TYPES))
        raise UnsupportedArchitecture(
            f"model_type {model_type or '(missing)'!r} is not supported; the exporter builds: {supported}"
        )
    if family == "gpt2":
        return _gpt2_spec(config)
    return _llama_spec(model_type, config)


def _llama_spec(model_type: str, c: dict[str, Any]) -> DecoderSpec:
    _reject_rope_scaling(c)
    heads = int(c["num_attention_heads"])
    hidden = int(c["hidden_size"])
    rope = c.get("rope_parameters") or {}
    return DecoderSpec(
        model_type=model_type,
        family="llama",
        vocab_size=int(c["vocab_size"]),
        hidden_size=hidden,
        num_layers=int(c["num_hidden_layers"]),
        num_heads=heads,
        num_kv_heads=int(c.get("num_key_value_heads") or heads),
        head_dim=int(c.get("head_dim") or hidden // heads),
        intermediate_size=int(c["intermediate_size"]),
        norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        max_positions=int(c.get("max_position_embeddings", 2048)),
        rope_theta=float(rope.get("rope_theta", c.get("rope_theta", 10000.0))),
        qkv_bias=bool(c.get("attention_bias", model_type == "qwen2")),
        tie_embeddings=bool(c.get("tie_word_embeddings", False)),
    )


def _gpt2_spec(c: dict[str, Any]) -> DecoderSpec:
    hidden = int(c["n_embd"])
    heads = int(c["n_head"])
    return DecoderSpec(
        model_type="gpt2",
        family="gpt2",
        vocab_size=int(c["vocab_size"]),
        hidden_size=hidden,
        num_layers=int(c["n_layer"]),
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=hidden // heads,
        intermediate_size=int(c.get("n_inner") or 4 * hidden),
        norm_eps=float(c.get("layer_norm_epsilon", 1e-5)),
        max_positions=int(c.get("n_positions", 1024)),
        qkv_bias=True,
        tie_embeddings=True,
    )


def _reject_rope_scaling(c: dict[str, Any]) -> None:
    rope = c.get("rope_parameters") or c.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if kind not in ("default", None):
        raise UnsupportedArchitecture(f"rope scaling {kind!r} is not supported yet (only the default RoPE)")
