"""``EdgeModel``: the device's model, a bundle run by onnxruntime on the device's execution providers."""

from __future__ import annotations

import os
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
    """

    def __init__(self, bundle: str | os.PathLike[str], options: RuntimeOptions | None = None,
                 *, max_batch: int = 1) -> None:
        self.engine = Engine(bundle, options, max_batch=max_batch)

    @property
    def parallel(self) -> int:
        """How many answers decode at once (1 when the bundle's family cannot be batched)."""
        return self.engine.parallel

    def close(self) -> None:
        self.engine.close()

    @property
    def model_id(self) -> str:
        return self.engine.manifest.model_id

    @property
    def version(self) -> str:
        return self.engine.manifest.build_version  # policies and outcomes are scoped by the build, not the probe

    @property
    def probe_version(self) -> str:
        return self.engine.manifest.probe_version

    def start(self, messages: Sequence[Mapping[str, Any]], params: SamplingParams) -> GenerationRun:
        """Prefills now (the TBG probe is known before any decoding); iterate the run to stream tokens."""
        return self.engine.start(self.engine.encode_chat(messages), params)

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
