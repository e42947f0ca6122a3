"""Pool-adjacent-violators fits and the serialisable isotonic map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confroute.calibration import fit_isotonic
from confroute.contract import CalibrationMap
from confroute.errors import InvalidInput

FAST = settings(max_examples=150, deadline=None)


def _reference_pava(y: list[float], w: list[float]) -> list[float]:
    """Textbook PAV on already sorted points, one value per point."""
    blocks: list[list[float]] = []  # [mean, weight, size]
    for value, weight in zip(y, w, strict=True):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [b[0] for b in blocks for _ in range(int(b[2]))]


def test_fit_isotonic_pools_a_violating_pair() -> None:
    fitted = fit_isotonic([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1])
    assert fitted([1.0, 2.0, 3.0, 4.0]).tolist() == pytest.approx([0.0, 0.5, 0.5, 1.0])


def test_fit_isotonic_pools_equal_scores_first() -> None:
    fitted = fit_isotonic([0.5, 0.5, 0.5, 0.9], [1, 0, 0, 1])
    assert fitted(0.5) == pytest.approx(1 / 3)


def test_fit_isotonic_respects_weights() -> None:
    fitted = fit_isotonic([1.0, 2.0], [1, 0], weights=[3.0, 1.0])
    assert fitted(1.5) == pytest.approx(0.75)


def test_isotonic_map_holds_its_end_values_beyond_the_knots() -> None:
    fitted = fit_isotonic([0.2, 0.8], [0, 1])
    assert fitted(-5.0) == 0.0 and fitted(5.0) == 1.0 and fitted(0.5) == pytest.approx(0.5)


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(np.linspace(0, 1, 12).tolist()), st.floats(0, 1)), min_size=1, max_size=60
    )
)
def test_fit_isotonic_matches_textbook_pool_adjacent_violators(points: list[tuple[float, float]]) -> None:
    points.sort(key=lambda p: p[0])
    scores = [p[0] for p in points]
    distinct = sorted(set(scores))
    means = [float(np.mean([p[1] for p in points if p[0] == s])) for s in distinct]
    counts = [float(scores.count(s)) for s in distinct]
    fitted = fit_isotonic(scores, [p[1] for p in points])
    assert fitted(np.array(distinct)).tolist() == pytest.approx(_reference_pava(means, counts))


@FAST
@given(
    st.lists(st.tuples(st.floats(-10, 10), st.booleans()), min_size=1, max_size=80),
    st.lists(st.floats(-20, 20), min_size=1, max_size=30),
)
def test_isotonic_output_is_monotone_and_within_unit_interval(
    points: list[tuple[float, bool]], queries: list[float]
) -> None:
    scores, correct = zip(*points, strict=True)
    values = fit_isotonic(scores, correct)(np.sort(np.array(queries)))
    assert np.all(np.diff(values) >= -1e-12)  # np.interp's slope * dx + y0 may overshoot a knot by one ulp
    assert values.min() >= 0.0 and values.max() <= 1.0


def test_a_fitted_map_round_trips_through_the_policy_message() -> None:
    fitted = fit_isotonic(np.linspace(0, 1, 50), np.random.default_rng(0).random(50) < 0.5)
    assert CalibrationMap.from_pb(fitted.to_pb()) == fitted


def test_a_calibration_map_rejects_decreasing_values() -> None:
    with pytest.raises(InvalidInput) as caught:
        CalibrationMap((0.0, 1.0), (0.9, 0.1))
    assert caught.value.field == "calibration.y[1]"


def test_one_raw_score_maps_as_it_does_in_an_array() -> None:
    calibration = CalibrationMap((0.2, 0.5, 0.9), (0.05, 0.4, 0.95))
    raw = np.linspace(-1.0, 2.0, 301)
    assert [calibration(float(v)) for v in raw] == calibration(raw).tolist()
    assert CalibrationMap()(1.5) == 1.0 and CalibrationMap()(np.array([-0.5, 0.3])).tolist() == [0.0, 0.3]


def test_isotonic_map_rejects_a_nan_score() -> None:
    with pytest.raises(InvalidInput):
        fit_isotonic([0.0, 1.0], [0, 1])(float("nan"))
