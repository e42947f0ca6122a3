"""Simulated routed traffic for the recalibration tests: the edge is right with probability = its score."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np

from confroute.contract.common import ModelRef
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource, RoutingMode
from confroute.contract.outcome import Latency, OutcomeRecord

EDGE = ModelRef("smollm2-135m", "2026.01")
COHORT = "beta"
T0 = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


def routed(
    n: int,
    *,
    threshold: float = 0.05,
    shadow_rate: float = 0.2,
    seed: int = 0,
    prefix: str = "q",
    labelled: bool = True,
    cohort: str = COHORT,
) -> list[OutcomeRecord]:
    """``n`` device records routed by ``threshold`` on the raw score: escalated ones are labelled, and a
    ``shadow_rate`` share of the local ones (propensity = shadow_rate); the rest stay unlabelled.
    With ``labelled=False`` none carries a label (they arrive later)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.001, 1.0, size=n)
    right = rng.uniform(size=n) < scores
    shadowed = rng.uniform(size=n) < shadow_rate
    return [
        _record(f"{prefix}-{i}", float(s), bool(ok), s < threshold, bool(shadow), shadow_rate, labelled, cohort)
        for i, (s, ok, shadow) in enumerate(zip(scores, right, shadowed, strict=True))
    ]


def _record(
    qid: str, score: float, right: bool, escalated: bool, shadow: bool, rate: float, labelled: bool, cohort: str
) -> OutcomeRecord:
    has_label = labelled and (escalated or shadow)
    propensity = 1.0 if escalated else (rate if shadow else 1.0 - rate)
    return OutcomeRecord(
        query_id=qid,
        device_id="device-1",
        cohort=cohort,
        edge_model=EDGE,
        mode=RoutingMode.POST,
        decision=Decision.ESCALATED if escalated else Decision.LOCAL,
        answered_by=AnsweredBy.CLOUD if escalated else AnsweredBy.EDGE,
        latency=Latency(edge_ms=10.0, total_ms=10.0),
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=10),
        signals={"logprob_mean": math.log(score), "probe_tbg": score},
        shadow=shadow and not escalated,
        propensity=propensity,
        label=(Label.CORRECT if right else Label.INCORRECT) if has_label else Label.UNKNOWN,
        label_source=LabelSource.REFERENCE if has_label else LabelSource.NONE,
    )
