"""Prometheus metrics of the cloud service, on a registry of their own and a port of their own.

Nothing is registered at import: :func:`create_metrics` builds a fresh ``CollectorRegistry`` and
:func:`serve_metrics` starts the ``/metrics`` endpoint, both from ``main()``.

- ``confroute_escalations_total{cohort,mode,status}``: escalations by gRPC status name (OK, ...).
  Cohorts come from devices, so only the first ``max_cohorts`` distinct ones get their own label;
  later ones are counted as ``other``.
- ``confroute_triton_latency_seconds``: time of successful calls to the cloud model (failed ones
  are counted by status in ``confroute_escalations_total``).
- ``confroute_outcome_writes_total{source,result}``: upload records stored / duplicate / rejected,
  and escalation records queued for the log.
- ``confroute_outcomes_buffered`` / ``confroute_outcomes_dropped``: read at scrape time from the
  outcome log's ``stats`` (an attribute or a method returning an object with ``buffered`` and
  ``dropped``); NaN when the log has none.
- ``confroute_refusals_total{method,status}``: calls refused for their caller or their content
  (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, INVALID_ARGUMENT), by RPC method.
- ``confroute_escalations_inflight``: escalations being answered now (read at scrape time).
- ``confroute_policy_watchers``: WatchPolicy calls this process serves now (read at scrape time).
- ``confroute_policy_threshold_shift{edge_model_version,cohort}``: how far back-pressure has lowered the
  thresholds (0: not active), and ``confroute_policy_backpressure_adjustments_total{...,direction}``
  (``raise``: fewer escalations, ``restore``) counts each published adjustment.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER_COHORT = "other"
_MAX_CACHED_CHILDREN = 10_000  # cohorts past max_cohorts share "other" but would each add a key


class ServiceMetrics:
    """The service's instruments; one instance per process, injected into the servicers."""

    def count_refusal(self, method: str, status: str) -> None:
        """One call refused (method names are the service's own, a bounded set)."""
        self.refusals.labels(method, status).inc()

    def __init__(self, registry: CollectorRegistry, max_cohorts: int = 100) -> None:
        self.registry = registry
        self._cohorts: set[str] = set()
        self._max_cohorts = max_cohorts
        self._shifts: dict[tuple[str, str], float] = {}
        # The counter's child per label set: labels() costs a lock and a tuple key on every call.
        self._escalation_children: dict[tuple[str, str, str], Any] = {}
        self.escalations = Counter(
            "confroute_escalations", "Escalations answered, by status", ["cohort", "mode", "status"], registry=registry
        )
        self.triton_latency = Histogram(
            "confroute_triton_latency_seconds",
            "Time of successful calls to the cloud model",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.outcome_writes = Counter(
            "confroute_outcome_writes",
            "Outcome records written, by source and result",
            ["source", "result"],
            registry=registry,
        )
        self.refusals = Counter(
            "confroute_refusals", "Calls refused for their caller or content, by method and status",
            ["method", "status"], registry=registry,
        )
        self.outcomes_buffered = Gauge("confroute_outcomes_buffered", "Outcome records buffered", registry=registry)
        self.outcomes_dropped = Gauge("confroute_outcomes_dropped", "Outcome records dropped", registry=registry)
        self.escalations_inflight = Gauge(
            "confroute_escalations_inflight", "Escalations being answered now", registry=registry
        )
        self.policy_watchers = Gauge("confroute_policy_watchers", "WatchPolicy calls served now", registry=registry)
        self.threshold_shift = Gauge(
            "confroute_policy_threshold_shift",
            "Back-pressure: how far every threshold is lowered (0: not active)",
            ["edge_model_version", "cohort"],
            registry=registry,
        )
        self.backpressure_adjustments = Counter(
            "confroute_policy_backpressure_adjustments",
            "Back-pressure adjustments published, by direction",
            ["edge_model_version", "cohort", "direction"],
            registry=registry,
        )

    def observe_escalation(self, cohort: str, mode: str, status: str) -> None:
        """Counts one escalation; see the module docstring for how cohorts are bounded."""
        key = (cohort, mode, status)
        child = self._escalation_children.get(key)
        if child is None:
            child = self.escalations.labels(self._cohort_label(cohort), mode, status)
            if len(self._escalation_children) < _MAX_CACHED_CHILDREN:
                self._escalation_children[key] = child
        child.inc()

    def watch_outcome_log(self, outcome_log: object) -> None:
        """Feeds the buffered/dropped gauges from ``outcome_log``'s stats at scrape time."""
        self.outcomes_buffered.set_function(_stat_reader(outcome_log, "buffered"))
        self.outcomes_dropped.set_function(_stat_reader(outcome_log, "dropped"))

    def watch_inflight(self, in_use: Callable[[], float]) -> None:
        """Feeds ``confroute_escalations_inflight`` from ``in_use`` at scrape time."""
        self.escalations_inflight.set_function(in_use)

    def watch_policy_watchers(self, count: Callable[[], float]) -> None:
        """Feeds ``confroute_policy_watchers`` from ``count`` at scrape time."""
        self.policy_watchers.set_function(count)

    def observe_threshold_shift(self, edge_model_version: str, cohort: str, shift: float, _reason: str = "") -> None:
        """Records a published back-pressure adjustment (an ``OnAdjust`` callback)."""
        labels = (edge_model_version, self._cohort_label(cohort))
        direction = "raise" if shift > self._shifts.get(labels, 0.0) else "restore"
        self._shifts[labels] = shift
        self.threshold_shift.labels(*labels).set(shift)
        self.backpressure_adjustments.labels(*labels, direction).inc()

    def _cohort_label(self, cohort: str) -> str:
        if cohort in self._cohorts:
            return cohort
        if len(self._cohorts) >= self._max_cohorts:
            return OTHER_COHORT
        self._cohorts.add(cohort)
        return cohort


def create_metrics(max_cohorts: int = 100) -> ServiceMetrics:
    """Instruments on a new registry (never the process-global one)."""
    return ServiceMetrics(CollectorRegistry(auto_describe=True), max_cohorts)


@dataclass
class MetricsEndpoint:
    """A running ``/metrics`` HTTP server; :meth:`close` stops it and frees its port."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (the one picked, when asked for 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stops serving, closes the socket and waits for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5.0)


def serve_metrics(metrics: ServiceMetrics, host: str, port: int) -> MetricsEndpoint:
    """Starts ``/metrics`` for ``metrics.registry`` on ``host:port`` (0: a free port)."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsEndpoint(server, thread)


def _stat_reader(outcome_log: object, name: str) -> Callable[[], float]:
    def read() -> float:
        stats = getattr(outcome_log, "stats", None)
        if callable(stats):
            stats = stats()
        value = getattr(stats, name, None)
        return float(value) if isinstance(value, (int, float)) else math.nan

    return read
