"""Baselines the edge runtime is compared against, plus the shared timing/quality helpers.

- :mod:`bench.baselines.hf_folder`: GGUF -> plain HF folder (fp32 safetensors + tokenizer).
- :mod:`bench.baselines.torch_generate`: transformers + PyTorch ``generate`` (fp32); also the fp32
  next-token reference for the quality metrics.
- :mod:`bench.baselines.genai`: onnxruntime-genai models (fp32, int8) built by its model builder.

Every backend reports the same dict (see :func:`summarize`) and is timed the same way:

- ``prefill_s``: start of the call -> first new token available on the host (prompt forward + pick).
- ``decode_s``: first new token -> last new token, i.e. ``new_tokens - 1`` single-token steps.
- ``decode_tok_s = (new_tokens - 1) / decode_s``; ``total_tok_s = new_tokens / (prefill_s + decode_s)``.

Heavy imports (torch, transformers, onnxruntime_genai) happen inside functions only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RunTiming:
    """Wall-clock split of one generation call."""

    prefill_s: float
    decode_s: float
    new_tokens: int

    @property
    def total_s(self) -> float:
        return self.prefill_s + self.decode_s

    @property
    def decode_tok_s(self) -> float:
        return (self.new_tokens - 1) / self.decode_s if self.decode_s > 0 else float("nan")

    @property
    def total_tok_s(self) -> float:
        return self.new_tokens / self.total_s if self.total_s > 0 else float("nan")


def summarize(
    backend: str, runs: Sequence[RunTiming], tokens: Sequence[Sequence[int]], threads: int, prompt_len: int
) -> dict[str, Any]:
    """Medians over timed runs plus the generated ids (``tokens[i]`` from run ``i``)."""
    if not runs:
        raise ValueError("no timed runs")
    return {
        "backend": backend,
        "threads": threads,
        "prompt_tokens": prompt_len,
        "new_tokens": runs[0].new_tokens,
        "runs": len(runs),
        "prefill_ms": 1000.0 * statistics.median(r.prefill_s for r in runs),
        "decode_tok_s": statistics.median(r.decode_tok_s for r in runs),
        "total_tok_s": statistics.median(r.total_tok_s for r in runs),
        "decode_tok_s_all": [round(r.decode_tok_s, 2) for r in runs],
        "tokens": list(tokens[-1]),
        "tokens_stable": all(list(t) == list(tokens[0]) for t in tokens),
    }


def compare_logprobs(reference: FloatArray, other: FloatArray) -> dict[str, float]:
    """Top-1 agreement and mean KL(reference || other) over rows of next-token log-probs.

    Both arrays are ``[positions, vocab]`` log-softmax outputs on the same token sequence.
    """
    if reference.shape != other.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {other.shape}")
    ref = reference.astype(np.float64)
    oth = other.astype(np.float64)
    kl = np.sum(np.exp(ref) * (ref - oth), axis=-1)
    top1 = np.argmax(ref, axis=-1) == np.argmax(oth, axis=-1)
    return {
        "positions": float(ref.shape[0]),
        "top1_agreement": float(np.mean(top1)),
        "mean_kl": float(np.mean(kl)),
        "max_kl": float(np.max(kl)),
    }
