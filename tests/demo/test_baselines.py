"""The demo's yardsticks: per question which side was right and where the router sent it; the summary counts."""

from __future__ import annotations

from demo.baselines import SideResults, comparison, per_side
from edge_agent.answer import AgentAnswer

QUESTIONS = [{"question": f"q{i}", "gold": "7"} for i in range(4)]


def _answer(side: str, text: str) -> AgentAnswer:
    return AgentAnswer(query_id="x", text=text, side=side, model="m", decision="d",  # type: ignore[arg-type]
                       confidence=0.5, threshold=0.5, policy_version="builtin", escalation_unavailable=False,
                       finish_reason="stop", prompt_tokens=1, completion_tokens=1, latency_ms=1.0)


def test_each_question_says_whether_the_routing_gained_or_missed() -> None:
    answers = [_answer("cloud", "7"), _answer("edge", "3"), _answer("edge", "7"), _answer("cloud", "7")]
    sides = SideResults(edge=(False, False, True, True), cloud=(True, True, False, True))
    lines = per_side(answers, sides)
    assert [line.split("  ")[-1].strip() for line in lines[1:]] == [
        "escalated: gained", "kept: missed a gain", "kept: right call", "escalated: no gain (a wasted call)"]
    summary = comparison(QUESTIONS, [("routed", answers)], sides)
    assert summary[1].split() == ["routed", "3/4", "2/4"]
    assert summary[2].split() == ["always-edge", "2/4", "0/4"] and summary[3].split() == ["always-cloud", "3/4", "4/4"]
    assert summary[4] == "the cloud helps on 2 question(s) (edge wrong, cloud right); routed sent 1 of them up"


def test_both_routed_passes_are_compared_with_each_side_alone() -> None:
    before = [_answer("edge", "3")] * 4
    after = [_answer("cloud", "7"), _answer("cloud", "7"), _answer("edge", "7"), _answer("edge", "3")]
    sides = SideResults(edge=(False, False, True, False), cloud=(True, True, False, True))
    summary = comparison(QUESTIONS, [("routed before", before), ("routed after", after)], sides)
    assert [line.split()[-2:] for line in summary[1:5]] == [["0/4", "0/4"], ["3/4", "2/4"], ["1/4", "0/4"],
                                                            ["3/4", "4/4"]]
    assert summary[-2:] == [
        "the cloud helps on 3 question(s) (edge wrong, cloud right); routed before sent 0 of them up",
        "the cloud helps on 3 question(s) (edge wrong, cloud right); routed after sent 2 of them up"]


def test_without_the_cloud_model_only_the_edge_baseline_is_shown() -> None:
    answers = [_answer("edge", "7")] * 4
    lines = comparison(QUESTIONS, [("routed", answers)], SideResults(edge=(True,) * 4, cloud=None))
    assert len(lines) == 3 and per_side(answers, SideResults((True,) * 4, None))[1].endswith("kept")
