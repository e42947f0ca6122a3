"""The physical limit of decoding: every token streams every weight once, so a row's decode speed is at
most (memory bandwidth) / (bytes streamed per token).

``copy_bandwidth`` is a STREAM-like copy (numpy, one chunk per thread, best of several repetitions; bytes
moved = read + written, STREAM's convention); ``streamed_bytes`` reads an ONNX model's initializers and
counts those a decode step reads whole: everything but tables that are only gathered from (the embedding,
of which a step reads one row) and the tiny constants. The KV cache read per step (~5 MB at SmolLM2's 150
positions) is left out.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

_GATHERS = ("Gather", "GatherBlockQuantized")


def copy_bandwidth(threads: int = 2, mbytes: int = 256, repeats: int = 7) -> float:
    """Bytes per second of the best of ``repeats`` copies of ``mbytes`` MiB (read + write), ``threads``
    chunks copied at once (numpy releases the GIL while copying)."""
    n = mbytes * (1 << 20) // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    chunks = [(dst[a:b], src[a:b]) for a, b in itertools.pairwise(bounds)]
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(lambda pair: np.copyto(*pair), chunks))
            best = min(best, time.perf_counter() - start)
    return 2.0 * src.nbytes / best


def streamed_bytes(model_path: Path) -> int:
    """Bytes of the initializers one decode step reads whole (see the module docstring)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    consumers: dict[str, set[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    total = 0
    for tensor in model.graph.initializer:
        ops = consumers.get(tensor.name, set())
        if not ops or ops <= set(_GATHERS):
            continue
        total += _nbytes(tensor)
    return total


def _nbytes(tensor: object) -> int:
    from onnx import TensorProto, helper

    assert isinstance(tensor, TensorProto)
    count = int(np.prod(tensor.dims, dtype=np.int64))
    if tensor.data_type in (TensorProto.INT4, TensorProto.UINT4):
        return (count + 1) // 2
    return count * int(helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize)
