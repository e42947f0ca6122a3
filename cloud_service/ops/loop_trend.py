"""The loop monitor's recent passes, per (edge model version, cohort): a bounded ring in memory, no store.

Each pass adds one point per partition it read: when, the window's escalation rate beside the target the
last recalibration aimed at, and the ECE and risk of the live policy. A partition keeps its last ``points``
points; one the pass did not read (it left the first ``max_partitions``, or its outcomes expired) is
forgotten, so the ring holds at most the monitor's partition bound times ``points``. A restarted service
starts an empty ring: Prometheus keeps the long history (``confroute_loop_window_*``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cloud_service.ops.fleet_view import PartitionId
from cloud_service.ops.loop_window import WindowReport

FIGURES = ("escalation_rate", "target_escalation_rate", "ece", "risk")


@dataclass(frozen=True)
class TrendPoint:
    """One pass's figures for one partition (None: the window could not tell)."""

    at: float
    escalation_rate: float | None
    target_escalation_rate: float | None
    ece: float | None
    risk: float | None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "escalation_rate": self.escalation_rate,
                "target_escalation_rate": self.target_escalation_rate, "ece": self.ece, "risk": self.risk}


class LoopTrend:
    """The last ``points`` passes of each partition the monitor reads (see the module docstring)."""

    def __init__(self, points: int) -> None:
        if points < 1:
            raise ValueError(f"a trend keeps at least one point, got {points}")
        self._points = points
        self._rings: dict[PartitionId, deque[TrendPoint]] = {}

    def add(self, at: float, windows: Iterable[WindowReport]) -> None:
        """One pass: a point for each of ``windows``; partitions not among them are forgotten."""
        rings: dict[PartitionId, deque[TrendPoint]] = {}
        for report in windows:
            key = (report.edge_model_version, report.cohort)
            ring = self._rings.get(key) or deque(maxlen=self._points)
            figures = report.to_json()
            ring.append(TrendPoint(at, *(_number(figures[name]) for name in FIGURES)))
            rings[key] = ring
        self._rings = rings

    def to_json(self) -> list[dict[str, Any]]:
        """Per partition (sorted), its points oldest first."""
        return [{"edge_model_version": version, "cohort": cohort, "points": [p.to_json() for p in ring]}
                for (version, cohort), ring in sorted(self._rings.items())]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
