"""How far a consumer group is behind on the outcome log's streams: ``XINFO GROUPS`` summed over every
partition's stream of one kind (the outcome streams, which the recalibration reads; the ``to-judge`` streams,
which the judge reads: its backlog there is the number of texts held pending judgement).

``lag`` is what the group has not been delivered yet (Redis 7 reports it; NaN when a stream's lag is
unknown, after deletions), ``pending`` what was delivered and not yet acknowledged. A stream the group
does not read yet counts its whole length as lag.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cloud_service.outcomes.config import OutcomeLogConfig, PartitionKeys
from cloud_service.redis_client import RedisClient, translated


@dataclass(frozen=True)
class GroupLag:
    """A consumer group's backlog on the outcome streams."""

    lag: float
    pending: int


def outcome_stream(keys: PartitionKeys) -> str:
    return keys.stream


def to_judge_stream(keys: PartitionKeys) -> str:
    return keys.to_judge


async def group_lag(
    client: RedisClient, log: OutcomeLogConfig, group: str, stream_of: Callable[[PartitionKeys], str] = outcome_stream
) -> GroupLag:
    """The group's lag and pending entries summed over each partition's ``stream_of`` stream."""
    with translated("listing outcome partitions"):
        tags = await client.smembers(log.partitions_key)
    streams = sorted({stream_of(log.partition_of_tag(_text(tag))) for tag in tags})
    lag, pending = 0.0, 0
    for stream in streams:
        stream_lag, stream_pending = await _stream_lag(client, stream, group)
        lag += stream_lag
        pending += stream_pending
    return GroupLag(lag, pending)


async def _stream_lag(client: RedisClient, stream: str, group: str) -> tuple[float, int]:
    with translated("reading consumer groups"):
        if not await client.exists(stream):  # trimmed away or never written: nothing to read
            return 0.0, 0
        for info in await client.xinfo_groups(stream):
            if _text(_field(info, "name")) == group:
                lag = _field(info, "lag")
                return (math.nan if lag is None else float(lag)), int(_field(info, "pending") or 0)
        return float(await client.xlen(stream)), 0


def _field(info: Any, name: str) -> Any:
    return info.get(name, info.get(name.encode())) if isinstance(info, dict) else None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
