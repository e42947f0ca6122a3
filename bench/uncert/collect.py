"""Running the models over the items: what each signal needs, and what each costs in wall time.

Per item, one prefill serves the edge model's greedy answer (with the fused head's per-token signals and
the probe features at TBG and SLT) and its sampled answers for semantic entropy (decoded from the same KV
cache, as ``confroute.uncertainty.sampling`` does in the product). Times are taken around each part, so
cost ratios compare work done in the same run on the same machine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from bench.uncert.items import Item
from confroute.engine import Engine, SamplingParams
from confroute.uncertainty.answers import is_correct
from confroute.uncertainty.sampling import Sample, sample_from, sampling_params

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class EdgeRecord:
    """The edge model on one item."""

    text: str
    correct: bool
    mean_max_prob: float
    mean_entropy: float
    max_entropy: float
    mean_logprob: float
    tbg_features: npt.NDArray[np.float32]
    slt_features: npt.NDArray[np.float32]
    greedy_s: float  # prefill + greedy decode: "one plain generation"
    samples: tuple[Sample, ...]
    sample_s: tuple[float, ...]  # cumulative seconds after each block of samples (see SAMPLE_BLOCKS)


@dataclasses.dataclass(frozen=True)
class CloudRecord:
    text: str
    correct: bool
    seconds: float


def collect_edge(engine: Engine, items: Sequence[Item], *, max_new_tokens: int, blocks: Sequence[int],
                 temperature: float, seed: int, progress: Progress) -> list[EdgeRecord]:
    """Greedy answer + signals + features for every item, then ``sum(blocks)`` samples in timed blocks."""
    greedy = SamplingParams(max_new_tokens=max_new_tokens)
    sampled = sampling_params(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    records = []
    for n, item in enumerate(items, 1):
        records.append(_edge_one(engine, item, greedy, sampled, blocks))
        progress("edge", n, len(items))
    return records


def collect_cloud(engine: Engine, items: Sequence[Item], *, max_new_tokens: int,
                  progress: Progress) -> list[CloudRecord]:
    """The cloud model's greedy answer to every item (what an escalated query gets)."""
    params = SamplingParams(max_new_tokens=max_new_tokens)
    records = []
    for n, item in enumerate(items, 1):
        started = time.perf_counter()
        gen = engine.chat(item.example.messages, params)
        records.append(CloudRecord(gen.text, _correct(item, gen.text), time.perf_counter() - started))
        progress("cloud", n, len(items))
    return records


def _edge_one(engine: Engine, item: Item, greedy: SamplingParams, sampled: SamplingParams,
              blocks: Sequence[int]) -> EdgeRecord:
    ids = engine.encode_chat(item.example.messages)
    started = time.perf_counter()
    prefix = engine.prefill(ids, sampled, features=True)
    run = engine.resume(prefix, greedy, features=True)
    gen = run.result
    greedy_s = time.perf_counter() - started
    assert run.tbg_features is not None and run.slt_features is not None
    samples: list[Sample] = []
    cumulative: list[float] = []
    started = time.perf_counter()
    for size in blocks:
        base = dataclasses.replace(sampled, seed=(sampled.seed or 0) + len(samples))
        samples += sample_from(engine, prefix, size, base)
        cumulative.append(time.perf_counter() - started)
    return EdgeRecord(
        text=gen.text, correct=_correct(item, gen.text),
        mean_max_prob=float(gen.max_probs.mean()) if gen.max_probs.size else 0.0,
        mean_entropy=gen.mean_entropy, max_entropy=gen.max_entropy, mean_logprob=gen.mean_logprob,
        tbg_features=run.tbg_features.astype(np.float32), slt_features=run.slt_features.astype(np.float32),
        greedy_s=greedy_s, samples=tuple(samples), sample_s=tuple(cumulative))


def _correct(item: Item, text: str) -> bool:
    ex = item.example
    assert ex.answer is not None
    return is_correct(text, ex.answer, ex.kind, ex.options)
