"""Escalation requests, answers and stream events survive the wire, and bad input names its field."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from confroute.contract import (
    ChatMessage,
    ChatRole,
    EscalationRequest,
    EscalationResponse,
    FinishReason,
    GenerationParams,
    ModelRef,
    RoutingMode,
    Timings,
    TokenDelta,
    Usage,
    stream_event_from_pb,
    stream_event_to_pb,
)
from confroute.errors import InvalidInput
from confroute.v1 import escalation_pb2


def a_request(**changes: object) -> EscalationRequest:
    request = EscalationRequest(
        query_id="q-1",
        device_id="jetson-7",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m", "sha256:abc"),
        messages=(ChatMessage(ChatRole.SYSTEM, "Be brief."), ChatMessage(ChatRole.USER, "2+2?")),
        params=GenerationParams(max_tokens=64, temperature=0.7, top_p=0.9, seed=7, stop=("\n\n",)),
        mode=RoutingMode.HYBRID,
        signals={"probe_tbg": 0.31, "entropy_mean": 1.2, "p_correct": 0.4},
        draft_answer="5",
        policy_version="p-12",
        shadow=True,
        propensity=0.05,
    )
    return replace(request, **changes)  # type: ignore[arg-type]


def an_answer() -> EscalationResponse:
    return EscalationResponse(
        text="4",
        finish_reason=FinishReason.STOP,
        model=ModelRef("qwen2.5-7b", "v3"),
        usage=Usage(prompt_tokens=20, completion_tokens=1),
        timings=Timings(queue_ms=1.5, compute_ms=30.0, total_ms=32.0),
    )


def test_a_request_round_trips_through_protobuf() -> None:
    request = a_request()
    assert EscalationRequest.from_pb(request.to_pb()) == request


def test_a_request_without_draft_seed_or_signals_round_trips() -> None:
    request = a_request(
        draft_answer=None, signals={}, params=GenerationParams(max_tokens=8), shadow=False, propensity=1.0
    )
    decoded = EscalationRequest.from_pb(request.to_pb())
    assert decoded == request
    assert decoded.draft_answer is None and decoded.params.seed is None


def test_a_request_survives_serialization_to_bytes() -> None:
    wire = a_request().to_pb().SerializeToString()
    assert EscalationRequest.from_pb(escalation_pb2.Escalation.FromString(wire)) == a_request()


def test_signals_of_a_request_cannot_be_mutated() -> None:
    with pytest.raises(TypeError):
        a_request().signals["probe_tbg"] = 1.0  # type: ignore[index]


def test_an_answer_round_trips_through_protobuf() -> None:
    assert EscalationResponse.from_pb(an_answer().to_pb()) == an_answer()


def test_a_token_delta_and_a_final_answer_round_trip_as_stream_events() -> None:
    for event in (TokenDelta("4"), an_answer()):
        assert stream_event_from_pb(stream_event_to_pb(event)) == event


def test_a_stream_message_with_no_event_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        stream_event_from_pb(escalation_pb2.EscalateStreamResponse())
    assert caught.value.field == "event"


Mutation = Callable[[escalation_pb2.Escalation], None]


def _clear_messages(pb: escalation_pb2.Escalation) -> None:
    del pb.messages[:]


def _blank_messages(pb: escalation_pb2.Escalation) -> None:
    for message in pb.messages:
        message.content = "  "


REQUEST_ERRORS: list[tuple[str, Mutation]] = [
    ("query_id", lambda pb: setattr(pb, "query_id", "")),
    ("device_id", lambda pb: setattr(pb, "device_id", "")),
    ("edge_model.id", lambda pb: pb.edge_model.ClearField("id")),
    ("edge_model.version", lambda pb: pb.edge_model.ClearField("version")),
    ("edge_model.id", lambda pb: pb.ClearField("edge_model")),
    ("messages", _clear_messages),
    ("messages", _blank_messages),
    ("messages[1].role", lambda pb: setattr(pb.messages[1], "role", 42)),
    ("messages[0].role", lambda pb: setattr(pb.messages[0], "role", 0)),
    ("params.max_tokens", lambda pb: setattr(pb.params, "max_tokens", -1)),
    ("params.max_tokens", lambda pb: pb.ClearField("params")),
    ("params.temperature", lambda pb: setattr(pb.params, "temperature", -0.1)),
    ("params.temperature", lambda pb: setattr(pb.params, "temperature", math.nan)),
    ("params.top_p", lambda pb: setattr(pb.params, "top_p", 0.0)),
    ("params.top_p", lambda pb: setattr(pb.params, "top_p", 1.5)),
    ("params.top_p", lambda pb: setattr(pb.params, "top_p", math.nan)),
    ("params.stop[1]", lambda pb: pb.params.stop.append("")),
    ("mode", lambda pb: setattr(pb, "mode", 0)),
    ("mode", lambda pb: setattr(pb, "mode", 17)),
    ("signals[p_correct]", lambda pb: pb.signals.__setitem__("p_correct", math.nan)),
    ("propensity", lambda pb: setattr(pb, "propensity", 0.0)),
    ("propensity", lambda pb: setattr(pb, "propensity", 1.01)),
    ("propensity", lambda pb: setattr(pb, "propensity", math.nan)),
]


@pytest.mark.parametrize(("field", "mutate"), REQUEST_ERRORS, ids=[f for f, _ in REQUEST_ERRORS])
def test_an_invalid_request_is_rejected_naming_the_field(field: str, mutate: Mutation) -> None:
    pb = a_request().to_pb()
    mutate(pb)
    with pytest.raises(InvalidInput) as caught:
        EscalationRequest.from_pb(pb)
    assert caught.value.field == field


AnswerMutation = Callable[[escalation_pb2.CloudAnswer], None]
ANSWER_ERRORS: list[tuple[str, AnswerMutation]] = [
    ("finish_reason", lambda pb: setattr(pb, "finish_reason", 0)),
    ("finish_reason", lambda pb: setattr(pb, "finish_reason", 9)),
    ("model.id", lambda pb: pb.ClearField("model")),
    ("usage.prompt_tokens", lambda pb: setattr(pb.usage, "prompt_tokens", -1)),
    ("usage.completion_tokens", lambda pb: setattr(pb.usage, "completion_tokens", -3)),
    ("timings.queue_ms", lambda pb: setattr(pb.timings, "queue_ms", -1.0)),
    ("timings.compute_ms", lambda pb: setattr(pb.timings, "compute_ms", math.inf)),
    ("timings.total_ms", lambda pb: setattr(pb.timings, "total_ms", math.nan)),
]


@pytest.mark.parametrize(("field", "mutate"), ANSWER_ERRORS, ids=[f for f, _ in ANSWER_ERRORS])
def test_an_invalid_answer_is_rejected_naming_the_field(field: str, mutate: AnswerMutation) -> None:
    pb = an_answer().to_pb()
    mutate(pb)
    with pytest.raises(InvalidInput) as caught:
        EscalationResponse.from_pb(pb)
    assert caught.value.field == field
