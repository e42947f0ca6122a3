"""Reads a GGUF file's quantized matmul weights on their own grid (:mod:`confroute.modelkit.grid`), under
canonical names: ``L{i}.q``, ``L{i}.k``, ``L{i}.v``, ``L{i}.o``, ``L{i}.gate``, ``L{i}.up``, ``L{i}.down``,
``embed`` and ``lm_head``, each as rows [out, in].

Every grid is checked against the weights transformers dequantized from the same file (same values, same
row order: llama GGUFs store q and k rows permuted for llama.cpp's rotary layout, undone here as there):
a mismatch is a :class:`SourceIntegrityError`, never a silently different model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from confroute.errors import SourceIntegrityError
from confroute.modelkit.grid import SourceGrid, decode
from confroute.modelkit.spec import DecoderSpec
from confroute.modelkit.weights import Weights

_LAYER_NAMES = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o", "ffn_gate": "gate",
                "ffn_up": "up", "ffn_down": "down"}
_TOP_NAMES = {"token_embd": "embed", "output": "lm_head"}
#: Largest difference allowed between a grid and transformers' dequantization (both compute the same
#: float32 products; only the order of the offset's additions may differ).
_TOLERANCE = 1e-5


def read_grids(path: Path, spec: DecoderSpec, weights: Weights) -> dict[str, SourceGrid]:
    """The quantized llama-family matmul weights of ``path`` that have a grid; other tensors (F32, F16,
    types without a grid) are left out and the exporter keeps them in float32."""
    if spec.family != "llama":
        return {}
    from gguf import GGUFReader

    reader = GGUFReader(path)
    arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
    grids: dict[str, SourceGrid] = {}
    for tensor in reader.tensors:
        name = _canonical(tensor.name)
        if name is None:
            continue
        grid = decode(tensor.tensor_type.name, np.asarray(tensor.data), int(tensor.shape[0]))
        if grid is None:
            continue
        if arch == "llama" and name.endswith((".q", ".k")):
            heads = spec.num_heads if name.endswith(".q") else spec.num_kv_heads
            grid = grid.take_rows(_rotary_order(grid.rows, heads))
        _check(name, grid, expected_rows(spec, weights, name))
        grids[name] = grid
    return grids


def expected_rows(spec: DecoderSpec, w: Weights, name: str) -> np.ndarray:
    """The float32 rows [out, in] the canonical weights hold for a grid name."""
    if name == "embed":
        return w["embed"]
    if name == "lm_head":
        return w["lm_head.w"].T if "lm_head.w" in w else w["embed"]
    layer, part = name.split(".")
    if part in ("q", "k", "v"):
        start = {"q": 0, "k": spec.q_size, "v": spec.q_size + spec.kv_size}[part]
        size = spec.q_size if part == "q" else spec.kv_size
        return w[f"{layer}.qkv.w"][:, start:start + size].T
    return w[f"{layer}.{part}.w"].T


def _canonical(gguf_name: str) -> str | None:
    parts = gguf_name.split(".")
    if parts[-1] != "weight":
        return None
    if parts[0] == "blk" and len(parts) == 4 and parts[2] in _LAYER_NAMES:
        return f"L{parts[1]}.{_LAYER_NAMES[parts[2]]}"
    return _TOP_NAMES.get(parts[0]) if len(parts) == 2 else None


def _rotary_order(rows: int, heads: int) -> np.ndarray:
    """The row order transformers' reverse permutation gives (per head: pairs (2j, 2j+1) -> j, j + half)."""
    dim = rows // heads // 2
    return np.arange(rows).reshape(heads, dim, 2).swapaxes(1, 2).reshape(-1)


def _check(name: str, grid: SourceGrid, rows: np.ndarray) -> None:
    if rows.shape != (grid.rows, grid.in_features):
        raise SourceIntegrityError(f"GGUF tensor {name}: grid {grid.rows}x{grid.in_features}, weights {rows.shape}")
    scale = float(np.abs(rows).max()) or 1.0
    if float(np.abs(grid.dequantize() - rows).max()) > _TOLERANCE * scale:
        raise SourceIntegrityError(f"GGUF tensor {name} ({grid.source_type}) does not match its dequantization")
