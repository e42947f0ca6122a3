"""PGR, APGR and CPT of routers, checked against the random and oracle baselines."""

from __future__ import annotations

import numpy as np
import pytest

from confroute.calibration import (
    RoutingCurve,
    oracle_router_curve,
    random_router_curve,
    routing_curve,
)

EDGE = np.array([1, 1, 0, 0, 1, 0, 0, 1, 0, 0], dtype=float)
CLOUD = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 0], dtype=float)


def _outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random(n) < 0.5).astype(float), (rng.random(n) < 0.85).astype(float)


def test_a_routing_curve_runs_from_the_edge_to_the_cloud_quality() -> None:
    curve = routing_curve(EDGE, CLOUD, np.arange(10.0))
    assert curve.rates[0] == 0.0 and curve.rates[-1] == 1.0
    assert curve.quality[0] == pytest.approx(0.4) and curve.quality[-1] == pytest.approx(0.8)
    assert curve.pgr[0] == 0.0 and curve.pgr[-1] == 1.0


def test_routing_curve_uses_routellm_quantile_thresholds() -> None:
    curve = routing_curve(EDGE, CLOUD, np.arange(10.0), n_bins=10)
    assert curve.rates.tolist() == pytest.approx(np.linspace(0, 1, 11).tolist())


def test_routing_curve_escalates_tied_scores_together() -> None:
    curve = routing_curve(EDGE, CLOUD, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], n_bins=None)
    assert curve.rates.tolist() == [0.0, 0.5, 1.0]


def test_a_router_that_escalates_exactly_the_gains_recovers_the_gap_at_once() -> None:
    gain = CLOUD - EDGE  # 4 queries gain, at rate 0.4 PGR reaches 1
    curve = routing_curve(EDGE, CLOUD, gain + np.arange(10) * 1e-3, n_bins=None)
    assert curve.cpt(1.0) == pytest.approx(0.4)
    assert curve.cpt(0.5) == pytest.approx(0.2)


def test_oracle_router_has_high_pgr() -> None:
    oracle = oracle_router_curve(*_outcomes(2000, 1))
    assert oracle.apgr() > 0.8
    assert oracle.cpt(0.5) < 0.3


def test_oracle_router_pgr_exceeds_one_when_the_edge_sometimes_beats_the_cloud() -> None:
    oracle = oracle_router_curve([1, 0, 0], [0, 1, 1], n_points=4)
    assert oracle.pgr.max() > 1.0


def test_random_router_apgr_is_one_half() -> None:
    assert random_router_curve(EDGE, CLOUD).apgr() == pytest.approx(0.5)


def test_a_router_with_random_scores_has_apgr_near_one_half() -> None:
    edge, cloud = _outcomes(20_000, 2)
    scores = np.random.default_rng(3).random(edge.size)
    assert routing_curve(edge, cloud, scores).apgr() == pytest.approx(0.5, abs=0.03)


def test_cpt_interpolates_linearly_between_curve_points() -> None:
    curve = RoutingCurve(rates=np.array([0.0, 0.5, 1.0]), quality=np.zeros(3), pgr=np.array([0.0, 0.8, 1.0]))
    assert curve.cpt(0.4) == pytest.approx(0.25)
    assert curve.cpt(0.9) == pytest.approx(0.75)
    assert curve.cpt(0.0) == 0.0


def test_cpt_takes_the_first_crossing_of_a_non_monotone_curve() -> None:
    curve = RoutingCurve(
        rates=np.array([0.0, 0.2, 0.4, 1.0]), quality=np.zeros(4), pgr=np.array([0.0, 0.6, 0.4, 1.0])
    )
    assert curve.cpt(0.5) == pytest.approx(0.5 / 0.6 * 0.2)
