"""Drawing N answers to one prompt from an :class:`~confroute.engine.Engine`, cheaply.

The prompt is prefilled **once** (:meth:`Engine.prefill`) and every sample decodes from that KV cache
(:meth:`Engine.resume`), so N samples cost one prefill plus N decodes. Sample ``i`` uses seed
``seed + i`` (reproducible, distinct per sample); ``seed=None`` draws fresh randomness.

    samples = sample_answers(engine, engine.encode_chat(messages), n=10, temperature=1.0, max_new_tokens=32,
                             seed=0)
    ids = cluster_answers([s.text for s in samples], "number")
    se = likelihood_se(ids, [s.logprob_sum for s in samples], [s.token_count for s in samples])

The log-probabilities are under the untempered model (what the engine reports), summed over the
generated tokens (EOS excluded, as the engine does not emit it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from confroute.engine import Engine, Prefix, SamplingParams
from confroute.engine.result import FinishReason
from confroute.errors import InvalidInput


@dataclasses.dataclass(frozen=True)
class Sample:
    """One sampled answer: its text, how many tokens it took and their summed log-probability."""

    text: str
    token_count: int
    logprob_sum: float
    finish_reason: FinishReason


def sample_answers(engine: Engine, prompt_ids: Sequence[int], n: int, *, temperature: float = 1.0,
                   top_p: float = 1.0, max_new_tokens: int = 64, seed: int | None = 0,
                   stop: tuple[str, ...] = ()) -> list[Sample]:
    """``n`` sampled answers to ``prompt_ids`` from one shared prefill (see the module docstring)."""
    params = sampling_params(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                             stop=stop)
    return sample_from(engine, engine.prefill(prompt_ids, params), n, params)


def sampling_params(*, temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 64,
                    seed: int | None = 0, stop: tuple[str, ...] = ()) -> SamplingParams:
    """The parameters of sample 0 (sample ``i`` adds ``i`` to the seed); rejects greedy decoding."""
    if temperature <= 0:
        raise InvalidInput(f"sampling needs temperature > 0, got {temperature}", field="temperature")
    return SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed, stop=stop)


def sample_from(engine: Engine, prefix: Prefix, n: int, base: SamplingParams) -> list[Sample]:
    """``n`` samples decoded from an existing ``prefix`` (prefilled with sampling parameters), seeds
    ``base.seed + i``. Lets a caller share one prefill between a greedy answer and the samples."""
    if n < 1:
        raise InvalidInput(f"n must be >= 1, got {n}", field="n")
    samples = []
    for i in range(n):
        params = dataclasses.replace(base, seed=None if base.seed is None else base.seed + i)
        gen = engine.resume(prefix, params).result
        samples.append(Sample(gen.text, gen.completion_tokens, float(gen.logprobs.sum()), gen.finish_reason))
    return samples
