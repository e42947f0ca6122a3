"""What a generation yields: streamed token events and the finished result with its signals."""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import numpy as np

FinishReason = Literal["stop", "length"]


class TokenEvent(NamedTuple):
    """One generated token: the text it adds (may be empty while a stop string or a multi-byte
    character is pending) and the fused head's signals for the distribution it was drawn from.
    (A named tuple: one is made per token, several times faster than a frozen dataclass.)"""

    token_id: int | None  # None: trailing text released at the end (held back for stop strings)
    text: str
    logprob: float
    entropy: float
    max_prob: float


@dataclasses.dataclass(frozen=True)
class Generation:
    """A finished generation. Per-token arrays are aligned with ``token_ids``.

    ``tbg`` / ``slt`` are the probe scores (TBG after prefill, SLT at the second-last generated token), or
    None when the bundle's probe for them is untrained.
    """

    text: str
    token_ids: tuple[int, ...]
    logprobs: np.ndarray
    entropies: np.ndarray
    max_probs: np.ndarray
    tbg: float | None
    slt: float | None
    finish_reason: FinishReason
    prompt_tokens: int
    prefill_ms: float
    decode_ms: float
    #: The text each token released, aligned with ``token_ids`` (joined: ``text``); empty when not recorded.
    token_texts: tuple[str, ...] = ()

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean_logprob(self) -> float:
        """Length-normalised sequence log-probability (log of inverse perplexity)."""
        return float(self.logprobs.mean()) if self.logprobs.size else 0.0

    @property
    def mean_entropy(self) -> float:
        return float(self.entropies.mean()) if self.entropies.size else 0.0

    @property
    def max_entropy(self) -> float:
        return float(self.entropies.max()) if self.entropies.size else 0.0

    @property
    def min_max_prob(self) -> float:
        return float(self.max_probs.min()) if self.max_probs.size else 1.0

    @property
    def mean_max_prob(self) -> float:
        return float(self.max_probs.mean()) if self.max_probs.size else 1.0

    @property
    def decode_tokens_per_s(self) -> float:
        steps = self.completion_tokens - 1
        return steps / (self.decode_ms / 1000.0) if steps > 0 and self.decode_ms > 0 else 0.0
