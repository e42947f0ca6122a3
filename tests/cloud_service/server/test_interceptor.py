"""The interceptor's table: each domain error is answered with its status, anything else is INTERNAL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from confroute.contract import ChatMessage, ChatRole, EscalationRequest, GenerationParams, ModelRef, RoutingMode
from confroute.errors import (
    DeadlineExceeded,
    InvalidInput,
    InvalidPolicy,
    Overloaded,
    RuntimeFailure,
    Unavailable,
)
from confroute.v1 import escalation_pb2

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service

FailingService = Callable[[Exception], "Service"]
REQUEST = escalation_pb2.EscalateRequest(
    escalation=EscalationRequest(
        query_id="q-1",
        device_id="device-1",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m-instruct", "b1"),
        messages=(ChatMessage(ChatRole.USER, "hi"),),
        params=GenerationParams(max_tokens=16),
        mode=RoutingMode.PRE,
    ).to_pb()
)


def both_calls(service: Service) -> list[Callable[[], Any]]:
    return [
        lambda: service.escalation.Escalate(REQUEST, timeout=5),
        lambda: list(service.escalation.EscalateStream(REQUEST, timeout=5)),
    ]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidInput("too long", field="messages[0].content"), grpc.StatusCode.INVALID_ARGUMENT),
        (InvalidPolicy("bad", field="thresholds.pre"), grpc.StatusCode.INVALID_ARGUMENT),
        (Overloaded("full"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (Unavailable("triton is down"), grpc.StatusCode.UNAVAILABLE),
        (DeadlineExceeded("too slow"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (RuntimeFailure("the model failed"), grpc.StatusCode.INTERNAL),
    ],
)
def test_domain_errors_are_answered_through_the_table(
    service_failing_with: FailingService, error: Exception, code: grpc.StatusCode
) -> None:
    for call in both_calls(service_failing_with(error)):
        with pytest.raises(grpc.RpcError) as caught:
            call()

        assert caught.value.code() == code
        assert str(error) in caught.value.details()


def test_an_invalid_input_message_always_names_its_field(service_failing_with: FailingService) -> None:
    service = service_failing_with(InvalidInput("must be shorter", field="messages[0].content"))

    with pytest.raises(grpc.RpcError) as caught:
        service.escalation.Escalate(REQUEST, timeout=5)

    assert caught.value.details() == "messages[0].content: must be shorter"


def test_a_bug_is_internal_without_its_details_and_logged_once(
    service_failing_with: FailingService, caplog: pytest.LogCaptureFixture
) -> None:
    service = service_failing_with(ZeroDivisionError("secret detail"))

    with caplog.at_level(logging.ERROR), pytest.raises(grpc.RpcError) as caught:
        service.escalation.Escalate(REQUEST, timeout=5)

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Escalate" in errors[0].getMessage()
    assert isinstance(errors[0].exc_info[1], ZeroDivisionError)  # type: ignore[index]
