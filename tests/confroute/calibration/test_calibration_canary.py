"""Canary assignment is deterministic and proportional; the promotion rule promotes a canary that is no
worse, rolls back one that is worse, and waits while the evidence is thin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.calibration.canary import (
    ArmQuality,
    CanaryRule,
    CanaryVerdict,
    canary_bucket,
    decide_canary,
    in_canary,
)
from confroute.errors import InvalidInput


def test_assignment_is_deterministic_and_close_to_the_share() -> None:
    devices = [f"device-{i}" for i in range(20_000)]
    chosen = [d for d in devices if in_canary(d, 0.1, salt="v7")]
    assert chosen == [d for d in devices if in_canary(d, 0.1, salt="v7")]
    assert 0.09 < len(chosen) / len(devices) < 0.11


def test_a_larger_share_keeps_every_device_already_in_the_canary() -> None:
    devices = [f"d{i}" for i in range(2_000)]
    small = {d for d in devices if in_canary(d, 0.05, "v7")}
    assert small <= {d for d in devices if in_canary(d, 0.2, "v7")}


def test_successive_canaries_pick_different_devices() -> None:
    devices = [f"d{i}" for i in range(2_000)]
    first = {d for d in devices if in_canary(d, 0.1, "v7")}
    second = {d for d in devices if in_canary(d, 0.1, "v8")}
    assert len(first & second) < len(first) / 2


def test_share_zero_and_one() -> None:
    assert not in_canary("d", 0.0, "v1")
    assert in_canary("d", 1.0, "v1")


@given(st.text(max_size=40), st.text(max_size=10))
def test_buckets_lie_in_the_unit_interval(device_id: str, salt: str) -> None:
    assert 0.0 <= canary_bucket(device_id, salt) < 1.0


RULE = CanaryRule(tolerance=0.02, min_samples=200, max_samples=5_000)


def test_an_equal_canary_with_enough_samples_is_promoted() -> None:
    decision = decide_canary(ArmQuality(0.80, 4_000), ArmQuality(0.80, 4_000), RULE)
    assert decision.verdict is CanaryVerdict.PROMOTE
    assert "n_canary=4000" in decision.reason


def test_a_clearly_worse_canary_is_rolled_back() -> None:
    decision = decide_canary(ArmQuality.from_counts(600, 1_000), ArmQuality.from_counts(800, 1_000), RULE)
    assert decision.verdict is CanaryVerdict.ROLLBACK
    assert decision.upper < -RULE.tolerance


def test_too_few_samples_wait_even_when_the_canary_looks_bad() -> None:
    decision = decide_canary(ArmQuality.from_counts(10, 100), ArmQuality.from_counts(90, 100), RULE)
    assert decision.verdict is CanaryVerdict.WAIT and "too few" in decision.reason


def test_a_borderline_canary_waits_then_is_rolled_back_past_max_samples() -> None:
    assert decide_canary(ArmQuality(0.78, 1_000), ArmQuality(0.80, 1_000), RULE).verdict is CanaryVerdict.WAIT
    late = decide_canary(ArmQuality(0.785, 5_000), ArmQuality(0.80, 5_000), RULE)
    assert late.verdict is CanaryVerdict.ROLLBACK and "max_samples" in late.reason


def test_weighted_labels_use_the_effective_sample_size() -> None:
    arm = ArmQuality.from_labels(np.array([1, 1, 0, 1]), weights=np.array([1.0, 1.0, 1.0, 5.0]))
    assert arm.quality == pytest.approx(7 / 8)
    assert arm.effective_size == pytest.approx(64 / 28)


@given(
    st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 10_000.0), st.floats(0.0, 10_000.0),
)
def test_a_better_canary_never_gets_a_harsher_verdict(qc: float, qk: float, nc: float, nk: float) -> None:
    order = {CanaryVerdict.ROLLBACK: 0, CanaryVerdict.WAIT: 1, CanaryVerdict.PROMOTE: 2}
    worse = decide_canary(ArmQuality(min(qc, qk), nc), ArmQuality(qk, nk), RULE)
    better = decide_canary(ArmQuality(max(qc, qk), nc), ArmQuality(qk, nk), RULE)
    assert order[better.verdict] >= order[worse.verdict]
    assert worse.lower <= worse.difference <= worse.upper


def test_bad_input_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        ArmQuality(float("nan"), 10)
    with pytest.raises(InvalidInput):
        ArmQuality.from_counts(11, 10)
    with pytest.raises(InvalidInput):
        CanaryRule(min_samples=10, max_samples=5)
