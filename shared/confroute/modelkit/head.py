"""The fused uncertainty head: confidence signals computed in the same forward pass as the logits.

From the last position's logits ``z`` (shape [B, V]):
``lse = logsumexp(z)``; ``max_prob = exp(max z - lse)``; ``argmax_logprob = max z - lse``;
``entropy = lse - sum(softmax(z) * z)``; ``next_token = argmax z`` (greedy decoding then copies one int).

Probes (after Semantic Entropy Probes): the residual stream of a contiguous range of layers at the last
position, concatenated to ``probe_features`` [B, k*H], times ``probe.weight`` [k*H, 2] plus ``probe.bias``
[2], through a sigmoid: column 0 is the TBG probe (meaningful right after prefill), column 1 the SLT probe
(the runtime keeps the value computed at the second-last generated token). The probe weights live in their
own external-data file so a trained probe can be written into a bundle without re-exporting.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from onnx import TensorProto

from confroute.modelkit.decoder import DecoderOutputs
from confroute.modelkit.graph import GraphBuilder

PROBE_WEIGHT = "probe.weight"
PROBE_BIAS = "probe.bias"
PROBE_OUTPUTS = ("tbg", "slt")


@dataclasses.dataclass(frozen=True)
class ProbeLayout:
    """Which layers feed the probes: ``first`` .. ``last`` inclusive (0-based decoder layers)."""

    first: int
    last: int
    hidden_size: int

    @property
    def num_layers(self) -> int:
        return self.last - self.first + 1

    @property
    def feature_dim(self) -> int:
        return self.num_layers * self.hidden_size


def default_probe_layers(num_layers: int) -> tuple[int, int]:
    """A mid-to-late contiguous range (SEP found these layers most predictive)."""
    first = num_layers // 2
    last = max(first, (3 * num_layers) // 4 - 1)
    return first, last


def add_head(gb: GraphBuilder, dec: DecoderOutputs, vocab: str, vocab_size: int) -> None:
    """Entropy, max-prob, argmax log-prob and argmax id of the next-token distribution.

    Every output is produced under its own name (an Identity per output would cost a node each step).
    """
    z = dec.logits
    zmax = _max_and_argmax(gb, z, vocab_size, "next_token")
    shifted = gb.op1("Sub", [z, zmax])
    exp = gb.op1("Exp", [shifted])
    total = gb.op1("ReduceSum", [exp, gb.const([1])], keepdims=0)
    log_total = gb.op1("Log", [total])
    # entropy = log(sum e) - sum(p * shifted), with p = e / sum e
    weighted = gb.op1("ReduceSum", [gb.op1("Mul", [exp, shifted]), gb.const([1])], keepdims=0)
    gb.op("Sub", [log_total, gb.op1("Div", [weighted, total])], outputs=["entropy"])
    gb.op("Reciprocal", [total], outputs=["max_prob"])
    gb.op("Neg", [log_total], outputs=["argmax_logprob"])
    gb.add_output(z, "logits", TensorProto.FLOAT, ["batch", vocab])
    for name in ("entropy", "max_prob", "argmax_logprob"):
        gb.add_output(name, name, TensorProto.FLOAT, ["batch"])
    gb.add_output("next_token", "next_token", TensorProto.INT64, ["batch"])


def argmax_block(vocab_size: int) -> int | None:
    """Block length of the two-stage argmax: the largest power of two (at most 256) dividing the vocabulary,
    if at least 16 and leaving two blocks or more; None: the vocabulary does not split (one ``TopK``)."""
    block = 1
    while vocab_size % (2 * block) == 0 and block < 256:
        block *= 2
    return block if block >= 16 and vocab_size // block >= 2 else None


def _max_and_argmax(gb: GraphBuilder, z: str, vocab_size: int, argmax: str) -> str:
    """Writes the first index of the maximum of ``z`` [B, V] to ``argmax`` [B]; returns the maximum [B, 1].

    onnxruntime's ``TopK`` and ``ArgMax`` scan a row one element at a time (~50 us over SmolLM2's 49,152
    logits in an ad-hoc micro-benchmark on the 2-core development machine), while ``ReduceMax`` is
    vectorised (~14 us). So the row is cut into blocks:
    the vectorised maxima of the blocks, the first block holding the overall maximum, and the first
    maximum inside that block (ties resolve to the lowest index, as ``argmax`` does): ~15 us in all.
    """
    block = argmax_block(vocab_size)
    if block is None:
        zmax, index = gb.op("TopK", [z, gb.const([1])], outputs=2, axis=1)
        gb.op("Squeeze", [index, gb.const([1])], outputs=[argmax])
        return zmax
    blocks = gb.op1("Reshape", [z, gb.const([0, vocab_size // block, block])])
    block_max = gb.op1("ReduceMax", [blocks, gb.const([2])], keepdims=0)  # [B, V / block]
    zmax = gb.op1("ReduceMax", [block_max, gb.const([1])], keepdims=1)  # [B, 1]
    first = gb.op1("ArgMax", [block_max], axis=1, keepdims=1)  # [B, 1]
    within = gb.op1("ArgMax", [gb.op1("GatherND", [blocks, first], batch_dims=1)], axis=1, keepdims=1)
    index = gb.op1("Add", [gb.op1("Mul", [first, gb.const(block)]), within])
    gb.op("Squeeze", [index, gb.const([1])], outputs=[argmax])
    return zmax


def add_probes(gb: GraphBuilder, dec: DecoderOutputs, layout: ProbeLayout,
               weight: np.ndarray, bias: np.ndarray) -> None:
    """Probe features and sigmoid scores from the residual stream at the last position.

    The layers' residual streams are concatenated first and the last position taken once: two nodes
    per step instead of one Gather per layer plus a Concat; ``Gemm`` adds the bias in the same node.
    """
    layers = dec.layer_hidden[layout.first: layout.last + 1]
    stacked = layers[0] if len(layers) == 1 else gb.op1("Concat", layers, axis=2)
    gb.op("Gather", [stacked, gb.const(-1)], outputs=["probe_features"], axis=1)
    logit = gb.op1("Gemm", ["probe_features", gb.init(PROBE_WEIGHT, weight), gb.init(PROBE_BIAS, bias)])
    gb.op("Sigmoid", [logit], outputs=["probe"])
    gb.add_output("probe_features", "probe_features", TensorProto.FLOAT, ["batch", layout.feature_dim])
    gb.add_output("probe", "probe", TensorProto.FLOAT, ["batch", len(PROBE_OUTPUTS)])


def untrained_probe(layout: ProbeLayout) -> tuple[np.ndarray, np.ndarray]:
    """Zero weights: every probe reads 0.5 until a trained probe is written in."""
    return (np.zeros((layout.feature_dim, len(PROBE_OUTPUTS)), np.float32),
            np.zeros(len(PROBE_OUTPUTS), np.float32))
