"""A BERT encoder forward pass in numpy (float32), for small sentence-embedding models such as MiniLM.

Matches ``transformers.BertModel``'s last hidden state: absolute positions, token type 0, post-layer-norm
blocks, exact (erf) GELU. No torch at run time: the weights come from a safetensors file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.errors import SourceIntegrityError, UnsupportedArchitecture

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BertConfig:
    hidden: int
    heads: int
    layers: int
    eps: float

    @classmethod
    def from_hf(cls, config: Mapping[str, object]) -> BertConfig:
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise UnsupportedArchitecture("only BERT encoders with exact GELU are supported")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise UnsupportedArchitecture("only absolute position embeddings are supported")
        return cls(hidden=_int(config, "hidden_size"), heads=_int(config, "num_attention_heads"),
                   layers=_int(config, "num_hidden_layers"), eps=float(str(config.get("layer_norm_eps", 1e-12))))


def _int(config: Mapping[str, object], key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int):
        raise UnsupportedArchitecture(f"config.json has no integer {key!r}")
    return value


@dataclass(frozen=True)
class _Layer:
    qkv_w: F32  # [hidden, 3 * hidden], pre-transposed for x @ w
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1: tuple[F32, F32]
    up_w: F32
    up_b: F32
    down_w: F32
    down_b: F32
    ln2: tuple[F32, F32]


class NumpyBert:
    """``hidden_states(ids, mask)`` -> ``[batch, length, hidden]`` float32."""

    def __init__(self, config: BertConfig, tensors: Mapping[str, npt.NDArray[np.generic]]) -> None:
        self.config = config
        try:
            self._word = _f32(tensors["embeddings.word_embeddings.weight"])
            self._pos = _f32(tensors["embeddings.position_embeddings.weight"])
            self._type0 = _f32(tensors["embeddings.token_type_embeddings.weight"])[0]
            self._ln0 = _ln(tensors, "embeddings.LayerNorm")
            self._layers = [_layer(tensors, f"encoder.layer.{i}.") for i in range(config.layers)]
        except KeyError as exc:
            raise SourceIntegrityError(f"BERT weights lack the tensor {exc.args[0]}") from exc

    @property
    def max_positions(self) -> int:
        return int(self._pos.shape[0])

    def hidden_states(self, ids: I64, mask: I64) -> F32:
        batch, length = ids.shape
        x = self._word[ids] + self._pos[:length][None] + self._type0
        x = _layer_norm(x.reshape(batch * length, -1), self._ln0, self.config.eps)
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for layer in self._layers:
            x = self._block(x, layer, bias, batch, length)
        return x.reshape(batch, length, -1)

    def _block(self, x: F32, layer: _Layer, bias: F32, batch: int, length: int) -> F32:
        heads, hidden = self.config.heads, self.config.hidden
        qkv = (x @ layer.qkv_w + layer.qkv_b).reshape(batch, length, 3, heads, hidden // heads)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
        scores = (q @ k.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(hidden // heads)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, hidden)
        x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1, self.config.eps)
        up = _gelu(x @ layer.up_w + layer.up_b)
        return _layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2, self.config.eps)


def _f32(array: npt.NDArray[np.generic]) -> F32:
    return np.ascontiguousarray(array, dtype=np.float32)


def _linear_t(tensors: Mapping[str, npt.NDArray[np.generic]], name: str) -> tuple[F32, F32]:
    return _f32(tensors[name + ".weight"].T), _f32(tensors[name + ".bias"])


def _ln(tensors: Mapping[str, npt.NDArray[np.generic]], name: str) -> tuple[F32, F32]:
    return _f32(tensors[name + ".weight"]), _f32(tensors[name + ".bias"])


def _layer(tensors: Mapping[str, npt.NDArray[np.generic]], p: str) -> _Layer:
    parts = [_linear_t(tensors, f"{p}attention.self.{n}") for n in ("query", "key", "value")]
    out_w, out_b = _linear_t(tensors, p + "attention.output.dense")
    up_w, up_b = _linear_t(tensors, p + "intermediate.dense")
    down_w, down_b = _linear_t(tensors, p + "output.dense")
    return _Layer(qkv_w=np.ascontiguousarray(np.concatenate([w for w, _ in parts], axis=1)),
                  qkv_b=np.concatenate([b for _, b in parts]), out_w=out_w, out_b=out_b,
                  ln1=_ln(tensors, p + "attention.output.LayerNorm"), up_w=up_w, up_b=up_b,
                  down_w=down_w, down_b=down_b, ln2=_ln(tensors, p + "output.LayerNorm"))


def _layer_norm(x: F32, params: tuple[F32, F32], eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: F32 = centred / np.sqrt(var + np.float32(eps)) * params[0] + params[1]
    return out


def _gelu(x: F32) -> F32:
    out: F32 = np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1.0 / np.sqrt(2.0))))
    return out


def erf(x: F32) -> F32:
    """erf to ~1e-7 absolute (Abramowitz & Stegun 7.1.26); numpy has no erf and scipy is not a dependency."""
    a = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.3275911) * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    out: F32 = (np.sign(x) * (np.float32(1.0) - poly.astype(np.float32) * np.exp(-a * a))).astype(np.float32)
    return out
