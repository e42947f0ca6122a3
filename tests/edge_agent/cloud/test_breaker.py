"""The circuit breaker: pure logic on a fake clock (the backoff is tested in tests/confroute/test_backoff.py)."""

from __future__ import annotations

import pytest

from confroute.errors import InvalidInput
from edge_agent.cloud import BreakerSettings, BreakerState, CircuitBreaker
from tests.edge_agent.cloud.clock import FakeClock


def breaker(clock: FakeClock, failures: int = 3, cooldown_s: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(BreakerSettings(failure_threshold=failures, cooldown_s=cooldown_s), clock)


def test_the_breaker_opens_after_the_threshold_of_consecutive_failures(clock: FakeClock) -> None:
    b = breaker(clock)
    for _ in range(2):
        b.record_failure()
        assert b.allow() and b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert not b.allow()
    assert b.retry_after() == pytest.approx(10.0)


def test_a_success_resets_the_failure_count(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED


def test_after_the_cooldown_one_trial_call_is_let_through(clock: FakeClock) -> None:
    b = breaker(clock, failures=1)
    b.record_failure()
    clock.advance(9.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()  # the trial
    assert not b.allow()  # everyone else waits for its outcome


def test_a_successful_trial_closes_the_breaker(clock: FakeClock) -> None:
    b = breaker(clock, failures=1)
    b.record_failure()
    clock.advance(10)
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow() and b.allow()


def test_a_failed_trial_opens_the_breaker_for_another_cooldown(clock: FakeClock) -> None:
    b = breaker(clock, failures=3)
    for _ in range(3):
        b.record_failure()
    clock.advance(10)
    assert b.allow()
    b.record_failure()  # one failure is enough in half-open
    assert b.state is BreakerState.OPEN
    clock.advance(9)
    assert not b.allow()


def test_a_trial_that_never_reports_is_given_up_after_a_cooldown(clock: FakeClock) -> None:
    b = breaker(clock, failures=1)
    b.record_failure()
    clock.advance(10)
    assert b.allow()
    clock.advance(10)
    assert b.allow()


@pytest.mark.parametrize("settings", [{"failure_threshold": 0}, {"cooldown_s": 0.0}, {"cooldown_s": float("nan")}])
def test_breaker_settings_are_validated(settings: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        BreakerSettings(**settings)  # type: ignore[arg-type]
