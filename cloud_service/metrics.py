"""Prometheus metrics of the cloud service, on a registry of their own and a port of their own.

Nothing is registered at import: :func:`create_metrics` builds a fresh ``CollectorRegistry`` (with the
standard ``process_*``, ``python_gc_*`` and ``python_info`` series) and :func:`serve_metrics` starts the
``/metrics`` endpoint, both from ``main()``. Every series, its type, unit, labels and meaning is in the
table of ``docs/monitoring.md``, generated from these instruments (:func:`cloud_service.ops.metric_table`).

Labels stay bounded: cohorts and edge model versions come from devices, so only the first ``max_cohorts``
cohorts (and ``max_versions`` versions) get their own label; later ones are counted as ``other``. Statuses
are gRPC status names, kinds ``escalation`` or ``shadow``.

The outcome log's counters (written, duplicates, dropped, write errors) and its buffer depth are read at
scrape time from the log's ``stats`` (an attribute or a method returning an
:class:`~cloud_service.outcomes.stats.OutcomeLogStats`-like object); absent when the log has none.

``confroute_refusals_total{method,status,reason}`` counts every call refused for its caller or content
(UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, INVALID_ARGUMENT), once, by RPC method; ``reason``
is the status in lower case, except that RESOURCE_EXHAUSTED reads ``rate_limited`` when the caller's rate
limit was spent, ``credential_flood`` when the caller's address presented too many invalid credentials, and
``overloaded`` when a capacity was full (the service's ``max_inflight``, which
``confroute_escalations_refused_total`` also counts on its own, or a device's slots).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OTHER_COHORT = "other"
_MAX_CACHED_CHILDREN = 10_000  # label sets past the caps share "other" but would each add a key
METRICS_PATH = "/metrics"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def new_registry() -> CollectorRegistry:
    """A registry of its own with the standard process, GC and platform collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class BoundedLabel:
    """The first ``limit`` distinct values keep their name; later ones read as ``other``."""

    def __init__(self, limit: int) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER_COHORT
        self._seen.add(value)
        return value


class ServiceMetrics:
    """The service's instruments; one instance per process, injected into the servicers."""

    def __init__(self, registry: CollectorRegistry, max_cohorts: int = 100, max_versions: int = 20) -> None:
        self.registry = registry
        self._cohort = BoundedLabel(max_cohorts)
        self._version = BoundedLabel(max_versions)
        self._policy_version = BoundedLabel(max_versions)
        self._shifts: dict[tuple[str, str], float] = {}
        # A counter's child per label set: labels() costs a lock and a tuple key on every call.
        self._children: dict[tuple[str, ...], Any] = {}
        self._add_call_instruments(registry)
        self._add_triton_instruments(registry)
        self._add_data_instruments(registry)
        self._add_loop_instruments(registry)
        self.outcome_log = OutcomeLogCollector(registry)

    def _add_call_instruments(self, registry: CollectorRegistry) -> None:
        """Escalations, their latency, and the calls refused or limited."""
        self.escalations = Counter(
            "confroute_escalations", "Escalations and shadow requests answered, by the status they ended with",
            ["cohort", "edge_model_version", "mode", "kind", "status"], registry=registry,
        )
        self.escalation_seconds = Histogram(
            "confroute_escalation_duration_seconds",
            "Time from receiving an escalation to its final answer or error (the service's latency)",
            ["kind"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.refusals = Counter(
            "confroute_refusals",
            "Calls refused for their caller or content, by method, status and reason (unauthenticated, "
            "permission_denied, rate_limited, overloaded, invalid_argument)",
            ["method", "status", "reason"], registry=registry,
        )
        self.escalations_inflight = Gauge(
            "confroute_escalations_inflight", "Escalations being answered now", registry=registry
        )
        self.escalations_refused = Counter(
            "confroute_escalations_refused", "Escalations refused at once because max_inflight were in flight",
            registry=registry,
        )

    def _add_triton_instruments(self, registry: CollectorRegistry) -> None:
        """Where a call to the cloud model spent its time, and its failures."""
        self.triton_latency = Histogram(
            "confroute_triton_latency_seconds", "Time of successful calls to the cloud model",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.triton_queue = Histogram(
            "confroute_triton_queue_seconds", "Time a successful call waited in Triton's queue",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.triton_compute = Histogram(
            "confroute_triton_compute_seconds", "Time Triton computed a successful call",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.triton_errors = Counter(
            "confroute_triton_errors", "Calls to the cloud model that failed, by the status they map to",
            ["status"], registry=registry,
        )

    def _add_data_instruments(self, registry: CollectorRegistry) -> None:
        """Outcome records, policy watchers and back-pressure."""
        self.outcome_writes = Counter(
            "confroute_outcome_writes", "Outcome records written, by source and result",
            ["source", "result"], registry=registry,
        )
        self.outcome_labels = Counter(
            "confroute_outcome_labels", "Labelled outcome records stored, by label source",
            ["source"], registry=registry,
        )
        self.outcome_decisions = Counter(
            "confroute_outcome_decisions",
            "Device outcomes stored, by routing decision (local, escalated, vetoed): the fleet's escalation rate",
            ["edge_model_version", "cohort", "decision"], registry=registry,
        )
        self.outcome_policies = Counter(
            "confroute_outcome_policy_versions", "Device outcomes stored, by the policy version that routed them",
            ["edge_model_version", "cohort", "policy_version"], registry=registry,
        )
        self.policy_watchers = Gauge("confroute_policy_watchers", "WatchPolicy calls served now", registry=registry)
        self.threshold_shift = Gauge(
            "confroute_policy_threshold_shift", "Back-pressure: how far every threshold is lowered (0: not active)",
            ["edge_model_version", "cohort"], registry=registry,
        )
        self.backpressure_adjustments = Counter(
            "confroute_policy_backpressure_adjustments", "Back-pressure adjustments published, by direction",
            ["edge_model_version", "cohort", "direction"], registry=registry,
        )

    def _add_loop_instruments(self, registry: CollectorRegistry) -> None:
        """The fleet and the loop as the service's monitor last saw them (``cloud_service.ops.loop_monitor``)."""
        partition = ["edge_model_version", "cohort"]

        def gauge(name: str, documentation: str, labels: list[str]) -> Gauge:
            return Gauge(name, documentation, labels, registry=registry)

        self.devices_by_age = gauge("confroute_devices_by_last_seen",
                                    "Devices by how long ago the service last saw them (<5m, 5m-1h, 1h-24h, >24h)",
                                    ["age"])
        self.devices_by_policy = gauge("confroute_devices_by_policy_version",
                                       "Devices seen in the last 24 h, by the routing policy version they run",
                                       [*partition, "policy_version"])
        self.devices_by_probe = gauge("confroute_devices_by_probe_version",
                                      "Devices seen in the last 24 h, by probe version (unreported: none sent)",
                                      [*partition, "probe_version"])
        self.devices_behind = gauge("confroute_devices_behind_policy",
                                    "Devices seen in the last 24 h on a policy version their rollout no longer serves",
                                    partition)
        self.window_outcomes = gauge("confroute_loop_window_outcomes",
                                     "Device outcomes in the last window the monitor read", partition)
        self.window_labelled = gauge("confroute_loop_window_labelled",
                                     "Labelled device outcomes in the last window (what ECE, AUROC, risk rest on)",
                                     partition)
        self.window_escalation_rate = gauge("confroute_loop_window_escalation_rate",
                                            "Share of the window's outcomes the devices escalated", partition)
        self.window_target_rate = gauge("confroute_loop_window_target_escalation_rate",
                                        "The escalation rate the last recalibration aimed at", partition)
        self.window_ece = gauge("confroute_loop_window_ece",
                                "The live policy's calibration error (ECE, 10 bins) on the window's labels", partition)
        self.window_auroc = gauge("confroute_loop_window_auroc",
                                  "How well the live policy's score separates right from wrong answers in the window",
                                  partition)
        self.window_risk = gauge("confroute_loop_window_risk",
                                 "Share of wrong answers among those the live policy keeps on the edge, in the window",
                                 partition)
        self.window_risk_bound = gauge("confroute_loop_window_risk_bound",
                                       "The risk bound the last recalibration aimed at", partition)
        self.canary_share = gauge("confroute_canary_share",
                                  "Share of the partition's devices offered the canary policy (0: no canary runs), "
                                  "as the monitor last read the rollout", partition)
        self.loop_refreshed = gauge("confroute_loop_last_refresh_timestamp_seconds",
                                    "Unix time the monitor last refreshed the fleet and loop series", [])

    @property
    def instruments(self) -> tuple[MetricWrapperBase, ...]:
        """The instruments this class defines, for the documentation table."""
        return tuple(value for value in vars(self).values() if isinstance(value, MetricWrapperBase))

    def observe_escalation(
        self, cohort: str, mode: str, status: str, *, edge_model_version: str = "", shadow: bool = False
    ) -> None:
        """Counts one escalation (or shadow request); see the module docstring for the label bounds."""
        key = (cohort, edge_model_version, mode, "shadow" if shadow else "escalation", status)
        child = self._children.get(key)
        if child is None:
            child = self.escalations.labels(self._cohort(cohort), self._version(edge_model_version), *key[2:])
            if len(self._children) < _MAX_CACHED_CHILDREN:
                self._children[key] = child
        child.inc()

    def observe_answer_timings(self, queue_ms: float, compute_ms: float, total_ms: float) -> None:
        """Records where a successful call's time went, as the backend reported it."""
        self.triton_latency.observe(total_ms / 1e3)
        self.triton_queue.observe(queue_ms / 1e3)
        self.triton_compute.observe(compute_ms / 1e3)

    def count_refusal(self, method: str, status: str, rate_limited: bool = False, reason: str = "") -> None:
        """One call refused by the interceptor (method names are the service's own, a bounded set); ``reason``
        (e.g. ``credential_flood``) overrides the one the status implies."""
        self.refusals.labels(method, status, reason or refusal_reason(status, rate_limited)).inc()

    def observe_uploaded(
        self, edge_model_version: str, cohort: str, decision: str, policy_version: str, label_source: str
    ) -> None:
        """Counts one stored device outcome by decision, routing policy version and label source."""
        partition = (self._version(edge_model_version), self._cohort(cohort))
        self.outcome_decisions.labels(*partition, decision).inc()
        self.outcome_policies.labels(*partition, self._policy_version(policy_version)).inc()
        if label_source != "none":
            self.outcome_labels.labels(label_source).inc()

    def watch_outcome_log(self, outcome_log: object) -> None:
        """Reads the outcome log's stats at scrape time (see the module docstring)."""
        self.outcome_log.watch(outcome_log)

    def watch_inflight(self, in_use: Callable[[], float]) -> None:
        """Feeds ``confroute_escalations_inflight`` from ``in_use`` at scrape time."""
        self.escalations_inflight.set_function(in_use)

    def watch_policy_watchers(self, count: Callable[[], float]) -> None:
        """Feeds ``confroute_policy_watchers`` from ``count`` at scrape time."""
        self.policy_watchers.set_function(count)

    def observe_threshold_shift(self, edge_model_version: str, cohort: str, shift: float, _reason: str = "") -> None:
        """Records a published back-pressure adjustment (an ``OnAdjust`` callback)."""
        labels = (edge_model_version, self._cohort(cohort))
        direction = "raise" if shift > self._shifts.get(labels, 0.0) else "restore"
        self._shifts[labels] = shift
        self.threshold_shift.labels(*labels).set(shift)
        self.backpressure_adjustments.labels(*labels, direction).inc()


@dataclass(frozen=True)
class Family:
    """A series a custom collector exports: what the documentation table says of it."""

    name: str
    kind: str  # counter or gauge
    documentation: str
    stat: str  # the attribute of the outcome log's stats


OUTCOME_LOG_FAMILIES = (
    Family("confroute_outcomes_buffered", "gauge", "Outcome records accepted and not yet written", "buffered"),
    Family("confroute_outcomes_dropped", "counter",
           "Outcome records accepted that will never be written (buffer full, closed)", "dropped"),
    Family("confroute_outcome_log_written", "counter", "Outcome records appended to the stream", "written"),
    Family("confroute_outcome_log_duplicates", "counter", "Outcome records whose query id was already logged",
           "duplicates"),
    Family("confroute_outcome_log_write_errors", "counter", "Failed write attempts to the outcome log, each retry",
           "write_errors"),
)


class OutcomeLogCollector:
    """The outcome log's counters and buffer depth, read at scrape time."""

    families = OUTCOME_LOG_FAMILIES

    def __init__(self, registry: CollectorRegistry) -> None:
        self._log: object | None = None
        registry.register(self)

    def watch(self, outcome_log: object) -> None:
        """Reads ``outcome_log``'s stats from now on."""
        self._log = outcome_log

    def describe(self) -> Iterable[Metric]:
        return [_family(spec, None) for spec in self.families]

    def collect(self) -> Iterator[Metric]:
        stats = getattr(self._log, "stats", None)
        if callable(stats):
            stats = stats()
        if stats is None:
            return
        for spec in self.families:
            value = getattr(stats, spec.stat, None)
            if isinstance(value, (int, float)):
                yield _family(spec, float(value))


def _family(spec: Family, value: float | None) -> Metric:
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.documentation, value=value)
    return GaugeMetricFamily(spec.name, spec.documentation, value=value)


def create_metrics(max_cohorts: int = 100) -> ServiceMetrics:
    """Instruments on a new registry (never the process-global one)."""
    return ServiceMetrics(new_registry(), max_cohorts)


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


def serve_metrics(metrics: ServiceMetrics | CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Starts ``/metrics`` for ``metrics`` (its registry) on ``host:port`` (0: a free port); any other
    path is 404."""
    registry = metrics if isinstance(metrics, CollectorRegistry) else metrics.registry
    return serve_wsgi(host, port, {METRICS_PATH: make_wsgi_app(registry)})


def serve_wsgi(host: str, port: int, routes: dict[str, WsgiApp]) -> MetricsEndpoint:
    """A threaded HTTP server answering each path in ``routes`` with its app, and 404 elsewhere."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = routes.get(environ.get("PATH_INFO", ""))
        if route is None:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"not found; try {', '.join(sorted(routes))}\n".encode()]
        return route(environ, start_response)

    server_class = _ThreadingWSGIServer6 if ":" in host else ThreadingWSGIServer
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"http-{port}", daemon=True)
    thread.start()
    return MetricsEndpoint(server, thread)


class _ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per request (scrapes come every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base class's name
        pass


def refusal_reason(status: str, rate_limited: bool) -> str:
    """The ``reason`` of a refusal (see the module docstring)."""
    if status == "RESOURCE_EXHAUSTED":
        return "rate_limited" if rate_limited else "overloaded"
    return status.lower()


def refusals_counted(registry: CollectorRegistry, service: str, reason: str) -> float:
    """The refusals ``registry`` counted for the gRPC service ``service`` (e.g. ``EscalationService``) with
    ``reason``, over its methods."""
    prefix = f"/confroute.v1.{service}/"
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == "confroute_refusals"
        for sample in family.samples
        if sample.name == "confroute_refusals_total"
        and sample.labels.get("reason") == reason
        and sample.labels.get("method", "").startswith(prefix)
    )
