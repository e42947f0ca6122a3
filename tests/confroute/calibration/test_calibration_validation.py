"""Every calibration function rejects empty, NaN, mismatched and one-class input with InvalidInput."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from confroute.calibration import (
    aurac,
    auroc,
    ece,
    effective_sample_size,
    fit_isotonic,
    inverse_propensity_weights,
    risk_at_coverage,
    routing_curve,
    threshold_for_rate,
    threshold_for_risk,
    threshold_for_tradeoff,
)
from confroute.errors import InvalidInput

NAN = float("nan")

REJECTED: list[tuple[str, Callable[[], Any], str]] = [
    ("auroc one class", lambda: auroc([0.1, 0.9], [1, 1]), "correct"),
    ("auroc NaN score", lambda: auroc([0.1, NAN], [0, 1]), "scores"),
    ("auroc non-binary label", lambda: auroc([0.1, 0.2], [0, 0.5]), "correct"),
    ("auroc mismatched lengths", lambda: auroc([0.1, 0.2, 0.3], [0, 1]), "scores"),
    ("auroc empty", lambda: auroc([], []), "scores"),
    ("aurac NaN", lambda: aurac([NAN], [1]), "confidence"),
    ("ece prob above one", lambda: ece([1.5], [1]), "prob"),
    ("ece zero bins", lambda: ece([0.5], [1], n_bins=0), "n_bins"),
    ("risk at zero coverage", lambda: risk_at_coverage([0.5], [1], 0.0), "coverage"),
    ("routing equal qualities", lambda: routing_curve([1, 0], [0, 1], [0.1, 0.2]), "quality_cloud"),
    ("routing NaN score", lambda: routing_curve([0, 0], [1, 1], [NAN, 0.2]), "escalation_score"),
    ("rate NaN score", lambda: threshold_for_rate([0.1, NAN], 0.5), "scores"),
    ("rate above one", lambda: threshold_for_rate([0.1], 1.5), "rate"),
    ("rate NaN", lambda: threshold_for_rate([0.1], NAN), "rate"),
    ("rate empty", lambda: threshold_for_rate([], 0.5), "scores"),
    ("tradeoff mismatched", lambda: threshold_for_tradeoff([0.1], [1, 0], [1], 0.1), "conf"),
    ("risk alpha zero", lambda: threshold_for_risk([0.5], [1], 0.0, 0.1), "alpha"),
    ("risk delta one", lambda: threshold_for_risk([0.5], [1], 0.1, 1.0), "delta"),
    ("risk negative weight", lambda: threshold_for_risk([0.5], [1], 0.1, 0.1, weights=[-1.0]), "weights"),
    ("isotonic NaN label", lambda: fit_isotonic([0.5], [NAN]), "correct"),
    ("isotonic 2-d scores", lambda: fit_isotonic([[0.5]], [1]), "scores"),
    ("propensity zero", lambda: inverse_propensity_weights([0.0]), "propensity"),
    ("ess of zero weights", lambda: effective_sample_size([0.0, 0.0]), "weights"),
]


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in REJECTED], ids=[n for n, _, _ in REJECTED])
def test_bad_input_is_rejected_naming_the_field(call: Callable[[], Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field
