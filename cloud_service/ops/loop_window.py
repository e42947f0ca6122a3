"""How the live policy routes over the last window of outcomes of one (edge model version, cohort): pure.

From the window's device records (newest last) and the labels that came later (judge, gold), with the
live policy:

- escalation rate: the share of the window's records the devices escalated, beside the target the last
  recalibration aimed at (its provenance's ``target``: a rate, or a risk bound ``alpha``);
- calibration of the policy's score (``post``: the raw sequence confidence through the policy's
  calibration map) on the labelled records: ECE and the reliability diagram (``RELIABILITY_BINS`` bins),
  AUROC (None unless both right and wrong answers are in the window), and risk, the share of wrong answers
  among those the policy keeps on the edge (score at or above its ``post`` threshold);
- the quality-versus-escalation curve: the accuracy of the answers kept on the edge when the least
  confident share ``c`` of the labelled records escalates, for c = 0, 0.1, ..., 0.9, and the policy's own
  point on it.

The metrics are ``confroute.calibration``'s; only the choice of records is made here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from confroute.calibration.metrics import auroc, reliability_diagram, risk_at_coverage
from confroute.contract.enums import Decision, Label
from confroute.contract.outcome import OutcomeRecord
from confroute.contract.policy import Policy
from confroute.routing.scores import logged_scores

RELIABILITY_BINS = 10
CURVE_RATES = tuple(i / 10 for i in range(10))


@dataclass(frozen=True)
class Target:
    """What the last recalibration aimed at (None: not that kind of target, or not known)."""

    escalation_rate: float | None = None
    risk_bound: float | None = None

    @classmethod
    def of(cls, provenance: Mapping[str, Any]) -> Target:
        """From a recalibration's provenance (``{"target": {"kind": "rate", "rate": 0.2}}`` and the like)."""
        target = provenance.get("target")
        if not isinstance(target, Mapping):
            return cls()
        return cls(_number(target.get("rate")), _number(target.get("alpha")))


@dataclass(frozen=True)
class WindowReport:
    """The window's figures for one partition (None: not enough records to tell)."""

    edge_model_version: str
    cohort: str
    policy_version: str | None
    outcomes: int
    labelled: int
    escalation_rate: float | None
    target: Target = field(default_factory=Target)
    ece: float | None = None
    auroc: float | None = None
    risk: float | None = None
    reliability: tuple[dict[str, float | int | None], ...] = ()
    curve: tuple[dict[str, float], ...] = ()
    operating_point: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "edge_model_version": self.edge_model_version, "cohort": self.cohort,
            "policy_version": self.policy_version, "outcomes": self.outcomes, "labelled": self.labelled,
            "escalation_rate": _round(self.escalation_rate),
            "target_escalation_rate": self.target.escalation_rate, "risk_bound": self.target.risk_bound,
            "ece": _round(self.ece), "auroc": _round(self.auroc), "risk": _round(self.risk),
            "reliability": list(self.reliability), "curve": list(self.curve),
            "operating_point": self.operating_point,
        }


def window_report(edge_model_version: str, cohort: str, records: Sequence[OutcomeRecord], policy: Policy | None,
                  late_labels: Mapping[str, Label] | None = None, target: Target | None = None) -> WindowReport:
    """The report of one partition's window (see the module docstring)."""
    escalated = sum(1 for record in records if record.decision is Decision.ESCALATED)
    base = WindowReport(edge_model_version, cohort, policy.policy_version if policy else None, len(records), 0,
                        escalated / len(records) if records else None, target or Target())
    if policy is None:
        return base
    confidence, correct = labelled_scores(records, policy, late_labels or {})
    if confidence.size == 0:
        return base
    diagram = reliability_diagram(confidence, correct, RELIABILITY_BINS)
    kept = confidence >= policy.thresholds.post
    return dataclasses.replace(
        base, labelled=int(confidence.size),
        ece=diagram.ece,
        auroc=auroc(confidence, correct) if 0 < correct.sum() < correct.size else None,
        risk=float(1.0 - correct[kept].mean()) if kept.any() else None,
        reliability=tuple(_bins(diagram.edges, diagram.counts, diagram.confidence, diagram.accuracy)),
        curve=tuple(quality_curve(confidence, correct)),
        operating_point={"escalation_rate": round(1.0 - float(kept.mean()), 4),
                         "edge_accuracy": round(float(correct[kept].mean()), 4) if kept.any() else 0.0},
    )


def labelled_scores(records: Sequence[OutcomeRecord], policy: Policy,
                    late_labels: Mapping[str, Label]) -> tuple[np.ndarray, np.ndarray]:
    """The policy's calibrated ``post`` score and whether the edge was right, for each record with both."""
    scores: list[float] = []
    right: list[bool] = []
    for record in records:
        label = record.label if record.label is not Label.UNKNOWN else late_labels.get(record.query_id)
        raw = logged_scores(record.signals).get("post")
        if label in (Label.CORRECT, Label.INCORRECT) and raw is not None:
            scores.append(float(policy.calibration(raw)))
            right.append(label is Label.CORRECT)
    return np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0), np.asarray(right, dtype=bool)


def quality_curve(confidence: np.ndarray, correct: np.ndarray) -> list[dict[str, float]]:
    """Accuracy of the answers kept on the edge as the least confident share escalates."""
    return [{"escalation_rate": rate,
             "edge_accuracy": round(1.0 - risk_at_coverage(confidence, correct, 1.0 - rate), 4)}
            for rate in CURVE_RATES]


def _bins(edges: np.ndarray, counts: np.ndarray, confidence: np.ndarray,
          accuracy: np.ndarray) -> list[dict[str, float | int | None]]:
    return [{"low": round(float(edges[i]), 4), "high": round(float(edges[i + 1]), 4), "count": int(counts[i]),
             "confidence": _round(float(confidence[i])) if counts[i] else None,
             "accuracy": _round(float(accuracy[i])) if counts[i] else None}
            for i in range(counts.size)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
