"""``cloud-service outcomes tail``: the outcome log as it grows, records and late labels as they arrive.

Every partition's outcome stream and labels stream is polled with ``XRANGE`` after the last entry seen
(one stream per call, so it works on a Redis Cluster too); partitions that appear later are picked up.
``--last N`` starts with the newest N entries of each stream; ``--once`` prints them and exits. A table
line per event for people, ``--json`` for scripts. Read-only: it is no consumer group's member.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from cloud_service.outcomes import codec
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.outcomes.statistics import CODE_LABELS
from cloud_service.redis_client import RedisClient, StreamEntry, stream_entries, translated


@dataclass(frozen=True)
class TailEvent:
    """One entry of the log: an outcome record (``kind`` outcome) or a late label (``kind`` label)."""

    entry_id: str
    kind: str
    edge_model_version: str
    cohort: str
    query_id: str
    origin: str = ""  # device or service (outcomes)
    device_id: str = ""
    mode: str = ""
    decision: str = ""
    answered_by: str = ""
    label: str = ""
    label_source: str = ""
    policy_version: str = ""


class OutcomeTail:
    """Follows every stream of the outcome log from where it was last read."""

    def __init__(self, client: RedisClient, log: OutcomeLogConfig) -> None:
        self._client = client
        self._log = log
        self._after: dict[str, str] = {}

    async def start(self, last: int) -> list[TailEvent]:
        """The newest ``last`` entries of each stream (oldest first); later reads continue after them."""
        events = []
        for stream, parse in await self._streams():
            with translated("reading the outcome log"):
                newest = stream_entries(await self._client.xrevrange(stream, count=max(last, 1)))
            if newest:
                self._after[stream] = _text(newest[0][0])
            events += [parse(entry) for entry in reversed(newest[:last])]
        return sorted(events, key=lambda event: _order(event.entry_id))

    async def poll(self) -> list[TailEvent]:
        """The entries appended since the last read, oldest first."""
        events = []
        for stream, parse in await self._streams():
            after = self._after.get(stream, "0-0")
            with translated("reading the outcome log"):
                entries = stream_entries(await self._client.xrange(stream, f"({after}", "+"))
            if entries:
                self._after[stream] = _text(entries[-1][0])
            events += [parse(entry) for entry in entries]
        return sorted(events, key=lambda event: _order(event.entry_id))

    async def _streams(self) -> list[tuple[str, Callable[[StreamEntry], TailEvent]]]:
        with translated("listing outcome partitions"):
            tags = await self._client.smembers(self._log.partitions_key)
        found: list[tuple[str, Callable[[StreamEntry], TailEvent]]] = []
        for tag in sorted(_text(tag) for tag in tags):
            keys = self._log.partition_of_tag(tag)
            version, cohort = keys.partition.edge_model_version, keys.partition.cohort
            found.append((keys.labels, functools.partial(_label, edge_model_version=version, cohort=cohort)))
            if keys.stream not in {stream for stream, _ in found}:
                found.append((keys.stream, _outcome))
        return found


async def follow(tail: OutcomeTail, show: Callable[[TailEvent], None], interval_s: float) -> None:
    """Shows each new event until cancelled."""
    while True:
        for event in await tail.poll():
            show(event)
        await asyncio.sleep(interval_s)


def _outcome(entry: StreamEntry) -> TailEvent:
    ident, fields = entry
    try:
        record = codec.decode(fields)
    except (KeyError, ValueError):
        return TailEvent(_text(ident), "unreadable", "", "", _field(fields, "qid"))
    return TailEvent(
        _text(ident), "outcome", record.edge_model.version, record.cohort, record.query_id,
        origin=_field(fields, "origin") or "device", device_id=record.device_id, mode=record.mode.value,
        decision=record.decision.value, answered_by=record.answered_by.value, label=record.label.value,
        label_source=record.label_source.value, policy_version=record.policy_version,
    )


def _label(entry: StreamEntry, edge_model_version: str, cohort: str) -> TailEvent:
    ident, fields = entry
    code = _field(fields, "label")
    label = CODE_LABELS[code].value if code in CODE_LABELS else code
    return TailEvent(_text(ident), "label", edge_model_version, cohort, _field(fields, "qid"), label=label,
                     label_source=_field(fields, "source"))


def as_line(event: TailEvent, as_json: bool) -> str:
    """One event as a JSON object or a line of text."""
    if as_json:
        return json.dumps(asdict(event), sort_keys=True)
    where = f"{event.edge_model_version}/{event.cohort or '(default)'}"
    if event.kind == "label":
        return f"{event.entry_id:<17} label    {where:<20} {event.query_id}  -> {event.label} ({event.label_source})"
    label = "" if event.label == "unknown" else f"  label {event.label} ({event.label_source})"
    return (f"{event.entry_id:<17} {event.origin:<8} {where:<20} {event.query_id}  device {event.device_id}  "
            f"{event.mode} {event.decision} by {event.answered_by}  policy {event.policy_version or '-'}{label}")


def _field(fields: Mapping[bytes, bytes], name: str) -> str:
    return fields.get(name.encode(), b"").decode()


def _order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
