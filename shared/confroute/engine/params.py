"""What a caller may ask of one generation."""

from __future__ import annotations

import dataclasses
import math

from confroute.errors import InvalidInput


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """``temperature == 0`` is greedy. ``seed`` makes sampling reproducible.

    ``truncate_prompt``: drop the oldest prompt tokens instead of rejecting a prompt that, with
    ``max_new_tokens``, does not fit in the context. ``ignore_eos`` keeps generating past EOS (benchmarks).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    truncate_prompt: bool = False
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InvalidInput(f"max_new_tokens must be >= 1, got {self.max_new_tokens}", field="max_new_tokens")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise InvalidInput(f"temperature must be a finite number >= 0, got {self.temperature}",
                               field="temperature")
        if not math.isfinite(self.top_p) or not 0 < self.top_p <= 1:
            raise InvalidInput(f"top_p must be in (0, 1], got {self.top_p}", field="top_p")
        if any(not s for s in self.stop):
            raise InvalidInput("stop strings must be non-empty", field="stop")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
