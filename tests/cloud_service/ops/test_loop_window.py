"""The live policy's figures over a window of outcomes: escalation rate, ECE, AUROC, risk, the curves."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from cloud_service.ops.loop_window import Target, labelled_scores, quality_curve, window_report
from confroute.contract.enums import Decision, Label
from confroute.contract.outcome import OutcomeRecord
from tests.cloud_service.ops.service import live_policy
from tests.factories import COHORT, EDGE, outcome, routed


def scored(query_id: str, score: float, label: Label = Label.UNKNOWN, **changes: Any) -> OutcomeRecord:
    return outcome(query_id, signals={"logprob_mean": math.log(score)}, label=label, **changes)


def test_a_calibrated_score_has_a_small_error_and_separates_right_from_wrong() -> None:
    records = routed(4000, threshold=0.3, shadow_rate=0.5, seed=3)
    report = window_report(EDGE.version, COHORT, records, live_policy())

    assert report.outcomes == 4000
    assert report.escalation_rate == pytest.approx(0.3, abs=0.03)
    assert report.labelled > 1000
    assert report.ece is not None and report.ece < 0.05  # the edge is right with probability = its score
    assert report.auroc is not None and report.auroc > 0.75
    assert len(report.reliability) == 10 and sum(int(b["count"] or 0) for b in report.reliability) == report.labelled


def test_risk_is_the_share_wrong_among_the_answers_the_policy_keeps() -> None:
    # The live policy's post threshold is 0.4: of the three kept (0.5, 0.6, 0.9), one is wrong.
    records = [scored("a", 0.5, Label.INCORRECT), scored("b", 0.6, Label.CORRECT), scored("c", 0.9, Label.CORRECT),
               scored("d", 0.2, Label.INCORRECT, decision=Decision.ESCALATED)]
    report = window_report(EDGE.version, COHORT, records, live_policy())

    assert report.risk == pytest.approx(1 / 3)
    assert report.escalation_rate == pytest.approx(1 / 4)
    assert report.operating_point == {"escalation_rate": 0.25, "edge_accuracy": pytest.approx(0.6667, abs=1e-4)}


def test_late_labels_count_and_unlabelled_records_do_not() -> None:
    records = [scored("a", 0.7), scored("b", 0.3), scored("c", 0.8, Label.CORRECT)]
    confidence, correct = labelled_scores(records, live_policy(), {"b": Label.INCORRECT})

    assert list(confidence) == pytest.approx([0.3, 0.8]) and list(correct) == [False, True]


def test_auroc_needs_both_right_and_wrong_answers() -> None:
    records = [scored("a", 0.7, Label.CORRECT), scored("b", 0.3, Label.CORRECT)]
    assert window_report(EDGE.version, COHORT, records, live_policy()).auroc is None


def test_without_a_policy_or_labels_only_the_escalation_rate_is_known() -> None:
    records = [scored("a", 0.7), scored("b", 0.3, decision=Decision.ESCALATED)]
    for policy in (None, live_policy()):
        report = window_report(EDGE.version, COHORT, records, policy)
        assert report.escalation_rate == 0.5 and report.ece is None and report.labelled == 0


def test_the_policy_calibration_map_is_applied_before_measuring() -> None:
    from confroute.contract import CalibrationMap

    halved = replace(live_policy(), calibration=CalibrationMap((0.0, 1.0), (0.0, 0.5)))
    confidence, _ = labelled_scores([scored("a", 0.8, Label.CORRECT)], halved, {})
    assert confidence[0] == pytest.approx(0.4)


def test_escalating_the_least_confident_raises_the_kept_accuracy() -> None:
    import numpy as np

    curve = quality_curve(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True]))
    assert curve[0] == {"escalation_rate": 0.0, "edge_accuracy": 0.5}
    assert curve[5]["edge_accuracy"] == 1.0


def test_the_target_comes_from_the_last_recalibration() -> None:
    assert Target.of({"target": {"kind": "rate", "rate": 0.2}}) == Target(escalation_rate=0.2)
    assert Target.of({"target": {"kind": "quality", "alpha": 0.1, "delta": 0.05}}) == Target(risk_bound=0.1)
    assert Target.of({}) == Target()
