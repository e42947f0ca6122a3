"""EscalationService over a real gRPC server and a real tritonserver."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from confroute.contract import (
    AnsweredBy,
    ChatMessage,
    ChatRole,
    Decision,
    EscalationRequest,
    GenerationParams,
    ModelRef,
    RoutingMode,
)
from confroute.v1 import escalation_pb2

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service, ServiceFactory

TIMEOUT_S = 10.0


def escalation(text: str = "the quick brown fox", **params: Any) -> escalation_pb2.Escalation:
    request = EscalationRequest(
        query_id="q-1",
        device_id="device-1",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, text),),
        params=GenerationParams(**({"max_tokens": 64} | params)),
        mode=RoutingMode.PRE,
        signals={"p_correct": 0.31},
        policy_version="v7",
        propensity=1.0,
    )
    return request.to_pb()


def escalate(service: Service, pb: escalation_pb2.Escalation, timeout_s: float = TIMEOUT_S) -> Any:
    return service.escalation.Escalate(escalation_pb2.EscalateRequest(escalation=pb), timeout=timeout_s)


def stream(service: Service, pb: escalation_pb2.Escalation, timeout_s: float = TIMEOUT_S) -> Any:
    return service.escalation.EscalateStream(escalation_pb2.EscalateStreamRequest(escalation=pb), timeout=timeout_s)


def test_a_unary_escalation_returns_the_echoed_answer(service: Service) -> None:
    answer = escalate(service, escalation("the quick brown fox")).answer

    assert answer.text == "the quick brown fox"
    assert answer.model.id == "echo"
    assert answer.finish_reason == escalation_pb2.FINISH_REASON_STOP
    assert answer.timings.total_ms > 0


def test_a_streamed_escalation_yields_deltas_then_the_final_answer(service: Service) -> None:
    events = list(stream(service, escalation("the quick brown fox")))

    deltas = [event.delta.text for event in events[:-1]]
    assert deltas == ["the", " quick", " brown", " fox"]
    assert all(event.WhichOneof("event") == "delta" for event in events[:-1])
    assert events[-1].final.text == "the quick brown fox"
    assert events[-1].final.usage.completion_tokens == 4


def test_every_answered_escalation_is_recorded_in_the_outcome_log(service: Service) -> None:
    escalate(service, escalation())
    list(stream(service, escalation()))

    service.wait_for(lambda: len(service.log.recorded) == 2, "two records")
    record = service.log.recorded[0]
    assert (record.query_id, record.device_id, record.cohort) == ("q-1", "device-1", "beta")
    assert (record.decision, record.answered_by) == (Decision.ESCALATED, AnsweredBy.CLOUD)
    assert record.cloud_model is not None and record.cloud_model.id == "echo"
    assert record.latency.cloud_ms is not None and record.latency.cloud_ms > 0
    assert record.signals == {"p_correct": 0.31} and record.policy_version == "v7"
    assert record.prompt_text is None and record.answer_text is None  # retain_text is off
    assert record.edge_draft_text is None


def test_texts_are_recorded_only_when_the_service_retains_them(make_service: ServiceFactory) -> None:
    service = make_service(retain_text=True)

    escalate(service, escalation("hello there"))

    service.wait_for(lambda: len(service.log.recorded) == 1, "a record")
    assert service.log.recorded[0].prompt_text == "user: hello there"
    assert service.log.recorded[0].answer_text == "hello there"


def test_the_edge_draft_is_recorded_for_the_judge_only_when_texts_are_retained(make_service: ServiceFactory) -> None:
    pb = escalation("what is 2+2?")
    pb.draft_answer = "5"
    retained, withheld = make_service(retain_text=True), make_service(retain_text=False)

    escalate(retained, pb)
    escalate(withheld, pb)

    retained.wait_for(lambda: len(retained.log.recorded) == 1, "a record")
    withheld.wait_for(lambda: len(withheld.log.recorded) == 1, "a record")
    assert retained.log.recorded[0].edge_draft_text == "5"
    assert withheld.log.recorded[0].edge_draft_text is None


def test_a_shadow_escalation_is_recorded_as_the_local_answer_it_shadows(service: Service) -> None:
    pb = escalation()
    pb.shadow, pb.propensity = True, 0.05

    escalate(service, pb)

    service.wait_for(lambda: len(service.log.recorded) == 1, "a record")
    record = service.log.recorded[0]
    assert (record.decision, record.answered_by, record.shadow) == (Decision.LOCAL, AnsweredBy.EDGE, True)
    assert record.propensity == 0.05


def _without_messages() -> escalation_pb2.Escalation:
    pb = escalation()
    del pb.messages[:]
    return pb


def _with(**fields: Any) -> escalation_pb2.Escalation:
    pb = escalation()
    for path, value in fields.items():
        target = pb
        *parents, name = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)
    return pb


@pytest.mark.parametrize(
    ("request_pb", "field"),
    [
        (_without_messages(), "messages"),
        (_with(query_id=""), "query_id"),
        (_with(mode=99), "mode"),  # an enum value this server does not know
        (_with(mode=0), "mode"),
        (_with(params__max_tokens=-1), "params.max_tokens"),
        (_with(params__temperature=math.nan), "params.temperature"),
        (_with(params__temperature=-0.5), "params.temperature"),
        (_with(params__top_p=0.0), "params.top_p"),
        (_with(propensity=0.0), "propensity"),
        (_with(edge_model__version=""), "edge_model.version"),
    ],
)
def test_a_bad_escalation_is_invalid_argument_naming_the_field(
    service: Service, request_pb: escalation_pb2.Escalation, field: str
) -> None:
    for call in (escalate, lambda s, pb: list(stream(s, pb))):
        with pytest.raises(grpc.RpcError) as caught:
            call(service, request_pb)

        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in caught.value.details()


def test_a_role_that_is_not_set_is_named_by_its_message_index(service: Service) -> None:
    pb = escalation()
    pb.messages.add(content="and another")  # role left unset

    with pytest.raises(grpc.RpcError) as caught:
        escalate(service, pb)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "messages[1].role" in caught.value.details()


def test_bytes_that_are_not_utf8_in_a_string_field_are_refused(service: Service) -> None:
    # Python cannot build such a message, but a raw call can send one.
    pb = escalation()
    pb.query_id = "QQ"
    raw = escalation_pb2.EscalateRequest(escalation=pb).SerializeToString().replace(b"QQ", b"\xff\xfe")
    call = service.channel.unary_unary("/confroute.v1.EscalationService/Escalate")

    with pytest.raises(grpc.RpcError) as caught:
        call(raw, timeout=TIMEOUT_S)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("the request is not a valid message")
    assert "UTF-8" in caught.value.details()


def test_a_deadline_shorter_than_the_models_work_is_deadline_exceeded(make_service: ServiceFactory) -> None:
    service = make_service(triton_model="slow_echo")
    started = time.monotonic()

    with pytest.raises(grpc.RpcError) as caught:
        escalate(service, escalation("one two three four five six"), timeout_s=0.4)

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.0  # the model needed 1.2 s


def test_the_servers_deadline_cap_applies_when_the_client_allows_more(make_service: ServiceFactory) -> None:
    service = make_service(triton_model="slow_echo", max_deadline_s=0.3)
    started = time.monotonic()

    with pytest.raises(grpc.RpcError) as caught:
        escalate(service, escalation("one two three four five six"), timeout_s=TIMEOUT_S)

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "DEADLINE_EXCEEDED" in caught.value.details()  # the server's answer, not the client's timer
    assert time.monotonic() - started < 1.0


def test_a_full_in_flight_limit_is_resource_exhausted_at_once(make_service: ServiceFactory) -> None:
    service = make_service(triton_model="slow_echo", max_inflight=1)
    busy = stream(service, escalation("one two three four five six seven eight"))
    assert next(busy).delta.text == "one"  # the only slot is taken
    started = time.monotonic()

    with pytest.raises(grpc.RpcError) as caught:
        escalate(service, escalation("hi"))

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - started < 0.5  # refused, not queued behind the 1.6 s stream
    busy.cancel()
    service.wait_for(lambda: _answers(service), "the slot to be free again")


def _answers(service: Service) -> bool:
    try:
        escalate(service, escalation("hi"))
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        return False
    return True
