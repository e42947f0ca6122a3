"""The demo's learning round, in the parts that need no stack: ratings by the reference, what it prints, and
that it starts the product's commands rather than importing them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

import pytest

from confroute.contract import ModelRef, RoutingMode, Thresholds
from confroute.contract.calibration_map import CalibrationMap
from confroute.routing import default_policy
from demo import learning
from edge_agent.answer import AgentAnswer
from edge_agent.core import EdgeAgent
from edge_agent.outbox.feedback import Rated
from tests.imports import loaded

QUESTIONS = [{"question": "q1", "gold": "7"}, {"question": "q2", "gold": "7"}, {"question": "q3", "gold": "9"}]


def _answer(query_id: str, text: str) -> AgentAnswer:
    return AgentAnswer(query_id=query_id, text=text, side="edge", model="m", decision="d", confidence=0.5,
                       threshold=0.5, policy_version="builtin", escalation_unavailable=False,
                       finish_reason="stop", prompt_tokens=1, completion_tokens=1, latency_ms=1.0)


@dataclass
class _Desk:
    ratings: dict[str, str] = field(default_factory=dict)
    cloud_answered: set[str] = field(default_factory=set)

    def rate(self, query_id: str, rating: str) -> Rated:
        if query_id in self.ratings:
            return Rated.ALREADY_RATED
        self.ratings[query_id] = rating
        return Rated.NOT_UPLOADED if query_id in self.cloud_answered else Rated.RECORDED


@dataclass
class _Agent:
    feedback: Any


def test_every_answer_is_rated_by_its_reference_once() -> None:
    desk = _Desk()
    answers = [_answer("a", "it is 7"), _answer("b", "3"), _answer("c", "9")]

    uploaded = learning.rate_answers(cast(EdgeAgent, _Agent(desk)), QUESTIONS, answers)

    assert uploaded == {"a", "b", "c"} and desk.ratings == {"a": "good", "b": "bad", "c": "good"}
    assert learning.rate_answers(cast(EdgeAgent, _Agent(desk)), QUESTIONS, answers) == set()  # the first counts


def test_ratings_of_the_clouds_answers_are_taken_but_not_waited_for_as_labels() -> None:
    desk = _Desk(cloud_answered={"b"})
    answers = [_answer("a", "it is 7"), _answer("b", "3"), _answer("c", "9")]

    assert learning.rate_answers(cast(EdgeAgent, _Agent(desk)), QUESTIONS, answers) == {"a", "c"}
    assert desk.ratings == {"a": "good", "b": "bad", "c": "good"}


def test_an_agent_without_feedback_is_refused() -> None:
    from confroute.errors import Unavailable

    with pytest.raises(Unavailable):
        learning.rate_answers(cast(EdgeAgent, _Agent(None)), QUESTIONS, [_answer("a", "7")] * 3)


def test_a_policy_is_described_by_what_routes() -> None:
    policy = default_policy(ModelRef("m", "v"), "demo")
    learned = policy.__class__(
        policy_version="20261208T030000.000Z", edge_model=policy.edge_model, cohort="demo", mode=RoutingMode.PRE,
        thresholds=Thresholds(pre=0.71, post=0.4, hybrid_low=0.6, hybrid_high=0.8),
        issued_at=datetime(2026, 12, 8, tzinfo=timezone.utc), calibration=CalibrationMap((0.1, 0.9), (0.2, 0.8)),
        shadow_rate=0.02)

    assert learning.describe(policy).startswith("policy builtin: mode pre, pre 0.500")
    assert "pre 0.710" in learning.describe(learned) and "hybrid band [0.600, 0.800)" in learning.describe(learned)
    assert learning.describe(learned).endswith("calibration map fitted, router probe the bundle's own")
    assert learning.describe(dataclasses.replace(learned, probe_version="p1")).endswith("router probe p1")


def test_the_judge_summary_shows_only_what_happened() -> None:
    assert learning._compact({"judged": 2, "skipped": 0, "text_expired": 1}) == "judged 2, text_expired 1"
    assert learning._compact({}) == "nothing to judge"


def test_the_round_imports_no_cloud_modules() -> None:
    assert loaded(["demo.learning"], ("cloud_service", "redis", "tritonclient")) == []


def test_the_knobs_name_real_recalibrate_flags() -> None:
    import argparse

    from cloud_service.calibration.command import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(list(learning.RECALIBRATE_KNOBS))
    assert (args.target, args.min_labelled, args.canary_share) == ("quality", 5, 0.0)


def test_only_one_line_json_objects_are_read_from_a_commands_output() -> None:
    lines = ["{", '  "policyVersion": "x"', "}", '{"status": "refused"}', "some log line", "{not json}"]
    assert [v for v in map(learning._json_line, lines) if v is not None] == [{"status": "refused"}]


def test_a_recalibration_says_what_it_published_or_why_not() -> None:
    published = {"status": "published", "version": "v2", "labelled": 7.0, "effective_size": 7.0,
                 "pre_recalibrated": True, "hybrid_band": {"low": 0.0, "high": 1.0}}
    refused = {"status": "refused", "reason": "3 labelled outcomes, fewer than the minimum 5", "labelled": 3.0,
               "effective_size": 3.0}

    assert learning.recalibration_line(published) == (
        "recalibrate: published v2 (7 labelled post scores (answers generated on the device), effective size 7.0; "
        "pre threshold recalibrated: yes; hybrid band [0.0, 1.0))")
    assert learning.recalibration_line(refused).startswith(
        "recalibrate: refused: 3 labelled outcomes, fewer than the minimum 5 (3 labelled")
