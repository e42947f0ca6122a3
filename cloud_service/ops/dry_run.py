"""``cloud-service recalibrate --dry-run``: what a recalibration would change, and why, without changing it.

Per (edge model version, cohort) of the outcome log: the policy the recalibration would make from the
statistics kept at ingest (no fold: nothing is read as a consumer, nothing acknowledged), set against the
current one: thresholds before and after, and the escalation rate and risk the recalibration estimates for
each on the logged outcomes; or the reason it would keep the current policy. Nothing is published, no
canary is judged, no provenance is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from cloud_service.calibration.config import RecalibrationConfig
from cloud_service.calibration.policy_maker import recalibrate
from cloud_service.calibration.statistics_reader import read_statistics
from cloud_service.calibration.worker import PolicyTarget, RecalibrationWorker
from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.redis_client import RedisClient
from confroute.contract.policy import Policy


@dataclass(frozen=True)
class PolicyChange:
    """What recalibrating one partition would do."""

    edge_model_version: str
    cohort: str
    current_version: str | None
    would_publish: bool
    reason: str  # why not, when it would not
    thresholds_now: dict[str, float] | None
    thresholds_new: dict[str, float] | None
    estimates_now: dict[str, float] | None  # escalation_rate, risk of the current policy on the logged outcomes
    estimates_new: dict[str, float] | None
    records: int


async def dry_run(client: RedisClient, log: OutcomeLogConfig, store: PolicyTarget, config: RecalibrationConfig,
                  clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> list[PolicyChange]:
    """The change each partition's recalibration would make (see the module docstring)."""
    partitions = await RecalibrationWorker(client, log, store, config).partitions()
    changes = []
    for keys in partitions:
        version, cohort = keys.partition.edge_model_version, keys.partition.cohort
        current = await store.current(version, cohort)
        stats = await read_statistics(client, keys)
        result = recalibrate(stats, current, config, edge_model_version=version, cohort=cohort, now=clock())
        provenance = result.provenance
        changes.append(PolicyChange(
            edge_model_version=version, cohort=cohort,
            current_version=current.policy_version if current else None,
            would_publish=result.policy is not None, reason=result.reason,
            thresholds_now=_thresholds(current), thresholds_new=_thresholds(result.policy),
            estimates_now=_estimates(provenance.get("before")), estimates_new=_estimates(provenance.get("after")),
            records=int(provenance.get("records", 0)),
        ))
    return changes


def _thresholds(policy: Policy | None) -> dict[str, float] | None:
    if policy is None:
        return None
    t = policy.thresholds
    return {"pre": t.pre, "post": t.post, "hybrid_low": t.hybrid_low, "hybrid_high": t.hybrid_high}


def _estimates(value: Any) -> dict[str, float] | None:
    if not isinstance(value, dict):
        return None
    return {key: float(value[key]) for key in ("escalation_rate", "risk") if key in value}


def as_json_lines(changes: list[PolicyChange]) -> str:
    """One JSON object per partition."""
    return "\n".join(json.dumps(asdict(change), sort_keys=True) for change in changes)


def as_table(changes: list[PolicyChange]) -> str:
    """A table for people: one line per partition, ``now -> new``."""
    if not changes:
        return "no outcome partitions yet: nothing to recalibrate"
    header = ("EDGE MODEL", "COHORT", "CURRENT", "POST", "PRE", "ESCALATION RATE", "RISK", "WHAT")
    rows = [header] + [_row(change) for change in changes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def _row(change: PolicyChange) -> tuple[str, ...]:
    def pair(now: dict[str, float] | None, new: dict[str, float] | None, key: str) -> str:
        before = f"{now[key]:.3f}" if now and key in now else "-"
        after = f"{new[key]:.3f}" if new and key in new else "-"
        return f"{before} -> {after}" if change.would_publish else before

    what = "would publish a candidate" if change.would_publish else f"keeps the current policy: {change.reason}"
    return (change.edge_model_version, change.cohort or "(default)", change.current_version or "-",
            pair(change.thresholds_now, change.thresholds_new, "post"),
            pair(change.thresholds_now, change.thresholds_new, "pre"),
            pair(change.estimates_now, change.estimates_new, "escalation_rate"),
            pair(change.estimates_now, change.estimates_new, "risk"), what)
