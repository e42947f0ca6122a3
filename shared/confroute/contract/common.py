"""Small types shared by every message: model references and timestamps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from google.protobuf import timestamp_pb2

from confroute.contract._checks import Error, join, nonempty
from confroute.errors import InvalidInput
from confroute.v1 import common_pb2


@dataclass(frozen=True)
class ModelRef:
    """A model and its exact build."""

    id: str
    version: str

    def to_pb(self) -> common_pb2.ModelRef:
        return common_pb2.ModelRef(id=self.id, version=self.version)

    @classmethod
    def from_pb(cls, pb: common_pb2.ModelRef, path: str, error: Error = InvalidInput) -> ModelRef:
        return cls(
            id=nonempty(pb.id, join(path, "id"), error),
            version=nonempty(pb.version, join(path, "version"), error),
        )


def timestamp_to_pb(moment: datetime) -> timestamp_pb2.Timestamp:
    """A protobuf Timestamp; naive datetimes are refused because their instant is ambiguous."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    pb = timestamp_pb2.Timestamp()
    pb.FromDatetime(moment.astimezone(timezone.utc))
    return pb


def timestamp_from_pb(pb: timestamp_pb2.Timestamp, field: str, error: Error = InvalidInput) -> datetime:
    """An aware UTC datetime; the all-zero (unset) timestamp, and one outside years 1-9999 or with nanos
    outside [0, 1e9), are rejected."""
    if pb.seconds == 0 and pb.nanos == 0:
        raise error(f"{field} must be set", field=field)
    try:
        moment: datetime = pb.ToDatetime(tzinfo=timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise error(f"{field} is not a valid timestamp: {exc}", field=field) from exc
    return moment
