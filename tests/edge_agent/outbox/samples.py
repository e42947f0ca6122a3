"""Sample outcome records for the outbox tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from confroute.contract import AnsweredBy, Decision, Latency, ModelRef, OutcomeRecord, RoutingMode

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=timezone.utc)


def outcome(query_id: str = "q-1", **changes: Any) -> OutcomeRecord:
    """A query answered on the edge; ``changes`` override any field."""
    record = OutcomeRecord(
        query_id=query_id,
        device_id="jetson-3",
        cohort="beta",
        edge_model=ModelRef("smollm2-135m", "2026.01"),
        mode=RoutingMode.POST,
        decision=Decision.LOCAL,
        answered_by=AnsweredBy.EDGE,
        latency=Latency(edge_ms=95.0, total_ms=97.5),
        started_at=T0,
        finished_at=T0 + timedelta(milliseconds=97),
        signals={"seq_conf": 0.91, "probe_slt": 0.88},
        policy_version="p-1",
    )
    return replace(record, **changes)


def outcomes(count: int, prefix: str = "q") -> list[OutcomeRecord]:
    """``count`` records with ids ``<prefix>-0``, ``<prefix>-1``, ..."""
    return [outcome(f"{prefix}-{i}") for i in range(count)]
