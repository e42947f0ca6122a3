"""The judge's one frozen configuration (built in ``main()``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from confroute.errors import InvalidInput

Method = Literal["single", "pairwise"]


@dataclass(frozen=True)
class JudgeConfig:
    """How much traffic is judged and how hard the judge may use the cloud model.

    ``share`` of the eligible outcomes (chosen by a hash of the query id, so every worker picks the
    same ones) is judged with ``method``; at most ``max_in_flight`` judge calls run at once and at
    most ``calls_per_second`` start per second (a token bucket of one second's burst). A call gets
    ``timeout_s`` and ``max_tokens``. Ratings (single grading, 1..10) of ``correct_at`` or more label
    the edge answer correct, of ``wrong_at`` or less incorrect; between: no label.
    """

    method: Method = "single"
    share: float = 1.0
    max_in_flight: int = 4
    calls_per_second: float = 2.0
    timeout_s: float = 60.0
    max_tokens: int = 512
    correct_at: float = 7.0
    wrong_at: float = 4.0
    group: str = "judge"
    consumer: str = "judge-1"
    batch_size: int = 64
    claim_idle_s: float = 300.0

    def __post_init__(self) -> None:
        _require(self.method in ("single", "pairwise"), "method", "single or pairwise")
        _require(math.isfinite(self.share) and 0.0 <= self.share <= 1.0, "share", "in [0, 1]")
        _require(self.max_in_flight >= 1 and self.batch_size >= 1 and self.max_tokens >= 1, "max_in_flight",
                 ">= 1 (and batch_size, max_tokens too)")
        for name in ("calls_per_second", "timeout_s"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, "a positive number")
        _require(1.0 <= self.wrong_at < self.correct_at <= 10.0, "correct_at", "above wrong_at, both in 1..10")
        _require(self.claim_idle_s >= 0 and bool(self.group and self.consumer), "claim_idle_s", ">= 0")


def _require(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise InvalidInput(f"judge {name} must be {what}", field=name)
