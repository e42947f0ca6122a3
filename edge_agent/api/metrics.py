"""``/metrics``: the API's counters in the Prometheus text format, written by hand so that the device
image needs no ``prometheus_client``.

    confroute_api_requests_total{route, status}       HTTP requests served (route "other" for unknown paths)
    confroute_api_answers_total{side}                 answers given, by the side that answered
    confroute_api_answer_seconds{side}                histogram: request received -> answer complete
    confroute_api_escalation_unavailable_total        answers given locally because the cloud could not answer
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from edge_agent.answer import AgentAnswer

#: Latency histogram bucket bounds, in seconds (a small model on a device: tenths of a second to a minute).
DEFAULT_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SIDES = ("edge", "cloud")


class _Histogram:
    """Cumulative buckets, a sum and a count (not thread-safe: ApiMetrics holds the lock)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, bound in enumerate(self.bounds) if value <= bound), len(self.bounds))
        self.counts[index] += 1
        self.total += value

    def lines(self, name: str, labels: str) -> Iterable[str]:
        running = 0
        for bound, count in zip((*map(_number, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            yield f'{name}_bucket{{{labels},le="{bound}"}} {running}'
        yield f"{name}_sum{{{labels}}} {_number(self.total)}"
        yield f"{name}_count{{{labels}}} {running}"


class ApiMetrics:
    """Thread-safe counters of one API server."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._answers: Counter[str] = Counter()
        self._buckets = tuple(buckets)
        self._latency = {side: _Histogram(self._buckets) for side in SIDES}
        self._unavailable = 0
        self._sources: list[Callable[[], Iterable[str]]] = []

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        """Adds the exposition lines ``source()`` returns at each scrape (board telemetry, for one)."""
        with self._lock:
            self._sources.append(source)

    def request(self, route: str, status: int) -> None:
        """Counts one HTTP request by its route template and the status it was answered with."""
        with self._lock:
            self._requests[route, status] += 1

    def answer(self, answer: AgentAnswer, seconds: float) -> None:
        """Counts one answer, ``seconds`` after its request arrived."""
        with self._lock:
            self._answers[answer.side] += 1
            self._latency.setdefault(answer.side, _Histogram(self._buckets)).observe(seconds)
            self._unavailable += answer.escalation_unavailable

    def requests(self, route: str, status: int) -> int:
        """How many requests to ``route`` were answered with ``status``."""
        with self._lock:
            return self._requests[route, status]

    def render(self) -> str:
        """The exposition text (format 0.0.4)."""
        with self._lock:
            requests = [(f'route="{_escape(route)}",status="{status}"', count)
                        for (route, status), count in sorted(self._requests.items())]
            answers = [(f'side="{_escape(side)}"', self._answers[side]) for side in self._latency]
            lines = [*_family("confroute_api_requests_total", "counter",
                              "HTTP requests served, by route and status.", requests),
                     *_family("confroute_api_answers_total", "counter",
                              "Answers given, by the side that answered.", answers),
                     "# HELP confroute_api_answer_seconds Time from request to complete answer, by side.",
                     "# TYPE confroute_api_answer_seconds histogram"]
            for side, histogram in self._latency.items():
                lines.extend(histogram.lines("confroute_api_answer_seconds", f'side="{_escape(side)}"'))
            lines.extend(_family("confroute_api_escalation_unavailable_total", "counter",
                                 "Answers given locally because the wanted escalation was unavailable.",
                                 [("", self._unavailable)]))
            sources = list(self._sources)
        for source in sources:
            lines.extend(source())
        return "\n".join(lines) + "\n"


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[str, int]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}" for labels, value in samples)
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value))
