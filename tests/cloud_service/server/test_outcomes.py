"""OutcomesService: batches go up, each is acked once stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from confroute.contract.enums import Label, LabelSource
from confroute.v1 import outcomes_pb2
from tests.factories import COHORT, EDGE, escalated, outcome

if TYPE_CHECKING:
    from tests.cloud_service.server.conftest import Service

TIMEOUT_S = 10.0


def record(query_id: str) -> outcomes_pb2.OutcomeRecord:
    return outcome(query_id).to_pb()


def batch(batch_id: str, *records: outcomes_pb2.OutcomeRecord) -> outcomes_pb2.UploadOutcomesRequest:
    return outcomes_pb2.UploadOutcomesRequest(batch_id=batch_id, records=records)


def upload(service: Service, *batches: outcomes_pb2.UploadOutcomesRequest, acks: list[Any] | None = None) -> list[Any]:
    """Sends the batches one at a time, each after the previous one's ack; ``acks`` collects the acks."""
    acked = threading.Semaphore(1)

    def requests() -> Iterator[outcomes_pb2.UploadOutcomesRequest]:
        for item in batches:
            assert acked.acquire(timeout=TIMEOUT_S)
            yield item

    acks = [] if acks is None else acks
    for ack in service.outcomes.UploadOutcomes(requests(), timeout=TIMEOUT_S):
        acks.append(ack)
        acked.release()
    return acks


def test_each_batch_is_acked_with_what_was_stored_and_what_was_already_there(bare_service: Service) -> None:
    acks = upload(bare_service, batch("b1", record("q1"), record("q2")), batch("b2", record("q2"), record("q3")))

    assert [(a.batch_id, a.stored, list(a.duplicate_query_ids)) for a in acks] == [
        ("b1", 2, []),
        ("b2", 1, ["q2"]),
    ]
    assert set(bare_service.log.stored) == {"q1", "q2", "q3"}


def test_invalid_records_are_rejected_by_field_while_the_rest_are_stored(bare_service: Service) -> None:
    bad = record("q9")
    bad.propensity = 2.0

    (ack,) = upload(bare_service, batch("b1", record("q1"), bad))

    assert ack.stored == 1
    assert [(r.query_id, r.field) for r in ack.rejected] == [("q9", "propensity")]
    assert "q9" not in bare_service.log.stored


def test_a_batch_without_an_id_ends_the_upload_as_invalid_argument(bare_service: Service) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        upload(bare_service, batch("", record("q1")))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch_id" in caught.value.details()
    assert bare_service.log.stored == {}


def test_an_unreachable_log_is_unavailable_and_nothing_is_acked(bare_service: Service) -> None:
    bare_service.log.unavailable = True
    acks: list[Any] = []

    with pytest.raises(grpc.RpcError) as caught:
        upload(bare_service, batch("b1", record("q1")), acks=acks)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert acks == []


def test_stored_uploads_are_counted_by_decision_policy_version_and_label_source(bare_service: Service) -> None:
    labelled = outcome("q2", label=Label.CORRECT, label_source=LabelSource.USER_FEEDBACK).to_pb()
    upload(bare_service, batch("b1", record("q1"), labelled, escalated("q3").to_pb()), batch("b2", record("q1")))

    registry = bare_service.running.metrics.registry
    partition = {"edge_model_version": EDGE.version, "cohort": COHORT}
    assert registry.get_sample_value("confroute_outcome_decisions_total", partition | {"decision": "local"}) == 2.0
    assert registry.get_sample_value("confroute_outcome_decisions_total", partition | {"decision": "escalated"}) == 1.0
    assert registry.get_sample_value("confroute_outcome_policy_versions_total",
                                     partition | {"policy_version": "p-3"}) == 3.0
    assert registry.get_sample_value("confroute_outcome_labels_total", {"source": "user_feedback"}) == 1.0
