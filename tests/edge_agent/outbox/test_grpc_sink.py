"""The gRPC sink: one stream per batch under a deadline, grpc errors turned into domain errors by code."""

from __future__ import annotations

import socket

import grpc
import pytest

from confroute.contract import OutcomeBatch
from confroute.errors import (
    ConfrouteError,
    DeadlineExceeded,
    InvalidInput,
    Overloaded,
    PermissionDenied,
    RuntimeFailure,
    Unavailable,
)
from edge_agent.outbox import GrpcOutcomeSink
from tests.edge_agent.outbox.fake_cloud import FakeCloud
from tests.factories import outcomes


def a_batch(batch_id: str = "b-1") -> OutcomeBatch:
    return OutcomeBatch(batch_id, tuple(outcomes(3)))


def test_a_batch_comes_back_acked_with_what_the_cloud_stored(sink: GrpcOutcomeSink, cloud: FakeCloud) -> None:
    sink.upload(OutcomeBatch("b-0", tuple(outcomes(1))))

    ack = sink.upload(a_batch())

    assert (ack.batch_id, ack.stored, ack.duplicate_query_ids) == ("b-1", 2, ("q-0",))


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, Overloaded),
        (grpc.StatusCode.INTERNAL, RuntimeFailure),
        (grpc.StatusCode.OUT_OF_RANGE, InvalidInput),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDenied),
        (grpc.StatusCode.UNIMPLEMENTED, Unavailable),
    ],
)
def test_a_failing_cloud_raises_the_domain_error_of_its_status_code(
    sink: GrpcOutcomeSink, cloud: FakeCloud, code: grpc.StatusCode, error: type[ConfrouteError]
) -> None:
    cloud.fail_with = code
    with pytest.raises(error) as caught:
        sink.upload(a_batch())
    assert isinstance(caught.value.__cause__, grpc.RpcError)


def test_a_batch_the_cloud_refuses_as_a_whole_is_invalid_input(sink: GrpcOutcomeSink) -> None:
    with pytest.raises(InvalidInput, match="batch_id"):
        sink.upload(a_batch(batch_id=""))


def test_a_cloud_slower_than_the_deadline_is_deadline_exceeded(cloud: FakeCloud, cloud_port: int) -> None:
    cloud.delay_s = 2.0
    with grpc.insecure_channel(f"127.0.0.1:{cloud_port}") as channel, pytest.raises(DeadlineExceeded):
        GrpcOutcomeSink(channel, deadline_s=0.1).upload(a_batch())


def test_a_cloud_nobody_listens_for_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(Unavailable):
        GrpcOutcomeSink(channel, deadline_s=2.0).upload(a_batch())
