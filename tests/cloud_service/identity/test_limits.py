"""Every size bounded, and each device held to its rate (across replicas) and its concurrent calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest

from confroute.contract.enums import Label, LabelSource
from confroute.contract.policy import PolicyRequest
from confroute.contract.upload import OutcomeBatch
from tests.cloud_service.identity.stack import EDGE_MODEL, bearer, escalation, stubs
from tests.cloud_service.identity.test_authenticated_service import code_of, policy
from tests.cloud_service.outcomes.samples import outcome

if TYPE_CHECKING:
    from tests.cloud_service.identity.conftest import SecureFactory
    from tests.cloud_service.identity.stack import Fleet

T = 5.0


def test_oversized_requests_are_refused_before_any_work(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False, max_tokens=512, max_messages=8, max_prompt_bytes=1000,
                             max_message_bytes=64 * 1024)
    token = fleet.enroll_token("dev-a")
    escalate = stubs(service.channel())[0].Escalate

    def refused(request: Any) -> grpc.StatusCode:
        return code_of(lambda: escalate(request, metadata=bearer(token), timeout=T))

    many = escalation("dev-a")
    many.escalation.messages.extend([many.escalation.messages[0]] * 8)
    assert refused(escalation("dev-a", max_tokens=10**6)) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(escalation("dev-a", seed=-1)) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(many) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(escalation("dev-a", text="x" * 1001)) == grpc.StatusCode.INVALID_ARGUMENT
    assert refused(escalation("dev-a", text="x" * 100_000)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert escalate(escalation("dev-a", max_tokens=512), metadata=bearer(token), timeout=T).answer.text


def test_a_flood_from_one_device_is_rate_limited_with_a_retry_delay_while_another_is_served(
    fleet: Fleet, secure_service: SecureFactory
) -> None:
    service = secure_service(mtls=False, rate_escalations_per_s=1.0, rate_escalation_burst=3)
    flooder, neighbour = fleet.enroll_token("dev-a"), fleet.enroll_token("dev-b")
    escalate = stubs(service.channel())[0].Escalate
    for _ in range(3):
        escalate(escalation("dev-a"), metadata=bearer(flooder), timeout=T)

    with pytest.raises(grpc.RpcError) as caught:
        escalate(escalation("dev-a"), metadata=bearer(flooder), timeout=T)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry_after = dict(caught.value.trailing_metadata())["retry-after-ms"]
    assert 0 < int(retry_after) <= 1000
    assert escalate(escalation("dev-b"), metadata=bearer(neighbour), timeout=T).answer.text


def test_the_rate_holds_across_replicas(fleet: Fleet, secure_service: SecureFactory) -> None:
    replicas = [secure_service(mtls=False, rate_escalations_per_s=0.1, rate_escalation_burst=4) for _ in range(2)]
    token = fleet.enroll_token("dev-a")
    admitted = 0
    for i in range(8):
        try:
            stubs(replicas[i % 2].channel())[0].Escalate(escalation("dev-a"), metadata=bearer(token), timeout=T)
            admitted += 1
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    assert admitted == 4


def test_a_device_holds_at_most_its_share_of_watch_streams(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False, max_device_watches=2)
    token = fleet.enroll_token("dev-a", "beta")
    service.publish(policy("beta"))
    watch = stubs(service.channel())[2].WatchPolicy
    wanted = PolicyRequest(EDGE_MODEL, "beta", "dev-a").to_watch_pb()
    open_ = [watch(wanted, metadata=bearer(token), timeout=10.0) for _ in range(2)]
    for stream in open_:
        next(stream)

    third = watch(wanted, metadata=bearer(token), timeout=T)

    assert code_of(lambda: next(third)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    for stream in open_:
        stream.cancel()


def test_an_upload_batch_past_the_bound_is_invalid(fleet: Fleet, secure_service: SecureFactory) -> None:
    service = secure_service(mtls=False, max_batch_records=5)
    token = fleet.enroll_token("dev-a")
    records = tuple(outcome(f"q{i}", device_id="dev-a", label_source=LabelSource.NONE, label=Label.UNKNOWN)
                    for i in range(6))
    upload = stubs(service.channel())[1].UploadOutcomes

    assert code_of(lambda: list(upload(iter([OutcomeBatch("b", records).to_pb()]), metadata=bearer(token),
                                       timeout=T))) == grpc.StatusCode.INVALID_ARGUMENT
    acks = list(upload(iter([OutcomeBatch("b", records[:5]).to_pb()]), metadata=bearer(token), timeout=T))
    assert acks[0].stored == 5
