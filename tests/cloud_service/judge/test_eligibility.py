"""Which queries the judge may label, and which texts it compares: the edge's answer (a shadow query's
answer, an escalation's draft) against the cloud's."""

from __future__ import annotations

from dataclasses import replace

from cloud_service.judge.eligibility import Comparison, comparison, consistent, judgeable
from confroute.contract.enums import AnsweredBy, Decision, Label, LabelSource
from tests.cloud_service.judge.test_judge_worker import escalated, shadowed


def test_a_shadow_query_compares_the_answer_the_user_got_with_the_clouds() -> None:
    device, service = shadowed("q-1")
    assert comparison(device, service) == Comparison("user: What is 2 + 2?", "2 + 2 = 4", "4")


def test_an_escalation_compares_the_edge_draft_with_the_clouds_answer() -> None:
    device, service = escalated("q-1", draft="2 + 2 = 5")
    assert comparison(device, service) == Comparison("user: What is 2 + 2?", "2 + 2 = 5", "4")


def test_an_escalation_draft_and_answer_may_come_from_either_record() -> None:
    device, service = escalated("q-1", draft=None)
    from_service = replace(service, edge_draft_text="five", answer_text=None)
    from_device = replace(device, answer_text="4")
    assert comparison(from_device, from_service) == Comparison("user: What is 2 + 2?", "five", "4")


def test_an_escalation_without_a_draft_is_not_compared() -> None:
    assert comparison(*escalated("q-1", draft=None)) == "no_edge_draft"


def test_missing_texts_are_not_compared() -> None:
    device, service = escalated("q-1")
    assert comparison(device, replace(service, prompt_text=None)) == "texts_not_retained"
    assert comparison(device, replace(service, answer_text=None)) == "texts_not_retained"
    shadow_device, shadow_service = shadowed("q-2")
    assert comparison(replace(shadow_device, answer_text=None), shadow_service) == "texts_not_retained"


def test_a_local_query_without_shadow_or_a_labelled_one_is_not_judgeable() -> None:
    device, _ = escalated("q-1")
    assert judgeable(device) and consistent(device)
    assert not judgeable(replace(device, decision=Decision.LOCAL, answered_by=AnsweredBy.EDGE))
    assert not judgeable(replace(device, label=Label.CORRECT, label_source=LabelSource.REFERENCE))


def test_an_escalation_that_fell_back_to_the_edge_is_not_judged() -> None:
    device, _ = escalated("q-1")
    assert not consistent(replace(device, decision=Decision.ESCALATION_UNAVAILABLE, answered_by=AnsweredBy.EDGE))
    assert not consistent(replace(device, answered_by=AnsweredBy.EDGE))  # an escalation the cloud did not answer
    shadow_device, _ = shadowed("q-2")
    assert consistent(shadow_device)
