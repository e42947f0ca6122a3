"""Scoring confidence signals on held-out items: discrimination, calibration, and the cascade they drive.

Every function is pure. A signal is a confidence (higher = the edge answer is more likely right); the
isotonic map that turns it into P(correct) is fitted on the training split and applied to the test split,
so the ECE reported is the one a deployed calibration would show on new traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from confroute.calibration import aurac, auroc, ece, fit_isotonic, routing_curve
from confroute.calibration.routing_curves import RoutingCurve

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SignalScore:
    """How well one signal predicts the edge model's correctness on the test split."""

    auroc: float
    aurac: float
    ece: float
    ece_raw: float | None  # before calibration, only for signals that already are probabilities
    ece_crossfit: float  # over both splits, each calibrated by the map fitted on the other


@dataclass(frozen=True)
class CascadeScore:
    """The edge -> cloud cascade a signal drives on the test split (escalate the least confident)."""

    apgr: float
    cpt50: float
    cpt80: float
    curve: RoutingCurve


def score_signal(train_conf: npt.ArrayLike, train_correct: npt.ArrayLike, test_conf: npt.ArrayLike,
                 test_correct: npt.ArrayLike, *, is_probability: bool = False) -> SignalScore:
    """AUROC and AURAC of the raw signal on the test split; ECE (15 bins) after an isotonic map fitted on the
    training split, and the same over both splits with the roles swapped for the training half (every item
    calibrated by a map that did not see it; twice the items, so less sampling noise)."""
    tr_c, tr_y = np.asarray(train_conf, np.float64), np.asarray(train_correct, np.float64)
    te_c, te_y = np.asarray(test_conf, np.float64), np.asarray(test_correct, np.float64)
    calibrated = fit_isotonic(tr_c, tr_y)(te_c)
    swapped = fit_isotonic(te_c, te_y)(tr_c)
    raw = float(ece(np.clip(te_c, 0.0, 1.0), te_y)) if is_probability else None
    both = float(ece(np.concatenate([calibrated, swapped]), np.concatenate([te_y, tr_y])))
    return SignalScore(auroc=_auroc_or_half(te_c, te_y), aurac=float(aurac(te_c, te_y)),
                       ece=float(ece(calibrated, te_y)), ece_raw=raw, ece_crossfit=both)


def score_cascade(confidence: npt.ArrayLike, edge_correct: npt.ArrayLike,
                  cloud_correct: npt.ArrayLike) -> CascadeScore | None:
    """RouteLLM's curve (10 quantile thresholds) escalating the least confident first; None without a gap."""
    edge = np.asarray(edge_correct, np.float64)
    cloud = np.asarray(cloud_correct, np.float64)
    if edge.mean() >= cloud.mean():
        return None
    curve = routing_curve(edge, cloud, -np.asarray(confidence, np.float64), n_bins=10)
    return CascadeScore(apgr=curve.apgr(), cpt50=curve.cpt(0.5), cpt80=curve.cpt(0.8), curve=curve)


def _auroc_or_half(conf: FloatArray, correct: FloatArray) -> float:
    """AUROC, or NaN when the split holds one class only (nothing to discriminate)."""
    y = correct > 0.5
    if y.all() or not y.any():
        return float("nan")
    return float(auroc(conf, y))
