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

    def __init__(self, values: list[Any], capacity: int, binding: Any,
                 arrays: list[np.ndarray] | None = None) -> None:
        self.values = values
        #: The numpy arrays behind ``values`` when the cache was made with ``arrays=True`` (rows of a batch copy them).
        self.arrays = arrays
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

        self.ort = ort
        arch = manifest.architecture
        self.num_layers = int(arch["num_layers"])
        self.output_shapes = {
            "next_token": ((1,), np.int64), "entropy": ((1,), np.float32), "max_prob": ((1,), np.float32),
            "argmax_logprob": ((1,), np.float32), "probe": ((1, len(manifest.probe.outputs)), np.float32),
            "logits": ((1, int(arch["vocab_size"])), np.float32),
            "probe_features": ((1, manifest.probe.feature_dim), np.float32),
        }
        self._kv_heads = int(arch["num_kv_heads"])
        self._head_dim = int(arch["head_dim"])
        self.context_length = manifest.context_length
        try:
            self.session = ort.InferenceSession(
                str(folder / "model.onnx"), _session_options(ort, options), providers=list(options.providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleCorrupt(f"onnxruntime cannot load {folder / 'model.onnx'}: {exc}") from exc
        self._mask = np.ones((1, self.context_length), dtype=np.int64)
        self.past_names = [f"past_key_values.{i}.{p}" for i in range(self.num_layers) for p in ("key", "value")]
        self.present_names = [n.replace("past_key_values", "present") for n in self.past_names]

    def new_cache(self, capacity: int | None = None, *, arrays: bool = False) -> KvCache:
        """A cache for up to ``capacity`` positions (default: the whole context). ``arrays``: backed by numpy
        arrays (``cache.arrays``) that a batch can copy from."""
        size = min(capacity or self.context_length, self.context_length)
        shape = [1, self._kv_heads, size, self._head_dim]
        binding = self.session.io_binding()
        if arrays:
            backing = [np.empty(shape, dtype=np.float32) for _ in self.past_names]
            values = [self.ort.OrtValue.ortvalue_from_numpy(a) for a in backing]
            cache = KvCache(values, size, binding, backing)
        else:
            new = self.ort.OrtValue.ortvalue_from_shape_and_type
            cache = KvCache([new(shape, np.float32) for _ in self.past_names], size, binding)
        for past, value in zip(self.past_names, cache.values, strict=True):
            cache.binding.bind_ortvalue_input(past, value)
        return cache

    def _bind_outputs(self, cache: KvCache, logits: bool, features: bool) -> None:
        io = cache.binding
        io.clear_binding_outputs()
        for present, value in zip(self.present_names, cache.values, strict=True):
            io.bind_ortvalue_output(present, value)
        for name in [*_HEAD, *(["logits"] if logits else []), *(["probe_features"] if features else [])]:
            if name not in cache.outputs:  # numpy-owned buffers onnxruntime writes into: no per-step allocations
                shape, dtype = self.output_shapes[name]
                cache.outputs[name] = np.empty(shape, dtype=dtype)
            io.bind_ortvalue_output(name, self.ort.OrtValue.ortvalue_from_numpy(cache.outputs[name]))
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
            cache.binding.bind_ortvalue_input("input_ids", self.ort.OrtValue.ortvalue_from_numpy(cache.token))
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
            self.session.run_with_iobinding(io)
        except Exception as exc:
            raise RuntimeFailure(f"onnxruntime failed on a step of {new} tokens: {exc}") from exc
        cache.length = total
        return _step_output(cache.outputs, logits, features)


    def new_batch(self, rows: int, capacity: int) -> BatchKv:
        """Keys/values for up to ``rows`` sequences of up to ``capacity`` positions each (grown on demand)."""
        return BatchKv(self, rows, capacity)

    def kv_shape(self, rows: int, capacity: int) -> tuple[int, int, int, int]:
        return rows, self._kv_heads, capacity, self._head_dim

    def step_rows(self, kv: BatchKv, tokens: np.ndarray, *, logits: bool = False,
                  features: bool = False) -> dict[str, np.ndarray]:
        """One decode step of rows ``0..len(tokens)-1`` of ``kv`` together; row ``i`` appends ``tokens[i]``
        after its ``kv.lengths[i]`` positions (each row attends to its own length only: the mask's row sums).

        Returns the head's outputs, one row per sequence (views the next step overwrites). It does not
        advance ``kv.lengths``: the caller advances the rows that really stepped.
        """
        rows = len(tokens)
        lengths = kv.lengths[:rows] + 1
        if int(lengths.max()) > kv.capacity:
            raise RuntimeFailure(f"the batch's KV cache holds {kv.capacity} positions, {int(lengths.max())} needed")
        io = kv.bind(rows, logits, features)
        kv.tokens[:rows, 0] = tokens
        io.bind_cpu_input("attention_mask", _row_mask(lengths))
        try:
            self.session.run_with_iobinding(io)
        except Exception as exc:
            raise RuntimeFailure(f"onnxruntime failed on a batched step of {rows} rows: {exc}") from exc
        return {name: kv.outputs[name][:rows] for name in kv.bound_outputs}


class BatchKv:
    """Past keys/values of up to ``rows`` sequences: one ``[rows, kv_heads, capacity, head_dim]`` array per
    past input, bound as both past and present (``GroupQueryAttention`` writes each row's new keys at that
    row's own length), and ``lengths[i]``: the positions row ``i`` holds.

    A step binds the first ``n`` rows (views of the arrays, contiguous because rows are the outer axis); the
    binding is kept while ``n`` and the outputs asked for stay the same.
    """

    def __init__(self, decoder: OnnxDecoder, rows: int, capacity: int) -> None:
        self._decoder = decoder
        self.rows = rows
        self.capacity = 0
        self.arrays: list[np.ndarray] = []
        self.lengths = np.zeros(rows, dtype=np.int64)
        self.tokens = np.zeros((rows, 1), dtype=np.int64)
        self.outputs: dict[str, np.ndarray] = {}
        self._binding: Any = None
        self._bound: tuple[int, bool, bool] | None = None
        self.bound_outputs: list[str] = []
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        """Makes room for ``capacity`` positions per row (keeps what the rows hold)."""
        capacity = min(capacity, self._decoder.context_length)
        if capacity <= self.capacity:
            return
        shape = self._decoder.kv_shape(self.rows, capacity)
        grown = [np.zeros(shape, dtype=np.float32) for _ in self._decoder.past_names]
        for new, old in zip(grown, self.arrays, strict=False):
            new[:, :, : self.capacity] = old
        self.arrays, self.capacity, self._bound = grown, capacity, None

    def load(self, row: int, cache: KvCache, length: int) -> None:
        """Copies the first ``length`` positions of a prefilled single-sequence cache into ``row``."""
        if cache.arrays is None:
            raise RuntimeFailure("only a cache made with arrays=True can join a batch")
        self.grow(length)
        for array, source in zip(self.arrays, cache.arrays, strict=True):
            array[row, :, :length] = source[0, :, :length]
        self.lengths[row] = length

    def bind(self, rows: int, logits: bool, features: bool) -> Any:
        if self._bound == (rows, logits, features):
            return self._binding
        decoder, ort = self._decoder, self._decoder.ort
        io = decoder.session.io_binding()
        for past, present, array in zip(decoder.past_names, decoder.present_names, self.arrays, strict=True):
            value = ort.OrtValue.ortvalue_from_numpy(array[:rows])
            io.bind_ortvalue_input(past, value)
            io.bind_ortvalue_output(present, value)
        io.bind_ortvalue_input("input_ids", ort.OrtValue.ortvalue_from_numpy(self.tokens[:rows]))
        self.bound_outputs = [*_HEAD, *(["logits"] if logits else []), *(["probe_features"] if features else [])]
        for name in self.bound_outputs:
            if name not in self.outputs:
                shape, dtype = decoder.output_shapes[name]
                self.outputs[name] = np.empty((self.rows, *shape[1:]), dtype=dtype)
            io.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(self.outputs[name][:rows]))
        self._binding, self._bound = io, (rows, logits, features)
        return io


def row_output(out: dict[str, np.ndarray], row: int) -> StepOutput:
    """One row of a batched step's outputs, copied (the next step overwrites them)."""
    logits, features = out.get("logits"), out.get("probe_features")
    return StepOutput(
        next_token=int(out["next_token"][row]), entropy=float(out["entropy"][row]),
        max_prob=float(out["max_prob"][row]), argmax_logprob=float(out["argmax_logprob"][row]),
        probe=out["probe"][row].copy(), logits=None if logits is None else logits[row].copy(),
        features=None if features is None else features[row].copy(),
    )


def _row_mask(lengths: np.ndarray) -> np.ndarray:
    """An attention mask whose row ``i`` holds ``lengths[i]`` ones (the graph reads only the row sums)."""
    return (np.arange(int(lengths.max()))[None, :] < lengths[:, None]).astype(np.int64)


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
