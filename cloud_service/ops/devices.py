"""Who is in the fleet: when each device was last seen and which versions it runs.

The servicers note a *sighting* on each authenticated call from a device (:meth:`Sightings.note`: a dict
assignment, nothing awaited), from what the call already carries: WatchPolicy its known policy version,
UploadOutcomes the versions of its last record, Escalate the policy that escalated, all of them the cohort
and the edge model build. The probe version is the optional request metadata ``confroute-probe-version``
(:data:`PROBE_VERSION_KEY`; empty when the device does not send it). A periodic flush
(:class:`cloud_service.ops.loop_monitor.LoopMonitor`) drains the sightings into the device directory,
one read and one write per flush whatever the traffic:

    <devices>:records   hash: device id -> :meth:`DeviceRecord.to_wire` (``cloud_service.store.schema``)

A sighting that names no version keeps what the directory knew (a GetPolicy carries no policy version).
With authentication on, the device is the caller (an operator's calls are not sightings); without it,
the id the request names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import rapidjson

from cloud_service.identity.context import current_principal
from cloud_service.redis_client import RedisClient, translated
from cloud_service.store.schema import DeviceKeys
from confroute.contract.metadata import PROBE_VERSION_KEY
from confroute.contract.outcome import OutcomeRecord

MAX_PROBE_VERSION_CHARS = 64  # what a device sends is kept and labelled: bounded
MAX_PENDING = 100_000  # devices noted between two flushes; later ones wait for the next flush


@dataclass(frozen=True)
class DeviceRecord:
    """What the service last saw of one device (empty: not known)."""

    device_id: str
    cohort: str = ""
    edge_model_version: str = ""
    policy_version: str = ""
    probe_version: str = ""
    last_seen_s: float = 0.0  # Unix time
    last_call: str = ""  # escalate, upload, watch or get

    def merged(self, other: DeviceRecord) -> DeviceRecord:
        """The later of the two sightings, with the earlier one's versions where the later names none."""
        return DeviceRecord(self.device_id, *merge_fields(self.fields, other.fields))

    @property
    def fields(self) -> list[Any]:
        """Every field but the id, in declaration order: what the hash holds (:meth:`to_wire`)."""
        return [self.cohort, self.edge_model_version, self.policy_version, self.probe_version, self.last_seen_s,
                self.last_call]

    def to_wire(self) -> str:
        """The hash value: :attr:`fields` as a JSON array (the id is the hash field)."""
        return str(rapidjson.dumps(self.fields))

    @classmethod
    def from_wire(cls, device_id: str, value: str | bytes) -> DeviceRecord:
        cohort, edge_model_version, policy_version, probe_version, last_seen_s, last_call = rapidjson.loads(value)
        return cls(device_id, cohort, edge_model_version, policy_version, probe_version, float(last_seen_s), last_call)


def merge_fields(one: list[Any], other: list[Any]) -> list[Any]:
    """Two sightings' :attr:`DeviceRecord.fields` merged: the later one's, with the earlier one's versions
    where the later names none."""
    newer, older = (other, one) if other[4] >= one[4] else (one, other)
    return [newer[0] or older[0], newer[1] or older[1], newer[2] or older[2], newer[3] or older[3], newer[4],
            newer[5]]


class Sightings:
    """Sightings noted on the request path, held in memory until the next :meth:`drain`.

    A pending sighting is a small list updated in place (what :meth:`note` costs is on every call's path:
    about a microsecond, where building and merging records cost several)."""

    def __init__(self, max_pending: int = MAX_PENDING, clock: Callable[[], float] = time.time) -> None:
        self._pending: dict[str, list[Any]] = {}  # device id -> DeviceRecord.fields
        self._max_pending = max_pending
        self._clock = clock
        self.deferred = 0  # sightings of devices not held because max_pending were (counted, not kept)

    def note(self, claimed_device_id: str, cohort: str, edge_model_version: str, call: str, *,
             policy_version: str = "", metadata: Iterable[tuple[str, Any]] = ()) -> None:
        """One call from a device; see the module docstring for which device and which versions."""
        device_id = _caller_device(claimed_device_id)
        if not device_id:
            return
        seen = (cohort, edge_model_version, policy_version, _probe_version(metadata) if metadata else "")
        entry = self._pending.get(device_id)
        if entry is None:
            if len(self._pending) >= self._max_pending:
                self.deferred += 1
                return
            self._pending[device_id] = [*seen, self._clock(), call]
            return
        for index, value in enumerate(seen):
            if value:
                entry[index] = value
        entry[4], entry[5] = self._clock(), call

    def note_uploads(self, records: Sequence[OutcomeRecord], metadata: Iterable[tuple[str, Any]] = ()) -> None:
        """An upload's batch: each device's last record in it (with authentication, all are the caller's)."""
        for record in {record.device_id: record for record in records}.values():
            self.note(record.device_id, record.cohort, record.edge_model.version, "upload",
                      policy_version=record.policy_version, metadata=metadata)

    def restore(self, records: Iterable[DeviceRecord]) -> None:
        """Gives back sightings a flush could not store, under any noted since."""
        for record in records:
            now = self._pending.get(record.device_id)
            self._pending[record.device_id] = merge_fields(record.fields, now) if now is not None else record.fields

    def drain(self) -> list[DeviceRecord]:
        """The sightings since the last drain (one per device), forgotten here."""
        pending, self._pending = self._pending, {}
        return [_record(device_id, entry) for device_id, entry in pending.items()]


def _record(device_id: str, entry: list[Any]) -> DeviceRecord:
    return DeviceRecord(device_id, *entry)


def _caller_device(claimed: str) -> str:
    principal = current_principal()
    if principal is None:
        return claimed
    return principal.principal_id if principal.is_device else ""


def _probe_version(metadata: Iterable[tuple[str, Any]]) -> str:
    for key, value in metadata:
        if key == PROBE_VERSION_KEY:
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            return text[:MAX_PROBE_VERSION_CHARS]
    return ""


class DeviceDirectory(Protocol):
    """Where device records are kept (:class:`RedisDeviceDirectory`)."""

    async def save(self, sightings: Sequence[DeviceRecord]) -> None: ...

    async def records(self) -> list[DeviceRecord]: ...


class RedisDeviceDirectory:
    """Device records in one Redis hash (see the module docstring)."""

    def __init__(self, client: RedisClient, keys: DeviceKeys | None = None) -> None:
        self._client = client
        self._keys = keys or DeviceKeys()

    async def save(self, sightings: Sequence[DeviceRecord]) -> None:
        """Merges ``sightings`` into the stored records (a read and a write, whatever their number)."""
        if not sightings:
            return
        ids = [record.device_id for record in sightings]
        with translated("reading device records"):
            stored = await self._client.hmget(self._keys.records, ids)
        # Thousands of records take tens of milliseconds of Python: off the event loop.
        merged = await asyncio.to_thread(_merged, sightings, stored)
        with translated("writing device records"):
            await self._client.hset(self._keys.records, mapping=merged)  # type: ignore[arg-type]

    async def records(self) -> list[DeviceRecord]:
        """Every device ever seen, in no order."""
        with translated("reading device records"):
            stored = await self._client.hgetall(self._keys.records)  # type: ignore[misc]
        return await asyncio.to_thread(_decoded, stored)

    async def record(self, device_id: str) -> DeviceRecord | None:
        """One device's record; None if it was never seen."""
        with translated("reading a device record"):
            raw = await self._client.hget(self._keys.records, device_id)  # type: ignore[misc]
        return DeviceRecord.from_wire(device_id, raw) if raw else None


def _merged(sightings: Sequence[DeviceRecord], stored: Sequence[bytes | str | None]) -> dict[str, str]:
    return {record.device_id: str(rapidjson.dumps(merge_fields(rapidjson.loads(raw), record.fields) if raw
                                                  else record.fields))
            for record, raw in zip(sightings, stored, strict=True)}


def _decoded(stored: Mapping[bytes | str, bytes | str]) -> list[DeviceRecord]:
    return [DeviceRecord.from_wire(key.decode() if isinstance(key, bytes) else key, value)
            for key, value in stored.items()]
