"""``EdgeModel``: the device's model, a bundle run by onnxruntime on the device's execution providers."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from confroute.engine import Engine, Generation, RuntimeOptions, SamplingParams
from confroute.engine.engine import GenerationRun
from confroute.errors import InvalidInput
from confroute.routing import LOGPROB_MEAN, PROBE_SLT, PROBE_TBG

#: Execution providers per device kind, in priority order (CPU always last as the fallback).
DEVICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


def runtime_options(device: str, threads: int) -> RuntimeOptions:
    """Options for ``device`` (cpu, cuda, tensorrt); refuses providers this onnxruntime build lacks."""
    import onnxruntime as ort

    if device not in DEVICE_PROVIDERS:
        raise InvalidInput(f"unknown device {device!r}; choose one of {sorted(DEVICE_PROVIDERS)}", field="device")
    wanted = DEVICE_PROVIDERS[device]
    available = set(ort.get_available_providers())
    missing = [p for p in wanted if p not in available]
    if missing:
        raise InvalidInput(f"this onnxruntime build lacks {', '.join(missing)} (it has {sorted(available)}); "
                           "on Jetson install onnxruntime-gpu from the Jetson AI Lab index", field="device")
    return RuntimeOptions(providers=wanted, intra_op_threads=threads)


class EdgeModel:
    """Answers chat messages locally and reports the confidence signals routing decides on.

    ``max_batch`` > 1: up to that many answers decode together (continuous batching, see
    :mod:`confroute.engine.batch`), and the model may be called from several threads at once; 1: one
    answer at a time, from one thread at a time. :meth:`close` stops the batch's thread.

    A new router probe arrives as a new engine on the same bundle (:meth:`load`, then :meth:`swap`): a query
    runs on the engine it started with (:meth:`acquire`, :meth:`release`), and an engine swapped out is
    closed once its last query is done, so no query is dropped.
    """

    def __init__(self, bundle: str | os.PathLike[str], options: RuntimeOptions | None = None,
                 *, max_batch: int = 1) -> None:
        self._bundle, self._options, self._max_batch = bundle, options, max_batch
        self.engine = Engine(bundle, options, max_batch=max_batch)
        self._lock = threading.Lock()
        self._holds: dict[int, int] = {}  # id(engine) -> queries running on it
        self._retired: dict[int, Engine] = {}

    def load(self) -> Engine:
        """A new engine on the bundle as it is on disk now (a new probe), not yet answering."""
        return Engine(self._bundle, self._options, max_batch=self._max_batch)

    def swap(self, engine: Engine) -> None:
        """Answers new queries with ``engine``; the old one closes when its last query is done."""
        with self._lock:
            old, self.engine = self.engine, engine
            if self._holds.get(id(old)):
                self._retired[id(old)] = old
                return
        old.close()

    def acquire(self) -> Engine:
        """The engine answering now, held open for one query until :meth:`release` (taken under the same lock
        as :meth:`swap`, so a swap cannot close it in between)."""
        with self._lock:
            engine = self.engine
            self._holds[id(engine)] = self._holds.get(id(engine), 0) + 1
            return engine

    def release(self, engine: Engine) -> None:
        """Ends one query's hold on ``engine``; a swapped-out engine closes with its last query."""
        with self._lock:
            left = self._holds[id(engine)] - 1
            self._holds[id(engine)] = left
            retired = self._retired.pop(id(engine), None) if left == 0 else None
            if left == 0:
                del self._holds[id(engine)]
        if retired is not None:
            retired.close()

    @property
    def parallel(self) -> int:
        """How many answers decode at once (1 when the bundle's family cannot be batched)."""
        return self.engine.parallel

    def close(self) -> None:
        with self._lock:
            engines = [self.engine, *self._retired.values()]
            self._retired.clear()
        for engine in engines:
            engine.close()

    @property
    def model_id(self) -> str:
        return self.engine.manifest.model_id

    @property
    def version(self) -> str:
        return self.engine.manifest.build_version  # policies and outcomes are scoped by the build, not the probe

    @property
    def probe_version(self) -> str:
        return self.engine.manifest.probe_version

    def start(self, messages: Sequence[Mapping[str, Any]], params: SamplingParams,
              engine: Engine | None = None) -> GenerationRun:
        """Prefills now (the TBG probe is known before any decoding) on ``engine`` (default: the current one);
        iterate the run to stream tokens."""
        engine = engine or self.engine
        return engine.start(engine.encode_chat(messages), params)

    def answer(self, messages: Sequence[Mapping[str, Any]], params: SamplingParams) -> Generation:
        return self.engine.chat(messages, params)


def signals(generation: Generation) -> dict[str, float]:
    """The named confidence scores of one answer (what routing reads and escalation requests carry)."""
    named = {
        LOGPROB_MEAN: generation.mean_logprob,
        "entropy_mean": generation.mean_entropy,
        "entropy_max": generation.max_entropy,
        "max_prob_mean": generation.mean_max_prob,
        "max_prob_min": generation.min_max_prob,
    }
    if generation.tbg is not None:
        named[PROBE_TBG] = generation.tbg
    if generation.slt is not None:
        named[PROBE_SLT] = generation.slt
    return named
