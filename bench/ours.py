"""Our runtime, measured the way the baselines are (see :mod:`bench.baselines`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.baselines import FloatArray, RunTiming
from confroute.engine import Engine, RuntimeOptions, SamplingParams


def load_engine(bundle: Path, threads: int = 2) -> Engine:
    return Engine(bundle, RuntimeOptions(intra_op_threads=threads))


def generate_once(engine: Engine, prompt_ids: Sequence[int], new_tokens: int) -> tuple[RunTiming, list[int]]:
    """Greedy, exactly ``new_tokens`` (EOS ignored); prefill = until the first token, decode = the rest."""
    params = SamplingParams(max_new_tokens=new_tokens, ignore_eos=True)
    start = time.perf_counter()
    run = engine.start(prompt_ids, params)
    events = iter(run)
    next(events)
    first = time.perf_counter()
    for _ in events:
        pass
    last = time.perf_counter()
    tokens = list(run.result.token_ids)
    return RunTiming(prefill_s=first - start, decode_s=last - first, new_tokens=len(tokens)), tokens


def next_token_logprobs(engine: Engine, prompt_ids: Sequence[int], continuation: Sequence[int]) -> FloatArray:
    """Teacher-forced ``[1 + len(continuation) - 1, vocab]`` log-probs: after the prompt, then after each
    continuation token but the last (the rows that predicted each continuation token)."""
    cache = engine.decoder.new_cache(len(prompt_ids) + len(continuation))
    rows = [engine.decoder.forward(cache, np.asarray([list(prompt_ids)]), logits=True).logits]
    for token in continuation[:-1]:
        rows.append(engine.decoder.forward(cache, np.asarray([[token]]), logits=True).logits)
    logits = np.stack([r for r in rows if r is not None]).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    out: FloatArray = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
    return out


StepTimer = Callable[[Sequence[int], int, bool, bool], float]


def step_timer(bundle: Path, threads: int = 2) -> StepTimer:
    """Loads ``bundle``'s graph into one raw onnxruntime session; the returned ``(prompt_ids, steps, head,
    pick)`` callable gives the fastest decode step of a loop over it (shared KV buffers, as the engine
    runs), in ms: the step's own cost with the least interference from other load (medians on a shared
    2-core machine drift by more than the differences measured here).

    ``head=True`` fetches the fused head (greedy reads ``next_token``); ``head=False`` runs a graph exported
    without head and probes and fetches the logits; with ``pick`` it takes the argmax in numpy, as a plain
    runtime must (without, it feeds a fixed token: the graph alone).
    """
    import onnxruntime as ort

    from confroute.bundle import load_bundle

    manifest = load_bundle(bundle, verify=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    session = ort.InferenceSession(str(bundle / "model.onnx"), so, providers=["CPUExecutionProvider"])

    def fastest(prompt_ids: Sequence[int], steps: int, head: bool, pick: bool) -> float:
        return float(np.min(_step_times(session, manifest, prompt_ids, steps, head, pick)) * 1000.0)

    return fastest


def _step_times(session: Any, manifest: Any, prompt_ids: Sequence[int], steps: int, head: bool,
                pick: bool) -> list[float]:
    import onnxruntime as ort

    arch = manifest.architecture
    capacity = len(prompt_ids) + steps + 1
    io = session.io_binding()
    shape = [1, int(arch["num_kv_heads"]), capacity, int(arch["head_dim"])]
    for i in range(int(arch["num_layers"])):
        for part in ("key", "value"):
            value = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32)
            io.bind_ortvalue_input(f"past_key_values.{i}.{part}", value)
            io.bind_ortvalue_output(f"present.{i}.{part}", value)
    outputs = ["next_token", "entropy", "max_prob", "argmax_logprob", "probe"] if head else ["logits"]
    for name in outputs:
        io.bind_output(name)
    mask = np.ones((1, capacity), np.int64)
    ids = np.asarray([list(prompt_ids)], np.int64)
    times: list[float] = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        io.bind_cpu_input("input_ids", ids)
        total = len(prompt_ids) + len(times)
        io.bind_cpu_input("attention_mask", mask[:, :total])
        session.run_with_iobinding(io)
        if head or pick:
            first = io.get_outputs()[-len(outputs)].numpy()
            token = int(first[0]) if head else int(first[0].argmax())
        else:
            token = 100
        ids = np.asarray([[token]], np.int64)
        times.append(time.perf_counter() - started)
    return times[1:]  # the first pass is the prefill

