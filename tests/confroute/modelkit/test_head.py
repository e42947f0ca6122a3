"""The fused head alone, on logits fed in: the two-stage argmax and the TopK fallback agree with numpy."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, numpy_helper

from confroute.modelkit.decoder import DecoderOutputs
from confroute.modelkit.export import OPSET
from confroute.modelkit.graph import GraphBuilder
from confroute.modelkit.head import add_head, argmax_block


def _head_session(vocab_size: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    gb = GraphBuilder()
    z = gb.add_input("z", TensorProto.FLOAT, ["batch", vocab_size])
    add_head(gb, DecoderOutputs(last_hidden="", layer_hidden=[], logits=z), "vocab", vocab_size)
    model = gb.to_model("head", OPSET)
    model.graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in gb.initializers.items())
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_the_argmax_block_is_a_power_of_two_dividing_the_vocabulary() -> None:
    assert argmax_block(49152) == 256  # SmolLM2
    assert argmax_block(151936) == 128  # Qwen2.5
    assert argmax_block(320) == 64
    assert argmax_block(50257) is None  # GPT-2: odd, one TopK
    assert argmax_block(96) == 32
    assert argmax_block(64) is None  # a single block
    assert argmax_block(24) is None  # blocks shorter than 16


@pytest.mark.parametrize("vocab_size", [320, 50257, 49152, 151936, 24])
def test_the_head_equals_numpy(vocab_size: int) -> None:
    rng = np.random.default_rng(vocab_size)
    z = (rng.standard_normal((3, vocab_size)) * 4).astype(np.float32)
    z[1, vocab_size // 3] = z[1, -1] = z[1].max() + 1.0  # a tie: the first index wins, as numpy's argmax
    z[2] = 0.0  # all equal
    session = _head_session(vocab_size)
    entropy, max_prob, argmax_logprob, next_token = session.run(
        ["entropy", "max_prob", "argmax_logprob", "next_token"], {"z": z})
    zz = z.astype(np.float64)
    p = np.exp(zz - zz.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(next_token, z.argmax(axis=1))
    np.testing.assert_allclose(max_prob, p.max(axis=1), rtol=1e-4)  # float32 sums
    np.testing.assert_allclose(argmax_logprob, np.log(p.max(axis=1)), atol=1e-4)
    np.testing.assert_allclose(entropy, -(p * np.log(p)).sum(axis=1), atol=1e-4)
