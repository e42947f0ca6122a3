"""Outcome records, upload batches and acks survive the wire, and bad records name their field."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from confroute.contract import (
    Label,
    LabelSource,
    OutcomeAck,
    OutcomeBatch,
    OutcomeRecord,
    RejectedOutcome,
    RoutingMode,
)
from confroute.errors import InvalidInput
from confroute.v1 import outcomes_pb2
from tests.factories import escalated, outcome

START = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def a_record(**changes: Any) -> OutcomeRecord:
    """An escalated, labelled record with texts whose timestamps carry microseconds."""
    fields: dict[str, Any] = {
        "mode": RoutingMode.PRE,
        "signals": {"probe_tbg": 0.2},
        "label": Label.CORRECT,
        "label_source": LabelSource.REFERENCE,
        "started_at": START,
        "finished_at": START + timedelta(milliseconds=260),
        "prompt_text": "2+2?",
        "answer_text": "4",
    }
    return escalated(**{**fields, **changes})


def a_local_unlabelled_record() -> OutcomeRecord:
    return outcome()


def test_a_record_round_trips_through_protobuf() -> None:
    assert OutcomeRecord.from_pb(a_record().to_pb()) == a_record()


def test_a_local_unlabelled_record_without_texts_round_trips() -> None:
    decoded = OutcomeRecord.from_pb(a_local_unlabelled_record().to_pb())
    assert decoded == a_local_unlabelled_record()
    assert decoded.cloud_model is None and decoded.latency.cloud_ms is None and decoded.prompt_text is None


def test_an_escalated_record_carries_the_edge_draft_through_protobuf() -> None:
    record = a_record(mode=RoutingMode.POST, edge_draft_text="2 + 2 = 5")
    pb = record.to_pb()
    assert pb.HasField("edge_draft_text") and pb.edge_draft_text == "2 + 2 = 5"
    assert OutcomeRecord.from_pb(pb) == record


def test_a_record_without_a_draft_leaves_the_field_unset_on_the_wire() -> None:
    pb = a_record().to_pb()
    assert not pb.HasField("edge_draft_text")
    assert OutcomeRecord.from_pb(pb).edge_draft_text is None


def test_an_empty_draft_is_kept_apart_from_no_draft() -> None:
    assert OutcomeRecord.from_pb(a_record(edge_draft_text="").to_pb()).edge_draft_text == ""


def test_timestamps_come_back_as_aware_utc_datetimes() -> None:
    assert OutcomeRecord.from_pb(a_record().to_pb()).started_at.tzinfo is timezone.utc


def test_a_batch_and_its_ack_round_trip_through_protobuf() -> None:
    batch = OutcomeBatch("b-1", (a_record(), a_local_unlabelled_record()))
    ack = OutcomeAck(
        "b-1", stored=1, duplicate_query_ids=("q-0",), rejected=(RejectedOutcome("q-9", "mode", "x"),)
    )
    assert OutcomeBatch.from_pb(batch.to_pb()) == batch
    assert OutcomeAck.from_pb(ack.to_pb()) == ack


def test_a_bad_record_in_a_batch_is_named_by_its_index() -> None:
    pb = OutcomeBatch("b-1", (a_record(), a_record(query_id="q-2"))).to_pb()
    pb.records[1].propensity = 0.0
    with pytest.raises(InvalidInput) as caught:
        OutcomeBatch.from_pb(pb)
    assert caught.value.field == "records[1].propensity"


def test_partitioning_a_batch_keeps_good_records_and_rejects_bad_ones() -> None:
    pb = OutcomeBatch("b-1", (a_record(), a_record(query_id="q-2"))).to_pb()
    pb.records[1].mode = 0
    batch, rejected = OutcomeBatch.partition_pb(pb)
    assert batch.records == (a_record(),)
    assert [(r.query_id, r.field) for r in rejected] == [("q-2", "mode")]


def test_a_batch_without_an_id_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        OutcomeBatch.from_pb(outcomes_pb2.UploadOutcomesRequest())
    assert caught.value.field == "batch_id"


def test_an_ack_with_a_negative_count_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        OutcomeAck.from_pb(outcomes_pb2.UploadOutcomesResponse(batch_id="b", stored=-1))
    assert caught.value.field == "stored"


Mutation = Callable[[outcomes_pb2.OutcomeRecord], None]
RECORD_ERRORS: list[tuple[str, Mutation]] = [
    ("query_id", lambda pb: setattr(pb, "query_id", "")),
    ("device_id", lambda pb: setattr(pb, "device_id", " ")),
    ("edge_model.id", lambda pb: pb.ClearField("edge_model")),
    ("cloud_model.version", lambda pb: pb.cloud_model.ClearField("version")),
    ("mode", lambda pb: setattr(pb, "mode", 8)),
    ("decision", lambda pb: setattr(pb, "decision", 0)),
    ("decision", lambda pb: setattr(pb, "decision", 99)),
    ("answered_by", lambda pb: setattr(pb, "answered_by", 0)),
    ("signals[probe_tbg]", lambda pb: pb.signals.__setitem__("probe_tbg", math.inf)),
    ("propensity", lambda pb: setattr(pb, "propensity", -0.5)),
    ("latency.edge_ms", lambda pb: setattr(pb.latency, "edge_ms", -1.0)),
    ("latency.cloud_ms", lambda pb: setattr(pb.latency, "cloud_ms", math.nan)),
    ("latency.total_ms", lambda pb: setattr(pb.latency, "total_ms", math.nan)),
    ("label", lambda pb: setattr(pb, "label", 5)),
    ("label_source", lambda pb: setattr(pb, "label_source", 0)),
    ("label_source", lambda pb: setattr(pb, "label_source", 77)),
    ("started_at", lambda pb: pb.ClearField("started_at")),
    ("finished_at", lambda pb: pb.ClearField("finished_at")),
    ("finished_at", lambda pb: setattr(pb.finished_at, "seconds", pb.started_at.seconds - 1)),
]


@pytest.mark.parametrize(("field", "mutate"), RECORD_ERRORS, ids=[f for f, _ in RECORD_ERRORS])
def test_an_invalid_record_is_rejected_naming_the_field(field: str, mutate: Mutation) -> None:
    pb = a_record().to_pb()
    mutate(pb)
    with pytest.raises(InvalidInput) as caught:
        OutcomeRecord.from_pb(pb)
    assert caught.value.field == field


def test_a_label_source_without_a_label_is_rejected() -> None:
    pb = a_local_unlabelled_record().to_pb()
    pb.label_source = outcomes_pb2.LABEL_SOURCE_USER_FEEDBACK
    with pytest.raises(InvalidInput) as caught:
        OutcomeRecord.from_pb(pb)
    assert caught.value.field == "label_source"
