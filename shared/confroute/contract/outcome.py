"""What happened to one query, as a device records it and the cloud stores it for recalibration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from confroute.contract import _checks as check
from confroute.contract.common import ModelRef, timestamp_from_pb, timestamp_to_pb
from confroute.contract.enums import (
    ANSWERED_BY,
    DECISION,
    LABEL,
    LABEL_SOURCE,
    ROUTING_MODE,
    AnsweredBy,
    Decision,
    Label,
    LabelSource,
    RoutingMode,
)
from confroute.errors import InvalidInput
from confroute.v1 import outcomes_pb2


@dataclass(frozen=True)
class Latency:
    """Wall-clock milliseconds: on the edge, to the cloud (None when not called), and end to end."""

    edge_ms: float
    total_ms: float
    cloud_ms: float | None = None

    def to_pb(self) -> outcomes_pb2.Latency:
        return outcomes_pb2.Latency(edge_ms=self.edge_ms, cloud_ms=self.cloud_ms, total_ms=self.total_ms)

    @classmethod
    def from_pb(cls, pb: outcomes_pb2.Latency, path: str = "latency") -> Latency:
        cloud_ms = None
        if pb.HasField("cloud_ms"):
            cloud_ms = check.at_least(pb.cloud_ms, 0.0, check.join(path, "cloud_ms"))
        return cls(
            edge_ms=check.at_least(pb.edge_ms, 0.0, check.join(path, "edge_ms")),
            total_ms=check.at_least(pb.total_ms, 0.0, check.join(path, "total_ms")),
            cloud_ms=cloud_ms,
        )


@dataclass(frozen=True)
class OutcomeRecord:
    """Everything the cloud needs to learn from one query. ``query_id`` is the idempotency key.

    ``propensity`` in (0, 1] is the probability of the logged action (1.0 if deterministic).
    A known label needs a source; prompt and answer texts are present only where privacy allows, and so
    is ``edge_draft_text``: the draft the edge decoded before it escalated, which a judge compares with
    the cloud's answer.
    """

    query_id: str
    device_id: str
    cohort: str
    edge_model: ModelRef
    mode: RoutingMode
    decision: Decision
    answered_by: AnsweredBy
    latency: Latency
    started_at: datetime
    finished_at: datetime
    cloud_model: ModelRef | None = None
    signals: Mapping[str, float] = field(default_factory=dict, hash=False)
    policy_version: str = ""
    shadow: bool = False
    propensity: float = 1.0
    label: Label = Label.UNKNOWN
    label_source: LabelSource = LabelSource.NONE
    prompt_text: str | None = None
    answer_text: str | None = None
    edge_draft_text: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "signals", check.frozen_mapping(self.signals))

    def to_pb(self) -> outcomes_pb2.OutcomeRecord:
        return outcomes_pb2.OutcomeRecord(
            query_id=self.query_id,
            device_id=self.device_id,
            cohort=self.cohort,
            edge_model=self.edge_model.to_pb(),
            cloud_model=self.cloud_model.to_pb() if self.cloud_model else None,
            mode=ROUTING_MODE.to_pb(self.mode),
            signals=dict(self.signals),
            decision=DECISION.to_pb(self.decision),
            answered_by=ANSWERED_BY.to_pb(self.answered_by),
            policy_version=self.policy_version,
            shadow=self.shadow,
            propensity=self.propensity,
            latency=self.latency.to_pb(),
            label=LABEL.to_pb(self.label),
            label_source=LABEL_SOURCE.to_pb(self.label_source),
            started_at=timestamp_to_pb(self.started_at),
            finished_at=timestamp_to_pb(self.finished_at),
            prompt_text=self.prompt_text,
            answer_text=self.answer_text,
            edge_draft_text=self.edge_draft_text,
        )

    @classmethod
    def from_pb(cls, pb: outcomes_pb2.OutcomeRecord) -> OutcomeRecord:
        label, label_source = _label_from_pb(pb)
        started_at, finished_at = _interval_from_pb(pb)
        return cls(
            query_id=check.nonempty(pb.query_id, "query_id"),
            device_id=check.nonempty(pb.device_id, "device_id"),
            cohort=pb.cohort,
            edge_model=ModelRef.from_pb(pb.edge_model, "edge_model"),
            cloud_model=ModelRef.from_pb(pb.cloud_model, "cloud_model")
            if pb.HasField("cloud_model")
            else None,
            mode=ROUTING_MODE.from_pb(pb.mode, "mode"),
            signals=check.signals(pb.signals, "signals"),
            decision=DECISION.from_pb(pb.decision, "decision"),
            answered_by=ANSWERED_BY.from_pb(pb.answered_by, "answered_by"),
            policy_version=pb.policy_version,
            shadow=pb.shadow,
            propensity=check.unit_interval(pb.propensity, "propensity", open_low=True),
            latency=Latency.from_pb(pb.latency),
            label=label,
            label_source=label_source,
            started_at=started_at,
            finished_at=finished_at,
            prompt_text=pb.prompt_text if pb.HasField("prompt_text") else None,
            answer_text=pb.answer_text if pb.HasField("answer_text") else None,
            edge_draft_text=pb.edge_draft_text if pb.HasField("edge_draft_text") else None,
        )


def _label_from_pb(pb: outcomes_pb2.OutcomeRecord) -> tuple[Label, LabelSource]:
    """The label and its source, which must be set together or not at all."""
    label = LABEL.from_pb(pb.label, "label")
    source = LABEL_SOURCE.from_pb(pb.label_source, "label_source")
    if (label is Label.UNKNOWN) != (source is LabelSource.NONE):
        raise InvalidInput("label_source must be set exactly when the label is known", field="label_source")
    return label, source


def _interval_from_pb(pb: outcomes_pb2.OutcomeRecord) -> tuple[datetime, datetime]:
    """Start and finish, both set, the finish not before the start."""
    started_at = timestamp_from_pb(pb.started_at, "started_at")
    finished_at = timestamp_from_pb(pb.finished_at, "finished_at")
    if finished_at < started_at:
        raise InvalidInput("finished_at must not be before started_at", field="finished_at")
    return started_at, finished_at
