"""One onnxruntime session over a bundle's graph, stepped with a KV cache through I/O binding.

Keys and values live in one preallocated buffer per layer, sized for the whole generation and bound as
both the past input and the present output: ``GroupQueryAttention`` then writes each step's keys in place
(its shared-buffer mode) instead of copying the whole cache every token. Only the few scalars of the fused
head come back per step; the logits are fetched only when sampling needs them. This module is the boundary
to onnxruntime.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from confroute.bundle.manifest import Manifest
from confroute.errors import BundleCorrupt, RuntimeFailure

_HEAD = ("next_token", "entropy", "max_prob", "argmax_logprob", "probe")


@dataclasses.dataclass(frozen=True)
class RuntimeOptions:
    """Execution providers in priority order (CPU default; CUDA/TensorRT on Jetson) and CPU threading."""

    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 2
    spin: bool = True


class StepOutput(NamedTuple):
    """The fused head's outputs for the last position of one forward pass (batch of one).

    A named tuple: one is made per decoded token, and a tuple is built several times faster than a frozen
    dataclass (the steps run while the weights stream through the caches, so every saved lookup counts).
    """

    next_token: int
    entropy: float
    max_prob: float
    argmax_logprob: float
    probe: np.ndarray  # [n_probe_outputs] sigmoid scores
    logits: np.ndarray | None
    features: np.ndarray | None


class KvCache:
    """Past keys/values of one sequence: onnxruntime buffers of ``capacity`` positions, ``length`` used.

    It owns the I/O binding its buffers are bound in: they stay bound across steps, so a step rebinds
    only the mask (rebinding 2 x layers buffers per token costs ~1 ms in Python). A one-token step writes
    its token into ``token``, bound once as the ids input (``token_bound``), instead of binding a new array.
    """

    def __init__(self, values: list[Any], capacity: int, binding: Any) -> None:
        self.values = values
        self.capacity = capacity
        self.length = 0
        self.binding = binding
        self.extras: tuple[bool, bool] | None = None
        self.outputs: dict[str, np.ndarray] = {}
        self.token = np.zeros((1, 1), dtype=np.int64)
        self.token_bound = False


class OnnxDecoder:
    """Steps a bundle's graph: ``forward(cache, ids)`` appends ``ids`` to the sequence in ``cache``."""

    def __init__(self, folder: Path, manifest: Manifest, options: RuntimeOptions) -> None:
        import onnxruntime as ort

        self._ort = ort
        arch = manifest.architecture
        self.num_layers = int(arch["num_layers"])
        self._output_shapes = {
            "next_token": ((1,), np.int64), "entropy": ((1,), np.float32), "max_prob": ((1,), np.float32),
            "argmax_logprob": ((1,), np.float32), "probe": ((1, len(manifest.probe.outputs)), np.float32),
            "logits": ((1, int(arch["vocab_size"])), np.float32),
            "probe_features": ((1, manifest.probe.feature_dim), np.float32),
        }
        self._kv_heads = int(arch["num_kv_heads"])
        self._head_dim = int(arch["head_dim"])
        self.context_length = manifest.context_length
        try:
            self._session = ort.InferenceSession(
                str(folder / "model.onnx"), _session_options(ort, options), providers=list(options.providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleCorrupt(f"onnxruntime cannot load {folder / 'model.onnx'}: {exc}") from exc
        self._mask = np.ones((1, self.context_length), dtype=np.int64)
        self._past_names = [f"past_key_values.{i}.{p}" for i in range(self.num_layers) for p in ("key", "value")]
        self._present_names = [n.replace("past_key_values", "present") for n in self._past_names]

    def new_cache(self, capacity: int | None = None) -> KvCache:
        """A cache for up to ``capacity`` positions (default: the whole context)."""
        size = min(capacity or self.context_length, self.context_length)
        shape = [1, self._kv_heads, size, self._head_dim]
        new = self._ort.OrtValue.ortvalue_from_shape_and_type
        cache = KvCache([new(shape, np.float32) for _ in self._past_names], size, self._session.io_binding())
        for past, value in zip(self._past_names, cache.values, strict=True):
            cache.binding.bind_ortvalue_input(past, value)
        return cache

    def _bind_outputs(self, cache: KvCache, logits: bool, features: bool) -> None:
        io = cache.binding
        io.clear_binding_outputs()
        for present, value in zip(self._present_names, cache.values, strict=True):
            io.bind_ortvalue_output(present, value)
        for name in [*_HEAD, *(["logits"] if logits else []), *(["probe_features"] if features else [])]:
            if name not in cache.outputs:  # numpy-owned buffers onnxruntime writes into: no per-step allocations
                shape, dtype = self._output_shapes[name]
                cache.outputs[name] = np.empty(shape, dtype=dtype)
            io.bind_ortvalue_output(name, self._ort.OrtValue.ortvalue_from_numpy(cache.outputs[name]))
        cache.extras = (logits, features)

    def forward(self, cache: KvCache, ids: np.ndarray, *, logits: bool = False,
                features: bool = False) -> StepOutput:
        """Runs one forward pass over ``ids`` ([1, n] int64), updating ``cache`` in place."""
        cache.binding.bind_cpu_input("input_ids", ids)
        cache.token_bound = False
        return self._run(cache, ids.shape[1], logits, features)

    def step(self, cache: KvCache, token: int, *, logits: bool = False, features: bool = False) -> StepOutput:
        """One decode step: appends ``token`` to the sequence in ``cache``."""
        if not cache.token_bound:
            cache.binding.bind_ortvalue_input("input_ids", self._ort.OrtValue.ortvalue_from_numpy(cache.token))
            cache.token_bound = True
        cache.token[0, 0] = token
        return self._run(cache, 1, logits, features)

    def _run(self, cache: KvCache, new: int, logits: bool, features: bool) -> StepOutput:
        total = cache.length + new
        if total > cache.capacity:
            raise RuntimeFailure(f"KV cache holds {cache.capacity} positions, {total} needed")
        if cache.extras != (logits, features):
            self._bind_outputs(cache, logits, features)
        io = cache.binding
        io.bind_cpu_input("attention_mask", self._mask[:, :total])
        try:
            self._session.run_with_iobinding(io)
        except Exception as exc:
            raise RuntimeFailure(f"onnxruntime failed on a step of {new} tokens: {exc}") from exc
        cache.length = total
        return _step_output(cache.outputs, logits, features)


def _step_output(out: dict[str, np.ndarray], logits: bool, features: bool) -> StepOutput:
    """Copies out of the cache's output buffers (the next step overwrites them)."""
    return StepOutput(
        next_token=int(out["next_token"][0]), entropy=float(out["entropy"][0]), max_prob=float(out["max_prob"][0]),
        argmax_logprob=float(out["argmax_logprob"][0]), probe=out["probe"][0].copy(),
        logits=out["logits"][0].copy() if logits else None,
        features=out["probe_features"][0].copy() if features else None,
    )


def _session_options(ort: Any, options: RuntimeOptions) -> Any:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spin else "0")
    return so
