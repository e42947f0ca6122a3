"""One onnxruntime session over a bundle's graph, stepped with a KV cache through I/O binding.

The present KV tensors a step produces stay in onnxruntime's memory and are bound as the next step's
past: no copies through numpy. Only the few scalars of the fused head come back per step; the logits
are fetched only when sampling needs them. This module is the boundary to onnxruntime.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class StepOutput:
    """The fused head's outputs for the last position of one forward pass (batch of one)."""

    next_token: int
    entropy: float
    max_prob: float
    argmax_logprob: float
    probe: np.ndarray  # [n_probe_outputs] sigmoid scores
    logits: np.ndarray | None
    features: np.ndarray | None


class KvCache:
    """Past keys/values of one sequence, as onnxruntime values."""

    def __init__(self, values: list[Any], length: int = 0) -> None:
        self.values = values
        self.length = length


class OnnxDecoder:
    """Steps a bundle's graph: ``forward(cache, ids)`` appends ``ids`` to the sequence in ``cache``."""

    def __init__(self, folder: Path, manifest: Manifest, options: RuntimeOptions) -> None:
        import onnxruntime as ort

        self._ort = ort
        arch = manifest.architecture
        self.num_layers = int(arch["num_layers"])
        self._kv_shape = (1, int(arch["num_kv_heads"]), 0, int(arch["head_dim"]))
        self.context_length = manifest.context_length
        try:
            self._session = ort.InferenceSession(
                str(folder / "model.onnx"), _session_options(ort, options), providers=list(options.providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleCorrupt(f"onnxruntime cannot load {folder / 'model.onnx'}: {exc}") from exc
        self._io = self._session.io_binding()
        self._mask = np.ones((1, self.context_length), dtype=np.int64)
        self._past_names = [f"past_key_values.{i}.{p}" for i in range(self.num_layers) for p in ("key", "value")]
        self._present_names = [n.replace("past_key_values", "present") for n in self._past_names]

    def new_cache(self) -> KvCache:
        empty = self._ort.OrtValue.ortvalue_from_numpy(np.zeros(self._kv_shape, dtype=np.float32))
        return KvCache([empty] * len(self._past_names))

    def forward(self, cache: KvCache, ids: np.ndarray, *, logits: bool = False,
                features: bool = False) -> StepOutput:
        """Runs one forward pass over ``ids`` ([1, n] int64), updating ``cache`` in place."""
        total = cache.length + ids.shape[1]
        io = self._io
        io.clear_binding_inputs()
        io.clear_binding_outputs()
        io.bind_cpu_input("input_ids", ids)
        io.bind_cpu_input("attention_mask", self._mask[:, :total])
        for name, value in zip(self._past_names, cache.values, strict=True):
            io.bind_ortvalue_input(name, value)
        wanted = [*_HEAD, *self._present_names, *(["logits"] if logits else []),
                  *(["probe_features"] if features else [])]
        for name in wanted:
            io.bind_output(name)
        try:
            self._session.run_with_iobinding(io)
        except Exception as exc:
            raise RuntimeFailure(f"onnxruntime failed on a step of {ids.shape[1]} tokens: {exc}") from exc
        outs = io.get_outputs()
        cache.values = outs[len(_HEAD): len(_HEAD) + len(self._present_names)]
        cache.length = total
        return _step_output(outs, len(_HEAD) + len(self._present_names), logits, features)


def _step_output(outs: list[Any], extra_at: int, logits: bool, features: bool) -> StepOutput:
    head = [outs[i].numpy() for i in range(len(_HEAD))]
    extras = iter(outs[extra_at:])
    return StepOutput(
        next_token=int(head[0][0]), entropy=float(head[1][0]), max_prob=float(head[2][0]),
        argmax_logprob=float(head[3][0]), probe=head[4][0],
        logits=next(extras).numpy()[0] if logits else None,
        features=next(extras).numpy()[0] if features else None,
    )


def _session_options(ort: Any, options: RuntimeOptions) -> Any:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spin else "0")
    return so
