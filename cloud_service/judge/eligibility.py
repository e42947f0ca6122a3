"""Which queries the judge may label, and the texts it compares for each (pure functions).

Two kinds of query have both an edge answer and a cloud answer to the same question:

- a **shadow** query: the user got the edge answer (the device record's ``answer_text``), and the
  cloud answered the shadow request too (the service record's ``answer_text``);
- an **escalated** query whose edge decoded a draft before escalating (``post`` mode, or the post
  stage of ``hybrid``): the draft is ``edge_draft_text`` on whichever record carries it, and the
  cloud's answer the service record's ``answer_text`` (or the device record's, which for an
  escalation is the cloud's answer the user got).

The label always says whether the *edge's* answer was right, which is what recalibration learns.
Texts are present only where the device's privacy rules and the outcome log's ``retain_text`` let
them through; a query with a text missing is not judged.
"""

from __future__ import annotations

from dataclasses import dataclass

from confroute.contract.enums import AnsweredBy, Decision, Label
from confroute.contract.outcome import OutcomeRecord


@dataclass(frozen=True)
class Comparison:
    """What the judge is shown: the question, the edge's answer and the cloud's (the reference)."""

    question: str
    edge_answer: str
    cloud_answer: str


def judgeable(record: OutcomeRecord) -> bool:
    """Whether ``record`` (either origin's) is of a query the judge may label: a shadow query or an
    escalation that the cloud answered, not labelled yet."""
    return (record.shadow or record.decision is Decision.ESCALATED) and record.label is Label.UNKNOWN


def consistent(device: OutcomeRecord) -> bool:
    """Whether the device record agrees with its kind: a shadow query was answered by the edge, an
    escalation by the cloud (one that fell back to the edge is ``escalation_unavailable``)."""
    expected = AnsweredBy.EDGE if device.shadow else AnsweredBy.CLOUD
    return judgeable(device) and device.answered_by is expected


def comparison(device: OutcomeRecord, service: OutcomeRecord) -> Comparison | str:
    """The texts to compare from the device's and the service's records of one query, or why there are
    none: ``no_edge_draft`` (an escalation decided before the edge decoded anything, or whose draft
    was not kept) or ``texts_not_retained``."""
    question = service.prompt_text or device.prompt_text
    draft = device.edge_draft_text or service.edge_draft_text
    if device.shadow:
        edge, cloud = device.answer_text or draft, service.answer_text
    else:
        edge, cloud = draft, service.answer_text or device.answer_text
    if question and cloud and not device.shadow and not edge:
        return "no_edge_draft"
    if not (question and edge and cloud):
        return "texts_not_retained"
    return Comparison(question, edge, cloud)
