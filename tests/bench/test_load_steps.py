"""bench.load's verdict on a rate step: sustained means no errors, >= 95% of the rate answered, p99 in bound."""

from __future__ import annotations

from bench.load import max_sustained, ramp_summary, sustained
from bench.loadbench.traffic import Step


def step(rate: float, answered: int, errors: int = 0, latency_s: float = 0.01) -> Step:
    return Step(rate, 1.0, sent=answered + errors, errors=errors, latencies_s=[latency_s] * answered)


def test_a_step_is_sustained_only_without_errors_at_its_rate_and_within_the_p99_bound() -> None:
    assert sustained(step(100, 100), bound_ms=250)
    assert not sustained(step(100, 99, errors=1), bound_ms=250)
    assert not sustained(step(100, 90), bound_ms=250)
    assert not sustained(step(100, 100, latency_s=0.3), bound_ms=250)


def test_the_maximum_is_the_last_sustained_step_and_errors_past_it_are_counted_apart() -> None:
    steps = [step(50, 50), step(100, 100), step(200, 150, errors=50)]

    best = max_sustained(steps, bound_ms=250)
    summary = ramp_summary(steps, best)

    assert best is steps[1]
    assert (summary["max_sustained_rps"], summary["errors"], summary["errors_past_max"]) == (100, 0, 50)
    assert ramp_summary([step(50, 10, errors=40)], None)["max_sustained_rps"] == 0.0
