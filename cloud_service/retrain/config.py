"""The retrain worker's one frozen configuration (built in ``main()``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from confroute.errors import InvalidInput


@dataclass(frozen=True)
class RetrainConfig:
    """When a router probe is refitted and when it is published.

    A partition (edge model build, cohort) is refitted when labels arrived since the last pass and it has
    at least ``min_examples`` labelled queries with features, ``min_per_class`` of each kind (the edge
    right / wrong); else the pass is refused with its reason. ``val_frac`` of them (stratified, seed
    ``seed``) are held out; the new probe is published only when its held-out AUROC beats the live
    probe's on the same slice by more than ``margin``. ``max_features`` bounds the feature store per
    partition (about 2 bytes per feature, so a 7-layer 576-wide block is ~8 KB a query). The policy that
    introduces a published probe goes to ``canary_share`` of the cohort's devices first (0 or 1: to all).
    """

    min_examples: int = 60
    min_per_class: int = 10
    val_frac: float = 0.3
    seed: int = 0
    margin: float = 0.0
    max_features: int = 20_000
    group: str = "retrain"
    consumer: str = "retrain-1"
    batch_size: int = 500
    claim_idle_s: float = 300.0
    canary_share: float = 0.1

    def __post_init__(self) -> None:
        if self.min_examples < 4 or self.min_per_class < 2:
            raise InvalidInput("min_examples must be >= 4 and min_per_class >= 2", field="min_examples")
        if not 0.0 < self.val_frac < 1.0:
            raise InvalidInput(f"val_frac must be in (0, 1), got {self.val_frac}", field="val_frac")
        if not (math.isfinite(self.margin) and 0.0 <= self.margin < 0.5):
            raise InvalidInput(f"margin must be in [0, 0.5), got {self.margin}", field="margin")
        if not (math.isfinite(self.canary_share) and 0.0 <= self.canary_share <= 1.0):
            raise InvalidInput(f"canary_share must be in [0, 1], got {self.canary_share}", field="canary_share")
        if self.max_features < 1 or self.batch_size < 1 or not (self.group and self.consumer):
            raise InvalidInput("max_features and batch_size must be >= 1, group and consumer named", field="group")
