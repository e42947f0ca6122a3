"""Writes a built graph to disk: ``model.onnx``, its weights in ``model.onnx.data`` and the probe in
``probe.bin``, all as ONNX external data so each file can be replaced on its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.external_data_helper import set_external_data

from confroute.modelkit.head import PROBE_BIAS, PROBE_WEIGHT

MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
PROBE_FILE = "probe.bin"
_INLINE_LIMIT = 1024  # bytes: tiny constants stay inside model.onnx
_ALIGN = 64


def save_graph(model: onnx.ModelProto, initializers: dict[str, np.ndarray], folder: Path,
               progress: Callable[[int], None] | None = None) -> None:
    """Attaches initializers as external data (weights -> DATA_FILE, probe -> PROBE_FILE) and saves."""
    data_offset = 0
    with open(folder / DATA_FILE, "wb") as data:
        for name, array in initializers.items():
            # not np.ascontiguousarray: it turns 0-d scalars into 1-d arrays
            tensor = numpy_helper.from_array(np.asarray(array, order="C"), name)
            if name in (PROBE_WEIGHT, PROBE_BIAS):
                _to_external(tensor, PROBE_FILE, probe_offset(name, initializers[PROBE_WEIGHT]))
            elif array.nbytes > _INLINE_LIMIT:
                data_offset = _append(data, tensor, data_offset)
            model.graph.initializer.append(tensor)
            if progress is not None:
                progress(array.nbytes)
    if PROBE_WEIGHT in initializers:
        write_probe(folder / PROBE_FILE, initializers[PROBE_WEIGHT], initializers[PROBE_BIAS])
    else:
        write_probe(folder / PROBE_FILE, np.zeros((0, 2), np.float32), np.zeros(2, np.float32))
    onnx.save_model(model, str(folder / MODEL_FILE))


def probe_offset(name: str, weight: np.ndarray) -> int:
    """probe.bin holds the float32 weight [D, 2] followed by the float32 bias [2]."""
    return 0 if name == PROBE_WEIGHT else int(weight.nbytes)


def write_probe(path: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(weight, dtype=np.float32).tobytes())
        f.write(np.ascontiguousarray(bias, dtype=np.float32).tobytes())


def _append(data, tensor: onnx.TensorProto, offset: int) -> int:  # type: ignore[no-untyped-def]
    pad = (-offset) % _ALIGN
    data.write(b"\0" * pad)
    offset += pad
    raw = tensor.raw_data
    data.write(raw)
    _to_external(tensor, DATA_FILE, offset)
    return offset + len(raw)


def _to_external(tensor: onnx.TensorProto, location: str, offset: int) -> None:
    length = len(tensor.raw_data)
    set_external_data(tensor, location, offset=offset, length=length)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
