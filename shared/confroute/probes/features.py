"""Running the edge model over a training set and keeping what the probes read.

Per question, one prefill (with ``features``) serves everything: the TBG features come from it, a
greedy answer is decoded from it keeping the SLT features (the forward pass the runtime reads the SLT
probe at: the last generated token before EOS, or the second-last when the token budget ran out), and
optionally ``samples`` sampled answers are decoded from the same KV cache for semantic entropy.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from confroute.engine import Engine, SamplingParams
from confroute.probes.data import Example
from confroute.uncertainty.sampling import Sample, sample_from, sampling_params

Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class CollectOptions:
    """How answers are generated: greedy answers of up to ``max_new_tokens``; ``samples`` extra sampled
    answers per question (seed ``seed + i``) when semantic entropy is needed."""

    max_new_tokens: int = 32
    samples: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Collected:
    """Features ([n, feature_dim] float32, in the bundle's probe layout), greedy answers and samples;
    ``logprob_mean`` per greedy answer (what the post-generation routing score reads)."""

    tbg: npt.NDArray[np.float32]
    slt: npt.NDArray[np.float32]
    answers: list[str]
    samples: list[list[Sample]]
    seconds: float
    generated_tokens: int
    logprob_mean: npt.NDArray[np.float64]


def collect(engine: Engine, examples: Sequence[Example], options: CollectOptions,
            progress: Progress | None = None) -> Collected:
    """Runs every example once through ``engine`` (see the module docstring)."""
    dim = engine.manifest.probe.feature_dim
    tbg = np.zeros((len(examples), dim), np.float32)
    slt = np.zeros((len(examples), dim), np.float32)
    answers: list[str] = []
    samples: list[list[Sample]] = []
    logprob_mean = np.zeros(len(examples))
    tokens = 0
    started = time.perf_counter()
    greedy = SamplingParams(max_new_tokens=options.max_new_tokens)
    sampled = _sample_params(options)
    for i, example in enumerate(examples):
        prefix = engine.prefill(engine.encode_chat(example.messages), sampled or greedy, features=True)
        run = engine.resume(prefix, greedy, features=True)
        gen = run.result
        assert run.tbg_features is not None and run.slt_features is not None  # features=True keeps both
        tbg[i], slt[i] = run.tbg_features, run.slt_features
        answers.append(gen.text)
        logprob_mean[i] = gen.mean_logprob
        tokens += gen.completion_tokens
        samples.append(sample_from(engine, prefix, options.samples, sampled) if sampled else [])
        if progress is not None:
            progress(i + 1, len(examples))
    return Collected(tbg, slt, answers, samples, time.perf_counter() - started, tokens, logprob_mean)


def collect_samples(engine: Engine, examples: Sequence[Example], options: CollectOptions,
                    progress: Progress | None = None) -> list[list[Sample]]:
    """Only the sampled answers (e.g. the strong model's, for dSE labels): one prefill per question."""
    params = _sample_params(options)
    if params is None:
        return [[] for _ in examples]
    out = []
    for i, example in enumerate(examples):
        prefix = engine.prefill(engine.encode_chat(example.messages), params)
        out.append(sample_from(engine, prefix, options.samples, params))
        if progress is not None:
            progress(i + 1, len(examples))
    return out


def collect_answers(engine: Engine, examples: Sequence[Example], max_new_tokens: int,
                    progress: Progress | None = None) -> list[str]:
    """Only greedy answers (e.g. the cloud model's, for route labels without recorded cloud outcomes)."""
    params = SamplingParams(max_new_tokens=max_new_tokens)
    out = []
    for i, example in enumerate(examples):
        out.append(engine.chat(example.messages, params).text)
        if progress is not None:
            progress(i + 1, len(examples))
    return out


def _sample_params(options: CollectOptions) -> SamplingParams | None:
    if options.samples <= 0:
        return None
    return sampling_params(temperature=options.temperature, top_p=options.top_p,
                           max_new_tokens=options.max_new_tokens, seed=options.seed)
