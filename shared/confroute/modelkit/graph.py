"""A small ONNX graph builder: nodes, inputs/outputs and numpy initializers with unique names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

MS_DOMAIN = "com.microsoft"

_ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
         np.dtype(np.int32): TensorProto.INT32, np.dtype(np.uint8): TensorProto.UINT8}

Dim = int | str


class GraphBuilder:
    """Accumulates a graph; initializers stay numpy arrays until :meth:`to_model`."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._counter = 0

    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    def init(self, name: str, array: np.ndarray) -> str:
        """Registers a named weight; the same name twice must be the same array."""
        if name in self.initializers and self.initializers[name] is not array:
            raise ValueError(f"initializer {name!r} registered twice with different data")
        self.initializers[name] = array
        return name

    def const(self, value: Any, dtype: type = np.int64) -> str:
        return self.init(self.fresh("const"), np.asarray(value, dtype=dtype))

    def op(self, op_type: str, inputs: Sequence[str], *, outputs: int | Sequence[str] = 1,
           domain: str = "", **attrs: Any) -> list[str]:
        """Adds a node; returns its output names (``""`` marks an optional output left out)."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        node = helper.make_node(op_type, list(inputs), names, name=self.fresh(op_type), domain=domain, **attrs)
        self.nodes.append(node)
        return names

    def op1(self, op_type: str, inputs: Sequence[str], *, domain: str = "", **attrs: Any) -> str:
        return self.op(op_type, inputs, domain=domain, **attrs)[0]

    def add_input(self, name: str, elem: int, shape: Sequence[Dim]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def add_output(self, source: str, name: str, elem: int, shape: Sequence[Dim]) -> None:
        """Exposes ``source`` as graph output ``name`` (renaming through an Identity when needed)."""
        if source != name:
            self.op("Identity", [source], outputs=[name])
        self.outputs.append(helper.make_tensor_value_info(name, elem, list(shape)))

    def to_model(self, graph_name: str, opset: int) -> onnx.ModelProto:
        """The model without initializer data; :mod:`confroute.modelkit.save` attaches it."""
        graph = helper.make_graph(self.nodes, graph_name, self.inputs, self.outputs)
        opsets = [helper.make_opsetid("", opset), helper.make_opsetid(MS_DOMAIN, 1)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="confroute")
        model.ir_version = 9
        return model


def elem_type(array: np.ndarray) -> int:
    return _ELEM[array.dtype]
