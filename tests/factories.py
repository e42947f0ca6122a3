"""Sample outcome records for tests and benchmarks: the one place an ``OutcomeRecord`` is built from scratch.

- ``outcome()``: a query answered on the edge (post mode, unlabelled, no texts);
- ``escalated()``: the same query answered by the cloud after the edge's try;
- ``outcomes()``: many of either, with distinct query ids;
- ``routed()``: simulated routed traffic, the edge right with probability = its score, for calibration.

Every builder takes field ``changes`` (or parameters) for what a test or benchmark cares about; the rest are
fixed, so literals that tests compare against (``device-7``, ``2026.01``, ``p-3``, ...) are stated here once.
Benchmarks import this module too (``python -m bench.<name>`` runs from the repository root).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from confroute.contract.common import ModelRef
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource, RoutingMode
from confroute.contract.outcome import Latency, OutcomeRecord

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)
EDGE = ModelRef("smollm2-135m", "2026.01")
CLOUD = ModelRef("qwen2.5-7b", "3")
COHORT = "beta"


def outcome(query_id: str = "q-1", **changes: Any) -> OutcomeRecord:
    """A query answered on the edge in post mode, unlabelled, without texts; ``changes`` override any field."""
    record = OutcomeRecord(
        query_id=query_id,
        device_id="device-7",
        cohort=COHORT,
        edge_model=EDGE,
        mode=RoutingMode.POST,
        decision=Decision.LOCAL,
        answered_by=AnsweredBy.EDGE,
        latency=Latency(edge_ms=95.0, total_ms=97.5),
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=97),
        signals={"seq_conf": 0.42, "probe": 0.37},
        policy_version="p-3",
    )
    return replace(record, **changes) if changes else record


def escalated(query_id: str = "q-1", **changes: Any) -> OutcomeRecord:
    """A query the cloud answered after the edge's try (unlabelled, no texts); ``changes`` override any field."""
    cloud: dict[str, Any] = {
        "cloud_model": CLOUD,
        "decision": Decision.ESCALATED,
        "answered_by": AnsweredBy.CLOUD,
        "latency": Latency(edge_ms=41.5, total_ms=380.25, cloud_ms=320.0),
        "finished_at": T0 + timedelta(milliseconds=380),
    }
    return outcome(query_id, **{**cloud, **changes})


def outcomes(count: int, prefix: str = "q", start: int = 0,
             shape: Callable[..., OutcomeRecord] = outcome, **changes: Any) -> list[OutcomeRecord]:
    """``count`` records of ``shape`` with ids ``<prefix>-<start>``, ``<prefix>-<start + 1>``, ..."""
    return [shape(f"{prefix}-{i}", **changes) for i in range(start, start + count)]


def routed(
    n: int,
    *,
    threshold: float = 0.05,
    shadow_rate: float = 0.2,
    seed: int = 0,
    prefix: str = "q",
    start: int = 0,
    labelled: bool = True,
    cohort: str = COHORT,
    edge: ModelRef = EDGE,
    devices: int = 1,
) -> list[OutcomeRecord]:
    """``n`` device records routed by ``threshold`` on the raw score (uniform in (0.001, 1)); the edge is right
    with probability = its score. Escalated ones are labelled, and a ``shadow_rate`` share of the local ones
    (propensity = shadow_rate); the rest stay unlabelled. With ``labelled=False`` none carries a label (they
    arrive later). Ids run ``<prefix>-<start>`` on; devices ``device-1`` .. ``device-<devices>`` take turns."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.001, 1.0, size=n)
    right = rng.uniform(size=n) < scores
    shadowed = rng.uniform(size=n) < shadow_rate
    traffic = _Traffic(shadow_rate, labelled, cohort, edge, devices)
    return [
        traffic.record(start + i, prefix, float(s), bool(ok), bool(s < threshold), bool(shadow))
        for i, (s, ok, shadow) in enumerate(zip(scores, right, shadowed, strict=True))
    ]


class _Traffic:
    """What every record of one ``routed()`` call shares."""

    def __init__(self, shadow_rate: float, labelled: bool, cohort: str, edge: ModelRef, devices: int) -> None:
        self.rate, self.labelled, self.cohort, self.edge, self.devices = shadow_rate, labelled, cohort, edge, devices

    def record(self, i: int, prefix: str, score: float, right: bool, escalated: bool, shadow: bool) -> OutcomeRecord:
        has_label = self.labelled and (escalated or shadow)
        return OutcomeRecord(
            query_id=f"{prefix}-{i}",
            device_id=f"device-{i % self.devices + 1}",
            cohort=self.cohort,
            edge_model=self.edge,
            mode=RoutingMode.POST,
            decision=Decision.ESCALATED if escalated else Decision.LOCAL,
            answered_by=AnsweredBy.CLOUD if escalated else AnsweredBy.EDGE,
            latency=Latency(edge_ms=10.0, total_ms=10.0),
            started_at=T0,
            finished_at=T0 + timedelta(milliseconds=10),
            signals={"logprob_mean": math.log(score), "probe_tbg": score},
            shadow=shadow and not escalated,
            propensity=1.0 if escalated else (self.rate if shadow else 1.0 - self.rate),
            label=(Label.CORRECT if right else Label.INCORRECT) if has_label else Label.UNKNOWN,
            label_source=LabelSource.REFERENCE if has_label else LabelSource.NONE,
        )
