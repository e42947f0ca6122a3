"""The recalibration worker's one frozen configuration (built in ``main()``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from confroute.contract.enums import RoutingMode
from confroute.errors import InvalidInput

Target = Literal["rate", "quality", "tradeoff"]
TARGETS: tuple[str, ...] = get_args(Target)


@dataclass(frozen=True)
class RecalibrationConfig:
    """What the worker aims for and when it refuses.

    ``target``: ``rate`` escalates about ``target_rate`` of all traffic; ``quality`` keeps
    P(edge wrong and not escalated) <= ``alpha`` at confidence 1 - ``delta`` (isotonic calibration, then
    conformal risk control); ``tradeoff`` maximises quality - ``lam`` * escalation rate. A policy is
    computed only from at least ``min_labelled`` labelled outcomes whose Kish effective sample size is at
    least ``min_effective_size``; otherwise the old policy stays and the reason is logged and recorded.

    The fold reads ``batch_size`` entries at a time as consumer ``consumer`` of group ``group``; entries
    another consumer read but did not acknowledge within ``claim_idle_s`` are claimed (XAUTOCLAIM).
    A partition's first policy uses ``default_mode`` and ``default_shadow_rate``; later ones keep the
    current policy's mode, shadow rate and hybrid band. A new policy goes to ``canary_share`` of the
    cohort's devices first (a canary; 0 or 1: to all at once, as does a partition's first policy).
    """

    target: Target = "quality"
    target_rate: float = 0.2
    alpha: float = 0.1
    delta: float = 0.1
    lam: float = 0.3
    min_labelled: int = 200
    min_effective_size: float = 100.0
    group: str = "recalibrate"
    consumer: str = "worker-1"
    batch_size: int = 1000
    claim_idle_s: float = 60.0
    default_mode: RoutingMode = RoutingMode.POST
    default_shadow_rate: float = 0.05
    canary_share: float = 0.1

    def __post_init__(self) -> None:
        _require(self.target in TARGETS, "target", f"one of {TARGETS}")
        for name in ("target_rate", "default_shadow_rate", "canary_share"):
            value = getattr(self, name)
            _require(math.isfinite(value) and 0.0 <= value <= 1.0, name, "in [0, 1]")
        for name in ("alpha", "delta"):
            value = getattr(self, name)
            _require(math.isfinite(value) and 0.0 < value < 1.0, name, "in (0, 1)")
        _require(math.isfinite(self.lam) and self.lam >= 0.0, "lam", ">= 0")
        _require(self.min_labelled >= 1 and self.batch_size >= 1, "min_labelled", ">= 1, and batch_size too")
        _require(math.isfinite(self.min_effective_size) and self.min_effective_size > 0, "min_effective_size", "> 0")
        _require(self.claim_idle_s >= 0 and bool(self.group and self.consumer), "claim_idle_s", ">= 0, with a group")


def _require(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise InvalidInput(f"{name} must be {what}", field=name)
