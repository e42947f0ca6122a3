"""The fleet at a glance, from the device records (:mod:`cloud_service.ops.devices`): pure functions.

A device is *online* when it was seen in the last ``ONLINE_S`` (a watching device reconnects at least
every watch period), *active* in the last ``ACTIVE_S``; versions are counted over the active devices, so a
device switched off a month ago does not hold an old policy version up forever. A device is *behind* when
it is active and runs a policy version that its partition's rollout no longer serves (neither the control
nor the canary).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud_service.metrics import OTHER_COHORT
from cloud_service.ops.devices import DeviceRecord

ONLINE_S = 300.0
ACTIVE_S = 86_400.0
AGES: tuple[tuple[str, float], ...] = (("<5m", ONLINE_S), ("5m-1h", 3_600.0), ("1h-24h", ACTIVE_S), (">24h", math.inf))
PartitionId = tuple[str, str]  # (edge model version, cohort)


@dataclass(frozen=True)
class FleetSummary:
    """Device counts: all, online, by last-seen age, and per version over the active devices."""

    devices: int = 0
    online: int = 0
    by_age: Mapping[str, int] = field(default_factory=dict)
    by_policy: Mapping[tuple[str, ...], int] = field(default_factory=dict)  # (version, cohort, policy)
    by_probe: Mapping[tuple[str, ...], int] = field(default_factory=dict)  # (version, cohort, probe)
    by_edge_model: Mapping[str, int] = field(default_factory=dict)
    behind: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, lists sorted by count (most devices first)."""
        return {
            "devices": self.devices, "online": self.online, "by_age": dict(self.by_age),
            "by_policy_version": _rows(self.by_policy, ("edge_model_version", "cohort", "policy_version")),
            "by_probe_version": _rows(self.by_probe, ("edge_model_version", "cohort", "probe_version")),
            "by_edge_model_version": _rows({(k,): v for k, v in self.by_edge_model.items()}, ("edge_model_version",)),
            "behind_policy": _rows(self.behind, ("edge_model_version", "cohort")),
        }


def age_bucket(age_s: float) -> str:
    """The :data:`AGES` bucket of a device last seen ``age_s`` ago."""
    return next(name for name, bound in AGES if age_s < bound)


def summarize(records: Iterable[DeviceRecord], now_s: float,
              live: Mapping[PartitionId, frozenset[str]] | None = None) -> FleetSummary:
    """The summary of ``records`` at ``now_s``; ``live`` names the policy versions each partition's rollout
    serves (partitions absent from it are not judged behind)."""
    records = list(records)
    ages = Counter(age_bucket(now_s - record.last_seen_s) for record in records)
    active = [record for record in records if now_s - record.last_seen_s < ACTIVE_S]
    behind: Counter[tuple[str, ...]] = Counter()
    for record in active:
        served = (live or {}).get((record.edge_model_version, record.cohort))
        if served and record.policy_version and record.policy_version not in served:
            behind[record.edge_model_version, record.cohort] += 1
    return FleetSummary(
        devices=len(records),
        online=sum(1 for record in records if now_s - record.last_seen_s < ONLINE_S),
        by_age={name: ages.get(name, 0) for name, _ in AGES},
        by_policy=_count(active, "policy_version", "unknown"),
        by_probe=_count(active, "probe_version", "unreported"),
        by_edge_model=Counter(r.edge_model_version or "unknown" for r in active),
        behind=behind,
    )


def _count(records: Iterable[DeviceRecord], version: str, missing: str) -> Counter[tuple[str, ...]]:
    return Counter((r.edge_model_version, r.cohort, getattr(r, version) or missing) for r in records)


def select(records: Iterable[DeviceRecord], now_s: float, *, cohort: str | None = None,
           edge_model_version: str | None = None, policy_version: str | None = None,
           probe_version: str | None = None, stale_s: float | None = None) -> list[DeviceRecord]:
    """The records that match every filter given (``stale_s``: not seen for at least that long), most
    recently seen first."""
    wanted = {"cohort": cohort, "edge_model_version": edge_model_version, "policy_version": policy_version,
              "probe_version": probe_version}
    chosen = [record for record in records
              if all(value is None or getattr(record, name) == value for name, value in wanted.items())
              and (stale_s is None or now_s - record.last_seen_s >= stale_s)]
    return sorted(chosen, key=lambda record: (-record.last_seen_s, record.device_id))


def bounded(counts: Mapping[tuple[str, ...], int], limit: int) -> dict[tuple[str, ...], int]:
    """The ``limit`` largest counts by their labels, the rest summed under labels all ``other``: what a
    gauge may export without its label sets growing with the fleet's history."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:limit])
    rest = sum(count for _, count in ranked[limit:])
    if rest:
        width = len(ranked[0][0])
        other = (OTHER_COHORT,) * width
        kept[other] = kept.get(other, 0) + rest
    return kept


def _rows(counts: Mapping[tuple[str, ...], int], names: tuple[str, ...]) -> list[dict[str, Any]]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{**dict(zip(names, labels, strict=True)), "devices": count} for labels, count in ranked]
