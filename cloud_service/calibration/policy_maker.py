"""From a partition's statistics and its current policy to a new policy with its provenance (pure).

The post-generation threshold is chosen on calibrated confidences: the isotonic map fitted here goes
into the policy, and the device compares ``map(raw score)`` with the threshold (one
``confroute.contract.CalibrationMap`` reads the raw scores here and there; see ``confroute.routing``).
The pre-generation threshold is chosen on the TBG probe as it is (a probe is trained as a probability, and a policy
carries no pre-generation calibration) when its labels suffice, else the current one stays. The hybrid
band is placed on the same pre-score labels, anchored to what the new post threshold keeps and escalates
(``confroute.calibration.band``); without enough of them a new partition's band is empty (both ends at the
pre threshold) and later policies keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from cloud_service.calibration.config import RecalibrationConfig
from cloud_service.calibration.statistics_reader import PartitionStatistics
from confroute.calibration import (
    ScoreHistogram,
    calibrated_bins,
    fit_histogram_isotonic,
    histogram_estimates,
    histogram_threshold_for_rate,
    histogram_threshold_for_risk,
    histogram_threshold_for_tradeoff,
)
from confroute.calibration._checks import FloatArray
from confroute.calibration.band import Band, hybrid_band, post_outcomes
from confroute.contract.calibration_map import CalibrationMap
from confroute.contract.common import ModelRef
from confroute.contract.policy import Policy, Thresholds


@dataclass(frozen=True)
class Recalibration:
    """A new policy (None when refused, ``reason`` saying why) and its provenance, JSON-ready."""

    policy: Policy | None
    reason: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)


def recalibrate(
    stats: PartitionStatistics,
    current: Policy | None,
    config: RecalibrationConfig,
    *,
    edge_model_version: str,
    cohort: str,
    now: datetime,
) -> Recalibration:
    """The policy ``config``'s target asks for on these statistics, or a refusal with its reason."""
    provenance: dict[str, Any] = {"target": _target(config), "records": stats.records,
                                  "current_version": current.policy_version if current else ""}
    post = stats.histograms.get("post")
    reason = "no post-generation scores logged yet" if post is None else post.refusal(
        config.min_labelled, config.min_effective_size)
    if post is not None:
        provenance.update(labelled=post.labelled_count, effective_size=round(post.effective_size, 1))
    if post is None or reason:
        return Recalibration(None, reason, provenance)
    calibration = fit_histogram_isotonic(post)
    post_conf = calibrated_bins(post, calibration)
    post_threshold = _threshold(post, post_conf, config)
    pre = stats.histograms.get("pre")
    pre_ok = pre is not None and not pre.refusal(config.min_labelled, config.min_effective_size)
    band: Band | None = None
    if pre is not None and pre_ok:
        pre_threshold = _threshold(pre, pre.centres, config)
        band = hybrid_band(pre, post_outcomes(post, post_conf, post_threshold))
        provenance["hybrid_band"] = {"low": round(band.low, 6), "high": round(band.high, 6)}
    else:
        pre_threshold = current.thresholds.pre if current else post_threshold
    provenance["pre_recalibrated"] = pre_ok
    policy = _policy(stats, current, config, edge_model_version, cohort, now, calibration,
                     pre_threshold, post_threshold, band)
    provenance["after"] = _estimates(post, post_conf, post_threshold)
    if current is not None:
        provenance["before"] = _estimates(post, calibrated_bins(post, current.calibration), current.thresholds.post)
    provenance["version"] = policy.policy_version
    return Recalibration(policy, "", provenance)


def policy_version(now: datetime) -> str:
    """A version that sorts by issue time, to the millisecond: ``20260105T093000.123Z``."""
    return f"{now:%Y%m%dT%H%M%S}.{now.microsecond // 1000:03d}Z"


def _policy(
    stats: PartitionStatistics,
    current: Policy | None,
    config: RecalibrationConfig,
    edge_model_version: str,
    cohort: str,
    now: datetime,
    calibration: CalibrationMap,
    pre: float,
    post: float,
    band: Band | None,
) -> Policy:
    if band is not None:
        low, high = band.low, band.high
    else:
        low, high = (current.thresholds.hybrid_low, current.thresholds.hybrid_high) if current else (pre, pre)
    model_id = stats.model_id or (current.edge_model.id if current else "")
    return Policy(
        policy_version=policy_version(now),
        edge_model=ModelRef(model_id, edge_model_version),
        cohort=cohort,
        mode=current.mode if current else config.default_mode,
        thresholds=Thresholds(pre=pre, post=post, hybrid_low=min(low, high), hybrid_high=max(low, high)),
        issued_at=now,
        calibration=calibration,
        shadow_rate=current.shadow_rate if current else config.default_shadow_rate,
    )


def _threshold(histogram: ScoreHistogram, conf: FloatArray, config: RecalibrationConfig) -> float:
    if config.target == "rate":
        value = histogram_threshold_for_rate(histogram, conf, config.target_rate)
    elif config.target == "tradeoff":
        value = histogram_threshold_for_tradeoff(histogram, conf, config.lam)
    else:
        value = histogram_threshold_for_risk(histogram, conf, config.alpha, config.delta)
    return min(1.0, max(0.0, value))  # "escalate everything" is just above the top confidence


ECE_BUCKETS = 10


def _estimates(histogram: ScoreHistogram, conf: FloatArray, threshold: float) -> dict[str, float]:
    estimates = histogram_estimates(histogram, conf, threshold)
    return {"post_threshold": round(threshold, 6), "escalation_rate": round(estimates.escalation_rate, 6),
            "risk": round(estimates.risk, 6), "ece": round(histogram_ece(histogram, conf), 6)}


def histogram_ece(histogram: ScoreHistogram, conf: FloatArray, buckets: int = ECE_BUCKETS) -> float:
    """Expected calibration error on the labelled outcomes: the statistics' bins pooled into ``buckets``
    equal-width buckets of calibrated confidence ``conf`` (fine bins hold too few labels each: their
    noise alone would read as miscalibration), then the labelled-weight-weighted mean gap between each
    bucket's share of correct labels and its mean confidence (0 with no labels)."""
    labelled = histogram.correct + histogram.wrong
    total = float(labelled.sum())
    if total <= 0:
        return 0.0
    bucket = np.minimum((np.clip(conf, 0.0, 1.0) * buckets).astype(int), buckets - 1)
    weight = np.bincount(bucket, weights=labelled, minlength=buckets)
    correct = np.bincount(bucket, weights=histogram.correct, minlength=buckets)
    confidence = np.bincount(bucket, weights=labelled * conf, minlength=buckets)
    seen = weight > 0
    gaps = np.abs(correct[seen] - confidence[seen])  # = weight * |accuracy - mean confidence|
    return float(gaps.sum() / total)


def _target(config: RecalibrationConfig) -> dict[str, Any]:
    if config.target == "rate":
        return {"kind": "rate", "rate": config.target_rate}
    if config.target == "tradeoff":
        return {"kind": "tradeoff", "lam": config.lam}
    return {"kind": "quality", "alpha": config.alpha, "delta": config.delta}
