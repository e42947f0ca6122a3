"""Summaries of timed windows: pooled latency percentiles, throughput and CPU time per request."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.cloudbench.load import Window


@dataclass
class Sample:
    """One timed window and the CPU seconds each process spent during it."""

    window: Window
    cpu_s: dict[str, float]


@dataclass
class Series:
    """Every window of one (path, concurrency) pair, across rounds."""

    path: str
    concurrency: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(len(s.window.latencies_s) for s in self.samples)

    @property
    def errors(self) -> int:
        return sum(s.window.errors for s in self.samples)

    @property
    def elapsed_s(self) -> float:
        return sum(s.window.elapsed_s for s in self.samples)

    def percentile_ms(self, q: float) -> float:
        latencies = [x for s in self.samples for x in s.window.latencies_s]
        return float(np.percentile(latencies, q)) * 1e3 if latencies else float("nan")

    @property
    def rps(self) -> float:
        """Requests completed per second over all the windows."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def rps_per_round(self) -> list[float]:
        return [round(len(s.window.latencies_s) / s.window.elapsed_s, 1) for s in self.samples if s.window.elapsed_s]

    def cpu_us_per_req(self, process: str) -> float:
        """CPU microseconds ``process`` spent per completed request in these windows."""
        total = sum(s.cpu_s.get(process, 0.0) for s in self.samples)
        return total / self.requests * 1e6 if self.requests else float("nan")

    def cpu_cores(self, process: str) -> float:
        """How many cores ``process`` kept busy on average."""
        total = sum(s.cpu_s.get(process, 0.0) for s in self.samples)
        return total / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def first_error(self) -> str:
        return next((s.window.first_error for s in self.samples if s.window.first_error), "")

    def to_json(self, processes: tuple[str, ...]) -> dict[str, object]:
        row: dict[str, object] = {
            "path": self.path,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "p50_ms": round(self.percentile_ms(50), 3),
            "p90_ms": round(self.percentile_ms(90), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "rps": round(self.rps, 1),
            "rps_per_round": self.rps_per_round(),
        }
        for process in processes:
            row[f"{process}_cpu_us_per_req"] = round(self.cpu_us_per_req(process), 1)
            row[f"{process}_cpu_cores"] = round(self.cpu_cores(process), 3)
        if self.errors:
            row["first_error"] = self.first_error()
        return row
