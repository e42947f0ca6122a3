"""``/metrics``: the device's counters through ``prometheus_client`` (one registry per server).

    confroute_api_requests_total{route, status}       HTTP requests served (route "other" for unknown paths)
    confroute_api_answers_total{side}                 answers given, by the side that answered
    confroute_api_answer_seconds{side}                histogram: request received -> answer complete
    confroute_api_time_to_first_token_seconds         histogram: request received -> first text sent (in post
                                                      mode, and for a decision after decoding, the whole answer)
    confroute_api_completion_tokens_total{side}       tokens generated (the edge's) or relayed (the cloud's)
    confroute_api_confidence{side}                    histogram of the routing confidence of answers
    confroute_api_escalation_unavailable_total        answers given locally because the cloud could not answer
    confroute_api_requests_waiting                    admitted requests waiting for the model
    confroute_api_batch_size                          requests the model is answering now
    confroute_edge_outbox_depth                       outcome records waiting for upload
    confroute_edge_breaker_state{state}               1 for the escalation circuit breaker's state
    confroute_edge_policy_info{policy_version, edge_model_version}   1 (the policy and bundle in use)
    confroute_edge_probe_info{probe_version}          1 (the router probe in use: Manifest.probe_version)
    confroute_edge_outbox_evicted_total               outcome records evicted from a full outbox
    confroute_edge_outcomes_unrecorded_total          outcome records the outbox could not store (full disk)
    process_*                                         the process's CPU, memory and file descriptors
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.answer import AgentAnswer

#: Latency histogram bucket bounds, in seconds (a small model on a device: tenths of a second to a minute).
DEFAULT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TTFT_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONFIDENCE_BUCKETS: tuple[float, ...] = tuple(i / 10 for i in range(1, 11))
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SIDES = ("edge", "cloud")
BREAKER_STATES = ("closed", "open", "half_open")


@dataclasses.dataclass(frozen=True)
class DeviceSnapshot:
    """What the device reports beside the API: read at each scrape. ``breaker_state`` None: no cloud."""

    outbox_depth: int
    breaker_state: str | None
    policy_version: str
    edge_model_version: str
    outbox_evicted: int = 0  # records evicted from a full outbox, ever
    outcomes_unrecorded: int = 0  # records the outbox could not store (a full or failing disk), this run
    probe_version: str = ""


class ApiMetrics:
    """The counters of one API server (thread-safe: prometheus_client locks each sample)."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS,
                 device: Callable[[], DeviceSnapshot] | None = None) -> None:
        self.registry = registry = CollectorRegistry()
        self._requests = Counter("confroute_api_requests", "HTTP requests served, by route and status.",
                                 ["route", "status"], registry=registry)
        self._answers = Counter("confroute_api_answers", "Answers given, by the side that answered.", ["side"],
                                registry=registry)
        self._latency = Histogram("confroute_api_answer_seconds", "Time from request to complete answer, by side.",
                                  ["side"], buckets=buckets, registry=registry)
        self._first = Histogram("confroute_api_time_to_first_token_seconds",
                                "Time from request to its first text (the whole answer when held for a decision).",
                                buckets=TTFT_BUCKETS, registry=registry)
        self._tokens = Counter("confroute_api_completion_tokens", "Tokens answered, by side.", ["side"],
                               registry=registry)
        self._confidence = Histogram("confroute_api_confidence", "Routing confidence of answers, by side.", ["side"],
                                     buckets=CONFIDENCE_BUCKETS, registry=registry)
        self._unavailable = Counter("confroute_api_escalation_unavailable",
                                    "Answers given locally because the wanted escalation was unavailable.",
                                    registry=registry)
        self._waiting = Gauge("confroute_api_requests_waiting", "Admitted requests waiting for the model.",
                              registry=registry)
        self._batch = Gauge("confroute_api_batch_size", "Requests the model is answering now.", registry=registry)
        for side in SIDES:  # every side shows from the first scrape, at zero
            self._answers.labels(side)
            self._latency.labels(side)
            self._tokens.labels(side)
        ProcessCollector(registry=registry)
        if device is not None:
            registry.register(_DeviceCollector(device))
        self._sources: list[Callable[[], Iterable[str]]] = []

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        """Adds the exposition lines ``source()`` returns at each scrape (board telemetry, for one)."""
        self._sources.append(source)

    def request(self, route: str, status: int) -> None:
        """Counts one HTTP request by its route template and the status it was answered with."""
        self._requests.labels(route, str(status)).inc()

    def answer(self, answer: AgentAnswer, seconds: float) -> None:
        """Counts one answer, ``seconds`` after its request arrived."""
        self._answers.labels(answer.side).inc()
        self._latency.labels(answer.side).observe(seconds)
        self._tokens.labels(answer.side).inc(answer.completion_tokens)
        if answer.confidence is not None:
            self._confidence.labels(answer.side).observe(answer.confidence)
        if answer.escalation_unavailable:
            self._unavailable.inc()

    def first_token(self, seconds: float) -> None:
        """The time from a request's arrival to its first text (or its whole answer, when held back)."""
        self._first.observe(seconds)

    def set_queue(self, *, waiting: int, running: int) -> None:
        self._waiting.set(waiting)
        self._batch.set(running)

    def requests(self, route: str, status: int) -> int:
        """How many requests to ``route`` were answered with ``status``."""
        value = self.registry.get_sample_value("confroute_api_requests_total", {"route": route, "status": str(status)})
        return int(value or 0)

    def render(self) -> str:
        """The exposition text (format 0.0.4)."""
        lines = [generate_latest(self.registry).decode("utf-8")]
        lines.extend(line + "\n" for source in list(self._sources) for line in source())
        return "".join(lines)


class _DeviceCollector(Collector):
    """Reads the device's outbox, breaker and policy at scrape time."""

    def __init__(self, device: Callable[[], DeviceSnapshot]) -> None:
        self._device = device

    def collect(self) -> Iterator[Metric]:
        now = self._device()
        yield GaugeMetricFamily("confroute_edge_outbox_depth", "Outcome records waiting for upload.",
                                value=now.outbox_depth)
        if now.breaker_state is not None:
            breaker = GaugeMetricFamily("confroute_edge_breaker_state",
                                        "1 for the escalation circuit breaker's current state.", labels=["state"])
            for state in BREAKER_STATES:
                breaker.add_metric([state], float(state == now.breaker_state))
            yield breaker
        info = GaugeMetricFamily("confroute_edge_policy_info", "The routing policy and edge bundle in use.",
                                 labels=["policy_version", "edge_model_version"])
        info.add_metric([now.policy_version, now.edge_model_version], 1.0)
        yield info
        yield CounterMetricFamily("confroute_edge_outbox_evicted", "Outcome records evicted from a full outbox.",
                                  value=now.outbox_evicted)
        yield CounterMetricFamily("confroute_edge_outcomes_unrecorded",
                                  "Outcome records the outbox could not store (a full or failing disk).",
                                  value=now.outcomes_unrecorded)
        if now.probe_version:
            probe = GaugeMetricFamily("confroute_edge_probe_info", "The router probe in use (its weights' version).",
                                      labels=["probe_version"])
            probe.add_metric([now.probe_version], 1.0)
            yield probe
