"""Policies and signals for the routing tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from confroute.contract import CalibrationMap, ModelRef, Policy, RoutingMode, Thresholds

EDGE_MODEL = ModelRef("smollm2-135m-instruct", "sha256:b1")


def a_policy(**changes: Any) -> Policy:
    policy = Policy(
        policy_version="v1",
        edge_model=EDGE_MODEL,
        cohort="beta",
        mode=RoutingMode.HYBRID,
        thresholds=Thresholds(pre=0.5, post=0.6, hybrid_low=0.3, hybrid_high=0.8),
        issued_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
        calibration=CalibrationMap(),
        shadow_rate=0.1,
    )
    return replace(policy, **changes)


def generated(logprob_mean: float, **extra: float) -> dict[str, float]:
    """The signals of a finished generation (what ``edge_agent.model.signals`` returns)."""
    return {
        "logprob_mean": logprob_mean,
        "entropy_mean": 1.0,
        "entropy_max": 2.0,
        "max_prob_mean": 0.7,
        "max_prob_min": 0.2,
        **extra,
    }
