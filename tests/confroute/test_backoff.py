"""The one backoff: full jitter under a growing, capped window, drawn from the caller's random.Random."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.backoff import Backoff
from confroute.errors import InvalidInput


@given(attempt=st.integers(0, 10_000), seed=st.integers(0, 2**32))
def test_a_delay_lies_in_a_window_that_grows_to_the_cap(attempt: int, seed: int) -> None:
    backoff = Backoff(base_s=0.1, cap_s=5.0)
    assert 0.0 <= backoff.delay(attempt, random.Random(seed)) < backoff.window(attempt) <= 5.0
    assert backoff.window(attempt) <= backoff.window(attempt + 1)


def test_windows_double_from_the_base_to_the_cap() -> None:
    assert [Backoff(base_s=0.1, cap_s=0.5).window(n) for n in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.5])
    assert [Backoff(base_s=1.0, cap_s=60.0, multiplier=3.0).window(n) for n in range(5)] == [1, 3, 9, 27, 60]


def test_the_jitter_spreads_delays_over_the_whole_window() -> None:
    rng = random.Random(7)
    backoff = Backoff(base_s=0.5, cap_s=4.0)
    delays = [[backoff.delay(attempt, rng) for _ in range(200)] for attempt in range(6)]

    assert min(delays[5]) < 0.4 and max(delays[5]) > 3.6  # full jitter: from near zero to near the cap
    assert max(delays[0]) < 0.5
    assert len(set(delays[3])) == 200


def test_the_draws_come_from_the_given_generator_only() -> None:
    backoff = Backoff(base_s=0.1, cap_s=2.0)
    random.seed(1)
    global_state = random.getstate()

    first = [backoff.delay(n, random.Random(42)) for n in range(8)]
    again = [backoff.delay(n, random.Random(42)) for n in range(8)]

    assert first == again
    assert random.getstate() == global_state  # the module-global generator was not touched


def test_a_schedule_counts_its_attempts_and_starts_over_after_reset() -> None:
    schedule = Backoff(base_s=0.1, cap_s=0.4).schedule(random.Random(3))
    delays = [schedule.next_delay() for _ in range(4)]
    assert schedule.attempts == 4
    assert all(d < w for d, w in zip(delays, [0.1, 0.2, 0.4, 0.4], strict=True))

    schedule.reset()

    assert schedule.attempts == 0
    assert schedule.next_delay() < 0.1


def test_a_schedule_without_a_generator_gets_its_own() -> None:
    random.seed(5)
    state = random.getstate()
    Backoff().schedule().next_delay()
    assert random.getstate() == state


@pytest.mark.parametrize(
    "values",
    [{"base_s": 0.0}, {"base_s": float("nan")}, {"base_s": 2.0, "cap_s": 1.0}, {"cap_s": float("inf")},
     {"multiplier": 0.5}],
)
def test_nonsensical_settings_are_invalid_input_naming_the_setting(values: dict[str, float]) -> None:
    with pytest.raises(InvalidInput) as caught:
        Backoff(**values)
    assert caught.value.field is not None and caught.value.field.startswith("backoff.")
