"""The decoder stack as an ONNX graph, with onnxruntime's fused CPU/GPU contrib ops.

Attention is ``GroupQueryAttention`` (rotary embedding, KV cache and causal mask in one kernel); the
residual add is fused into the next norm (``Skip[Simplified]LayerNormalization``), whose fourth output is
the residual stream itself: the per-layer hidden states the probes read come for free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from onnx import TensorProto

from confroute.modelkit.graph import MS_DOMAIN, GraphBuilder
from confroute.modelkit.grid import SourceGrid, stack_rows
from confroute.modelkit.grid_ops import GridMatMul, grid_embed
from confroute.modelkit.quantize import BlockQuantized, quantize_rows
from confroute.modelkit.spec import DecoderSpec
from confroute.modelkit.weights import Weights, lm_head_rows


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """Weight-only quantization of every matmul (and the embedding table)."""

    bits: int = 8
    block_size: int = 32
    accuracy_level: int = 0
    symmetric: bool = False
    #: Keep each weight on its source's grid (``grids``) instead: exact; float32 where a weight has none.
    source_grids: bool = False


@dataclasses.dataclass(frozen=True)
class DecoderOutputs:
    """Names of the tensors the head reads: last-position normed hidden and per-layer hidden states."""

    last_hidden: str
    layer_hidden: list[str]  # residual stream after layer i, shape [B, S, H]
    logits: str


class _Linear:
    """Emits ``x @ W (+ b)`` as MatMul, as 8-bit MatMulNBits, or on the weight's source grid."""

    def __init__(self, gb: GraphBuilder, quant: QuantConfig | None, grids: Mapping[str, SourceGrid]) -> None:
        self.gb = gb
        self.quant = quant
        self.grids = grids if quant is not None and quant.source_grids else {}
        self.grid_matmul = GridMatMul(gb, quant.accuracy_level if quant else 0)
        self._quantized: dict[str, BlockQuantized] = {}

    @property
    def on_grids(self) -> bool:
        return self.quant is not None and self.quant.source_grids

    def quantized(self, name: str, rows: np.ndarray) -> BlockQuantized:
        """Quantizes once per weight (the tied embedding is read by two nodes)."""
        assert self.quant is not None
        if name not in self._quantized:
            self._quantized[name] = quantize_rows(rows, self.quant.block_size, self.quant.symmetric)
        return self._quantized[name]

    def __call__(self, x: str, w: Weights, name: str) -> str:
        weight = w[f"{name}.w"]
        y = self._matmul(x, weight, name)
        if f"{name}.b" in w:
            y = self.gb.op1("Add", [y, self.gb.init(f"{name}.b", w[f"{name}.b"])])
        return y

    def _matmul(self, x: str, weight: np.ndarray, name: str) -> str:
        if self.on_grids and name in self.grids:
            return self.grid_matmul(x, self.grids[name], name)
        if self.quant is None or self.on_grids:
            return self.gb.op1("MatMul", [x, self.gb.init(f"{name}.w", weight)])
        return self.nbits(x, np.ascontiguousarray(weight.T), name)

    def qkv(self, x: str, w: Weights, i: int, sizes: tuple[int, int, int]) -> list[str]:
        """GroupQueryAttention's query, key and value inputs: one packed projection (``[qkv, "", ""]``)
        unless the three weights sit on grids that do not stack (e.g. Q4_K q/k and a Q6_K v)."""
        name = f"L{i}.qkv"
        parts = [self.grids.get(f"L{i}.{p}") for p in "qkv"]
        stacked = stack_rows([g for g in parts if g is not None]) if all(parts) else None
        if not self.on_grids or stacked is not None:
            if stacked is not None:
                self.grids = {**self.grids, name: stacked}
            return [self(x, w, name), "", ""]
        bounds = np.cumsum([0, *sizes])
        return [self(x, _columns(w, name, f"L{i}.{p}", int(a), int(b)), f"L{i}.{p}")
                for p, a, b in zip("qkv", bounds[:-1], bounds[1:], strict=True)]

    def nbits(self, x: str, rows: np.ndarray, name: str, output: str | None = None) -> str:
        assert self.quant is not None
        q = self.quantized(name, rows)
        gb = self.gb
        zero_points = [] if self.quant.symmetric else [gb.init(f"{name}.zp", q.zero_points.reshape(-1))]
        return gb.op(
            "MatMulNBits",
            [x, gb.init(f"{name}.q", q.codes), gb.init(f"{name}.scales", q.scales.reshape(-1)), *zero_points],
            domain=MS_DOMAIN, K=rows.shape[1], N=rows.shape[0], bits=self.quant.bits,
            block_size=self.quant.block_size, accuracy_level=self.quant.accuracy_level,
            outputs=[output or gb.fresh("matmulnbits")],
        )[0]


def _columns(w: Weights, name: str, part: str, start: int, stop: int) -> Weights:
    """Columns ``start:stop`` of a fused weight (and its bias) under the part's own name."""
    out = {f"{part}.w": np.ascontiguousarray(w[f"{name}.w"][:, start:stop])}
    if f"{name}.b" in w:
        out[f"{part}.b"] = np.ascontiguousarray(w[f"{name}.b"][start:stop])
    return out


def build_decoder(gb: GraphBuilder, spec: DecoderSpec, w: Weights, quant: QuantConfig | None,
                  grids: Mapping[str, SourceGrid] | None = None) -> DecoderOutputs:
    """Adds inputs, the stack and the KV-cache outputs; returns what the head needs. ``grids``: the
    source's weights on their own grid, used when ``quant.source_grids``."""
    ids = gb.add_input("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = gb.add_input("attention_mask", TensorProto.INT64, ["batch", "total"])
    seqlens, total = _sequence_lengths(gb, mask)
    linear = _Linear(gb, quant, grids or {})
    x = _embed(gb, spec, w, ids, mask, linear)
    rope = _rotary_cache(gb, spec) if spec.family == "llama" else None
    hidden: list[str] = []
    residual = x
    delta: str | None = None
    for i in range(spec.num_layers):
        normed, residual = _norm(gb, spec, w, f"L{i}.attn_norm", residual, delta)
        if delta is not None:
            hidden.append(residual)
        attn = _attention(gb, spec, w, linear, i, normed, seqlens, total, rope)
        normed, residual = _norm(gb, spec, w, f"L{i}.mlp_norm", residual, attn)
        delta = _mlp(gb, spec, w, linear, i, normed)
    normed, residual = _norm(gb, spec, w, "final_norm", residual, delta)
    hidden.append(residual)
    last = gb.op1("Gather", [normed, gb.const(-1)], axis=1)
    return DecoderOutputs(last_hidden=last, layer_hidden=hidden, logits=_lm_head(gb, spec, w, linear, last))


def _sequence_lengths(gb: GraphBuilder, mask: str) -> tuple[str, str]:
    """GroupQueryAttention wants int32 ``seqlens_k`` (= valid length - 1) and a scalar total length."""
    valid = gb.op1("ReduceSum", [mask, gb.const([1])], keepdims=0)
    seqlens = gb.op1("Cast", [gb.op1("Sub", [valid, gb.const(1)])], to=TensorProto.INT32)
    total = gb.op1("Gather", [gb.op1("Shape", [mask]), gb.const(1)], axis=0)
    return seqlens, gb.op1("Cast", [total], to=TensorProto.INT32)


def _embed(gb: GraphBuilder, spec: DecoderSpec, w: Weights, ids: str, mask: str, linear: _Linear) -> str:
    if linear.on_grids and "embed" in linear.grids:
        x = grid_embed(gb, linear.grids["embed"], ids, spec.hidden_size)
    elif linear.quant is None or linear.on_grids:
        x = gb.op1("Gather", [gb.init("embed", w["embed"]), ids])
    else:
        x = _quantized_embed(gb, spec, linear.quantized("embed", w["embed"]), ids, linear.quant.symmetric)
    if spec.family == "gpt2":
        total = gb.op1("Gather", [gb.op1("Shape", [mask]), gb.const(1)], axis=0)
        seq = gb.op1("Gather", [gb.op1("Shape", [ids]), gb.const(1)], axis=0)
        positions = gb.op1("Range", [gb.op1("Sub", [total, seq]), total, gb.const(1)])
        x = gb.op1("Add", [x, gb.op1("Gather", [gb.init("pos_embed", w["pos_embed"]), positions])])
    return x


def _quantized_embed(gb: GraphBuilder, spec: DecoderSpec, q: BlockQuantized, ids: str, symmetric: bool) -> str:
    """Looks rows up in an 8-bit table (the tied output layer's codes, stored a second time) with one
    ``GatherBlockQuantized`` node, which dequantizes only the rows it gathers.

    The copy costs V x H bytes on disk but keeps memory low: the output layer's codes are released after
    onnxruntime prepacks them, while this table is memory-mapped and only the rows looked up are resident.
    Symmetric codes carry no zero points: the operator's default for 8 bits is 128, as the codes assume.
    """
    codes = gb.init("embed.rows", q.codes.reshape(q.codes.shape[0], -1))
    scales = gb.init("embed.scales2d", q.scales)
    zero_points = [] if symmetric else [gb.init("embed.zp2d", q.zero_points)]
    rows = gb.op1("GatherBlockQuantized", [codes, ids, scales, *zero_points], domain=MS_DOMAIN,
                  gather_axis=0, quantize_axis=1, block_size=q.block_size, bits=8)
    if q.n_blocks * q.block_size == spec.hidden_size:
        return rows
    return gb.op1("Slice", [rows, gb.const([0]), gb.const([spec.hidden_size]), gb.const([2])])


def _rotary_cache(gb: GraphBuilder, spec: DecoderSpec) -> tuple[str, str]:
    inv_freq = 1.0 / (spec.rope_theta ** (np.arange(0, spec.head_dim, 2, dtype=np.float64) / spec.head_dim))
    freqs = np.outer(np.arange(spec.max_positions, dtype=np.float64), inv_freq)
    return (gb.init("rope.cos", np.cos(freqs).astype(np.float32)),
            gb.init("rope.sin", np.sin(freqs).astype(np.float32)))


def _norm(gb: GraphBuilder, spec: DecoderSpec, w: Weights, name: str, residual: str,
          delta: str | None) -> tuple[str, str]:
    """Normalises ``residual + delta``; returns (normed, new residual)."""
    gamma = gb.init(f"{name}.w", w[f"{name}.w"])
    rms = spec.family == "llama"
    params = [gamma] if rms else [gamma, gb.init(f"{name}.b", w[f"{name}.b"])]
    if delta is None:
        op = "SimplifiedLayerNormalization" if rms else "LayerNormalization"
        return gb.op1(op, [residual, *params], axis=-1, epsilon=spec.norm_eps), residual
    op = "SkipSimplifiedLayerNormalization" if rms else "SkipLayerNormalization"
    # mean and inverse std are optional outputs: left unnamed, the kernel does not write them
    normed, summed = gb.fresh("normed"), gb.fresh("residual")
    gb.op(op, [delta, residual, *params], outputs=[normed, "", "", summed], domain=MS_DOMAIN, epsilon=spec.norm_eps)
    return normed, summed


def _attention(gb: GraphBuilder, spec: DecoderSpec, w: Weights, linear: _Linear, i: int, x: str,
               seqlens: str, total: str, rope: tuple[str, str] | None) -> str:
    qkv = linear.qkv(x, w, i, (spec.q_size, spec.kv_size, spec.kv_size))
    past_k = gb.add_input(f"past_key_values.{i}.key", TensorProto.FLOAT,
                          ["batch", spec.num_kv_heads, "past", spec.head_dim])
    past_v = gb.add_input(f"past_key_values.{i}.value", TensorProto.FLOAT,
                          ["batch", spec.num_kv_heads, "past", spec.head_dim])
    extra = list(rope) if rope else []
    out, present_k, present_v = gb.op(
        "GroupQueryAttention", [*qkv, past_k, past_v, seqlens, total, *extra],
        outputs=[gb.fresh("attn"), f"present.{i}.key", f"present.{i}.value"], domain=MS_DOMAIN,
        num_heads=spec.num_heads, kv_num_heads=spec.num_kv_heads, do_rotary=int(rope is not None),
        rotary_interleaved=0, scale=float(spec.head_dim) ** -0.5,
    )
    kv_shape: list[int | str] = ["batch", spec.num_kv_heads, "total", spec.head_dim]
    gb.add_output(present_k, present_k, TensorProto.FLOAT, kv_shape)
    gb.add_output(present_v, present_v, TensorProto.FLOAT, kv_shape)
    return linear(out, w, f"L{i}.o")


def _mlp(gb: GraphBuilder, spec: DecoderSpec, w: Weights, linear: _Linear, i: int, x: str) -> str:
    if spec.family == "gpt2":
        act = gb.op1("FastGelu", [linear(x, w, f"L{i}.fc")], domain=MS_DOMAIN)
        return linear(act, w, f"L{i}.proj")
    # two matmuls rather than one fused matmul and a Split: the Split node costs more than it saves
    gate, up = linear(x, w, f"L{i}.gate"), linear(x, w, f"L{i}.up")
    silu = gb.op1("Mul", [gate, gb.op1("Sigmoid", [gate])])
    return linear(gb.op1("Mul", [silu, up]), w, f"L{i}.down")


def _lm_head(gb: GraphBuilder, spec: DecoderSpec, w: Weights, linear: _Linear, last: str) -> str:
    """Logits of the last position only: prefill never pays for the others."""
    grid = linear.grids.get("lm_head") or (linear.grids.get("embed") if spec.tie_embeddings else None)
    if grid is not None:
        return linear.grid_matmul(last, grid, "lm_head", rank=2, output="logits")
    if linear.quant is not None and not linear.on_grids:
        name = "embed" if spec.tie_embeddings else "lm_head"
        return linear.nbits(last, lm_head_rows(spec, w), name, output="logits")
    # A tied output layer still gets its own [H, V] copy: MatMul over it is ~13% faster than Gemm(transB)
    # over the embedding table on CPU, for 4 bytes x V x H more memory (fp32 only; 8-bit shares the table).
    head = w["lm_head.w"] if "lm_head.w" in w else np.ascontiguousarray(w["embed"].T)
    return gb.op("MatMul", [last, gb.init("lm_head.w", head)], outputs=["logits"])[0]
