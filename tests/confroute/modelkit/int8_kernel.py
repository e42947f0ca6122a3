"""Runs one 8-bit ``MatMulNBits`` (int8 compute, as the edge bundle's) on fixed inputs and saves the output.

``python -m tests.confroute.modelkit.int8_kernel OUT.npy``: run natively and under an emulated CPU, the two
outputs are bitwise equal exactly when onnxruntime picked the same int8 kernel for both CPUs.
"""

from __future__ import annotations

import sys

import numpy as np

K, N, BLOCK, ROWS = 576, 1536, 64, 4  # SmolLM2's hidden size and MLP width


def run_kernel() -> np.ndarray:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(N, K // BLOCK, BLOCK), dtype=np.uint8)
    scales = (rng.random(N * K // BLOCK, dtype=np.float32) * 0.01).astype(np.float32)
    node = helper.make_node("MatMulNBits", ["A", "B", "S"], ["Y"], domain="com.microsoft", K=K, N=N, bits=8,
                            block_size=BLOCK, accuracy_level=4)
    graph = helper.make_graph([node], "int8_kernel", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [ROWS, K])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [ROWS, N])],
                              initializer=[numpy_helper.from_array(codes, "B"), numpy_helper.from_array(scales, "S")])
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = rng.standard_normal((ROWS, K), dtype=np.float32)
    return np.asarray(session.run(None, {"A": x})[0])


if __name__ == "__main__":
    np.save(sys.argv[1], run_kernel())
