"""Refitting a router probe from logged labels and cloud-extracted features, and deciding whether it may
replace the live one (pure functions: the worker does the I/O).

The label is the router's: 1 (keep on the edge) where the edge's answer was right, 0 where it was wrong
(the judge grades the edge answer against the cloud's, so "wrong" there means "the cloud's answer is the
better one": escalating helps; a user's rating of an edge answer says the same). Layers and L2 are chosen
by cross-validation on the training part (:func:`confroute.probes.selection.select_probe`); the held-out
part, never seen by the fit or the choice, scores both the new probe and the live one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cloud_service.retrain.config import RetrainConfig
from confroute.calibration.metrics import auroc
from confroute.probes.selection import FeatureLayout, ProbeFit, select_probe, split

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Refit:
    """What one refit decided: the new fit (None when refused before fitting), both held-out AUROCs, and
    the reason it is not published ("" when it is)."""

    examples: int
    keep: int
    fit: ProbeFit | None
    new_auroc: float | None
    live_auroc: float | None
    reason: str

    @property
    def publish(self) -> bool:
        return not self.reason


def refit(features: Floats, keep: npt.NDArray[np.int8], layout: FeatureLayout, live: tuple[Floats, float],
          config: RetrainConfig) -> Refit:
    """Fits a probe on ``features``/``keep`` and compares it with the live ``(weight, bias)`` (see the module
    docstring)."""
    n, kept = int(keep.size), int(keep.sum())
    if n < config.min_examples:
        return Refit(n, kept, None, None, None, f"{n} labelled queries with features, fewer than "
                     f"min_examples={config.min_examples}")
    if min(kept, n - kept) < config.min_per_class:
        return Refit(n, kept, None, None, None, f"{kept} edge-right and {n - kept} edge-wrong labels: fewer than "
                     f"min_per_class={config.min_per_class} of one kind")
    fit = select_probe(features, keep, layout, val_frac=config.val_frac, seed=config.seed)
    _, val = split(keep, config.val_frac, config.seed)
    weight, bias = live
    live_auroc = auroc(np.asarray(features[val], np.float64) @ np.asarray(weight, np.float64) + bias, keep[val])
    if not fit.val_auroc > live_auroc + config.margin:
        return Refit(n, kept, fit, fit.val_auroc, live_auroc, f"held-out AUROC {fit.val_auroc:.3f} is not above "
                     f"the live probe's {live_auroc:.3f} + margin {config.margin}")
    return Refit(n, kept, fit, fit.val_auroc, live_auroc, "")


def transferred_threshold(live_scores: npt.ArrayLike, new_scores: npt.ArrayLike, threshold: float) -> float:
    """The pre threshold for a new probe that keeps the operating point ``threshold`` had on the live one.

    Both are scored (as probabilities) on the same held-out queries: the share the live probe escalates
    there (score below ``threshold``) is the share the new threshold escalates. When the live probe does
    not tell the queries apart there (every held-out query on one side: an untrained probe scores all
    alike), there is no operating point to carry and ``threshold`` stays: it is a probability of the same
    label on both probes.
    """
    live = np.asarray(live_scores, np.float64)
    new = np.sort(np.asarray(new_scores, np.float64))
    rate = float(np.mean(live < threshold)) if live.size else 0.0
    if not 0.0 < rate < 1.0 or new.size == 0:
        return threshold
    k = round(rate * new.size)  # escalate the k lowest-scored held-out queries
    if k <= 0:
        return float(new[0])
    if k >= new.size:
        return float(np.nextafter(new[-1], np.inf)) if new[-1] < 1.0 else 1.0
    return float(np.clip((new[k - 1] + new[k]) / 2.0, 0.0, 1.0))
