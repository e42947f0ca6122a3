"""Both directions of gRPC status codes agree: whatever domain error the cloud answers with, the device
reads its status code back as the same kind of error (the cloud's table in cloud_service.server.status,
the device's in edge_agent.cloud.status)."""

from __future__ import annotations

import grpc
import pytest

from cloud_service.server.status import STATUS_FOR, status_for
from confroute.errors import (
    ConfrouteError,
    DeadlineExceeded,
    InvalidInput,
    InvalidPolicy,
    Overloaded,
    PermissionDenied,
    PromptTooLong,
    RuntimeFailure,
    Unauthenticated,
    Unavailable,
)
from edge_agent.cloud.status import MEANINGS, OTHER, meaning

SENT = [InvalidInput("x"), InvalidPolicy("x"), PromptTooLong(10, 5, 8), Overloaded("x"), Unavailable("x"),
        DeadlineExceeded("x"), RuntimeFailure("x"), Unauthenticated("x"), PermissionDenied("x")]


@pytest.mark.parametrize("error", SENT, ids=lambda e: type(e).__name__)
def test_the_device_reads_back_the_kind_of_error_the_cloud_answered_with(error: ConfrouteError) -> None:
    code = status_for(error)
    assert code is not None
    assert isinstance(error, meaning(code).error)


def test_every_code_the_cloud_answers_with_has_a_row_on_the_device() -> None:
    assert set(STATUS_FOR.values()) <= set(MEANINGS)


def test_a_bug_in_the_cloud_is_not_retried_but_counts_against_the_breaker() -> None:
    internal = meaning(grpc.StatusCode.INTERNAL)
    assert (internal.error, internal.retry, internal.breaker_failure) == (RuntimeFailure, False, True)


def test_only_transient_codes_are_retried_and_refusals_do_not_trip_the_breaker() -> None:
    retried = {code for code in grpc.StatusCode if meaning(code).retry}
    assert retried == {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       grpc.StatusCode.DEADLINE_EXCEEDED}
    assert not meaning(grpc.StatusCode.INVALID_ARGUMENT).breaker_failure
    assert not meaning(grpc.StatusCode.PERMISSION_DENIED).breaker_failure
    assert meaning(grpc.StatusCode.UNIMPLEMENTED) is OTHER
