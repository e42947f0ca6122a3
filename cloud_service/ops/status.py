"""The service's status at a glance, as JSON: what the status API (``/api/status``), the dashboard and
``cloud-service status`` show.

Everything is read in the service process, at request time: its own instruments (escalations, latency,
Triton's queue and compute time, refusals, the outcome log's counters, uploads by decision), the backend's
readiness, and the policy store's current policy of each (edge model version, cohort) the service has seen
in uploads, with its canary's state when the store keeps rollouts. Numbers are totals since the process
started; rates are the dashboard's and Prometheus's job.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cloud_service.metrics import OTHER_COHORT, ServiceMetrics
from cloud_service.policies.state import Rollout
from cloud_service.ports import PolicyStore
from confroute.version import version

Samples = dict[str, list[tuple[dict[str, str], float]]]
READY_TIMEOUT_S = 1.0


@runtime_checkable
class RolloutReader(Protocol):
    """A policy store that also tells who runs what (``RedisPolicyStore``)."""

    async def rollout(self, edge_model_version: str, cohort: str) -> Rollout: ...


class _Snapshot(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class LoopView(Protocol):
    """The service's loop monitor (``cloud_service.ops.loop_monitor.LoopMonitor``): its last pass."""

    @property
    def snapshot(self) -> _Snapshot: ...


@dataclass(frozen=True)
class StatusSources:
    """What the status is read from; built where the service is wired."""

    metrics: ServiceMetrics
    backend_ready: Callable[[], Awaitable[bool]]
    policy_store: PolicyStore
    max_inflight: int
    started_at: float = field(default_factory=time.time)
    monitor: LoopView | None = None  # None: no devices or loop windows in the status


async def service_status(sources: StatusSources) -> dict[str, Any]:
    """The status document (see the module docstring)."""
    samples = _samples(sources.metrics)
    document: dict[str, Any] = finite({
        "generated_at": time.time(),
        "version": version(),
        "service": _service(samples, sources),
        "triton": await _triton(samples, sources),
        "outcome_log": _outcome_log(samples),
        "auth": _auth(samples),
        "fleet": await _fleet(samples, sources),
        **_loop(sources.monitor),
    })
    return document


def _loop(monitor: LoopView | None) -> dict[str, Any]:
    """``devices`` (the fleet summary) and ``loop`` (windows, recalibration history) of the monitor's last pass."""
    if monitor is None:
        return {"devices": None, "loop": None}
    snapshot = monitor.snapshot.to_json()
    return {"devices": snapshot.pop("devices"), "loop": snapshot}


def finite(node: Any) -> Any:
    """``node`` with every NaN or infinite number (a gauge nothing feeds) as None: JSON has no NaN."""
    if isinstance(node, dict):
        return {key: finite(value) for key, value in node.items()}
    if isinstance(node, list):
        return [finite(value) for value in node]
    if isinstance(node, float) and not math.isfinite(node):
        return None
    return node


def _samples(metrics: ServiceMetrics) -> Samples:
    found: Samples = defaultdict(list)
    for family in metrics.registry.collect():
        for sample in family.samples:
            found[sample.name].append((dict(sample.labels), sample.value))
    return found


def total(samples: Samples, name: str, **match: str) -> float:
    """The sum of ``name``'s samples whose labels include ``match``."""
    return sum(value for labels, value in samples.get(name, ()) if _matches(labels, match))


def by_label(samples: Samples, name: str, label: str, **match: str) -> dict[str, float]:
    """``name``'s samples summed per value of ``label``."""
    sums: dict[str, float] = defaultdict(float)
    for labels, value in samples.get(name, ()):
        if _matches(labels, match):
            sums[labels.get(label, "")] += value
    return dict(sums)


def quantile(samples: Samples, name: str, q: float, **match: str) -> float | None:
    """The ``q`` quantile of histogram ``name`` (linear within a bucket, as PromQL's histogram_quantile)."""
    buckets = sorted((float(labels["le"]), value) for labels, value in samples.get(f"{name}_bucket", ())
                     if _matches(labels, match))
    merged: dict[float, float] = defaultdict(float)
    for bound, count in buckets:
        merged[bound] += count
    bounds = sorted(merged.items())
    if not bounds or bounds[-1][1] == 0:
        return None
    rank = q * bounds[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in bounds:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return None


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match.items())


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)


def _service(samples: Samples, sources: StatusSources) -> dict[str, Any]:
    name = "confroute_escalations_total"
    return {
        "uptime_s": round(time.time() - sources.started_at, 1),
        "inflight": total(samples, "confroute_escalations_inflight"),
        "max_inflight": sources.max_inflight,
        "refused": total(samples, "confroute_escalations_refused_total"),
        "escalations": by_label(samples, name, "status", kind="escalation"),
        "shadow_requests": by_label(samples, name, "status", kind="shadow"),
        "latency_ms": {
            "p50": _ms(quantile(samples, "confroute_escalation_duration_seconds", 0.5, kind="escalation")),
            "p95": _ms(quantile(samples, "confroute_escalation_duration_seconds", 0.95, kind="escalation")),
        },
        "policy_watchers": total(samples, "confroute_policy_watchers"),
    }


async def _triton(samples: Samples, sources: StatusSources) -> dict[str, Any]:
    calls = total(samples, "confroute_triton_latency_seconds_count")

    def mean_ms(name: str) -> float | None:
        return _ms(total(samples, f"{name}_sum") / calls) if calls else None

    compute_s = total(samples, "confroute_triton_compute_seconds_sum")
    return {
        "ready": await _ready(sources.backend_ready),
        "calls": calls,
        "queue_ms_mean": mean_ms("confroute_triton_queue_seconds"),
        "queue_ms_p95": _ms(quantile(samples, "confroute_triton_queue_seconds", 0.95)),
        "compute_ms_mean": mean_ms("confroute_triton_compute_seconds"),
        # what the ConfrouteTritonQueueing alert watches (over 5 min there; since the start here)
        "queue_to_compute": round(total(samples, "confroute_triton_queue_seconds_sum") / compute_s, 3)
        if compute_s else None,
        "errors": by_label(samples, "confroute_triton_errors_total", "status"),
    }


async def _ready(check: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return bool(await asyncio.wait_for(check(), READY_TIMEOUT_S))
    except Exception:  # a readiness check that fails or hangs says "not ready", nothing more
        return False


def _outcome_log(samples: Samples) -> dict[str, Any]:
    names = {"buffered": "confroute_outcomes_buffered", "dropped": "confroute_outcomes_dropped_total",
             "written": "confroute_outcome_log_written_total", "duplicates": "confroute_outcome_log_duplicates_total",
             "write_errors": "confroute_outcome_log_write_errors_total"}
    return {key: (total(samples, name) if name in samples else None) for key, name in names.items()}


def _auth(samples: Samples) -> dict[str, Any]:
    return {
        "refusals": by_label(samples, "confroute_refusals_total", "reason"),
        "rate_limited": total(samples, "confroute_refusals_total", reason="rate_limited"),
    }


async def _fleet(samples: Samples, sources: StatusSources) -> dict[str, Any]:
    decisions: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for labels, value in samples.get("confroute_outcome_decisions_total", ()):
        decisions[(labels["edge_model_version"], labels["cohort"])][labels["decision"]] += value
    partitions = [await _partition(version_, cohort, counts, sources.policy_store)
                  for (version_, cohort), counts in sorted(decisions.items())]
    return {"partitions": partitions, "uploaded": sum(p["uploaded"] for p in partitions)}


async def _partition(edge_model_version: str, cohort: str, counts: Mapping[str, float],
                     store: PolicyStore) -> dict[str, Any]:
    uploaded = sum(counts.values())
    known = OTHER_COHORT not in (edge_model_version, cohort)
    policy = await store.current(edge_model_version, cohort) if known else None
    return {
        "edge_model_version": edge_model_version,
        "cohort": cohort,
        "uploaded": uploaded,
        "escalated": counts.get("escalated", 0.0),
        "escalation_rate": round(counts.get("escalated", 0.0) / uploaded, 4) if uploaded else None,
        "policy_version": policy.policy_version if policy else None,
        "thresholds": _thresholds(policy.thresholds) if policy else None,
        "rollout": await _rollout(store, edge_model_version, cohort) if known else None,
    }


async def _rollout(store: PolicyStore, edge_model_version: str, cohort: str) -> dict[str, Any] | None:
    """The canary's state: None when the store cannot tell or nothing was published."""
    if not isinstance(store, RolloutReader):
        return None
    state = (await store.rollout(edge_model_version, cohort)).state
    if not state.control:
        return None
    return {"control": state.control, "canary": state.canary or None, "canary_share": state.share,
            "pinned": state.pinned, "backpressure_shift": state.shift}


def _thresholds(thresholds: object) -> dict[str, float]:
    names: Iterable[str] = getattr(thresholds, "__dataclass_fields__", {}).keys()
    return {name: float(getattr(thresholds, name)) for name in names}
