"""Reading a judge's answer strictly: one verdict or no label at all."""

from __future__ import annotations

import asyncio

import pytest

from cloud_service.judge.budget import CallBudget
from cloud_service.judge.prompts import PAIRWISE, SINGLE_WITH_REFERENCE
from cloud_service.judge.verdict import pairwise_verdict, single_verdict
from confroute.contract.enums import ChatRole, Label


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Correct and complete. Rating: [[9]]", Label.CORRECT),
        ("Rating: [[7]]", Label.CORRECT),
        ("The answer is wrong. Rating: [[2]]", Label.INCORRECT),
        ("Rating: [[ 4 ]]", Label.INCORRECT),
        ("Rating: [[5.5]]", None),  # undecided band
        ("Rating: [[11]]", None),  # out of range
        ("Rating: [[0]]", None),
        ("I would say 8 out of 10.", None),  # no verdict in the required form
        ("Rating: [[3]] ... on reflection, Rating: [[8]]", None),  # two different verdicts
        ("", None),
    ],
)
def test_single_grading_verdicts(text: str, label: Label | None) -> None:
    assert single_verdict(text).label is label


def test_the_same_rating_repeated_is_one_verdict() -> None:
    assert single_verdict("Rating: [[8]]. Again: [[8]]").label is Label.CORRECT


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("A is more accurate. [[A]]", Label.CORRECT),
        ("Both are equally good. [[C]]", Label.CORRECT),
        ("B answers the question, A does not. [[B]]", Label.INCORRECT),
        ("[[A]] or maybe [[B]]", None),
        ("A", None),
        ("[[D]]", None),
    ],
)
def test_pairwise_verdicts_with_the_edge_answer_as_a(text: str, label: Label | None) -> None:
    assert pairwise_verdict(text).label is label


def test_the_prompts_put_the_edge_answer_under_judgement_and_the_cloud_answer_as_reference() -> None:
    system, user = SINGLE_WITH_REFERENCE.messages("What is 2 + 2?", "five", "4")
    assert system.role is ChatRole.SYSTEM and user.role is ChatRole.USER
    assert "[The Start of Reference Answer]\n4\n" in user.content
    assert "[The Start of Assistant's Answer]\nfive\n" in user.content
    _, pair = PAIRWISE.messages("What is 2 + 2?", "five", "4")
    assert "[The Start of Assistant A's Answer]\nfive\n" in pair.content
    assert "[The Start of Assistant B's Answer]\n4\n" in pair.content


def test_the_budget_never_runs_more_calls_than_allowed_at_once() -> None:
    async def scenario() -> int:
        budget = CallBudget(max_in_flight=2, calls_per_second=1000.0)

        async def call() -> None:
            async with budget.call():
                await asyncio.sleep(0.01)

        await asyncio.gather(*(call() for _ in range(10)))
        return budget.peak_in_flight

    assert asyncio.run(scenario()) == 2


def test_the_judged_share_is_a_stable_choice_of_queries() -> None:
    from cloud_service.judge.worker import in_share

    chosen = [in_share(f"q-{i}", 0.25) for i in range(4000)]

    assert sum(chosen) / len(chosen) == pytest.approx(0.25, abs=0.03)
    assert chosen == [in_share(f"q-{i}", 0.25) for i in range(4000)]  # every worker picks the same ones
    assert not any(in_share(f"q-{i}", 0.0) for i in range(100))
