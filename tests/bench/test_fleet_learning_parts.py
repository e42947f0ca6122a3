"""Parts of ``bench.fleet_learning`` that need no model: the held-out scores and the delivery placeholder."""

from __future__ import annotations

import numpy as np
import pytest

from bench.fleet_learning import parse_args
from bench.learnbench.delivery import probe_policy_delivery_s
from bench.learnbench.scores import cascade, random_apgr


def test_a_router_that_knows_the_labels_recovers_the_whole_gap_and_escalates_what_the_policy_would() -> None:
    edge = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    cloud = np.ones(10)
    logits = np.where(edge > 0, 3.0, -3.0)  # keep the right ones, escalate the wrong ones
    scores = cascade(edge, cloud, logits)
    assert scores["apgr"] == 0.75  # the oracle's area: the whole gap is recovered at 50% escalated
    assert scores["escalation_rate"] == 0.5
    assert scores["accuracy"] == 1.0


def test_the_untrained_start_escalates_nothing_at_the_policy_threshold() -> None:
    edge = np.array([1.0, 0.0, 0.0, 1.0])
    scores = cascade(edge, np.ones(4), np.zeros(4))
    assert scores == {"apgr": 0.5, "cpt50": 0.5, "escalation_rate": 0.0, "accuracy": 0.5}


def test_random_routers_recover_about_half_the_gap() -> None:
    rng = np.random.default_rng(1)
    edge = (rng.random(400) < 0.3).astype(np.float64)
    assert 0.4 < random_apgr(edge, np.ones(400), seed=0) < 0.6


def test_delivery_time_is_a_reason_until_probes_are_delivered() -> None:
    assert isinstance(probe_policy_delivery_s(), str)


def test_quick_leaves_the_local_judge_out_and_a_full_run_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFROUTE_TRITON_PYTHON", "/triton-env/bin/python")
    assert parse_args(["--quick"]).triton_python is None
    assert parse_args(["--quick"]).rounds == 2
    assert parse_args([]).triton_python is not None
